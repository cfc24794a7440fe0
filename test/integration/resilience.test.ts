/**
 * tskubelet and containerd restarting under each other: adoption by CRI labels (same container IDs,
 * no duplicates), orphans of removed pods cleaned up, the runtime going away and coming back,
 * and crash-loop backoff observed on a real runtime.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { ctr, type PrivateContainerd } from "../support/containerd.js";
import { podManifest, sleep, startNode, stopNode, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

const running = (p: V1Pod | undefined): boolean => p?.status?.containerStatuses?.[0]?.state?.running !== undefined;
const containerID = (p: V1Pod | undefined): string => p?.status?.containerStatuses?.[0]?.containerID ?? "";

async function runtimeContainers(rt: PrivateContainerd, podName: string): Promise<string[]> {
  // The sandbox's pause container carries the pod labels too; count only the app container.
  const out = await ctr(rt, "-n", "k8s.io", "containers", "ls", "-q", `labels."io.kubernetes.pod.name"==${podName},labels."io.kubernetes.container.name"==main`);
  return out.split("\n").filter((l) => l.trim() !== "");
}

describe("restarts and runtime outages", () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  before(async () => ({ rt, k } = await startNode()));
  after(() => stopNode({ rt, k }));

  it("adopts running containers after a tskubelet restart and cleans up pods removed meanwhile", async () => {
    await k.writeManifest("keep.yaml", podManifest("keep", { command: ["sleep", "3600"] }));
    await k.writeManifest("host.yaml", podManifest("host", { command: ["sleep", "3600"], hostNetwork: true }));
    await k.writeManifest("gone.yaml", podManifest("gone", { command: ["sleep", "3600"], grace: 1 }));
    await waitFor(async () => {
      const pods = await k.pods();
      return pods.length === 3 && pods.every(running) ? pods : undefined;
    }, { timeoutMs: 30_000, what: () => "3 pods running" });
    const before = new Map((await k.pods()).map((p) => [p.metadata?.name ?? "", containerID(p)]));
    const keepContainers = await runtimeContainers(rt, `keep-${k.nodeName}`);

    await k.stop();
    // Pods keep running while tskubelet is down.
    assert.deepEqual(await runtimeContainers(rt, `keep-${k.nodeName}`), keepContainers);
    await k.removeManifest("gone.yaml");
    await k.restart();

    const after = await waitFor(async () => {
      const pods = await k.pods();
      return pods.length === 2 && pods.every(running) ? pods : undefined;
    }, { timeoutMs: 30_000, what: () => "the 2 remaining pods running again" });
    for (const p of after) assert.equal(containerID(p), before.get(p.metadata?.name ?? ""), `${p.metadata?.name ?? ""} kept its container`);
    // Give it a few relists to (wrongly) start duplicates.
    await sleep(3000);
    assert.deepEqual(await runtimeContainers(rt, `keep-${k.nodeName}`), keepContainers, "no duplicate containers");
    await waitFor(async () => (await runtimeContainers(rt, `gone-${k.nodeName}`)).length === 0, { timeoutMs: 20_000, what: () => "the orphaned pod's containers to be removed" });
    assert.equal((await k.pods()).find((p) => p.metadata?.name === `gone-${k.nodeName}`), undefined);
  });

  it("survives containerd going away: healthz names the runtime, pods converge when it is back", async () => {
    const keepBefore = containerID(await k.pod("keep"));
    assert.notEqual(keepBefore, "");
    await rt.kill();
    const down = await waitFor(async () => {
      const h = await k.healthz();
      return h.status === 500 ? h : undefined;
    }, { timeoutMs: 30_000, what: () => "healthz to report the runtime down" });
    assert.match(down.body, /\[-\]runtime failed: reason withheld/);
    assert.match(k.output(), /"health check failed" check="runtime" reason="container runtime is down"/);
    assert.match(k.output(), /container runtime is not answering; will retry.*endpoint="unix:\/\/[^"]+containerd\.sock"/);
    // A pod added while the runtime is down starts once it is back.
    await k.writeManifest("late.yaml", podManifest("late", { command: ["sleep", "3600"] }));
    await sleep(1500);
    await rt.startAgain();
    await waitFor(async () => ((await k.healthz()).status === 200 ? true : undefined), { timeoutMs: 30_000, what: () => "healthz ok again" });
    await waitFor(async () => (running(await k.pod("late")) ? true : undefined), { timeoutMs: 30_000, what: () => "the late pod to run" });
    assert.equal(containerID(await k.pod("keep")), keepBefore, "the running pod was not restarted");
    assert.equal((await runtimeContainers(rt, `keep-${k.nodeName}`)).length, 1);
  });

  it("backs off a crash-looping container: 10 s after the second exit, then 20 s", async () => {
    await k.writeManifest("crash.yaml", podManifest("crash", { command: ["sh", "-c", "exit 1"] }));
    const seen: { t: number; restarts: number; reason: string; message: string }[] = [];
    await waitFor(async () => {
      const cs = (await k.pod("crash"))?.status?.containerStatuses?.[0];
      if (cs) {
        const reason = cs.state?.waiting?.reason ?? (cs.state?.running ? "Running" : `terminated:${cs.state?.terminated?.reason ?? ""}`);
        const last = seen[seen.length - 1];
        if (!last || last.restarts !== cs.restartCount || last.reason !== reason) seen.push({ t: Date.now(), restarts: cs.restartCount, reason, message: cs.state?.waiting?.message ?? "" });
      }
      return (cs?.restartCount ?? 0) >= 3 ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 100, what: () => `3 restarts; seen ${JSON.stringify(seen)}` });
    const firstAt = (n: number): number => seen.find((s) => s.restarts === n)?.t ?? NaN;
    assert.ok(seen.some((s) => s.reason === "CrashLoopBackOff"), `CrashLoopBackOff seen in ${JSON.stringify(seen)}`);
    const gap2 = firstAt(2) - firstAt(1);
    const gap3 = firstAt(3) - firstAt(2);
    assert.ok(gap2 >= 9_000 && gap2 < 14_000, `second restart ~10 s after the first (${gap2} ms)`);
    assert.ok(gap3 >= 19_000 && gap3 < 25_000, `third restart ~20 s after the second (${gap3} ms)`);
    const p = await k.pod("crash");
    assert.equal(p?.status?.phase, "Running");
    const waitingMessages = seen.filter((s) => s.reason === "CrashLoopBackOff").map((s) => s.message);
    assert.match(waitingMessages[0] ?? "", /^back-off 10s restarting failed container=main pod=crash-it-node_default\([0-9a-f]{32}\)$/);
    assert.match(waitingMessages[1] ?? "", /^back-off 20s restarting failed container=main pod=crash-it-node_default\(/);
    await k.removeManifest("crash.yaml");
  });
});
