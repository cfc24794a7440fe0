/**
 * Mirror pods: the API's view of this node's static pods. One per static pod, annotated
 * kubernetes.io/config.mirror with the static pod's hash and owned by the Node; recreated when
 * deleted, replaced when the static pod changes, removed when it goes.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { ApiClient } from "../api/client.js";
import { ApiError } from "../api/client.js";
import { ANN_CONFIG_HASH, ANN_CONFIG_MIRROR } from "../api/labels.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";

export interface MirrorManager {
  /** Reconciles mirror pods with the current static pods and the mirrors the API source sees. */
  sync(staticPods: V1Pod[], mirrors: V1Pod[]): void;
  /** The mirror pod of a static pod, when it exists and matches. */
  mirrorOf(staticPod: V1Pod): V1Pod | undefined;
}

const key = (p: V1Pod): string => `${p.metadata?.namespace ?? ""}/${p.metadata?.name ?? ""}`;

export function buildMirrorPod(pod: V1Pod, node: { name: string; uid: string }): V1Pod {
  const meta = pod.metadata ?? {};
  const { status: _status, ...rest } = pod;
  return {
    ...rest,
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: meta.name ?? "",
      namespace: meta.namespace ?? "default",
      ...(meta.labels ? { labels: meta.labels } : {}),
      annotations: { ...(meta.annotations ?? {}), [ANN_CONFIG_MIRROR]: meta.annotations?.[ANN_CONFIG_HASH] ?? meta.uid ?? "" },
      ownerReferences: [{ apiVersion: "v1", kind: "Node", name: node.name, uid: node.uid, controller: true }],
    },
  };
}

export function createMirrorManager(opts: { api: ApiClient; node: () => { name: string; uid: string } | undefined; logger: Logger; onMirrorChanged?: (staticUid: string) => void }): MirrorManager {
  const log = opts.logger.with({ component: "mirror" });
  const inFlight = new Set<string>();
  let mirrorsByKey = new Map<string, V1Pod>();
  let staticByKey = new Map<string, V1Pod>();

  let resync = (): void => undefined;
  /** Keys whose sync was skipped because an operation was in flight: looked at again when it ends. */
  const skipped = new Set<string>();
  const run = (k: string, what: string, fn: () => Promise<unknown>): void => {
    if (inFlight.has(k)) {
      skipped.add(k);
      return;
    }
    inFlight.add(k);
    const done = (): void => {
      inFlight.delete(k);
      if (skipped.delete(k)) resync();
    };
    fn().then(done, (err: unknown) => {
      if (!(err instanceof ApiError && (err.status === 409 || err.status === 404))) log.warn(`failed to ${what} mirror pod`, { pod: k, err: errorMessage(err) });
      done();
    });
  };

  // Mirror pods run nothing: they go at once (grace 0), guarded by their UID.
  const del = (m: V1Pod): Promise<unknown> =>
    opts.api.request({
      method: "DELETE",
      path: `/api/v1/namespaces/${m.metadata?.namespace ?? ""}/pods/${m.metadata?.name ?? ""}`,
      body: { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0, preconditions: { uid: m.metadata?.uid ?? "" } },
    });

  const manager: MirrorManager = {
    sync(staticPods, mirrors) {
      const oldMirrors = mirrorsByKey;
      staticByKey = new Map(staticPods.map((p) => [key(p), p]));
      mirrorsByKey = new Map(mirrors.map((p) => [key(p), p]));
      const node = opts.node();
      if (!node) return;
      for (const [k, sp] of staticByKey) {
        const m = mirrorsByKey.get(k);
        const hash = sp.metadata?.annotations?.[ANN_CONFIG_HASH] ?? "";
        if (!m) {
          run(k, "create", async () => {
            await opts.api.request({ method: "POST", path: `/api/v1/namespaces/${sp.metadata?.namespace ?? "default"}/pods`, body: buildMirrorPod(sp, node) });
            log.v(2).info("created mirror pod", { pod: k });
          });
        } else if (m.metadata?.deletionTimestamp || m.metadata?.annotations?.[ANN_CONFIG_MIRROR] !== hash) {
          // Deleted by someone (it comes back), or stale after the static pod changed (replaced).
          run(k, "replace", () => del(m));
        } else if (oldMirrors.get(k)?.metadata?.uid !== m.metadata?.uid) {
          opts.onMirrorChanged?.(sp.metadata?.uid ?? "");
        }
      }
      for (const [k, m] of mirrorsByKey) {
        if (!staticByKey.has(k)) run(k, "delete orphaned", () => del(m));
      }
    },
    mirrorOf(sp) {
      const m = mirrorsByKey.get(key(sp));
      if (!m || m.metadata?.deletionTimestamp) return undefined;
      return m.metadata?.annotations?.[ANN_CONFIG_MIRROR] === sp.metadata?.annotations?.[ANN_CONFIG_HASH] ? m : undefined;
    },
  };
  resync = () => manager.sync([...staticByKey.values()], [...mirrorsByKey.values()]);
  return manager;
}
