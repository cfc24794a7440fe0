/**
 * Authorization on 10250: AlwaysAllow, or Webhook (SubjectAccessReview on nodes/<subresource>)
 * with upstream's path and method mapping and caches for allowed and denied answers.
 */
import type { Clock } from "../../util/clock.js";
import type { Logger } from "../../util/log.js";
import { errorMessage } from "../../util/errors.js";
import { createTtlCache } from "./cache.js";
import type { AccessReviewer, ResourceAttributes, SubjectAccessReviewSpec, UserInfo } from "./types.js";

export type AuthzDecision = { allowed: true } | { allowed: false; status: 403 | 500; message: string };

export interface Authorizer {
  authorize(user: UserInfo, method: string, path: string): Promise<AuthzDecision>;
}

export interface AuthorizerOptions {
  mode: "AlwaysAllow" | "Webhook";
  webhook: { cacheAuthorizedTTL: number; cacheUnauthorizedTTL: number };
  nodeName: string;
  accessReviewer?: AccessReviewer | undefined;
  clock: Clock;
  logger: Logger;
}

/** The verb of an HTTP method, as upstream maps it; other methods get "". */
export function verbOf(method: string): string {
  switch (method.toUpperCase()) {
    case "POST":
      return "create";
    case "GET":
      return "get";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
    default:
      return "";
  }
}

function isSubpath(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(prefix + "/");
}

/**
 * The subresources to try for a path, in order: the fine-grained one first (KubeletFineGrainedAuthz,
 * on by default since 1.33) for /pods, /runningpods, /healthz and /configz, then the coarse one.
 */
export function subresourcesOf(path: string): string[] {
  const out: string[] = [];
  if (isSubpath(path, "/pods") || isSubpath(path, "/runningpods")) out.push("pods");
  else if (isSubpath(path, "/healthz")) out.push("healthz");
  else if (isSubpath(path, "/configz")) out.push("configz");
  if (isSubpath(path, "/stats")) out.push("stats");
  else if (isSubpath(path, "/metrics")) out.push("metrics");
  else if (isSubpath(path, "/logs")) out.push("log");
  else if (isSubpath(path, "/checkpoint")) out.push("checkpoint");
  else out.push("proxy");
  return out;
}

/** The resource attributes a request is checked against, one per subresource to try. */
export function requestAttributes(nodeName: string, method: string, path: string): ResourceAttributes[] {
  const verb = verbOf(method);
  return subresourcesOf(path).map((subresource) => ({ namespace: "", verb, group: "", version: "v1", resource: "nodes", subresource, name: nodeName }));
}

/** Go's %v of a []string: `[a b]`. */
function goList(items: string[]): string {
  return `[${items.join(" ")}]`;
}

export function createAuthorizer(opts: AuthorizerOptions): Authorizer {
  const cache = createTtlCache<boolean>(opts.clock);
  if (opts.mode === "Webhook" && !opts.accessReviewer) {
    opts.logger.warn(
      "authorization mode is Webhook but the kubelet has no apiserver connection for SubjectAccessReview: every request on the kubelet API will be forbidden (use --authorization-mode=AlwaysAllow or authorization.mode: AlwaysAllow to serve without an apiserver)",
    );
  }

  const review = async (spec: SubjectAccessReviewSpec): Promise<boolean> => {
    const key = JSON.stringify(spec);
    const cached = cache.get(key);
    if (cached !== undefined) return cached;
    const reviewer = opts.accessReviewer;
    if (!reviewer) return false;
    const r = await reviewer(spec);
    cache.set(key, r.allowed, r.allowed ? opts.webhook.cacheAuthorizedTTL : opts.webhook.cacheUnauthorizedTTL);
    return r.allowed;
  };

  return {
    async authorize(user, method, path) {
      if (opts.mode === "AlwaysAllow") return { allowed: true };
      const attrs = requestAttributes(opts.nodeName, method, path);
      for (const a of attrs) {
        const spec: SubjectAccessReviewSpec = { user: user.name, uid: user.uid, groups: [...user.groups], extra: user.extra, resourceAttributes: a };
        let allowed: boolean;
        try {
          allowed = await review(spec);
        } catch (err) {
          opts.logger.error("Authorization error", { user: user.name, verb: a.verb, resource: a.resource, subresource: a.subresource, err: errorMessage(err) });
          return { allowed: false, status: 500, message: `Authorization error (user=${user.name}, verb=${a.verb}, resource=${a.resource}, subresource=${a.subresource})` };
        }
        if (allowed) return { allowed: true };
      }
      const first = attrs[0];
      const message = `Forbidden (user=${user.name}, verb=${first?.verb ?? ""}, resource=nodes, subresource(s)=${goList(attrs.map((a) => a.subresource))})`;
      opts.logger.v(2).info(message);
      return { allowed: false, status: 403, message };
    },
  };
}
