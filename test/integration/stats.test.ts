/**
 * Stats on a real containerd through the real tskubelet command: the Summary API, /metrics/resource,
 * /metrics/cadvisor and /spec/ on the read-only port, and the cAdvisor API on the 4194 listener,
 * for a pod that burns CPU, holds memory, writes to its rootfs and its log, and serves HTTP.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { cpus, totalmem } from "node:os";
import type { V1Pod } from "@kubernetes/client-node";
import { containerdUnavailableReason, startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { fetchText, freePort, startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";
import type { Summary } from "../../src/stats/summary.js";
import { BUSY_POD, parseProm } from "../support/stats.js";

const skip = containerdUnavailableReason() ?? false;

type PodSummary = Summary["pods"][number];

/** The value at a dotted path ("cpu.usageNanoCores"), undefined when any step is missing. */
function at(o: unknown, path: string): unknown {
  let cur = o;
  for (const k of path.split(".")) cur = cur !== null && typeof cur === "object" ? (cur as Record<string, unknown>)[k] : undefined;
  return cur;
}

function positive(o: unknown, ...paths: string[]): void {
  for (const p of paths) {
    const v = at(o, p);
    assert.ok(typeof v === "number" && v > 0, `${p} is positive (got ${JSON.stringify(v)})`);
  }
}

function present(o: unknown, ...paths: string[]): void {
  for (const p of paths) assert.notEqual(at(o, p), undefined, `${p} is present`);
}

function checkNode(n: Summary["node"], nodeName: string): void {
  assert.equal(n.nodeName, nodeName);
  assert.match(n.startTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  positive(n, "cpu.usageCoreNanoSeconds", "cpu.usageNanoCores", "memory.workingSetBytes", "memory.availableBytes");
  positive(n, "fs.capacityBytes", "fs.availableBytes", "fs.inodes", "runtime.imageFs.capacityBytes", "rlimit.maxpid", "rlimit.curproc");
  present(n, "runtime.imageFs.usedBytes", "network.interfaces");
  const pods = n.systemContainers?.find((c) => c.name === "pods");
  positive(pods, "memory.workingSetBytes", "cpu.usageCoreNanoSeconds");
}

function checkBusyPod(p: PodSummary, uid: string, nodeName: string): void {
  assert.deepEqual(p.podRef, { name: `busy-${nodeName}`, namespace: "default", uid });
  assert.deepEqual(p.containers.map((c) => c.name).sort(), ["busy", "web"]);
  positive(p, "cpu.usageCoreNanoSeconds", "memory.workingSetBytes", "network.rxBytes", "network.txBytes", "ephemeral-storage.usedBytes", "process_stats.process_count");
  assert.equal(p.network?.name, "eth0", "the pod's default interface inline");
  const busy = p.containers.find((c) => c.name === "busy");
  positive(busy, "cpu.usageCoreNanoSeconds", "memory.workingSetBytes", "memory.usageBytes", "rootfs.capacityBytes", "logs.usedBytes", "logs.capacityBytes");
  present(busy, "rootfs.usedBytes", "rootfs.inodesUsed");
  assert.ok(Number(at(busy, "memory.usageBytes")) >= Number(at(busy, "memory.workingSetBytes")));
  assert.ok(Date.parse(String(at(busy, "startTime"))) >= Date.parse(p.startTime) - 1000);
  const scratch = p.volume?.find((v) => v.name === "scratch");
  positive(scratch, "usedBytes", "capacityBytes", "inodesUsed");
  assert.ok(Number(at(scratch, "usedBytes")) >= 1024 * 1024, "the emptyDir holds the 1 MiB file");
  assert.ok(Number(at(p, "ephemeral-storage.usedBytes")) >= Number(at(scratch, "usedBytes")) + Number(at(busy, "logs.usedBytes")), "ephemeral storage counts the emptyDir and the logs");
}

describe("stats on containerd", { skip }, () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let cadvisorPort: number;
  let pod: V1Pod;
  let ro: string;

  before(async () => {
    rt = await startContainerd({ cni: true });
    cadvisorPort = await freePort();
    k = await startTskubelet(rt, { extraArgs: [`--cadvisor-port=${cadvisorPort}`] });
    ro = `http://127.0.0.1:${k.readOnlyPort}`;
    await k.writeManifest("busy.yaml", BUSY_POD);
    pod = await waitFor(async () => {
      const p = await k.pod("busy");
      return p?.status?.podIP && p.status.containerStatuses?.length === 2 && p.status.containerStatuses.every((c) => c.state?.running) ? p : undefined;
    }, { timeoutMs: 60_000, what: () => "the busy pod to run" });
    // Some traffic for the network stats.
    for (let i = 0; i < 5; i++) await fetchText(`http://${pod.status?.podIP ?? ""}:8080/hostname`).catch(() => "");
  });
  after(async () => {
    await k?.cleanup();
    await rt?.stop();
  });

  const summary = async (query = ""): Promise<Summary> => JSON.parse(await fetchText(`${ro}/stats/summary${query}`, 15_000)) as Summary;
  const busyOf = (s: Summary): Summary["pods"][number] | undefined => s.pods.find((p) => p.podRef.name === `busy-${k.nodeName}`);

  it("serves /stats/summary in upstream's shape with real numbers for a busy pod", async () => {
    const s = await waitFor(async () => {
      const x = await summary();
      const p = busyOf(x);
      const busy = p?.containers.find((c) => c.name === "busy");
      return (busy?.cpu?.usageNanoCores ?? 0) > 0 && (p?.network?.rxBytes ?? 0) > 0 && (busy?.logs?.usedBytes ?? 0) > 0 ? x : undefined;
    }, { timeoutMs: 60_000, intervalMs: 1000, what: () => "usageNanoCores, network and log usage of the busy pod" });
    checkNode(s.node, k.nodeName);
    const p = busyOf(s);
    assert.ok(p);
    checkBusyPod(p, pod.metadata?.uid ?? "", k.nodeName);
  });

  it("reduces the summary with only_cpu_and_memory (query and POST form)", async () => {
    for (const get of [() => summary("?only_cpu_and_memory=true"), async () => JSON.parse(await (await fetch(`${ro}/stats/summary`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "only_cpu_and_memory=true" })).text()) as Summary]) {
      const s = await get();
      assert.deepEqual(Object.keys(s.node).sort(), ["cpu", "memory", "nodeName", "startTime", "systemContainers"]);
      const p = busyOf(s);
      assert.ok(p);
      assert.deepEqual(Object.keys(p).sort(), ["containers", "cpu", "memory", "podRef", "startTime"]);
      for (const c of p.containers) assert.deepEqual(Object.keys(c).sort(), ["cpu", "memory", "name", "startTime"]);
    }
  });

  it("serves /metrics/resource with the pod's labels and timestamps", async () => {
    const samples = parseProm(await fetchText(`${ro}/metrics/resource`));
    const labels = { container: "busy", namespace: "default", pod: `busy-${k.nodeName}` };
    const cpu = samples.find((x) => x.name === "container_cpu_usage_seconds_total" && x.labels.container === "busy");
    assert.deepEqual(cpu?.labels, labels);
    assert.ok((cpu?.value ?? 0) > 0 && Math.abs((cpu?.timestamp ?? 0) - Date.now()) < 60_000, "a recent timestamp");
    assert.ok((samples.find((x) => x.name === "container_memory_working_set_bytes" && x.labels.container === "busy")?.value ?? 0) > 0);
    assert.ok((samples.find((x) => x.name === "container_start_time_seconds" && x.labels.container === "web")?.value ?? 0) > 1e9);
    assert.ok((samples.find((x) => x.name === "pod_cpu_usage_seconds_total" && x.labels.pod === labels.pod)?.value ?? 0) > 0);
    assert.ok((samples.find((x) => x.name === "pod_memory_working_set_bytes" && x.labels.pod === labels.pod)?.value ?? 0) > 0);
    assert.ok((samples.find((x) => x.name === "node_cpu_usage_seconds_total")?.value ?? 0) > 0);
    assert.ok((samples.find((x) => x.name === "node_memory_working_set_bytes")?.value ?? 0) > 0);
    assert.equal(samples.find((x) => x.name === "resource_scrape_error")?.value, 0);
  });

  it("serves /metrics/cadvisor with cAdvisor's families and the kubelet's labels", async () => {
    const text = await fetchText(`${ro}/metrics/cadvisor`);
    assert.match(text, /^# TYPE container_cpu_usage_seconds_total counter$/m);
    const samples = parseProm(text);
    const id = (pod.status?.containerStatuses?.find((c) => c.name === "busy")?.containerID ?? "").replace("containerd://", "");
    const cpu = samples.find((x) => x.name === "container_cpu_usage_seconds_total" && x.labels.name === id);
    assert.ok(cpu, `a series for container ${id}`);
    assert.equal(cpu.labels.container, "busy");
    assert.equal(cpu.labels.cpu, "total");
    assert.equal(cpu.labels.image, "tskubelet.local/busybox:1.35");
    assert.equal(cpu.labels.namespace, "default");
    assert.equal(cpu.labels.pod, `busy-${k.nodeName}`);
    assert.match(cpu.labels.id ?? "", new RegExp(`^/kubepods/besteffort/pod${pod.metadata?.uid ?? ""}/${id}$`));
    assert.ok(cpu.value > 0);
    const podSeries = samples.find((x) => x.name === "container_memory_working_set_bytes" && x.labels.id === `/kubepods/besteffort/pod${pod.metadata?.uid ?? ""}`);
    assert.equal(podSeries?.labels.pod, `busy-${k.nodeName}`, "the pod cgroup carries the pod's labels");
    assert.ok(samples.some((x) => x.name === "container_network_receive_bytes_total" && x.labels.name === id && x.labels.interface === "eth0" && x.value > 0));
    assert.ok(samples.some((x) => x.name === "container_fs_usage_bytes" && x.labels.name === id));
    assert.ok(samples.some((x) => x.name === "container_cpu_usage_seconds_total" && x.labels.id === "/"));
    assert.equal(samples.find((x) => x.name === "machine_memory_bytes")?.value, totalmem());
    assert.equal(samples.find((x) => x.name === "machine_cpu_cores")?.value, cpus().length);
    assert.ok(samples.some((x) => x.name === "cadvisor_version_info" && x.value === 1));
    // Every container_* series has the six labels.
    for (const x of samples.filter((s) => s.name.startsWith("container_") && s.name !== "container_scrape_error")) {
      for (const l of ["container", "id", "image", "name", "namespace", "pod"]) assert.ok(l in x.labels, `${x.name} has ${l}`);
    }
  });

  it("serves /spec/ as cAdvisor's MachineInfo", async () => {
    const spec = JSON.parse(await fetchText(`${ro}/spec/`)) as Record<string, unknown>;
    assert.equal(spec.num_cores, cpus().length);
    assert.equal(spec.memory_capacity, totalmem());
    for (const key of ["num_physical_cores", "num_sockets", "cpu_frequency_khz", "hugepages", "machine_id", "system_uuid", "boot_id", "filesystems", "disk_map", "network_devices", "topology", "cloud_provider", "instance_type", "instance_id"]) {
      assert.ok(key in spec, `spec has ${key}`);
    }
    const topo = spec.topology as { cores: { thread_ids: number[] }[] }[];
    assert.equal(topo.flatMap((n) => n.cores.flatMap((c) => c.thread_ids)).length, cpus().length);
  });

  it("answers 200 for every stats path on the read-only port", async () => {
    for (const path of ["/spec/", "/stats/summary", "/metrics/cadvisor", "/metrics/resource"]) {
      const res = await fetch(`${ro}${path}`);
      assert.equal(res.status, 200, path);
      await res.arrayBuffer();
    }
  });

  it("serves cAdvisor's API and the UI on the cadvisor port", async () => {
    const base = `http://127.0.0.1:${cadvisorPort}`;
    const machine = JSON.parse(await fetchText(`${base}/api/v1.3/machine`)) as { num_cores: number; memory_capacity: number };
    assert.equal(machine.num_cores, cpus().length);
    assert.equal(machine.memory_capacity, totalmem());
    const all = JSON.parse(await fetchText(`${base}/api/v2.0/stats?recursive=true&count=3`)) as Record<string, { timestamp: string; cpu?: { usage: { total: number } }; memory?: { working_set: number } }[]>;
    const id = (pod.status?.containerStatuses?.find((c) => c.name === "busy")?.containerID ?? "").replace("containerd://", "");
    const name = Object.keys(all).find((n) => n.endsWith(`/${id}`));
    assert.ok(name, "the busy container is listed by its cgroup path");
    const list = all[name] ?? [];
    assert.ok(list.length >= 1 && list.length <= 3);
    assert.ok((list[list.length - 1]?.cpu?.usage.total ?? 0) > 0);
    assert.ok("/" in all, "the machine's own cgroup");
    const one = JSON.parse(await fetchText(`${base}/api/v2.0/stats${name}?count=2`)) as Record<string, unknown[]>;
    assert.deepEqual(Object.keys(one), [name]);
    const spec = JSON.parse(await fetchText(`${base}/api/v2.0/spec${name}`)) as Record<string, { labels?: Record<string, string>; image?: string; aliases?: string[] }>;
    assert.equal(spec[name]?.labels?.["io.kubernetes.container.name"], "busy");
    assert.deepEqual(spec[name]?.aliases, [id]);
    const metrics = parseProm(await fetchText(`${base}/metrics`));
    assert.ok(metrics.some((x) => x.name === "container_cpu_usage_seconds_total" && x.labels.name === id));
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await page.text(), /<script type="module" src="\/static\/app.js">/);
    const detail = await fetch(`${base}/containers${name}`);
    assert.equal(detail.status, 200);
    await detail.arrayBuffer();
    assert.equal((await fetch(`${base}/static/app.js`)).headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal((await fetch(`${base}/static/..%2Fpackage.json`)).status, 404);
    assert.equal((await fetch(`${base}/api/v2.0/stats/no/such/cgroup`)).status, 404);
  });
});
