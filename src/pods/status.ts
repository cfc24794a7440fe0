/**
 * Pure computation of a pod's API status from its spec, the runtime's view and the worker's
 * waiting reasons: phase, conditions, container statuses, IPs, qosClass.
 */
import type { V1Container, V1ContainerState, V1ContainerStatus, V1Pod, V1PodCondition, V1PodStatus } from "@kubernetes/client-node";
import type { ContainerInfo, RuntimePod } from "./runtime-state.js";
import type { Waiting } from "./plan.js";
import { latestByName } from "./plan.js";
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
const KUBELET_CONDITIONS = new Set(["PodScheduled", "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "DisruptionTarget"]);

export function computePodStatus(input: StatusInput): V1PodStatus {
  const { pod, runtime } = input;
  const latest = latestByName(runtime.containers);
  const spec = pod.spec?.containers ?? [];
  const containerStatuses = spec.map((c) => containerStatus(input, c, latest.get(c.name)));
  const sandbox = runtime.sandboxes[0];
  const sandboxReady = sandbox?.state === "SANDBOX_READY";
  const hostNetwork = pod.spec?.hostNetwork === true;
  const podIPs = hostNetwork ? input.hostIPs : sandboxReady ? (sandbox?.ips ?? []) : [];

  const phase = input.terminal?.phase ?? podPhase(pod.spec?.restartPolicy ?? "Always", containerStatuses);
  const allReady = containerStatuses.length > 0 && containerStatuses.every((s) => s.ready);
  const notReady = containerStatuses.filter((s) => !s.ready).map((s) => s.name);
  const why =
    phase === "Succeeded"
      ? { reason: "PodCompleted", message: "" }
      : { reason: "ContainersNotReady", message: `containers with unready status: [${notReady.join(" ")}]` };
  const foreign = foreignConditions(input);
  const gates = allReady ? unreadyGates(pod, foreign) : [];
  const readyCond =
    gates.length > 0 ? cond("Ready", false, { reason: "ReadinessGatesNotReady", message: gates.join(", ") }) : cond("Ready", allReady, why);
  const containersReadyCond = cond("ContainersReady", allReady, why);
  const conditions: V1PodCondition[] = [
    cond("PodReadyToStartContainers", sandboxReady && (hostNetwork || podIPs.length > 0)),
    cond("Initialized", true),
    readyCond,
    containersReadyCond,
    cond("PodScheduled", true),
  ];
  for (const c of conditions) {
    const prev = input.previous?.conditions?.find((p) => p.type === c.type);
    c.lastTransitionTime = prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : input.now;
  }
  conditions.push(...foreign);

  const status: V1PodStatus = {
    phase,
    conditions,
    hostIP: input.hostIPs[0] ?? "",
    hostIPs: input.hostIPs.map((ip) => ({ ip })),
    podIP: podIPs[0] ?? "",
    podIPs: podIPs.map((ip) => ({ ip })),
    startTime: input.previous?.startTime ?? input.startTime,
    containerStatuses,
    qosClass: qosClass(pod),
  };
  if (!status.podIP) {
    delete status.podIP;
    delete status.podIPs;
  }
  if (input.terminal?.reason) status.reason = input.terminal.reason;
  if (input.terminal?.message) status.message = input.terminal.message;
  return status;
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

function containerStatus(input: StatusInput, c: V1Container, last: ContainerInfo | undefined): V1ContainerStatus {
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
    status.state = { waiting: { reason: waiting?.reason ?? "ContainerCreating", ...(waiting?.message ? { message: waiting.message } : {}) } };
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
  status.state = { waiting: { reason: waiting?.reason ?? "ContainerCreating", ...(waiting?.message ? { message: waiting.message } : {}) } };
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

/** The phase rules of upstream's getPhase for regular containers. */
export function podPhase(restartPolicy: string, statuses: V1ContainerStatus[]): string {
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of statuses) {
    if (s.state?.running) running++;
    else if (s.state?.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state?.waiting) {
      if (s.lastState?.terminated) stopped++;
      else waiting++;
    }
  }
  if (waiting > 0) return "Pending";
  if (running > 0) return "Running";
  if (stopped > 0) {
    if (restartPolicy === "Always") return "Running";
    if (stopped === succeeded) return "Succeeded";
    if (restartPolicy === "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}
