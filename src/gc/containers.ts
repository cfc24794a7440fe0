/**
 * Container garbage collection for pods that no longer exist, as upstream's container GC evicts
 * them: every period (1 minute) dead containers (not running, created at least minAge ago) and
 * not-ready sandboxes of pods the kubelet no longer knows are removed, and so are their pod log
 * directories. Pods the kubelet still runs are left to their workers, whose plan keeps the most
 * recent dead instance of each container (for `logs --previous` and restart counts).
 *
 * A pod counts as gone only when every pod source has reported and it was already gone on the
 * previous pass, so a pod that is still being terminated, or a source that is still listing after
 * a restart, never loses its containers to GC.
 */
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Container, PodSandbox, RuntimeService } from "../cri/types.js";
import { LABEL_POD_UID } from "../api/labels.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { runPeriodically } from "../util/periodic.js";

/** Upstream's ContainerGCPeriod. */
export const CONTAINER_GC_PERIOD_MS = 60_000;

export interface ContainerGCDeps {
  runtime: RuntimeService;
  clock: Clock;
  logger: Logger;
  /** Whether the kubelet knows the pod (desired, running or terminating). */
  podKnown: (uid: string) => boolean;
  /** Whether every pod source has reported at least once. */
  sourcesReady: () => boolean;
}

export interface ContainerGCOptions {
  /** Upstream's ContainerGCPeriod: 1 minute. */
  periodMs: number;
  /** Upstream's MinAge (--minimum-container-ttl-duration, default 0). */
  minAgeMs: number;
  /** Where pod log directories (`<ns>_<name>_<uid>`) live; empty: leave them alone. */
  podLogsDir: string;
}

export interface ContainerGCPlan {
  containers: string[];
  sandboxes: string[];
  /** UIDs of gone pods whose runtime objects are all removed by this plan. */
  clearedPods: string[];
}

const uidOf = (o: { labels: Record<string, string> }): string => o.labels[LABEL_POD_UID] ?? "";

/**
 * Pure: what to remove, given the runtime's containers and sandboxes and the set of pods that are
 * gone. Running containers and ready sandboxes are never chosen; a sandbox goes only once none of
 * its containers remains.
 */
export function planContainerGC(runtime: { containers: readonly Container[]; sandboxes: readonly PodSandbox[] }, gone: ReadonlySet<string>, at: { nowMs: number; minAgeMs: number }): ContainerGCPlan {
  const { containers, sandboxes } = runtime;
  const newest = at.nowMs - at.minAgeMs;
  const removeContainers = new Set<string>();
  for (const c of containers) {
    const uid = uidOf(c);
    if (!gone.has(uid) || c.state === "CONTAINER_RUNNING") continue;
    if (Number(c.createdAt / 1_000_000n) > newest) continue;
    removeContainers.add(c.id);
  }
  const sandboxesOut: string[] = [];
  for (const sb of sandboxes) {
    const uid = uidOf(sb);
    if (!gone.has(uid) || sb.state === "SANDBOX_READY") continue;
    if (Number(sb.createdAt / 1_000_000n) > newest) continue;
    if (containers.some((c) => c.podSandboxId === sb.id && !removeContainers.has(c.id))) continue;
    sandboxesOut.push(sb.id);
  }
  const cleared = [...gone].filter(
    (uid) => containers.every((c) => uidOf(c) !== uid || removeContainers.has(c.id)) && sandboxes.every((s) => uidOf(s) !== uid || sandboxesOut.includes(s.id)),
  );
  return { containers: [...removeContainers], sandboxes: sandboxesOut, clearedPods: cleared };
}

export interface ContainerGC {
  collect(): Promise<ContainerGCPlan>;
  run(signal: AbortSignal): Promise<void>;
}

export function createContainerGC(deps: ContainerGCDeps, opts: ContainerGCOptions): ContainerGC {
  /** UIDs seen gone on the previous pass. */
  let goneBefore = new Set<string>();

  const logDirs = async (): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    if (opts.podLogsDir === "") return out;
    const names = await readdir(opts.podLogsDir).catch(() => [] as string[]);
    for (const n of names) {
      const parts = n.split("_");
      const uid = parts[parts.length - 1] ?? "";
      if (parts.length >= 3 && uid !== "") out.set(uid, join(opts.podLogsDir, n));
    }
    return out;
  };

  const collect = async (): Promise<ContainerGCPlan> => {
    if (!deps.sourcesReady()) {
      goneBefore = new Set();
      return { containers: [], sandboxes: [], clearedPods: [] };
    }
    const [containers, sandboxes, dirs] = await Promise.all([deps.runtime.listContainers(), deps.runtime.listPodSandbox(), logDirs()]);
    const goneNow = new Set<string>();
    for (const uid of [...containers.map(uidOf), ...sandboxes.map(uidOf), ...dirs.keys()]) {
      if (uid !== "" && !deps.podKnown(uid)) goneNow.add(uid);
    }
    const gone = new Set([...goneNow].filter((u) => goneBefore.has(u)));
    goneBefore = goneNow;
    const plan = planContainerGC({ containers, sandboxes }, gone, { nowMs: deps.clock.now(), minAgeMs: opts.minAgeMs });
    for (const id of plan.containers) {
      await deps.runtime.removeContainer(id).catch((err: unknown) => deps.logger.info("Failed to remove container", { containerID: id, err: errorMessage(err) }));
    }
    for (const id of plan.sandboxes) {
      await deps.runtime.removePodSandbox(id).catch((err: unknown) => deps.logger.info("Failed to remove sandbox", { sandboxID: id, err: errorMessage(err) }));
    }
    for (const uid of plan.clearedPods) {
      const dir = dirs.get(uid);
      if (dir !== undefined) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    if (plan.containers.length + plan.sandboxes.length > 0) {
      deps.logger.v(2).info("container garbage collection", { containers: plan.containers.length, sandboxes: plan.sandboxes.length });
    }
    return plan;
  };

  return {
    collect,
    run: (signal) =>
      runPeriodically(collect, {
        clock: deps.clock,
        signal,
        periodMs: opts.periodMs,
        waitFirst: true,
        onError: (err) => deps.logger.info("Container garbage collection failed", { err: errorMessage(err) }),
      }),
  };
}
