import { stat } from "node:fs/promises";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { KubeletError } from "../util/errors.js";
import type { CriErrorCode } from "./types.js";

/**
 * A failed CRI call. `code` is the stable CriErrorCode; `rpc` and `endpoint` say which call on which
 * runtime, `grpcCode` keeps the raw gRPC status (e.g. 1 CANCELLED, 9 FAILED_PRECONDITION) for the
 * rare caller that needs more than the coarse code, and `details` is the runtime's own text.
 */
export class CriError extends KubeletError {
  declare readonly code: CriErrorCode;
  readonly rpc: string;
  readonly endpoint: string;
  readonly grpcCode: number | undefined;
  readonly details: string;

  constructor(
    code: CriErrorCode,
    message: string,
    info: { rpc: string; endpoint: string; grpcCode?: number; details?: string; cause?: unknown },
  ) {
    super(code, message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = "CriError";
    this.rpc = info.rpc;
    this.endpoint = info.endpoint;
    this.grpcCode = info.grpcCode;
    this.details = info.details ?? "";
  }
}

export function isCriError(err: unknown, code?: CriErrorCode): err is CriError {
  return err instanceof CriError && (code === undefined || err.code === code);
}

export function isNotFound(err: unknown): boolean {
  return isCriError(err, "NotFound");
}

export function isUnimplemented(err: unknown): boolean {
  return isCriError(err, "Unimplemented");
}

const CODES = new Map<number, CriErrorCode>([
  [GrpcStatus.UNAVAILABLE, "Unavailable"],
  [GrpcStatus.DEADLINE_EXCEEDED, "DeadlineExceeded"],
  [GrpcStatus.NOT_FOUND, "NotFound"],
  [GrpcStatus.UNIMPLEMENTED, "Unimplemented"],
  [GrpcStatus.INVALID_ARGUMENT, "InvalidArgument"],
]);
const CANCELLED: number = GrpcStatus.CANCELLED;

/** The CRI code for a gRPC status code. */
export function criCodeOf(grpcCode: number): CriErrorCode {
  return CODES.get(grpcCode) ?? "Unknown";
}

interface GrpcLikeError {
  code: number;
  details: string;
}

function isGrpcLikeError(err: unknown): err is GrpcLikeError & Error {
  return (
    err instanceof Error &&
    typeof (err as Partial<GrpcLikeError>).code === "number" &&
    typeof (err as Partial<GrpcLikeError>).details === "string"
  );
}

export interface CallSite {
  rpc: string;
  endpoint: string;
  socketPath: string;
  timeoutMs: number | undefined;
  /** How long the call ran; tells our own deadline apart from a runtime-reported timeout. */
  elapsedMs?: number;
}

/** Why the socket cannot be used, or undefined when it looks fine (exists and is a socket). */
async function socketProblem(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    return st.isSocket() ? undefined : `${path} exists but is not a socket`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return `socket ${path} does not exist`;
    if (code === "EACCES") return `no permission to reach socket ${path}`;
    return `cannot stat socket ${path}: ${(err as Error).message}`;
  }
}

/**
 * Turns whatever a gRPC call failed with into a CriError whose message names the RPC and the
 * endpoint and, for an unreachable runtime, says what to check.
 */
export async function toCriError(err: unknown, site: CallSite): Promise<CriError> {
  if (err instanceof CriError) return err;
  const prefix = `CRI ${site.rpc} on ${site.endpoint}`;
  if (!isGrpcLikeError(err)) {
    const text = err instanceof Error ? err.message : String(err);
    return new CriError("Unknown", `${prefix}: ${text}`, { rpc: site.rpc, endpoint: site.endpoint, details: text, cause: err });
  }
  const code = criCodeOf(err.code);
  const details = err.details;
  let text: string;
  switch (code) {
    case "Unavailable": {
      const problem = await socketProblem(site.socketPath);
      text = `runtime unavailable (is containerd running? ${problem ?? details})`;
      break;
    }
    case "DeadlineExceeded":
      // Our deadline passing, or the runtime reporting a timeout of its own (ExecSync does).
      text =
        site.timeoutMs !== undefined && (site.elapsedMs === undefined || site.elapsedMs >= site.timeoutMs - 20)
          ? `no answer within ${site.timeoutMs}ms (deadline exceeded)`
          : `deadline exceeded: ${details}`;
      break;
    case "Unimplemented":
      text = `not implemented by this runtime (${details})`;
      break;
    default:
      text = err.code === CANCELLED ? `cancelled: ${details}` : details;
  }
  return new CriError(code, `${prefix}: ${text}`, {
    rpc: site.rpc,
    endpoint: site.endpoint,
    grpcCode: err.code,
    details,
    cause: err,
  });
}
