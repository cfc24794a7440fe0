/**
 * One worker per pod: a loop that converges the runtime with the pod's desired state whenever
 * something changes (a new spec, a runtime event, a backoff ending, the periodic resync), and that
 * kills and cleans the pod up when it is no longer wanted. Level-triggered: every sync re-reads
 * the runtime and re-plans.
 */
import { mkdir, rm } from "node:fs/promises";
import type { V1Container, V1Pod, V1PodCondition, V1PodStatus } from "@kubernetes/client-node";
import type { PodSandboxConfig, RuntimeService } from "../cri/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import type { KubeletMetrics } from "../metrics/index.js";
import { errorMessage } from "../util/errors.js";
import { buildSandboxConfig, isHostNetwork, podLogDirectory, type SandboxOptions } from "../containers/sandbox.js";
import { makeContainerConfig } from "../containers/container.js";
import { ContainerConfigError, type NodeAllocatable } from "../containers/env.js";
import type { VolumeManager } from "../volumes/index.js";
import { podCgroupParent } from "../containers/resources.js";
import { removeCgroup } from "../containers/cgroups.js";
import type { Backoff } from "./backoff.js";
import type { EnsureImageResult, ImageManager } from "./images.js";
import { backoffKey, computePodActions, type PodActions, type Waiting } from "./plan.js";
import { getRuntimePod, type RuntimePod } from "./runtime-state.js";
import { computePodStatus } from "./status.js";

export type EventType = "Normal" | "Warning";
export type EventRecorder = (pod: V1Pod, type: EventType, reason: string, message: string) => void;

export interface WorkerEnv {
  rs: RuntimeService;
  images: ImageManager;
  crashBackoff: Backoff;
  clock: Clock;
  logger: Logger;
  metrics: KubeletMetrics | undefined;
  events: EventRecorder;
  sandbox: Omit<SandboxOptions, "attempt">;
  memoryCapacity: number;
  hostIPs: () => string[];
  runtimeName: () => string;
  networkReady: () => boolean;
  resyncMs: number;
  /** The pod's volumes (set up before the sandbox, mounts per container, torn down at cleanup) and env lookups. */
  volumes: Pick<VolumeManager, "setUp" | "mountsFor" | "tearDown" | "envLookup">;
  /** The node's allocatable cpu and memory, for resourceFieldRef without a limit. */
  allocatable: () => NodeAllocatable;
  /** Resolves a pod's runtimeClassName to its CRI runtime handler (cluster mode: the RuntimeClass). */
  runtimeHandler?: (runtimeClassName: string) => Promise<string>;
  /** Receives every status the worker computes. */
  setStatus: (pod: V1Pod, status: V1PodStatus) => void;
  getStatus: (uid: string) => V1PodStatus | undefined;
}

/** Why a pod ends Failed whatever its containers' exit codes (e.g. reason Evicted). */
export interface FinalReason {
  reason: string;
  message: string;
  /** Conditions the final status carries (e.g. DisruptionTarget), replacing any of the same type. */
  conditions?: V1PodCondition[];
}

export interface PodWorker {
  readonly uid: string;
  /** Hands the worker the pod's latest desired spec. */
  update(pod: V1Pod): void;
  /** Asks for a sync soon (runtime event). */
  trigger(): void;
  /**
   * Kills the pod (with its grace period, or the override) and cleans up; resolves when done.
   * `final` makes the last status phase Failed with that reason and message (eviction, ...).
   */
  terminate(gracePeriodSeconds?: number, final?: FinalReason): Promise<void>;
  /** Stops the loop without touching the pod (kubelet shutdown). */
  stop(): void;
  /** The last pod spec. */
  pod(): V1Pod;
  /** Resolves when the first sync that started all containers finished (for tests and metrics). */
  readonly done: Promise<void>;
}

const SYNC_ERROR_RETRY_MS = 10_000;
const MIN_GRACE_SECONDS = 2;

export function createPodWorker(initial: V1Pod, env: WorkerEnv): PodWorker {
  let pod = initial;
  const uid = pod.metadata?.uid ?? "";
  const log = env.logger.with({ pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, uid });
  const firstSeen = env.clock.now();
  let startRecorded = false;
  let dirty = true;
  let terminating: { grace: number | undefined; final: FinalReason | undefined } | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;
  let cancelTimer: (() => void) | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let terminated: Promise<void> | undefined;
  let firstSync = true;

  const poke = (): void => {
    dirty = true;
    wake?.();
  };
  const scheduleWake = (atMs: number): void => {
    cancelTimer?.();
    cancelTimer = env.clock.setTimer(Math.max(0, atMs - env.clock.now()), poke);
  };

  const loop = async (): Promise<void> => {
    while (!stopped) {
      if (!dirty && !terminating) {
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      dirty = false;
      if (terminating) {
        await killAndCleanUp(terminating.grace, terminating.final);
        return;
      }
      const t0 = env.clock.now();
      try {
        const next = await syncPod();
        scheduleWake(next);
      } catch (err) {
        log.error("pod sync failed; will retry", { err: errorMessage(err) });
        scheduleWake(env.clock.now() + SYNC_ERROR_RETRY_MS);
      }
      env.metrics?.podWorkerDuration.observe({ operation_type: firstSync ? "create" : "sync" }, (env.clock.now() - t0) / 1000);
      firstSync = false;
    }
  };

  /** One sync; returns when the next periodic or backoff sync is due. */
  const syncPod = async (): Promise<number> => {
    const before = await getRuntimePod(env.rs, ident(pod));
    const actions = computePodActions({ pod, runtime: before, crashBackoff: env.crashBackoff, nowMs: env.clock.now() });
    const waiting = new Map<string, Waiting>(actions.waiting);
    const changed = await execute(actions, before, waiting);
    const after = changed ? await getRuntimePod(env.rs, ident(pod)) : before;
    publishStatus(after, waiting);
    const resync = env.clock.now() + env.resyncMs;
    return actions.wakeAtMs !== undefined ? Math.min(actions.wakeAtMs, resync) : waiting.size > 0 ? Math.min(resync, env.clock.now() + SYNC_ERROR_RETRY_MS) : resync;
  };

  const publishStatus = (rp: RuntimePod, waiting: Map<string, Waiting>): void => {
    const prev = env.getStatus(uid);
    const status = computePodStatus({
      pod,
      runtime: rp,
      waiting,
      runtimeName: env.runtimeName(),
      hostIPs: env.hostIPs(),
      startTime: new Date(firstSeen),
      previous: prev,
      now: new Date(env.clock.now()),
    });
    env.setStatus(pod, status);
    const allRunning = (status.containerStatuses ?? []).length > 0 && (status.containerStatuses ?? []).every((c) => c.state?.running);
    if (allRunning && !startRecorded) {
      startRecorded = true;
      env.metrics?.podStartDuration.observe((env.clock.now() - firstSeen) / 1000);
      env.metrics?.startedPods.inc();
      resolveDone();
    }
  };

  /** Carries out a plan; records waiting reasons; returns whether anything changed in the runtime. */
  const execute = async (a: PodActions, rp: RuntimePod, waiting: Map<string, Waiting>): Promise<boolean> => {
    let changed = false;
    const grace = pod.spec?.terminationGracePeriodSeconds ?? 30;
    if (a.killPod) {
      await killRuntimePod(rp, grace);
      changed = true;
    }
    await Promise.all(
      a.containersToKill.map(async (k) => {
        env.events(pod, "Normal", "Killing", `Stopping container ${k.name}`);
        await env.rs.stopContainer(k.id, Math.max(MIN_GRACE_SECONDS, grace));
        changed = true;
      }),
    );
    // Volumes before the sandbox, as upstream; a volume that cannot be set up keeps containers waiting.
    const mountFailures = await env.volumes.setUp(pod);
    for (const f of mountFailures) env.events(pod, "Warning", "FailedMount", f.message);
    if (mountFailures.length > 0 && a.containersToStart.length > 0) {
      for (const s of a.containersToStart) waiting.set(s.container.name, { reason: "ContainerCreating", message: "" });
      log.v(2).info("waiting for volumes", { failed: mountFailures.map((f) => f.volume) });
      return changed;
    }
    let sandboxId = a.sandbox?.id;
    let sandboxIPs = a.sandbox?.ips ?? [];
    const sbConfig: PodSandboxConfig = buildSandboxConfig(pod, { ...env.sandbox, attempt: a.createSandbox ? a.sandboxAttempt : (a.sandbox?.attempt ?? 0) });
    // Image checks (and pulls) run alongside sandbox creation rather than after it.
    const images = new Map<string, Promise<EnsureImageResult>>();
    const imageFor = (c: V1Container): Promise<EnsureImageResult> => {
      let p = images.get(c.name);
      if (!p) {
        p = env.images.ensureImage(pod, c, sbConfig).catch((err: unknown) => ({ ok: false as const, reason: "ImageInspectError" as const, message: errorMessage(err) }));
        images.set(c.name, p);
      }
      return p;
    };
    if (a.createSandbox) {
      if (!isHostNetwork(pod) && !env.networkReady()) {
        for (const s of a.containersToStart) waiting.set(s.container.name, { reason: "ContainerCreating", message: "" });
        log.v(2).info("waiting for the runtime network before creating the pod sandbox");
        return changed;
      }
      for (const s of a.containersToStart) void imageFor(s.container);
      try {
        await mkdir(sbConfig.logDirectory ?? podLogDirectory(env.sandbox.podLogsDir, pod), { recursive: true, mode: 0o755 });
        const rcName = pod.spec?.runtimeClassName;
        const handler = rcName ? await (env.runtimeHandler ? env.runtimeHandler(rcName) : Promise.resolve(rcName)) : undefined;
        sandboxId = await env.rs.runPodSandbox(sbConfig, handler);
        changed = true;
        if (!isHostNetwork(pod)) {
          const st = await env.rs.podSandboxStatus(sandboxId);
          sandboxIPs = [st.status.network?.ip ?? "", ...(st.status.network?.additionalIps ?? []).map((x) => x.ip)].filter((x) => x !== "");
        }
      } catch (err) {
        const message = `Failed to create pod sandbox: ${errorMessage(err)}`;
        env.events(pod, "Warning", "FailedCreatePodSandBox", message);
        env.metrics?.startedPodsErrors.inc();
        for (const s of a.containersToStart) waiting.set(s.container.name, { reason: "ContainerCreating", message });
        log.error("failed to create pod sandbox", { err: errorMessage(err) });
        return true;
      }
    }
    if (sandboxId !== undefined) {
      for (const s of a.containersToStart) {
        const ok = await startContainer(s, sandboxId, sbConfig, { podIPs: isHostNetwork(pod) ? env.hostIPs() : sandboxIPs, waiting, image: imageFor(s.container) });
        changed = true;
        if (!ok) break;
      }
    }
    for (const id of a.containersToRemove) {
      await env.rs.removeContainer(id).catch((err: unknown) => log.v(2).info("container removal failed", { id, err: errorMessage(err) }));
      changed = true;
    }
    for (const id of a.sandboxesToRemove) {
      await env.rs.stopPodSandbox(id).catch(() => undefined);
      await env.rs.removePodSandbox(id).catch((err: unknown) => log.v(2).info("sandbox removal failed", { id, err: errorMessage(err) }));
      changed = true;
    }
    return changed;
  };

  const startContainer = async (
    s: PodActions["containersToStart"][number],
    sandboxId: string,
    sbConfig: PodSandboxConfig,
    ctx: { podIPs: string[]; waiting: Map<string, Waiting>; image: Promise<EnsureImageResult> },
  ): Promise<boolean> => {
    const c = s.container;
    const img = await ctx.image;
    if (!img.ok) {
      ctx.waiting.set(c.name, { reason: img.reason, message: img.message });
      return true;
    }
    if (!img.pulled) env.events(pod, "Normal", "Pulled", `Container image "${c.image ?? ""}" already present on machine`);
    let id: string;
    try {
      const inputs = { envLookup: env.volumes.envLookup, allocatable: env.allocatable(), mountsFor: env.volumes.mountsFor };
      const config = await makeContainerConfig(pod, c, { restartCount: s.restartCount, imageRef: img.imageRef, memoryCapacity: env.memoryCapacity, podIPs: ctx.podIPs, hostIPs: env.hostIPs() }, inputs);
      id = await env.rs.createContainer(sandboxId, config, sbConfig);
    } catch (err) {
      const message = errorMessage(err);
      const reason = err instanceof ContainerConfigError ? "CreateContainerConfigError" : "CreateContainerError";
      ctx.waiting.set(c.name, { reason, message });
      env.events(pod, "Warning", "Failed", `Error: ${message}`);
      env.metrics?.startedContainersErrors.inc({ container_type: "container", code: reason });
      return true;
    }
    env.events(pod, "Normal", "Created", `Created container ${c.name}`);
    if (s.afterExit) env.crashBackoff.next(backoffKey(pod, c.name), s.afterExit.finishedAtMs);
    try {
      await env.rs.startContainer(id);
    } catch (err) {
      const message = errorMessage(err);
      ctx.waiting.set(c.name, { reason: "RunContainerError", message });
      env.events(pod, "Warning", "Failed", `Error: ${message}`);
      env.metrics?.startedContainersErrors.inc({ container_type: "container", code: "RunContainerError" });
      env.crashBackoff.next(backoffKey(pod, c.name));
      return true;
    }
    env.metrics?.startedContainers.inc({ container_type: "container" });
    env.events(pod, "Normal", "Started", `Started container ${c.name}`);
    return true;
  };

  const killRuntimePod = async (rp: RuntimePod, graceSeconds: number): Promise<void> => {
    const running = rp.containers.filter((c) => c.state === "CONTAINER_RUNNING" || c.state === "CONTAINER_CREATED");
    await Promise.all(
      running.map(async (c) => {
        env.events(pod, "Normal", "Killing", `Stopping container ${c.name}`);
        await env.rs.stopContainer(c.id, Math.max(c.state === "CONTAINER_CREATED" ? 0 : MIN_GRACE_SECONDS, graceSeconds));
      }),
    );
    for (const sb of rp.sandboxes) if (sb.state === "SANDBOX_READY") await env.rs.stopPodSandbox(sb.id);
  };

  /** The status a terminated pod ends with: every container terminated; Succeeded only if all exited 0. */
  const publishFinalStatus = (rp: RuntimePod, final: FinalReason | undefined): void => {
    const status = computePodStatus({
      pod,
      runtime: rp,
      waiting: new Map(),
      runtimeName: env.runtimeName(),
      hostIPs: env.hostIPs(),
      startTime: new Date(firstSeen),
      previous: env.getStatus(uid),
      now: new Date(env.clock.now()),
    });
    const states = status.containerStatuses ?? [];
    const allSucceeded = states.length > 0 && states.every((c) => c.state?.terminated?.exitCode === 0);
    status.phase = allSucceeded && !final ? "Succeeded" : "Failed";
    if (final) {
      status.reason = final.reason;
      status.message = final.message;
      for (const c of final.conditions ?? []) status.conditions = [...(status.conditions ?? []).filter((x) => x.type !== c.type), c];
    }
    for (const c of states) {
      c.ready = false;
      if (!c.state?.terminated) {
        c.state = { terminated: { exitCode: 137, reason: "ContainerStatusUnknown", message: "The container could not be located when the pod was terminated" } };
      }
    }
    for (const cond of status.conditions ?? []) {
      if (cond.type === "Ready" || cond.type === "ContainersReady" || cond.type === "PodReadyToStartContainers") {
        if (cond.status !== "False") cond.lastTransitionTime = new Date(env.clock.now());
        cond.status = "False";
        delete cond.message;
        delete cond.reason;
        if (cond.type !== "PodReadyToStartContainers") cond.reason = allSucceeded ? "PodCompleted" : "PodFailed";
      }
    }
    env.setStatus(pod, status);
  };

  const killAndCleanUp = async (graceOverride: number | undefined, final: FinalReason | undefined): Promise<void> => {
    const grace = graceOverride ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    for (let attempt = 0; !stopped; attempt++) {
      try {
        const rp = await getRuntimePod(env.rs, ident(pod));
        await killRuntimePod(rp, grace);
        if ((pod.spec?.containers ?? []).length > 0) publishFinalStatus(await getRuntimePod(env.rs, ident(pod)), final);
        for (const c of rp.containers) await env.rs.removeContainer(c.id).catch(() => undefined);
        for (const sb of rp.sandboxes) await env.rs.removePodSandbox(sb.id);
        await rm(podLogDirectory(env.sandbox.podLogsDir, pod), { recursive: true, force: true });
        await env.volumes.tearDown(uid);
        if (env.sandbox.cgroupsPerQOS) await removeCgroup(podCgroupParent(pod, env.sandbox.cgroupRoot)).catch(() => undefined);
        for (const c of pod.spec?.containers ?? []) env.crashBackoff.reset(backoffKey(pod, c.name));
        log.v(1).info("pod terminated and cleaned up");
        return;
      } catch (err) {
        log.error("pod termination failed; will retry", { err: errorMessage(err), attempt });
        await env.clock.sleep(Math.min(30_000, 1000 * 2 ** attempt));
      }
    }
  };

  // Started on a microtask, so a caller can terminate() a fresh worker before its first sync.
  const running = Promise.resolve()
    .then(loop)
    .catch((err: unknown) => log.error("pod worker crashed", { err: errorMessage(err) }));

  return {
    uid,
    update(next) {
      pod = next;
      poke();
    },
    trigger: poke,
    terminate(grace, final) {
      terminating ??= { grace, final };
      cancelTimer?.();
      poke();
      terminated ??= running.then(() => resolveDone());
      return terminated;
    },
    stop() {
      stopped = true;
      cancelTimer?.();
      wake?.();
      resolveDone();
    },
    pod: () => pod,
    done,
  };
}

function ident(pod: V1Pod): { uid: string; name: string; namespace: string } {
  return { uid: pod.metadata?.uid ?? "", name: pod.metadata?.name ?? "", namespace: pod.metadata?.namespace ?? "" };
}
