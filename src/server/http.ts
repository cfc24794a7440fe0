/**
 * Small HTTP plumbing shared by the listeners: routes as handler factories, typed errors mapped to
 * status codes in one place, request metrics, and server limits (header size, timeouts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { KubeletMetrics } from "../metrics/index.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface RequestContext {
  url: URL;
  /** Path parameters of the matched route. */
  params: Record<string, string>;
  /** Set by authentication (10250); absent on unauthenticated listeners. */
  user?: { name: string; groups: string[] };
}

export type Handler = (req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => Promise<void> | void;

export interface Route {
  /** A path pattern: literal segments, `:name` parameters, and a trailing `*` for "the rest". */
  pattern: string;
  methods: string[];
  handler: Handler;
  /** Long-running (exec, attach, port-forward, follow): excluded from the request timeout. */
  longRunning?: boolean;
}

export interface Router {
  dispatch(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export function createRouter(routes: Route[], opts: { serverType: string; metrics?: KubeletMetrics | undefined; logger: Logger }): Router {
  const compiled = routes.map((r) => ({ ...r, match: compilePattern(r.pattern) }));
  return {
    async dispatch(req, res) {
      const method = req.method ?? "GET";
      let pathname = "/";
      let labels = { method, path: "other", server_type: opts.serverType, long_running: "false" };
      const t0 = process.hrtime.bigint();
      let counted = false;
      try {
        let url: URL;
        try {
          url = new URL(req.url ?? "/", "http://localhost");
        } catch {
          throw new HttpError(400, `malformed request target ${JSON.stringify((req.url ?? "").slice(0, 200))}`);
        }
        pathname = url.pathname;
        let found: (typeof compiled)[number] | undefined;
        let params: Record<string, string> | undefined;
        const allowed = new Set<string>();
        for (const r of compiled) {
          const p = r.match(pathname);
          if (!p) continue;
          if (!r.methods.includes(method)) {
            r.methods.forEach((m) => allowed.add(m));
            continue;
          }
          found = r;
          params = p;
          break;
        }
        labels = { method, path: metricsPath(pathname), server_type: opts.serverType, long_running: String(found?.longRunning === true) };
        opts.metrics?.httpInflight.inc(labels);
        counted = true;
        if (!found || !params) {
          if (allowed.size > 0) throw new HttpError(405, `${method} is not allowed on ${pathname}`, { Allow: [...allowed].join(", ") });
          throw new HttpError(404, "404 page not found");
        }
        await found.handler(req, res, { url, params });
      } catch (err) {
        sendError(res, err, opts.logger);
      } finally {
        if (counted) opts.metrics?.httpInflight.dec(labels);
        opts.metrics?.httpRequests.inc(labels);
        opts.metrics?.httpRequestsDuration.observe(labels, Number(process.hrtime.bigint() - t0) / 1e9);
      }
    },
  };
}

const METRIC_BUCKETS = new Set([
  "attach", "checkpoint", "configz", "containerLogs", "debug", "exec", "healthz", "logs", "metrics", "pods",
  "portForward", "run", "runningpods", "spec", "stats", "api", "containers", "docker", "static",
]);
const METRICS_SUBPATHS = new Set(["cadvisor", "probes", "resource", "slis"]);

/**
 * Upstream's request-metric bucket: a known first path segment (`metrics/<x>` for the metrics
 * sub-paths), anything else "other" — so request paths never grow the label set.
 */
export function metricsPath(pathname: string): string {
  const parts = pathname.split("/").filter((s) => s !== "");
  const first = parts[0];
  if (first === undefined || !METRIC_BUCKETS.has(first)) return "other";
  if (first === "metrics" && parts[1] !== undefined) return METRICS_SUBPATHS.has(parts[1]) ? `metrics/${parts[1]}` : "other";
  return first;
}

function compilePattern(pattern: string): (path: string) => Record<string, string> | undefined {
  const segs = pattern.split("/").filter((s) => s !== "");
  const trailingSlash = pattern.endsWith("/") && pattern !== "/";
  return (path) => {
    const parts = path.split("/").filter((s) => s !== "");
    const params: Record<string, string> = {};
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i] ?? "";
      if (s === "*") {
        params["*"] = parts.slice(i).map(safeDecode).join("/");
        return params;
      }
      const part = parts[i];
      if (part === undefined) return undefined;
      if (s.startsWith(":")) params[s.slice(1)] = safeDecode(part);
      else if (s !== part) return undefined;
    }
    if (parts.length !== segs.length) return undefined;
    if (trailingSlash && !path.endsWith("/") && segs.length > 0 && parts.length === segs.length) return params;
    return params;
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, `malformed path segment ${JSON.stringify(s)}`);
  }
}

export function sendError(res: ServerResponse, err: unknown, logger: Logger): void {
  const status = err instanceof HttpError ? err.status : 500;
  const message = err instanceof HttpError ? err.message : `Internal Error: ${errorMessage(err)}`;
  if (status >= 500) logger.error("request failed", { err: errorMessage(err) });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers = err instanceof HttpError ? err.headers : {};
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", ...headers });
  res.end(message.endsWith("\n") ? message : message + "\n");
}

export function sendJSON(res: ServerResponse, body: string, status = 200): void {
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

export function sendText(res: ServerResponse, body: string, status = 200, contentType = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

export interface ServerLimits {
  /** Go's kubelet: 1 MiB of headers. */
  maxHeaderSize: number;
  /** Time to receive a complete request (slowloris guard). */
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = { maxHeaderSize: 1 << 20, requestTimeoutMs: 60_000, headersTimeoutMs: 30_000, keepAliveTimeoutMs: 90_000 };

export function createHttpServer(router: Router, limits: ServerLimits = DEFAULT_LIMITS): Server {
  const server = createServer({ maxHeaderSize: limits.maxHeaderSize, requestTimeout: limits.requestTimeoutMs, headersTimeout: limits.headersTimeoutMs }, (req, res) => {
    router.dispatch(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  return server;
}

/** Listens, resolving once bound; rejects with a message naming the address on failure. */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`));
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
