import assert from "node:assert/strict";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { healthzHandler, singleCheckHandler, type HealthCheck } from "../../src/server/healthz.js";
import { HttpError, closeServer, createRouter, listen, metricsPath, sendJSON, sendText, type Route, type Router } from "../../src/server/http.js";
import { createKubeletMetrics, type KubeletMetrics } from "../../src/metrics/index.js";
import { memoryLogger } from "../../src/util/log.js";

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

let syncLoopError: string | undefined;
const checks: HealthCheck[] = [
  { name: "ping", check: () => undefined },
  { name: "syncloop", check: () => syncLoopError },
];

const routes: Route[] = [
  { pattern: "/healthz", methods: ["GET"], handler: healthzHandler(checks) },
  { pattern: "/healthz/:name", methods: ["GET"], handler: singleCheckHandler(checks) },
  { pattern: "/pods/:namespace/:name", methods: ["GET", "POST"], handler: (_req, res, ctx) => sendJSON(res, JSON.stringify(ctx.params)) },
  { pattern: "/containerLogs/:namespace/:pod/:container", methods: ["GET"], handler: (_req, res, ctx) => sendJSON(res, JSON.stringify(ctx.params)) },
  { pattern: "/logs/*", methods: ["GET"], handler: (_req, res, ctx) => sendText(res, ctx.params["*"] ?? "") },
  {
    pattern: "/boom",
    methods: ["GET"],
    handler: () => {
      throw new Error("kaboom");
    },
  },
  { pattern: "/async-boom", methods: ["GET"], handler: () => Promise.reject(new Error("async kaboom")) },
  {
    pattern: "/teapot",
    methods: ["GET"],
    handler: () => {
      throw new HttpError(418, "I'm a teapot", { "X-Why": "tea" });
    },
  },
  { pattern: "/metrics", methods: ["GET"], handler: (_req, res) => sendText(res, "m") },
];

const { logger, lines } = memoryLogger();
let metrics: KubeletMetrics;
let router: Router;
let server: Server;
let port = 0;
/** Rejections of dispatch: each one would be an unhandled rejection (a process crash) under createHttpServer. */
const dispatchRejections: unknown[] = [];

before(async () => {
  metrics = createKubeletMetrics({ nodeName: "node1", processMetrics: false });
  router = createRouter(routes, { serverType: "readonly", metrics, logger });
  // Same wiring as createHttpServer, but a rejected dispatch is recorded instead of crashing the test runner.
  server = createServer((req, res) => {
    router.dispatch(req, res).catch((err: unknown) => {
      dispatchRejections.push(err);
      res.destroy();
    });
  });
  await listen(server, 0, "127.0.0.1");
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  await closeServer(server);
});

function send(path: string, method = "GET"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Sends and turns a dropped connection into a readable failure naming the dispatch rejection. */
async function sendOk(path: string, method = "GET"): Promise<Reply> {
  const before = dispatchRejections.length;
  try {
    const r = await send(path, method);
    assert.equal(dispatchRejections.length, before, `dispatch rejected for ${path}: ${String(dispatchRejections[before])}`);
    return r;
  } catch (err) {
    assert.fail(`request ${method} ${path} failed (${String(err)}); dispatch rejected with: ${String(dispatchRejections[before])} — under createHttpServer this is an unhandled rejection that kills the process`);
  }
}

describe("createRouter over a real HTTP server", () => {
  it("404 for an unknown path", async () => {
    const r = await sendOk("/nope");
    assert.equal(r.status, 404);
    assert.equal(r.body, "404 page not found\n");
    assert.equal(r.headers["x-content-type-options"], "nosniff");
  });

  it("404 when the path is longer or shorter than the pattern", async () => {
    assert.equal((await sendOk("/pods/ns")).status, 404);
    assert.equal((await sendOk("/pods/ns/name/extra")).status, 404);
  });

  it("405 with an Allow header naming the allowed methods", async () => {
    const r = await sendOk("/pods/ns/name", "DELETE");
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, "GET, POST");
    assert.match(r.body, /DELETE/);
  });

  it("path parameters are percent-decoded; the query string is not part of the path", async () => {
    const r = await sendOk("/pods/my%20ns/na%2Fme?follow=true");
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { namespace: "my ns", name: "na/me" });
    const logs = await sendOk("/logs/var/log/sys%20log.txt");
    assert.equal(logs.body, "var/log/sys log.txt");
  });

  it("bad percent-encoding in a path parameter is a 400, not a crash", async () => {
    const r = await sendOk("/pods/%E0%A4%A/x");
    assert.equal(r.status, 400);
    assert.match(r.body, /malformed/);
    assert.equal((await sendOk("/pods/a/b")).status, 200, "still serving");
  });

  it("bad percent-encoding in a '*' parameter is a 400, not a crash", async () => {
    const r = await sendOk("/logs/%ZZ");
    assert.equal(r.status, 400);
  });

  it("a request-target that is not a valid URL path (//[) is a 400, not a crash", async () => {
    const r = await sendOk("//[");
    assert.ok(r.status === 400 || r.status === 404, `status ${r.status}`);
    assert.equal((await sendOk("/pods/a/b")).status, 200, "still serving");
  });

  it("a throwing handler is a 500 and the server keeps serving", async () => {
    const r = await sendOk("/boom");
    assert.equal(r.status, 500);
    assert.match(r.body, /kaboom/);
    const a = await sendOk("/async-boom");
    assert.equal(a.status, 500);
    assert.match(a.body, /async kaboom/);
    assert.ok(lines.some((l) => l.startsWith("E") && l.includes("kaboom")), "500s are logged");
    assert.equal((await sendOk("/pods/a/b")).status, 200);
  });

  it("an HttpError keeps its status, message and headers", async () => {
    const r = await sendOk("/teapot");
    assert.equal(r.status, 418);
    assert.equal(r.body, "I'm a teapot\n");
    assert.equal(r.headers["x-why"], "tea");
  });

  it("request metrics use the bucketed path and bounded labels (unknown paths are 'other')", async () => {
    for (let i = 0; i < 5; i++) await sendOk(`/random-${i}/x`);
    await sendOk("/containerLogs/ns/pod/c");
    const values = (await metrics.httpRequests.get()).values;
    const paths = new Set(values.map((v) => String(v.labels.path)));
    assert.ok(paths.has("containerLogs"), [...paths].join(","));
    assert.ok(values.every((v) => v.labels.server_type === "readonly"));
    // upstream getMetricBucket: a root path segment that is not a registered handler counts as "other",
    // so unauthenticated scans cannot grow the metric's cardinality without bound
    const randoms = [...paths].filter((p) => p.startsWith("random-"));
    assert.deepEqual(randoms, [], `unknown paths became label values: ${randoms.join(", ")}`);
  });
});

describe("metricsPath", () => {
  it("buckets by the first segment, metrics/<x> for metrics paths", () => {
    const cases: [string, string][] = [
      ["/", "other"],
      ["", "other"],
      ["/metrics", "metrics"],
      ["/metrics/", "metrics"],
      ["/metrics/cadvisor", "metrics/cadvisor"],
      ["/metrics/resource", "metrics/resource"],
      ["/metrics/probes/extra", "metrics/probes"],
      ["/pods", "pods"],
      ["/pods/", "pods"],
      ["/stats/summary", "stats"],
      ["/containerLogs/ns/pod/c", "containerLogs"],
      ["/exec/ns/pod/c", "exec"],
      ["/healthz", "healthz"],
      ["/configz", "configz"],
    ];
    for (const [path, bucket] of cases) assert.equal(metricsPath(path), bucket, path);
  });
});

describe("healthz", () => {
  it("ok when every check passes", async () => {
    syncLoopError = undefined;
    const r = await sendOk("/healthz");
    assert.equal(r.status, 200);
    assert.equal(r.body, "ok");
    assert.match(String(r.headers["content-type"]), /^text\/plain/);
  });

  it("verbose lists every check", async () => {
    syncLoopError = undefined;
    const r = await sendOk("/healthz?verbose");
    assert.equal(r.status, 200);
    assert.equal(r.body, "[+]ping ok\n[+]syncloop ok\nhealthz check passed\n");
  });

  it("500 naming the failing check", async () => {
    syncLoopError = "sync loop has not run for 3m0s";
    const r = await sendOk("/healthz");
    assert.equal(r.status, 500);
    assert.match(r.body, /\[\+\]ping ok/);
    assert.match(r.body, /\[-\]syncloop failed/);
    assert.match(r.body, /healthz check failed\n$/);
    syncLoopError = undefined;
    assert.equal((await sendOk("/healthz")).status, 200, "recovers");
  });

  it("the failing reason is withheld from the unauthenticated response (upstream: 'reason withheld', logged instead)", async () => {
    // k8s.io/apiserver/pkg/server/healthz: "[-]%s failed: reason withheld" in the body; details only in the log.
    syncLoopError = "secret internal detail";
    const r = await sendOk("/healthz");
    syncLoopError = undefined;
    assert.equal(r.status, 500);
    assert.ok(!r.body.includes("secret internal detail"), r.body);
    assert.match(r.body, /\[-\]syncloop failed: reason withheld/);
  });

  it("/healthz/<name> runs one check; an unknown name is 404", async () => {
    syncLoopError = undefined;
    assert.equal((await sendOk("/healthz/ping")).body, "ok");
    syncLoopError = "stalled";
    const bad = await sendOk("/healthz/syncloop");
    syncLoopError = undefined;
    assert.equal(bad.status, 500);
    assert.match(bad.body, /syncloop failed/);
    assert.equal((await sendOk("/healthz/nope")).status, 404);
  });
});
