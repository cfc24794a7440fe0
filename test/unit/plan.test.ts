import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { containerHash } from "../../src/containers/container.js";
import { CRASHLOOP_BACKOFF, createBackoff, type Backoff } from "../../src/pods/backoff.js";
import { backoffKey, computePodActions, type PodActions } from "../../src/pods/plan.js";
import { runtimeFingerprint, type ContainerInfo, type RuntimePod, type SandboxInfo } from "../../src/pods/runtime-state.js";
import { FakeClock } from "../../src/util/clock.js";
import type { ProbeFailure, ProbeVerdicts } from "../../src/pods/probe-verdicts.js";

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

function mkPod(opts: { restartPolicy?: string; hostNetwork?: boolean; containers?: string[] } = {}): V1Pod {
  const containers: V1Container[] = (opts.containers ?? ["main"]).map((name) => ({ name, image: "nginx:1.25", imagePullPolicy: "IfNotPresent" }));
  const pod: V1Pod = { metadata: { name: "web-node1", namespace: "default", uid: "uid-1" }, spec: { containers } };
  if (opts.restartPolicy !== undefined && pod.spec) pod.spec.restartPolicy = opts.restartPolicy;
  if (opts.hostNetwork !== undefined && pod.spec) pod.spec.hostNetwork = opts.hostNetwork;
  return pod;
}

function specOf(pod: V1Pod, name: string): V1Container {
  const c = pod.spec?.containers.find((x) => x.name === name);
  assert.ok(c, name);
  return c;
}

function sb(id: string, over: Partial<SandboxInfo> = {}): SandboxInfo {
  return { id, attempt: 0, state: "SANDBOX_READY", createdAtMs: NOW - 100_000, ip: "10.244.0.5", ips: ["10.244.0.5"], hostNetwork: false, ...over };
}

function ctr(pod: V1Pod, name: string, over: Partial<ContainerInfo> = {}): ContainerInfo {
  const spec = pod.spec?.containers.find((x) => x.name === name);
  return {
    id: `${name}-${over.restartCount ?? 0}`,
    sandboxId: "sb1",
    name,
    attempt: over.restartCount ?? 0,
    restartCount: 0,
    state: "CONTAINER_RUNNING",
    createdAtMs: NOW - 50_000,
    startedAtMs: NOW - 49_000,
    finishedAtMs: 0,
    exitCode: 0,
    reason: "",
    message: "",
    hash: spec ? containerHash(spec) : "deadbeef",
    image: "nginx:1.25",
    imageRef: "sha256:abc",
    logPath: `${name}/0.log`,
    graceSeconds: 30,
    ...over,
  };
}

function exited(pod: V1Pod, name: string, exitCode: number, over: Partial<ContainerInfo> = {}): ContainerInfo {
  return ctr(pod, name, { state: "CONTAINER_EXITED", exitCode, finishedAtMs: NOW - 60_000, reason: exitCode === 0 ? "Completed" : "Error", ...over });
}

function rt(sandboxes: SandboxInfo[], containers: ContainerInfo[]): RuntimePod {
  return { uid: "uid-1", name: "web-node1", namespace: "default", sandboxes, containers, fingerprint: runtimeFingerprint(sandboxes, containers) };
}

function plan(pod: V1Pod, runtime: RuntimePod, backoff?: Backoff): PodActions {
  const crashBackoff = backoff ?? createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) });
  return computePodActions({ pod, runtime, crashBackoff, nowMs: NOW });
}

const started = (a: PodActions): [string, number][] => a.containersToStart.map((s) => [s.container.name, s.restartCount]);
const killed = (a: PodActions): string[] => a.containersToKill.map((k) => k.id);

describe("computePodActions: sandbox", () => {
  it("no sandbox: create one (attempt 0) and start every container with restartCount 0", () => {
    const pod = mkPod({ containers: ["main", "sidecar"] });
    const a = plan(pod, rt([], []));
    assert.equal(a.createSandbox, true);
    assert.equal(a.sandboxAttempt, 0);
    assert.equal(a.killPod, false, "nothing to kill");
    assert.equal(a.sandbox, undefined);
    assert.deepEqual(started(a), [["main", 0], ["sidecar", 0]]);
    assert.ok(a.containersToStart.every((s) => s.afterExit === undefined));
    assert.deepEqual(a.containersToKill, []);
    assert.equal(a.wakeAtMs, undefined);
  });

  it("ready sandbox and running container with a matching hash: nothing to do", () => {
    const pod = mkPod();
    const sandbox = sb("sb1");
    const a = plan(pod, rt([sandbox], [ctr(pod, "main")]));
    assert.equal(a.createSandbox, false);
    assert.equal(a.killPod, false);
    assert.equal(a.sandbox?.id, "sb1");
    assert.deepEqual(a.containersToStart, []);
    assert.deepEqual(a.containersToKill, []);
    assert.deepEqual(a.containersToRemove, []);
    assert.deepEqual(a.sandboxesToRemove, []);
    assert.equal(a.waiting.size, 0);
    assert.equal(a.wakeAtMs, undefined);
  });

  it("NOTREADY newest sandbox: kill the pod and create a new sandbox with attempt+1; containers restart with restartCount+1", () => {
    const pod = mkPod();
    const a = plan(pod, rt([sb("sb1", { state: "SANDBOX_NOTREADY", attempt: 2 })], [ctr(pod, "main", { restartCount: 3 })]));
    assert.equal(a.killPod, true, "its container still runs");
    assert.equal(a.createSandbox, true);
    assert.equal(a.sandboxAttempt, 3);
    assert.deepEqual(started(a), [["main", 4]]);
  });

  it("NOTREADY sandbox whose containers all exited: no kill needed, but a new sandbox under Always", () => {
    const pod = mkPod();
    const a = plan(pod, rt([sb("sb1", { state: "SANDBOX_NOTREADY" })], [exited(pod, "main", 0)]));
    assert.equal(a.killPod, false);
    assert.equal(a.createSandbox, true);
    assert.equal(a.sandboxAttempt, 1);
    assert.deepEqual(started(a), [["main", 1]]);
  });

  it("NOTREADY sandbox under Never after the containers ran: no new sandbox", () => {
    for (const code of [0, 1]) {
      const pod = mkPod({ restartPolicy: "Never" });
      const a = plan(pod, rt([sb("sb1", { state: "SANDBOX_NOTREADY" })], [exited(pod, "main", code)]));
      assert.equal(a.createSandbox, false, `exit ${code}`);
      assert.deepEqual(a.containersToStart, [], `exit ${code}`);
    }
  });

  it("NOTREADY sandbox under Never before any container ran: retry the sandbox", () => {
    const pod = mkPod({ restartPolicy: "Never" });
    const a = plan(pod, rt([sb("sb1", { state: "SANDBOX_NOTREADY" })], []));
    assert.equal(a.createSandbox, true);
    assert.equal(a.sandboxAttempt, 1);
    assert.deepEqual(started(a), [["main", 0]]);
  });

  it("NOTREADY sandbox under OnFailure: succeeded containers are not started again", () => {
    const pod = mkPod({ restartPolicy: "OnFailure", containers: ["ok", "bad"] });
    const a = plan(pod, rt([sb("sb1", { state: "SANDBOX_NOTREADY" })], [exited(pod, "ok", 0), exited(pod, "bad", 2)]));
    assert.equal(a.createSandbox, true);
    assert.deepEqual(started(a), [["bad", 1]]);
    const b = plan(pod, rt([sb("sb1", { state: "SANDBOX_NOTREADY" })], [exited(pod, "ok", 0), exited(pod, "bad", 0)]));
    assert.equal(b.createSandbox, false, "everything succeeded: the pod is done");
  });

  it("a new sandbox still honours the crash-loop backoff of a container that just failed (upstream doBackOff on every start)", () => {
    const pod = mkPod();
    const clock = new FakeClock(NOW);
    const backoff = createBackoff({ ...CRASHLOOP_BACKOFF, clock });
    const finishedAt = NOW - 5_000;
    backoff.next(backoffKey(pod, "main"), finishedAt);
    const a = plan(pod, rt([sb("sb1", { state: "SANDBOX_NOTREADY" })], [exited(pod, "main", 1, { finishedAtMs: finishedAt })]), backoff);
    assert.equal(a.createSandbox, true);
    assert.deepEqual(started(a), [], "main is still backing off");
    assert.equal(a.waiting.get("main")?.reason, "CrashLoopBackOff");
  });

  it("hostNetwork mismatch between pod and sandbox: new sandbox", () => {
    const pod = mkPod({ hostNetwork: true });
    const a = plan(pod, rt([sb("sb1", { hostNetwork: false })], [ctr(pod, "main")]));
    assert.equal(a.createSandbox, true);
    assert.equal(a.killPod, true);
    assert.equal(a.sandboxAttempt, 1);

    const pod2 = mkPod({ hostNetwork: false });
    const b = plan(pod2, rt([sb("sb1", { hostNetwork: true, ip: "", ips: [] })], [ctr(pod2, "main")]));
    assert.equal(b.createSandbox, true);
  });

  it("a hostNetwork sandbox needs no IP; a pod-network sandbox without an IP is replaced", () => {
    const host = mkPod({ hostNetwork: true });
    const a = plan(host, rt([sb("sb1", { hostNetwork: true, ip: "", ips: [] })], [ctr(host, "main")]));
    assert.equal(a.createSandbox, false);
    const pod = mkPod();
    const b = plan(pod, rt([sb("sb1", { ip: "", ips: [] })], [ctr(pod, "main")]));
    assert.equal(b.createSandbox, true);
  });
});

describe("computePodActions: containers in a ready sandbox", () => {
  it("hash changed: kill and start with restartCount+1", () => {
    const pod = mkPod();
    const a = plan(pod, rt([sb("sb1")], [ctr(pod, "main", { hash: "00000000", restartCount: 2 })]));
    assert.deepEqual(killed(a), ["main-2"]);
    assert.match(a.containersToKill[0]?.message ?? "", /definition changed/);
    assert.deepEqual(started(a), [["main", 3]]);
    assert.equal(a.containersToStart[0]?.afterExit, undefined, "a spec change is not a crash");
    assert.equal(a.createSandbox, false);
  });

  it("a resources-only change does not change the hash", () => {
    const pod = mkPod();
    const running = ctr(pod, "main");
    specOf(pod, "main").resources = { limits: { cpu: "2" } };
    const a = plan(pod, rt([sb("sb1")], [running]));
    assert.deepEqual(a.containersToKill, []);
    assert.deepEqual(a.containersToStart, []);
  });

  it("a missing container is started with restartCount 0", () => {
    const pod = mkPod({ containers: ["main", "sidecar"] });
    const a = plan(pod, rt([sb("sb1")], [ctr(pod, "main")]));
    assert.deepEqual(started(a), [["sidecar", 0]]);
  });

  it("exit codes under each restart policy", () => {
    const table: { policy: string; code: number; restart: boolean }[] = [
      { policy: "Always", code: 0, restart: true },
      { policy: "Always", code: 1, restart: true },
      { policy: "OnFailure", code: 0, restart: false },
      { policy: "OnFailure", code: 1, restart: true },
      { policy: "OnFailure", code: 137, restart: true },
      { policy: "Never", code: 0, restart: false },
      { policy: "Never", code: 1, restart: false },
    ];
    for (const row of table) {
      const pod = mkPod({ restartPolicy: row.policy });
      const finishedAt = NOW - 60_000;
      const a = plan(pod, rt([sb("sb1")], [exited(pod, "main", row.code, { restartCount: 4, finishedAtMs: finishedAt })]));
      const what = `${row.policy} exit ${row.code}`;
      assert.equal(a.createSandbox, false, what);
      if (row.restart) {
        assert.deepEqual(started(a), [["main", 5]], what);
        assert.deepEqual(a.containersToStart[0]?.afterExit, { finishedAtMs: finishedAt }, what);
      } else {
        assert.deepEqual(a.containersToStart, [], what);
      }
      assert.equal(a.waiting.size, 0, what);
    }
  });

  it("the default restart policy is Always", () => {
    const pod = mkPod();
    assert.equal(pod.spec?.restartPolicy, undefined);
    const a = plan(pod, rt([sb("sb1")], [exited(pod, "main", 0)]));
    assert.deepEqual(started(a), [["main", 1]]);
  });

  it("crash-loop backoff: waiting CrashLoopBackOff with upstream's message, wakeAtMs at the end of the backoff", () => {
    const pod = mkPod({ containers: ["main", "other"] });
    const clock = new FakeClock(NOW);
    const backoff = createBackoff({ ...CRASHLOOP_BACKOFF, clock });
    const mainFinished = NOW - 5_000;
    const otherFinished = NOW - 20_000;
    // main: second failure → 20s; other: 5th failure → 160s
    backoff.next(backoffKey(pod, "main"), mainFinished - 60_000);
    backoff.next(backoffKey(pod, "main"), mainFinished);
    for (let i = 0; i < 5; i++) backoff.next(backoffKey(pod, "other"), otherFinished);
    const a = plan(
      pod,
      rt([sb("sb1")], [exited(pod, "main", 1, { finishedAtMs: mainFinished, restartCount: 1 }), exited(pod, "other", 1, { finishedAtMs: otherFinished, restartCount: 4 })]),
      backoff,
    );
    assert.deepEqual(a.containersToStart, []);
    assert.deepEqual(a.waiting.get("main"), {
      reason: "CrashLoopBackOff",
      message: "back-off 20s restarting failed container=main pod=web-node1_default(uid-1)",
    });
    assert.equal(a.waiting.get("other")?.message, "back-off 2m40s restarting failed container=other pod=web-node1_default(uid-1)");
    assert.equal(a.wakeAtMs, mainFinished + 20_000, "the earliest backoff end");
  });

  it("at the 300s cap the message says 5m0s", () => {
    const pod = mkPod();
    const backoff = createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) });
    const finishedAt = NOW - 1_000;
    for (let i = 0; i < 10; i++) backoff.next(backoffKey(pod, "main"), finishedAt);
    const a = plan(pod, rt([sb("sb1")], [exited(pod, "main", 1, { finishedAtMs: finishedAt })]), backoff);
    assert.match(a.waiting.get("main")?.message ?? "", /^back-off 5m0s restarting failed container=main pod=web-node1_default\(uid-1\)$/);
    assert.equal(a.wakeAtMs, finishedAt + 300_000);
  });

  it("once the backoff has passed the container is started, with afterExit so the backoff grows", () => {
    const pod = mkPod();
    const backoff = createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) });
    const finishedAt = NOW - 10_000;
    backoff.next(backoffKey(pod, "main"), finishedAt);
    const a = plan(pod, rt([sb("sb1")], [exited(pod, "main", 1, { finishedAtMs: finishedAt, restartCount: 1 })]), backoff);
    assert.deepEqual(started(a), [["main", 2]]);
    assert.deepEqual(a.containersToStart[0]?.afterExit, { finishedAtMs: finishedAt });
    assert.equal(a.waiting.size, 0);
  });

  it("a created-but-never-started container is removed and started again with the same restartCount", () => {
    const pod = mkPod();
    const a = plan(pod, rt([sb("sb1")], [ctr(pod, "main", { state: "CONTAINER_CREATED", restartCount: 2 })]));
    assert.deepEqual(a.containersToRemove, ["main-2"]);
    assert.deepEqual(started(a), [["main", 2]]);
  });

  it("a running container not in the spec is killed", () => {
    const pod = mkPod();
    const a = plan(pod, rt([sb("sb1")], [ctr(pod, "main"), ctr(pod, "removed-sidecar", { id: "old-1" })]));
    assert.deepEqual(killed(a), ["old-1"]);
    assert.equal(a.containersToKill[0]?.name, "removed-sidecar");
    assert.deepEqual(a.containersToStart, []);
  });

  it("a container still running in an old sandbox is killed and started in the current one", () => {
    const pod = mkPod();
    const a = plan(pod, rt([sb("sb2", { attempt: 1, createdAtMs: NOW - 1000 }), sb("sb1", { state: "SANDBOX_NOTREADY" })], [ctr(pod, "main", { sandboxId: "sb1", restartCount: 1 })]));
    assert.equal(a.sandbox?.id, "sb2");
    assert.deepEqual(killed(a), ["main-1"]);
    assert.deepEqual(started(a), [["main", 2]]);
  });

  it("an older running instance of a spec container (not the newest) is killed, once", () => {
    const pod = mkPod();
    const newest = ctr(pod, "main", { id: "new", restartCount: 1, createdAtMs: NOW - 1000 });
    const stale = ctr(pod, "main", { id: "stale", restartCount: 0, createdAtMs: NOW - 90_000 });
    const a = plan(pod, rt([sb("sb1")], [newest, stale]));
    assert.deepEqual(killed(a), ["stale"]);
    assert.deepEqual(a.containersToStart, []);
  });
});

describe("computePodActions: garbage collection", () => {
  it("keeps the newest dead container per name and removes older ones", () => {
    const pod = mkPod({ containers: ["main", "side"] });
    const runtime = rt(
      [sb("sb1")],
      [
        ctr(pod, "main", { id: "m3", restartCount: 3, createdAtMs: NOW - 1_000 }),
        exited(pod, "main", 1, { id: "m2", restartCount: 2, createdAtMs: NOW - 2_000 }),
        exited(pod, "side", 0, { id: "s1", restartCount: 1, createdAtMs: NOW - 2_500 }),
        exited(pod, "main", 1, { id: "m1", restartCount: 1, createdAtMs: NOW - 3_000 }),
        exited(pod, "side", 0, { id: "s0", restartCount: 0, createdAtMs: NOW - 3_500 }),
        exited(pod, "main", 1, { id: "m0", restartCount: 0, createdAtMs: NOW - 4_000 }),
      ],
    );
    const a = plan(pod, runtime);
    assert.deepEqual([...a.containersToRemove].sort(), ["m0", "m1", "s0"]);
  });

  it("when the newest instance is dead it is the one kept", () => {
    const pod = mkPod({ restartPolicy: "Never" });
    const a = plan(pod, rt([sb("sb1")], [exited(pod, "main", 1, { id: "m1", restartCount: 1, createdAtMs: NOW - 1_000 }), exited(pod, "main", 1, { id: "m0", createdAtMs: NOW - 2_000 })]));
    assert.deepEqual(a.containersToRemove, ["m0"]);
  });

  it("removes empty NOTREADY old sandboxes, keeps the current one and old ones still holding a kept container", () => {
    const pod = mkPod();
    const runtime = rt(
      [sb("sb3", { attempt: 2, createdAtMs: NOW - 1_000 }), sb("sb2", { attempt: 1, state: "SANDBOX_NOTREADY", createdAtMs: NOW - 2_000 }), sb("sb1", { state: "SANDBOX_NOTREADY", createdAtMs: NOW - 3_000 }), sb("sb0", { state: "SANDBOX_NOTREADY", createdAtMs: NOW - 4_000 })],
      [
        ctr(pod, "main", { id: "m2", sandboxId: "sb3", restartCount: 2, createdAtMs: NOW - 900 }),
        exited(pod, "main", 1, { id: "m1", sandboxId: "sb2", restartCount: 1, createdAtMs: NOW - 1_900 }),
        exited(pod, "main", 1, { id: "m0", sandboxId: "sb1", restartCount: 0, createdAtMs: NOW - 2_900 }),
      ],
    );
    const a = plan(pod, runtime);
    assert.deepEqual(a.containersToRemove, ["m0"]);
    // sb2 holds m1 (kept for logs --previous); sb1 only holds m0, which is being removed; sb0 is empty
    assert.deepEqual([...a.sandboxesToRemove].sort(), ["sb0", "sb1"]);
  });

  it("a ready old sandbox is never removed by GC (it is killed first)", () => {
    const pod = mkPod();
    const a = plan(pod, rt([sb("sb2", { attempt: 1, createdAtMs: NOW - 1_000 }), sb("sb1", { createdAtMs: NOW - 2_000 })], [ctr(pod, "main", { sandboxId: "sb2" })]));
    assert.deepEqual(a.sandboxesToRemove, []);
  });

  it("GC also runs when a new sandbox is planned", () => {
    const pod = mkPod();
    const a = plan(
      pod,
      rt([sb("sb1", { state: "SANDBOX_NOTREADY", createdAtMs: NOW - 1_000 }), sb("sb0", { state: "SANDBOX_NOTREADY", createdAtMs: NOW - 2_000 })], [exited(pod, "main", 1, { id: "m1", restartCount: 1 }), exited(pod, "main", 1, { id: "m0", sandboxId: "sb0", createdAtMs: NOW - 99_000 })]),
    );
    assert.equal(a.createSandbox, true);
    assert.deepEqual(a.containersToRemove, ["m0"]);
    assert.deepEqual(a.sandboxesToRemove, ["sb0"]);
  });
});

/** A fake prober: verdicts per container ID. */
function verdicts(v: { ready?: Record<string, boolean>; started?: Record<string, boolean>; failed?: Record<string, ProbeFailure> }): ProbeVerdicts {
  return {
    ready: (_uid, id) => v.ready?.[id],
    started: (_uid, id) => v.started?.[id],
    failed: (_uid, id) => v.failed?.[id],
  };
}

describe("computePodActions: probe verdicts", () => {
  const liveness = (grace?: number): ProbeFailure => ({ probe: "Liveness", message: "Container main failed liveness probe, will be restarted", terminationGracePeriodSeconds: grace });

  it("a failed liveness probe kills the container with the probe's message and restarts it with restartCount+1", () => {
    const pod = mkPod();
    const c = ctr(pod, "main", { restartCount: 2, id: "main-2" });
    const a = computePodActions({ pod, runtime: rt([sb("sb1")], [c]), crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) }), nowMs: NOW, probes: verdicts({ failed: { "main-2": liveness() } }) });
    assert.deepEqual(a.containersToKill, [{ id: "main-2", name: "main", message: "Container main failed liveness probe, will be restarted", graceSeconds: undefined }]);
    assert.deepEqual(started(a), [["main", 3]]);
    assert.deepEqual(a.containersToStart[0]?.afterExit, { finishedAtMs: NOW }, "counted as an exit now for the backoff");
  });

  it("the kill uses the probe's terminationGracePeriodSeconds, else the pod's", () => {
    const pod = mkPod();
    if (pod.spec) pod.spec.terminationGracePeriodSeconds = 45;
    const c = ctr(pod, "main");
    const withProbe = computePodActions({ pod, runtime: rt([sb("sb1")], [c]), crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) }), nowMs: NOW, probes: verdicts({ failed: { [c.id]: liveness(5) } }) });
    assert.equal(withProbe.containersToKill[0]?.graceSeconds, 5);
    const withPod = computePodActions({ pod, runtime: rt([sb("sb1")], [c]), crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) }), nowMs: NOW, probes: verdicts({ failed: { [c.id]: liveness() } }) });
    assert.equal(withPod.containersToKill[0]?.graceSeconds, 45);
  });

  it("under Never the container is killed and not restarted; under OnFailure it is restarted", () => {
    const never = mkPod({ restartPolicy: "Never" });
    const c = ctr(never, "main");
    const a = computePodActions({ pod: never, runtime: rt([sb("sb1")], [c]), crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) }), nowMs: NOW, probes: verdicts({ failed: { [c.id]: liveness() } }) });
    assert.deepEqual(killed(a), [c.id]);
    assert.deepEqual(a.containersToStart, []);
    const onFailure = mkPod({ restartPolicy: "OnFailure" });
    const b = computePodActions({ pod: onFailure, runtime: rt([sb("sb1")], [c]), crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) }), nowMs: NOW, probes: verdicts({ failed: { [c.id]: liveness() } }) });
    assert.deepEqual(killed(b), [c.id]);
    assert.deepEqual(started(b), [["main", 1]]);
  });

  it("a container already in crash-loop backoff is killed but waits with CrashLoopBackOff", () => {
    const pod = mkPod();
    const clock = new FakeClock(NOW);
    const backoff = createBackoff({ ...CRASHLOOP_BACKOFF, clock });
    backoff.next(backoffKey(pod, "main"), NOW - 1000);
    const c = ctr(pod, "main", { restartCount: 1, id: "main-1" });
    const a = computePodActions({ pod, runtime: rt([sb("sb1")], [c]), crashBackoff: backoff, nowMs: NOW, probes: verdicts({ failed: { "main-1": { probe: "Startup", message: "Container main failed startup probe, will be restarted", terminationGracePeriodSeconds: undefined } } }) });
    assert.deepEqual(killed(a), ["main-1"]);
    assert.deepEqual(a.containersToStart, []);
    assert.equal(a.waiting.get("main")?.reason, "CrashLoopBackOff");
    assert.equal(a.wakeAtMs, NOW + backoff.delay(backoffKey(pod, "main")));
  });

  it("no failure verdict: a running container is left alone", () => {
    const pod = mkPod();
    const c = ctr(pod, "main");
    const a = computePodActions({ pod, runtime: rt([sb("sb1")], [c]), crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) }), nowMs: NOW, probes: verdicts({ ready: { [c.id]: false } }) });
    assert.deepEqual(a.containersToKill, []);
    assert.deepEqual(a.containersToStart, []);
  });
});

// ---- init containers and sidecars ----

function initPod(opts: { restartPolicy?: string; inits: { name: string; sidecar?: boolean }[]; containers?: string[] }): V1Pod {
  const pod = mkPod({ ...(opts.restartPolicy !== undefined ? { restartPolicy: opts.restartPolicy } : {}), containers: opts.containers ?? ["main"] });
  if (pod.spec) {
    pod.spec.initContainers = opts.inits.map((i) => ({ name: i.name, image: "busybox:1.36", imagePullPolicy: "IfNotPresent", ...(i.sidecar ? { restartPolicy: "Always" } : {}) }));
  }
  return pod;
}

/** A container record for an init container (ctr only knows app containers' specs). */
function ictr(pod: V1Pod, name: string, over: Partial<ContainerInfo> = {}): ContainerInfo {
  const spec = pod.spec?.initContainers?.find((x) => x.name === name);
  return ctr(pod, name, { hash: spec ? containerHash(spec) : "deadbeef", ...over });
}

const kinds = (a: PodActions): [string, string | undefined][] => a.containersToStart.map((s) => [s.container.name, s.kind]);

describe("computePodActions: init containers", () => {
  it("a new sandbox starts only the first init container", () => {
    const pod = initPod({ inits: [{ name: "a" }, { name: "b" }] });
    const a = plan(pod, rt([], []));
    assert.equal(a.createSandbox, true);
    assert.deepEqual(kinds(a), [["a", "init"]]);
  });

  it("init containers run one at a time, in order; app containers start once all exited 0", () => {
    const pod = initPod({ inits: [{ name: "a" }, { name: "b" }] });
    const running = plan(pod, rt([sb("sb1")], [ictr(pod, "a")]));
    assert.deepEqual(running.containersToStart, [], "a still runs: wait");
    const next = plan(pod, rt([sb("sb1")], [exited(pod, "a", 0)]));
    assert.deepEqual(kinds(next), [["b", "init"]]);
    const apps = plan(pod, rt([sb("sb1")], [exited(pod, "b", 0, { createdAtMs: NOW - 20_000 }), exited(pod, "a", 0)]));
    assert.deepEqual(kinds(apps), [["main", "app"]]);
  });

  it("completed init containers are not run again once the app containers exist (kubelet restart, app restarts)", () => {
    const pod = initPod({ inits: [{ name: "a" }] });
    const a = plan(pod, rt([sb("sb1")], [exited(pod, "main", 1, { restartCount: 0 })]));
    assert.deepEqual(kinds(a), [["main", "app"]], "a's record is gone, yet init is over");
    const b = plan(pod, rt([sb("sb1")], [ctr(pod, "main"), exited(pod, "a", 0)]));
    assert.deepEqual(b.containersToStart, []);
    assert.deepEqual(b.containersToKill, []);
  });

  it("a failed init container is retried (restartCount+1) under Always and OnFailure, with crash-loop backoff", () => {
    for (const policy of ["Always", "OnFailure"]) {
      const pod = initPod({ restartPolicy: policy, inits: [{ name: "a" }] });
      const a = plan(pod, rt([sb("sb1")], [exited(pod, "a", 1, { restartCount: 2 })]));
      assert.deepEqual(started(a), [["a", 3]], policy);
      assert.ok(a.containersToStart[0]?.afterExit, "the backoff records the exit");
      assert.equal(a.stopSandbox, false);
    }
    const pod = initPod({ restartPolicy: "OnFailure", inits: [{ name: "a" }] });
    const clock = new FakeClock(NOW);
    const backoff = createBackoff({ ...CRASHLOOP_BACKOFF, clock });
    backoff.next(backoffKey(pod, "a"), NOW - 2000);
    const b = plan(pod, rt([sb("sb1")], [exited(pod, "a", 1, { finishedAtMs: NOW - 1000 })]), backoff);
    assert.deepEqual(b.containersToStart, []);
    assert.equal(b.waiting.get("a")?.reason, "CrashLoopBackOff");
  });

  it("a failed init container under Never: nothing more starts and the sandbox is stopped", () => {
    const pod = initPod({ restartPolicy: "Never", inits: [{ name: "a" }, { name: "b" }] });
    const a = plan(pod, rt([sb("sb1")], [exited(pod, "a", 2)]));
    assert.deepEqual(a.containersToStart, []);
    assert.equal(a.stopSandbox, true);
    const after = plan(pod, rt([sb("sb1", { state: "SANDBOX_NOTREADY" })], [exited(pod, "a", 2)]));
    assert.equal(after.createSandbox, false, "no new sandbox for a failed Never pod");
    assert.equal(after.killPod, false);
  });

  it("init containers of an old sandbox do not count: a new sandbox starts over from the first", () => {
    const pod = initPod({ inits: [{ name: "a" }, { name: "b" }] });
    const a = plan(pod, rt([sb("sb2", { attempt: 1, createdAtMs: NOW - 1000 }), sb("sb1", { state: "SANDBOX_NOTREADY" })], [exited(pod, "b", 0), exited(pod, "a", 0)]));
    assert.deepEqual(kinds(a), [["a", "init"]]);
    assert.equal(a.containersToStart[0]?.restartCount, 1);
  });
});

describe("computePodActions: sidecars", () => {
  it("a sidecar starts in order; the next init container follows once it runs (no startup probe)", () => {
    const pod = initPod({ inits: [{ name: "proxy", sidecar: true }, { name: "setup" }] });
    const first = plan(pod, rt([sb("sb1")], []));
    assert.deepEqual(kinds(first), [["proxy", "sidecar"]]);
    const second = plan(pod, rt([sb("sb1")], [ictr(pod, "proxy")]));
    assert.deepEqual(kinds(second), [["setup", "init"]]);
    const apps = plan(pod, rt([sb("sb1")], [exited(pod, "setup", 0), ictr(pod, "proxy")]));
    assert.deepEqual(kinds(apps), [["main", "app"]]);
  });

  it("a sidecar whose startup probe has not passed holds back the next containers", () => {
    const pod = initPod({ inits: [{ name: "proxy", sidecar: true }] });
    const side = ictr(pod, "proxy");
    const a = computePodActions({ pod, runtime: rt([sb("sb1")], [side]), crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) }), nowMs: NOW, probes: verdicts({ started: { [side.id]: false } }) });
    assert.deepEqual(a.containersToStart, []);
    const b = computePodActions({ pod, runtime: rt([sb("sb1")], [side]), crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) }), nowMs: NOW, probes: verdicts({ started: { [side.id]: true } }) });
    assert.deepEqual(kinds(b), [["main", "app"]]);
  });

  it("a sidecar that exits is restarted whatever the pod's restart policy, also after initialization", () => {
    for (const policy of ["Always", "OnFailure", "Never"]) {
      const pod = initPod({ restartPolicy: policy, inits: [{ name: "proxy", sidecar: true }] });
      const a = plan(pod, rt([sb("sb1")], [ctr(pod, "main"), exited(pod, "proxy", 0, { restartCount: 1 })]));
      assert.deepEqual(started(a), [["proxy", 2]], policy);
      assert.equal(a.containersToStart[0]?.kind, "sidecar");
    }
  });

  it("under Never/OnFailure, once the app containers are done, sidecars are stopped last-first and then the sandbox", () => {
    const pod = initPod({ restartPolicy: "Never", inits: [{ name: "log", sidecar: true }, { name: "proxy", sidecar: true }] });
    const a = plan(pod, rt([sb("sb1")], [exited(pod, "main", 0), ictr(pod, "proxy"), ictr(pod, "log")]));
    assert.deepEqual(a.sidecarsToStop.map((k) => k.name), ["proxy", "log"]);
    assert.deepEqual(a.containersToStart, []);
    assert.deepEqual(a.containersToKill, []);
    assert.equal(a.stopSandbox, true);
    const onFailure = initPod({ restartPolicy: "OnFailure", inits: [{ name: "proxy", sidecar: true }] });
    const b = plan(onFailure, rt([sb("sb1")], [exited(onFailure, "main", 1), ictr(onFailure, "proxy")]));
    assert.deepEqual(b.sidecarsToStop, [], "a failed app container restarts under OnFailure: keep the sidecar");
    assert.equal(b.stopSandbox, false);
  });

  it("under Always the sidecar keeps running next to exited app containers", () => {
    const pod = initPod({ inits: [{ name: "proxy", sidecar: true }] });
    const a = plan(pod, rt([sb("sb1")], [exited(pod, "main", 0), ictr(pod, "proxy")]));
    assert.deepEqual(a.sidecarsToStop, []);
    assert.deepEqual(started(a), [["main", 1]]);
  });

  it("a sidecar whose liveness probe failed is restarted even under Never", () => {
    const pod = initPod({ restartPolicy: "Never", inits: [{ name: "proxy", sidecar: true }] });
    const side = ictr(pod, "proxy");
    const a = computePodActions({
      pod,
      runtime: rt([sb("sb1")], [ctr(pod, "main"), side]),
      crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock: new FakeClock(NOW) }),
      nowMs: NOW,
      probes: verdicts({ failed: { [side.id]: { probe: "Liveness", message: "Container proxy failed liveness probe, will be restarted", terminationGracePeriodSeconds: undefined } } }),
    });
    assert.deepEqual(killed(a), [side.id]);
    assert.deepEqual(kinds(a), [["proxy", "sidecar"]]);
  });
});

describe("computePodActions: finished pods", () => {
  it("Never: all containers exited → stop the sandbox; Always → restart instead", () => {
    const never = mkPod({ restartPolicy: "Never" });
    assert.equal(plan(never, rt([sb("sb1")], [exited(never, "main", 1)])).stopSandbox, true);
    const onFailure = mkPod({ restartPolicy: "OnFailure" });
    assert.equal(plan(onFailure, rt([sb("sb1")], [exited(onFailure, "main", 0)])).stopSandbox, true);
    assert.equal(plan(onFailure, rt([sb("sb1")], [exited(onFailure, "main", 1)])).stopSandbox, false);
    const always = mkPod();
    assert.equal(plan(always, rt([sb("sb1")], [exited(always, "main", 0)])).stopSandbox, false);
  });

  it("Never: one container still running keeps the sandbox", () => {
    const pod = mkPod({ restartPolicy: "Never", containers: ["a", "b"] });
    assert.equal(plan(pod, rt([sb("sb1")], [exited(pod, "a", 0), ctr(pod, "b")])).stopSandbox, false);
  });
});
