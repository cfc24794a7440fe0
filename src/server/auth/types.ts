/**
 * The kubelet API's identity types and the two review functions the apiserver client provides:
 * TokenReview (authentication.k8s.io/v1) and SubjectAccessReview (authorization.k8s.io/v1).
 */

export interface UserInfo {
  name: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
}

/** TokenReview status, as the apiserver answers it. */
export interface TokenReviewResult {
  authenticated: boolean;
  user?: { username: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  error?: string;
}

/** POSTs a TokenReview for `token`; rejects when the apiserver cannot be asked. */
export type TokenReviewer = (token: string) => Promise<TokenReviewResult>;

/** SubjectAccessReview spec.resourceAttributes. */
export interface ResourceAttributes {
  namespace: string;
  verb: string;
  group: string;
  version: string;
  resource: string;
  subresource: string;
  name: string;
}

/** SubjectAccessReview spec. */
export interface SubjectAccessReviewSpec {
  user: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
  resourceAttributes: ResourceAttributes;
}

/** SubjectAccessReview status. */
export interface AccessReviewResult {
  allowed: boolean;
  denied?: boolean;
  reason?: string;
  evaluationError?: string;
}

/** POSTs a SubjectAccessReview; rejects when the apiserver cannot be asked. */
export type AccessReviewer = (spec: SubjectAccessReviewSpec) => Promise<AccessReviewResult>;
