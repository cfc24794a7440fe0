/** Slow and idle clients on the kubelet API: each kind times out and frees its connection; streams do not. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { createKubeletMetrics } from "../../src/metrics/index.js";
import { createProbeMetrics } from "../../src/metrics/probes.js";
import { startApiServer, type ApiServer } from "../../src/server/api.js";
import { sharedRoutes } from "../../src/server/index.js";
import { systemClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";
import { FakeRuntime, FakeStreamingServer } from "../support/fake-streaming.js";
import { isRefusal, openWebSocket } from "../support/websocket.js";

describe("kubelet API limits on slow and idle clients", () => {
  let dir: string;
  let api: ApiServer;
  const stream = new FakeStreamingServer();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tskubelet-limits-"));
    await stream.start();
    const { logger } = memoryLogger();
    const metrics = createKubeletMetrics({ nodeName: "n", processMetrics: false });
    const pod = { metadata: { name: "web", namespace: "default", uid: "uid-web" }, spec: { containers: [{ name: "main" }] } };
    api = await startApiServer(
      {
        sharedRoutes: sharedRoutes({ pods: { pods: () => [] }, checks: [], metrics, logger }),
        nodeName: "n",
        clock: systemClock,
        logger,
        metrics,
        runtime: new FakeRuntime(() => stream.port, ""),
        podByName: (_ns, name) => (name === "web" ? pod : undefined),
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
          enableDebuggingHandlers: true,
          enableProfilingHandler: false,
          enableSystemLogHandler: false,
          podLogsDir: dir,
        },
        certDir: dir,
        limits: { handshakeTimeoutMs: 300, headersTimeoutMs: 400, requestTimeoutMs: 500, connectionsCheckingIntervalMs: 100, keepAliveTimeoutMs: 300, idleSocketTimeoutMs: 1000 },
      },
    );
  });
  after(async () => {
    await api?.close();
    await new Promise<void>((r) => stream.server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  /** Milliseconds until the server closes the connection. */
  const closedAfter = (sock: { once(ev: "close", fn: () => void): unknown }, t0: number): Promise<number> => new Promise((r) => sock.once("close", () => r(Date.now() - t0)));

  it("a TCP client that never starts TLS is dropped after the handshake timeout", async () => {
    const t0 = Date.now();
    const s = netConnect(api.address.port, "127.0.0.1");
    s.on("error", () => undefined);
    const ms = await closedAfter(s, t0);
    assert.ok(ms >= 250 && ms < 3000, `${ms} ms`);
  });
  it("a client that sends half its headers is dropped after the headers timeout", async () => {
    const s = tlsConnect({ host: "127.0.0.1", port: api.address.port, rejectUnauthorized: false });
    s.on("error", () => undefined);
    await new Promise<void>((r) => s.once("secureConnect", () => r()));
    const t0 = Date.now();
    s.write("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    let got = "";
    s.on("data", (d: Buffer) => (got += d.toString()));
    const ms = await closedAfter(s, t0);
    assert.ok(ms >= 350 && ms < 3000, `${ms} ms`);
    assert.match(got, /^HTTP\/1\.1 408 Request Timeout/);
  });
  it("an idle keep-alive connection is closed after the keep-alive timeout", async () => {
    const s: TLSSocket = tlsConnect({ host: "127.0.0.1", port: api.address.port, rejectUnauthorized: false });
    s.on("error", () => undefined);
    await new Promise<void>((r) => s.once("secureConnect", () => r()));
    let got = "";
    s.on("data", (d: Buffer) => (got += d.toString()));
    s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const t0 = Date.now();
    const ms = await closedAfter(s, t0);
    assert.match(got, /^HTTP\/1\.1 200 OK/);
    assert.ok(ms >= 250 && ms < 3000, `${ms} ms`);
  });
  it("an upgraded stream outlives the request, header and keep-alive timeouts", async () => {
    const ws = await openWebSocket({ url: `wss://127.0.0.1:${api.address.port}/exec/default/web/main?command=sh&input=1&output=1`, tls: { rejectUnauthorized: false } });
    assert.ok(!isRefusal(ws));
    assert.equal((await ws.next())?.data.subarray(1).toString(), "hello\n");
    await new Promise((r) => setTimeout(r, 1500));
    // The fake runtime echoes raw bytes: a frame we send comes back as a frame.
    ws.sendBinary(Buffer.from([0, 0x68, 0x69]));
    const echoed = await ws.next(2000);
    assert.ok(echoed, "still open after 1.5 s");
    ws.close();
  });
});
