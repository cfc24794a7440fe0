/**
 * A thin REST client for the kube-apiserver: kubeconfig loading (client certificate or token)
 * through @kubernetes/client-node's KubeConfig, keep-alive HTTPS, JSON, watches as streams of
 * events, a client-side rate limit (kubeAPIQPS/kubeAPIBurst), and errors that say which identity
 * was refused for what.
 */
import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import { request as httpRequest, Agent as HttpAgent, type IncomingMessage } from "node:http";
import { X509Certificate } from "node:crypto";
import type { Clock } from "../util/clock.js";
import { KubeletError } from "../util/errors.js";

export class ApiError extends KubeletError {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(`Api${status}`, message);
    this.name = "ApiError";
  }
}

export function isApiStatus(err: unknown, status: number): boolean {
  return err instanceof ApiError && err.status === status;
}

export interface ApiRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export interface ApiClient {
  /** The apiserver URL. */
  readonly server: string;
  /** Who we are to the apiserver (CN of the client certificate, or the kubeconfig user). */
  identity(): string;
  request<T>(req: ApiRequest): Promise<T>;
  /** Streams watch events until the server ends the stream, the signal aborts, or an error. */
  watch<T>(req: Omit<ApiRequest, "method" | "body">, onEvent: (e: WatchEvent<T>) => void): Promise<void>;
  /** Re-reads credentials from the kubeconfig (after a certificate rotation); drops pooled connections. */
  reload(): Promise<void>;
  close(): void;
}

export interface ApiClientOptions {
  kubeconfigPath: string;
  clock: Clock;
  qps: number;
  burst: number;
  /** Default request timeout. */
  timeoutMs?: number;
}

interface Transport {
  base: URL;
  options: RequestOptions;
  agent: Agent | HttpAgent;
  identity: string;
}

async function loadTransport(path: string): Promise<Transport> {
  // Loaded on first use: @kubernetes/client-node costs ~75 MiB, and standalone mode never needs it.
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeletError("KubeconfigInvalid", `kubeconfig ${path} has no current cluster`);
  const opts: RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const user = kc.getCurrentUser();
  let identity = user?.name ?? "unknown";
  if (opts.cert) {
    try {
      const pem = Buffer.isBuffer(opts.cert) ? opts.cert : Buffer.from(String(opts.cert));
      const subject = new X509Certificate(pem).subject;
      const cn = /CN=([^\n,]+)/.exec(subject)?.[1];
      if (cn) identity = cn;
    } catch {
      // keep the kubeconfig user name
    }
  } else if (opts.headers && "Authorization" in opts.headers) {
    identity = `${identity} (token)`;
  }
  const base = new URL(cluster.server);
  const agent = base.protocol === "https:" ? new Agent({ keepAlive: true, maxSockets: 64, ...pickTls(opts) }) : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  return { base, options: opts, agent, identity };
}

function pickTls(o: RequestOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ["ca", "cert", "key", "rejectUnauthorized", "servername"] as const) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** A token bucket: `qps` tokens per second, at most `burst` saved up. */
function createLimiter(clock: Clock, qps: number, burst: number): () => Promise<void> {
  let tokens = burst;
  let last = clock.now();
  return async () => {
    if (qps <= 0) return;
    for (;;) {
      const now = clock.now();
      tokens = Math.min(burst, tokens + ((now - last) / 1000) * qps);
      last = now;
      if (tokens >= 1) {
        tokens -= 1;
        return;
      }
      await clock.sleep(Math.ceil(((1 - tokens) / qps) * 1000));
    }
  };
}

export async function createApiClient(opts: ApiClientOptions): Promise<ApiClient> {
  let t = await loadTransport(opts.kubeconfigPath);
  const limit = createLimiter(opts.clock, opts.qps, opts.burst);

  const send = (req: ApiRequest, onResponse: (res: IncomingMessage) => void, onError: (e: Error) => void): (() => void) => {
    const url = new URL(req.path, t.base);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const body = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const headers: Record<string, string> = { Accept: "application/json", "User-Agent": "tskubelet" };
    for (const [k, v] of Object.entries(t.options.headers ?? {})) if (typeof v === "string") headers[k] = v;
    if (body) {
      headers["Content-Type"] = req.contentType ?? "application/json";
      headers["Content-Length"] = String(body.length);
    }
    const doRequest = url.protocol === "https:" ? httpsRequest : httpRequest;
    const r = doRequest(url, { method: req.method, headers, agent: t.agent, ...pickTls(t.options) }, onResponse);
    r.on("error", onError);
    // A whole-request deadline on the Clock (socket timeouts would pile listeners on pooled sockets).
    const limitMs = req.timeoutMs ?? opts.timeoutMs ?? 0;
    const cancelTimer = limitMs > 0 ? opts.clock.setTimer(limitMs, () => r.destroy(new Error(`request timed out after ${limitMs} ms`))) : undefined;
    r.once("close", () => cancelTimer?.());
    const onAbort = (): void => {
      r.destroy(new Error("aborted"));
    };
    req.signal?.addEventListener("abort", onAbort, { once: true });
    r.end(body);
    return () => {
      cancelTimer?.();
      req.signal?.removeEventListener("abort", onAbort);
    };
  };

  const describe = (req: { method?: string; path: string }): string => `${req.method ?? "GET"} ${req.path}`;

  const failure = (req: { method?: string; path: string }, status: number, text: string): ApiError => {
    let reason = "";
    let message = text.slice(0, 500);
    try {
      const s = JSON.parse(text) as { reason?: string; message?: string };
      reason = s.reason ?? "";
      message = s.message ?? message;
    } catch {
      // not a Status object
    }
    if (status === 401) return new ApiError(401, reason || "Unauthorized", `apiserver ${t.base.host} rejected the credentials of ${t.identity} (401 Unauthorized) for ${describe(req)}`);
    if (status === 403) return new ApiError(403, reason || "Forbidden", `apiserver ${t.base.host} refused ${t.identity} (403 Forbidden) for ${describe(req)}: ${message}`);
    return new ApiError(status, reason, `${describe(req)}: ${status} ${reason}: ${message}`);
  };

  return {
    get server() {
      return t.base.toString();
    },
    identity: () => t.identity,
    async request<T>(req: ApiRequest): Promise<T> {
      await limit();
      return new Promise<T>((resolve, reject) => {
        const cleanup = send(
          req,
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("error", reject);
            res.on("end", () => {
              cleanup();
              const text = Buffer.concat(chunks).toString("utf8");
              const status = res.statusCode ?? 0;
              if (status < 200 || status >= 300) {
                reject(failure(req, status, text));
                return;
              }
              try {
                resolve((text ? JSON.parse(text) : {}) as T);
              } catch (err) {
                reject(err instanceof Error ? err : new Error(String(err)));
              }
            });
          },
          (e) => reject(new ApiError(0, "Unreachable", `${describe(req)} to ${t.base.host}: ${e.message}`)),
        );
      });
    },
    async watch<T>(req: Omit<ApiRequest, "method" | "body">, onEvent: (e: WatchEvent<T>) => void): Promise<void> {
      await limit();
      const full: ApiRequest = { ...req, method: "GET", query: { ...req.query, watch: "true" }, timeoutMs: req.timeoutMs ?? 0 };
      return new Promise<void>((resolve, reject) => {
        const cleanup = send(
          full,
          (res) => {
            const status = res.statusCode ?? 0;
            if (status !== 200) {
              const chunks: Buffer[] = [];
              res.on("data", (c: Buffer) => chunks.push(c));
              res.on("end", () => reject(failure(full, status, Buffer.concat(chunks).toString("utf8"))));
              return;
            }
            let buf = "";
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => {
              buf += chunk;
              let nl: number;
              while ((nl = buf.indexOf("\n")) >= 0) {
                const line = buf.slice(0, nl).trim();
                buf = buf.slice(nl + 1);
                if (line) onEvent(JSON.parse(line) as WatchEvent<T>);
              }
            });
            res.on("error", (e) => reject(e));
            res.on("close", () => {
              cleanup();
              resolve();
            });
          },
          (e) => reject(new ApiError(0, "Unreachable", `watch ${req.path} on ${t.base.host}: ${e.message}`)),
        );
      });
    },
    async reload() {
      const old = t.agent;
      t = await loadTransport(opts.kubeconfigPath);
      old.destroy();
    },
    close() {
      t.agent.destroy();
    },
  };
}
