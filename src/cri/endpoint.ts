import { isAbsolute } from "node:path";
import { CriError } from "./errors.js";

export interface CriEndpoint {
  /** The canonical form, `unix:///abs/path`; used in messages and as the gRPC target. */
  url: string;
  /** The socket's absolute path on this machine. */
  socketPath: string;
}

/**
 * Accepts the forms operators write for --container-runtime-endpoint: `unix:///path`,
 * `unix:/path` and a bare absolute `/path`. Anything else (tcp://, npipe://, a relative path,
 * `unix://host/path`) is refused with a message that shows the accepted form.
 */
export function parseEndpoint(endpoint: string): CriEndpoint {
  const raw = endpoint.trim();
  let path: string | undefined;
  if (raw.startsWith("unix://")) {
    const rest = raw.slice("unix://".length);
    path = rest.startsWith("/") ? rest : undefined;
  } else if (raw.startsWith("unix:")) {
    path = raw.slice("unix:".length);
  } else if (!raw.includes("://")) {
    path = raw;
  }
  if (path === undefined || path === "" || !isAbsolute(path)) {
    throw new CriError(
      "InvalidArgument",
      `CRI endpoint ${JSON.stringify(endpoint)} is not supported: use a unix socket with an absolute path, e.g. unix:///run/containerd/containerd.sock`,
      { rpc: "", endpoint },
    );
  }
  const socketPath = path.replace(/\/{2,}/g, "/");
  return { url: `unix://${socketPath}`, socketPath };
}
