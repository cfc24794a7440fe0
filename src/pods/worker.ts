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
import { ensurePodCgroup } from "../containers/pod-cgroups.js";
import { securityOptions } from "../containers/security.js";
import type { Backoff } from "./backoff.js";
import type { EnsureImageResult, ImageManager } from "./images.js";
import { backoffKey, computePodActions, isSidecar, type ContainerStart, type PodActions, type Waiting } from "./plan.js";
import { createHookRunner } from "./hooks.js";
import { terminationMessageMount } from "./termination-message.js";
import { createRuntimeReadCache, emptyRuntimePod, getKnownRuntimePod, getRuntimePod, nsToMs, type RuntimeObservation, type RuntimePod, type SandboxInfo } from "./runtime-state.js";
import { computePodStatus, KUBELET_CONDITIONS } from "./status.js";
import type { ProbeVerdicts } from "./probe-verdicts.js";
import type { HandlerRunner } from "./handlers.js";
import type { Limiter } from "../util/limiter.js";

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
  /** The prober's conclusions (started, ready, liveness/startup failures) per container. */
  probes: ProbeVerdicts;
  /** Runs lifecycle hook actions (exec, httpGet, sleep). */
  handlers: HandlerRunner;
  /** --root-dir: termination message files live under its pods/<uid>/containers/. */
  rootDir: string;
  /** Admits a pod's first start (sandbox and containers); bounds how many start at once. */
  startGate?: Limiter;
  /**
   * Whether the runtime surely holds nothing of this pod yet (a recent relist saw nothing of it):
   * its first sync then starts from nothing without reading, and reads back only what it made.
   */
  runtimeKnowsNothingOf?: (uid: string) => boolean;
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
  /**
   * Asks for a sync soon. With what a relist saw, only if the worker has not already read that
   * state (or a newer one) itself.
   */
  trigger(seen?: RuntimeObservation): void;
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
/** A postStart hook still running after this long is abandoned and counts as failed. */
const POST_START_TIMEOUT_MS = 120_000;

/** A pod made from nothing in one sync: its sandbox's status and its containers, by ID. */
interface MadeFromNothing {
  sandbox?: SandboxInfo;
  containers: { id: string; sandboxId: string }[];
  /** Every step so far succeeded: the IDs are all the runtime holds of the pod. */
  clean: boolean;
}

interface StepResult {
  changed: boolean;
  /** Plan again at once (a sidecar started, so the next init container may follow). */
  again: boolean;
}
const MIN_GRACE_SECONDS = 2;
/** How long after an exit 137 the runtime may still turn the reason into OOMKilled, and how often to look. */
const OOM_SETTLE_WINDOW_MS = 4_000;
const OOM_SETTLE_STEP_MS = 250;
const OOM_SETTLE_TRIES = 12;

export function createPodWorker(initial: V1Pod, env: WorkerEnv): PodWorker {
  let pod = initial;
  let podKey = syncKey(initial);
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
  /** Containers the worker stopped itself: their exit 137 is its SIGKILL, not the OOM killer. */
  const stoppedByUs = new Set<string>();
  /** Messages for containers the worker itself ended (PostStartHookError), by container ID. */
  const notes = new Map<string, string>();
  const hooks = createHookRunner({ handlers: env.handlers, clock: env.clock });
  /** The pod's IP, for httpGet hooks. */
  let podIP: string | undefined = isHostNetwork(pod) ? env.hostIPs()[0] : undefined;

  const poke = (): void => {
    dirty = true;
    wake?.();
  };
  /** What relists saw since the loop last looked. */
  let observed: RuntimeObservation[] = [];
  const scheduleWake = (atMs: number): void => {
    cancelTimer?.();
    cancelTimer = env.clock.setTimer(Math.max(0, atMs - env.clock.now()), poke);
  };

  const loop = async (): Promise<void> => {
    while (!stopped) {
      // Relist observations are judged now, against the newest read: one made during a sync is
      // usually older than that sync's own final read.
      if (observed.length > 0) {
        if (observed.some(isNews)) dirty = true;
        observed = [];
      }
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

  const readCache = createRuntimeReadCache();
  /** What the current sync made of a pod it started from nothing (see syncPod). */
  let made: MadeFromNothing | undefined;
  /** The last runtime read: when it started and what it saw (relist events about it are not news). */
  let lastRead = { startedAtMs: -Infinity, fingerprint: "" };
  const isNews = (seen: RuntimeObservation): boolean => seen.listedAtMs >= lastRead.startedAtMs && seen.fingerprint !== lastRead.fingerprint;

  /**
   * The runtime's view, with the messages of containers the worker killed after a failed postStart.
   * `made` (a pod made from nothing in this sync) is read back by ID, without listing.
   */
  const readRuntime = async (made?: MadeFromNothing): Promise<RuntimePod> => {
    const read = async (): Promise<RuntimePod> => (made?.sandbox ? await getKnownRuntimePod(env.rs, ident(pod), { sandboxes: [made.sandbox], containers: made.containers }, readCache) : undefined) ?? (await getRuntimePod(env.rs, ident(pod), readCache));
    const startedAtMs = env.clock.now();
    let rp = await read();
    lastRead = { startedAtMs, fingerprint: rp.fingerprint };
    // containerd 1.6 can report a container killed by the OOM killer as Error(137) for a moment,
    // until it has handled the OOM event; re-read briefly rather than publish the wrong reason.
    for (let i = 0; i < OOM_SETTLE_TRIES && rp.containers.some(mayBeUnsettledOOM); i++) {
      await env.clock.sleep(OOM_SETTLE_STEP_MS);
      rp = await read();
    }
    for (const id of notes.keys()) if (!rp.containers.some((c) => c.id === id)) notes.delete(id);
    for (const id of stoppedByUs) if (!rp.containers.some((c) => c.id === id)) stoppedByUs.delete(id);
    for (const c of rp.containers) {
      const note = notes.get(c.id);
      if (note !== undefined && c.state !== "CONTAINER_RUNNING") c.message = c.message !== "" ? `${note}: ${c.message}` : note;
    }
    return rp;
  };
  /** Just exited with 137, not (yet) OOMKilled, and under a memory limit. */
  const mayBeUnsettledOOM = (c: RuntimePod["containers"][number]): boolean =>
    c.state === "CONTAINER_EXITED" &&
    c.exitCode === 137 &&
    c.reason !== "OOMKilled" &&
    !stoppedByUs.has(c.id) &&
    env.clock.now() - c.finishedAtMs < OOM_SETTLE_WINDOW_MS &&
    specByName(c.name)?.resources?.limits?.memory !== undefined;
  const podGrace = (): number => pod.spec?.terminationGracePeriodSeconds ?? 30;
  const specByName = (name: string): V1Container | undefined =>
    (pod.spec?.containers ?? []).find((c) => c.name === name) ?? (pod.spec?.initContainers ?? []).find((c) => c.name === name);

  /** One sync; returns when the next periodic or backoff sync is due. */
  const syncPod = async (): Promise<number> => {
    // A new pod the runtime surely holds nothing of starts from nothing, and what this sync makes
    // is read back by ID; a step that fails sends the read back to listing the pod.
    made = firstSync && env.runtimeKnowsNothingOf?.(uid) === true ? { containers: [], clean: true } : undefined;
    let before: RuntimePod;
    if (made) {
      before = emptyRuntimePod(ident(pod));
      lastRead = { startedAtMs: env.clock.now(), fingerprint: before.fingerprint };
    } else {
      before = await readRuntime();
    }
    const actions = computePodActions({ pod, runtime: before, crashBackoff: env.crashBackoff, nowMs: env.clock.now(), probes: env.probes });
    const waiting = new Map<string, Waiting>(actions.waiting);
    // A pod seen for the first time is reported at once (Pending, containers waiting in
    // ContainerCreating), before the sandbox is made, as upstream does.
    if (env.getStatus(uid) === undefined) publishStatus(before, waiting);
    const { changed, again } = await execute(actions, before, waiting);
    const madeNow = made?.clean === true ? made : undefined;
    made = undefined;
    const after = changed ? await readRuntime(madeNow) : before;
    publishStatus(after, waiting);
    // Plan again at once (without waiting for a timer): a started sidecar lets the next init container go.
    if (again) dirty = true;
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
      probes: env.probes,
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

  /** Carries out a plan; records waiting reasons; says whether the runtime changed and whether to re-plan at once. */
  const execute = async (a: PodActions, rp: RuntimePod, waiting: Map<string, Waiting>): Promise<StepResult> => {
    const grace = podGrace();
    const changed = await killStep(a, rp, grace);
    const started = await startStep(a, waiting);
    const removed = await removeStep(a);
    return { changed: changed || started.changed || removed, again: started.again };
  };

  /** Kills first: the pod, replaced or failed containers, sidecars no longer needed, the finished pod's sandbox. */
  const killStep = async (a: PodActions, rp: RuntimePod, grace: number): Promise<boolean> => {
    let changed = false;
    podIP = a.sandbox?.ips[0] ?? rp.sandboxes[0]?.ips[0] ?? podIP;
    if (a.killPod) {
      await killRuntimePod(rp, grace);
      changed = true;
    }
    if (a.containersToKill.length > 0) {
      await Promise.all(a.containersToKill.map((k) => killContainer({ id: k.id, name: k.name, graceSeconds: k.graceSeconds ?? grace, message: k.message, running: true })));
      changed = true;
    }
    for (const k of a.sidecarsToStop) {
      await killContainer({ id: k.id, name: k.name, graceSeconds: k.graceSeconds ?? grace, message: k.message, running: true });
      changed = true;
    }
    if (a.stopSandbox && a.sandbox) {
      log.v(1).info("every container is done: stopping the pod sandbox");
      await env.rs.stopPodSandbox(a.sandbox.id);
      changed = true;
    }
    return changed;
  };

  /** A pod's first start passes the start gate (if any); later syncs do not wait for it. */
  const startStep = (a: PodActions, waiting: Map<string, Waiting>): Promise<StepResult> =>
    a.createSandbox && env.startGate ? env.startGate(() => startSteps(a, waiting)) : startSteps(a, waiting);

  /** Volumes, the sandbox when one is needed, then the containers to start, in order. */
  const startSteps = async (a: PodActions, waiting: Map<string, Waiting>): Promise<StepResult> => {
    let changed = false;
    // Volumes before the sandbox, as upstream; a volume that cannot be set up keeps containers waiting.
    const mountFailures = await env.volumes.setUp(pod);
    for (const f of mountFailures) env.events(pod, "Warning", "FailedMount", f.message);
    if (mountFailures.length > 0 && a.containersToStart.length > 0) {
      for (const s of a.containersToStart) waiting.set(s.container.name, { reason: "ContainerCreating", message: "" });
      log.v(2).info("waiting for volumes", { failed: mountFailures.map((f) => f.volume) });
      return { changed, again: false };
    }
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
    let sandbox: { id: string; ips: string[] } | undefined = a.sandbox ? { id: a.sandbox.id, ips: a.sandbox.ips } : undefined;
    if (a.createSandbox) {
      for (const s of a.containersToStart) void imageFor(s.container);
      const created = await createSandbox(a, sbConfig, waiting);
      if (!created.ok) return { changed: created.changed, again: false };
      sandbox = created;
      changed = true;
    }
    let again = false;
    if (sandbox !== undefined) {
      const podIPs = isHostNetwork(pod) ? env.hostIPs() : sandbox.ips;
      podIP = podIPs[0] ?? podIP;
      for (const s of a.containersToStart) {
        const ok = await startContainer(s, sandbox.id, sbConfig, { podIPs, waiting, image: imageFor(s.container) });
        changed = true;
        // A started sidecar lets the next init container start: plan again at once.
        if (ok && s.kind === "sidecar") again = true;
      }
    }
    return { changed, again };
  };

  const createSandbox = async (
    a: PodActions,
    sbConfig: PodSandboxConfig,
    waiting: Map<string, Waiting>,
  ): Promise<{ ok: true; id: string; ips: string[] } | { ok: false; changed: boolean }> => {
    if (!isHostNetwork(pod) && !env.networkReady()) {
      for (const s of a.containersToStart) waiting.set(s.container.name, { reason: "ContainerCreating", message: "" });
      log.v(2).info("waiting for the runtime network before creating the pod sandbox");
      return { ok: false, changed: false };
    }
    try {
      await mkdir(sbConfig.logDirectory ?? podLogDirectory(env.sandbox.podLogsDir, pod), { recursive: true, mode: 0o755 });
      const rcName = pod.spec?.runtimeClassName;
      const handler = rcName ? await (env.runtimeHandler ? env.runtimeHandler(rcName) : Promise.resolve(rcName)) : undefined;
      if (env.sandbox.cgroupsPerQOS) await ensurePodCgroup(pod, env.sandbox.cgroupRoot);
      if (made) made.clean = false; // until the sandbox is known
      const id = await env.rs.runPodSandbox(sbConfig, handler);
      let ips: string[] = [];
      if (!isHostNetwork(pod)) {
        const st = await env.rs.podSandboxStatus(id);
        ips = [st.status.network?.ip ?? "", ...(st.status.network?.additionalIps ?? []).map((x) => x.ip)].filter((x) => x !== "");
        if (ips.length > 0) readCache.sandboxIPs.set(id, ips);
        if (made && st.status.state === "SANDBOX_READY") {
          made.sandbox = { id, attempt: st.status.metadata.attempt, state: st.status.state, createdAtMs: nsToMs(st.status.createdAt), ip: ips[0] ?? "", ips, hostNetwork: false };
          made.clean = true;
        }
      }
      return { ok: true, id, ips };
    } catch (err) {
      const message = `Failed to create pod sandbox: ${errorMessage(err)}`;
      env.events(pod, "Warning", "FailedCreatePodSandBox", message);
      env.metrics?.startedPodsErrors.inc();
      for (const s of a.containersToStart) waiting.set(s.container.name, { reason: "ContainerCreating", message });
      log.error("failed to create pod sandbox", { err: errorMessage(err) });
      return { ok: false, changed: true };
    }
  };

  const removeStep = async (a: PodActions): Promise<boolean> => {
    let changed = false;
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
    s: ContainerStart,
    sandboxId: string,
    sbConfig: PodSandboxConfig,
    ctx: { podIPs: string[]; waiting: Map<string, Waiting>; image: Promise<EnsureImageResult> },
  ): Promise<boolean> => {
    const c = s.container;
    const containerType = s.kind === "init" || s.kind === "sidecar" ? "init_container" : "container";
    const img = await ctx.image;
    if (!img.ok) {
      ctx.waiting.set(c.name, { reason: img.reason, message: img.message });
      return false;
    }
    if (!img.pulled) env.events(pod, "Normal", "Pulled", `Container image "${c.image ?? ""}" already present on machine`);
    let id: string;
    let messageMount: Awaited<ReturnType<typeof terminationMessageMount>>;
    try {
      messageMount = await terminationMessageMount(env.rootDir, pod, c);
      const mountsFor: typeof env.volumes.mountsFor = async (p, cc, e) => [...(await env.volumes.mountsFor(p, cc, e)), ...(messageMount ? [messageMount] : [])];
      // The image check usually read the image's user already; ask the runtime only when it did not.
      const inputs = {
        envLookup: env.volumes.envLookup,
        allocatable: env.allocatable(),
        mountsFor,
        ...(img.user ? {} : { imageUser: (ref: string) => env.images.imageUser(ref) }),
        security: securityOptions(env.sandbox),
      };
      const known = img.user ? { imageUser: img.user } : {};
      const config = await makeContainerConfig(pod, c, { restartCount: s.restartCount, imageRef: img.imageRef, memoryCapacity: env.memoryCapacity, podIPs: ctx.podIPs, hostIPs: env.hostIPs(), ...known }, inputs);
      // A create that fails may still have made the container (a timeout): then only a list tells.
      if (made) made.clean = false;
      id = await env.rs.createContainer(sandboxId, config, sbConfig);
      if (made) {
        made.containers.push({ id, sandboxId });
        made.clean = made.sandbox !== undefined;
      }
    } catch (err) {
      const message = errorMessage(err);
      const reason = err instanceof ContainerConfigError ? "CreateContainerConfigError" : "CreateContainerError";
      // The message file of a container that was never made is of no use (retries would pile them up).
      if (messageMount) await rm(messageMount.hostPath, { force: true }).catch(() => undefined);
      ctx.waiting.set(c.name, { reason, message });
      env.events(pod, "Warning", "Failed", `Error: ${message}`);
      env.metrics?.startedContainersErrors.inc({ container_type: containerType, code: reason });
      return false;
    }
    env.events(pod, "Normal", "Created", `Created container ${c.name}`);
    if (s.afterExit) env.crashBackoff.next(backoffKey(pod, c.name), s.afterExit.finishedAtMs);
    try {
      await env.rs.startContainer(id);
    } catch (err) {
      const message = errorMessage(err);
      ctx.waiting.set(c.name, { reason: "RunContainerError", message });
      env.events(pod, "Warning", "Failed", `Error: ${message}`);
      env.metrics?.startedContainersErrors.inc({ container_type: containerType, code: "RunContainerError" });
      env.crashBackoff.next(backoffKey(pod, c.name));
      return false;
    }
    env.metrics?.startedContainers.inc({ container_type: containerType });
    env.events(pod, "Normal", "Started", `Started container ${c.name}`);
    return runPostStart(c, id, ctx.waiting);
  };

  /** postStart runs right after the start; a failure kills the container, which then restarts by policy. */
  const runPostStart = async (c: V1Container, id: string, waiting: Map<string, Waiting>): Promise<boolean> => {
    const handler = c.lifecycle?.postStart;
    if (!handler) return true;
    const r = await hooks.run(handler, { containerId: id, container: c, podIP }, pod, POST_START_TIMEOUT_MS);
    if (r.ok) return true;
    env.events(pod, "Warning", "FailedPostStartHook", r.message);
    notes.set(id, `PostStartHookError: ${r.message}`);
    waiting.set(c.name, { reason: "PostStartHookError", message: r.message });
    await killContainer({ id, name: c.name, graceSeconds: podGrace(), message: "FailedPostStartHook", running: true });
    return false;
  };

  /**
   * Stops one container: its preStop hook first (inside the grace period; a hook still running at
   * the end of it is abandoned), then StopContainer with what is left, at least 2 s.
   */
  const killContainer = async (k: { id: string; name: string; graceSeconds: number; message: string; running: boolean }): Promise<void> => {
    const { id, name, graceSeconds, message, running } = k;
    stoppedByUs.add(id);
    env.events(pod, "Normal", "Killing", message);
    if (!running) {
      await env.rs.stopContainer(id, 0);
      return;
    }
    let left = graceSeconds;
    const spec = specByName(name);
    const preStop = spec?.lifecycle?.preStop;
    if (spec && preStop) {
      const r = await hooks.run(preStop, { containerId: id, container: spec, podIP }, pod, graceSeconds * 1000);
      if (!r.ok) {
        env.events(pod, "Warning", "FailedPreStopHook", r.message);
        log.v(1).info("preStop hook failed", { container: name, timedOut: r.timedOut });
      }
      left = graceSeconds - Math.floor(r.elapsedMs / 1000);
    }
    await env.rs.stopContainer(id, Math.max(MIN_GRACE_SECONDS, left));
  };

  /** App (and regular init) containers first, together; then sidecars one by one, last first, in what is left of the grace period. */
  const killRuntimePod = async (rp: RuntimePod, graceSeconds: number): Promise<void> => {
    const live = rp.containers.filter((c) => c.state === "CONTAINER_RUNNING" || c.state === "CONTAINER_CREATED");
    const sidecars = (pod.spec?.initContainers ?? []).filter(isSidecar).map((c) => c.name);
    const deadline = env.clock.now() + graceSeconds * 1000;
    podIP = rp.sandboxes[0]?.ips[0] ?? podIP;
    await Promise.all(
      live.filter((c) => !sidecars.includes(c.name)).map((c) => killContainer({ id: c.id, name: c.name, graceSeconds, message: `Stopping container ${c.name}`, running: c.state === "CONTAINER_RUNNING" })),
    );
    for (const name of [...sidecars].reverse()) {
      for (const c of live.filter((x) => x.name === name)) {
        const left = Math.max(0, Math.ceil((deadline - env.clock.now()) / 1000));
        await killContainer({ id: c.id, name: c.name, graceSeconds: left, message: `Stopping container ${c.name}`, running: c.state === "CONTAINER_RUNNING" });
      }
    }
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
    for (const c of status.initContainerStatuses ?? []) {
      c.ready = c.ready && c.state?.terminated?.exitCode === 0 && !isSidecar(specByName(c.name) ?? { name: c.name });
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
      // Upstream marks a Succeeded pod's Initialized condition PodCompleted as well.
      if (cond.type === "Initialized" && cond.status === "True" && status.phase === "Succeeded") cond.reason = "PodCompleted";
    }
    env.setStatus(pod, status);
  };

  const killAndCleanUp = async (graceOverride: number | undefined, final: FinalReason | undefined): Promise<void> => {
    const grace = graceOverride ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    for (let attempt = 0; !stopped; attempt++) {
      try {
        const rp = await readRuntime();
        await killRuntimePod(rp, grace);
        if ((pod.spec?.containers ?? []).length > 0) publishFinalStatus(await readRuntime(), final);
        for (const c of rp.containers) await env.rs.removeContainer(c.id).catch(() => undefined);
        for (const sb of rp.sandboxes) await env.rs.removePodSandbox(sb.id);
        await rm(podLogDirectory(env.sandbox.podLogsDir, pod), { recursive: true, force: true });
        await env.volumes.tearDown(uid);
        if (env.sandbox.cgroupsPerQOS) await removeCgroup(podCgroupParent(pod, env.sandbox.cgroupRoot)).catch(() => undefined);
        for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) env.crashBackoff.reset(backoffKey(pod, c.name));
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
      const key = syncKey(next);
      pod = next;
      // A change of the pod's status alone (usually the kubelet's own write coming back) needs no sync.
      if (key !== podKey) {
        podKey = key;
        poke();
      }
    },
    trigger(seen) {
      if (seen === undefined) poke();
      else if (isNews(seen)) {
        observed.push(seen);
        wake?.();
      }
    },
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

/**
 * What of a pod object a sync depends on: its spec, labels, annotations and deletion, and the
 * conditions others own (readiness gates). Not the rest of its status, nor resourceVersion.
 */
export function syncKey(pod: V1Pod): string {
  const m = pod.metadata;
  const foreign = (pod.status?.conditions ?? []).filter((c) => !KUBELET_CONDITIONS.has(c.type)).map((c) => [c.type, c.status, c.reason, c.message]);
  return JSON.stringify([pod.spec, m?.labels, m?.annotations, m?.deletionTimestamp, m?.deletionGracePeriodSeconds, foreign]);
}

function ident(pod: V1Pod): { uid: string; name: string; namespace: string } {
  return { uid: pod.metadata?.uid ?? "", name: pod.metadata?.name ?? "", namespace: pod.metadata?.namespace ?? "" };
}
