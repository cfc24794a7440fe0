/**
 * 10250: the kubelet API over HTTPS. Every request is authenticated (x509, bearer token,
 * anonymous) and authorized (AlwaysAllow or SubjectAccessReview) before it is routed, unknown
 * paths included. Upgrade requests (exec, attach, port-forward) take the same path and are then
 * handed their raw connection.
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { ServerResponse, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import type { Registry } from "prom-client";
import { toKubeJSON } from "../api/json.js";
import { LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID, LABEL_CONTAINER_NAME } from "../api/labels.js";
import type { KubeletConfiguration } from "../config/index.js";
import type { RuntimeService } from "../cri/types.js";
import type { KubeletMetrics } from "../metrics/index.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { createAuthenticator, createAuthorizer, type AccessReviewer, type Authenticator, type Authorizer, type ClientCertificate, type TokenReviewer } from "./auth/index.js";
import { profilingRoutes } from "./debug.js";
import { debugDisabledRoutes, metricsHandler } from "./handlers.js";
import { DEFAULT_LIMITS, HttpError, closeServer, createRouter, listen, sendError, sendJSON, type Handler, type Route, type Router, type ServerLimits } from "./http.js";
import { containerLogsHandler, systemLogsHandler, type PodByName } from "./logs.js";
import type { DirWatch } from "./logs-reader.js";
import { streamingRoutes, type StreamingRuntime, type UpgradeTable, type UpgradedConnection } from "./streaming.js";
import { loadServingTLS, type ServingTLS } from "./tls.js";

export type ApiConfig = Pick<
  KubeletConfiguration,
  | "address"
  | "port"
  | "tlsCertFile"
  | "tlsPrivateKeyFile"
  | "authentication"
  | "authorization"
  | "enableDebuggingHandlers"
  | "enableProfilingHandler"
  | "enableSystemLogHandler"
  | "podLogsDir"
>;

export interface ApiLimits extends ServerLimits {
  /** A request that is not long-running must be answered within this (upstream has no such limit below 4 h). */
  handlerTimeoutMs: number;
  /** Declared request bodies above this are refused with 413 (no kubelet endpoint takes a big body). */
  maxBodyBytes: number;
  /** How often Node checks the header and request timeouts. */
  connectionsCheckingIntervalMs: number;
  /** A TLS handshake must finish within this. */
  handshakeTimeoutMs: number;
  /** A connection with no traffic for this long mid-request is closed (long-running requests excepted). */
  idleSocketTimeoutMs: number;
  /** Upstream's stream idle timeout for exec, attach and port-forward (4 h). */
  streamIdleTimeoutMs: number;
  /** A log follower whose client stops reading for this long is dropped. */
  stalledWriteTimeoutMs: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  ...DEFAULT_LIMITS,
  handlerTimeoutMs: 60_000,
  maxBodyBytes: 1 << 20,
  connectionsCheckingIntervalMs: 10_000,
  handshakeTimeoutMs: 10_000,
  idleSocketTimeoutMs: 120_000,
  streamIdleTimeoutMs: 4 * 3_600_000,
  stalledWriteTimeoutMs: 300_000,
};

export type ApiRuntime = StreamingRuntime & Pick<RuntimeService, "containerStatus">;

export interface ApiServerDeps {
  /** The routes 10250 shares with 10255 (healthz, pods, metrics, stats). */
  sharedRoutes: Route[];
  nodeName: string;
  clock: Clock;
  logger: Logger;
  metrics: KubeletMetrics;
  runtime: ApiRuntime;
  podByName: PodByName;
  /** The JSON /configz serves. */
  configz: () => unknown;
  /** The registry /metrics/probes serves. */
  probeMetrics: Registry;
  tokenReviewer?: TokenReviewer | undefined;
  accessReviewer?: AccessReviewer | undefined;
}

export interface ApiServerOptions {
  config: ApiConfig;
  certDir: string;
  /** The directory /logs/ serves (default /var/log). */
  systemLogRoot?: string;
  limits?: Partial<ApiLimits>;
  /** Test seams. */
  tls?: ServingTLS;
  dial?: (url: URL) => Promise<Duplex>;
  watch?: DirWatch;
}

export interface ApiServer {
  address: { host: string; port: number };
  /** The serving TLS, for certificate rotation and client CA reloads. */
  tls: ServingTLS;
  close(): Promise<void>;
}

/** The routes of 10250 after authentication and authorization. */
export function apiRoutes(deps: ApiServerDeps, opts: ApiServerOptions, upgrades: UpgradeTable): Route[] {
  const cfg = opts.config;
  const limits = { ...DEFAULT_API_LIMITS, ...opts.limits };
  const routes: Route[] = [...deps.sharedRoutes];
  if (!routes.some((r) => r.pattern === "/metrics/probes")) routes.push({ pattern: "/metrics/probes", methods: ["GET"], handler: metricsHandler(deps.probeMetrics) });
  if (!cfg.enableDebuggingHandlers) return [...routes, ...debugDisabledRoutes()];
  routes.push(
    { pattern: "/configz", methods: ["GET"], handler: (_req, res) => sendJSON(res, JSON.stringify(deps.configz())) },
    { pattern: "/runningpods", methods: ["GET"], handler: runningPodsHandler(deps.runtime) },
    {
      pattern: "/containerLogs/*",
      methods: ["GET"],
      handler: containerLogsHandler({
        podByName: deps.podByName,
        runtime: deps.runtime,
        podLogsDir: cfg.podLogsDir,
        clock: deps.clock,
        logger: deps.logger,
        stalledWriteTimeoutMs: limits.stalledWriteTimeoutMs,
        ...(opts.watch ? { watch: opts.watch } : {}),
      }),
    },
    ...streamingRoutes({
      podByName: deps.podByName,
      runtime: deps.runtime,
      upgrades,
      logger: deps.logger,
      streamIdleTimeoutMs: limits.streamIdleTimeoutMs,
      ...(opts.dial ? { dial: opts.dial } : {}),
    }),
  );
  if (cfg.enableSystemLogHandler) {
    const logs = systemLogsHandler({ root: opts.systemLogRoot ?? "/var/log" });
    routes.push({ pattern: "/logs", methods: ["GET"], handler: logs }, { pattern: "/logs/*", methods: ["GET"], handler: logs });
  }
  if (cfg.enableProfilingHandler) routes.push(...profilingRoutes({ clock: deps.clock, logger: deps.logger }));
  return routes;
}

/** A PodList of what the runtime runs (ready sandboxes, running containers), from CRI labels. */
export function runningPodsHandler(rs: Pick<RuntimeService, "listPodSandbox" | "listContainers">): Handler {
  return async (_req, res) => {
    const [sandboxes, containers] = await Promise.all([rs.listPodSandbox({ state: { state: "SANDBOX_READY" } }), rs.listContainers({ state: { state: "CONTAINER_RUNNING" } })]);
    const pods = new Map<string, { metadata: { name: string; namespace: string; uid: string }; spec: { containers: { name: string; image: string }[] }; status: Record<string, never> }>();
    const podOf = (labels: Record<string, string>): ReturnType<typeof pods.get> => {
      const uid = labels[LABEL_POD_UID];
      if (!uid) return undefined;
      let p = pods.get(uid);
      if (!p) {
        p = { metadata: { name: labels[LABEL_POD_NAME] ?? "", namespace: labels[LABEL_POD_NAMESPACE] ?? "", uid }, spec: { containers: [] }, status: {} };
        pods.set(uid, p);
      }
      return p;
    };
    for (const sb of sandboxes) podOf(sb.labels);
    for (const c of containers) podOf(c.labels)?.spec.containers.push({ name: c.labels[LABEL_CONTAINER_NAME] ?? c.metadata.name, image: c.image.image });
    const items = [...pods.values()].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
    sendJSON(res, toKubeJSON({ kind: "PodList", apiVersion: "v1", metadata: {}, items }));
  };
}

/** What the TLS layer says about the client's certificate; undefined when it sent none. */
export function clientCertificate(socket: Socket | Duplex): ClientCertificate | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  const cert = socket.getPeerCertificate(false);
  if (Object.keys(cert).length === 0) return undefined;
  const first = (v: string | string[] | undefined): string => (Array.isArray(v) ? (v[0] ?? "") : (v ?? ""));
  const all = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  const subject = (cert.subject as Record<string, string | string[] | undefined> | undefined) ?? {};
  const out: ClientCertificate = { verified: socket.authorized, commonName: first(subject.CN), organizations: all(subject.O) };
  const reason: unknown = socket.authorizationError;
  if (reason instanceof Error) out.error = reason.message;
  else if (typeof reason === "string") out.error = reason;
  if (Array.isArray(cert.ext_key_usage)) out.extKeyUsage = cert.ext_key_usage;
  return out;
}

/** Requests exempt from the handler timeout: streams and follows. */
export function isLongRunning(url: URL, upgrade: boolean): boolean {
  if (upgrade) return true;
  const p = url.pathname;
  if (/^\/+(exec|attach|portForward|debug|logs)(\/|$)/.test(p)) return true;
  if (/^\/+containerLogs(\/|$)/.test(p)) {
    const f = url.searchParams.get("follow");
    return f !== null && !(f === "0" || f.toLowerCase() === "f" || f.toLowerCase() === "false");
  }
  return false;
}

interface Filter {
  authn: Authenticator;
  authz: Authorizer;
  router: Router;
  limits: ApiLimits;
  clock: Clock;
  logger: Logger;
}

/** Authenticates, authorizes and dispatches one request (plain or upgrade). */
async function serve(f: Filter, req: IncomingMessage, res: ServerResponse, upgrade: boolean): Promise<void> {
  let url: URL;
  try {
    url = new URL(req.url ?? "/", "http://localhost");
  } catch {
    throw new HttpError(400, "malformed request target");
  }
  const declared = Number(req.headers["content-length"] ?? "0");
  if (Number.isFinite(declared) && declared > f.limits.maxBodyBytes) {
    res.shouldKeepAlive = false;
    throw new HttpError(413, `request body of ${declared} bytes is larger than the ${f.limits.maxBodyBytes} bytes allowed`);
  }
  const who = await f.authn.authenticate({ headers: req.headers, clientCert: clientCertificate(req.socket) });
  if (!who.ok) {
    f.logger.v(2).info("unauthenticated request", { path: url.pathname, reason: who.reason });
    throw new HttpError(401, "Unauthorized");
  }
  if (who.via === "token") delete req.headers.authorization;
  const decision = await f.authz.authorize(who.user, req.method ?? "GET", url.pathname);
  if (!decision.allowed) throw new HttpError(decision.status, decision.message);
  if (!isLongRunning(url, upgrade)) {
    const cancel = f.clock.setTimer(f.limits.handlerTimeoutMs, () => {
      if (res.writableEnded) return;
      if (res.headersSent) res.destroy();
      else sendError(res, new HttpError(503, `request timed out after ${Math.round(f.limits.handlerTimeoutMs / 1000)}s`), f.logger);
    });
    res.once("close", cancel);
    res.once("finish", cancel);
  }
  await f.router.dispatch(req, res);
}

export async function startApiServer(deps: ApiServerDeps, opts: ApiServerOptions): Promise<ApiServer> {
  const cfg = opts.config;
  const limits: ApiLimits = { ...DEFAULT_API_LIMITS, ...opts.limits };
  const { logger, clock } = deps;
  const tls =
    opts.tls ??
    (await loadServingTLS({
      certDir: opts.certDir,
      hostname: deps.nodeName,
      tlsCertFile: cfg.tlsCertFile,
      tlsPrivateKeyFile: cfg.tlsPrivateKeyFile,
      clientCAFile: cfg.authentication.x509.clientCAFile,
      clock,
      logger,
    }));
  const pending = new WeakMap<IncomingMessage, { conn: UpgradedConnection; res: ServerResponse }>();
  const upgrades: UpgradeTable = {
    has: (req) => pending.has(req),
    take(req) {
      const e = pending.get(req);
      if (!e) return undefined;
      pending.delete(req);
      e.res.detachSocket(e.conn.socket as Socket);
      return e.conn;
    },
  };
  const f: Filter = {
    authn: createAuthenticator({
      x509Enabled: tls.requestsClientCert,
      webhook: cfg.authentication.webhook,
      anonymous: cfg.authentication.anonymous,
      tokenReviewer: deps.tokenReviewer,
      clock,
      logger,
    }),
    authz: createAuthorizer({ mode: cfg.authorization.mode, webhook: cfg.authorization.webhook, nodeName: deps.nodeName, accessReviewer: deps.accessReviewer, clock, logger }),
    router: createRouter(apiRoutes(deps, opts, upgrades), { serverType: "readwrite", metrics: deps.metrics, logger }),
    limits,
    clock,
    logger,
  };
  const handle = (req: IncomingMessage, res: ServerResponse, upgrade: boolean): Promise<void> =>
    serve(f, req, res, upgrade).catch((err: unknown) => {
      try {
        sendError(res, err, logger);
      } catch {
        res.destroy();
      }
    });

  const server: HttpsServer = createHttpsServer(
    {
      ...tls.serverOptions(),
      maxHeaderSize: limits.maxHeaderSize,
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: limits.connectionsCheckingIntervalMs,
      handshakeTimeout: limits.handshakeTimeoutMs,
    },
    (req, res) => void handle(req, res, false),
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.timeout = limits.idleSocketTimeoutMs;
  // Upgraded connections leave the HTTP server's bookkeeping: close() ends them here.
  const upgraded = new Set<Duplex>();
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", (err) => logger.v(4).info("upgrade connection error", { err: errorMessage(err) }));
    upgraded.add(socket);
    socket.once("close", () => upgraded.delete(socket));
    const res = new ServerResponse(req);
    res.assignSocket(socket as Socket);
    res.shouldKeepAlive = false;
    // An answer without a taken connection (an error, a refusal) ends the connection.
    res.on("finish", () => socket.end());
    pending.set(req, { conn: { socket, head }, res });
    void handle(req, res, true).finally(() => {
      if (pending.delete(req) && !res.headersSent) socket.destroy();
    });
  });
  server.on("tlsClientError", (err: Error) => logger.v(4).info("TLS handshake failed", { err: errorMessage(err) }));
  tls.attach(server);
  await listen(server, cfg.port, cfg.address);
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : cfg.port;
  return {
    address: { host: cfg.address, port },
    tls,
    close: async () => {
      const closing = closeServer(server);
      for (const s of upgraded) s.destroy();
      await closing;
    },
  };
}
