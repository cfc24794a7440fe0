/**
 * Cluster mode: what tskubelet adds when it has a kubeconfig — the Node and its Lease, pods from
 * the apiserver, statuses written back, mirror pods for static pods, events, admission, and the
 * final delete of pods removed through the API.
 */
import { statfs, readdir } from "node:fs/promises";
import { arch, platform } from "node:os";
import type { V1Pod } from "@kubernetes/client-node";
import { ApiError, type ApiClient } from "./api/client.js";
import { createEventRecorder, type EventSink } from "./api/events.js";
import type { LoadedConfiguration } from "./config/index.js";
import type { ImageService } from "./cri/types.js";
import type { Clock } from "./util/clock.js";
import type { Logger } from "./util/log.js";
import { errorMessage } from "./util/errors.js";
import type { MachineFacts } from "./node/machine.js";
import { createNodeAgent, type NodeAgent } from "./node/agent.js";
import { goArch, type NodeFacts } from "./node/status.js";
import { admitPod } from "./pods/admission.js";
import type { PodManager, PodManagerHooks } from "./pods/manager.js";
import { createMirrorManager } from "./pods/mirror.js";
import type { RuntimeHealth } from "./pods/runtime-health.js";
import { createApiSource } from "./pods/sources/api.js";
import type { StatusManager } from "./pods/status-manager.js";
import { createStatusSyncer, isStaticPod } from "./pods/status-sync.js";
import { SOURCE_API } from "./api/labels.js";
import { KUBERNETES_VERSION } from "./cli/version.js";

export interface ClusterDeps {
  api: ApiClient;
  loaded: LoadedConfiguration;
  clock: Clock;
  logger: Logger;
  machine: MachineFacts;
  nodeIPs: string[];
  images: ImageService;
  pods: PodManager;
  statuses: StatusManager;
  runtimeHealth: RuntimeHealth;
  /** Age of the last successful relist, for the PLEG part of Ready. */
  plegAgeMs: () => number;
  /** Pods are being started: events wait (a bounded time) rather than compete with the starts. */
  startingPods?: () => boolean;
  /** Node pressure from the eviction manager (MemoryPressure, DiskPressure, PIDPressure). */
  pressure?: () => { memory: boolean; disk: boolean; pid: boolean };
}

export interface ClusterMode {
  run(signal: AbortSignal): Promise<void>;
  readonly hooks: PodManagerHooks;
  readonly events: EventSink;
  readonly node: NodeAgent;
  /** Static pods changed (the file source reported a new set). */
  onStaticPods(pods: V1Pod[]): void;
  /** The CRI handler of a RuntimeClass; rejects with `RuntimeClass "x" not found` when it does not exist. */
  runtimeHandler(name: string): Promise<string>;
}

const PLEG_THRESHOLD_MS = 3 * 60_000;

async function hugepages(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const d of await readdir("/sys/kernel/mm/hugepages").catch(() => [])) {
    const m = /^hugepages-(\d+)kB$/.exec(d);
    if (!m) continue;
    const kb = Number(m[1]);
    const size = kb >= 1048576 ? `${kb / 1048576}Gi` : `${kb / 1024}Mi`;
    out[size] = 0;
  }
  return out;
}

export async function createClusterMode(d: ClusterDeps): Promise<ClusterMode> {
  const { api, loaded, clock, logger } = d;
  const { config, nodeName } = loaded;
  const rootFs = await statfs(loaded.flags.rootDir).catch(() => statfs("/"));
  const facts: NodeFacts = {
    nodeName,
    hostname: nodeName,
    nodeIPs: d.nodeIPs,
    machine: d.machine,
    rootFsBytes: Number(rootFs.blocks) * Number(rootFs.bsize),
    hugepages: await hugepages(),
    runtimeVersion: "",
    kubeletVersion: KUBERNETES_VERSION,
    labels: loaded.flags.nodeLabels,
    os: platform(),
    arch: goArch(arch()),
  };
  const events = createEventRecorder({ api, nodeName, clock, logger, qps: config.eventRecordQPS, burst: config.eventBurst, ...(d.startingPods ? { busy: d.startingPods } : {}) });

  const node = createNodeAgent({
    api,
    clock,
    logger,
    config,
    facts: () => {
      const st = d.runtimeHealth.state();
      facts.runtimeVersion = st.runtimeName ? `${st.runtimeName}://${st.runtimeVersion}` : "";
      return facts;
    },
    health: () => {
      const st = d.runtimeHealth.state();
      const reasons: string[] = [];
      if (st.problem) reasons.push(st.problem);
      else if (st.networkProblem) reasons.push(st.networkProblem);
      const age = d.plegAgeMs();
      if (age > PLEG_THRESHOLD_MS) reasons.push(`PLEG is not healthy: pleg was last seen active ${Math.round(age / 1000)}s ago; threshold is 3m0s`);
      const p = d.pressure?.() ?? { memory: false, disk: false, pid: false };
      return { notReadyReasons: reasons, memoryPressure: p.memory, diskPressure: p.disk, pidPressure: p.pid };
    },
    images: () => d.images.listImages(),
  });

  let staticPods: V1Pod[] = [];
  let mirrors: V1Pod[] = [];
  const mirror = createMirrorManager({
    api,
    logger,
    node: () => {
      const n = node.node();
      return n?.metadata?.uid ? { name: nodeName, uid: n.metadata.uid } : undefined;
    },
    onMirrorChanged: (uid) => syncer.markDirty(uid),
  });

  const syncer = createStatusSyncer({
    api,
    statuses: d.statuses,
    clock,
    logger,
    target: (pod) => {
      const src = isStaticPod(pod) ? mirror.mirrorOf(pod) : pod;
      const m = src?.metadata;
      return m?.uid ? { namespace: m.namespace ?? "default", name: m.name ?? "", uid: m.uid } : undefined;
    },
  });

  const source = createApiSource({
    api,
    nodeName,
    clock,
    logger,
    onPods: (pods) => d.pods.setSourcePods(SOURCE_API, pods),
    onMirrorPods: (m) => {
      mirrors = m;
      mirror.sync(staticPods, mirrors);
    },
  });
  d.pods.expectSources([SOURCE_API]);

  const hooks: PodManagerHooks = {
    admit: (pod, active) => {
      if (isStaticPod(pod)) return undefined;
      const n = node.node();
      if (!n?.status?.allocatable) return undefined;
      return admitPod(pod, active, { allocatable: n.status.allocatable, labels: n.metadata?.labels ?? {} });
    },
    onTerminated: (pod) => {
      if (isStaticPod(pod)) return;
      const uid = pod.metadata?.uid ?? "";
      const path = `/api/v1/namespaces/${pod.metadata?.namespace ?? ""}/pods/${pod.metadata?.name ?? ""}`;
      void syncer
        .flush(uid)
        .then(() => api.request({ method: "DELETE", path, body: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0, preconditions: { uid } } }))
        .then(() => logger.v(1).info("pod deleted from the API after termination", { pod: path }))
        .catch((err: unknown) => logger.warn("final delete of a terminated pod failed", { pod: path, err: errorMessage(err) }));
    },
  };

  return {
    hooks,
    events,
    node,
    async runtimeHandler(name) {
      try {
        const rc = await api.request<{ handler?: string }>({ method: "GET", path: `/apis/node.k8s.io/v1/runtimeclasses/${encodeURIComponent(name)}` });
        return rc.handler ?? name;
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw new Error(`RuntimeClass "${name}" not found`);
        throw err;
      }
    },
    onStaticPods(pods) {
      staticPods = pods;
      mirror.sync(staticPods, mirrors);
    },
    async run(signal) {
      const nodeRun = node.run(signal);
      await Promise.race([node.registered, nodeRun]);
      mirror.sync(staticPods, mirrors);
      await Promise.all([nodeRun, source.run(signal), syncer.run(signal)]);
    },
  };
}
