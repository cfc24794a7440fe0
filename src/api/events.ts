/**
 * Events for pods, rate limited (eventRecordQPS / eventBurst) and aggregated: a repeat of the same
 * reason and message for the same object within ten minutes bumps the count of the first event.
 *
 * Events are sent by one sender, in the order they happened, from a bounded queue (as upstream's
 * event broadcaster does). They are background work: while the node is starting pods (`busy`),
 * queued events wait, at most `maxHoldMs` after the oldest of them happened, so that their writes
 * do not compete with the pod starts and status writes for the apiserver and the CPU. Timestamps
 * are those of the occurrence, not of the send.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { ApiClient } from "./client.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { rfc3339 } from "./json.js";

export type EventSink = (pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string) => void;

export interface EventRecorderOptions {
  api: ApiClient;
  nodeName: string;
  clock: Clock;
  logger: Logger;
  qps: number;
  burst: number;
  /** While this says true, queued events wait (at most maxHoldMs). */
  busy?: () => boolean;
  /** The longest an event waits for the node to be less busy (default 10 s). */
  maxHoldMs?: number;
  /** Events queued at most; more are dropped, as upstream's broadcaster does (default 1000). */
  queueSize?: number;
}

/** One event as the apiserver gets it: a new Event, or a repeat counted into an earlier one. */
interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstMs: number;
  /** The POST has not been sent yet (a repeat then raises its count instead of sending a PATCH). */
  queued?: { body: Record<string, unknown> };
}

interface Send {
  atMs: number;
  key: string;
  seen: Seen;
  /** A POST of a new Event, or a PATCH of the count of a sent one. */
  kind: "create" | "count";
  reason: string;
  lastMs: number;
}

const AGGREGATE_MS = 10 * 60_000;
const DEFAULT_MAX_HOLD_MS = 10_000;
const DEFAULT_QUEUE_SIZE = 1000;
/** How often a held queue looks whether the node is still busy. */
const BUSY_RECHECK_MS = 250;

export function createEventRecorder(opts: EventRecorderOptions): EventSink {
  const { clock, logger } = opts;
  const maxHoldMs = opts.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
  const queueSize = opts.queueSize ?? DEFAULT_QUEUE_SIZE;
  let tokens = opts.burst;
  let last = clock.now();
  const seen = new Map<string, Seen>();
  let seq = 0;
  const queue: Send[] = [];
  let sending = false;

  const take = (): boolean => {
    const now = clock.now();
    tokens = Math.min(opts.burst, tokens + ((now - last) / 1000) * opts.qps);
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };

  const send = async (s: Send): Promise<void> => {
    const { seen: e } = s;
    if (s.kind === "create" && e.queued) {
      const body = { ...e.queued.body, count: e.count, lastTimestamp: rfc3339(new Date(s.lastMs)) };
      delete e.queued;
      await opts.api
        .request({ method: "POST", path: `/api/v1/namespaces/${e.namespace}/events`, body })
        .catch((err: unknown) => logger.v(3).info("event not recorded", { reason: s.reason, err: errorMessage(err) }));
      return;
    }
    await opts.api
      .request({
        method: "PATCH",
        path: `/api/v1/namespaces/${e.namespace}/events/${e.name}`,
        contentType: "application/strategic-merge-patch+json",
        body: { count: e.count, lastTimestamp: rfc3339(new Date(s.lastMs)) },
      })
      .catch((err: unknown) => logger.v(3).info("event update failed", { err: errorMessage(err) }));
  };

  /** The one sender: waits while the node is busy (bounded by the oldest event's age), then sends in order. */
  const drain = async (): Promise<void> => {
    sending = true;
    try {
      for (let next = queue[0]; next !== undefined; next = queue[0]) {
        const holdUntil = next.atMs + maxHoldMs;
        if (opts.busy?.() === true && clock.now() < holdUntil) {
          await clock.sleep(Math.min(BUSY_RECHECK_MS, holdUntil - clock.now()));
          continue;
        }
        queue.shift();
        await send(next);
      }
    } finally {
      sending = false;
    }
  };

  const enqueue = (s: Send): void => {
    if (queue.length >= queueSize) {
      logger.v(2).info("event dropped: the event queue is full", { reason: s.reason, queued: queue.length });
      if (s.kind === "create") seen.delete(s.key);
      return;
    }
    queue.push(s);
    if (!sending) void drain();
  };

  return (pod, type, reason, message) => {
    const meta = pod.metadata ?? {};
    const now = clock.now();
    const k = `${meta.uid ?? ""}\0${reason}\0${message}`;
    if (!take()) {
      logger.v(4).info("event dropped by the rate limit", { reason });
      return;
    }
    const prior = seen.get(k);
    if (seen.size > 4096) for (const [kk, v] of seen) if (now - v.firstMs > AGGREGATE_MS) seen.delete(kk);
    if (prior && now - prior.firstMs < AGGREGATE_MS) {
      prior.count++;
      const pending = queue.find((q) => q.seen === prior);
      if (pending) {
        // Not sent yet: the one write carries the count and the last time.
        pending.lastMs = now;
        return;
      }
      enqueue({ atMs: now, key: k, seen: prior, kind: "count", reason, lastMs: now });
      return;
    }
    const name = `${meta.name ?? "pod"}.${(now * 1000 + (seq++ % 1000)).toString(16)}`;
    const namespace = meta.namespace ?? "default";
    const ts = rfc3339(new Date(now));
    const body = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: { apiVersion: "v1", kind: "Pod", name: meta.name, namespace, uid: meta.uid },
      reason,
      message,
      type,
      source: { component: "kubelet", host: opts.nodeName },
      reportingComponent: "kubelet",
      reportingInstance: opts.nodeName,
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    };
    const e: Seen = { name, namespace, count: 1, firstMs: now, queued: { body } };
    seen.set(k, e);
    enqueue({ atMs: now, key: k, seen: e, kind: "create", reason, lastMs: now });
  };
}
