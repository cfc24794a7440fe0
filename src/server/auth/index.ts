/**
 * Authentication and authorization of the kubelet API (10250). Public surface: the review function
 * types the apiserver client implements, and the authenticator and authorizer factories.
 */
export type { AccessReviewer, AccessReviewResult, ResourceAttributes, SubjectAccessReviewSpec, TokenReviewer, TokenReviewResult, UserInfo } from "./types.js";
export { createAuthenticator, bearerToken, ANONYMOUS_USER, AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP } from "./authn.js";
export type { Authenticator, AuthenticatorOptions, AuthnRequest, AuthnResult, ClientCertificate } from "./authn.js";
export { createAuthorizer, requestAttributes, subresourcesOf, verbOf } from "./authz.js";
export type { Authorizer, AuthorizerOptions, AuthzDecision } from "./authz.js";
export { createTtlCache } from "./cache.js";
export type { TtlCache } from "./cache.js";
export { apiReviewers } from "./reviewers.js";
export type { ReviewClient } from "./reviewers.js";
