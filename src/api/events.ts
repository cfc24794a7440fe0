/**
 * Events for pods, rate limited (eventRecordQPS / eventBurst) and aggregated: a repeat of the same
 * reason and message for the same object within ten minutes bumps the count of the first event.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { ApiClient } from "./client.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { rfc3339 } from "./json.js";

export type EventSink = (pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string) => void;

interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstMs: number;
}

const AGGREGATE_MS = 10 * 60_000;

export function createEventRecorder(opts: { api: ApiClient; nodeName: string; clock: Clock; logger: Logger; qps: number; burst: number }): EventSink {
  let tokens = opts.burst;
  let last = opts.clock.now();
  const seen = new Map<string, Seen>();
  let seq = 0;

  const take = (): boolean => {
    const now = opts.clock.now();
    tokens = Math.min(opts.burst, tokens + ((now - last) / 1000) * opts.qps);
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };

  return (pod, type, reason, message) => {
    const meta = pod.metadata ?? {};
    const now = opts.clock.now();
    const k = `${meta.uid ?? ""}\0${reason}\0${message}`;
    if (!take()) {
      opts.logger.v(4).info("event dropped by the rate limit", { reason });
      return;
    }
    const prior = seen.get(k);
    if (seen.size > 4096) for (const [kk, v] of seen) if (now - v.firstMs > AGGREGATE_MS) seen.delete(kk);
    if (prior && now - prior.firstMs < AGGREGATE_MS) {
      prior.count++;
      opts.api
        .request({
          method: "PATCH",
          path: `/api/v1/namespaces/${prior.namespace}/events/${prior.name}`,
          contentType: "application/strategic-merge-patch+json",
          body: { count: prior.count, lastTimestamp: rfc3339(new Date(now)) },
        })
        .catch((err: unknown) => opts.logger.v(3).info("event update failed", { err: errorMessage(err) }));
      return;
    }
    const name = `${meta.name ?? "pod"}.${(now * 1000 + (seq++ % 1000)).toString(16)}`;
    const namespace = meta.namespace ?? "default";
    seen.set(k, { name, namespace, count: 1, firstMs: now });
    const ts = rfc3339(new Date(now));
    opts.api
      .request({
        method: "POST",
        path: `/api/v1/namespaces/${namespace}/events`,
        body: {
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
        },
      })
      .catch((err: unknown) => opts.logger.v(3).info("event not recorded", { reason, err: errorMessage(err) }));
  };
}
