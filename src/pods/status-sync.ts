/**
 * Writes pod statuses to the apiserver: prompt but batched — changes mark a pod dirty, a small pool
 * of writers PATCHes `pods/<name>/status` (strategic merge, with the pod's UID as precondition).
 * Static pods' statuses go to their mirror pods.
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import type { ApiClient } from "../api/client.js";
import { ApiError } from "../api/client.js";
import { toKubeJSON } from "../api/json.js";
import { ANN_CONFIG_SOURCE, SOURCE_FILE } from "../api/labels.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import type { StatusManager } from "./status-manager.js";

export interface StatusSyncer {
  run(signal: AbortSignal): Promise<void>;
  /** Resolves once the current status of the pod has been written (or cannot be). */
  flush(uid: string): Promise<void>;
  /** Re-queues a pod (e.g. its mirror pod appeared). */
  markDirty(uid: string): void;
}

export interface StatusSyncerOptions {
  api: ApiClient;
  statuses: StatusManager;
  clock: Clock;
  logger: Logger;
  /** The API object a pod's status belongs to: itself, or its mirror pod for a static pod. */
  target: (pod: V1Pod) => { namespace: string; name: string; uid: string } | undefined;
  concurrency?: number;
}

export function isStaticPod(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[ANN_CONFIG_SOURCE] === SOURCE_FILE;
}

/**
 * The strategic merge patch that makes the API's pod status equal `status`. Conditions merge by
 * type, so a condition that lost its reason or message (False → True) says so with an explicit
 * null; otherwise the API would keep the old reason on a condition that is now True.
 */
export function statusPatch(uid: string, status: V1PodStatus): { metadata: { uid: string }; status: Record<string, unknown> } {
  const body = JSON.parse(toKubeJSON({ metadata: { uid }, status })) as { metadata: { uid: string }; status: Record<string, unknown> };
  const conditions = body.status.conditions;
  if (Array.isArray(conditions)) {
    for (const c of conditions as Record<string, unknown>[]) {
      c.reason ??= null;
      c.message ??= null;
    }
  }
  return body;
}

export function createStatusSyncer(opts: StatusSyncerOptions): StatusSyncer {
  const log = opts.logger.with({ component: "status" });
  const dirty = new Set<string>();
  const written = new Map<string, number>();
  const waiters = new Map<string, { version: number; resolve: () => void }[]>();
  /** Pods being written now: a pod is written by one writer at a time. */
  const inFlight = new Set<string>();
  /** Idle writers wait here for work. */
  let idle: (() => void)[] = [];
  const kick = (): void => {
    const list = idle;
    idle = [];
    for (const wake of list) wake();
  };

  const markDirty = (uid: string): void => {
    dirty.add(uid);
    kick();
  };
  opts.statuses.subscribe((e) => markDirty(e.pod.metadata?.uid ?? ""));

  const settle = (uid: string, version: number): void => {
    written.set(uid, version);
    const list = waiters.get(uid) ?? [];
    const keep = list.filter((w) => {
      if (w.version <= version) {
        w.resolve();
        return false;
      }
      return true;
    });
    if (keep.length) waiters.set(uid, keep);
    else waiters.delete(uid);
  };

  const write = async (uid: string): Promise<"ok" | "retry"> => {
    const entry = opts.statuses.entry(uid);
    if (!entry) return "ok";
    const target = opts.target(entry.pod);
    if (!target) return "retry";
    const body = statusPatch(target.uid, entry.status);
    try {
      await opts.api.request({
        method: "PATCH",
        path: `/api/v1/namespaces/${target.namespace}/pods/${target.name}/status`,
        contentType: "application/strategic-merge-patch+json",
        body,
      });
      settle(uid, entry.version);
      return "ok";
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 409 || err.status === 422)) {
        // The pod is gone or was replaced: nothing to write.
        log.v(3).info("pod status not written; the pod is gone or was replaced", { pod: `${target.namespace}/${target.name}`, status: err.status });
        settle(uid, entry.version);
        return "ok";
      }
      log.warn("failed to update pod status; will retry", { pod: `${target.namespace}/${target.name}`, err: errorMessage(err) });
      return "retry";
    }
  };

  return {
    markDirty,
    flush(uid) {
      const entry = opts.statuses.entry(uid);
      if (!entry || (written.get(uid) ?? 0) >= entry.version) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const list = waiters.get(uid) ?? [];
        list.push({ version: entry.version, resolve });
        waiters.set(uid, list);
        markDirty(uid);
      });
    },
    async run(signal) {
      const concurrency = opts.concurrency ?? 5;
      let retryDelay = 0;
      signal.addEventListener("abort", kick, { once: true });
      // A pool of writers: each takes the next dirty pod nobody is writing, as soon as it is free.
      const writer = async (): Promise<void> => {
        while (!signal.aborted) {
          const uid = [...dirty].find((u) => !inFlight.has(u));
          if (uid === undefined) {
            await new Promise<void>((r) => idle.push(r));
            continue;
          }
          dirty.delete(uid);
          inFlight.add(uid);
          let r: "ok" | "retry";
          try {
            r = await write(uid);
          } finally {
            inFlight.delete(uid);
          }
          if (r === "ok") {
            retryDelay = 0;
            if (dirty.has(uid)) kick();
            continue;
          }
          // The apiserver is failing: this writer backs off (doubling, 0.5 s to 10 s), then retries the pod.
          retryDelay = Math.min(Math.max(retryDelay * 2, 500), 10_000);
          await opts.clock.sleep(retryDelay, signal).catch(() => undefined);
          markDirty(uid);
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, concurrency) }, writer));
    },
  };
}
