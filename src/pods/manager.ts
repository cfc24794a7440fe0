/**
 * The pod manager: merges the pod sources into the desired set (by UID), runs one worker per pod,
 * terminates workers of pods that went away, and cleans up orphans the runtime still holds.
 * A pod with the same full name as one still terminating waits for it (a changed static pod is
 * recreated, never run twice at once).
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../util/log.js";
import { ANN_CONFIG_SOURCE, ANN_POD_TERMINATION_GRACE, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID } from "../api/labels.js";
import type { RelistSnapshot } from "./relist.js";
import { createPodWorker, type FinalReason, type PodWorker, type WorkerEnv } from "./worker.js";
import type { StatusManager } from "./status-manager.js";
import type { RuntimeObservation } from "./runtime-state.js";

export interface PodManager {
  /** Replaces the complete set of pods of one source ("file", "api"). */
  setSourcePods(source: string, pods: V1Pod[]): void;
  /** Marks which sources must report before orphans may be cleaned up. */
  expectSources(sources: string[]): void;
  /** The desired pods, in a stable order. */
  desiredPods(): V1Pod[];
  /** Changes whenever the desired set changes (for caches of views of it). */
  version(): number;
  getPodByUID(uid: string): V1Pod | undefined;
  /** Whether the pod is desired, has a worker or is still terminating (container GC asks). */
  podKnown(uid: string): boolean;
  /** Whether every expected source has reported. */
  sourcesReady(): boolean;
  getPodByName(namespace: string, name: string): V1Pod | undefined;
  /** Something changed for this pod: the runtime (with what the relist saw) or a probe verdict. */
  onRuntimeEvent(uid: string, seen?: RuntimeObservation): void;
  /** Cleans up runtime pods nobody wants (after all sources reported). */
  housekeeping(snap: RelistSnapshot): void;
  /** Stops all workers without touching pods (kubelet shutdown). */
  stop(): void;
  /** Pods with a running worker (admitted, not terminating): the candidates for eviction. */
  activePods(): V1Pod[];
  /**
   * Evicts a pod: kills it with the grace period, ends its status Failed with `final`, and never
   * starts it again. Resolves when it is cleaned up: true, or false when it was not running here.
   */
  evict(uid: string, gracePeriodSeconds: number, final: FinalReason): Promise<boolean>;
  /** Resolves when every worker of the given pods finished its first full start (tests, benchmarks). */
  workerCount(): number;
  terminatingCount(): number;
}

/** A pod refused at admission: it never runs and reports phase Failed with this reason. */
export interface Rejection {
  reason: string;
  message: string;
}

export interface PodManagerHooks {
  /** Decides whether a new pod may run; `active` are the pods already admitted. */
  admit?: (pod: V1Pod, active: V1Pod[]) => Rejection | undefined;
  /** Called once a pod that was deleted through the API has been killed and cleaned up. */
  onTerminated?: (pod: V1Pod) => void;
}

/** A relist older than this is not trusted to say that the runtime holds nothing of a new pod. */
const FRESH_RELIST_MS = 5_000;
/** How long the end of a pod's worker is remembered (far longer than a relist takes to follow it). */
const RETIRED_KEPT_MS = 5 * 60_000;

export function createPodManager(
  env: WorkerEnv & {
    statuses: StatusManager;
    logger: Logger;
    hooks?: PodManagerHooks;
    /** The last relist (what the runtime held, and when the lists were asked for). */
    lastRelist?: () => RelistSnapshot | undefined;
  },
): PodManager {
  const sources = new Map<string, V1Pod[]>();
  const expected = new Set<string>();
  const workers = new Map<string, PodWorker>();
  const terminating = new Map<string, { fullName: string; done: Promise<void> }>();
  /** Pods deleted through the API that finished terminating: never started again. */
  const finished = new Set<string>();
  const rejected = new Set<string>();
  /** Pods evicted under node pressure: their Failed status stays, and they never run again. */
  const evicted = new Set<string>();
  let desired = new Map<string, V1Pod>();
  let desiredVersion = 0;
  let stopped = false;
  /** When a worker of the pod last ended: a relist that started earlier may miss what it left. */
  const retired = new Map<string, number>();
  const retire = (uid: string): void => {
    const now = env.clock.now();
    for (const [u, at] of retired) if (now - at > RETIRED_KEPT_MS) retired.delete(u);
    retired.set(uid, now);
  };
  /**
   * Whether a recent relist, started after any earlier worker of this pod ended, saw nothing of it:
   * then a new worker needs no read of the runtime before its first start (this kubelet is the
   * only one that makes sandboxes for the pod, and it had none in the making).
   */
  const runtimeKnowsNothingOf = (uid: string): boolean => {
    const snap = env.lastRelist?.();
    if (!snap || env.clock.now() - snap.listStartedAtMs > FRESH_RELIST_MS) return false;
    const ended = retired.get(uid);
    if (ended !== undefined && snap.listStartedAtMs <= ended) return false;
    return !snap.sandboxes.some((s) => s.labels[LABEL_POD_UID] === uid) && !snap.containers.some((c) => c.labels[LABEL_POD_UID] === uid);
  };
  const workerEnv: WorkerEnv = { ...env, runtimeKnowsNothingOf };

  const fullName = (p: V1Pod): string => `${p.metadata?.namespace ?? ""}/${p.metadata?.name ?? ""}`;

  const recompute = (): void => {
    const next = new Map<string, V1Pod>();
    for (const [, pods] of [...sources.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      for (const p of pods) {
        const uid = p.metadata?.uid;
        if (uid && !next.has(uid)) next.set(uid, p);
      }
    }
    desired = next;
    desiredVersion++;
    reconcile();
  };

  const startTermination = (uid: string, w: PodWorker, grace: number | undefined, deleted: boolean): void => {
    workers.delete(uid);
    const pod = w.pod();
    const name = fullName(pod);
    env.logger.info(deleted ? "pod deleted through the API; terminating" : "pod removed from its source; terminating", { pod: name, uid, gracePeriod: grace });
    const doneP = w.terminate(grace).finally(() => {
      terminating.delete(uid);
      retire(uid);
      if (deleted) {
        finished.add(uid);
        env.hooks?.onTerminated?.(desired.get(uid) ?? pod);
      } else {
        env.statuses.remove(uid);
      }
      reconcile();
    });
    terminating.set(uid, { fullName: name, done: doneP });
  };

  const reconcile = (): void => {
    if (stopped) return;
    for (const [uid, w] of workers) {
      const want = desired.get(uid);
      if (!want) startTermination(uid, w, undefined, false);
      else if (want.metadata?.deletionTimestamp) startTermination(uid, w, want.metadata.deletionGracePeriodSeconds ?? undefined, true);
    }
    for (const uid of [...finished, ...rejected, ...evicted]) {
      if (!desired.has(uid) && !terminating.has(uid)) {
        finished.delete(uid);
        rejected.delete(uid);
        evicted.delete(uid);
        env.statuses.remove(uid);
      }
    }
    for (const [uid, pod] of desired) {
      const w = workers.get(uid);
      if (w) {
        if (w.pod() !== pod) w.update(pod);
        continue;
      }
      if (terminating.has(uid) || finished.has(uid) || rejected.has(uid) || evicted.has(uid)) continue;
      if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") {
        // Already terminal in the API (e.g. completed before a restart): never run again.
        continue;
      }
      if (pod.metadata?.deletionTimestamp) {
        // Deleted before it ever ran here: nothing to kill.
        finished.add(uid);
        env.hooks?.onTerminated?.(pod);
        continue;
      }
      const name = fullName(pod);
      if ([...terminating.values()].some((t) => t.fullName === name)) continue; // retried when that finishes
      const rejection = env.hooks?.admit?.(pod, [...workers.values()].map((x) => x.pod()));
      if (rejection) {
        rejected.add(uid);
        env.logger.warn("pod rejected at admission", { pod: name, uid, reason: rejection.reason, message: rejection.message });
        env.events(pod, "Warning", rejection.reason, rejection.message);
        env.statuses.setStatus(pod, { phase: "Failed", reason: rejection.reason, message: rejection.message, ...(pod.status?.startTime ? {} : {}) });
        continue;
      }
      workers.set(uid, createPodWorker(pod, workerEnv));
    }
  };

  return {
    setSourcePods(source, pods) {
      sources.set(source, pods);
      recompute();
    },
    expectSources(list) {
      for (const s of list) expected.add(s);
    },
    desiredPods: () => [...desired.values()],
    version: () => desiredVersion,
    getPodByUID: (uid) => desired.get(uid),
    podKnown: (uid) => desired.has(uid) || workers.has(uid) || terminating.has(uid),
    sourcesReady: () => [...expected].every((s) => sources.has(s)),
    getPodByName: (ns, name) => [...desired.values()].find((p) => p.metadata?.namespace === ns && p.metadata?.name === name),
    onRuntimeEvent(uid, seen) {
      workers.get(uid)?.trigger(seen);
    },
    housekeeping(snap) {
      if (stopped || ![...expected].every((s) => sources.has(s))) return;
      const orphans = new Map<string, V1Pod>();
      // Containers first: they carry the pod's grace period in their annotations.
      for (const obj of [...snap.containers, ...snap.sandboxes]) {
        const uid = obj.labels[LABEL_POD_UID];
        if (!uid || desired.has(uid) || workers.has(uid) || terminating.has(uid) || orphans.has(uid)) continue;
        const grace = Number(obj.annotations[ANN_POD_TERMINATION_GRACE] ?? "30");
        orphans.set(uid, {
          metadata: { uid, name: obj.labels[LABEL_POD_NAME] ?? "", namespace: obj.labels[LABEL_POD_NAMESPACE] ?? "", annotations: { [ANN_CONFIG_SOURCE]: "runtime" } },
          spec: { containers: [], terminationGracePeriodSeconds: Number.isFinite(grace) ? grace : 30 },
        });
      }
      for (const [uid, pod] of orphans) {
        env.logger.info("cleaning up an orphaned pod the runtime still holds", { pod: fullName(pod), uid });
        const doneP = createPodWorker(pod, workerEnv)
          .terminate()
          .finally(() => {
            terminating.delete(uid);
            retire(uid);
            reconcile();
          });
        terminating.set(uid, { fullName: fullName(pod), done: doneP });
      }
    },
    stop() {
      stopped = true;
      for (const w of workers.values()) w.stop();
    },
    activePods: () => [...workers.values()].map((w) => w.pod()),
    evict(uid, grace, final) {
      const w = workers.get(uid);
      if (!w || stopped) return Promise.resolve(false);
      workers.delete(uid);
      evicted.add(uid);
      const pod = w.pod();
      env.logger.info("evicting pod", { pod: fullName(pod), uid, gracePeriod: grace, reason: final.reason });
      // Upstream marks a pod the kubelet terminates for node pressure with a DisruptionTarget condition.
      const disruption = { type: "DisruptionTarget", status: "True", reason: "TerminationByKubelet", message: final.message, lastTransitionTime: new Date(env.clock.now()) };
      const doneP = w.terminate(grace, { ...final, conditions: [...(final.conditions ?? []), disruption] }).finally(() => {
        terminating.delete(uid);
        retire(uid);
        reconcile();
      });
      terminating.set(uid, { fullName: fullName(pod), done: doneP });
      return doneP.then(() => true);
    },
    workerCount: () => workers.size,
    terminatingCount: () => terminating.size,
  };
}
