import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createPrivateKey, webcrypto } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { V1Container } from "@kubernetes/client-node";
import { createHandlerRunner, resolvePort, type HandlerTarget } from "../../src/pods/handlers.js";
import type { ExecSyncResponse } from "../../src/cri/types.js";
import { FakeClock, systemClock } from "../../src/util/clock.js";
import { makeCA } from "../support/pki.js";

const portOf = (s: { address(): AddressInfo | string | null }): number => (s.address() as AddressInfo).port;

function target(container: Partial<V1Container> = {}): HandlerTarget {
  return { containerId: "c1", container: { name: "web", ...container }, podIP: "127.0.0.1" };
}

const noExec = { execSync: () => Promise.reject(new Error("exec not expected")) };

describe("resolvePort", () => {
  const c: V1Container = { name: "web", ports: [{ name: "http", containerPort: 8080 }] };
  it("takes numbers, numeric strings and names of the container's ports", () => {
    assert.equal(resolvePort(80, c), 80);
    assert.equal(resolvePort("81", c), 81);
    assert.equal(resolvePort("http", c), 8080);
  });
  it("explains a name the container does not have, a missing port and one out of range", () => {
    assert.equal(resolvePort("metrics", c), 'couldn\'t find port "metrics" in container web');
    assert.equal(resolvePort(undefined, c), "missing port");
    assert.equal(resolvePort(70000, c), "invalid port number: 70000");
    assert.equal(resolvePort("0", c), "invalid port number: 0");
  });
});

describe("exec through CRI ExecSync", () => {
  const runner = (reply: (cmd: string[], timeout: number) => Promise<ExecSyncResponse>) =>
    createHandlerRunner({ rs: { execSync: (_id, cmd, timeout) => reply(cmd, timeout) }, clock: new FakeClock() });
  const res = (out: string, exitCode: number, err = ""): ExecSyncResponse => ({ stdout: Buffer.from(out), stderr: Buffer.from(err), exitCode });

  it("exit 0 succeeds with the output; the timeout goes to the runtime in whole seconds", async () => {
    let seen: { cmd: string[]; timeout: number } | undefined;
    const r = await runner((cmd, timeout) => {
      seen = { cmd, timeout };
      return Promise.resolve(res("fine\n", 0));
    }).exec(target(), ["cat", "/tmp/healthy"], 1500);
    assert.deepEqual(r, { ok: true, output: "fine\n" });
    assert.deepEqual(seen, { cmd: ["cat", "/tmp/healthy"], timeout: 2 });
  });

  it("a non-zero exit fails with the command's output, or with the exit code when it printed nothing", async () => {
    const withOutput = await runner(() => Promise.resolve(res("", 1, "cat: can't open '/tmp/healthy'\n"))).exec(target(), ["cat", "/tmp/healthy"], 1000);
    assert.deepEqual(withOutput, { ok: false, message: "cat: can't open '/tmp/healthy'\n" });
    const silent = await runner(() => Promise.resolve(res("", 3))).exec(target(), ["false"], 1000);
    assert.equal(silent.ok, false);
    assert.equal(!silent.ok ? silent.message : "", 'command "false" exited with 3');
  });

  it("a runtime deadline is a timeout; a missing binary is a failure with the runtime's words", async () => {
    const slow = await runner(() => Promise.reject(new Error("context deadline exceeded"))).exec(target(), ["sleep", "10"], 1000);
    assert.deepEqual(slow, { ok: false, message: 'command "sleep 10" timed out', timedOut: true });
    const missing = await runner(() => Promise.reject(new Error('exec: "nope": executable file not found in $PATH'))).exec(target(), ["nope"], 1000);
    assert.equal(missing.ok, false);
    assert.match(!missing.ok ? missing.message : "", /executable file not found/);
  });
});

describe("httpGet", () => {
  let server: Server;
  let port = 0;
  const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ path: req.url ?? "", headers: req.headers });
      if (req.url === "/hang") return; // never answers
      const code = req.url === "/fail" ? 503 : req.url === "/moved" ? 302 : 200;
      res.writeHead(code, code === 302 ? { Location: "/elsewhere" } : {});
      res.end(code === 200 ? `ok ${req.url ?? ""}` : "no");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = portOf(server);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  const runner = (clock = new FakeClock()) => createHandlerRunner({ rs: noExec, clock });

  it("sends the path and headers to the pod IP; 2xx succeeds with the body", async () => {
    seen.length = 0;
    const r = await runner().httpGet(target(), { port, path: "/healthz?x=1", httpHeaders: [{ name: "X-Probe", value: "yes" }] }, 1000);
    assert.deepEqual(r, { ok: true, output: "ok /healthz?x=1" });
    assert.equal(seen[0]?.path, "/healthz?x=1");
    assert.equal(seen[0]?.headers["x-probe"], "yes");
    assert.match(seen[0]?.headers["user-agent"] ?? "", /^kube-probe\//);
  });

  it("a named port resolves through the container's ports; a missing path is /", async () => {
    seen.length = 0;
    const r = await runner().httpGet(target({ ports: [{ name: "http", containerPort: port }] }), { port: "http" }, 1000);
    assert.equal(r.ok, true);
    assert.equal(seen[0]?.path, "/");
  });

  it("a redirect is not followed and counts as success; 5xx fails with the status code", async () => {
    seen.length = 0;
    assert.equal((await runner().httpGet(target(), { port, path: "/moved" }, 1000)).ok, true);
    assert.deepEqual(seen.map((s) => s.path), ["/moved"]);
    assert.deepEqual(await runner().httpGet(target(), { port, path: "/fail" }, 1000), { ok: false, message: "HTTP probe failed with statuscode: 503" });
  });

  it("no answer within the timeout is a deadline failure", async () => {
    seen.length = 0;
    const clock = new FakeClock();
    const p = runner(clock).httpGet(target(), { port, path: "/hang" }, 1000);
    while (!seen.some((s) => s.path === "/hang")) await new Promise((r) => setImmediate(r));
    await clock.advance(1000);
    const r = await p;
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : "", /context deadline exceeded/);
    assert.equal(!r.ok && r.timedOut, true);
  });

  it("a refused connection and a port name the container lacks fail with clear messages", async () => {
    const closed = await closedPort();
    const refused = await runner().httpGet(target(), { port: closed }, 1000);
    assert.match(!refused.ok ? refused.message : "", new RegExp(`^Get "http://127\\.0\\.0\\.1:${closed}/": dial tcp 127\\.0\\.0\\.1:${closed}: connect: connection refused$`));
    assert.deepEqual(await runner().httpGet(target(), { port: "admin" }, 1000), { ok: false, message: 'couldn\'t find port "admin" in container web' });
    assert.deepEqual(await runner().httpGet(target(), { port: 65536 }, 1000), { ok: false, message: "invalid port number: 65536" });
    const badHost = await runner().httpGet(target(), { port: 80, host: "bad host" }, 1000);
    assert.equal(badHost.ok, false, "a host that makes no URL fails instead of throwing");
  });

  it("HTTPS accepts a self-signed certificate", async () => {
    const ca = await makeCA("probe.test");
    const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", ca.keys.privateKey));
    const key = createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ type: "pkcs8", format: "pem" }).toString();
    const tls = createHttpsServer({ cert: ca.certPem, key }, (_req, res) => res.end("secure"));
    tls.listen(0, "127.0.0.1");
    await once(tls, "listening");
    try {
      const r = await runner().httpGet(target(), { port: portOf(tls), scheme: "HTTPS" }, 2000);
      assert.deepEqual(r, { ok: true, output: "secure" });
    } finally {
      tls.closeAllConnections();
      tls.close();
    }
  });
});

async function closedPort(): Promise<number> {
  const s = createTcpServer();
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = portOf(s);
  s.close();
  await once(s, "close");
  return port;
}

describe("tcpSocket", () => {
  const runner = createHandlerRunner({ rs: noExec, clock: new FakeClock() });
  it("an open port succeeds", async () => {
    const s = createTcpServer((sock) => sock.destroy());
    s.listen(0, "127.0.0.1");
    await once(s, "listening");
    try {
      assert.deepEqual(await runner.tcpSocket(target({ ports: [{ name: "db", containerPort: portOf(s) }] }), { port: "db" }, 1000), { ok: true, output: "" });
    } finally {
      s.close();
    }
  });
  it("a closed port fails with a dial message", async () => {
    const port = await closedPort();
    const r = await runner.tcpSocket(target(), { port }, 1000);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : "", new RegExp(`^dial tcp 127\\.0\\.0\\.1:${port}: connect: connection refused$`));
  });
  it("without a pod IP there is nothing to dial", async () => {
    const r = await runner.tcpSocket({ ...target(), podIP: undefined }, { port: 80 }, 1000);
    assert.deepEqual(r, { ok: false, message: "no pod IP to connect to" });
  });
});

describe("grpc health check", () => {
  // grpc.health.v1.Health/Check, written by hand: request { string service = 1 }, response { enum status = 1 }.
  const decodeService = (b: Buffer): string => (b.length > 2 && b[0] === 0x0a ? b.subarray(2, 2 + (b[1] ?? 0)).toString("utf8") : "");
  const health: grpc.ServiceDefinition = {
    Check: {
      path: "/grpc.health.v1.Health/Check",
      requestStream: false,
      responseStream: false,
      requestSerialize: (s: string) => Buffer.from(s),
      requestDeserialize: decodeService,
      responseSerialize: (status: number) => Buffer.from([0x08, status]),
      responseDeserialize: (b: Buffer) => b[1] ?? 0,
    },
  };
  // The grpc-js server drops zero-length request messages, so the overall-health check (service "")
  // cannot be served by it; named services carry a non-empty request.
  const statuses: Record<string, number> = { web: 1, db: 2 };
  let server: grpc.Server;
  let port = 0;
  before(async () => {
    server = new grpc.Server();
    server.addService(health, {
      Check: (call: grpc.ServerUnaryCall<string, number>, cb: grpc.sendUnaryData<number>) => {
        const s = statuses[call.request];
        if (s === undefined) cb({ code: grpc.status.NOT_FOUND, details: "unknown service" }, null);
        else cb(null, s);
      },
    });
    port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  });
  after(() => server.forceShutdown());
  const runner = createHandlerRunner({ rs: noExec, clock: systemClock });

  it("SERVING succeeds", async () => {
    assert.deepEqual(await runner.grpc(target(), { port, service: "web" }, 5000), { ok: true, output: "" });
  });
  it("NOT_SERVING fails naming the status", async () => {
    assert.deepEqual(await runner.grpc(target(), { port, service: "db" }, 5000), { ok: false, message: 'service unhealthy (responded with "NOT_SERVING")' });
  });
  it("an unknown service fails with the server's error", async () => {
    const r = await runner.grpc(target(), { port, service: "cache" }, 5000);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : "", /^error: health rpc probe failed: unknown service/);
  });
  it("nothing listening fails", async () => {
    const r = await runner.grpc(target(), { port: await closedPort(), service: "web" }, 5000);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : "", /health rpc probe failed/);
  });
});

describe("sleep", () => {
  it("resolves after the given seconds on the clock, and fails when aborted", async () => {
    const clock = new FakeClock();
    const runner = createHandlerRunner({ rs: noExec, clock });
    let done = false;
    const p = runner.sleep(5).then((r) => {
      done = true;
      return r;
    });
    await clock.advance(4_999);
    assert.equal(done, false);
    await clock.advance(1);
    assert.deepEqual(await p, { ok: true, output: "" });
    const ac = new AbortController();
    const q = runner.sleep(5, ac.signal);
    ac.abort(new Error("pod is terminating"));
    assert.deepEqual(await q, { ok: false, message: "pod is terminating" });
  });
});
