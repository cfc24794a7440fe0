/**
 * The eviction manager: every monitoring interval it reads the stats, compares the signals with
 * the thresholds, keeps the node's pressure conditions (held for the pressure transition period
 * after a signal clears), evicts pods over their local storage limits, and, while a threshold is
 * met, evicts one pod ranked as upstream ranks them. It also answers admission while the node is
 * under pressure.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { StatsSnapshot } from "../stats/index.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { runPeriodically } from "../util/periodic.js";
import type { EventRecorder, FinalReason } from "../pods/worker.js";
import type { Rejection } from "../pods/manager.js";
import { qosClass } from "../containers/resources.js";
import { hasDedicatedImageFs, observeSignals, type Observations } from "./signals.js";
import { evictionMessage, hasLocalStorageLimit, isCriticalPod, isStaticPod, localStorageViolation, rankForSignal, type StatsOf } from "./rank.js";
import { SIGNAL_TO_CONDITION, SIGNAL_TO_RESOURCE, thresholdQuantity, type NodeConditionType, type Signal, type Threshold } from "./thresholds.js";

export const EVICTED_REASON = "Evicted";
/** Upstream's housekeeping interval: how often signals are compared with the thresholds. */
export const MONITORING_INTERVAL_MS = 10_000;
/** How long the manager waits for an evicted pod to be cleaned up before it looks again. */
const POD_CLEANUP_TIMEOUT_MS = 30_000;
/** Grace period of pods evicted for a hard threshold or a local storage limit. */
const IMMEDIATE_GRACE_SECONDS = 0;

export interface EvictionDeps {
  clock: Clock;
  logger: Logger;
  /** A stats snapshot (fresh enough for one monitoring pass). */
  snapshot: () => Promise<StatsSnapshot>;
  /**
   * The node-level figures alone (no pod stats), enough to compare the signals with the
   * thresholds; the full snapshot is read only when pods must be ranked or checked against their
   * local storage limits. Without it every pass reads the full snapshot.
   */
  nodeSnapshot?: () => Promise<StatsSnapshot>;
  /** The pods running here that may be evicted (admitted, not terminating). */
  activePods: () => V1Pod[];
  /**
   * Kills the pod with the grace period and makes its final status phase Failed with the reason
   * and message; resolves when it is cleaned up. Resolves false when the pod is not running here.
   */
  evictPod: (pod: V1Pod, gracePeriodSeconds: number, final: FinalReason) => Promise<boolean>;
  events: EventRecorder;
  /** Counts an eviction under its signal (kubelet_evictions), with the age of the stats it was based on. */
  onEviction?: (signal: string, statsAgeMs: number) => void;
  /** The set of pressure conditions changed (the node status should be recomputed). */
  onConditionsChanged?: () => void;
}

export interface EvictionOptions {
  thresholds: Threshold[];
  /** evictionPressureTransitionPeriod: how long a condition stays after its signal cleared. */
  pressureTransitionPeriodMs: number;
  /** Monitoring period (default 10 s). */
  intervalMs?: number;
  /** Evict pods over their local storage limits (localStorageCapacityIsolation, default true). */
  localStorageCapacityIsolation?: boolean;
}

export interface EvictionManager {
  /** Monitors until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
  /** One monitoring pass; resolves with the pods it evicted. */
  synchronize(): Promise<V1Pod[]>;
  isUnderMemoryPressure(): boolean;
  isUnderDiskPressure(): boolean;
  isUnderPIDPressure(): boolean;
  /** The pressure conditions in force, in upstream's order. */
  conditions(): NodeConditionType[];
  /** Upstream's eviction admit handler: refuses pods the node cannot take under pressure. */
  admit(pod: V1Pod): Rejection | undefined;
  /** The last observations (for logs and tests). */
  observations(): Observations;
}

const CONDITION_ORDER: NodeConditionType[] = ["MemoryPressure", "DiskPressure", "PIDPressure"];

/**
 * Thresholds whose signal is below them. With `enforceMinReclaim` (thresholds already met), the
 * signal must also have recovered by the threshold's minimum reclaim to count as resolved.
 */
export function thresholdsMet(thresholds: Threshold[], observations: Observations, enforceMinReclaim = false): Threshold[] {
  return thresholds.filter((t) => {
    const o = observations.get(t.signal);
    if (o === undefined) return false;
    const extra = enforceMinReclaim && t.minReclaim ? thresholdQuantity(t.minReclaim, o.capacity) : 0;
    return thresholdQuantity(t.value, o.capacity) + extra > o.available;
  });
}

/** Memory first, then the rest in their configured order (upstream's byEvictionPriority without reclaim functions). */
function byEvictionPriority(a: Threshold, b: Threshold): number {
  return (a.signal === "memory.available" ? 0 : 1) - (b.signal === "memory.available" ? 0 : 1);
}

export function createEvictionManager(deps: EvictionDeps, opts: EvictionOptions): EvictionManager {
  const { clock } = deps;
  const log = deps.logger.with({ component: "eviction" });
  const intervalMs = opts.intervalMs ?? MONITORING_INTERVAL_MS;
  let met: Threshold[] = [];
  const firstObservedAt = new Map<Signal, number>();
  const conditionLastObservedAt = new Map<NodeConditionType, number>();
  let conditions: NodeConditionType[] = [];
  let observations: Observations = new Map();

  const updateConditions = (nowMet: Threshold[], now: number): void => {
    for (const t of nowMet) conditionLastObservedAt.set(SIGNAL_TO_CONDITION[t.signal], now);
    const next = CONDITION_ORDER.filter((c) => {
      const at = conditionLastObservedAt.get(c);
      return at !== undefined && now - at < opts.pressureTransitionPeriodMs;
    });
    for (const c of conditionLastObservedAt.keys()) if (!next.includes(c)) conditionLastObservedAt.delete(c);
    const changed = next.join() !== conditions.join();
    if (changed) log.info("node pressure conditions changed", { conditions: next.length ? next.join(",") : "(none)" });
    conditions = next;
    if (changed) deps.onConditionsChanged?.();
  };

  /** Evicts with no grace: every threshold here is hard, as are local storage limits (soft ones would use evictionMaxPodGracePeriod). */
  const evict = async (pod: V1Pod, message: string, signal: string, statsTime: number): Promise<boolean> => {
    const name = `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
    if (isCriticalPod(pod) && isStaticPod(pod)) {
      log.warn("cannot evict a critical static pod", { pod: name });
      return false;
    }
    log.info("evicting pod", { pod: name, signal, message });
    deps.events(pod, "Warning", EVICTED_REASON, message);
    let ok: boolean;
    // Wait for the pod's cleanup, but not forever: the next pass looks again.
    const wait = new AbortController();
    try {
      ok = await Promise.race([
        deps.evictPod(pod, IMMEDIATE_GRACE_SECONDS, { reason: EVICTED_REASON, message }),
        clock.sleep(POD_CLEANUP_TIMEOUT_MS, wait.signal).then(() => true, () => false),
      ]);
    } catch (err) {
      log.error("eviction failed", { pod: name, err: errorMessage(err) });
      return false;
    } finally {
      wait.abort();
    }
    if (ok) deps.onEviction?.(signal, clock.now() - statsTime);
    return ok;
  };

  /** Compares the observations with the thresholds: updates the conditions and the thresholds met past their grace period. */
  const observe = (obs: Observations): void => {
    observations = obs;
    const now = clock.now();
    // Thresholds met now, plus those met before that have not recovered by their minimum reclaim yet.
    const nowMet = thresholdsMet(opts.thresholds, obs);
    for (const t of thresholdsMet(met, obs, true)) if (!nowMet.some((m) => m.signal === t.signal)) nowMet.push(t);
    for (const t of [...firstObservedAt.keys()]) if (!nowMet.some((m) => m.signal === t)) firstObservedAt.delete(t);
    for (const t of nowMet) if (!firstObservedAt.has(t.signal)) firstObservedAt.set(t.signal, now);
    updateConditions(nowMet, now);
    met = nowMet.filter((t) => now - (firstObservedAt.get(t.signal) ?? now) >= t.gracePeriodMs);
    if (nowMet.length > 0) {
      log.v(1).info("eviction thresholds met", {
        thresholds: nowMet.map((t) => `${t.signal}: available ${obs.get(t.signal)?.available ?? "?"} < ${thresholdQuantity(t.value, obs.get(t.signal)?.capacity ?? 0)}`).join("; "),
      });
    }
  };

  /** Evicts every pod over a local storage limit. */
  const evictOverLocalLimits = async (active: V1Pod[], snap: StatsSnapshot, statsOf: StatsOf): Promise<V1Pod[]> => {
    const evicted: V1Pod[] = [];
    if (snap.podsUnavailable) return evicted;
    for (const pod of active) {
      const ps = statsOf(pod);
      const v = ps && localStorageViolation(pod, ps);
      if (v && (await evict(pod, v.message, v.signal, snap.time))) evicted.push(pod);
    }
    return evicted;
  };

  const synchronize = async (): Promise<V1Pod[]> => {
    const active = deps.activePods();
    const checkLocalStorage = opts.localStorageCapacityIsolation !== false && active.some(hasLocalStorageLimit);
    const nodeOnly = !checkLocalStorage && deps.nodeSnapshot !== undefined;
    let snap = nodeOnly && deps.nodeSnapshot ? await deps.nodeSnapshot() : await deps.snapshot();
    const obs = observeSignals(snap);
    observe(obs);
    // Ranking needs the pods' usage: read it now (the signals stay those of the node-level read).
    if (nodeOnly && met.length > 0 && active.length > 0) snap = await deps.snapshot();
    const byUid = new Map(snap.pods.map((p) => [p.ref.uid, p]));
    const statsOf: StatsOf = (pod) => byUid.get(pod.metadata?.uid ?? "");

    if (checkLocalStorage) {
      const evicted = await evictOverLocalLimits(active, snap, statsOf);
      if (evicted.length > 0) return evicted;
    }

    if (met.length === 0) return [];
    const target = [...met].sort(byEvictionPriority)[0];
    if (!target) return [];
    if (active.length === 0) {
      log.warn("eviction thresholds met but no pods to evict", { signal: target.signal });
      return [];
    }
    log.info("attempting to reclaim", { signal: target.signal, resource: SIGNAL_TO_RESOURCE[target.signal] });
    for (const pod of rankForSignal(target.signal, active, statsOf, hasDedicatedImageFs(snap))) {
      const message = evictionMessage(target.signal, pod, statsOf, { met, observations: obs });
      if (await evict(pod, message, target.signal, obs.get(target.signal)?.time ?? snap.time)) return [pod];
    }
    log.warn("unable to evict any pods from the node", { signal: target.signal });
    return [];
  };

  const has = (c: NodeConditionType): boolean => conditions.includes(c);

  return {
    run: (signal) =>
      runPeriodically(synchronize, {
        clock,
        signal,
        periodMs: intervalMs,
        onError: (err) => log.error("eviction manager: synchronize failed", { err: errorMessage(err) }),
      }),
    synchronize,
    isUnderMemoryPressure: () => has("MemoryPressure"),
    isUnderDiskPressure: () => has("DiskPressure"),
    isUnderPIDPressure: () => has("PIDPressure"),
    conditions: () => [...conditions],
    observations: () => observations,
    admit(pod) {
      if (conditions.length === 0 || isCriticalPod(pod)) return undefined;
      if (conditions.length === 1 && conditions[0] === "MemoryPressure") {
        if (qosClass(pod) !== "BestEffort") return undefined;
        const tolerates = (pod.spec?.tolerations ?? []).some(
          (t) => (t.effect === undefined || t.effect === "" || t.effect === "NoSchedule") && (t.operator === "Exists" ? t.key === undefined || t.key === "" || t.key === MEMORY_PRESSURE_TAINT : t.key === MEMORY_PRESSURE_TAINT && (t.value ?? "") === ""),
        );
        if (tolerates) return undefined;
      }
      log.info("failed to admit pod to node", { pod: `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`, nodeConditions: conditions.join(",") });
      return { reason: EVICTED_REASON, message: `The node had condition: [${conditions.join(" ")}]. ` };
    },
  };
}

const MEMORY_PRESSURE_TAINT = "node.kubernetes.io/memory-pressure";
