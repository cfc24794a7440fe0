import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  apiReviewers,
  createAuthenticator,
  createAuthorizer,
  createTtlCache,
  requestAttributes,
  subresourcesOf,
  verbOf,
  type AccessReviewer,
  type ClientCertificate,
  type SubjectAccessReviewSpec,
  type TokenReviewer,
  type UserInfo,
} from "../../src/server/auth/index.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

const { logger, lines } = memoryLogger();

describe("path and method mapping (upstream's nodes/<subresource> attributes)", () => {
  const cases: [string, string[]][] = [
    ["/stats/summary", ["stats"]],
    ["/stats", ["stats"]],
    ["/statsfoo", ["proxy"]],
    ["/metrics", ["metrics"]],
    ["/metrics/cadvisor", ["metrics"]],
    ["/metrics/probes", ["metrics"]],
    ["/logs/", ["log"]],
    ["/logs/syslog", ["log"]],
    ["/checkpoint/ns/p/c", ["checkpoint"]],
    ["/pods", ["pods", "proxy"]],
    ["/pods/", ["pods", "proxy"]],
    ["/runningpods/", ["pods", "proxy"]],
    ["/healthz", ["healthz", "proxy"]],
    ["/healthz/syncloop", ["healthz", "proxy"]],
    ["/configz", ["configz", "proxy"]],
    ["/exec/ns/p/c", ["proxy"]],
    ["/containerLogs/ns/p/c", ["proxy"]],
    ["/spec/", ["proxy"]],
    ["/", ["proxy"]],
  ];
  for (const [path, want] of cases) {
    it(`${path} → ${want.join(", ")}`, () => assert.deepEqual(subresourcesOf(path), want));
  }
  it("maps methods to verbs", () => {
    assert.deepEqual(["POST", "GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].map(verbOf), ["create", "get", "update", "patch", "delete", "", ""]);
  });
  it("builds resource attributes on the node", () => {
    assert.deepEqual(requestAttributes("node-a", "GET", "/pods"), [
      { namespace: "", verb: "get", group: "", version: "v1", resource: "nodes", subresource: "pods", name: "node-a" },
      { namespace: "", verb: "get", group: "", version: "v1", resource: "nodes", subresource: "proxy", name: "node-a" },
    ]);
  });
});

describe("TTL cache", () => {
  it("expires entries on the clock and bounds its size", async () => {
    const clock = new FakeClock();
    const c = createTtlCache<number>(clock, 3);
    c.set("a", 1, 1000);
    await clock.advance(999);
    assert.equal(c.get("a"), 1);
    await clock.advance(1);
    assert.equal(c.get("a"), undefined);
    for (const k of ["w", "x", "y", "z"]) c.set(k, 1, 10_000);
    assert.equal(c.size(), 3);
    assert.equal(c.get("w"), undefined, "the oldest entry made room");
    c.set("zero", 1, 0);
    assert.equal(c.get("zero"), undefined, "a zero TTL caches nothing");
  });
});

const goodCert: ClientCertificate = { verified: true, commonName: "system:node:x", organizations: ["system:nodes", "ops"], extKeyUsage: ["1.3.6.1.5.5.7.3.2"] };

describe("authentication", () => {
  const reviewerCalls: string[] = [];
  const reviewer: TokenReviewer = (token) => {
    reviewerCalls.push(token);
    if (token === "boom") return Promise.reject(new Error("apiserver unreachable"));
    if (token === "good") return Promise.resolve({ authenticated: true, user: { username: "alice", uid: "u1", groups: ["devs"], extra: { scopes: ["a"] } } });
    return Promise.resolve({ authenticated: false });
  };
  const make = (o: { anonymous?: boolean; webhook?: boolean; x509?: boolean; reviewer?: TokenReviewer | undefined; clock?: FakeClock }) =>
    createAuthenticator({
      x509Enabled: o.x509 ?? true,
      webhook: { enabled: o.webhook ?? true, cacheTTL: 120_000 },
      anonymous: { enabled: o.anonymous ?? false },
      tokenReviewer: "reviewer" in o ? o.reviewer : reviewer,
      clock: o.clock ?? new FakeClock(),
      logger,
    });

  it("x509: CN is the user, O the groups, plus system:authenticated", async () => {
    const r = await make({}).authenticate({ headers: {}, clientCert: goodCert });
    assert.ok(r.ok);
    assert.equal(r.user.name, "system:node:x");
    assert.deepEqual(r.user.groups, ["system:nodes", "ops", "system:authenticated"]);
  });
  it("x509: an unverified certificate or one without clientAuth is a failure, even with anonymous on", async () => {
    const a = make({ anonymous: true });
    const bad = await a.authenticate({ headers: {}, clientCert: { ...goodCert, verified: false, error: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" } });
    assert.equal(bad.ok, false);
    assert.match(bad.ok ? "" : bad.reason, /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    const eku = await a.authenticate({ headers: {}, clientCert: { ...goodCert, extKeyUsage: ["1.3.6.1.5.5.7.3.1"] } });
    assert.equal(eku.ok, false);
  });
  it("x509: certificates are ignored without a client CA", async () => {
    const r = await make({ x509: false, anonymous: true }).authenticate({ headers: {}, clientCert: goodCert });
    assert.ok(r.ok);
    assert.equal(r.user.name, "system:anonymous");
  });
  it("bearer tokens go through TokenReview, answers are cached for cacheTTL, errors are not", async () => {
    const clock = new FakeClock();
    const a = make({ clock });
    reviewerCalls.length = 0;
    const r1 = await a.authenticate({ headers: { authorization: "Bearer good" } });
    assert.ok(r1.ok);
    assert.deepEqual(r1.user, { name: "alice", uid: "u1", groups: ["devs", "system:authenticated"], extra: { scopes: ["a"] } });
    await a.authenticate({ headers: { authorization: "bearer good" } });
    assert.equal((await a.authenticate({ headers: { authorization: "Bearer bad" } })).ok, false);
    assert.equal((await a.authenticate({ headers: { authorization: "Bearer bad" } })).ok, false);
    assert.deepEqual(reviewerCalls, ["good", "bad"], "both answers cached");
    await clock.advance(120_000);
    await a.authenticate({ headers: { authorization: "Bearer good" } });
    assert.deepEqual(reviewerCalls, ["good", "bad", "good"], "asked again after the TTL");
    assert.equal((await a.authenticate({ headers: { authorization: "Bearer boom" } })).ok, false);
    assert.equal((await a.authenticate({ headers: { authorization: "Bearer boom" } })).ok, false);
    assert.equal(reviewerCalls.filter((t) => t === "boom").length, 2, "errors are not cached");
  });
  it("an invalid token is a 401 even with anonymous on; no credentials is anonymous", async () => {
    const a = make({ anonymous: true });
    assert.equal((await a.authenticate({ headers: { authorization: "Bearer bad" } })).ok, false);
    const anon = await a.authenticate({ headers: {} });
    assert.ok(anon.ok);
    assert.deepEqual(anon.user, { name: "system:anonymous", uid: "", groups: ["system:unauthenticated"], extra: {} });
    const basic = await a.authenticate({ headers: { authorization: "Basic Zm9vOmJhcg==" } });
    assert.ok(basic.ok && basic.user.name === "system:anonymous", "a non-bearer Authorization header is not a token");
  });
  it("without anonymous, no credentials is a failure", async () => {
    assert.equal((await make({}).authenticate({ headers: {} })).ok, false);
  });
  it("tokens are ignored when the webhook is off, refused when it is on without a reviewer", async () => {
    const off = await make({ webhook: false, anonymous: true }).authenticate({ headers: { authorization: "Bearer good" } });
    assert.ok(off.ok && off.user.name === "system:anonymous");
    lines.length = 0;
    const none = make({ reviewer: undefined, anonymous: true });
    assert.ok(lines.some((l) => l.includes("bearer tokens on the kubelet API will be refused")));
    assert.equal((await none.authenticate({ headers: { authorization: "Bearer good" } })).ok, false);
  });
  it("a bad certificate does not stop a good token (union)", async () => {
    const r = await make({}).authenticate({ headers: { authorization: "Bearer good" }, clientCert: { ...goodCert, verified: false } });
    assert.ok(r.ok && r.user.name === "alice");
  });
});

describe("authorization", () => {
  const alice: UserInfo = { name: "alice", uid: "u1", groups: ["devs", "system:authenticated"], extra: {} };
  const seen: SubjectAccessReviewSpec[] = [];
  let allow = (s: SubjectAccessReviewSpec): boolean => s.resourceAttributes.subresource === "stats";
  const reviewer: AccessReviewer = (spec) => {
    seen.push(spec);
    if (spec.user === "error") return Promise.reject(new Error("apiserver down"));
    return Promise.resolve({ allowed: allow(spec) });
  };
  const clock = new FakeClock();
  const authz = createAuthorizer({ mode: "Webhook", webhook: { cacheAuthorizedTTL: 300_000, cacheUnauthorizedTTL: 30_000 }, nodeName: "n1", accessReviewer: reviewer, clock, logger });

  it("AlwaysAllow allows without asking", async () => {
    const a = createAuthorizer({ mode: "AlwaysAllow", webhook: { cacheAuthorizedTTL: 1, cacheUnauthorizedTTL: 1 }, nodeName: "n1", clock, logger });
    assert.deepEqual(await a.authorize(alice, "POST", "/exec/a/b/c"), { allowed: true });
  });
  it("sends a SubjectAccessReview on nodes/<subresource> and caches the allowed answer for cacheAuthorizedTTL", async () => {
    seen.length = 0;
    assert.deepEqual(await authz.authorize(alice, "GET", "/stats/summary"), { allowed: true });
    assert.deepEqual(seen[0], { user: "alice", uid: "u1", groups: ["devs", "system:authenticated"], extra: {}, resourceAttributes: { namespace: "", verb: "get", group: "", version: "v1", resource: "nodes", subresource: "stats", name: "n1" } });
    await authz.authorize(alice, "GET", "/stats/summary");
    assert.equal(seen.length, 1);
    await clock.advance(300_000);
    await authz.authorize(alice, "GET", "/stats/summary");
    assert.equal(seen.length, 2);
  });
  it("403 names the user, verb and every subresource tried; denials are cached for cacheUnauthorizedTTL", async () => {
    seen.length = 0;
    const d = await authz.authorize(alice, "GET", "/pods");
    assert.deepEqual(d, { allowed: false, status: 403, message: "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[pods proxy])" });
    assert.deepEqual(seen.map((s) => s.resourceAttributes.subresource), ["pods", "proxy"]);
    allow = () => true;
    await authz.authorize(alice, "GET", "/pods");
    assert.equal(seen.length, 2, "the denial is still cached");
    await clock.advance(30_000);
    assert.deepEqual(await authz.authorize(alice, "GET", "/pods"), { allowed: true });
    const exec = await createAuthorizer({ mode: "Webhook", webhook: { cacheAuthorizedTTL: 1, cacheUnauthorizedTTL: 1 }, nodeName: "n1", accessReviewer: () => Promise.resolve({ allowed: false }), clock, logger }).authorize(alice, "POST", "/exec/ns/p/c");
    assert.deepEqual(exec, { allowed: false, status: 403, message: "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[proxy])" });
  });
  it("the fine-grained subresource wins when allowed, without asking for proxy", async () => {
    seen.length = 0;
    allow = (s) => s.resourceAttributes.subresource === "healthz";
    assert.deepEqual(await authz.authorize({ ...alice, name: "bob" }, "GET", "/healthz"), { allowed: true });
    assert.deepEqual(seen.map((s) => s.resourceAttributes.subresource), ["healthz"]);
  });
  it("a reviewer error is a 500 naming the attributes", async () => {
    const d = await authz.authorize({ ...alice, name: "error" }, "GET", "/metrics");
    assert.deepEqual(d, { allowed: false, status: 500, message: "Authorization error (user=error, verb=get, resource=nodes, subresource=metrics)" });
  });
  it("Webhook mode without a reviewer fails closed and says why once", async () => {
    lines.length = 0;
    const a = createAuthorizer({ mode: "Webhook", webhook: { cacheAuthorizedTTL: 1, cacheUnauthorizedTTL: 1 }, nodeName: "n1", clock, logger });
    assert.equal(lines.filter((l) => l.includes("every request on the kubelet API will be forbidden")).length, 1);
    const d = await a.authorize(alice, "GET", "/healthz");
    assert.equal(d.allowed, false);
    assert.equal(d.allowed ? 0 : d.status, 403);
  });
});

describe("reviews through the apiserver client", () => {
  it("POSTs TokenReview and SubjectAccessReview objects and reads their status", async () => {
    const sent: { path: string; body: unknown }[] = [];
    const api = {
      request<T>(req: { path: string; body?: unknown }): Promise<T> {
        sent.push({ path: req.path, body: req.body });
        const status = req.path.includes("tokenreviews")
          ? { authenticated: true, user: { username: "system:serviceaccount:kube-system:metrics-server", uid: "9", groups: ["system:serviceaccounts"] } }
          : { allowed: false, reason: "no RBAC policy matched" };
        return Promise.resolve({ status } as T);
      },
    };
    const { tokenReviewer, accessReviewer } = apiReviewers(api);
    assert.deepEqual(await tokenReviewer("t0ken"), { authenticated: true, user: { username: "system:serviceaccount:kube-system:metrics-server", uid: "9", groups: ["system:serviceaccounts"], extra: {} } });
    const attrs = requestAttributes("n1", "GET", "/stats/summary")[0];
    assert.ok(attrs);
    const spec = { user: "u", uid: "", groups: ["g"], extra: {}, resourceAttributes: attrs };
    assert.deepEqual(await accessReviewer(spec), { allowed: false, reason: "no RBAC policy matched" });
    assert.deepEqual(sent, [
      { path: "/apis/authentication.k8s.io/v1/tokenreviews", body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: "t0ken" } } },
      { path: "/apis/authorization.k8s.io/v1/subjectaccessreviews", body: { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec } },
    ]);
  });
});
