/**
 * /run, /exec, /attach and /portForward. The kubelet asks the runtime (CRI Exec, Attach,
 * PortForward) for a URL on its streaming server and proxies the client's upgraded connection
 * (SPDY/3.1 or WebSocket) to it byte for byte; there is no second streaming server here.
 */
import type { IncomingMessage } from "node:http";
import { connect as netConnect } from "node:net";
import type { Duplex } from "node:stream";
import { pipeline } from "node:stream/promises";
import { connect as tlsConnect } from "node:tls";
import { LABEL_CONTAINER_NAME, LABEL_POD_UID } from "../api/labels.js";
import { isCriError } from "../cri/errors.js";
import type { RuntimeService } from "../cri/types.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { HttpError, type Handler, type RequestContext, type Route } from "./http.js";
import type { PodByName } from "./logs.js";

/** The raw connection of an upgrade request, handed over once to the handler that takes it. */
export interface UpgradedConnection {
  socket: Duplex;
  /** Bytes the client sent after the request head, already read by the HTTP parser. */
  head: Buffer;
}

export interface UpgradeTable {
  /** Whether this request arrived as an HTTP/1.1 upgrade (its connection can be taken). */
  has(req: IncomingMessage): boolean;
  /** The connection of this upgrade request, detached from its HTTP response; undefined for plain requests. */
  take(req: IncomingMessage): UpgradedConnection | undefined;
}

export type StreamingRuntime = Pick<RuntimeService, "exec" | "attach" | "portForward" | "execSync" | "listContainers" | "listPodSandbox">;

export interface StreamingDeps {
  podByName: PodByName;
  runtime: StreamingRuntime;
  upgrades: UpgradeTable;
  logger: Logger;
  /** Opens a connection to the runtime's streaming server (default: TCP, or TLS for https URLs). */
  dial?: (url: URL) => Promise<Duplex>;
  /** Idle streams are closed after this long (upstream: 4 h). */
  streamIdleTimeoutMs?: number;
}

export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** Upstream's exec/attach stream options: "1" means on; a TTY has no separate stderr. */
export function streamOptions(q: URLSearchParams): StreamOptions {
  const on = (k: string): boolean => q.get(k) === "1";
  const o = { stdin: on("input"), stdout: on("output"), stderr: on("error"), tty: on("tty") };
  if (o.tty && o.stderr) o.stderr = false;
  if (!o.stdin && !o.stdout && !o.stderr) throw new HttpError(400, "you must specify at least 1 of stdin, stdout, stderr");
  return o;
}

/** Upstream's port-forward options: websocket requests name their ports in `port` (repeated or comma-separated). */
export function portForwardPorts(q: URLSearchParams, websocket: boolean): number[] {
  if (!websocket) return [];
  const values = q.getAll("port");
  if (values.length === 0) throw new HttpError(400, `query parameter "port" is required`);
  const ports: number[] = [];
  for (const v of values) {
    if (v === "") throw new HttpError(400, `query parameter "port" cannot be empty`);
    for (const p of v.split(",")) {
      if (!/^\d+$/.test(p) || Number(p) > 65535) throw new HttpError(400, `unable to parse "${v}" as a port`);
      if (Number(p) < 1) throw new HttpError(400, `port "${v}" must be > 0`);
      ports.push(Number(p));
    }
  }
  return ports;
}

export function isWebSocketRequest(req: IncomingMessage): boolean {
  const conn = (req.headers.connection ?? "").toLowerCase().split(",").map((s) => s.trim());
  return conn.includes("upgrade") && (req.headers.upgrade ?? "").toLowerCase() === "websocket";
}

function lookupPod(deps: StreamingDeps, ctx: RequestContext): { uid: string; name: string } {
  const ns = ctx.params.namespace ?? "";
  const name = ctx.params.pod ?? "";
  const pod = deps.podByName(ns, name);
  const uid = pod?.metadata?.uid ?? "";
  if (!pod || (ctx.params.uid !== undefined && ctx.params.uid !== uid)) throw new HttpError(404, "pod does not exist");
  return { uid, name };
}

async function runningContainerId(deps: StreamingDeps, podUid: string, container: string): Promise<string> {
  const list = await deps.runtime.listContainers({ state: { state: "CONTAINER_RUNNING" }, labelSelector: { [LABEL_POD_UID]: podUid, [LABEL_CONTAINER_NAME]: container } });
  const newest = [...list].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))[0];
  if (!newest) throw new HttpError(404, `container not found (${JSON.stringify(container)})`);
  return newest.id;
}

async function criCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (isCriError(err, "NotFound")) throw new HttpError(404, `${what}: ${errorMessage(err)}`);
    throw new HttpError(500, `${what}: ${errorMessage(err)}`);
  }
}

function takeUpgrade(deps: StreamingDeps, req: IncomingMessage): UpgradedConnection {
  const conn = deps.upgrades.take(req);
  if (!conn) throw new HttpError(400, "Upgrade request required");
  return conn;
}

export function runHandler(deps: StreamingDeps): Handler {
  return async (_req, res, ctx) => {
    const pod = lookupPod(deps, ctx);
    const container = ctx.params.container ?? "";
    const cmd = (ctx.url.searchParams.get("cmd") ?? "").split(" ");
    const id = await criCall("run", () => runningContainerId(deps, pod.uid, container));
    const r = await criCall("run", () => deps.runtime.execSync(id, cmd, 0));
    if (r.exitCode !== 0) throw new HttpError(500, `command '${cmd.join(" ")}' exited with ${r.exitCode}: ${r.stderr.toString()}`);
    const out = Buffer.concat([r.stdout, r.stderr]);
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": out.length });
    res.end(out);
  };
}

export function execHandler(deps: StreamingDeps, kind: "exec" | "attach"): Handler {
  return async (req, _res, ctx) => {
    const o = streamOptions(ctx.url.searchParams);
    const cmd = ctx.url.searchParams.getAll("command");
    const pod = lookupPod(deps, ctx);
    const container = ctx.params.container ?? "";
    const id = await criCall(kind, () => runningContainerId(deps, pod.uid, container));
    if (!deps.upgrades.has(req)) throw new HttpError(400, "Upgrade request required");
    const url = await criCall(kind, () =>
      kind === "exec" ? deps.runtime.exec({ containerId: id, cmd, ...o }) : deps.runtime.attach({ containerId: id, ...o }),
    );
    await proxyUpgrade(req, takeUpgrade(deps, req), url, deps);
  };
}

export function portForwardHandler(deps: StreamingDeps): Handler {
  return async (req, _res, ctx) => {
    const ports = portForwardPorts(ctx.url.searchParams, isWebSocketRequest(req));
    const pod = lookupPod(deps, ctx);
    if (!deps.upgrades.has(req)) throw new HttpError(400, "Upgrade request required");
    const sandboxes = await criCall("portForward", () => deps.runtime.listPodSandbox({ state: { state: "SANDBOX_READY" }, labelSelector: { [LABEL_POD_UID]: pod.uid } }));
    const sandbox = [...sandboxes].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))[0];
    if (!sandbox) throw new HttpError(404, `pod "${pod.name}" has no running sandbox`);
    const url = await criCall("portForward", () => deps.runtime.portForward({ podSandboxId: sandbox.id, port: ports }));
    await proxyUpgrade(req, takeUpgrade(deps, req), url, deps);
  };
}

export function streamingRoutes(deps: StreamingDeps): Route[] {
  const exec = execHandler(deps, "exec");
  const attach = execHandler(deps, "attach");
  const pf = portForwardHandler(deps);
  const run = runHandler(deps);
  const both = ["GET", "POST"];
  return [
    { pattern: "/run/:namespace/:pod/:container", methods: ["POST"], handler: run },
    { pattern: "/run/:namespace/:pod/:uid/:container", methods: ["POST"], handler: run },
    { pattern: "/exec/:namespace/:pod/:container", methods: both, handler: exec, longRunning: true },
    { pattern: "/exec/:namespace/:pod/:uid/:container", methods: both, handler: exec, longRunning: true },
    { pattern: "/attach/:namespace/:pod/:container", methods: both, handler: attach, longRunning: true },
    { pattern: "/attach/:namespace/:pod/:uid/:container", methods: both, handler: attach, longRunning: true },
    { pattern: "/portForward/:namespace/:pod", methods: both, handler: pf, longRunning: true },
    { pattern: "/portForward/:namespace/:pod/:uid", methods: both, handler: pf, longRunning: true },
  ];
}

const HOP_BY_HOP_DROPPED = new Set(["host", "authorization", "proxy-authorization"]);

/** The request head sent to the runtime: the client's request line and headers, aimed at `target`. */
export function upstreamRequestHead(req: IncomingMessage, target: URL): string {
  const query = target.search !== "" ? target.search : new URL(req.url ?? "/", "http://x").search;
  const lines = [`${req.method ?? "GET"} ${target.pathname}${query} HTTP/1.1`, `Host: ${target.host}`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? "";
    if (HOP_BY_HOP_DROPPED.has(name.toLowerCase())) continue;
    lines.push(`${name}: ${raw[i + 1] ?? ""}`);
  }
  return lines.join("\r\n") + "\r\n\r\n";
}

function defaultDial(url: URL): Promise<Duplex> {
  const secure = url.protocol === "https:";
  const port = Number(url.port !== "" ? url.port : secure ? 443 : 80);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return new Promise((resolve, reject) => {
    // The runtime's streaming server usually has a self-signed certificate of its own.
    const s = secure ? tlsConnect({ host, port, rejectUnauthorized: false }) : netConnect({ host, port });
    const onError = (err: Error): void => reject(err);
    s.once("error", onError);
    s.once(secure ? "secureConnect" : "connect", () => {
      s.off("error", onError);
      resolve(s);
    });
  });
}

function rawResponse(socket: Duplex, status: number, reason: string, body: string): void {
  const text = body.endsWith("\n") ? body : body + "\n";
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
}

/** Proxies an upgraded connection to the runtime's URL and copies bytes both ways until either side is done. */
export async function proxyUpgrade(req: IncomingMessage, client: UpgradedConnection, url: string, deps: Pick<StreamingDeps, "dial" | "logger" | "streamIdleTimeoutMs">): Promise<void> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    rawResponse(client.socket, 502, "Bad Gateway", `the runtime returned an invalid streaming URL ${JSON.stringify(url)}`);
    return;
  }
  let upstream: Duplex;
  try {
    upstream = await (deps.dial ?? defaultDial)(target);
  } catch (err) {
    deps.logger.warn("cannot reach the runtime's streaming server", { url: target.origin, err: errorMessage(err) });
    rawResponse(client.socket, 502, "Bad Gateway", `cannot reach the runtime's streaming server at ${target.origin}: ${errorMessage(err)}`);
    return;
  }
  const idle = deps.streamIdleTimeoutMs ?? 4 * 3_600_000;
  for (const s of [client.socket, upstream]) {
    const sock = s as Duplex & { setTimeout?: (ms: number, cb?: () => void) => unknown };
    sock.setTimeout?.(idle, () => {
      client.socket.destroy();
      upstream.destroy();
    });
  }
  upstream.write(upstreamRequestHead(req, target));
  if (client.head.length > 0) upstream.write(client.head);
  // Runtime to client: when the runtime is done, flush to the client, then close it.
  const down = pipeline(upstream, client.socket).finally(() => {
    client.socket.destroy();
    upstream.destroy();
  });
  const up = pipeline(client.socket, upstream);
  const results = await Promise.allSettled([down, up]);
  for (const r of results) {
    if (r.status === "rejected") deps.logger.v(4).info("stream ended", { url: target.pathname, err: errorMessage(r.reason) });
  }
}
