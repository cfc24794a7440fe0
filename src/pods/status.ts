/**
 * Pure computation of a pod's API status from its spec, the runtime's view and the worker's
 * waiting reasons: phase, conditions, container statuses, IPs, qosClass.
 */
import type { V1Container, V1ContainerState, V1ContainerStatus, V1Pod, V1PodCondition, V1PodStatus } from "@kubernetes/client-node";
import type { ContainerInfo, RuntimePod } from "./runtime-state.js";
import type { Waiting } from "./plan.js";
import { isSidecar, latestByName } from "./plan.js";
import { qosClass } from "../containers/resources.js";
import { noProbeVerdicts, type ProbeVerdicts } from "./probe-verdicts.js";

export interface StatusInput {
  pod: V1Pod;
  runtime: RuntimePod;
  /** Waiting reasons the last sync recorded per container (ErrImagePull, CrashLoopBackOff, ...). */
  waiting: Map<string, Waiting>;
  /** CRI runtime name, for containerID ("containerd://<id>"). */
  runtimeName: string;
  hostIPs: string[];
  /** When the kubelet first saw the pod (startTime). */
  startTime: Date;
  /** Conditions of the previous status, to keep lastTransitionTime stable. */
  previous: V1PodStatus | undefined;
  now: Date;
  /** Set while the pod is being terminated or has been. */
  terminal?: { phase: "Succeeded" | "Failed"; reason?: string; message?: string } | undefined;
  /** The prober's conclusions: `started` and `ready` of running containers follow them. */
  probes?: ProbeVerdicts | undefined;
}

/** Conditions the kubelet owns; any other condition in the pod's status (readiness gates) is kept. */
export const KUBELET_CONDITIONS: ReadonlySet<string> = new Set(["PodScheduled", "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "DisruptionTarget"]);

export function computePodStatus(input: StatusInput): V1PodStatus {
  const { pod, runtime } = input;
  const latest = latestByName(runtime.containers);
  const spec = pod.spec?.containers ?? [];
  const inits = pod.spec?.initContainers ?? [];
  const defaultWaiting = inits.length > 0 ? "PodInitializing" : "ContainerCreating";
  const containerStatuses = spec.map((c) => containerStatus(input, c, latest.get(c.name), defaultWaiting));
  const initContainerStatuses = inits.map((c) => initContainerStatus(input, c, latest.get(c.name), defaultWaiting));
  const sandbox = runtime.sandboxes[0];
  const sandboxReady = sandbox?.state === "SANDBOX_READY";
  const hostNetwork = pod.spec?.hostNetwork === true;
  let podIPs = hostNetwork ? input.hostIPs : sandboxReady ? (sandbox?.ips ?? []) : [];

  const policy = pod.spec?.restartPolicy ?? "Always";
  const initInfo = inits.map((c, i) => ({ status: initContainerStatuses[i] as V1ContainerStatus, sidecar: isSidecar(c) }));
  const phase = input.terminal?.phase ?? podPhaseOf(policy, initInfo, containerStatuses);
  // A finished pod's sandbox is stopped; it keeps the IPs it had.
  if (podIPs.length === 0 && (phase === "Succeeded" || phase === "Failed")) podIPs = (input.previous?.podIPs ?? []).map((x) => x.ip);
  const conditions = podConditions(input, {
    phase,
    initInfo,
    containerStatuses,
    sandboxReady: sandboxReady && (hostNetwork || podIPs.length > 0),
  });

  // As upstream, a pod is reported terminal only once nothing of it can still run: while its
  // sandbox (or a container) is up it keeps the phase it had, with the terminal conditions.
  const couldRun = sandboxReady || runtime.containers.some((c) => c.state === "CONTAINER_RUNNING");
  const terminal = phase === "Succeeded" || phase === "Failed";
  const prevPhase = input.previous?.phase;
  const reportedPhase = terminal && !input.terminal && couldRun ? (prevPhase && prevPhase !== "Succeeded" && prevPhase !== "Failed" ? prevPhase : "Pending") : phase;

  const status: V1PodStatus = {
    phase: reportedPhase,
    conditions,
    hostIP: input.hostIPs[0] ?? "",
    hostIPs: input.hostIPs.map((ip) => ({ ip })),
    podIP: podIPs[0] ?? "",
    podIPs: podIPs.map((ip) => ({ ip })),
    startTime: input.previous?.startTime ?? input.startTime,
    containerStatuses,
    qosClass: qosClass(pod),
  };
  if (inits.length > 0) status.initContainerStatuses = initContainerStatuses;
  if (!status.podIP) {
    delete status.podIP;
    delete status.podIPs;
  }
  if (input.terminal?.reason) status.reason = input.terminal.reason;
  if (input.terminal?.message) status.message = input.terminal.message;
  return status;
}

/** The kubelet's pod conditions (keeping lastTransitionTime while unchanged), then everyone else's. */
function podConditions(
  input: StatusInput,
  x: { phase: string; initInfo: { status: V1ContainerStatus; sidecar: boolean }[]; containerStatuses: V1ContainerStatus[]; sandboxReady: boolean },
): V1PodCondition[] {
  const { phase, initInfo, containerStatuses } = x;
  // Sidecars count for readiness while they are meant to run.
  const readiness = [...initInfo.filter((i) => i.sidecar && phase !== "Succeeded" && phase !== "Failed").map((i) => i.status), ...containerStatuses];
  const allReady = containerStatuses.length > 0 && readiness.every((s) => s.ready);
  const notReady = readiness.filter((s) => !s.ready).map((s) => s.name);
  // A terminal pod's readiness says why it ended (upstream: PodCompleted / PodFailed, no message).
  const why =
    phase === "Succeeded"
      ? { reason: "PodCompleted", message: "" }
      : phase === "Failed"
        ? { reason: "PodFailed", message: "" }
        : { reason: "ContainersNotReady", message: `containers with unready status: [${notReady.join(" ")}]` };
  const foreign = foreignConditions(input);
  const gates = allReady ? unreadyGates(input.pod, foreign) : [];
  const readyCond =
    gates.length > 0 ? cond("Ready", false, { reason: "ReadinessGatesNotReady", message: gates.join(", ") }) : cond("Ready", allReady, why);
  const conditions: V1PodCondition[] = [
    cond("PodReadyToStartContainers", x.sandboxReady),
    initializedCondition(initInfo, containerStatuses, phase),
    readyCond,
    cond("ContainersReady", allReady, why),
    cond("PodScheduled", true),
  ];
  for (const c of conditions) {
    const prev = input.previous?.conditions?.find((p) => p.type === c.type);
    c.lastTransitionTime = prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : input.now;
  }
  conditions.push(...foreign);
  return conditions;
}

/** Conditions others set on the pod (readiness gates): from the pod as the source has it, else our last status. */
function foreignConditions(input: StatusInput): V1PodCondition[] {
  const own = (input.pod.status?.conditions ?? []).filter((c) => !KUBELET_CONDITIONS.has(c.type));
  const seen = new Set(own.map((c) => c.type));
  const kept = (input.previous?.conditions ?? []).filter((c) => !KUBELET_CONDITIONS.has(c.type) && !seen.has(c.type));
  return [...own, ...kept].map((c) => ({ ...c }));
}

/** Upstream's messages for readiness gates whose condition is missing or not True. */
function unreadyGates(pod: V1Pod, conditions: V1PodCondition[]): string[] {
  const out: string[] = [];
  for (const g of pod.spec?.readinessGates ?? []) {
    const c = conditions.find((x) => x.type === g.conditionType);
    if (!c) out.push(`corresponding condition of pod readiness gate "${g.conditionType}" does not exist.`);
    else if (c.status !== "True") out.push(`the status of pod readiness gate "${g.conditionType}" is not "True", but ${c.status}`);
  }
  return out;
}

function cond(type: string, ok: boolean, why?: { reason: string; message: string }): V1PodCondition {
  const c: V1PodCondition = { type, status: ok ? "True" : "False" };
  if (!ok && why) {
    c.reason = why.reason;
    if (why.message) c.message = why.message;
  }
  return c;
}

/** Upstream's Initialized: True once every init container completed (sidecars: started) or any app container ran. */
function initializedCondition(inits: { status: V1ContainerStatus; sidecar: boolean }[], apps: V1ContainerStatus[], phase: string): V1PodCondition {
  const incomplete = inits
    .filter((x) => (x.sidecar ? !(x.status.state?.running && x.status.started) : x.status.state?.terminated?.exitCode !== 0))
    .map((x) => x.status.name);
  if (phase === "Succeeded") return { type: "Initialized", status: "True", reason: "PodCompleted" };
  const appRan = apps.some((s) => s.state?.running || s.state?.terminated || s.lastState?.terminated);
  if (incomplete.length === 0 || appRan) return cond("Initialized", true);
  return cond("Initialized", false, { reason: "ContainersNotInitialized", message: `containers with incomplete status: [${incomplete.join(" ")}]` });
}

/** An init container's status: as an app container's, and a completed regular one is ready. */
function initContainerStatus(input: StatusInput, c: V1Container, last: ContainerInfo | undefined, defaultWaiting: string): V1ContainerStatus {
  const s = containerStatus(input, c, last, defaultWaiting);
  if (!isSidecar(c)) {
    s.ready = s.state?.terminated?.exitCode === 0;
    if (s.state?.terminated) s.started = false;
  }
  return s;
}

function containerStatus(input: StatusInput, c: V1Container, last: ContainerInfo | undefined, defaultWaiting = "ContainerCreating"): V1ContainerStatus {
  const { runtime } = input;
  const idOf = (x: ContainerInfo): string => `${input.runtimeName}://${x.id}`;
  const status: V1ContainerStatus = {
    name: c.name,
    image: c.image ?? "",
    imageID: last?.imageRef ?? "",
    ready: false,
    restartCount: last?.restartCount ?? 0,
    started: false,
    state: {},
    lastState: {},
  };
  const waiting = input.waiting.get(c.name);
  if (last) status.containerID = idOf(last);
  if (!last) {
    status.state = { waiting: { reason: waiting?.reason ?? defaultWaiting, ...(waiting?.message ? { message: waiting.message } : {}) } };
    const prev = runtime.containers.find((x) => x.name === c.name);
    if (prev) status.lastState = terminatedState(prev, idOf(prev));
    return status;
  }
  const previous = runtime.containers.find((x) => x.name === c.name && x.id !== last.id && x.state === "CONTAINER_EXITED");
  if (last.state === "CONTAINER_RUNNING") {
    const probes = input.probes ?? noProbeVerdicts;
    const podUid = input.pod.metadata?.uid ?? "";
    status.state = { running: { startedAt: new Date(last.startedAtMs) } };
    status.started = probes.started(podUid, last.id) ?? true;
    status.ready = status.started && (probes.ready(podUid, last.id) ?? true);
    if (previous) status.lastState = terminatedState(previous, idOf(previous));
    return status;
  }
  if (last.state === "CONTAINER_EXITED" || last.state === "CONTAINER_UNKNOWN") {
    if (waiting) {
      status.state = { waiting: { reason: waiting.reason, message: waiting.message } };
      status.lastState = terminatedState(last, idOf(last));
    } else {
      status.state = terminatedState(last, idOf(last));
      if (previous) status.lastState = terminatedState(previous, idOf(previous));
    }
    return status;
  }
  status.state = { waiting: { reason: waiting?.reason ?? defaultWaiting, ...(waiting?.message ? { message: waiting.message } : {}) } };
  return status;
}

function terminatedState(x: ContainerInfo, containerID: string): V1ContainerState {
  if (x.state === "CONTAINER_UNKNOWN") {
    return { terminated: { exitCode: 137, reason: "ContainerStatusUnknown", message: "The container could not be located when the pod was terminated", containerID } };
  }
  const reason = x.reason && x.reason !== "" ? x.reason : x.exitCode === 0 ? "Completed" : "Error";
  return {
    terminated: {
      exitCode: x.exitCode,
      reason,
      ...(x.message ? { message: x.message } : {}),
      startedAt: new Date(x.startedAtMs),
      finishedAt: new Date(x.finishedAtMs),
      containerID,
    },
  };
}

/** The phase rules of upstream's getPhase for regular containers only. */
export function podPhase(restartPolicy: string, statuses: V1ContainerStatus[]): string {
  return podPhaseOf(restartPolicy, [], statuses);
}

interface PhaseCounts {
  running: number;
  waiting: number;
  stopped: number;
  succeeded: number;
  unknown: number;
}

/**
 * Upstream's getPhase: regular init containers gate the pod (Pending while any is pending, Failed
 * under Never when one failed); sidecars count as running but never as stopped; then the app
 * containers decide by the restart policy.
 */
export function podPhaseOf(restartPolicy: string, inits: { status: V1ContainerStatus; sidecar: boolean }[], statuses: V1ContainerStatus[]): string {
  const n: PhaseCounts = { running: 0, waiting: 0, stopped: 0, succeeded: 0, unknown: 0 };
  const init = countInits(inits, n);
  for (const s of statuses) countApp(s, n);
  if (init.failed > 0 && restartPolicy === "Never") return "Failed";
  const appRan = statuses.some((s) => s.state?.running || s.state?.terminated || s.lastState?.terminated);
  if (init.pending > 0 || (init.pendingSidecars > 0 && !appRan) || init.failed > 0 || n.waiting > 0) return "Pending";
  if (n.running > 0 && n.unknown === 0) return "Running";
  if (n.running === 0 && n.stopped > 0 && n.unknown === 0) {
    if (restartPolicy === "Always") return "Running";
    if (n.stopped === n.succeeded) return "Succeeded";
    if (restartPolicy === "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

/** Regular init containers: pending or failed; sidecars: pending, and running ones count as running. */
function countInits(inits: { status: V1ContainerStatus; sidecar: boolean }[], n: PhaseCounts): { pending: number; pendingSidecars: number; failed: number } {
  const out = { pending: 0, pendingSidecars: 0, failed: 0 };
  for (const { status: s, sidecar } of inits) {
    if (sidecar) {
      countSidecar(s, n, out);
      continue;
    }
    if (s.state?.running) out.pending++;
    else if (s.state?.terminated) out.failed += s.state.terminated.exitCode !== 0 ? 1 : 0;
    else if (s.state?.waiting && s.lastState?.terminated) out.failed += s.lastState.terminated.exitCode !== 0 ? 1 : 0;
    else out.pending++;
  }
  return out;
}

function countSidecar(s: V1ContainerStatus, n: PhaseCounts, out: { pendingSidecars: number }): void {
  if (s.state?.running) {
    if (!s.started) out.pendingSidecars++;
    n.running++;
  } else if (s.state?.waiting && !s.lastState?.terminated) {
    out.pendingSidecars++;
    n.waiting++;
  } else if (!s.state?.terminated && !s.state?.waiting) {
    out.pendingSidecars++;
    n.unknown++;
  }
}

function countApp(s: V1ContainerStatus, n: PhaseCounts): void {
  if (s.state?.running) n.running++;
  else if (s.state?.terminated) {
    n.stopped++;
    if (s.state.terminated.exitCode === 0) n.succeeded++;
  } else if (s.state?.waiting) {
    if (s.lastState?.terminated) n.stopped++;
    else n.waiting++;
  } else n.unknown++;
}
