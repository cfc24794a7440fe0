/**
 * Which pod to evict first and what to tell it, as upstream's eviction helpers do: ranking
 * functions per signal (requests exceeded, then priority, then usage above requests), the
 * "The node was low on resource" message, and the local-storage limit checks (emptyDir sizeLimit,
 * ephemeral-storage limits of the pod and of each container).
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { formatBytes, parseQuantity } from "../config/quantity.js";
import { ANN_CONFIG_MIRROR, ANN_CONFIG_SOURCE, SOURCE_API } from "../api/labels.js";
import type { PodEntry } from "../stats/index.js";
import type { Observations } from "./signals.js";
import { formatAmount, SIGNAL_TO_RESOURCE, thresholdQuantity, type Signal, type Threshold } from "./thresholds.js";

/** Upstream's scheduling.SystemCriticalPriority. */
export const SYSTEM_CRITICAL_PRIORITY = 2_000_000_000;

/** Static (non-API source) pods, mirror pods and pods of system-critical priority (upstream's IsCriticalPod). */
export function isCriticalPod(pod: V1Pod): boolean {
  const ann = pod.metadata?.annotations ?? {};
  const source = ann[ANN_CONFIG_SOURCE];
  if (source !== undefined && source !== SOURCE_API) return true;
  if (ann[ANN_CONFIG_MIRROR] !== undefined) return true;
  return (pod.spec?.priority ?? 0) >= SYSTEM_CRITICAL_PRIORITY;
}

export function isStaticPod(pod: V1Pod): boolean {
  const source = pod.metadata?.annotations?.[ANN_CONFIG_SOURCE];
  return source !== undefined && source !== SOURCE_API;
}

type Resources = Record<string, string | number> | undefined;

/** A container's request, falling back to its limit as API defaulting does. */
function containerRequest(c: V1Container, resource: string): number {
  const req = (c.resources?.requests as Resources)?.[resource] ?? (c.resources?.limits as Resources)?.[resource];
  return req === undefined ? 0 : (parseQuantity(req) ?? 0);
}

function containerRequestText(c: V1Container, resource: string): string {
  const req = (c.resources?.requests as Resources)?.[resource] ?? (c.resources?.limits as Resources)?.[resource];
  return req === undefined ? "0" : String(req);
}

/** A pod's effective request: max(sum of app containers, largest init container) plus overhead. */
export function podRequest(pod: V1Pod, resource: string): number {
  let sum = 0;
  for (const c of pod.spec?.containers ?? []) sum += containerRequest(c, resource);
  for (const c of pod.spec?.initContainers ?? []) sum = Math.max(sum, containerRequest(c, resource));
  const overhead = (pod.spec?.overhead as Resources)?.[resource];
  return sum + (overhead === undefined ? 0 : (parseQuantity(overhead) ?? 0));
}

/** Usage of a pod in the unit of the resource a signal reclaims. */
export type UsageOf = (pod: V1Pod) => number | undefined;

/** The stats of a pod by UID (undefined: no stats, as for a pod whose sandbox is not ready). */
export type StatsOf = (pod: V1Pod) => PodEntry | undefined;

export function memoryUsage(stats: StatsOf): UsageOf {
  return (pod) => stats(pod)?.cgroup?.stats.memory?.workingSet;
}

/**
 * Which of a pod's filesystems count for a disk signal (upstream's fsStatsSet): everything when the
 * images share the node filesystem; with a dedicated imagefs, logs and local volumes for nodefs and
 * the writable layers for imagefs.
 */
export type FsStatsSet = "all" | "logsAndVolumes" | "root";

function fsUsed(ps: PodEntry, set: FsStatsSet, field: "used" | "inodesUsed"): number {
  let n = 0;
  for (const c of ps.containers) {
    if (set !== "logsAndVolumes") n += c.rootfs?.[field] ?? 0;
    if (set !== "root") n += c.logs?.[field] ?? 0;
  }
  if (set !== "root") for (const v of ps.volumes) if (v.plugin === "kubernetes.io~empty-dir" && !v.memoryBacked) n += v[field] ?? 0;
  return n;
}

/** Ephemeral storage: containers' writable layers and logs plus disk-backed emptyDirs. */
export function diskUsage(stats: StatsOf, set: FsStatsSet = "all"): UsageOf {
  return (pod) => {
    const ps = stats(pod);
    return ps && fsUsed(ps, set, "used");
  };
}

export function inodeUsage(stats: StatsOf, set: FsStatsSet = "all"): UsageOf {
  return (pod) => {
    const ps = stats(pod);
    return ps && fsUsed(ps, set, "inodesUsed");
  };
}

export function processUsage(stats: StatsOf): UsageOf {
  return (pod) => {
    const cg = stats(pod)?.cgroup?.stats;
    return cg?.pids?.current ?? cg?.procs.length;
  };
}

type Cmp = (a: V1Pod, b: V1Pod) => number;

/** Pods using more than they request first (pods without stats count as not exceeding). */
function exceedsRequests(usage: UsageOf, resource: string): Cmp {
  const exceeds = (p: V1Pod): number => {
    const u = usage(p);
    return u !== undefined && u > podRequest(p, resource) ? 1 : 0;
  };
  return (a, b) => exceeds(b) - exceeds(a);
}

/** Lower priority first. */
const byPriority: Cmp = (a, b) => (a.spec?.priority ?? 0) - (b.spec?.priority ?? 0);

/** More usage above requests first. */
function aboveRequests(usage: UsageOf, resource: string): Cmp {
  const above = (p: V1Pod): number => (usage(p) ?? 0) - podRequest(p, resource);
  return (a, b) => above(b) - above(a);
}

function orderedBy(...cmps: Cmp[]): Cmp {
  return (a, b) => {
    for (const c of cmps) {
      const r = c(a, b);
      if (r !== 0) return r;
    }
    return 0;
  };
}

/** The pods in the order they would be evicted for this signal (a new array; stable for ties). */
export function rankForSignal(signal: Signal, pods: V1Pod[], stats: StatsOf, dedicatedImageFs = false): V1Pod[] {
  const resource = SIGNAL_TO_RESOURCE[signal];
  const set: FsStatsSet = !dedicatedImageFs ? "all" : signal.startsWith("imagefs.") ? "root" : "logsAndVolumes";
  let cmp: Cmp;
  switch (signal) {
    case "memory.available":
      cmp = orderedBy(exceedsRequests(memoryUsage(stats), "memory"), byPriority, aboveRequests(memoryUsage(stats), "memory"));
      break;
    case "pid.available":
      cmp = orderedBy(byPriority, (a, b) => (processUsage(stats)(b) ?? 0) - (processUsage(stats)(a) ?? 0));
      break;
    case "nodefs.inodesFree":
    case "imagefs.inodesFree":
      cmp = orderedBy(exceedsRequests(inodeUsage(stats, set), resource), byPriority, aboveRequests(inodeUsage(stats, set), resource));
      break;
    default:
      cmp = orderedBy(exceedsRequests(diskUsage(stats, set), "ephemeral-storage"), byPriority, aboveRequests(diskUsage(stats, set), "ephemeral-storage"));
  }
  return [...pods].sort(cmp);
}

/**
 * Upstream's eviction message: "The node was low on resource: memory. Threshold quantity: 100Mi,
 * available: 80Mi. Container x was using 300Mi, request is 0, has larger consumption of memory. "
 */
export function evictionMessage(signal: Signal, pod: V1Pod, stats: StatsOf, ctx: { met: Threshold[]; observations: Observations }): string {
  const { met, observations } = ctx;
  const resource = SIGNAL_TO_RESOURCE[signal];
  let message = `The node was low on resource: ${resource}. `;
  const t = met.find((x) => SIGNAL_TO_RESOURCE[x.signal] === resource && observations.has(x.signal));
  const obs = t && observations.get(t.signal);
  if (t && obs) {
    message += `Threshold quantity: ${formatAmount(t.signal, thresholdQuantity(t.value, obs.capacity))}, available: ${formatAmount(t.signal, obs.available)}. `;
  }
  const ps = stats(pod);
  if (!ps || (resource !== "memory" && resource !== "ephemeral-storage")) return message;
  for (const cs of ps.containers) {
    const c = pod.spec?.containers?.find((x) => x.name === cs.name);
    if (!c) continue;
    let usage: number | undefined;
    if (resource === "memory") usage = cs.cgroup.stats.memory?.workingSet;
    else if (cs.rootfs?.used !== undefined && cs.logs?.used !== undefined) usage = cs.rootfs.used + cs.logs.used;
    if (usage !== undefined && usage > containerRequest(c, resource)) {
      message += `Container ${c.name} was using ${formatBytes(usage)}, request is ${containerRequestText(c, resource)}, has larger consumption of ${resource}. `;
    }
  }
  return message;
}

/** A pod over one of its local storage limits, with upstream's message and metric signal. */
export interface LocalStorageViolation {
  signal: "emptydirfs.limit" | "ephemeralpodfs.limit" | "ephemeralcontainerfs.limit";
  message: string;
}

/**
 * Upstream's local storage checks, in its order: an emptyDir above its sizeLimit, the pod's
 * ephemeral storage above the sum of its containers' limits, a container above its own limit.
 */
/** Whether the pod has a local storage limit to enforce: an emptyDir sizeLimit or an ephemeral-storage limit. */
export function hasLocalStorageLimit(pod: V1Pod): boolean {
  const spec = pod.spec;
  if ((spec?.volumes ?? []).some((v) => v.emptyDir?.sizeLimit !== undefined)) return true;
  return (spec?.containers ?? []).some((c) => (c.resources?.limits as Resources | undefined)?.["ephemeral-storage"] !== undefined);
}

export function localStorageViolation(pod: V1Pod, ps: PodEntry): LocalStorageViolation | undefined {
  return emptyDirOverLimit(pod, ps) ?? podOverLimit(pod, ps) ?? containerOverLimit(pod, ps);
}

function emptyDirOverLimit(pod: V1Pod, ps: PodEntry): LocalStorageViolation | undefined {
  const used = new Map(ps.volumes.map((v) => [v.name, v.used]));
  for (const v of pod.spec?.volumes ?? []) {
    const limitText = v.emptyDir?.sizeLimit as string | number | undefined;
    if (limitText === undefined) continue;
    const limit = parseQuantity(limitText) ?? 0;
    const u = used.get(v.name);
    if (u !== undefined && limit > 0 && u > limit) {
      return { signal: "emptydirfs.limit", message: `Usage of EmptyDir volume ${JSON.stringify(v.name)} exceeds the limit ${JSON.stringify(String(limitText))}. ` };
    }
  }
  return undefined;
}

function podOverLimit(pod: V1Pod, ps: PodEntry): LocalStorageViolation | undefined {
  const limits = (pod.spec?.containers ?? []).map((c) => (c.resources?.limits as Resources)?.["ephemeral-storage"]).filter((l) => l !== undefined);
  if (limits.length === 0) return undefined;
  const total = limits.reduce<number>((sum, l) => sum + (parseQuantity(l) ?? 0), 0);
  const usage = ps.ephemeral?.used;
  if (total > 0 && usage !== undefined && usage > total) {
    return { signal: "ephemeralpodfs.limit", message: `Pod ephemeral local storage usage exceeds the total limit of containers ${formatBytes(total)}. ` };
  }
  return undefined;
}

function containerOverLimit(pod: V1Pod, ps: PodEntry): LocalStorageViolation | undefined {
  for (const cs of ps.containers) {
    const c = pod.spec?.containers?.find((x) => x.name === cs.name);
    const limitText = (c?.resources?.limits as Resources)?.["ephemeral-storage"];
    if (!c || limitText === undefined) continue;
    const limit = parseQuantity(limitText) ?? 0;
    const usage = (cs.rootfs?.used ?? 0) + (cs.logs?.used ?? 0);
    if (limit > 0 && usage > limit) {
      return { signal: "ephemeralcontainerfs.limit", message: `Container ${c.name} exceeded its local ephemeral storage limit ${JSON.stringify(String(limitText))}. ` };
    }
  }
  return undefined;
}
