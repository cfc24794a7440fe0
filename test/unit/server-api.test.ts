/**
 * The kubelet API (10250) over real HTTPS with fakes behind it: authentication, authorization,
 * routing, limits, streaming proxy, logs and TLS swaps.
 */
import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request, type RequestOptions } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from "node:tls";
import type { V1Pod } from "@kubernetes/client-node";
import { createKubeletMetrics } from "../../src/metrics/index.js";
import { createProbeMetrics } from "../../src/metrics/probes.js";
import { startApiServer, type ApiServer, type ApiServerDeps, type ApiConfig } from "../../src/server/api.js";
import type { AccessReviewer, TokenReviewer } from "../../src/server/auth/index.js";
import { sharedRoutes } from "../../src/server/index.js";
import { generateSelfSignedCertKey } from "../../src/server/tls.js";
import { systemClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";
import { issueClientCert, makeCA } from "../support/pki.js";
import { isRefusal, openWebSocket } from "../support/websocket.js";
import { FakeRuntime, FakeStreamingServer } from "../support/fake-streaming.js";

interface Pem {
  certPem: string;
  keyPem: string;
}

const webPod: V1Pod = {
  metadata: { name: "web", namespace: "default", uid: "uid-web" },
  spec: { containers: [{ name: "main", image: "busybox" }] },
  status: { containerStatuses: [{ name: "main", image: "busybox", imageID: "", ready: true, restartCount: 0, containerID: "containerd://c-web", state: { running: {} } }] },
};

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  peer?: PeerCertificate;
}

describe("kubelet API (10250)", () => {
  let dir: string;
  let api: ApiServer;
  let runtime: FakeRuntime;
  const stream = new FakeStreamingServer();
  let admin: Pem;
  let viewer: Pem;
  let stranger: Pem;
  let hangRelease: (() => void) | undefined;
  const { logger, lines } = memoryLogger(4);
  const tokenReviewer: TokenReviewer = (t) => Promise.resolve(t === "viewer-token" ? { authenticated: true, user: { username: "viewer", groups: ["viewers"] } } : { authenticated: false });
  const accessReviewer: AccessReviewer = (spec) => Promise.resolve({ allowed: spec.user === "admin" || (spec.user === "viewer" && ["metrics", "stats", "healthz"].includes(spec.resourceAttributes.subresource)) });

  const baseConfig = (logPath: string): ApiConfig => ({
    address: "127.0.0.1",
    port: 0,
    tlsCertFile: join(dir, "serving.crt"),
    tlsPrivateKeyFile: join(dir, "serving.key"),
    authentication: { x509: { clientCAFile: join(dir, "clients-ca.crt") }, webhook: { enabled: true, cacheTTL: 60_000 }, anonymous: { enabled: false } },
    authorization: { mode: "Webhook", webhook: { cacheAuthorizedTTL: 60_000, cacheUnauthorizedTTL: 1_000 } },
    enableDebuggingHandlers: true,
    enableProfilingHandler: true,
    enableSystemLogHandler: true,
    podLogsDir: join(dir, "pods", logPath),
  });

  const deps = (): ApiServerDeps => {
    const metrics = createKubeletMetrics({ nodeName: "node-a", processMetrics: false });
    const hang = {
      pattern: "/healthz/hang",
      methods: ["GET"],
      handler: () =>
        new Promise<void>((r) => {
          hangRelease = r;
        }),
    };
    return {
      sharedRoutes: [hang, ...sharedRoutes({ pods: { pods: () => [webPod] }, checks: [{ name: "ping", check: () => undefined }], metrics, logger })],
      nodeName: "node-a",
      clock: systemClock,
      logger,
      metrics,
      runtime,
      podByName: (ns, name) => (ns === "default" && name === "web" ? webPod : undefined),
      configz: () => ({ kubeletconfig: { port: 10250 } }),
      probeMetrics: createProbeMetrics().registry,
      tokenReviewer,
      accessReviewer,
    };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tskubelet-api-"));
    const serving = await generateSelfSignedCertKey("node-a", Date.now());
    await writeFile(join(dir, "serving.crt"), serving.certPem);
    await writeFile(join(dir, "serving.key"), serving.keyPem);
    const ca = await makeCA("clients");
    const otherCA = await makeCA("someone-else");
    await writeFile(join(dir, "clients-ca.crt"), ca.certPem);
    [admin, viewer, stranger] = await Promise.all([issueClientCert(ca, { cn: "admin", orgs: ["system:masters"] }), issueClientCert(ca, { cn: "viewer" }), issueClientCert(otherCA, { cn: "admin" })]);
    await mkdir(join(dir, "varlog"));
    await writeFile(join(dir, "varlog", "syslog"), "sys\n");
    await writeFile(join(dir, "0.log"), "2026-01-01T00:00:00.000000001Z stdout F line one\n2026-01-01T00:00:01Z stderr F line two\n");
    await stream.start();
    runtime = new FakeRuntime(() => stream.port, join(dir, "0.log"));
    api = await startApiServer(deps(), {
      config: baseConfig("x"),
      certDir: join(dir, "pki"),
      systemLogRoot: join(dir, "varlog"),
      limits: { handlerTimeoutMs: 300 },
    });
  });
  after(async () => {
    hangRelease?.();
    await api?.close();
    await new Promise<void>((r) => stream.server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  function call(path: string, o: { method?: string; cert?: Pem; token?: string; headers?: Record<string, string>; body?: string; port?: number; agent?: RequestOptions["agent"] } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: o.port ?? api.address.port,
          path,
          method: o.method ?? "GET",
          rejectUnauthorized: false,
          agent: o.agent ?? false,
          ...(o.cert ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}),
          headers: { ...(o.token ? { Authorization: `Bearer ${o.token}` } : {}), ...o.headers },
        },
        (res) => {
          let body = "";
          const peer = (res.socket as TLSSocket).getPeerCertificate();
          res.setEncoding("utf8");
          res.on("data", (d: string) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, peer }));
        },
      );
      req.on("error", reject);
      req.end(o.body);
    });
  }

  it("refuses requests without credentials with 401 Unauthorized, unknown paths included", async () => {
    for (const p of ["/healthz", "/pods", "/no/such/path", "/exec/default/web/main"]) {
      const r = await call(p);
      assert.equal(r.status, 401, p);
      assert.equal(r.body, "Unauthorized\n");
    }
  });
  it("refuses a client certificate from another CA, and a bad token", async () => {
    assert.equal((await call("/healthz", { cert: stranger })).status, 401);
    assert.equal((await call("/healthz", { token: "nope" })).status, 401);
  });
  it("serves an x509-authenticated, allowed user", async () => {
    const h = await call("/healthz", { cert: admin });
    assert.deepEqual([h.status, h.body], [200, "ok"]);
    const pods = JSON.parse((await call("/pods", { cert: admin })).body) as { kind: string; items: V1Pod[] };
    assert.equal(pods.kind, "PodList");
    assert.equal(pods.items[0]?.metadata?.name, "web");
    assert.deepEqual(JSON.parse((await call("/configz", { cert: admin })).body), { kubeletconfig: { port: 10250 } });
    const probes = await call("/metrics/probes", { cert: admin });
    assert.match(probes.body, /# TYPE prober_probe_total counter/);
    assert.match(probes.body, /# TYPE prober_probe_duration_seconds histogram/);
    assert.match(probes.body, /^process_start_time_seconds \d+/m);
    const running = JSON.parse((await call("/runningpods/", { cert: admin })).body) as { items: { metadata: { name: string; uid: string }; spec: { containers: { name: string }[] } }[] };
    assert.deepEqual(running.items.map((p) => [p.metadata.name, p.metadata.uid, p.spec.containers.map((c) => c.name)]), [["web", "uid-web", ["main"]]]);
    assert.equal((await call("/no/such/path", { cert: admin })).status, 404);
  });
  it("403 names the user, verb and subresources; a token user gets what SubjectAccessReview allows", async () => {
    const m = await call("/metrics", { token: "viewer-token" });
    assert.equal(m.status, 200);
    assert.match(m.body, /kubelet_node_name\{node="node-a"\} 1/);
    const p = await call("/pods", { token: "viewer-token" });
    assert.deepEqual([p.status, p.body], [403, "Forbidden (user=viewer, verb=get, resource=nodes, subresource(s)=[pods proxy])\n"]);
    const e = await call("/run/default/web/main?cmd=echo%20hi", { method: "POST", cert: viewer });
    assert.deepEqual([e.status, e.body], [403, "Forbidden (user=viewer, verb=create, resource=nodes, subresource(s)=[proxy])\n"]);
  });
  it("/run runs the command through ExecSync and returns stdout and stderr", async () => {
    const r = await call("/run/default/web/main?cmd=echo%20hello%20world", { method: "POST", cert: admin });
    assert.deepEqual([r.status, r.body, r.headers["content-type"]], [200, "hello world\nto stderr\n", "application/json"]);
    assert.ok(runtime.calls.includes('execSync c-web ["echo","hello","world"]'));
    const bad = await call("/run/default/web/main?cmd=false", { method: "POST", cert: admin });
    assert.deepEqual([bad.status, bad.body], [500, "command 'false' exited with 1: it failed\n"]);
    assert.equal((await call("/run/default/nope/main?cmd=true", { method: "POST", cert: admin })).body, "pod does not exist\n");
    const nc = await call("/run/default/web/other?cmd=true", { method: "POST", cert: admin });
    assert.deepEqual([nc.status, nc.body], [404, 'container not found ("other")\n']);
    assert.equal((await call("/run/default/web/main?cmd=true", { cert: admin })).status, 405);
  });
  it("containerLogs reads the container's CRI log with options; names what is wrong", async () => {
    const r = await call("/containerLogs/default/web/main?timestamps=true", { cert: admin });
    assert.equal(r.status, 200);
    assert.equal(r.headers["transfer-encoding"], "chunked");
    assert.equal(r.body, "2026-01-01T00:00:00.000000001Z line one\n2026-01-01T00:00:01.000000000Z line two\n");
    assert.equal((await call("/containerLogs/default/web/main?tailLines=1", { cert: admin })).body, "line two\n");
    assert.equal((await call("/containerLogs/default/web/main?tail=all&limitBytes=4", { cert: admin })).body, "line");
    assert.deepEqual(Object.values(await call("/containerLogs/default/nope/main", { cert: admin })).slice(0, 2), [404, 'pod "nope" does not exist\n']);
    assert.deepEqual(Object.values(await call("/containerLogs/default/web/nope", { cert: admin })).slice(0, 2), [404, 'container "nope" not found in pod "web"\n']);
    assert.equal((await call("/containerLogs/default/web/main?tailLines=-1", { cert: admin })).status, 422);
    assert.equal((await call("/containerLogs/default/web/main?tailLines=x", { cert: admin })).status, 400);
    assert.equal((await call("/containerLogs/default/web/main?previous=true", { cert: admin })).body, 'previous terminated container "main" in pod "web" not found\n');
    assert.equal((await call("/containerLogs/default/web/main", { cert: admin, method: "POST" })).status, 405);
  });
  it("containerLogs?follow=true streams new lines as they come", async () => {
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: api.address.port, path: "/containerLogs/default/web/main?follow=true&tailLines=0", rejectUnauthorized: false, agent: false, cert: admin.certPem, key: admin.keyPem }, (res) => {
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          got.push(d);
          if (got.join("").includes("fresh")) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" ? undefined : reject(err)));
      req.end();
      setTimeout(() => void appendFile(join(dir, "0.log"), "2026-01-01T00:00:02Z stdout F fresh\n"), 200);
    });
    assert.equal(got.join(""), "fresh\n");
  });
  it("/logs/ serves the log directory", async () => {
    assert.equal((await call("/logs/syslog", { cert: admin })).body, "sys\n");
    assert.equal((await call("/logs/..%2f0.log", { cert: admin })).status, 400);
  });

  it("proxies a websocket exec to the runtime's URL, byte for byte, without the bearer token", async () => {
    stream.received.length = 0;
    const ws = await openWebSocket({ url: `wss://127.0.0.1:${api.address.port}/exec/default/web/main?command=echo&command=hi&output=1&error=1`, protocols: ["v4.channel.k8s.io"], tls: { rejectUnauthorized: false, cert: admin.certPem, key: admin.keyPem } });
    assert.ok(!isRefusal(ws), JSON.stringify(ws));
    assert.equal(ws.protocol, "v4.channel.k8s.io");
    const hello = await ws.next();
    assert.deepEqual(hello?.data, Buffer.from([1, ...Buffer.from("hello\n")]));
    ws.sendBinary(Buffer.from([0, 0x41]));
    ws.close();
    const head = stream.received[0] ?? "";
    assert.match(head, /^GET \/exec\/tok3n\?command=echo&command=hi&output=1&error=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/);
    assert.match(head, /\r\nSec-WebSocket-Protocol: v4\.channel\.k8s\.io\r\n/);
    assert.ok(runtime.calls.some((c) => c.startsWith('exec {"containerId":"c-web","cmd":["echo","hi"],"stdin":false,"stdout":true,"stderr":true,"tty":false}')), runtime.calls.join("\n"));

    // A token user's Authorization header does not travel to the runtime; early bytes after the head do.
    stream.received.length = 0;
    const raw = tlsConnect({ host: "127.0.0.1", port: api.address.port, rejectUnauthorized: false, cert: admin.certPem, key: admin.keyPem });
    await new Promise<void>((r) => raw.once("secureConnect", () => r()));
    raw.write("POST /attach/default/web/main?output=1&tty=1&input=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nAuthorization: Bearer viewer-token\r\n\r\nEARLY-BYTES");
    let back = "";
    raw.on("data", (d: Buffer) => (back += d.toString("latin1")));
    for (let i = 0; i < 100 && !back.includes("EARLY-BYTES"); i++) await new Promise((r) => setTimeout(r, 10));
    raw.destroy();
    const got = stream.received[0] ?? "";
    assert.match(got, /^POST \/attach\/tok3n\?output=1&tty=1&input=1 HTTP\/1\.1\r\n/);
    assert.match(got, /\r\nUpgrade: SPDY\/3\.1\r\nX-Stream-Protocol-Version: v4\.channel\.k8s\.io\r\n\r\nEARLY-BYTES$/);
    assert.ok(!/authorization/i.test(got), "no Authorization header upstream");
    assert.match(back, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(back.endsWith("EARLY-BYTES"), "the runtime's echo came back through");
  });
  it("refuses streams it cannot start, on the upgraded connection", async () => {
    const refusal = async (path: string, cert?: Pem): Promise<string> => {
      const r = await openWebSocket({ url: `wss://127.0.0.1:${api.address.port}${path}`, tls: { rejectUnauthorized: false, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) } });
      assert.ok(isRefusal(r), path);
      return `${r.status} ${r.body}`;
    };
    assert.equal(await refusal("/exec/default/web/main?command=ls&output=1"), "401 Unauthorized\n");
    assert.equal(await refusal("/exec/default/web/main?command=ls&output=1", viewer), "403 Forbidden (user=viewer, verb=get, resource=nodes, subresource(s)=[proxy])\n");
    assert.equal(await refusal("/exec/default/web/main?command=ls", admin), "400 you must specify at least 1 of stdin, stdout, stderr\n");
    assert.equal(await refusal("/exec/default/nope/main?command=ls&output=1", admin), "404 pod does not exist\n");
    assert.equal(await refusal("/exec/default/web/uid-other/main?command=ls&output=1", admin), "404 pod does not exist\n");
    assert.equal(await refusal("/exec/default/web/nope?command=ls&output=1", admin), '404 container not found ("nope")\n');
    assert.equal(await refusal("/portForward/default/web", admin), '400 query parameter "port" is required\n');
    assert.equal(await refusal("/portForward/default/web?port=0", admin), '400 port "0" must be > 0\n');
    assert.equal(await refusal("/portForward/default/web?port=http", admin), '400 unable to parse "http" as a port\n');
    assert.equal((await call("/exec/default/web/main?command=ls&output=1", { cert: admin })).body, "Upgrade request required\n");
  });
  it("port-forward over websocket hands the ports to CRI PortForward", async () => {
    const ws = await openWebSocket({ url: `wss://127.0.0.1:${api.address.port}/portForward/default/web/uid-web?port=80,8080&port=9090`, protocols: ["v4.channel.k8s.io"], tls: { rejectUnauthorized: false, cert: admin.certPem, key: admin.keyPem } });
    assert.ok(!isRefusal(ws));
    ws.close();
    assert.ok(runtime.calls.includes("portForward sb-web [80,8080,9090]"), runtime.calls.join("\n"));
  });

  it("limits: 431 for huge headers, 413 for big bodies, 503 for handlers past the timeout", async () => {
    const big = await call("/healthz", { cert: admin, headers: { "X-Big": "a".repeat((1 << 20) + 10) } }).catch((err: Error) => ({ status: -1, body: err.message }));
    assert.equal(big.status, 431);
    const body = await call("/healthz", { cert: admin, method: "POST", headers: { "Content-Length": String(2 << 20) }, body: "x" }).catch((err: Error) => ({ status: -1, body: err.message }));
    assert.equal(body.status, 413);
    const t0 = Date.now();
    const slow = await call("/healthz/hang", { cert: admin });
    assert.deepEqual([slow.status, slow.body], [503, "request timed out after 0s\n"]);
    assert.ok(Date.now() - t0 < 3000);
  });
  it("profiles the CPU on request", async () => {
    const r = await call("/debug/pprof/profile?seconds=1", { cert: admin });
    assert.equal(r.status, 200);
    const profile = JSON.parse(r.body) as { nodes: unknown[]; startTime: number };
    assert.ok(profile.nodes.length > 0);
    assert.equal((await call("/debug/pprof/profile?seconds=0", { cert: admin })).status, 400);
    assert.match((await call("/debug/pprof/", { cert: admin })).body, /heap/);
  });
  it("swaps the serving certificate for new connections without dropping open ones", async () => {
    const { Agent } = await import("node:https");
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const before1 = await call("/healthz", { cert: admin, agent });
    const next = await generateSelfSignedCertKey("rotated-node", Date.now());
    api.tls.setCertificate({ cert: next.certPem, key: next.keyPem });
    const kept = await call("/healthz", { cert: admin, agent });
    assert.equal(kept.status, 200);
    assert.equal(kept.peer?.subject.CN, before1.peer?.subject.CN, "the open connection kept its certificate");
    const fresh = await call("/healthz", { cert: admin });
    assert.match(String(fresh.peer?.subject.CN), /^rotated-node@\d+$/);
    agent.destroy();
    assert.ok(lines.length > 0);
  });
});

describe("kubelet API with debugging handlers off, and anonymous AlwaysAllow", () => {
  let dir: string;
  let api: ApiServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tskubelet-api2-"));
    const { logger } = memoryLogger();
    const metrics = createKubeletMetrics({ nodeName: "n", processMetrics: false });
    api = await startApiServer(
      {
        sharedRoutes: sharedRoutes({ pods: { pods: () => [] }, checks: [], metrics, logger }),
        nodeName: "n",
        clock: systemClock,
        logger,
        metrics,
        runtime: new FakeRuntime(() => 1, ""),
        podByName: () => undefined,
        configz: () => ({}),
        probeMetrics: createProbeMetrics().registry,
      },
      {
        config: {
          address: "127.0.0.1",
          port: 0,
          tlsCertFile: "",
          tlsPrivateKeyFile: "",
          authentication: { x509: { clientCAFile: "" }, webhook: { enabled: false, cacheTTL: 0 }, anonymous: { enabled: true } },
          authorization: { mode: "AlwaysAllow", webhook: { cacheAuthorizedTTL: 0, cacheUnauthorizedTTL: 0 } },
          enableDebuggingHandlers: false,
          enableProfilingHandler: true,
          enableSystemLogHandler: true,
          podLogsDir: dir,
        },
        certDir: join(dir, "pki"),
      },
    );
  });
  after(async () => {
    await api?.close();
    await rm(dir, { recursive: true, force: true });
  });
  const get = (path: string, method = "GET"): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: api.address.port, path, method, rejectUnauthorized: false, agent: false }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });
  it("generates the self-signed certificate in the cert dir when no files are given", () => {
    assert.equal(api.tls.certFile, join(dir, "pki", "kubelet.crt"));
    assert.equal(api.tls.keyFile, join(dir, "pki", "kubelet.key"));
  });
  it("answers 405 'Debug endpoints are disabled.' on the debugging paths; the rest works anonymously", async () => {
    for (const [p, m] of [["/exec/a/b/c", "POST"], ["/containerLogs/a/b/c", "GET"], ["/logs/", "GET"], ["/run/a/b/c", "POST"], ["/portForward/a/b", "GET"], ["/attach/a/b/c", "GET"], ["/runningpods/", "GET"], ["/debug/pprof/heap", "GET"]] as const) {
      assert.deepEqual(await get(p, m), { status: 405, body: "Debug endpoints are disabled.\n" }, p);
    }
    assert.equal((await get("/healthz")).status, 200);
    assert.equal((await get("/configz")).status, 404);
  });
});
