/**
 * The apiserver pod source: lists and watches the pods bound to this node
 * (fieldSelector spec.nodeName=<node>), resuming from the last resourceVersion, relisting on
 * 410 Gone, backing off on errors. Mirror pods are reported separately: they are not pods to run.
 */
import type { V1Pod, V1PodList } from "@kubernetes/client-node";
import type { ApiClient, WatchEvent } from "../../api/client.js";
import { ApiError } from "../../api/client.js";
import { ANN_CONFIG_MIRROR, ANN_CONFIG_SOURCE, SOURCE_API } from "../../api/labels.js";
import type { Clock } from "../../util/clock.js";
import type { Logger } from "../../util/log.js";
import { errorMessage } from "../../util/errors.js";

export interface ApiSourceOptions {
  api: ApiClient;
  nodeName: string;
  clock: Clock;
  logger: Logger;
  /** The complete set of API pods to run, after every change. */
  onPods: (pods: V1Pod[]) => void;
  /** The mirror pods of this node's static pods, after every change. */
  onMirrorPods: (pods: V1Pod[]) => void;
}

export interface ApiSource {
  run(signal: AbortSignal): Promise<void>;
  /** Resolves after the first complete list. */
  readonly synced: Promise<void>;
}

const isMirror = (p: V1Pod): boolean => p.metadata?.annotations?.[ANN_CONFIG_MIRROR] !== undefined;

export function createApiSource(opts: ApiSourceOptions): ApiSource {
  const log = opts.logger.with({ source: "api" });
  const pods = new Map<string, V1Pod>();
  let resolveSynced!: () => void;
  const synced = new Promise<void>((r) => (resolveSynced = r));
  const query = { fieldSelector: `spec.nodeName=${opts.nodeName}` };

  const emit = (): void => {
    const all = [...pods.values()];
    opts.onPods(all.filter((p) => !isMirror(p)));
    opts.onMirrorPods(all.filter(isMirror));
  };
  const annotate = (p: V1Pod): V1Pod => {
    if (!isMirror(p)) {
      p.metadata ??= {};
      p.metadata.annotations = { ...p.metadata.annotations, [ANN_CONFIG_SOURCE]: SOURCE_API };
    }
    return p;
  };

  const list = async (signal: AbortSignal): Promise<string> => {
    const l = await opts.api.request<V1PodList>({ method: "GET", path: "/api/v1/pods", query, signal });
    pods.clear();
    for (const p of l.items) pods.set(p.metadata?.uid ?? "", annotate(p));
    emit();
    resolveSynced();
    return l.metadata?.resourceVersion ?? "";
  };

  return {
    synced,
    async run(signal) {
      let rv = "";
      let failures = 0;
      while (!signal.aborted) {
        try {
          if (rv === "") rv = await list(signal);
          let gone = false;
          await opts.api.watch<V1Pod | { code?: number; reason?: string; message?: string }>(
            { path: "/api/v1/pods", query: { ...query, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300) }, signal },
            (e: WatchEvent<V1Pod | { code?: number; reason?: string; message?: string }>) => {
              if (e.type === "ERROR") {
                const st = e.object as { code?: number; message?: string };
                if (st.code === 410) gone = true;
                else log.warn("pod watch error", { code: st.code, message: st.message });
                return;
              }
              const p = e.object as V1Pod;
              const newRv = p.metadata?.resourceVersion;
              if (newRv) rv = newRv;
              if (e.type === "BOOKMARK") return;
              const uid = p.metadata?.uid ?? "";
              if (e.type === "DELETED") pods.delete(uid);
              else pods.set(uid, annotate(p));
              emit();
            },
          );
          if (gone) {
            log.v(2).info("pod watch expired (410 Gone); relisting");
            rv = "";
          }
          failures = 0;
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof ApiError && err.status === 410) rv = "";
          failures++;
          const delay = Math.min(30_000, 500 * 2 ** Math.min(failures - 1, 6));
          if (failures === 1 || failures % 10 === 0) log.error("listing or watching pods failed; retrying", { err: errorMessage(err), retryInMs: delay });
          await opts.clock.sleep(delay, signal).catch(() => undefined);
        }
      }
    },
  };
}
