/**
 * The actions probes and lifecycle hooks run against a container: exec (CRI ExecSync), httpGet,
 * tcpSocket, grpc (grpc.health.v1.Health/Check) and sleep. One runner serves both the prober and
 * the hook runner, so a probe and a hook of the same kind behave alike.
 *
 * Every action resolves to an outcome; none throws for a failing target (a refused connection, a
 * non-zero exit, a timeout are outcomes with a message in upstream's words).
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { V1Container, V1GRPCAction, V1HTTPGetAction, V1TCPSocketAction } from "@kubernetes/client-node";
import type { RuntimeService } from "../cri/types.js";
import type { Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";

export type HandlerOutcome = { ok: true; output: string } | { ok: false; message: string; timedOut?: boolean };

/** Where an action runs: the container (exec) or the pod's IP (network actions). */
export interface HandlerTarget {
  containerId: string;
  container: V1Container;
  /** The pod's IP (hostNetwork pods: the host's); network actions default their host to it. */
  podIP: string | undefined;
}

export interface HandlerRunner {
  exec(t: HandlerTarget, command: string[], timeoutMs: number): Promise<HandlerOutcome>;
  httpGet(t: HandlerTarget, action: V1HTTPGetAction, timeoutMs: number): Promise<HandlerOutcome>;
  tcpSocket(t: HandlerTarget, action: V1TCPSocketAction, timeoutMs: number): Promise<HandlerOutcome>;
  grpc(t: HandlerTarget, action: V1GRPCAction, timeoutMs: number): Promise<HandlerOutcome>;
  sleep(seconds: number, signal?: AbortSignal): Promise<HandlerOutcome>;
}

/** Body bytes kept from an HTTP answer or exec output (upstream keeps 10 KiB). */
const MAX_OUTPUT = 10 * 1024;

/** Resolves a port given by number or by the name of one of the container's ports. */
export function resolvePort(port: number | string | undefined, container: V1Container): number | string {
  if (port === undefined || port === "") return "missing port";
  const named = typeof port === "string" && !/^\d+$/.test(port) ? (container.ports ?? []).find((p) => p.name === port) : undefined;
  if (typeof port === "string" && !/^\d+$/.test(port) && !named) return `couldn't find port ${JSON.stringify(port)} in container ${container.name}`;
  const n = named ? named.containerPort : Number(port);
  // Out of range, a port would make the connection attempt throw instead of failing.
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : `invalid port number: ${String(n)}`;
}

export function createHandlerRunner(deps: { rs: Pick<RuntimeService, "execSync">; clock: Clock }): HandlerRunner {
  const withTimeout = <T>(timeoutMs: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const ac = new AbortController();
    const cancel = deps.clock.setTimer(timeoutMs, () => ac.abort());
    return run(ac.signal).finally(cancel);
  };

  return {
    async exec(t, command, timeoutMs) {
      try {
        const r = await deps.rs.execSync(t.containerId, command, Math.max(1, Math.ceil(timeoutMs / 1000)));
        const output = Buffer.concat([r.stdout, r.stderr]).subarray(0, MAX_OUTPUT).toString("utf8");
        if (r.exitCode === 0) return { ok: true, output };
        return { ok: false, message: output !== "" ? output : `command ${JSON.stringify(command.join(" "))} exited with ${r.exitCode}` };
      } catch (err) {
        const msg = errorMessage(err);
        const timedOut = /deadline|timeout|timed out/i.test(msg);
        return { ok: false, message: timedOut ? `command ${JSON.stringify(command.join(" "))} timed out` : msg, ...(timedOut ? { timedOut } : {}) };
      }
    },

    httpGet(t, action, timeoutMs) {
      const port = resolvePort(action.port, t.container);
      if (typeof port === "string") return Promise.resolve({ ok: false, message: port });
      const host = action.host !== undefined && action.host !== "" ? action.host : (t.podIP ?? "");
      if (host === "") return Promise.resolve({ ok: false, message: "no pod IP to send the request to" });
      const scheme = (action.scheme ?? "HTTP").toUpperCase();
      const path = action.path === undefined || action.path === "" ? "/" : action.path.startsWith("/") ? action.path : `/${action.path}`;
      const headers: Record<string, string> = { "User-Agent": "kube-probe/1.33", Accept: "*/*" };
      for (const h of action.httpHeaders ?? []) headers[h.name] = h.value;
      const url = `${scheme === "HTTPS" ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}${path}`;
      try {
        new URL(url);
      } catch {
        return Promise.resolve({ ok: false, message: `invalid URL ${JSON.stringify(url)}` });
      }
      return withTimeout(timeoutMs, (signal) =>
        new Promise<HandlerOutcome>((resolve) => {
          const req = (scheme === "HTTPS" ? httpsRequest : httpRequest)(url, { method: "GET", headers, signal, rejectUnauthorized: false }, (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on("data", (c: Buffer) => {
              if (size < MAX_OUTPUT) chunks.push(c);
              size += c.length;
            });
            res.on("error", (err) => resolve({ ok: false, message: `Get "${url}": ${errorMessage(err)}` }));
            res.on("end", () => resolve(httpOutcome(res.statusCode ?? 0, Buffer.concat(chunks).subarray(0, MAX_OUTPUT).toString("utf8"))));
          });
          req.on("error", (err) => {
            const timedOut = signal.aborted;
            resolve({
              ok: false,
              message: timedOut ? `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` : `Get "${url}": ${dialError(err, `${hostPort(host)}:${port}`)}`,
              ...(timedOut ? { timedOut } : {}),
            });
          });
          req.end();
        }),
      );
    },

    tcpSocket(t, action, timeoutMs) {
      const port = resolvePort(action.port, t.container);
      if (typeof port === "string") return Promise.resolve({ ok: false, message: port });
      const host = action.host !== undefined && action.host !== "" ? action.host : (t.podIP ?? "");
      if (host === "") return Promise.resolve({ ok: false, message: "no pod IP to connect to" });
      const addr = `${hostPort(host)}:${port}`;
      return withTimeout(timeoutMs, (signal) =>
        new Promise<HandlerOutcome>((resolve) => {
          const s = connect({ host, port, signal });
          s.once("connect", () => {
            s.destroy();
            resolve({ ok: true, output: "" });
          });
          s.once("error", (err) => {
            const timedOut = signal.aborted;
            resolve({ ok: false, message: timedOut ? `dial tcp ${addr}: i/o timeout` : dialError(err, addr), ...(timedOut ? { timedOut } : {}) });
          });
        }),
      );
    },

    grpc(t, action, timeoutMs) {
      const host = t.podIP ?? "";
      if (host === "") return Promise.resolve({ ok: false, message: "no pod IP to connect to" });
      const addr = `${hostPort(host)}:${action.port}`;
      return new Promise<HandlerOutcome>((resolve) => {
        const client = new grpc.Client(addr, grpc.credentials.createInsecure());
        const deadline = new Date(deps.clock.now() + timeoutMs);
        client.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          (service: string) => encodeHealthCheckRequest(service),
          (b: Buffer) => decodeHealthCheckStatus(b),
          action.service ?? "",
          new grpc.Metadata(),
          { deadline },
          (err, status) => {
            client.close();
            if (err) {
              const timedOut = err.code === grpc.status.DEADLINE_EXCEEDED;
              resolve({
                ok: false,
                message: timedOut ? `timeout: health rpc did not complete within ${timeoutMs / 1000}s` : `error: health rpc probe failed: ${err.details || err.message}`,
                ...(timedOut ? { timedOut } : {}),
              });
              return;
            }
            resolve(status === 1 ? { ok: true, output: "" } : { ok: false, message: `service unhealthy (responded with "${HEALTH_STATUS[status ?? 0] ?? String(status)}")` });
          },
        );
      });
    },

    async sleep(seconds, signal) {
      try {
        await deps.clock.sleep(seconds * 1000, signal);
        return { ok: true, output: "" };
      } catch (err) {
        return { ok: false, message: errorMessage(err) };
      }
    },
  };
}

const hostPort = (host: string): string => (host.includes(":") ? `[${host}]` : host);

/** Go's words for the usual connection errors ("dial tcp 10.0.0.5:80: connect: connection refused"), as upstream's messages read. */
const DIAL_ERRORS: Record<string, string> = {
  ECONNREFUSED: "connect: connection refused",
  EHOSTUNREACH: "connect: no route to host",
  ENETUNREACH: "connect: network is unreachable",
  ETIMEDOUT: "i/o timeout",
  ECONNRESET: "read: connection reset by peer",
};

function dialError(err: unknown, addr: string): string {
  const code = typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
  const words = DIAL_ERRORS[code];
  return words !== undefined ? `dial tcp ${addr}: ${words}` : `dial tcp ${addr}: ${errorMessage(err)}`;
}

/** Upstream's rule: 2xx and 3xx succeed (a redirect is not followed), everything else fails. */
function httpOutcome(code: number, body: string): HandlerOutcome {
  if (code >= 200 && code < 400) return { ok: true, output: body };
  return { ok: false, message: `HTTP probe failed with statuscode: ${code}` };
}

const HEALTH_STATUS: Record<number, string> = { 0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN" };

/** grpc.health.v1.HealthCheckRequest { string service = 1; } */
function encodeHealthCheckRequest(service: string): Buffer {
  if (service === "") return Buffer.alloc(0);
  const s = Buffer.from(service, "utf8");
  return Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]);
}

/** grpc.health.v1.HealthCheckResponse { ServingStatus status = 1; } → the status number. */
function decodeHealthCheckStatus(b: Buffer): number {
  let i = 0;
  /** Reads the base-128 varint at i and moves past it. */
  const readVarint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const byte = b[i++] ?? 0;
      v |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0 || i >= b.length) return v;
      shift += 7;
    }
  };
  while (i < b.length) {
    const key = readVarint();
    const wire = key & 7;
    if (wire === 0) {
      const v = readVarint();
      if (key >> 3 === 1) return v;
    } else if (wire === 2) {
      i += readVarint();
    } else {
      break;
    }
  }
  return 0;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}
