/**
 * ConfigMaps and Secrets as pods need them, read from the apiserver with the kubelet's identity
 * (the Node authorizer lets a node read what its pods refer to). A read younger than two seconds
 * is shared (pods started together all want their namespace's kube-root-ca.crt, say); anything
 * older is read again: a volume is refreshed at most once per period and env is read when a
 * container starts. Failures are not kept.
 */
import type { V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import { ApiError, type ApiClient } from "../api/client.js";
import type { EnvObjectLookup } from "../containers/env.js";
import type { Clock } from "../util/clock.js";

/** Key → bytes: a ConfigMap's data and binaryData, or a Secret's decoded data. */
export type ObjectData = Record<string, Buffer>;

export interface ObjectSource {
  /** undefined when the object does not exist; rejects on any other failure. */
  configMap(namespace: string, name: string): Promise<ObjectData | undefined>;
  secret(namespace: string, name: string): Promise<ObjectData | undefined>;
}

const RETRY_DELAYS_MS = [200, 400, 800, 1600];

/**
 * Runs `fn`, trying again a few times within ~3 s while `transient` says so: right after a pod is
 * created the apiserver may not yet know it (the Node authorizer's graph, the bound pod of a
 * TokenRequest), and waiting for the next pod sync would delay the start by seconds.
 */
export async function retryTransient<T>(clock: Clock, fn: () => Promise<T>, transient: (err: unknown) => boolean): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const delay = RETRY_DELAYS_MS[i];
      if (delay === undefined || !transient(err)) throw err;
      await clock.sleep(delay);
    }
  }
}

const forbidden = (err: unknown): boolean => err instanceof ApiError && err.status === 403;

async function readOrUndefined<T>(api: ApiClient, clock: Clock, path: string): Promise<T | undefined> {
  try {
    return await retryTransient(clock, () => api.request<T>({ method: "GET", path }), forbidden);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** How long a read (or a read in flight) is shared with later readers of the same object. */
export const SHARED_READ_MS = 2_000;
const ENTRIES_KEPT = 256;

/** Reads shared by path, per apiserver client: every source of one kubelet uses the same. */
const sharedReads = new WeakMap<ApiClient, Map<string, { startedAt: number; result: Promise<unknown> }>>();

function getOrUndefined<T>(api: ApiClient, clock: Clock, path: string): Promise<T | undefined> {
  let reads = sharedReads.get(api);
  if (!reads) sharedReads.set(api, (reads = new Map<string, { startedAt: number; result: Promise<unknown> }>()));
  const now = clock.now();
  const known = reads.get(path);
  if (known && now - known.startedAt < SHARED_READ_MS) return known.result as Promise<T | undefined>;
  if (reads.size >= ENTRIES_KEPT) for (const [k, v] of reads) if (now - v.startedAt >= SHARED_READ_MS) reads.delete(k);
  const result = readOrUndefined<T>(api, clock, path);
  const entry = { startedAt: now, result };
  reads.set(path, entry);
  result.catch(() => {
    if (reads?.get(path) === entry) reads.delete(path);
  });
  return result;
}

const seg = encodeURIComponent;

export function createApiObjectSource(api: ApiClient, clock: Clock): ObjectSource {
  return {
    async configMap(ns, name) {
      const cm = await getOrUndefined<V1ConfigMap>(api, clock, `/api/v1/namespaces/${seg(ns)}/configmaps/${seg(name)}`);
      if (!cm) return undefined;
      const out: ObjectData = {};
      for (const [k, v] of Object.entries(cm.data ?? {})) out[k] = Buffer.from(v, "utf8");
      for (const [k, v] of Object.entries(cm.binaryData ?? {})) out[k] = Buffer.from(v, "base64");
      return out;
    },
    async secret(ns, name) {
      const s = await getOrUndefined<V1Secret>(api, clock, `/api/v1/namespaces/${seg(ns)}/secrets/${seg(name)}`);
      if (!s) return undefined;
      const out: ObjectData = {};
      for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, "base64");
      return out;
    },
  };
}

/**
 * The lookup container env uses: a ConfigMap's `data` (not binaryData, as upstream) or a Secret's
 * decoded `data`, as strings.
 */
export function envLookupFrom(api: ApiClient, clock: Clock): EnvObjectLookup {
  return async (kind, ns, name) => {
    if (kind === "ConfigMap") {
      const cm = await getOrUndefined<V1ConfigMap>(api, clock, `/api/v1/namespaces/${seg(ns)}/configmaps/${seg(name)}`);
      return cm ? { ...(cm.data ?? {}) } : undefined;
    }
    const s = await getOrUndefined<V1Secret>(api, clock, `/api/v1/namespaces/${seg(ns)}/secrets/${seg(name)}`);
    if (!s) return undefined;
    return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
  };
}
