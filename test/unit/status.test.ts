import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1ContainerStatus, V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { containerResources, oomScoreAdj, podCgroupParent, qosClass, sharesFromMilli } from "../../src/containers/resources.js";
import type { Waiting } from "../../src/pods/plan.js";
import { runtimeFingerprint, type ContainerInfo, type RuntimePod, type SandboxInfo } from "../../src/pods/runtime-state.js";
import { computePodStatus, podPhase, podPhaseOf, type StatusInput } from "../../src/pods/status.js";
import { createStatusManager } from "../../src/pods/status-manager.js";
import type { ProbeVerdicts } from "../../src/pods/probe-verdicts.js";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const GiB = 2 ** 30;

function mkPod(opts: { restartPolicy?: string; hostNetwork?: boolean; containers?: V1Container[] } = {}): V1Pod {
  const pod: V1Pod = {
    metadata: { name: "web-node1", namespace: "default", uid: "uid-1" },
    spec: { containers: opts.containers ?? [{ name: "main", image: "nginx:1.25" }] },
  };
  if (pod.spec && opts.restartPolicy !== undefined) pod.spec.restartPolicy = opts.restartPolicy;
  if (pod.spec && opts.hostNetwork !== undefined) pod.spec.hostNetwork = opts.hostNetwork;
  return pod;
}

function sb(over: Partial<SandboxInfo> = {}): SandboxInfo {
  return { id: "sb1", attempt: 0, state: "SANDBOX_READY", createdAtMs: T0 - 100_000, ip: "10.244.0.5", ips: ["10.244.0.5", "fd00::5"], hostNetwork: false, ...over };
}

function ctr(name: string, over: Partial<ContainerInfo> = {}): ContainerInfo {
  return {
    id: `${name}-id`,
    sandboxId: "sb1",
    name,
    attempt: 0,
    restartCount: 0,
    state: "CONTAINER_RUNNING",
    createdAtMs: T0 - 50_000,
    startedAtMs: T0 - 49_000,
    finishedAtMs: 0,
    exitCode: 0,
    reason: "",
    message: "",
    hash: "h",
    image: "docker.io/library/nginx:1.25",
    imageRef: "sha256:abc",
    logPath: `${name}/0.log`,
    graceSeconds: 30,
    ...over,
  };
}

function dead(name: string, exitCode: number, over: Partial<ContainerInfo> = {}): ContainerInfo {
  return ctr(name, { state: "CONTAINER_EXITED", exitCode, finishedAtMs: T0 - 10_000, ...over });
}

function rt(sandboxes: SandboxInfo[], containers: ContainerInfo[]): RuntimePod {
  return { uid: "uid-1", name: "web-node1", namespace: "default", sandboxes, containers, fingerprint: runtimeFingerprint(sandboxes, containers) };
}

function status(pod: V1Pod, runtime: RuntimePod, more: Partial<StatusInput> = {}): V1PodStatus {
  return computePodStatus({
    pod,
    runtime,
    waiting: new Map<string, Waiting>(),
    runtimeName: "containerd",
    hostIPs: ["192.168.1.10"],
    startTime: new Date(T0 - 200_000),
    previous: undefined,
    now: new Date(T0),
    ...more,
  });
}

function condition(s: V1PodStatus, type: string): { status: string; reason?: string; message?: string; lastTransitionTime?: Date } {
  const c = s.conditions?.find((x) => x.type === type);
  assert.ok(c, `condition ${type}`);
  return c;
}

function cs(s: V1PodStatus, name = "main"): V1ContainerStatus {
  const c = s.containerStatuses?.find((x) => x.name === name);
  assert.ok(c, `container status ${name}`);
  return c;
}

// ---- podPhase: upstream getPhase for regular containers ----

const running = (name = "c"): V1ContainerStatus => ({ name, image: "i", imageID: "", ready: true, restartCount: 0, state: { running: {} } });
const terminated = (code: number, name = "c"): V1ContainerStatus => ({ name, image: "i", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode: code } } });
const waiting = (name = "c"): V1ContainerStatus => ({ name, image: "i", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "ContainerCreating" } } });
const crashLooping = (code: number, name = "c"): V1ContainerStatus => ({
  name,
  image: "i",
  imageID: "",
  ready: false,
  restartCount: 3,
  state: { waiting: { reason: "CrashLoopBackOff" } },
  lastState: { terminated: { exitCode: code } },
});

describe("podPhase", () => {
  it("follows upstream's rules for each restart policy", () => {
    const table: { name: string; statuses: V1ContainerStatus[]; Always: string; OnFailure: string; Never: string }[] = [
      { name: "no containers", statuses: [], Always: "Pending", OnFailure: "Pending", Never: "Pending" },
      { name: "all running", statuses: [running("a"), running("b")], Always: "Running", OnFailure: "Running", Never: "Running" },
      { name: "one waiting", statuses: [running("a"), waiting("b")], Always: "Pending", OnFailure: "Pending", Never: "Pending" },
      { name: "all succeeded", statuses: [terminated(0, "a"), terminated(0, "b")], Always: "Running", OnFailure: "Succeeded", Never: "Succeeded" },
      { name: "one failed", statuses: [terminated(0, "a"), terminated(1, "b")], Always: "Running", OnFailure: "Running", Never: "Failed" },
      { name: "running + failed", statuses: [running("a"), terminated(1, "b")], Always: "Running", OnFailure: "Running", Never: "Running" },
      { name: "waiting with lastState terminated counts as stopped", statuses: [crashLooping(1, "a")], Always: "Running", OnFailure: "Running", Never: "Failed" },
      { name: "crash-looping + running", statuses: [crashLooping(1, "a"), running("b")], Always: "Running", OnFailure: "Running", Never: "Running" },
      { name: "crash-looping + waiting", statuses: [crashLooping(1, "a"), waiting("b")], Always: "Pending", OnFailure: "Pending", Never: "Pending" },
    ];
    for (const row of table) {
      for (const policy of ["Always", "OnFailure", "Never"] as const) {
        assert.equal(podPhase(policy, row.statuses), row[policy], `${row.name} under ${policy}`);
      }
    }
  });
});

// ---- computePodStatus ----

describe("computePodStatus", () => {
  it("a running pod: phase, container state, IDs, IPs, conditions, qosClass", () => {
    const pod = mkPod();
    const s = status(pod, rt([sb()], [ctr("main", { restartCount: 2 })]));
    assert.equal(s.phase, "Running");
    const c = cs(s);
    assert.deepEqual(c.state, { running: { startedAt: new Date(T0 - 49_000) } });
    assert.equal(c.ready, true);
    assert.equal(c.started, true);
    assert.equal(c.restartCount, 2);
    assert.equal(c.containerID, "containerd://main-id");
    assert.equal(c.image, "nginx:1.25");
    assert.equal(c.imageID, "sha256:abc");
    assert.equal(s.podIP, "10.244.0.5");
    assert.deepEqual(s.podIPs, [{ ip: "10.244.0.5" }, { ip: "fd00::5" }]);
    assert.equal(s.hostIP, "192.168.1.10");
    assert.deepEqual(s.hostIPs, [{ ip: "192.168.1.10" }]);
    assert.equal(s.qosClass, "BestEffort");
    assert.deepEqual(s.startTime, new Date(T0 - 200_000));
    assert.deepEqual(
      s.conditions?.map((x) => [x.type, x.status]),
      [
        ["PodReadyToStartContainers", "True"],
        ["Initialized", "True"],
        ["Ready", "True"],
        ["ContainersReady", "True"],
        ["PodScheduled", "True"],
      ],
    );
    for (const x of s.conditions ?? []) assert.deepEqual(x.lastTransitionTime, new Date(T0), x.type);
  });

  it("no runtime container yet: waiting ContainerCreating, Pending, not ready with the unready containers named", () => {
    const pod = mkPod({ containers: [{ name: "main", image: "nginx:1.25" }, { name: "side", image: "busybox:1.36" }] });
    const s = status(pod, rt([sb()], []));
    assert.equal(s.phase, "Pending");
    assert.deepEqual(cs(s).state, { waiting: { reason: "ContainerCreating" } });
    assert.equal(cs(s).ready, false);
    assert.equal(cs(s).restartCount, 0);
    assert.equal(cs(s).containerID, undefined);
    const ready = condition(s, "Ready");
    assert.equal(ready.status, "False");
    assert.equal(ready.reason, "ContainersNotReady");
    assert.equal(ready.message, "containers with unready status: [main side]");
    assert.equal(condition(s, "ContainersReady").reason, "ContainersNotReady");
  });

  it("a waiting reason from the worker (ErrImagePull) replaces ContainerCreating", () => {
    const pod = mkPod();
    const w = new Map<string, Waiting>([["main", { reason: "ErrImagePull", message: "failed to pull image \"nginx:1.25\": not found" }]]);
    const s = status(pod, rt([sb()], []), { waiting: w });
    assert.deepEqual(cs(s).state, { waiting: { reason: "ErrImagePull", message: "failed to pull image \"nginx:1.25\": not found" } });
    assert.equal(s.phase, "Pending");
  });

  it("terminated Completed (exit 0) and Error (exit 1) with exit code, times and container ID", () => {
    const pod = mkPod({ restartPolicy: "Never", containers: [{ name: "ok", image: "busybox" }, { name: "bad", image: "busybox" }] });
    const s = status(pod, rt([sb({ state: "SANDBOX_NOTREADY" })], [dead("ok", 0), dead("bad", 1)]));
    assert.deepEqual(cs(s, "ok").state, {
      terminated: { exitCode: 0, reason: "Completed", startedAt: new Date(T0 - 49_000), finishedAt: new Date(T0 - 10_000), containerID: "containerd://ok-id" },
    });
    assert.equal(cs(s, "bad").state?.terminated?.reason, "Error");
    assert.equal(cs(s, "bad").state?.terminated?.exitCode, 1);
    assert.equal(cs(s, "bad").ready, false);
    assert.equal(s.phase, "Failed");
  });

  it("the runtime's reason (OOMKilled) and message win over Completed/Error", () => {
    const pod = mkPod({ restartPolicy: "Never" });
    const s = status(pod, rt([sb()], [dead("main", 137, { reason: "OOMKilled", message: "out of memory" })]));
    assert.equal(cs(s).state?.terminated?.reason, "OOMKilled");
    assert.equal(cs(s).state?.terminated?.message, "out of memory");
  });

  it("all succeeded under Never/OnFailure: Succeeded, Ready False with reason PodCompleted", () => {
    for (const policy of ["Never", "OnFailure"]) {
      const pod = mkPod({ restartPolicy: policy });
      const s = status(pod, rt([sb({ state: "SANDBOX_NOTREADY" })], [dead("main", 0)]));
      assert.equal(s.phase, "Succeeded", policy);
      assert.equal(condition(s, "Ready").status, "False");
      assert.equal(condition(s, "Ready").reason, "PodCompleted");
      assert.equal(condition(s, "ContainersReady").reason, "PodCompleted");
    }
  });

  it("a finished pod whose sandbox still runs keeps its phase (with terminal conditions) until the sandbox stops", () => {
    const pod = mkPod({ restartPolicy: "Never" });
    const held = status(pod, rt([sb()], [dead("main", 0)]), { previous: { phase: "Running" } });
    assert.equal(held.phase, "Running");
    assert.equal(condition(held, "Ready").reason, "PodCompleted");
    const never = status(pod, rt([sb()], [dead("main", 0)]));
    assert.equal(never.phase, "Pending", "no earlier phase: Pending, as the API's default");
    const done = status(pod, rt([sb({ state: "SANDBOX_NOTREADY" })], [dead("main", 0)]), { previous: held });
    assert.equal(done.phase, "Succeeded");
  });

  it("a failed pod under Never: Ready and ContainersReady False with reason PodFailed and no message", () => {
    const pod = mkPod({ restartPolicy: "Never" });
    const s = status(pod, rt([sb({ state: "SANDBOX_NOTREADY" })], [dead("main", 1)]));
    assert.equal(s.phase, "Failed");
    for (const type of ["Ready", "ContainersReady"]) {
      assert.equal(condition(s, type).status, "False");
      assert.equal(condition(s, type).reason, "PodFailed");
      assert.equal(condition(s, type).message, undefined);
    }
  });

  it("crash loop: waiting CrashLoopBackOff, lastState terminated, restartCount; Running under Always", () => {
    const pod = mkPod();
    const message = "back-off 40s restarting failed container=main pod=web-node1_default(uid-1)";
    const w = new Map<string, Waiting>([["main", { reason: "CrashLoopBackOff", message }]]);
    const s = status(pod, rt([sb()], [dead("main", 1, { restartCount: 3, id: "c3" }), dead("main", 1, { restartCount: 2, id: "c2" })]), { waiting: w });
    const c = cs(s);
    assert.deepEqual(c.state, { waiting: { reason: "CrashLoopBackOff", message } });
    assert.equal(c.lastState?.terminated?.exitCode, 1);
    assert.equal(c.lastState?.terminated?.reason, "Error");
    assert.equal(c.lastState?.terminated?.containerID, "containerd://c3", "the newest exit");
    assert.equal(c.restartCount, 3);
    assert.equal(c.containerID, "containerd://c3");
    assert.equal(s.phase, "Running");
  });

  it("a restarted container shows the previous instance in lastState", () => {
    const pod = mkPod();
    const s = status(pod, rt([sb()], [ctr("main", { id: "c2", restartCount: 2 }), dead("main", 2, { id: "c1", restartCount: 1 }), dead("main", 3, { id: "c0" })]));
    const c = cs(s);
    assert.ok(c.state?.running);
    assert.equal(c.lastState?.terminated?.containerID, "containerd://c1");
    assert.equal(c.lastState?.terminated?.exitCode, 2);
    assert.equal(c.restartCount, 2);
  });

  it("an unknown container state is reported as ContainerStatusUnknown with exit code 137", () => {
    const pod = mkPod({ restartPolicy: "Never" });
    const s = status(pod, rt([sb()], [ctr("main", { state: "CONTAINER_UNKNOWN" })]));
    assert.equal(cs(s).state?.terminated?.reason, "ContainerStatusUnknown");
    assert.equal(cs(s).state?.terminated?.exitCode, 137);
  });

  it("a created-but-not-started container is waiting", () => {
    const pod = mkPod();
    const s = status(pod, rt([sb()], [ctr("main", { state: "CONTAINER_CREATED" })]));
    assert.equal(cs(s).state?.waiting?.reason, "ContainerCreating");
    assert.equal(s.phase, "Pending");
  });

  it("podIP comes from a ready sandbox only; hostNetwork pods get the host IPs", () => {
    const pod = mkPod();
    const notReady = status(pod, rt([sb({ state: "SANDBOX_NOTREADY" })], [dead("main", 0)]));
    assert.equal(notReady.podIP, undefined);
    assert.equal(notReady.podIPs, undefined);
    assert.equal(condition(notReady, "PodReadyToStartContainers").status, "False");
    const none = status(pod, rt([], []));
    assert.equal(none.podIP, undefined);
    assert.equal(condition(none, "PodReadyToStartContainers").status, "False");

    const host = mkPod({ hostNetwork: true });
    const h = status(host, rt([sb({ hostNetwork: true, ip: "", ips: [] })], [ctr("main")]), { hostIPs: ["192.168.1.10", "fd00::10"] });
    assert.equal(h.podIP, "192.168.1.10");
    assert.deepEqual(h.podIPs, [{ ip: "192.168.1.10" }, { ip: "fd00::10" }]);
    assert.equal(condition(h, "PodReadyToStartContainers").status, "True");
  });

  it("lastTransitionTime is kept while a condition's status is unchanged and moves when it changes", () => {
    const pod = mkPod();
    const first = status(pod, rt([sb()], [ctr("main")]));
    const later = new Date(T0 + 60_000);
    const same = status(pod, rt([sb()], [ctr("main")]), { previous: first, now: later });
    for (const c of same.conditions ?? []) assert.deepEqual(c.lastTransitionTime, new Date(T0), c.type);
    const changed = status(pod, rt([sb()], [dead("main", 1)]), { previous: first, now: later });
    assert.deepEqual(condition(changed, "Ready").lastTransitionTime, later);
    assert.deepEqual(condition(changed, "ContainersReady").lastTransitionTime, later);
    assert.deepEqual(condition(changed, "PodScheduled").lastTransitionTime, new Date(T0));
    assert.deepEqual(changed.startTime, first.startTime, "startTime is kept from the previous status");
  });

  it("a terminal override sets phase, reason and message", () => {
    const pod = mkPod();
    const s = status(pod, rt([sb()], [ctr("main")]), { terminal: { phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." } });
    assert.equal(s.phase, "Failed");
    assert.equal(s.reason, "Evicted");
    assert.equal(s.message, "The node was low on resource: memory.");
  });

  it("qosClass in the status follows the spec", () => {
    const pod = mkPod({ containers: [{ name: "main", image: "nginx", resources: { requests: { cpu: "100m" } } }] });
    assert.equal(status(pod, rt([sb()], [ctr("main")])).qosClass, "Burstable");
  });
});

// ---- resources ----

function podWith(...resources: V1Container["resources"][]): V1Pod {
  return mkPod({ containers: resources.map((r, i) => ({ name: `c${i}`, image: "nginx", ...(r ? { resources: r } : {}) })) });
}

describe("qosClass", () => {
  it("BestEffort, Burstable, Guaranteed", () => {
    assert.equal(qosClass(podWith(undefined)), "BestEffort");
    assert.equal(qosClass(podWith({})), "BestEffort");
    assert.equal(qosClass(podWith({ requests: { cpu: "0", memory: "0" } })), "BestEffort", "zero quantities count as unset");
    assert.equal(qosClass(podWith({ requests: { cpu: "100m" } })), "Burstable");
    assert.equal(qosClass(podWith({ limits: { memory: "1Gi" } })), "Burstable", "memory limit only: cpu has no limit");
    assert.equal(qosClass(podWith({ requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "2", memory: "1Gi" } })), "Burstable");
    assert.equal(qosClass(podWith({ requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "1", memory: "1Gi" } })), "Guaranteed");
    assert.equal(qosClass(podWith({ requests: { cpu: "1000m", memory: "1024Mi" }, limits: { cpu: "1", memory: "1Gi" } })), "Guaranteed", "equal quantities, different spellings");
    assert.equal(qosClass(podWith({ limits: { cpu: "1", memory: "1Gi" } })), "Guaranteed", "limits only: requests default to limits");
    assert.equal(qosClass(podWith({ limits: { cpu: "1", memory: "1Gi" } }, undefined)), "Burstable", "every container must be guaranteed");
  });

  it("init containers count", () => {
    const pod = podWith({ limits: { cpu: "1", memory: "1Gi" } });
    if (pod.spec) pod.spec.initContainers = [{ name: "init", image: "busybox" }];
    assert.equal(qosClass(pod), "Burstable");
  });
});

describe("containerResources", () => {
  it("cpu shares from the request, quota from the limit, memory limit in bytes", () => {
    const pod = podWith({ requests: { cpu: "250m", memory: "64Mi" }, limits: { cpu: "500m", memory: "128Mi" } });
    const c = pod.spec?.containers[0];
    assert.ok(c);
    const r = containerResources(c, pod, 8 * GiB);
    assert.equal(r.cpuShares, 256n);
    assert.equal(r.cpuPeriod, 100_000n);
    assert.equal(r.cpuQuota, 50_000n);
    assert.equal(r.memoryLimitInBytes, 128n * 1024n * 1024n);
  });

  it("cpu request defaults to the limit; tiny limits get the minimum quota", () => {
    const pod = podWith({ limits: { cpu: "1", memory: "1Gi" } }, { limits: { cpu: "1m" } });
    const [a, b] = pod.spec?.containers ?? [];
    assert.ok(a && b);
    const ra = containerResources(a, pod, 8 * GiB);
    assert.equal(ra.cpuShares, 1024n);
    assert.equal(ra.cpuQuota, 100_000n);
    assert.equal(containerResources(b, pod, 8 * GiB).cpuQuota, 1000n);
  });

  it("BestEffort: 2 shares, no quota, no memory limit, oom_score_adj 1000", () => {
    const pod = podWith(undefined);
    const c = pod.spec?.containers[0];
    assert.ok(c);
    const r = containerResources(c, pod, 8 * GiB);
    assert.equal(r.cpuShares, 2n);
    assert.equal(r.cpuQuota, undefined);
    assert.equal(r.cpuPeriod, undefined);
    assert.equal(r.memoryLimitInBytes, undefined);
    assert.equal(r.oomScoreAdj, 1000n);
  });

  it("shares are clamped to [2, 262144]", () => {
    assert.equal(sharesFromMilli(0), 2);
    assert.equal(sharesFromMilli(1), 2);
    assert.equal(sharesFromMilli(100), 102);
    assert.equal(sharesFromMilli(1000), 1024);
    assert.equal(sharesFromMilli(1_000_000), 262_144);
  });
});

describe("oomScoreAdj", () => {
  const one = (r: V1Container["resources"], capacity = 4 * GiB, extra: Partial<NonNullable<V1Pod["spec"]>> = {}): number => {
    const pod = podWith(r);
    if (pod.spec) Object.assign(pod.spec, extra);
    const c = pod.spec?.containers[0];
    assert.ok(c);
    return oomScoreAdj(c, pod, capacity);
  };

  it("Guaranteed -997, BestEffort 1000, Burstable scaled by the memory request", () => {
    assert.equal(one({ limits: { cpu: "1", memory: "1Gi" } }), -997);
    assert.equal(one(undefined), 1000);
    assert.equal(one({ requests: { memory: "1Gi" } }), 750);
    assert.equal(one({ requests: { cpu: "100m" } }), 999, "no memory request: 1000 becomes 999, below BestEffort");
    assert.equal(one({ requests: { memory: "1Gi" } }, 0), 999);
  });

  it("a Burstable container requesting (almost) all memory gets 1000 + (-997) = 3, as upstream's floor", () => {
    // pkg/kubelet/qos/policy.go: if oomScoreAdjust < 1000 + guaranteedOOMScoreAdj { return 1000 + guaranteedOOMScoreAdj }
    assert.equal(one({ requests: { memory: "4Gi" } }), 3);
    assert.equal(one({ requests: { memory: "8Gi" } }), 3);
  });

  it("node-critical static pods get -997 whatever their QoS (upstream IsNodeCriticalPod)", () => {
    // Static pods are critical (IsCriticalPod); with priorityClassName system-node-critical they are node-critical,
    // which is how kubeadm's control-plane static pods (Burstable) are protected from the OOM killer.
    const pod = podWith({ requests: { cpu: "250m", memory: "256Mi" } });
    if (pod.metadata) pod.metadata.annotations = { "kubernetes.io/config.source": "file" };
    if (pod.spec) pod.spec.priorityClassName = "system-node-critical";
    const c = pod.spec?.containers[0];
    assert.ok(c);
    assert.equal(qosClass(pod), "Burstable");
    assert.equal(oomScoreAdj(c, pod, 4 * GiB), -997);
    assert.equal(containerResources(c, pod, 4 * GiB).oomScoreAdj, -997n);
  });
});

describe("podCgroupParent", () => {
  it("QoS tier and pod UID, under an optional root", () => {
    assert.equal(podCgroupParent(podWith({ limits: { cpu: "1", memory: "1Gi" } })), "/kubepods/poduid-1");
    assert.equal(podCgroupParent(podWith({ requests: { cpu: "1" } })), "/kubepods/burstable/poduid-1");
    assert.equal(podCgroupParent(podWith(undefined)), "/kubepods/besteffort/poduid-1");
    assert.equal(podCgroupParent(podWith(undefined), "/custom"), "/custom/kubepods/besteffort/poduid-1");
  });
});

describe("status manager", () => {
  it("versions a pod's status, notifying subscribers only on real changes", () => {
    const sm = createStatusManager();
    const pod = mkPod();
    const seen: number[] = [];
    const unsubscribe = sm.subscribe((e) => seen.push(e.version));
    const s1 = status(pod, rt([sb()], [ctr("main")]));
    sm.setStatus(pod, s1);
    sm.setStatus(pod, structuredClone(s1));
    assert.deepEqual(seen, [1], "an equal status is not a new version");
    const s2 = status(pod, rt([sb()], [dead("main", 1)]));
    sm.setStatus(pod, s2);
    assert.deepEqual(seen, [1, 2]);
    assert.equal(sm.getStatus("uid-1"), s2);
    assert.equal(sm.entry("uid-1")?.version, 2);
    unsubscribe();
    sm.setStatus(pod, s1);
    assert.deepEqual(seen, [1, 2]);
    sm.remove("uid-1");
    assert.equal(sm.getStatus("uid-1"), undefined);
    assert.deepEqual(sm.entries(), []);
  });
});

// ---- probe verdicts and readiness gates ----

function verdicts(v: { ready?: Record<string, boolean>; started?: Record<string, boolean> }): ProbeVerdicts {
  return { ready: (_u, id) => v.ready?.[id], started: (_u, id) => v.started?.[id], failed: () => undefined };
}

describe("computePodStatus: probe verdicts", () => {
  it("no verdicts: a running container is started and ready", () => {
    const s = status(mkPod(), rt([sb()], [ctr("main")]), { probes: verdicts({}) });
    assert.equal(cs(s).started, true);
    assert.equal(cs(s).ready, true);
  });

  it("startup probe not passed yet: not started and not ready, whatever readiness says", () => {
    const s = status(mkPod(), rt([sb()], [ctr("main")]), { probes: verdicts({ started: { "main-id": false }, ready: { "main-id": true } }) });
    assert.equal(cs(s).started, false);
    assert.equal(cs(s).ready, false);
    assert.equal(condition(s, "ContainersReady").status, "False");
    assert.equal(condition(s, "Ready").reason, "ContainersNotReady");
    assert.equal(condition(s, "Ready").message, "containers with unready status: [main]");
    assert.equal(s.phase, "Running");
  });

  it("readiness failing: started but not ready; Ready and ContainersReady False", () => {
    const pod = mkPod({ containers: [{ name: "main", image: "nginx:1.25" }, { name: "side", image: "busybox:1.36" }] });
    const s = status(pod, rt([sb()], [ctr("main"), ctr("side")]), { probes: verdicts({ started: { "main-id": true }, ready: { "main-id": false } }) });
    assert.equal(cs(s).started, true);
    assert.equal(cs(s).ready, false);
    assert.equal(cs(s, "side").ready, true);
    assert.equal(condition(s, "ContainersReady").status, "False");
    assert.equal(condition(s, "Ready").message, "containers with unready status: [main]");
  });

  it("readiness passing: ready", () => {
    const s = status(mkPod(), rt([sb()], [ctr("main")]), { probes: verdicts({ started: { "main-id": true }, ready: { "main-id": true } }) });
    assert.equal(cs(s).ready, true);
    assert.equal(condition(s, "Ready").status, "True");
  });
});

describe("computePodStatus: readiness gates", () => {
  const gated = (conditions?: V1PodStatus["conditions"]): V1Pod => {
    const pod = mkPod();
    if (pod.spec) pod.spec.readinessGates = [{ conditionType: "example.com/lb" }, { conditionType: "example.com/dns" }];
    if (conditions) pod.status = { conditions };
    return pod;
  };

  it("a gate whose condition is missing or not True keeps Ready False (ReadinessGatesNotReady), ContainersReady True", () => {
    const s = status(gated([{ type: "example.com/lb", status: "False" }]), rt([sb()], [ctr("main")]));
    assert.equal(condition(s, "ContainersReady").status, "True");
    const ready = condition(s, "Ready");
    assert.equal(ready.status, "False");
    assert.equal(ready.reason, "ReadinessGatesNotReady");
    assert.equal(
      ready.message,
      'the status of pod readiness gate "example.com/lb" is not "True", but False, corresponding condition of pod readiness gate "example.com/dns" does not exist.',
    );
    assert.equal(condition(s, "example.com/lb").status, "False", "the gate's condition is kept in the status");
  });

  it("every gate True: Ready True", () => {
    const s = status(
      gated([
        { type: "example.com/lb", status: "True" },
        { type: "example.com/dns", status: "True" },
      ]),
      rt([sb()], [ctr("main")]),
    );
    assert.equal(condition(s, "Ready").status, "True");
  });

  it("gate conditions are also found in the previous status the kubelet published", () => {
    const previous: V1PodStatus = { conditions: [{ type: "example.com/lb", status: "True" }, { type: "example.com/dns", status: "True" }] };
    const s = status(gated(), rt([sb()], [ctr("main")]), { previous });
    assert.equal(condition(s, "Ready").status, "True");
  });
});

// ---- init containers, sidecars, phase ----

function withInits(policy: string, inits: { name: string; sidecar?: boolean }[], containers = ["main"]): V1Pod {
  const pod = mkPod({ restartPolicy: policy, containers: containers.map((name) => ({ name, image: "nginx:1.25" })) });
  if (pod.spec) pod.spec.initContainers = inits.map((i) => ({ name: i.name, image: "busybox:1.36", ...(i.sidecar ? { restartPolicy: "Always" } : {}) }));
  return pod;
}

function ics(s: V1PodStatus, name: string): V1ContainerStatus {
  const c = s.initContainerStatuses?.find((x) => x.name === name);
  assert.ok(c, `init container status ${name}`);
  return c;
}

describe("computePodStatus: init containers", () => {
  it("while the first init container runs: Pending, app waits PodInitializing, Initialized False naming the incomplete ones", () => {
    const pod = withInits("Always", [{ name: "a" }, { name: "b" }]);
    const s = status(pod, rt([sb()], [ctr("a")]));
    assert.equal(s.phase, "Pending");
    assert.ok(ics(s, "a").state?.running);
    assert.deepEqual(ics(s, "b").state, { waiting: { reason: "PodInitializing" } });
    assert.deepEqual(cs(s).state, { waiting: { reason: "PodInitializing" } });
    const init = condition(s, "Initialized");
    assert.equal(init.status, "False");
    assert.equal(init.reason, "ContainersNotInitialized");
    assert.equal(init.message, "containers with incomplete status: [a b]");
    assert.equal(condition(s, "Ready").status, "False");
  });

  it("init done and app running: Initialized True, completed init containers ready, Running", () => {
    const pod = withInits("Always", [{ name: "a" }]);
    const s = status(pod, rt([sb()], [ctr("main"), dead("a", 0)]));
    assert.equal(s.phase, "Running");
    assert.equal(condition(s, "Initialized").status, "True");
    assert.equal(ics(s, "a").ready, true);
    assert.equal(ics(s, "a").state?.terminated?.reason, "Completed");
    assert.equal(condition(s, "Ready").status, "True");
  });

  it("a failed init container: Failed under Never; Pending with CrashLoopBackOff under OnFailure", () => {
    const never = status(withInits("Never", [{ name: "a" }]), rt([sb({ state: "SANDBOX_NOTREADY" })], [dead("a", 3)]));
    assert.equal(never.phase, "Failed");
    assert.equal(ics(never, "a").state?.terminated?.exitCode, 3);
    assert.equal(ics(never, "a").ready, false);
    const waiting = new Map<string, Waiting>([["a", { reason: "CrashLoopBackOff", message: "back-off 10s restarting failed container=a" }]]);
    const onFailure = status(withInits("OnFailure", [{ name: "a" }]), rt([sb()], [dead("a", 1, { restartCount: 2 })]), { waiting });
    assert.equal(onFailure.phase, "Pending");
    assert.equal(ics(onFailure, "a").state?.waiting?.reason, "CrashLoopBackOff");
    assert.equal(ics(onFailure, "a").lastState?.terminated?.exitCode, 1);
    assert.equal(ics(onFailure, "a").restartCount, 2);
    assert.equal(condition(onFailure, "Initialized").message, "containers with incomplete status: [a]");
  });

  it("a pod without init containers has no initContainerStatuses and waits in ContainerCreating", () => {
    const s = status(mkPod(), rt([sb()], []));
    assert.equal(s.initContainerStatuses, undefined);
    assert.equal(cs(s).state?.waiting?.reason, "ContainerCreating");
  });
});

describe("computePodStatus: sidecars", () => {
  it("a started sidecar completes initialization and counts for readiness", () => {
    const pod = withInits("Always", [{ name: "proxy", sidecar: true }]);
    const s = status(pod, rt([sb()], [ctr("main"), ctr("proxy")]), { probes: verdicts({ ready: { "proxy-id": false } }) });
    assert.equal(s.phase, "Running");
    assert.equal(ics(s, "proxy").started, true);
    assert.equal(ics(s, "proxy").ready, false);
    assert.equal(condition(s, "ContainersReady").status, "False");
    assert.equal(condition(s, "ContainersReady").message, "containers with unready status: [proxy]");
  });

  it("a sidecar not started yet (startup probe): Pending, Initialized False", () => {
    const pod = withInits("Always", [{ name: "proxy", sidecar: true }]);
    const s = status(pod, rt([sb()], [ctr("proxy")]), { probes: verdicts({ started: { "proxy-id": false } }) });
    assert.equal(s.phase, "Pending");
    assert.equal(condition(s, "Initialized").message, "containers with incomplete status: [proxy]");
  });

  it("Never: app done and sidecar stopped → Succeeded; the sidecar's exit code does not count", () => {
    const pod = withInits("Never", [{ name: "proxy", sidecar: true }]);
    const s = status(pod, rt([sb({ state: "SANDBOX_NOTREADY" })], [dead("main", 0), dead("proxy", 137)]));
    assert.equal(s.phase, "Succeeded");
    assert.equal(condition(s, "Initialized").status, "True");
    assert.equal(condition(s, "PodReadyToStartContainers").status, "False");
  });

  it("Never: app done while the sidecar still runs → Running (until the sidecar is stopped)", () => {
    const pod = withInits("Never", [{ name: "proxy", sidecar: true }]);
    const s = status(pod, rt([sb()], [dead("main", 1), ctr("proxy")]));
    assert.equal(s.phase, "Running");
  });
});

describe("podPhaseOf", () => {
  const rs = (name: string, state: NonNullable<V1ContainerStatus["state"]>, extra: Partial<V1ContainerStatus> = {}): V1ContainerStatus => ({ name, image: "i", imageID: "", ready: false, restartCount: 0, state, ...extra });
  it("regular init containers gate the phase; sidecars count as running only", () => {
    const done = { status: rs("i", { terminated: { exitCode: 0 } }), sidecar: false };
    const failed = { status: rs("i", { terminated: { exitCode: 1 } }), sidecar: false };
    const runningInit = { status: rs("i", { running: {} }), sidecar: false };
    const side = { status: rs("s", { running: {} }, { started: true }), sidecar: true };
    const app = rs("main", { running: {} });
    const appWaiting = rs("main", { waiting: { reason: "PodInitializing" } });
    assert.equal(podPhaseOf("Always", [runningInit], [appWaiting]), "Pending");
    assert.equal(podPhaseOf("Never", [failed], [appWaiting]), "Failed");
    assert.equal(podPhaseOf("OnFailure", [failed], [appWaiting]), "Pending");
    assert.equal(podPhaseOf("Always", [done, side], [app]), "Running");
    assert.equal(podPhaseOf("Never", [done, side], [rs("main", { terminated: { exitCode: 0 } })]), "Running", "the running sidecar keeps it Running");
    assert.equal(podPhaseOf("Never", [done, { status: rs("s", { terminated: { exitCode: 137 } }), sidecar: true }], [rs("main", { terminated: { exitCode: 0 } })]), "Succeeded");
  });
});

describe("computePodStatus: finished pods", () => {
  it("a finished pod whose sandbox was stopped keeps its previous IPs; a pending one does not", () => {
    const previous: V1PodStatus = { podIP: "10.244.0.5", podIPs: [{ ip: "10.244.0.5" }] };
    const done = status(mkPod({ restartPolicy: "Never" }), rt([sb({ state: "SANDBOX_NOTREADY" })], [dead("main", 0)]), { previous });
    assert.equal(done.phase, "Succeeded");
    assert.equal(done.podIP, "10.244.0.5");
    assert.equal(condition(done, "PodReadyToStartContainers").status, "False");
    const restarting = status(mkPod(), rt([sb({ state: "SANDBOX_NOTREADY" })], [dead("main", 0)]), { previous });
    assert.equal(restarting.podIP, undefined);
  });
});
