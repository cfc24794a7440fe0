/**
 * The pod manager's evict API on the fake CRI: the evicted pod is killed, ends Failed with reason
 * Evicted and the message, leaves the active pods, and is never started again; others keep running.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { createPodManager, type PodManager } from "../../src/pods/manager.js";
import { createStatusManager, type StatusManager } from "../../src/pods/status-manager.js";
import { systemClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";
import { FakeCri } from "../support/fake-cri.js";
import { fakeWorkerEnv } from "../support/worker-env.js";

function apiPod(name: string): V1Pod {
  return {
    metadata: { name, namespace: "default", uid: `uid-${name}`, annotations: { "kubernetes.io/config.source": "api" } },
    spec: { containers: [{ name: "main", image: "tskubelet.local/busybox:1.35", command: ["sleep", "3600"] }], terminationGracePeriodSeconds: 30, hostNetwork: true },
  };
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

describe("pod manager: evict", () => {
  let dir: string;
  let cri: FakeCri;
  let pods: PodManager;
  let statuses: StatusManager;
  const events: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tskubelet-evict-"));
    cri = new FakeCri();
    const { logger } = memoryLogger(0);
    const clock = systemClock;
    statuses = createStatusManager();
    pods = createPodManager({
      ...fakeWorkerEnv({
        cri,
        clock,
        logger,
        rootDir: dir,
        events: (p, type, reason) => events.push(`${p.metadata?.name ?? ""} ${type} ${reason}`),
        setStatus: (p, s) => statuses.setStatus(p, s),
        getStatus: (uid) => statuses.getStatus(uid),
      }),
      statuses,
    });
  });
  after(async () => {
    pods.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("kills the pod, ends it Failed/Evicted with the message, and never runs it again", async () => {
    pods.setSourcePods("api", [apiPod("victim"), apiPod("bystander")]);
    await until("both pods running", () => ["uid-victim", "uid-bystander"].every((u) => statuses.getStatus(u)?.phase === "Running"));
    assert.deepEqual(pods.activePods().map((p) => p.metadata?.name).sort(), ["bystander", "victim"]);

    const message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. ";
    const ok = await pods.evict("uid-victim", 0, { reason: "Evicted", message });
    assert.equal(ok, true);
    const st = statuses.getStatus("uid-victim");
    assert.equal(st?.phase, "Failed");
    assert.equal(st?.reason, "Evicted");
    assert.equal(st?.message, message);
    assert.ok(st?.containerStatuses?.[0]?.state?.terminated, "its container is terminated");
    const dt = st?.conditions?.find((c) => c.type === "DisruptionTarget");
    assert.deepEqual([dt?.status, dt?.reason, dt?.message], ["True", "TerminationByKubelet", message]);
    assert.deepEqual(pods.activePods().map((p) => p.metadata?.name), ["bystander"]);
    assert.ok(events.includes("victim Normal Killing"));

    // The source still lists it (as the apiserver does until the pod is deleted): it is not started again.
    pods.setSourcePods("api", [apiPod("victim"), apiPod("bystander")]);
    assert.equal(pods.workerCount(), 1, "no worker for the evicted pod");
    const sandboxes = await cri.listPodSandbox();
    assert.deepEqual(sandboxes.map((s) => s.metadata.name), ["bystander"]);
    assert.equal(statuses.getStatus("uid-victim")?.phase, "Failed");
    assert.equal(statuses.getStatus("uid-bystander")?.phase, "Running");

    assert.equal(await pods.evict("uid-victim", 0, { reason: "Evicted", message }), false, "not running here any more");
    assert.equal(await pods.evict("uid-unknown", 0, { reason: "Evicted", message }), false);

    // Once it leaves the source, its status goes too.
    pods.setSourcePods("api", [apiPod("bystander")]);
    assert.equal(statuses.getStatus("uid-victim"), undefined);
  });
});
