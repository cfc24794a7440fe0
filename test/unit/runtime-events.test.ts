/**
 * Runtime events and the pod worker: the relist reports what it saw of each changed pod (a
 * fingerprint and when the lists came back), and a worker syncs again only when that is news to
 * it. A state the worker has already read itself (it usually made the change) costs no CRI call,
 * and neither does a pod update that changes only the status (the kubelet's own write coming back).
 * And --max-parallel-pod-starts: a new pod's first start waits for a turn; its first status and
 * later syncs do not.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { FakeCri } from "../support/fake-cri.js";
import { fakeWorkerEnv } from "../support/worker-env.js";
import { createPodWorker, syncKey, type PodWorker, type WorkerEnv } from "../../src/pods/worker.js";
import { createRelister, type RelistSnapshot } from "../../src/pods/relist.js";
import { createPodManager, type PodManager } from "../../src/pods/manager.js";
import { createStatusManager } from "../../src/pods/status-manager.js";
import { createRuntimeReadCache, getRuntimePod, runtimeFingerprint, type RuntimeObservation } from "../../src/pods/runtime-state.js";
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

async function until<T>(cond: () => T | undefined | false, what: string): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    const v = cond();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`never happened: ${what}`);
}

/** Lets pending promises and real I/O settle. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 30; i++) await new Promise((r) => setTimeout(r, 1));
};

/** One temp root for the workers of this file; every worker made is stopped at the end. */
const root = await mkdtemp(join(tmpdir(), "tsk-worker-events-"));
const workers: PodWorker[] = [];
const managers: PodManager[] = [];
after(async () => {
  for (const w of workers) w.stop();
  for (const m of managers) m.stop();
  await rm(root, { recursive: true, force: true });
});

/** A pod worker on a fake CRI and clock; `published` holds every status it set, in order. */
function newWorker(pod: V1Pod, over: { cri?: (cri: FakeCri) => void; env?: Partial<WorkerEnv> } = {}) {
  const clock = new FakeClock();
  const cri = new FakeCri({ clock });
  over.cri?.(cri);
  const statuses = new Map<string, V1PodStatus>();
  const published: V1PodStatus[] = [];
  const env = fakeWorkerEnv(
    {
      cri,
      clock,
      logger: quiet,
      rootDir: root,
      events: () => undefined,
      setStatus: (p, st) => {
        statuses.set(p.metadata?.uid ?? "", st);
        published.push(st);
      },
      getStatus: (uid) => statuses.get(uid),
    },
    over.env,
  );
  const w = createPodWorker(pod, env);
  workers.push(w);
  const lists = (): number => cri.calls.filter((c) => c.op === "listContainers").length;
  return { clock, cri, w, statuses, published, lists };
}

describe("runtime fingerprint", () => {
  it("does not depend on order and changes with any id or state", () => {
    const a = runtimeFingerprint([{ id: "s1", state: "SANDBOX_READY" }], [{ id: "c1", state: "CONTAINER_RUNNING" }, { id: "c2", state: "CONTAINER_EXITED" }]);
    const b = runtimeFingerprint([{ id: "s1", state: "SANDBOX_READY" }], [{ id: "c2", state: "CONTAINER_EXITED" }, { id: "c1", state: "CONTAINER_RUNNING" }]);
    assert.equal(a, b);
    assert.notEqual(a, runtimeFingerprint([{ id: "s1", state: "SANDBOX_READY" }], [{ id: "c1", state: "CONTAINER_EXITED" }, { id: "c2", state: "CONTAINER_EXITED" }]));
    assert.notEqual(a, runtimeFingerprint([{ id: "s1", state: "SANDBOX_NOTREADY" }], [{ id: "c1", state: "CONTAINER_RUNNING" }, { id: "c2", state: "CONTAINER_EXITED" }]));
    assert.equal(runtimeFingerprint([], []), "");
  });
});

describe("relist observations", () => {
  it("reports each changed pod once with its fingerprint and the list time, and a vanished pod with none", async () => {
    const clock = new FakeClock();
    const cri = new FakeCri({ clock });
    const seen: { uid: string; obs: RuntimeObservation }[] = [];
    const relister = createRelister({ rs: cri, clock, logger: quiet, intervalMs: 1000, onPodChanged: (uid, obs) => seen.push({ uid, obs }) });
    const ac = new AbortController();
    const run = relister.run(ac.signal);
    try {
      await until(() => relister.lastSuccessMs() > 0 || undefined, "first relist");
      assert.equal(seen.length, 0);
      const sb = await cri.runPodSandbox({ metadata: { name: "p", namespace: "default", uid: "uid-p", attempt: 0 }, labels: { "io.kubernetes.pod.uid": "uid-p" } });
      await clock.advance(1000);
      await until(() => seen.length > 0 || undefined, "the new sandbox reported");
      assert.equal(seen[0]?.uid, "uid-p");
      assert.equal(seen[0]?.obs.fingerprint, `s:${sb}:SANDBOX_READY`);
      assert.equal(seen[0]?.obs.listedAtMs, clock.now());
      // Nothing changed: nothing reported.
      await clock.advance(1000);
      await settle();
      assert.equal(seen.length, 1);
      await cri.stopPodSandbox(sb);
      await cri.removePodSandbox(sb);
      await clock.advance(1000);
      await until(() => seen.length > 1 || undefined, "the vanished pod reported");
      assert.equal(seen[1]?.uid, "uid-p");
      assert.equal(seen[1]?.obs.fingerprint, undefined);
    } finally {
      ac.abort();
      await run;
    }
  });
});

describe("pod worker: runtime events it already knows", () => {
  const start = async (name: string) => {
    const { clock, cri, w, lists } = newWorker(mkPod(name));
    await w.done;
    await settle();
    const running = await cri.listContainers({ labelSelector: { "io.kubernetes.pod.uid": `uid-${name}` } });
    const sandboxes = await cri.listPodSandbox({ labelSelector: { "io.kubernetes.pod.uid": `uid-${name}` } });
    const fingerprint = runtimeFingerprint(sandboxes, running);
    return { clock, cri, w, lists, fingerprint, running };
  };

  it("ignores a relist that saw the state the worker read last", async () => {
    const { clock, w, lists, fingerprint } = await start("same");
    const before = lists();
    w.trigger({ fingerprint, listedAtMs: clock.now() + 5 });
    await settle();
    assert.equal(lists(), before, "no sync: no ListContainers call");
  });

  it("ignores a relist whose lists came back before the worker's last read began", async () => {
    const { clock, w, lists } = await start("older");
    const before = lists();
    w.trigger({ fingerprint: "s:gone:SANDBOX_READY", listedAtMs: clock.now() - 1 });
    await settle();
    assert.equal(lists(), before);
  });

  it("syncs on a newer state, on a vanished pod and on a trigger without an observation", async () => {
    const { clock, cri, w, lists, running } = await start("news");
    let before = lists();
    const id = running[0]?.id ?? "";
    await cri.stopContainer(id, 0);
    w.trigger({ fingerprint: "changed", listedAtMs: clock.now() });
    await until(() => lists() > before || undefined, "a sync after news");
    await settle();
    before = lists();
    w.trigger({ fingerprint: undefined, listedAtMs: clock.now() });
    await until(() => lists() > before || undefined, "a sync after the pod vanished");
    await settle();
    before = lists();
    w.trigger();
    await until(() => lists() > before || undefined, "a sync when asked without an observation");
  });
});

describe("pod worker: pod updates", () => {
  it("syncKey ignores the status but not the spec, metadata, deletion or foreign conditions", () => {
    const pod = mkPod("k");
    const k = syncKey(pod);
    assert.equal(syncKey({ ...pod, status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] } }), k);
    assert.equal(syncKey({ ...pod, metadata: { ...pod.metadata, resourceVersion: "42" } }), k);
    assert.notEqual(syncKey({ ...pod, spec: { ...pod.spec, containers: [], activeDeadlineSeconds: 5 } }), k);
    assert.notEqual(syncKey({ ...pod, metadata: { ...pod.metadata, labels: { a: "b" } } }), k);
    assert.notEqual(syncKey({ ...pod, metadata: { ...pod.metadata, deletionTimestamp: new Date(0), deletionGracePeriodSeconds: 0 } }), k);
    assert.notEqual(syncKey({ ...pod, status: { conditions: [{ type: "example.com/gate", status: "True" }] } }), k);
  });

  it("a status-only update does not sync; a spec change does", async () => {
    const pod = mkPod("upd");
    const { w, statuses, lists } = newWorker(pod);
    await w.done;
    await settle();
    const before = lists();
    w.update({ ...pod, metadata: { ...pod.metadata, resourceVersion: "7" }, status: statuses.get("uid-upd") ?? {} });
    await settle();
    assert.equal(lists(), before, "no CRI reads after a status-only update");
    assert.equal(w.pod().metadata?.resourceVersion, "7", "the worker keeps the newest object");
    w.update({ ...pod, spec: { ...pod.spec, containers: pod.spec?.containers ?? [], activeDeadlineSeconds: 600 } });
    await until(() => lists() > before || undefined, "a sync after a spec change");
  });
});

describe("runtime read cache", () => {
  it("asks for a ready sandbox's IPs and a running container's status once, and again after a change", async () => {
    const cri = new FakeCri();
    const labels = { "io.kubernetes.pod.uid": "uid-c" };
    const cfg = {
      metadata: { name: "c", namespace: "default", uid: "uid-c", attempt: 0 },
      labels,
      logDirectory: "/var/log/pods/default_c_uid-c",
      linux: { securityContext: { namespaceOptions: { network: "POD" as const, pid: "CONTAINER" as const, ipc: "POD" as const } } },
    };
    const sb = await cri.runPodSandbox(cfg);
    const id = await cri.createContainer(sb, { metadata: { name: "app", attempt: 0 }, image: { image: IMAGE }, command: ["sleep", "3600"], labels: { ...labels, "io.kubernetes.container.name": "app" }, logPath: "app/0.log" }, cfg);
    await cri.startContainer(id);
    const count = (op: string): number => cri.calls.filter((c) => c.op === op).length;
    const cache = createRuntimeReadCache();
    const who = { uid: "uid-c", name: "c", namespace: "default" };
    const first = await getRuntimePod(cri, who, cache);
    assert.equal(first.containers[0]?.state, "CONTAINER_RUNNING");
    assert.ok((first.sandboxes[0]?.ips.length ?? 0) > 0);
    const [pss, cs] = [count("podSandboxStatus"), count("containerStatus")];
    const second = await getRuntimePod(cri, who, cache);
    assert.deepEqual(second, first, "the same answer from the cache");
    assert.equal(count("podSandboxStatus"), pss, "no PodSandboxStatus for a ready sandbox seen before");
    assert.equal(count("containerStatus"), cs, "no ContainerStatus for a running container seen before");
    cri.exitContainer(id, 3);
    const third = await getRuntimePod(cri, who, cache);
    assert.equal(third.containers[0]?.state, "CONTAINER_EXITED");
    assert.equal(third.containers[0]?.exitCode, 3);
    assert.equal(count("containerStatus"), cs + 1);
    assert.equal(cache.running.size, 0, "an exited container leaves the cache");
    await cri.stopPodSandbox(sb);
    const fourth = await getRuntimePod(cri, who, cache);
    assert.equal(fourth.sandboxes[0]?.state, "SANDBOX_NOTREADY");
    assert.equal(cache.sandboxIPs.size, 0, "a stopped sandbox leaves the cache");
  });
});

describe("pod worker: the start gate", () => {
  it("a pod starts only when it has a turn, is reported Pending meanwhile, and a later sync does not wait", async () => {
    // A gate whose single turn the test holds until it lets go.
    const inner = createLimiter(1);
    let letGo!: () => void;
    const held = inner(() => new Promise<void>((r) => (letGo = r)));
    let asked = 0;
    const gate: Limiter = (fn) => {
      asked++;
      return inner(fn);
    };
    const { clock, cri, w, statuses, lists } = newWorker(mkPod("gated"), { env: { startGate: gate } });
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
    const before = lists();
    await clock.advance(60_000);
    await settle();
    assert.ok(lists() > before, "the resync ran");
    assert.equal(asked, 1);
  });
});

describe("pod worker: an OOM kill containerd reports late", () => {
  const setup = async (name: string) => {
    const pod: V1Pod = {
      metadata: { name, namespace: "default", uid: `uid-${name}` },
      spec: { restartPolicy: "Never", terminationGracePeriodSeconds: 1, containers: [{ name: "app", image: IMAGE, command: ["sleep", "3600"], resources: { limits: { memory: "16Mi" } } }] },
    };
    // Like a real sleep as PID 1: SIGTERM is ignored, StopContainer ends in SIGKILL (137).
    const { clock, cri, w, published } = newWorker(pod, { cri: (c) => c.setProgram(() => ({ onTerm: "ignore" })) });
    await w.done;
    await settle();
    const id = (await cri.listContainers({ labelSelector: { "io.kubernetes.pod.uid": `uid-${name}` } }))[0]?.id ?? "";
    const reasons = (): string[] => published.map((s) => s.containerStatuses?.[0]?.state?.terminated?.reason ?? "").filter((r) => r !== "");
    return { clock, cri, w, id, reasons };
  };

  it("an exit 137 under a memory limit is re-read until it is OOMKilled, and Error(137) is never published", async () => {
    const { clock, cri, w, id, reasons } = await setup("oom");
    cri.exitContainer(id, 137);
    w.trigger();
    await settle();
    for (let i = 0; i < 6; i++) {
      await clock.advance(250);
      await settle();
    }
    assert.deepEqual(reasons(), [], "nothing published while the reason may still change");
    cri.setExitReason(id, "OOMKilled");
    await clock.advance(250);
    await settle();
    assert.deepEqual([...new Set(reasons())], ["OOMKilled"]);
  });

  it("gives up 4 s after the exit and publishes the runtime's reason", async () => {
    const { clock, cri, w, id, reasons } = await setup("plain137");
    cri.exitContainer(id, 137);
    w.trigger();
    await settle();
    for (let i = 0; i < 20; i++) {
      await clock.advance(250);
      await settle();
    }
    assert.deepEqual([...new Set(reasons())], ["Error"]);
  });

  it("does not wait for a container the worker stopped itself", async () => {
    const { w, reasons } = await setup("stopped");
    await w.terminate(0);
    assert.deepEqual([...new Set(reasons())], ["Error"], "the final status (its own SIGKILL: 137) was published without the clock moving");
  });
});

describe("pod worker: a new pod the runtime holds nothing of", () => {
  const count = (cri: FakeCri, op: string): number => cri.calls.filter((c) => c.op === op).length;

  it("starts without listing and reads back what it made by ID; the status is the one a listing read gives", async () => {
    const fresh = newWorker(mkPod("fresh"), { env: { runtimeKnowsNothingOf: () => true } });
    await fresh.w.done;
    assert.equal(count(fresh.cri, "listContainers") + count(fresh.cri, "listPodSandbox"), 0, "no list before or after the start");
    assert.equal(count(fresh.cri, "containerStatus"), 1, "the started container's status, by ID");
    const listed = newWorker(mkPod("listed"));
    await listed.w.done;
    assert.ok(count(listed.cri, "listContainers") >= 2, "without the knowledge: a read before and after");
    const a = fresh.statuses.get("uid-fresh");
    const b = listed.statuses.get("uid-listed");
    assert.equal(a?.phase, "Running");
    assert.ok(a?.podIP, "the IP from the sandbox's status");
    const ca = a?.containerStatuses?.[0];
    const running = await fresh.cri.listContainers({ labelSelector: { "io.kubernetes.pod.uid": "uid-fresh" } });
    assert.equal(ca?.containerID, `containerd://${running[0]?.id ?? ""}`);
    assert.ok(ca?.state?.running?.startedAt);
    // Same shape as the listing read's status: same keys, same container fields.
    assert.deepEqual(Object.keys(a ?? {}).sort(), Object.keys(b ?? {}).sort());
    assert.deepEqual(Object.keys(ca ?? {}).sort(), Object.keys(b?.containerStatuses?.[0] ?? {}).sort());
    assert.equal(ca?.imageID, b?.containerStatuses?.[0]?.imageID);
  });

  it("a step that fails sends the read back to listing", async () => {
    const { cri, w, statuses } = newWorker(mkPod("fails"), { env: { runtimeKnowsNothingOf: () => true }, cri: (c) => c.failNext("createContainer", "Unknown") });
    await until(() => statuses.get("uid-fails")?.containerStatuses?.[0]?.state?.waiting?.reason === "CreateContainerError" || undefined, "CreateContainerError");
    await settle();
    assert.ok(count(cri, "listContainers") >= 1, "the read after a failed create lists the pod");
    w.trigger();
    await w.done;
  });
});

describe("pod manager: when the runtime surely holds nothing of a new pod", () => {
  const count = (cri: FakeCri, op: string): number => cri.calls.filter((c) => c.op === op).length;
  const setUp = () => {
    const clock = new FakeClock();
    const cri = new FakeCri({ clock });
    const statuses = createStatusManager();
    const relist: { snap: RelistSnapshot | undefined } = { snap: undefined };
    const pods = createPodManager({
      ...fakeWorkerEnv({ cri, clock, logger: quiet, rootDir: root, events: () => undefined, setStatus: (p, s) => statuses.setStatus(p, s), getStatus: (uid) => statuses.getStatus(uid) }),
      statuses,
      lastRelist: () => relist.snap,
    });
    managers.push(pods);
    const empty = (startedAt: number): RelistSnapshot => ({ listStartedAtMs: startedAt, atMs: startedAt, sandboxes: [], containers: [] });
    /** Adds a pod (the others stay) and counts the lists until it runs. */
    const current: V1Pod[] = [];
    const runs = async (name: string): Promise<number> => {
      const lists = count(cri, "listContainers");
      current.push(mkPod(name));
      pods.setSourcePods("api", [...current]);
      await until(() => statuses.getStatus(`uid-${name}`)?.phase === "Running" || undefined, `${name} running`);
      return count(cri, "listContainers") - lists;
    };
    const removeAll = (): void => {
      current.length = 0;
      pods.setSourcePods("api", []);
    };
    return { clock, cri, pods, relist, empty, runs, removeAll };
  };

  it("trusts a recent relist that did not see it, and nothing else", async () => {
    const { clock, cri, pods, relist, empty, runs, removeAll } = setUp();
    await clock.advance(60_000);
    assert.ok((await runs("a")) > 0, "no relist yet: the worker lists");
    relist.snap = empty(clock.now() - 6_000);
    assert.ok((await runs("b")) > 0, "a relist older than 5 s is not trusted");
    relist.snap = empty(clock.now());
    assert.equal(await runs("c"), 0, "a fresh relist without the pod: no list");
    // A relist that saw the pod's sandbox: read it.
    const sandboxes = await cri.listPodSandbox();
    relist.snap = { ...empty(clock.now()), sandboxes };
    removeAll();
    await until(() => pods.terminatingCount() === 0 || undefined, "all terminated");
    const known = sandboxes.find((s) => s.labels["io.kubernetes.pod.uid"] === "uid-c");
    assert.ok(known, "the relist holds pod c");
    const before = count(cri, "listContainers");
    pods.setSourcePods("api", [mkPod("c")]);
    await until(() => count(cri, "listContainers") > before || undefined, "pod c read by listing");
  });

  it("a relist that began before an earlier worker of the same pod ended is not trusted", async () => {
    const { clock, pods, relist, empty, runs, removeAll } = setUp();
    await clock.advance(60_000);
    relist.snap = empty(clock.now());
    assert.equal(await runs("again"), 0);
    removeAll();
    await until(() => pods.terminatingCount() === 0 && pods.workerCount() === 0 || undefined, "terminated");
    assert.ok((await runs("again")) > 0, "the relist predates the end of the first worker");
  });
});
