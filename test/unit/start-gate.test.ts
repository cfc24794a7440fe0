/**
 * --max-parallel-pod-starts in the pod worker: a new pod's first start (sandbox and containers)
 * waits for a turn; its first status does not; later syncs of a running pod never wait.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { FakeCri } from "../support/fake-cri.js";
import { fakeWorkerEnv } from "../support/worker-env.js";
import { createPodWorker, type PodWorker } from "../../src/pods/worker.js";
import { createLimiter, type Limiter } from "../../src/util/limiter.js";
import { createLogger } from "../../src/util/log.js";
import { FakeClock } from "../../src/util/clock.js";

const IMAGE = "tskubelet.local/busybox:1.35";
const quiet = createLogger({ verbosity: 0, sink: { write: () => undefined } });

function mkPod(name: string): V1Pod {
  return {
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: { terminationGracePeriodSeconds: 1, containers: [{ name: "app", image: IMAGE, command: ["sleep", "3600"] }] },
  };
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 30; i++) await new Promise((r) => setTimeout(r, 1));
};

describe("pod worker: the start gate", async () => {
  const root = await mkdtemp(join(tmpdir(), "tsk-start-gate-"));
  const workers: PodWorker[] = [];
  after(async () => {
    for (const w of workers) w.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("a pod starts only when it has a turn, is reported Pending meanwhile, and a later sync does not wait", async () => {
    const clock = new FakeClock();
    const cri = new FakeCri({ clock });
    const statuses = new Map<string, V1PodStatus>();
    // A gate whose single turn the test holds until it lets go.
    const inner = createLimiter(1);
    let letGo!: () => void;
    const held = inner(() => new Promise<void>((r) => (letGo = r)));
    let asked = 0;
    const gate: Limiter = (fn) => {
      asked++;
      return inner(fn);
    };
    const env = fakeWorkerEnv(
      { cri, clock, logger: quiet, rootDir: root, events: () => undefined, setStatus: (p, s) => statuses.set(p.metadata?.uid ?? "", s), getStatus: (uid) => statuses.get(uid) },
      { startGate: gate },
    );
    const w = createPodWorker(mkPod("gated"), env);
    workers.push(w);
    await settle();
    assert.equal(asked, 1);
    assert.equal(cri.calls.filter((c) => c.op === "runPodSandbox").length, 0, "no sandbox without a turn");
    assert.equal(statuses.get("uid-gated")?.phase, "Pending", "the first status is written while the pod waits");
    assert.equal(statuses.get("uid-gated")?.containerStatuses?.[0]?.state?.waiting?.reason, "ContainerCreating");
    letGo();
    await held;
    await w.done;
    assert.equal(cri.calls.filter((c) => c.op === "runPodSandbox").length, 1);
    assert.ok(statuses.get("uid-gated")?.containerStatuses?.[0]?.state?.running);
    // A resync of the running pod does not ask for a turn.
    const lists = cri.calls.filter((c) => c.op === "listContainers").length;
    await clock.advance(60_000);
    await settle();
    assert.ok(cri.calls.filter((c) => c.op === "listContainers").length > lists, "the resync ran");
    assert.equal(asked, 1);
  });
});
