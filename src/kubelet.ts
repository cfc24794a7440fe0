/**
 * The composition root: builds the kubelet's parts from the configuration and wires them together.
 * Tests use this same wiring with fakes swapped in through KubeletDeps.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { toKubeJSON } from "./api/json.js";
import type { LoadedConfiguration } from "./config/index.js";
import { configz, formatDuration } from "./config/index.js";
import type { ImageService, RuntimeService } from "./cri/types.js";
import type { Clock } from "./util/clock.js";
import type { Logger } from "./util/log.js";
import { supervise } from "./util/supervise.js";
import type { KubeletMetrics } from "./metrics/index.js";
import type { MachineFacts } from "./node/machine.js";
import { createBackoff, CRASHLOOP_BACKOFF, IMAGE_PULL_BACKOFF } from "./pods/backoff.js";
import { createImageManager } from "./pods/images.js";
import { admitSysctls } from "./pods/admission.js";
import { sysctlAllowlist } from "./containers/sysctls.js";
import { createPodManager, type PodManager } from "./pods/manager.js";
import { createRelister, type Relister } from "./pods/relist.js";
import { createRuntimeHealth, type RuntimeHealth } from "./pods/runtime-health.js";
import { createStatusManager, type StatusManager } from "./pods/status-manager.js";
import { createFileSource } from "./pods/sources/file.js";
import { SOURCE_FILE } from "./api/labels.js";
import type { EventRecorder } from "./pods/worker.js";
import type { ApiClient } from "./api/client.js";
import type { PodManagerHooks } from "./pods/manager.js";
import { createClusterMode, type ClusterMode } from "./cluster.js";
import { servingCertificateLoops } from "./certs/index.js";
import {
  sharedRoutes,
  startApiServer,
  startHealthzServer,
  startReadOnlyServer,
  type AccessReviewer,
  type HealthCheck,
  type ReadOnlyDeps,
  type RunningServer,
  type ServingTLS,
  type TokenReviewer,
} from "./server/index.js";
import { createProbeMetrics, type ProbeMetrics } from "./metrics/probes.js";
import { createHandlerRunner } from "./pods/handlers.js";
import { errorMessage } from "./util/errors.js";
import { createProbeManager } from "./pods/prober/index.js";
import { apiReviewers } from "./server/auth/index.js";
import { createStatsProvider } from "./stats/index.js";
import { startCadvisorServer } from "./server/cadvisor.js";
import { createVolumeManager, nodeAllocatable } from "./volumes/index.js";
import { createEvictionManager, parseThresholds, type EvictionManager } from "./eviction/index.js";
import { createApiObjectSource } from "./volumes/objects.js";
import { createImageGC, testImageGCPeriodMs, IMAGE_GC_PERIOD_MS } from "./images/gc.js";
import { createPodCredentials } from "./images/pull-secrets.js";
import { createContainerGC, CONTAINER_GC_PERIOD_MS } from "./gc/containers.js";
import { imageSizeBucket } from "./metrics/index.js";
import { createLimiter, trackLimiter } from "./util/limiter.js";

export interface KubeletDeps {
  rs: RuntimeService;
  is: ImageService;
  clock: Clock;
  logger: Logger;
  metrics: KubeletMetrics;
  machine: MachineFacts;
  nodeIPs: string[];
  /** Overrides the relist period (1 s) — tests only. */
  relistIntervalMs?: number;
  /** The apiserver client: present in cluster mode (--kubeconfig), absent standalone. */
  api?: ApiClient;
  /** TokenReview and SubjectAccessReview for the kubelet API (10250); default: through `api`; without either, tokens and Webhook authorization fail closed. */
  tokenReviewer?: TokenReviewer;
  accessReviewer?: AccessReviewer;
  probeMetrics?: ProbeMetrics;
  /** Overrides the image GC period (5 min) and the container GC period (1 min) — tests only. */
  imageGCPeriodMs?: number;
  containerGCPeriodMs?: number;
  /** The directory /logs/ serves (default /var/log) — tests only. */
  systemLogRoot?: string;
  /** Overrides the eviction monitoring period (10 s) — tests only. */
  evictionIntervalMs?: number;
}

export interface Kubelet {
  /** Runs until the signal aborts; pods keep running afterwards, as with the upstream kubelet. */
  run(signal: AbortSignal): Promise<void>;
  /** Resolves when the listeners are up. */
  readonly ready: Promise<void>;
  readonly pods: PodManager;
  readonly statuses: StatusManager;
  readonly runtimeHealth: RuntimeHealth;
  readonly relister: Relister;
  readonly eviction: EvictionManager;
  servers(): Record<string, RunningServer>;
  /** Desired pods with their latest status, as /pods shows them. */
  podsWithStatus(): V1Pod[];
  /** The kubelet API's serving TLS once it listens (certificate rotation swaps it here). */
  servingTLS(): ServingTLS | undefined;
}

const PLEG_THRESHOLD_MS = 3 * 60_000;
const HOUSEKEEPING_MS = 2_000;
/** How long a new pod keeps its turn among --max-parallel-pod-starts before the next one may start too. */
const POD_START_TURN_MS = 10_000;
/** How long after the last pod start the node still counts as busy starting pods. */
const STARTS_QUIET_MS = 1_000;

export function createKubelet(loaded: LoadedConfiguration, deps: KubeletDeps): Kubelet {
  const { config, nodeName } = loaded;
  const { clock, logger, metrics } = deps;
  const statuses = createStatusManager();
  const startGate = trackLimiter(createLimiter(loaded.flags.maxParallelPodStarts, { ms: POD_START_TURN_MS, clock }), clock);
  /** Pods are being started (or were a moment ago): background work that can wait, waits. */
  const startingPods = (): boolean => startGate.pending() > 0 || clock.now() - startGate.lastDoneMs() < STARTS_QUIET_MS;
  let cluster: ClusterMode | undefined;
  const events: EventRecorder = (pod, type, reason, message) => {
    logger.v(2).info("event", { pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, type, reason, message });
    cluster?.events(pod, type, reason, message);
  };
  const sysctls = sysctlAllowlist(config.allowedUnsafeSysctls);
  // Filled in by cluster mode once it exists; the pod manager calls through it.
  // Eviction's admit handler runs first, as upstream registers it first.
  const hooks: PodManagerHooks = {
    admit: (pod, active) => eviction.admit(pod) ?? admitSysctls(pod, sysctls) ?? cluster?.hooks.admit?.(pod, active),
    onTerminated: (pod) => cluster?.hooks.onTerminated?.(pod),
  };
  const runtimeHealth = createRuntimeHealth({ rs: deps.rs, endpoint: config.containerRuntimeEndpoint, clock, logger, intervalMs: 5_000, onChange: () => cluster?.node.poke() });
  const crashBackoff = createBackoff({ ...CRASHLOOP_BACKOFF, clock });
  const secrets = deps.api ? createApiObjectSource(deps.api, clock) : undefined;
  const credentials = createPodCredentials({
    ...(secrets ? { secret: (ns: string, name: string) => secrets.secret(ns, name) } : {}),
    rootDir: loaded.flags.rootDir,
    clock,
    logger,
    events,
  });
  const images = createImageManager({
    images: deps.is,
    backoff: createBackoff({ ...IMAGE_PULL_BACKOFF, clock }),
    serialize: config.serializeImagePulls,
    maxParallel: config.maxParallelImagePulls,
    pullQPS: { qps: config.registryPullQPS, burst: config.registryBurst },
    clock,
    logger,
    credentials,
    onEvent: events,
    onPulled: (o) => metrics.imagePullDuration.observe({ image_size_in_bytes: imageSizeBucket(o.sizeBytes) }, o.seconds),
  });
  let resolvConf = "";
  const allocatable = () => nodeAllocatable(cluster?.node.node()?.status?.allocatable, deps.machine);
  const probeMetrics = deps.probeMetrics ?? createProbeMetrics();
  // One handler runner for probes and lifecycle hooks. The prober learns the running containers
  // from the statuses the pod workers set and asks for a pod sync whenever a verdict changes.
  const handlers = createHandlerRunner({ rs: deps.rs, clock });
  const prober = createProbeManager({
    runner: handlers,
    clock,
    logger,
    events,
    metrics: probeMetrics,
    podByUid: (uid) => pods.getPodByUID(uid),
    onChange: (uid) => pods.onRuntimeEvent(uid),
  });
  // API-backed volumes are rewritten every syncFrequency (upstream: the pod resync), so --sync-frequency sets how fast updates land.
  const volumes = createVolumeManager({ api: deps.api, clock, logger, events, allocatable }, { rootDir: loaded.flags.rootDir, refreshMs: config.syncFrequency });
  const pods = createPodManager({
    rs: deps.rs,
    images,
    crashBackoff,
    clock,
    logger,
    metrics,
    events,
    sandbox: {
      podLogsDir: config.podLogsDir,
      get resolvConf() {
        return resolvConf;
      },
      clusterDNS: config.clusterDNS,
      clusterDomain: config.clusterDomain,
      cgroupsPerQOS: config.cgroupsPerQOS,
      cgroupRoot: config.cgroupRoot,
      seccompProfileRoot: join(loaded.flags.rootDir, "seccomp"),
      seccompDefault: config.seccompDefault,
    },
    memoryCapacity: deps.machine.memoryCapacity,
    hostIPs: () => deps.nodeIPs,
    runtimeName: () => runtimeHealth.state().runtimeName || "containerd",
    networkReady: () => runtimeHealth.state().networkReady,
    resyncMs: config.syncFrequency,
    volumes,
    allocatable,
    runtimeHandler: (name) => (cluster ? cluster.runtimeHandler(name) : Promise.resolve(name)),
    setStatus: (pod, status) => {
      try {
        prober.observe(pod, status);
      } catch (err) {
        logger.error("prober could not follow a pod status", { pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, err: errorMessage(err) });
      }
      statuses.setStatus(pod, status);
    },
    getStatus: (uid) => statuses.getStatus(uid),
    probes: prober,
    handlers,
    rootDir: loaded.flags.rootDir,
    startGate: startGate.run,
    lastRelist: () => relister.latest(),
    statuses,
    hooks,
  });

  const imageGC = createImageGC(
    { images: deps.is, runtime: deps.rs, clock, logger, onRemoved: (reason) => metrics.imageGarbageCollected.inc({ reason }) },
    {
      periodMs: deps.imageGCPeriodMs ?? testImageGCPeriodMs() ?? IMAGE_GC_PERIOD_MS,
      highThresholdPercent: config.imageGCHighThresholdPercent,
      lowThresholdPercent: config.imageGCLowThresholdPercent,
      minAgeMs: config.imageMinimumGCAge,
      maxAgeMs: config.imageMaximumGCAge,
    },
  );
  const containerGC = createContainerGC(
    { runtime: deps.rs, clock, logger, podKnown: (uid) => pods.podKnown(uid), sourcesReady: () => pods.sourcesReady() },
    { periodMs: deps.containerGCPeriodMs ?? CONTAINER_GC_PERIOD_MS, minAgeMs: 0, podLogsDir: config.podLogsDir },
  );

  let lastHousekeeping = 0;
  const relister = createRelister({
    rs: deps.rs,
    clock,
    logger,
    intervalMs: deps.relistIntervalMs ?? 1_000,
    onPodChanged: (uid, seen) => pods.onRuntimeEvent(uid, seen),
    onDuration: (ms) => {
      metrics.plegRelistDuration.observe(ms / 1000);
      metrics.plegLastSeen.set(clock.now() / 1000);
    },
    onRelist: (snap) => {
      metrics.runningPods.set(snap.sandboxes.filter((s) => s.state === "SANDBOX_READY").length);
      const byState = new Map<string, number>();
      for (const c of snap.containers) byState.set(c.state, (byState.get(c.state) ?? 0) + 1);
      for (const s of ["CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN"]) {
        metrics.runningContainers.set({ container_state: s.replace("CONTAINER_", "").toLowerCase() }, byState.get(s) ?? 0);
      }
      if (clock.now() - lastHousekeeping >= HOUSEKEEPING_MS) {
        lastHousekeeping = clock.now();
        pods.housekeeping(snap);
      }
    },
  });

  const checks: HealthCheck[] = [
    { name: "ping", check: () => undefined },
    { name: "runtime", check: () => runtimeHealth.state().problem },
    {
      name: "syncloop",
      check: () => {
        const last = relister.lastSuccessMs();
        const since = clock.now() - (last || startedAt);
        return since > PLEG_THRESHOLD_MS ? `pleg was last seen active ${formatDuration(Math.round(since / 1000) * 1000)} ago; threshold is ${formatDuration(PLEG_THRESHOLD_MS)}` : undefined;
      },
    },
  ];

  const podsWithStatus = (): V1Pod[] =>
    pods.desiredPods().map((p) => ({ ...p, status: statuses.getStatus(p.metadata?.uid ?? "") ?? p.status ?? { phase: "Pending" } }));
  // /pods is read far more often than pods change: serialize once per change of the desired set or a status.
  let statusVersion = 0;
  statuses.subscribe(() => statusVersion++);
  let podListCache: { key: string; json: string } | undefined;
  const podListJSON = (): string => {
    const key = `${pods.version()}/${statusVersion}`;
    if (podListCache?.key !== key) podListCache = { key, json: toKubeJSON({ kind: "PodList", apiVersion: "v1", metadata: {}, items: podsWithStatus() }) };
    return podListCache.json;
  };

  const stats = createStatsProvider(
    { runtime: deps.rs, images: deps.is, pods: podsWithStatus, clock, logger },
    { nodeName, rootDir: loaded.flags.rootDir, podLogsDir: config.podLogsDir, cgroupRoot: config.cgroupRoot, busy: startingPods },
  );

  const eviction = createEvictionManager(
    {
      clock,
      logger,
      // The stats housekeeping takes a snapshot every 10 s; a pass reuses it rather than taking another.
      snapshot: () => stats.snapshot(deps.evictionIntervalMs ?? 10_000),
      nodeSnapshot: () => stats.nodeSnapshot(deps.evictionIntervalMs ?? 10_000),
      // Upstream's active pods: admitted and not yet in a terminal phase.
      activePods: () => pods.activePods().filter((p) => !["Succeeded", "Failed"].includes(statuses.getStatus(p.metadata?.uid ?? "")?.phase ?? "")),
      evictPod: (pod, grace, final) => pods.evict(pod.metadata?.uid ?? "", grace, final),
      events,
      onEviction: (signal, statsAgeMs) => {
        metrics.evictions.inc({ eviction_signal: signal });
        metrics.evictionStatsAge.observe({ eviction_signal: signal }, statsAgeMs / 1000);
      },
      onConditionsChanged: () => cluster?.node.poke(),
    },
    {
      thresholds: parseThresholds(config.evictionHard, config.evictionMinimumReclaim),
      pressureTransitionPeriodMs: config.evictionPressureTransitionPeriod,
      ...(deps.evictionIntervalMs !== undefined ? { intervalMs: deps.evictionIntervalMs } : {}),
    },
  );

  const running: Record<string, RunningServer> = {};
  let servingTLS: ServingTLS | undefined;
  let resolveReady!: () => void;
  let rejectReady!: (e: unknown) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => undefined);
  let startedAt = clock.now();

  const startServers = async (): Promise<void> => {
    if (config.healthzPort > 0) {
      running.healthz = await startHealthzServer({ checks, logger }, { address: config.healthzBindAddress, port: config.healthzPort });
      logger.info("healthz listening", { address: `${config.healthzBindAddress}:${running.healthz.address.port}` });
    }
    const shared: ReadOnlyDeps = { pods: { pods: podsWithStatus, json: podListJSON }, checks, metrics, logger, probeMetrics: probeMetrics.registry, stats };
    if (config.readOnlyPort > 0) {
      running.readonly = await startReadOnlyServer(shared, { address: config.address, port: config.readOnlyPort });
      logger.info("read-only API listening", { address: `${config.address}:${running.readonly.address.port}` });
    }
    if (config.enableServer && config.port > 0) {
      const api = await startApiServer(
        {
          sharedRoutes: sharedRoutes(shared),
          nodeName,
          clock,
          logger,
          metrics,
          runtime: deps.rs,
          probeMetrics: probeMetrics.registry,
          podByName: (ns, name) => {
            const p = pods.getPodByName(ns, name);
            return p && { ...p, status: statuses.getStatus(p.metadata?.uid ?? "") ?? p.status ?? {} };
          },
          configz: () => configz(config),
          // In cluster mode TokenReview and SubjectAccessReview go through the apiserver client.
          tokenReviewer: deps.tokenReviewer ?? (deps.api ? apiReviewers(deps.api).tokenReviewer : undefined),
          accessReviewer: deps.accessReviewer ?? (deps.api ? apiReviewers(deps.api).accessReviewer : undefined),
        },
        { config, certDir: loaded.flags.certDir, ...(deps.systemLogRoot !== undefined ? { systemLogRoot: deps.systemLogRoot } : {}) },
      );
      running.api = api;
      servingTLS = api.tls;
      logger.info("kubelet API listening", { address: `${config.address}:${api.address.port}`, cert: api.tls.certFile });
    }
    if (config.cadvisorPort > 0) {
      running.cadvisor = await startCadvisorServer({ stats, logger, metrics, osVersion: deps.machine.osImage }, { address: config.address, port: config.cadvisorPort });
      logger.info("cAdvisor API and UI listening", { address: `${config.address}:${running.cadvisor.address.port}` });
    }
  };

  return {
    ready,
    pods,
    statuses,
    runtimeHealth,
    relister,
    eviction,
    servers: () => running,
    podsWithStatus,
    servingTLS: () => servingTLS,
    async run(signal) {
      startedAt = clock.now();
      resolvConf = await readFile(config.resolvConf, "utf8").catch(() => "");
      logger.info("tskubelet starting", { node: nodeName, runtime: config.containerRuntimeEndpoint, staticPodPath: config.staticPodPath || "(none)" });
      try {
        await startServers();
        resolveReady();
      } catch (err) {
        rejectReady(err);
        for (const s of Object.values(running)) await s.close();
        throw err;
      }
      signal.addEventListener("abort", () => prober.stop(), { once: true });

      // On shutdown, stop acting on pods at once; the pods themselves keep running.
      signal.addEventListener("abort", () => pods.stop(), { once: true });
      const keep = (name: string, run: (s: AbortSignal) => Promise<void>): Promise<void> => supervise(run, { name, clock, logger, signal });
      const loops: Promise<void>[] = [
        keep("runtime-health", (s) => runtimeHealth.run(s)),
        keep("relist", (s) => relister.run(s)),
        keep("stats", (s) => stats.run(s)),
        keep("volumes", (s) => volumes.run(s)),
        keep("eviction", (s) => eviction.run(s)),
        keep("image-gc", (s) => imageGC.run(s)),
        keep("container-gc", (s) => containerGC.run(s)),
      ];
      if (deps.api) {
        cluster = await createClusterMode({
          api: deps.api,
          loaded,
          clock,
          logger,
          machine: deps.machine,
          nodeIPs: deps.nodeIPs,
          images: deps.is,
          pods,
          statuses,
          runtimeHealth,
          startingPods,
          pressure: () => ({ memory: eviction.isUnderMemoryPressure(), disk: eviction.isUnderDiskPressure(), pid: eviction.isUnderPIDPressure() }),
          plegAgeMs: () => clock.now() - (relister.lastSuccessMs() || startedAt),
        });
        logger.info("cluster mode", { apiserver: deps.api.server, identity: deps.api.identity() });
        const c = cluster;
        loops.push(keep("cluster", (s) => c.run(s)));
      }
      loops.push(...servingCertificateLoops({ loaded, api: deps.api, clock, logger, metrics, tls: () => servingTLS, addresses: () => cluster?.node.node()?.status?.addresses }, signal));
      if (config.staticPodPath) {
        pods.expectSources([SOURCE_FILE]);
        const files = createFileSource({
          path: config.staticPodPath,
          nodeName,
          checkFrequencyMs: config.fileCheckFrequency,
          clock,
          logger,
          onUpdate: (list) => {
            pods.setSourcePods(SOURCE_FILE, list);
            cluster?.onStaticPods(list);
          },
        });
        loops.push(keep("static-pods", (s) => files.run(s)));
      }
      await Promise.all(loops);
      pods.stop();
      for (const s of Object.values(running)) await s.close();
      logger.info("tskubelet stopped; pods keep running");
    },
  };
}
