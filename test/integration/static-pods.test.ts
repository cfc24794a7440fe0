/**
 * Static pods on a real containerd through the real tskubelet command: logs, pod network,
 * restart policies, bad manifests, removal within the grace period, and 30 pods at once.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { ctr, type PrivateContainerd } from "../support/containerd.js";
import { fetchText, podManifest, sleep, startNode, stopNode, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

function mainState(p: V1Pod | undefined): string {
  const s = p?.status?.containerStatuses?.[0]?.state;
  if (s?.running) return "running";
  if (s?.terminated) return `terminated:${s.terminated.exitCode}`;
  return `waiting:${s?.waiting?.reason ?? "?"}`;
}

describe("static pods on containerd", () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  before(async () => ({ rt, k } = await startNode()));
  after(() => stopNode({ rt, k }));

  it("writes a container's output to its log file in the CRI format and upstream layout", async () => {
    await k.writeManifest("logger.yaml", podManifest("logger", { command: ["sh", "-c", "echo out-line; echo err-line >&2; sleep 3600"] }));
    const pod = await waitFor(async () => {
      const p = await k.pod("logger");
      return mainState(p) === "running" ? p : undefined;
    }, { timeoutMs: 30_000, what: () => "logger to run" });
    const uid = pod.metadata?.uid ?? "";
    assert.match(uid, /^[0-9a-f]{32}$/);
    const file = join(k.logsDir, `default_logger-${k.nodeName}_${uid}`, "main", "0.log");
    const text = await waitFor(async () => {
      const t = await readFile(file, "utf8").catch(() => "");
      return t.includes("err-line") ? t : undefined;
    }, { timeoutMs: 10_000, what: () => `both lines in ${file}` });
    assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z stdout F out-line$/m);
    assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z stderr F err-line$/m);
    assert.equal(pod.metadata?.annotations?.["kubernetes.io/config.source"], "file");
    assert.equal(pod.metadata?.annotations?.["kubernetes.io/config.hash"], uid);
    assert.equal(pod.spec?.nodeName, k.nodeName);
  });

  it("serves HTTP on the pod IP of a pod-network pod", async () => {
    await k.writeManifest("web.yaml", podManifest("web", { command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"], ports: [8080] }));
    const pod = await waitFor(async () => {
      const p = await k.pod("web");
      return mainState(p) === "running" && p?.status?.podIP ? p : undefined;
    }, { timeoutMs: 30_000, what: () => "web to run with a pod IP" });
    const ip = pod.status?.podIP ?? "";
    const prefix = rt.subnet.split(".").slice(0, 3).join(".");
    assert.ok(ip.startsWith(prefix + "."), `pod IP ${ip} is in ${rt.subnet}`);
    const body = await waitFor(() => fetchText(`http://${ip}:8080/`, 2000), { timeoutMs: 10_000, what: () => `http://${ip}:8080/` });
    assert.match(body, /tskubelet test image/);
    assert.equal(pod.status?.phase, "Running");
    const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
  });

  it("runs a hostNetwork pod with the node's IP", async () => {
    await k.writeManifest("hostnet.yaml", podManifest("hostnet", { command: ["sleep", "3600"], hostNetwork: true }));
    const pod = await waitFor(async () => {
      const p = await k.pod("hostnet");
      return mainState(p) === "running" ? p : undefined;
    }, { timeoutMs: 30_000, what: () => "hostnet to run" });
    assert.equal(pod.status?.podIP, pod.status?.hostIP);
  });

  const policyCases: { policy: string; exit: number; phase: string; restarts: "none" | "some" }[] = [
    { policy: "Never", exit: 0, phase: "Succeeded", restarts: "none" },
    { policy: "Never", exit: 1, phase: "Failed", restarts: "none" },
    { policy: "OnFailure", exit: 0, phase: "Succeeded", restarts: "none" },
    { policy: "OnFailure", exit: 1, phase: "Running", restarts: "some" },
    { policy: "Always", exit: 0, phase: "Running", restarts: "some" },
  ];
  for (const c of policyCases) {
    it(`restartPolicy ${c.policy} with exit ${c.exit}: phase ${c.phase}, ${c.restarts === "none" ? "never restarted" : "restarted"}`, async () => {
      const name = `rp-${c.policy.toLowerCase()}-${c.exit}`;
      await k.writeManifest(`${name}.yaml`, podManifest(name, { command: ["sh", "-c", `sleep 0.3; exit ${c.exit}`], restartPolicy: c.policy }));
      const pod = await waitFor(async () => {
        const p = await k.pod(name);
        const cs = p?.status?.containerStatuses?.[0];
        if (!cs) return undefined;
        if (c.restarts === "some") return (cs.restartCount ?? 0) >= 1 ? p : undefined;
        return cs.state?.terminated ? p : undefined;
      }, { timeoutMs: 30_000, what: () => `${name} to settle` });
      if (c.restarts === "none") {
        // Give the kubelet a few relists to (wrongly) restart it, then check it did not.
        await new Promise((r) => setTimeout(r, 2500));
        const again = await k.pod(name);
        const cs = again?.status?.containerStatuses?.[0];
        assert.equal(cs?.restartCount, 0);
        assert.equal(cs?.state?.terminated?.exitCode, c.exit);
        assert.equal(cs?.state?.terminated?.reason, c.exit === 0 ? "Completed" : "Error");
        assert.equal(again?.status?.phase, c.phase);
      } else {
        assert.equal(pod.status?.phase, c.phase);
        assert.ok((pod.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1);
        assert.equal(pod.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode, c.exit);
      }
      await k.removeManifest(`${name}.yaml`);
    });
  }

  it("rejects a bad manifest with one line naming file, field and reason, and keeps the others running", async () => {
    const before = await k.pods();
    const longLived = ["logger", "web", "hostnet"].map((n) => `${n}-${k.nodeName}`);
    const runningBefore = before.filter((p) => longLived.includes(p.metadata?.name ?? "") && mainState(p) === "running").map((p) => p.metadata?.uid);
    assert.equal(runningBefore.length, 3);
    const bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\nspec:\n  containers:\n  - name: a\n    image: tskubelet.local/busybox:1.35\n  - name: a\n    image: tskubelet.local/busybox:1.35\n";
    await k.writeManifest("broken.yaml", bad);
    const line = await waitFor(() => k.output().split("\n").find((l) => l.includes("static pod manifest rejected") && l.includes("broken.yaml")), {
      timeoutMs: 10_000,
      what: () => "the rejection log line",
    });
    assert.match(line, /field="spec\.containers\[1\]\.name"/);
    assert.match(line, /Duplicate value: \\"a\\"/);
    const after = await k.pods();
    assert.equal(after.find((p) => p.metadata?.name === `broken-${k.nodeName}`), undefined);
    for (const uid of runningBefore) assert.ok(after.some((p) => p.metadata?.uid === uid && mainState(p) === "running"), `pod ${uid ?? ""} still running`);
    // Fixing the file starts the pod.
    await k.writeManifest("broken.yaml", bad.replace(/- name: a\n {4}image: tskubelet.local\/busybox:1.35\n$/, "- name: b\n    image: tskubelet.local/busybox:1.35\n    command: [sleep, \"3600\"]\n").replace("  - name: a\n    image: tskubelet.local/busybox:1.35\n  - name: b", "  - name: a\n    image: tskubelet.local/busybox:1.35\n    command: [sleep, \"3600\"]\n  - name: b"));
    await waitFor(async () => {
      const p = await k.pod("broken");
      return p?.status?.containerStatuses?.every((s) => s.state?.running) ? p : undefined;
    }, { timeoutMs: 30_000, what: () => "the fixed pod to run" });
    await k.removeManifest("broken.yaml");
  });

  it("stops a removed pod within its grace period and cleans up its containers and logs", async () => {
    // The container ignores SIGTERM, so only the grace period's SIGKILL ends it.
    await k.writeManifest("stubborn.yaml", podManifest("stubborn", { command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"], grace: 3 }));
    const pod = await waitFor(async () => {
      const p = await k.pod("stubborn");
      return mainState(p) === "running" ? p : undefined;
    }, { timeoutMs: 30_000, what: () => "stubborn to run" });
    const uid = pod.metadata?.uid ?? "";
    const t0 = Date.now();
    await k.removeManifest("stubborn.yaml");
    await waitFor(async () => !(await ctr(rt, "-n", "k8s.io", "containers", "ls", `labels."io.kubernetes.pod.uid"==${uid}`)).includes("busybox"), {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: () => "stubborn's containers to be removed",
    });
    const took = Date.now() - t0;
    assert.ok(took >= 2500, `the grace period was honoured (took ${took} ms)`);
    assert.ok(took < 3000 + 4000, `stopped within the grace period plus a margin (took ${took} ms)`);
    await waitFor(async () => !(await readdir(k.logsDir)).some((d) => d.includes(uid)), { timeoutMs: 5_000, what: () => "the pod log directory to be removed" });
    assert.equal(await k.pod("stubborn"), undefined);
  });

  it("waits in ErrImagePull, then ImagePullBackOff, for an image that is not present and cannot be pulled", async () => {
    const manifest = podManifest("noimage", { command: ["sleep", "3600"] }).replace("tskubelet.local/busybox:1.35", "tskubelet.local/missing:1.0");
    await k.writeManifest("noimage.yaml", manifest);
    const reasons = new Set<string>();
    await waitFor(async () => {
      const w = (await k.pod("noimage"))?.status?.containerStatuses?.[0]?.state?.waiting;
      if (w?.reason) reasons.add(w.reason);
      return reasons.has("ErrImagePull") && reasons.has("ImagePullBackOff") ? true : undefined;
    }, { timeoutMs: 40_000, intervalMs: 100, what: () => `ErrImagePull then ImagePullBackOff (seen ${[...reasons].join(", ")})` });
    const w = (await k.pod("noimage"))?.status?.containerStatuses?.[0]?.state?.waiting;
    assert.match(w?.message ?? "", /tskubelet\.local\/missing:1\.0/);
    const p = await k.pod("noimage");
    assert.equal(p?.status?.phase, "Pending");
    await k.removeManifest("noimage.yaml");
  });

  it("starts 30 static pods", async () => {
    for (let i = 0; i < 30; i++) await writeFile(join(k.manifests, `many-${i}.yaml`), podManifest(`many-${i}`, { command: ["sleep", "3600"] }));
    await waitFor(async () => {
      const pods = (await k.pods()).filter((p) => p.metadata?.name?.startsWith("many-"));
      return pods.length === 30 && pods.every((p) => mainState(p) === "running" && p.status?.podIP) ? pods : undefined;
    }, { timeoutMs: 90_000, intervalMs: 250, what: () => "30 pods running" });
    const ips = new Set((await k.pods()).filter((p) => p.metadata?.name?.startsWith("many-")).map((p) => p.status?.podIP));
    assert.equal(ips.size, 30, "each pod has its own IP");
    for (let i = 0; i < 30; i++) await k.removeManifest(`many-${i}.yaml`);
    await waitFor(async () => (await k.pods()).every((p) => !p.metadata?.name?.startsWith("many-")), { timeoutMs: 60_000, what: () => "30 pods removed" });
  });
});

describe("pod syncs after a start", () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  before(async () => ({ rt, k } = await startNode()));
  after(() => stopNode({ rt, k }));

  /** kubelet_pod_worker_duration_seconds_count by operation_type (absent = 0). */
  const workerSyncs = async (): Promise<Record<string, number>> => {
    const text = await fetchText(`http://127.0.0.1:${k.readOnlyPort}/metrics`);
    const counts: Record<string, number> = {};
    for (const m of text.matchAll(/^kubelet_pod_worker_duration_seconds_count\{operation_type="([a-z]+)"\} (\d+)$/gm)) counts[m[1] ?? ""] = Number(m[2]);
    return counts;
  };

  it("a relist that sees what a pod's worker already read does not sync the pod again", async () => {
    const n = 4;
    for (let i = 0; i < n; i++) await k.writeManifest(`quiet-${i}.yaml`, podManifest(`quiet-${i}`, { command: ["sleep", "3600"] }));
    await waitFor(async () => {
      const pods = (await k.pods()).filter((p) => p.metadata?.name?.startsWith("quiet-"));
      return pods.length === n && pods.every((p) => mainState(p) === "running" && p.status?.podIP) ? pods : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250, what: () => `${n} pods running` });
    // Three relists (1 s apart) see each pod's new sandbox and container: news to the relister, not to the workers.
    await sleep(3_500);
    const counts = await workerSyncs();
    assert.equal(counts.create, n, `one create sync per pod: ${JSON.stringify(counts)}`);
    // One relist answered while a worker read the same pod may still count as news (the worker cannot tell
    // which is newer); a sync for every pod means relists poke workers whatever they saw.
    assert.ok((counts.sync ?? 0) <= 1, `syncs after the create: ${JSON.stringify(counts)}`);
    // A real change still reaches the worker: a container that dies is restarted.
    const before = (await k.pod("quiet-0"))?.status?.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, "") ?? "";
    assert.notEqual(before, "");
    await ctr(rt, "tasks", "kill", "-s", "SIGKILL", before);
    await waitFor(async () => {
      const s = (await k.pod("quiet-0"))?.status?.containerStatuses?.[0];
      return s?.restartCount === 1 && s.state?.running ? s : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, what: () => "quiet-0 restarted after its container was killed" });
    assert.ok(((await workerSyncs()).sync ?? 0) >= 1, "the relist that saw the exit synced the pod");
  });
});
