/**
 * One gRPC channel to a CRI runtime and the two call shapes CRI needs: unary calls with a deadline,
 * and server streams. Request/response conversion (bigint <-> decimal string) happens here, so the
 * rest of the client only ever sees src/cri/types.ts shapes.
 */
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { MethodDefinition, PackageDefinition } from "@grpc/proto-loader";
import { systemClock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { buildSchemas, messageIn, messageOut, WireConversionError, type Schemas } from "./convert.js";
import { parseEndpoint, type CriEndpoint } from "./endpoint.js";
import { CriError, toCriError, type CallSite } from "./errors.js";
import type { CallOptions } from "./types.js";

export const CRI_PACKAGE = "runtime.v1";

/** Options shared by createRuntimeService and createImageService. */
export interface CriClientOptions {
  /** Default deadline for every unary call, in ms (the kubelet's runtimeRequestTimeout, 2m upstream). */
  timeoutMs: number;
  logger?: Logger;
  /**
   * Called once per RPC with the operation type as upstream's metrics name it ("run_podsandbox",
   * "list_containers", ...), the duration in ms, and the CriError when the call failed.
   */
  onCall?: (op: string, ms: number, err?: unknown) => void;
}

interface LoadedProto {
  def: PackageDefinition;
  schemas: Schemas;
}

let loaded: LoadedProto | undefined;

/** Path of the .proto next to this module (the build copies src/cri/proto to dist/src/cri/proto). */
export function protoPath(): string {
  return fileURLToPath(new URL("./proto/api.proto", import.meta.url));
}

/** Loads and caches the CRI proto (lazily: constructing a client does no I/O). */
export function loadCriProto(): LoadedProto {
  if (!loaded) {
    const def = protoLoader.loadSync(protoPath(), {
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      keepCase: false,
    });
    loaded = { def, schemas: buildSchemas(def, CRI_PACKAGE) };
  }
  return loaded;
}

type AnyMethod = MethodDefinition<object, object>;

function methodOf(service: "RuntimeService" | "ImageService", rpc: string): AnyMethod {
  const svc = loadCriProto().def[`${CRI_PACKAGE}.${service}`];
  const method = svc && !("format" in svc) ? svc[rpc] : undefined;
  if (!method) throw new Error(`CRI proto has no ${service}/${rpc}`);
  return method;
}

function messageName(m: AnyMethod, which: "requestType" | "responseType"): string {
  const t: unknown = m[which].type;
  const name = typeof t === "object" && t !== null && "name" in t ? t.name : undefined;
  if (typeof name !== "string") throw new Error(`CRI proto: method ${m.path} has no ${which}`);
  return `${CRI_PACKAGE}.${name}`;
}

const MiB = 1024 * 1024;

export interface UnaryCall {
  service: "RuntimeService" | "ImageService";
  rpc: string;
  /** Metrics operation name, e.g. "run_podsandbox". */
  op: string;
  request: object;
  opts: CallOptions | undefined;
  /** Added to the deadline (ExecSync's own timeout). */
  extraMs?: number;
}

/** A channel to one runtime endpoint. */
export class CriTransport {
  readonly endpoint: CriEndpoint;
  private client: grpc.Client | undefined;
  private closed = false;

  constructor(
    endpoint: string,
    private readonly options: CriClientOptions,
  ) {
    this.endpoint = parseEndpoint(endpoint);
    if (!(options.timeoutMs > 0)) {
      throw new CriError("InvalidArgument", `CRI client for ${this.endpoint.url}: timeoutMs must be > 0, got ${options.timeoutMs}`, {
        rpc: "",
        endpoint: this.endpoint.url,
      });
    }
  }

  private channel(rpc: string): grpc.Client {
    if (this.closed) {
      throw new CriError("Unavailable", `CRI ${rpc} on ${this.endpoint.url}: client is closed`, { rpc, endpoint: this.endpoint.url });
    }
    this.client ??= new grpc.Client(this.endpoint.url, grpc.credentials.createInsecure(), {
      // Same limits and reconnect pacing as the upstream kubelet's CRI client.
      "grpc.max_receive_message_length": 16 * MiB,
      "grpc.max_send_message_length": 16 * MiB,
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 3000,
    });
    return this.client;
  }

  close(): void {
    this.closed = true;
    this.client?.close();
    this.client = undefined;
  }

  private report(op: string, start: number, err?: unknown): void {
    const ms = performance.now() - start;
    try {
      this.options.onCall?.(op, ms, err);
    } catch {
      // a metrics hook must never break a runtime call
    }
    if (err === undefined) this.options.logger?.v(5).info("CRI call", { op, ms: Math.round(ms) });
    else this.options.logger?.v(2).info("CRI call failed", { op, ms: Math.round(ms), err });
  }

  private site(rpc: string, timeoutMs: number | undefined, start: number): CallSite {
    return { rpc, endpoint: this.endpoint.url, socketPath: this.endpoint.socketPath, timeoutMs, elapsedMs: performance.now() - start };
  }

  /** One unary RPC with a deadline; resolves to the converted response. */
  async unary<T>(call: UnaryCall): Promise<T> {
    const start = performance.now();
    const timeoutMs = (call.opts?.timeoutMs ?? this.options.timeoutMs) + (call.extraMs ?? 0);
    try {
      const { schemas } = loadCriProto();
      const method = methodOf(call.service, call.rpc);
      let wire: Record<string, unknown>;
      try {
        wire = messageOut(schemas, messageName(method, "requestType"), call.request);
      } catch (err) {
        if (!(err instanceof WireConversionError)) throw err;
        throw new CriError("InvalidArgument", `CRI ${call.rpc} on ${this.endpoint.url}: bad request: ${err.message}`, {
          rpc: call.rpc,
          endpoint: this.endpoint.url,
          cause: err,
        });
      }
      const raw = await this.invoke(method, wire, { rpc: call.rpc, timeoutMs, signal: call.opts?.signal });
      const res = messageIn<T>(schemas, messageName(method, "responseType"), raw);
      this.report(call.op, start);
      return res;
    } catch (err) {
      const criErr = await toCriError(err, this.site(call.rpc, timeoutMs, start));
      this.report(call.op, start, criErr);
      throw criErr;
    }
  }

  private invoke(method: AnyMethod, wire: object, c: { rpc: string; timeoutMs: number; signal: AbortSignal | undefined }): Promise<object> {
    const client = this.channel(c.rpc);
    return new Promise<object>((resolve, reject) => {
      if (c.signal?.aborted) {
        reject(abortError(c.rpc, this.endpoint.url, c.signal));
        return;
      }
      const deadline = systemClock.now() + c.timeoutMs;
      const onAbort = (): void => call.cancel();
      const call = client.makeUnaryRequest<object, object>(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        wire,
        new grpc.Metadata(),
        { deadline },
        (err, value) => {
          c.signal?.removeEventListener("abort", onAbort);
          if (err) reject(c.signal?.aborted ? abortError(c.rpc, this.endpoint.url, c.signal, err) : err);
          else resolve(value ?? {});
        },
      );
      c.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Opens a server stream and yields converted messages until the stream ends, `signal` aborts
   * (ends quietly) or it fails (throws a CriError). No deadline: streams are long-lived.
   */
  async *serverStream<T>(c: { service: "RuntimeService"; rpc: string; op: string; request: object; signal: AbortSignal }): AsyncGenerator<T> {
    const start = performance.now();
    const { schemas } = loadCriProto();
    const method = methodOf(c.service, c.rpc);
    const responseType = messageName(method, "responseType");
    if (c.signal.aborted) return;
    const stream = this.channel(c.rpc).makeServerStreamRequest<object, object>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      messageOut(schemas, messageName(method, "requestType"), c.request),
      new grpc.Metadata(),
      {},
    );
    const onAbort = (): void => stream.cancel();
    c.signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const raw of stream as AsyncIterable<unknown>) {
        yield messageIn<T>(schemas, responseType, raw);
      }
      this.report(c.op, start);
    } catch (err) {
      if (c.signal.aborted) {
        this.report(c.op, start);
        return;
      }
      const criErr = await toCriError(err, this.site(c.rpc, undefined, start));
      this.report(c.op, start, criErr);
      throw criErr;
    } finally {
      c.signal.removeEventListener("abort", onAbort);
      stream.cancel();
    }
  }

  /**
   * Asks whether a server-streaming RPC exists: opens it with a short deadline and cancels it as
   * soon as the runtime answers. UNIMPLEMENTED means no; a message, headers, a clean end or the
   * runtime holding the stream open until the deadline all mean yes.
   */
  async probeStream(c: { service: "RuntimeService"; rpc: string; op: string; request: object; timeoutMs: number }): Promise<boolean> {
    const start = performance.now();
    const { schemas } = loadCriProto();
    const method = methodOf(c.service, c.rpc);
    const wire = messageOut(schemas, messageName(method, "requestType"), c.request);
    const client = this.channel(c.rpc);
    try {
      const supported = await new Promise<boolean>((resolve, reject) => {
        let settled = false;
        const stream = client.makeServerStreamRequest<object, object>(
          method.path,
          method.requestSerialize,
          method.responseDeserialize,
          wire,
          new grpc.Metadata(),
          { deadline: systemClock.now() + c.timeoutMs },
        );
        const settle = (v: boolean | Error): void => {
          if (settled) return;
          settled = true;
          stream.cancel();
          if (v instanceof Error) reject(v);
          else resolve(v);
        };
        stream.on("metadata", () => settle(true));
        stream.on("data", () => settle(true));
        stream.on("end", () => settle(true));
        stream.on("error", (err: Error & { code?: number }) => {
          if (err.code === grpc.status.UNIMPLEMENTED) settle(false);
          else if (err.code === grpc.status.DEADLINE_EXCEEDED) settle(true);
          else settle(err);
        });
      });
      this.report(c.op, start);
      return supported;
    } catch (err) {
      const criErr = await toCriError(err, this.site(c.rpc, c.timeoutMs, start));
      this.report(c.op, start, criErr);
      throw criErr;
    }
  }
}

function abortError(rpc: string, endpoint: string, signal: AbortSignal, cause?: unknown): CriError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : "aborted";
  return new CriError("Unknown", `CRI ${rpc} on ${endpoint}: cancelled by caller (${why})`, {
    rpc,
    endpoint,
    grpcCode: grpc.status.CANCELLED,
    details: why,
    cause: cause ?? reason,
  });
}
