/**
 * TokenReview and SubjectAccessReview through the apiserver client: the review functions the
 * kubelet API needs in cluster mode.
 */
import type { ApiRequest } from "../../api/client.js";
import type { AccessReviewer, AccessReviewResult, TokenReviewer, TokenReviewResult } from "./types.js";

export interface ReviewClient {
  request<T>(req: ApiRequest): Promise<T>;
}

interface TokenReviewObject {
  status?: { authenticated?: boolean; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> }; error?: string };
}

interface SubjectAccessReviewObject {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

export function apiReviewers(api: ReviewClient, opts: { timeoutMs?: number } = {}): { tokenReviewer: TokenReviewer; accessReviewer: AccessReviewer } {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return {
    tokenReviewer: async (token) => {
      const r = await api.request<TokenReviewObject>({
        method: "POST",
        path: "/apis/authentication.k8s.io/v1/tokenreviews",
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
        timeoutMs,
      });
      const s = r.status ?? {};
      const out: TokenReviewResult = { authenticated: s.authenticated === true };
      if (s.user?.username !== undefined) {
        out.user = { username: s.user.username, uid: s.user.uid ?? "", groups: s.user.groups ?? [], extra: s.user.extra ?? {} };
      }
      if (s.error) out.error = s.error;
      return out;
    },
    accessReviewer: async (spec) => {
      const r = await api.request<SubjectAccessReviewObject>({
        method: "POST",
        path: "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        body: { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec },
        timeoutMs,
      });
      const s = r.status ?? {};
      const out: AccessReviewResult = { allowed: s.allowed === true };
      if (s.denied !== undefined) out.denied = s.denied;
      if (s.reason) out.reason = s.reason;
      if (s.evaluationError) out.evaluationError = s.evaluationError;
      return out;
    },
  };
}
