/**
 * Plan, then execute: a pure function that compares what a pod wants with what the runtime has
 * and says what to do next. The worker re-runs it on every sync, so a lost step is simply re-planned.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { Backoff } from "./backoff.js";
import type { ContainerInfo, RuntimePod, SandboxInfo } from "./runtime-state.js";
import { noProbeVerdicts, type ProbeVerdicts } from "./probe-verdicts.js";
import { containerHash } from "../containers/container.js";
import { formatDuration } from "../config/duration.js";

export interface ContainerStart {
  container: V1Container;
  restartCount: number;
  /** True when this start follows an exit (the crash-loop backoff records it). */
  afterExit: { finishedAtMs: number } | undefined;
}

export interface ContainerKill {
  id: string;
  name: string;
  /** Why, for the Killing event. */
  message: string;
  /** The grace period for this kill when it is not the pod's (a probe's terminationGracePeriodSeconds). */
  graceSeconds?: number | undefined;
}

export interface Waiting {
  reason: string;
  message: string;
}

export interface PodActions {
  /** Stop every running container and ready sandbox of the pod before anything else. */
  killPod: boolean;
  createSandbox: boolean;
  sandboxAttempt: number;
  /** The sandbox to start containers in (when not creating one). */
  sandbox: SandboxInfo | undefined;
  containersToStart: ContainerStart[];
  containersToKill: ContainerKill[];
  /** Containers that must wait, with the reason status shows (CrashLoopBackOff, ...). */
  waiting: Map<string, Waiting>;
  /** Dead containers and sandboxes no longer needed (older attempts, old sandboxes). */
  containersToRemove: string[];
  sandboxesToRemove: string[];
  /** Earliest time a backoff ends and the pod should be synced again. */
  wakeAtMs: number | undefined;
}

export interface PlanInput {
  pod: V1Pod;
  runtime: RuntimePod;
  crashBackoff: Backoff;
  nowMs: number;
  /** The prober's conclusions; a container whose liveness or startup probe failed is restarted. */
  probes?: ProbeVerdicts | undefined;
}

export function backoffKey(pod: V1Pod, name: string): string {
  return `${pod.metadata?.uid ?? ""}/${name}`;
}

export function shouldRestart(policy: string | undefined, c: ContainerInfo): boolean {
  if (c.state === "CONTAINER_RUNNING") return false;
  if (policy === "Never") return false;
  if (policy === "OnFailure") return c.exitCode !== 0;
  return true;
}

/** The newest container of each name. */
export function latestByName(containers: ContainerInfo[]): Map<string, ContainerInfo> {
  const m = new Map<string, ContainerInfo>();
  for (const c of containers) if (!m.has(c.name)) m.set(c.name, c);
  return m;
}

function sandboxUsable(pod: V1Pod, sb: SandboxInfo | undefined): boolean {
  if (!sb || sb.state !== "SANDBOX_READY") return false;
  const wantHost = pod.spec?.hostNetwork === true;
  if (sb.hostNetwork !== wantHost) return false;
  return wantHost || sb.ip !== "";
}

export function computePodActions(input: PlanInput): PodActions {
  const { pod, runtime } = input;
  const policy = pod.spec?.restartPolicy ?? "Always";
  const spec = pod.spec?.containers ?? [];
  const newest = runtime.sandboxes[0];
  const latest = latestByName(runtime.containers);
  const actions: PodActions = {
    killPod: false,
    createSandbox: false,
    sandboxAttempt: 0,
    sandbox: undefined,
    containersToStart: [],
    containersToKill: [],
    waiting: new Map(),
    containersToRemove: [],
    sandboxesToRemove: [],
    wakeAtMs: undefined,
  };

  if (!sandboxUsable(pod, newest)) {
    const alreadyRan = runtime.containers.length > 0;
    const anyLive = runtime.containers.some((c) => c.state === "CONTAINER_RUNNING") || runtime.sandboxes.some((s) => s.state === "SANDBOX_READY");
    actions.killPod = anyLive;
    // A pod whose containers already ran to completion under its policy gets no new sandbox.
    const toStart = spec.filter((c) => {
      const last = latest.get(c.name);
      return !last || !alreadyRan || shouldRestart(policy, { ...last, state: "CONTAINER_EXITED" });
    });
    if (toStart.length > 0) {
      actions.createSandbox = true;
      actions.sandboxAttempt = newest ? newest.attempt + 1 : 0;
      for (const c of toStart) {
        const last = latest.get(c.name);
        if (last && last.state !== "CONTAINER_RUNNING" && last.finishedAtMs > 0 && inCrashLoop(input, c.name, last, actions)) continue;
        const afterExit = last && last.state !== "CONTAINER_RUNNING" && last.finishedAtMs > 0 ? { finishedAtMs: last.finishedAtMs } : undefined;
        actions.containersToStart.push({ container: c, restartCount: last ? last.restartCount + 1 : 0, afterExit });
      }
    }
    collectGarbage(runtime, undefined, actions);
    return actions;
  }

  actions.sandbox = newest;
  const specNames = new Set(spec.map((c) => c.name));
  for (const c of spec) planContainer(input, c, latest.get(c.name), actions);
  for (const c of runtime.containers) {
    if (c.state === "CONTAINER_RUNNING" && (!specNames.has(c.name) || c.sandboxId !== newest?.id || latest.get(c.name)?.id !== c.id)) {
      if (!actions.containersToKill.some((k) => k.id === c.id)) {
        actions.containersToKill.push({ id: c.id, name: c.name, message: `Container ${c.name} is not part of the pod's current spec or sandbox` });
      }
    }
  }
  collectGarbage(runtime, newest, actions);
  return actions;
}

function planContainer(input: PlanInput, c: V1Container, last: ContainerInfo | undefined, actions: PodActions): void {
  const { pod } = input;
  const policy = pod.spec?.restartPolicy ?? "Always";
  if (!last) {
    actions.containersToStart.push({ container: c, restartCount: 0, afterExit: undefined });
    return;
  }
  const currentSandbox = last.sandboxId === actions.sandbox?.id;
  if (last.state === "CONTAINER_RUNNING") {
    if (currentSandbox && last.hash === containerHash(c)) {
      planProbeFailure(input, c, last, actions);
      return;
    }
    actions.containersToKill.push({
      id: last.id,
      name: c.name,
      message: currentSandbox ? `Container ${c.name} definition changed, will be restarted` : `Container ${c.name} runs in an old sandbox`,
    });
    actions.containersToStart.push({ container: c, restartCount: last.restartCount + 1, afterExit: undefined });
    return;
  }
  if (last.state === "CONTAINER_CREATED") {
    // Created but never started (e.g. the kubelet stopped between create and start): start over.
    actions.containersToRemove.push(last.id);
    actions.containersToStart.push({ container: c, restartCount: last.restartCount, afterExit: undefined });
    return;
  }
  if (!currentSandbox && last.state !== "CONTAINER_EXITED") return;
  if (!shouldRestart(policy, last)) return;
  if (inCrashLoop(input, c.name, last, actions)) return;
  actions.containersToStart.push({ container: c, restartCount: last.restartCount + 1, afterExit: { finishedAtMs: last.finishedAtMs } });
}

/**
 * A running container whose liveness or startup probe failed is killed (with the probe's grace
 * period when it sets one) and, unless the policy is Never, started again as after any exit.
 */
function planProbeFailure(input: PlanInput, c: V1Container, last: ContainerInfo, actions: PodActions): void {
  const failure = (input.probes ?? noProbeVerdicts).failed(input.pod.metadata?.uid ?? "", last.id);
  if (!failure) return;
  const graceSeconds = failure.terminationGracePeriodSeconds ?? input.pod.spec?.terminationGracePeriodSeconds ?? undefined;
  actions.containersToKill.push({ id: last.id, name: c.name, message: failure.message, graceSeconds });
  if ((input.pod.spec?.restartPolicy ?? "Always") === "Never") return;
  // The kill ends it now: the restart counts as an exit at this time for the crash-loop backoff.
  const asExited: ContainerInfo = { ...last, state: "CONTAINER_EXITED", finishedAtMs: input.nowMs };
  if (inCrashLoop(input, c.name, asExited, actions)) return;
  actions.containersToStart.push({ container: c, restartCount: last.restartCount + 1, afterExit: { finishedAtMs: input.nowMs } });
}

/** True (and the container marked CrashLoopBackOff, with a wake-up) while its restart backoff runs. */
function inCrashLoop(input: PlanInput, name: string, last: ContainerInfo, actions: PodActions): boolean {
  const { pod } = input;
  const key = backoffKey(pod, name);
  if (!input.crashBackoff.isInBackoffSince(key, last.finishedAtMs)) return false;
  const delay = input.crashBackoff.delay(key);
  actions.waiting.set(name, {
    reason: "CrashLoopBackOff",
    message: `back-off ${formatDuration(delay)} restarting failed container=${name} pod=${pod.metadata?.name ?? ""}_${pod.metadata?.namespace ?? ""}(${pod.metadata?.uid ?? ""})`,
  });
  const wake = last.finishedAtMs + delay;
  actions.wakeAtMs = actions.wakeAtMs === undefined ? wake : Math.min(actions.wakeAtMs, wake);
  return true;
}

/**
 * Keeps, per container name, the newest dead instance (for `logs --previous`) and removes older ones;
 * removes sandboxes other than the current one once nothing in them runs.
 */
function collectGarbage(runtime: RuntimePod, current: SandboxInfo | undefined, actions: PodActions): void {
  const keptDead = new Set<string>();
  for (const c of runtime.containers) {
    if (c.state === "CONTAINER_RUNNING" || c.state === "CONTAINER_CREATED") continue;
    if (!keptDead.has(c.name)) {
      keptDead.add(c.name);
      continue;
    }
    if (!actions.containersToRemove.includes(c.id)) actions.containersToRemove.push(c.id);
  }
  for (const sb of runtime.sandboxes) {
    if (sb.id === current?.id || sb.state !== "SANDBOX_NOTREADY") continue;
    const holds = runtime.containers.some((c) => c.sandboxId === sb.id && !actions.containersToRemove.includes(c.id));
    if (!holds) actions.sandboxesToRemove.push(sb.id);
  }
}
