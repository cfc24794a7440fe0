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

/** Which list of the spec a container comes from; sidecars are init containers with restartPolicy Always. */
export type ContainerKind = "init" | "sidecar" | "app";

export interface ContainerStart {
  container: V1Container;
  restartCount: number;
  /** True when this start follows an exit (the crash-loop backoff records it). */
  afterExit: { finishedAtMs: number } | undefined;
  /** Absent means an app container. */
  kind?: ContainerKind | undefined;
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
  /** Sidecars to stop one after the other (reverse spec order) once the app containers are done. */
  sidecarsToStop: ContainerKill[];
  /** Every container is done and none will run again: stop the sandbox (after sidecarsToStop). */
  stopSandbox: boolean;
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

export function isSidecar(c: V1Container): boolean {
  return c.restartPolicy === "Always";
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

/** True when an init container's record says it completed (exit 0); sidecars never complete. */
export function initSucceeded(c: ContainerInfo | undefined): boolean {
  return c !== undefined && c.state === "CONTAINER_EXITED" && c.exitCode === 0;
}

function sandboxUsable(pod: V1Pod, sb: SandboxInfo | undefined): boolean {
  if (!sb || sb.state !== "SANDBOX_READY") return false;
  const wantHost = pod.spec?.hostNetwork === true;
  if (sb.hostNetwork !== wantHost) return false;
  return wantHost || sb.ip !== "";
}

function emptyActions(): PodActions {
  return {
    killPod: false,
    createSandbox: false,
    sandboxAttempt: 0,
    sandbox: undefined,
    containersToStart: [],
    containersToKill: [],
    sidecarsToStop: [],
    stopSandbox: false,
    waiting: new Map(),
    containersToRemove: [],
    sandboxesToRemove: [],
    wakeAtMs: undefined,
  };
}

export function computePodActions(input: PlanInput): PodActions {
  const { pod, runtime } = input;
  const newest = runtime.sandboxes[0];
  const actions = emptyActions();

  if (!sandboxUsable(pod, newest)) {
    planNewSandbox(input, actions);
    collectGarbage(runtime, undefined, actions);
    return actions;
  }

  actions.sandbox = newest;
  const spec = pod.spec?.containers ?? [];
  const inits = pod.spec?.initContainers ?? [];
  const latest = latestByName(runtime.containers);
  const here = latestByName(runtime.containers.filter((c) => c.sandboxId === newest?.id));
  // Once any app container was created in this sandbox, initialization is over for good.
  const appStarted = spec.some((c) => here.has(c.name));
  const appsDone = appStarted && appContainersDone(input, here);
  const init = planInitContainers(input, here, { appStarted, appsDone }, actions);
  if (init === "failed" || appsDone) {
    stopSidecars(input, here, actions);
    const othersLive = runtime.containers.some((c) => c.state === "CONTAINER_RUNNING" && !actions.sidecarsToStop.some((k) => k.id === c.id));
    if (!othersLive && actions.containersToStart.length === 0) actions.stopSandbox = true;
  } else if (init === "done") {
    for (const c of spec) planContainer(input, c, latest.get(c.name), actions);
  }
  const specNames = new Set([...spec, ...inits].map((c) => c.name));
  for (const c of runtime.containers) {
    if (c.state === "CONTAINER_RUNNING" && (!specNames.has(c.name) || c.sandboxId !== newest?.id || latest.get(c.name)?.id !== c.id)) {
      if (!actions.containersToKill.some((k) => k.id === c.id) && !actions.sidecarsToStop.some((k) => k.id === c.id)) {
        actions.containersToKill.push({ id: c.id, name: c.name, message: `Container ${c.name} is not part of the pod's current spec or sandbox` });
      }
    }
  }
  collectGarbage(runtime, newest, actions);
  return actions;
}

/** Upstream's rules for a pod without a usable sandbox: start over from the first init container, or not at all. */
function planNewSandbox(input: PlanInput, actions: PodActions): void {
  const { pod, runtime } = input;
  const policy = pod.spec?.restartPolicy ?? "Always";
  const spec = pod.spec?.containers ?? [];
  const inits = pod.spec?.initContainers ?? [];
  const newest = runtime.sandboxes[0];
  const latest = latestByName(runtime.containers);
  actions.killPod = runtime.containers.some((c) => c.state === "CONTAINER_RUNNING") || runtime.sandboxes.some((s) => s.state === "SANDBOX_READY");
  // Under Never, a pod whose containers already ran gets no new sandbox.
  if (policy === "Never" && newest !== undefined && runtime.containers.length > 0) return;
  const toStart = spec.filter((c) => !(policy === "OnFailure" && initSucceeded(latest.get(c.name))));
  const initialized = spec.some((c) => latest.has(c.name));
  if (initialized && toStart.length === 0) return;
  actions.createSandbox = true;
  actions.sandboxAttempt = newest ? newest.attempt + 1 : 0;
  const first = inits[0];
  const list: [V1Container, ContainerKind][] = first ? [[first, isSidecar(first) ? "sidecar" : "init"]] : toStart.map((c) => [c, "app"]);
  for (const [c, kind] of list) {
    const last = latest.get(c.name);
    const exitedBefore = last && last.state !== "CONTAINER_RUNNING" && last.finishedAtMs > 0;
    if (exitedBefore && inCrashLoop(input, c.name, last, actions)) continue;
    const afterExit = exitedBefore ? { finishedAtMs: last.finishedAtMs } : undefined;
    actions.containersToStart.push({ container: c, restartCount: last ? last.restartCount + 1 : 0, afterExit, kind });
  }
}

/** Under Never or OnFailure: true once every app container exited and none will be restarted. */
function appContainersDone(input: PlanInput, here: Map<string, ContainerInfo>): boolean {
  const policy = input.pod.spec?.restartPolicy ?? "Always";
  if (policy === "Always") return false;
  return (input.pod.spec?.containers ?? []).every((c) => {
    const last = here.get(c.name);
    return last !== undefined && last.state === "CONTAINER_EXITED" && !shouldRestart(policy, last);
  });
}

/** Running sidecars, stopped last-first once nothing else needs them. */
function stopSidecars(input: PlanInput, here: Map<string, ContainerInfo>, actions: PodActions): void {
  const inits = [...(input.pod.spec?.initContainers ?? [])].reverse();
  for (const c of inits) {
    const last = here.get(c.name);
    if (isSidecar(c) && last?.state === "CONTAINER_RUNNING") actions.sidecarsToStop.push({ id: last.id, name: c.name, message: `Stopping container ${c.name}` });
  }
}

type InitProgress = "done" | "pending" | "failed";

/** What a planning step reads and writes. */
interface PlanStep {
  input: PlanInput;
  actions: PodActions;
}

/**
 * Init containers one at a time, in order: a regular one must exit 0 before the next starts; a
 * sidecar must be started (its startup probe passed). Sidecars are restarted whenever they exit,
 * also after initialization, until the app containers are done.
 */
function planInitContainers(input: PlanInput, here: Map<string, ContainerInfo>, app: { appStarted: boolean; appsDone: boolean }, actions: PodActions): InitProgress {
  const policy = input.pod.spec?.restartPolicy ?? "Always";
  for (const c of input.pod.spec?.initContainers ?? []) {
    const last = here.get(c.name);
    if (isSidecar(c)) {
      if (app.appsDone) continue;
      const settled = planSidecar({ input, actions }, c, last, app.appStarted);
      if (settled || app.appStarted) continue;
      return "pending";
    }
    if (app.appStarted || initSucceeded(last)) continue;
    if (last?.state === "CONTAINER_RUNNING") return "pending";
    if (last && last.state !== "CONTAINER_CREATED" && policy === "Never") return "failed";
    startAgain({ input, actions }, c, last, "init");
    return "pending";
  }
  return "done";
}

/** Keeps one sidecar running; true when it is up and started, so the next init container may go. */
function planSidecar(p: PlanStep, c: V1Container, last: ContainerInfo | undefined, appStarted: boolean): boolean {
  if (last?.state !== "CONTAINER_RUNNING") {
    startAgain(p, c, last, "sidecar");
    return false;
  }
  if (last.hash !== containerHash(c)) {
    p.actions.containersToKill.push({ id: last.id, name: c.name, message: `Container ${c.name} definition changed, will be restarted` });
    p.actions.containersToStart.push({ container: c, restartCount: last.restartCount + 1, afterExit: undefined, kind: "sidecar" });
    return false;
  }
  if (planProbeFailure(p, c, last, "sidecar")) return false;
  const probes = p.input.probes ?? noProbeVerdicts;
  return appStarted || probes.started(p.input.pod.metadata?.uid ?? "", last.id) !== false;
}

/** Starts a container that has no running instance: the first time, after a create without start, or after an exit (with backoff). */
function startAgain(p: PlanStep, c: V1Container, last: ContainerInfo | undefined, kind: ContainerKind): void {
  const { input, actions } = p;
  if (!last) {
    // First run in this sandbox; an earlier sandbox's instance still counts for restartCount.
    const earlier = input.runtime.containers.find((x) => x.name === c.name);
    actions.containersToStart.push({ container: c, restartCount: earlier ? earlier.restartCount + 1 : 0, afterExit: undefined, kind });
    return;
  }
  if (last.state === "CONTAINER_CREATED") {
    actions.containersToRemove.push(last.id);
    actions.containersToStart.push({ container: c, restartCount: last.restartCount, afterExit: undefined, kind });
    return;
  }
  if (inCrashLoop(input, c.name, last, actions)) return;
  actions.containersToStart.push({ container: c, restartCount: last.restartCount + 1, afterExit: { finishedAtMs: last.finishedAtMs }, kind });
}

function planContainer(input: PlanInput, c: V1Container, last: ContainerInfo | undefined, actions: PodActions): void {
  const { pod } = input;
  const policy = pod.spec?.restartPolicy ?? "Always";
  if (!last) {
    actions.containersToStart.push({ container: c, restartCount: 0, afterExit: undefined, kind: "app" });
    return;
  }
  const currentSandbox = last.sandboxId === actions.sandbox?.id;
  if (last.state === "CONTAINER_RUNNING") {
    if (currentSandbox && last.hash === containerHash(c)) {
      planProbeFailure({ input, actions }, c, last, "app");
      return;
    }
    actions.containersToKill.push({
      id: last.id,
      name: c.name,
      message: currentSandbox ? `Container ${c.name} definition changed, will be restarted` : `Container ${c.name} runs in an old sandbox`,
    });
    actions.containersToStart.push({ container: c, restartCount: last.restartCount + 1, afterExit: undefined, kind: "app" });
    return;
  }
  if (last.state === "CONTAINER_CREATED") {
    // Created but never started (e.g. the kubelet stopped between create and start): start over.
    actions.containersToRemove.push(last.id);
    actions.containersToStart.push({ container: c, restartCount: last.restartCount, afterExit: undefined, kind: "app" });
    return;
  }
  if (!currentSandbox && last.state !== "CONTAINER_EXITED") return;
  if (!shouldRestart(policy, last)) return;
  if (inCrashLoop(input, c.name, last, actions)) return;
  actions.containersToStart.push({ container: c, restartCount: last.restartCount + 1, afterExit: { finishedAtMs: last.finishedAtMs }, kind: "app" });
}

/**
 * A running container whose liveness or startup probe failed is killed (with the probe's grace
 * period when it sets one) and, unless the policy is Never, started again as after any exit.
 */
function planProbeFailure(p: PlanStep, c: V1Container, last: ContainerInfo, kind: ContainerKind): boolean {
  const { input, actions } = p;
  const failure = (input.probes ?? noProbeVerdicts).failed(input.pod.metadata?.uid ?? "", last.id);
  if (!failure) return false;
  const graceSeconds = failure.terminationGracePeriodSeconds ?? input.pod.spec?.terminationGracePeriodSeconds ?? undefined;
  actions.containersToKill.push({ id: last.id, name: c.name, message: failure.message, graceSeconds });
  if (kind !== "sidecar" && (input.pod.spec?.restartPolicy ?? "Always") === "Never") return true;
  // The kill ends it now: the restart counts as an exit at this time for the crash-loop backoff.
  const asExited: ContainerInfo = { ...last, state: "CONTAINER_EXITED", finishedAtMs: input.nowMs };
  if (inCrashLoop(input, c.name, asExited, actions)) return true;
  actions.containersToStart.push({ container: c, restartCount: last.restartCount + 1, afterExit: { finishedAtMs: input.nowMs }, kind });
  return true;
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
