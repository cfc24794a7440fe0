/**
 * The stats provider over fixture trees and a fake runtime: usageNanoCores from two samples with a
 * FakeClock, the Summary API's shape, CRI numbers standing in for a missing cgroup, the caching
 * of snapshots, and the resource and cAdvisor metrics rendered from it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Container, ContainerStats, PodSandbox } from "../../src/cri/types.js";
import { createStatsProvider, type StatsProvider } from "../../src/stats/provider.js";
import { buildSummary, kubeTime } from "../../src/stats/summary.js";
import { nanoCores } from "../../src/stats/history.js";
import { renderResourceMetrics } from "../../src/stats/resource-metrics.js";
import { renderCadvisorMetrics } from "../../src/stats/cadvisor-metrics.js";
import { versionLabels } from "../../src/stats/handlers.js";
import { parseStatsQuery, selectEntries, statsResponse } from "../../src/stats/cadvisor-api.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";
import { CONTAINER_ID, POD_UID, SANDBOX_ID, procTree, tempDir, v2Cgroup, writeTree } from "../support/stats-fixtures.js";
import { parseProm } from "../support/stats.js";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const POD_CG = `/kubepods/besteffort/pod${POD_UID}`;
const ORPHAN_ID = "d".repeat(64);

function runtime(now: number): { sandboxes: PodSandbox[]; containers: Container[]; stats: ContainerStats[] } {
  const ns = BigInt(now) * 1_000_000n;
  const labels = { "io.kubernetes.pod.name": "web-node1", "io.kubernetes.pod.namespace": "prod", "io.kubernetes.pod.uid": POD_UID };
  const sandbox: PodSandbox = { id: SANDBOX_ID, metadata: { name: "web-node1", namespace: "prod", uid: POD_UID, attempt: 0 }, state: "SANDBOX_READY", createdAt: ns, labels, annotations: {}, runtimeHandler: "" };
  const mk = (id: string, name: string): Container => ({
    id,
    podSandboxId: SANDBOX_ID,
    metadata: { name, attempt: 0 },
    image: { image: "sha256:0123" },
    imageRef: "sha256:0123",
    state: "CONTAINER_RUNNING",
    createdAt: ns + 1_000_000_000n,
    labels: { ...labels, "io.kubernetes.container.name": name },
    annotations: {},
  });
  const stats: ContainerStats[] = [
    { attributes: { id: CONTAINER_ID, metadata: { name: "app", attempt: 0 }, labels: {}, annotations: {} }, writableLayer: { timestamp: ns, fsId: { mountpoint: "/" }, usedBytes: { value: 4096n }, inodesUsed: { value: 3n } } },
    {
      attributes: { id: ORPHAN_ID, metadata: { name: "sidecar", attempt: 0 }, labels: {}, annotations: {} },
      cpu: { timestamp: ns, usageCoreNanoSeconds: { value: 7_000_000_000n }, usageNanoCores: { value: 250_000_000n } },
      memory: { timestamp: ns, workingSetBytes: { value: 3_000_000n }, usageBytes: { value: 4_000_000n }, rssBytes: { value: 1_000_000n } },
    },
  ];
  return { sandboxes: [sandbox], containers: [mk(CONTAINER_ID, "app"), mk(ORPHAN_ID, "sidecar")], stats };
}

describe("stats provider", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let clock: FakeClock;
  let provider: StatsProvider;
  let calls = 0;

  const cgroups = async (cpuUsec: number, podCpuUsec: number): Promise<void> => {
    await writeTree(join(dir, "cg"), {
      "cgroup.controllers": "cpu memory io pids\n",
      "cpu.stat": `usage_usec ${cpuUsec * 4}\nuser_usec 1\nsystem_usec 1\n`,
      "kubelet.slice/cgroup.procs": "1\n",
      ...v2Cgroup("/kubelet.slice", { cpuUsec: 1000, memory: 50_000_000, inactiveFile: 0 }, { procs: [1] }),
      ...v2Cgroup("/kubepods", { cpuUsec: podCpuUsec, memory: 40_000_000, inactiveFile: 0 }),
      ...v2Cgroup("/kubepods/besteffort", { cpuUsec: podCpuUsec, memory: 40_000_000, inactiveFile: 0 }),
      ...v2Cgroup(POD_CG, { cpuUsec: podCpuUsec, memory: 40_000_000, inactiveFile: 4_000_000 }),
      ...v2Cgroup(`${POD_CG}/${SANDBOX_ID}`, { cpuUsec: 10, memory: 1_000_000, inactiveFile: 0 }, { procs: [100] }),
      ...v2Cgroup(`${POD_CG}/${CONTAINER_ID}`, { cpuUsec: cpuUsec, memory: 30_000_000, inactiveFile: 2_000_000 }, { procs: [101, 102] }),
    });
  };

  before(async () => {
    ({ dir, cleanup } = await tempDir("tsk-stats-"));
    await writeTree(join(dir, "proc"), procTree());
    await writeTree(join(dir, "rootdir"), {
      [`pods/${POD_UID}/volumes/kubernetes.io~empty-dir/cache/blob`]: "y".repeat(10_000),
      [`pods/${POD_UID}/volumes/kubernetes.io~configmap/settings/app.conf`]: "z".repeat(100),
    });
    await writeTree(join(dir, "logs"), { [`prod_web-node1_${POD_UID}/app/0.log`]: "x".repeat(5000) });
    await cgroups(1_000_000, 1_100_000);
    clock = new FakeClock(T0);
    const rt = runtime(T0 - 60_000);
    provider = createStatsProvider(
      {
        runtime: {
          listPodSandbox: () => {
            calls++;
            return Promise.resolve(rt.sandboxes);
          },
          listContainers: () => Promise.resolve(rt.containers),
          listContainerStats: () => Promise.resolve(rt.stats),
        },
        images: { imageFsInfo: () => Promise.resolve({ imageFilesystems: [{ timestamp: 0n, fsId: { mountpoint: dir }, usedBytes: { value: 123n }, inodesUsed: { value: 4n } }], containerFilesystems: [] }) },
        pods: () => [{ metadata: { uid: POD_UID, name: "web-node1", namespace: "prod" }, spec: { containers: [{ name: "app", image: "registry.local/web:1.0" }] }, status: { startTime: new Date(T0 - 59_000) } }],
        clock,
        logger: memoryLogger().logger,
      },
      { nodeName: "node1", rootDir: join(dir, "rootdir"), podLogsDir: join(dir, "logs"), layout: { version: 2, root: join(dir, "cg") }, roots: { proc: join(dir, "proc"), sys: join(dir, "sys"), etc: join(dir, "etc") } },
    );
  });
  after(() => cleanup());

  it("computes usageNanoCores from two samples over the FakeClock's interval", async () => {
    const first = await provider.snapshot(0);
    const ctr = first.pods[0]?.containers.find((c) => c.name === "app");
    assert.equal(ctr?.cgroup.cpuNanoCores, undefined, "no rate from a single sample");
    // 2 s later the container used 1 more CPU-second: half a core.
    await clock.advance(2000);
    await cgroups(2_000_000, 2_600_000);
    const second = await provider.snapshot(0);
    const again = second.pods[0]?.containers.find((c) => c.name === "app");
    assert.equal(again?.cgroup.cpuNanoCores, 500_000_000);
    assert.equal(second.pods[0]?.cgroup?.cpuNanoCores, 750_000_000, "the pod cgroup: 1.5 CPU-seconds in 2 s");
    assert.equal(nanoCores(10, 1000, 5, 2000), undefined, "a counter that went back (a new cgroup) gives no rate");
  });

  it("builds the Summary API in upstream's shape", async () => {
    const s = buildSummary(await provider.snapshot());
    assert.equal(s.node.nodeName, "node1");
    assert.equal(s.node.startTime, "2026-01-01T00:00:00Z", "boot time from btime");
    assert.equal(s.node.memory?.availableBytes, 16_384_000 * 1024 - (s.node.memory?.workingSetBytes ?? 0));
    assert.deepEqual(s.node.systemContainers?.map((c) => c.name), ["kubelet", "pods"]);
    assert.equal(s.node.runtime?.imageFs?.usedBytes, 123);
    assert.equal(s.node.rlimit?.maxpid, 4194304);
    assert.equal(s.node.rlimit?.curproc, 345);
    assert.equal(s.node.network?.name, "eth0");
    assert.equal(s.node.network?.rxBytes, 5000);
  });

  it("builds the pods of the Summary API", async () => {
    const s = buildSummary(await provider.snapshot());
    assert.equal(s.pods.length, 1);
    const p = s.pods[0];
    assert.ok(p);
    assert.deepEqual(p.podRef, { name: "web-node1", namespace: "prod", uid: POD_UID });
    assert.equal(p.startTime, kubeTime(T0 - 59_000), "the pod's status.startTime");
    assert.deepEqual(p.network, { time: kubeTime(T0 + 2000), name: "eth0", rxBytes: 1000, rxErrors: 1, txBytes: 2000, txErrors: 3, interfaces: [{ name: "eth0", rxBytes: 1000, rxErrors: 1, txBytes: 2000, txErrors: 3 }] });
    assert.equal(p.memory?.workingSetBytes, 36_000_000);
    assert.equal(p.memory?.availableBytes, undefined, "no limit, no availableBytes");
    assert.deepEqual(p.process_stats, { process_count: 2 }, "the app's two processes (the sidecar has no cgroup)");
  });

  it("builds the containers of the Summary API", async () => {
    const p = buildSummary(await provider.snapshot()).pods[0];
    assert.ok(p);
    const app = p.containers.find((c) => c.name === "app");
    assert.deepEqual(Object.keys(app ?? {}).sort(), ["cpu", "logs", "memory", "name", "rootfs", "startTime", "swap"]);
    assert.equal(app?.cpu?.usageCoreNanoSeconds, 2e9);
    assert.equal(app?.memory?.workingSetBytes, 28_000_000);
    assert.equal(app?.memory?.pageFaults, 77);
    assert.equal(app?.rootfs?.usedBytes, 4096);
    assert.equal(app?.rootfs?.inodesUsed, 3);
    assert.ok((app?.rootfs?.capacityBytes ?? 0) > 0);
    assert.ok((app?.logs?.usedBytes ?? 0) >= 5000, "du of the container's log directory");
  });

  it("reports volumes and counts emptyDirs into ephemeral storage", async () => {
    const p = buildSummary(await provider.snapshot()).pods[0];
    assert.ok(p);
    const app = p.containers.find((c) => c.name === "app");
    const cache = p.volume?.find((v) => v.name === "cache");
    assert.ok((cache?.usedBytes ?? 0) >= 10_000 && (cache?.capacityBytes ?? 0) > 0, "du and statfs of the emptyDir");
    assert.deepEqual(p.volume?.map((v) => v.name), ["settings", "cache"], "every volume directory, by plugin");
    assert.equal(p["ephemeral-storage"]?.usedBytes, 4096 + (app?.logs?.usedBytes ?? 0) + (cache?.usedBytes ?? 0), "rootfs, logs and emptyDirs (not configmaps)");
    assert.equal(app?.cpu?.psi?.some.total, 123456);
  });

  it("uses the runtime's numbers for a container without a cgroup", async () => {
    const s = buildSummary(await provider.snapshot());
    const side = s.pods[0]?.containers.find((c) => c.name === "sidecar");
    assert.equal(side?.cpu?.usageCoreNanoSeconds, 7e9);
    assert.equal(side?.cpu?.usageNanoCores, 250_000_000);
    assert.equal(side?.memory?.workingSetBytes, 3_000_000);
  });

  it("returns only cpu and memory with only_cpu_and_memory", async () => {
    const s = buildSummary(await provider.snapshot(), true);
    assert.deepEqual(Object.keys(s.node).sort(), ["cpu", "memory", "nodeName", "startTime", "systemContainers"]);
    for (const p of s.pods) {
      assert.deepEqual(Object.keys(p).sort(), ["containers", "cpu", "memory", "podRef", "startTime"]);
      for (const c of p.containers) assert.deepEqual(Object.keys(c).sort(), ["cpu", "memory", "name", "startTime"]);
    }
  });

  it("serves a cached snapshot to scrapes that come together", async () => {
    await clock.advance(1);
    const before = calls;
    const [a, b] = await Promise.all([provider.snapshot(0), provider.snapshot(0)]);
    assert.equal(a, b, "one read for concurrent callers");
    assert.equal(calls, before + 1);
    await clock.advance(500);
    assert.equal(await provider.snapshot(), a, "younger than maxAge: served again");
    await clock.advance(600);
    assert.notEqual(await provider.snapshot(), a, "older: read again");
  });

  it("reads the node-level figures alone without asking the runtime for its pods", async () => {
    await clock.advance(5_000);
    const before = calls;
    const n = await provider.nodeSnapshot(0);
    assert.equal(calls, before, "no ListPodSandbox");
    assert.deepEqual(n.pods, []);
    assert.ok((n.root?.stats.memory?.workingSet ?? 0) > 0, "the root working set (memory.available)");
    assert.ok((n.nodeFs?.capacity ?? 0) > 0, "nodefs");
    assert.equal(n.imageFs?.used, 123, "imagefs from ImageFsInfo");
    assert.ok(n.rlimit.maxPid !== undefined && n.rlimit.curProc !== undefined, "pid.available");
    const full = await provider.snapshot(0);
    assert.equal(await provider.nodeSnapshot(1_000), full, "a young full snapshot is served as it is");
  });

  it("a background sample due while pods are starting waits for them, one period at most", async () => {
    let busy = true;
    let lists = 0;
    const c = new FakeClock(T0);
    const rt = runtime(T0 - 60_000);
    const p = createStatsProvider(
      {
        runtime: {
          listPodSandbox: () => {
            lists++;
            return Promise.resolve(rt.sandboxes);
          },
          listContainers: () => Promise.resolve(rt.containers),
          listContainerStats: () => Promise.resolve(rt.stats),
        },
        clock: c,
        logger: memoryLogger().logger,
      },
      { nodeName: "node1", rootDir: join(dir, "rootdir"), podLogsDir: join(dir, "logs"), layout: { version: 2, root: join(dir, "cg") }, roots: { proc: join(dir, "proc"), sys: join(dir, "sys"), etc: join(dir, "etc") }, housekeepingIntervalMs: 10_000, busy: () => busy },
    );
    const stop = new AbortController();
    const running = p.run(stop.signal);
    // A sample reads files: give it real time to finish (the FakeClock stands still meanwhile).
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));
    await settle();
    assert.equal(lists, 0, "busy: the first sample waits");
    await c.advance(3_000);
    await settle();
    assert.equal(lists, 0);
    busy = false;
    await c.advance(1_000);
    await settle();
    assert.equal(lists, 1, "taken within a second of the node becoming idle");
    busy = true;
    await c.advance(10_000);
    await settle();
    assert.equal(lists, 1, "the next one is due and waits");
    await c.advance(10_000);
    await settle();
    assert.equal(lists, 2, "but not longer than one more period");
    stop.abort();
    await running;
  });

  it("renders /metrics/resource with timestamps", async () => {
    const snap = await provider.snapshot();
    const samples = parseProm(renderResourceMetrics(snap));
    const cpu = samples.find((x) => x.name === "container_cpu_usage_seconds_total" && x.labels.container === "app");
    assert.deepEqual(cpu, { name: "container_cpu_usage_seconds_total", labels: { container: "app", namespace: "prod", pod: "web-node1" }, value: 2, timestamp: snap.time });
    assert.equal(samples.find((x) => x.name === "pod_memory_working_set_bytes")?.value, 36_000_000);
    assert.equal(samples.find((x) => x.name === "resource_scrape_error")?.value, 0);
    assert.equal(samples.find((x) => x.name === "container_start_time_seconds" && x.labels.container === "app")?.value, (T0 - 59_000) / 1000);
    assert.equal(parseProm(renderResourceMetrics(undefined)).find((x) => x.name === "resource_scrape_error")?.value, 1);
  });

  it("renders /metrics/cadvisor with the kubelet's six labels", async () => {
    const snap = await provider.snapshot();
    const text = renderCadvisorMetrics(snap, undefined, versionLabels("Test OS"));
    const samples = parseProm(text);
    const cpu = samples.find((x) => x.name === "container_cpu_usage_seconds_total" && x.labels.name === CONTAINER_ID);
    assert.deepEqual(cpu?.labels, { container: "app", cpu: "total", id: `${POD_CG}/${CONTAINER_ID}`, image: "registry.local/web:1.0", name: CONTAINER_ID, namespace: "prod", pod: "web-node1" });
    const podMem = samples.find((x) => x.name === "container_memory_working_set_bytes" && x.labels.id === POD_CG);
    assert.deepEqual(podMem?.labels, { container: "", id: POD_CG, image: "", name: "", namespace: "prod", pod: "web-node1" });
    assert.ok(samples.some((x) => x.name === "container_network_receive_bytes_total" && x.labels.interface === "eth0" && x.labels.name === CONTAINER_ID && x.value === 1000));
    assert.equal(samples.find((x) => x.name === "machine_scrape_error")?.value, 1, "no machine info given");
    assert.match(text, /^cadvisor_version_info\{cadvisorRevision="",cadvisorVersion="tskubelet-[^"]+",dockerVersion="",kernelVersion="[^"]+",osVersion="Test OS"\} 1$/m);
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1] ?? "");
    assert.deepEqual(names, [...names].sort(), "families sorted by name");
  });

  it("answers cAdvisor v2.0 stats queries with cpu_inst from the history", async () => {
    const snap = await provider.snapshot();
    const q = parseStatsQuery(POD_CG.slice(1), new URLSearchParams("recursive=true&count=2"));
    const entries = selectEntries(snap, q);
    // The sidecar has no cgroup: it is listed under its pod with the runtime's numbers.
    assert.deepEqual(entries?.map((e) => e.name), [POD_CG, `${POD_CG}/${SANDBOX_ID}`, `${POD_CG}/${CONTAINER_ID}`, `${POD_CG}/${ORPHAN_ID}`]);
    const byId = selectEntries(snap, parseStatsQuery(CONTAINER_ID, new URLSearchParams()));
    assert.equal(byId?.[0]?.name, `${POD_CG}/${CONTAINER_ID}`, "a runtime id finds its container");
    const res = statsResponse(entries ?? [], (n, c) => provider.history(n, c), 2, {});
    const list = res[`${POD_CG}/${CONTAINER_ID}`] ?? [];
    assert.equal(list.length, 2);
    const latest = list[list.length - 1] as { cpu_inst?: { usage: { total: number } }; memory?: { working_set: number } };
    assert.equal(typeof latest.cpu_inst?.usage.total, "number");
    assert.equal(latest.memory?.working_set, 28_000_000);
    assert.equal(selectEntries(snap, parseStatsQuery("nope", new URLSearchParams())), undefined);
  });
});
