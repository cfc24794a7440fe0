/**
 * Service account tokens for projected volumes: a TokenRequest bound to the pod, kept per pod and
 * request, and fetched again once 80% of its life has passed (or after 24 hours), as upstream's
 * token manager does. A refresh that fails keeps the old token while it is still valid.
 */
import type { V1Pod, V1ServiceAccountTokenProjection } from "@kubernetes/client-node";
import { ApiError, type ApiClient } from "../api/client.js";
import { retryTransient } from "./objects.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage, KubeletError } from "../util/errors.js";

export interface TokenRequestSpec {
  audiences: string[];
  expirationSeconds: number;
  boundObjectRef: { apiVersion: "v1"; kind: "Pod"; name: string; uid: string };
}

/** Issues one token; resolves to it and the lifetime the apiserver granted (seconds). */
export type TokenRequester = (namespace: string, serviceAccount: string, spec: TokenRequestSpec) => Promise<{ token: string; expirationSeconds: number }>;

export interface TokenSource {
  /** The token for one serviceAccountToken projection of a pod, fetched or refreshed as needed. */
  token(pod: V1Pod, source: V1ServiceAccountTokenProjection): Promise<string>;
  /** When the earliest cached token is due for a refresh (ms since the epoch). */
  nextRefreshAt(): number | undefined;
  /** Drops a pod's tokens. */
  forget(uid: string): void;
}

interface Cached {
  uid: string;
  token: string;
  expiresAt: number;
  refreshAt: number;
}

const DEFAULT_EXPIRATION_SECONDS = 3600;
const MAX_TTL_MS = 24 * 3600_000;
const REFRESH_FRACTION = 0.8;
/** After a failed refresh, the next try. */
const RETRY_MS = 10_000;

/** A just-created pod may not be visible yet to the TokenRequest (404 for the bound pod) or to the Node authorizer (403). */
const notYetVisible = (err: unknown): boolean => err instanceof ApiError && (err.status === 404 || err.status === 403);

export function createApiTokenRequester(api: ApiClient, clock: Clock): TokenRequester {
  return async (ns, sa, spec) => {
    const send = (): Promise<{ spec?: { expirationSeconds?: number }; status?: { token?: string } }> =>
      api.request({
        method: "POST",
        path: `/api/v1/namespaces/${encodeURIComponent(ns)}/serviceaccounts/${encodeURIComponent(sa)}/token`,
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec },
      });
    const res = await retryTransient(clock, send, notYetVisible);
    const token = res.status?.token;
    if (!token) throw new KubeletError("TokenRequestEmpty", `the TokenRequest for ${ns}/${sa} returned no token`);
    return { token, expirationSeconds: res.spec?.expirationSeconds ?? spec.expirationSeconds };
  };
}

export function createTokenManager(deps: { request: TokenRequester; clock: Clock; logger: Logger }): TokenSource {
  const cache = new Map<string, Cached>();
  return {
    async token(pod, source) {
      const m = pod.metadata ?? {};
      const ns = m.namespace ?? "default";
      const sa = pod.spec?.serviceAccountName || "default";
      const seconds = source.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS;
      const audience = source.audience ?? "";
      const key = JSON.stringify([m.uid ?? "", ns, sa, audience, seconds]);
      const now = deps.clock.now();
      const cached = cache.get(key);
      if (cached && now < cached.refreshAt) return cached.token;
      try {
        const spec: TokenRequestSpec = {
          audiences: audience ? [audience] : [],
          expirationSeconds: seconds,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: m.name ?? "", uid: m.uid ?? "" },
        };
        const res = await deps.request(ns, sa, spec);
        const ttl = Math.max(1, res.expirationSeconds) * 1000;
        cache.set(key, { uid: m.uid ?? "", token: res.token, expiresAt: now + ttl, refreshAt: now + Math.min(MAX_TTL_MS, REFRESH_FRACTION * ttl) });
        deps.logger.v(3).info("service account token issued", { pod: `${ns}/${m.name ?? ""}`, serviceAccount: sa, audience, expirationSeconds: res.expirationSeconds });
        return res.token;
      } catch (err) {
        if (cached && now < cached.expiresAt) {
          cached.refreshAt = Math.min(cached.expiresAt, now + RETRY_MS);
          deps.logger.warn("refreshing a service account token failed; the current one is still valid", { pod: `${ns}/${m.name ?? ""}`, err: errorMessage(err) });
          return cached.token;
        }
        throw new KubeletError("TokenRequestFailed", `failed to fetch token: ${errorMessage(err)}`, { cause: err });
      }
    },
    nextRefreshAt() {
      let next: number | undefined;
      for (const c of cache.values()) next = next === undefined ? c.refreshAt : Math.min(next, c.refreshAt);
      return next;
    },
    forget(uid) {
      for (const [k, c] of cache) if (c.uid === uid) cache.delete(k);
    },
  };
}
