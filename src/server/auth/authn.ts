/**
 * Authentication on 10250, as upstream's union: an x509 client certificate verified against the
 * client CA, a bearer token through TokenReview (cached), else anonymous when enabled. Presented
 * credentials that fail are a 401 even with anonymous on; only a request with none is anonymous.
 */
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { Clock } from "../../util/clock.js";
import type { Logger } from "../../util/log.js";
import { errorMessage } from "../../util/errors.js";
import { createTtlCache } from "./cache.js";
import type { TokenReviewer, TokenReviewResult, UserInfo } from "./types.js";

export const ANONYMOUS_USER = "system:anonymous";
export const UNAUTHENTICATED_GROUP = "system:unauthenticated";
export const AUTHENTICATED_GROUP = "system:authenticated";
const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const EKU_ANY = "2.5.29.37.0";

/** What the TLS layer learnt about the client's certificate. */
export interface ClientCertificate {
  /** Whether the chain verified against the client CA. */
  verified: boolean;
  /** Why it did not, when it did not. */
  error?: string;
  commonName: string;
  organizations: string[];
  /** Extended key usage OIDs, when the certificate has the extension. */
  extKeyUsage?: string[];
}

export interface AuthnRequest {
  headers: IncomingHttpHeaders;
  clientCert?: ClientCertificate | undefined;
}

export type AuthnResult = { ok: true; user: UserInfo; via: "x509" | "token" | "anonymous" } | { ok: false; reason: string };

export interface Authenticator {
  authenticate(req: AuthnRequest): Promise<AuthnResult>;
}

export interface AuthenticatorOptions {
  /** Client certificates count only when a client CA is configured. */
  x509Enabled: boolean;
  webhook: { enabled: boolean; cacheTTL: number };
  anonymous: { enabled: boolean };
  tokenReviewer?: TokenReviewer | undefined;
  clock: Clock;
  logger: Logger;
}

export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const cache = createTtlCache<TokenReviewResult>(opts.clock);
  const inflight = new Map<string, Promise<TokenReviewResult>>();
  if (opts.webhook.enabled && !opts.tokenReviewer) {
    opts.logger.warn("bearer tokens on the kubelet API will be refused: token authentication (authentication.webhook.enabled) needs an apiserver connection for TokenReview, and there is none");
  }

  const review = async (token: string): Promise<TokenReviewResult> => {
    const reviewer = opts.tokenReviewer;
    if (!reviewer) throw new Error("no TokenReview client (the kubelet has no apiserver connection)");
    const key = createHash("sha256").update(token).digest("hex");
    const cached = cache.get(key);
    if (cached) return cached;
    let p = inflight.get(key);
    if (!p) {
      p = reviewer(token).finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    const result = await p;
    cache.set(key, result, opts.webhook.cacheTTL);
    return result;
  };

  const byToken = async (token: string): Promise<AuthnResult> => {
    let r: TokenReviewResult;
    try {
      r = await review(token);
    } catch (err) {
      opts.logger.warn("token review failed", { err: errorMessage(err) });
      return { ok: false, reason: `token review failed: ${errorMessage(err)}` };
    }
    if (!r.authenticated || !r.user) return { ok: false, reason: "invalid bearer token" };
    const u = r.user;
    return { ok: true, via: "token", user: withAuthenticated({ name: u.username, uid: u.uid ?? "", groups: [...(u.groups ?? [])], extra: { ...(u.extra ?? {}) } }) };
  };

  return {
    async authenticate(req) {
      const failures: string[] = [];
      const cert = opts.x509Enabled ? req.clientCert : undefined;
      if (cert) {
        const r = byCertificate(cert);
        if (r.ok) return r;
        failures.push(r.reason);
      }
      const token = bearerToken(req.headers);
      if (token !== undefined && opts.webhook.enabled) {
        const r = await byToken(token);
        if (r.ok) return r;
        failures.push(r.reason);
      }
      if (failures.length > 0) return { ok: false, reason: failures.join("; ") };
      if (opts.anonymous.enabled) return { ok: true, via: "anonymous", user: { name: ANONYMOUS_USER, uid: "", groups: [UNAUTHENTICATED_GROUP], extra: {} } };
      return { ok: false, reason: "no credentials and anonymous requests are disabled" };
    },
  };
}

function byCertificate(cert: ClientCertificate): AuthnResult {
  if (!cert.verified) return { ok: false, reason: `x509: certificate not verified: ${cert.error ?? "unknown authority"}` };
  if (cert.extKeyUsage && !cert.extKeyUsage.some((u) => u === EKU_CLIENT_AUTH || u === EKU_ANY)) {
    return { ok: false, reason: "x509: certificate specifies an incompatible key usage (no clientAuth)" };
  }
  if (cert.commonName === "") return { ok: false, reason: "x509: certificate has no common name" };
  return { ok: true, via: "x509", user: withAuthenticated({ name: cert.commonName, uid: "", groups: [...cert.organizations], extra: {} }) };
}

function withAuthenticated(u: UserInfo): UserInfo {
  if (!u.groups.includes(AUTHENTICATED_GROUP)) u.groups.push(AUTHENTICATED_GROUP);
  return u;
}

/** The token of an `Authorization: Bearer <token>` header; undefined when absent or not a bearer. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const h = headers.authorization;
  if (h === undefined) return undefined;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}
