/**
 * Termination messages: each container gets a host file, bind-mounted at its
 * terminationMessagePath, under `<rootDir>/pods/<uid>/containers/<name>/<random>`. Once the
 * container exited its content (at most 4096 bytes) becomes terminated.message; with
 * FallbackToLogsOnError an empty file and a non-zero exit code fall back to the log's tail (the
 * last 80 lines, at most 2048 bytes). The host file is found again from the container's mounts,
 * so it survives a kubelet restart.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { Mount } from "../cri/types.js";
import { ANN_TERMINATION_MESSAGE_PATH, ANN_TERMINATION_MESSAGE_POLICY } from "../api/labels.js";
import { parseCriLogLine } from "../server/logs-reader.js";

export const MAX_MESSAGE_BYTES = 4096;
export const MAX_LOG_LINES = 80;
export const MAX_LOG_BYTES = 2048;
/** Bytes read from the end of a log file to find its last lines. */
const LOG_TAIL_WINDOW = 256 * 1024;
/** Exited containers never change: their messages are read once. */
const CACHE_SIZE = 4096;

/** What of a container's CRI status the message needs. */
export interface ExitedContainer {
  id: string;
  exitCode: number;
  logPath: string;
  mounts: Mount[];
  annotations: Record<string, string>;
}

/** Creates the container's empty message file and returns the mount for it (none when the path is empty). */
export async function terminationMessageMount(rootDir: string, pod: V1Pod, c: V1Container): Promise<Mount | undefined> {
  const containerPath = c.terminationMessagePath ?? "/dev/termination-log";
  if (containerPath === "") return undefined;
  const dir = join(rootDir, "pods", pod.metadata?.uid ?? "", "containers", c.name);
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const hostPath = join(dir, randomBytes(4).toString("hex"));
  await writeFile(hostPath, "", { mode: 0o666 });
  // The umask may have narrowed the mode; any user in the container must be able to write it.
  await chmod(hostPath, 0o666);
  return { containerPath, hostPath };
}

async function readHead(path: string, max: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(max);
    const { bytesRead } = await fh.read(buf, 0, max, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The last `lines` log lines of a CRI log file, joined, cut to `maxBytes`. */
export async function logTail(path: string, lines = MAX_LOG_LINES, maxBytes = MAX_LOG_BYTES): Promise<string> {
  const fh = await open(path, "r");
  let raw: Buffer;
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - LOG_TAIL_WINDOW);
    raw = Buffer.alloc(size - start);
    await fh.read(raw, 0, raw.length, start);
    if (start > 0) raw = raw.subarray(raw.indexOf(0x0a) + 1);
  } finally {
    await fh.close();
  }
  const out: Buffer[] = [];
  let current: Buffer[] = [];
  const parts = raw.toString("latin1").split("\n");
  const lastHadNewline = parts[parts.length - 1] === "";
  if (lastHadNewline) parts.pop();
  parts.forEach((p, i) => {
    const msg = parseCriLogLine(Buffer.from(p, "latin1"), i < parts.length - 1 || lastHadNewline);
    if (!msg) return;
    current.push(msg.content);
    if (msg.content.at(-1) === 0x0a) {
      out.push(Buffer.concat(current));
      current = [];
    }
  });
  if (current.length > 0) out.push(Buffer.concat(current));
  return Buffer.concat(out.slice(-lines)).subarray(0, maxBytes).toString("utf8");
}

/** Reads messages of exited containers, once per container. */
export function createTerminationMessages(): { read(c: ExitedContainer): Promise<string> } {
  const cache = new Map<string, string>();
  const readUncached = async (c: ExitedContainer): Promise<string> => {
    const path = c.annotations[ANN_TERMINATION_MESSAGE_PATH] ?? "";
    const policy = c.annotations[ANN_TERMINATION_MESSAGE_POLICY] ?? "File";
    const mount = path === "" ? undefined : c.mounts.find((m) => m.containerPath === path);
    let message = "";
    if (mount) message = (await readHead(mount.hostPath, MAX_MESSAGE_BYTES).catch(() => Buffer.alloc(0))).toString("utf8");
    if (message === "" && policy === "FallbackToLogsOnError" && c.exitCode !== 0 && c.logPath !== "") {
      message = await logTail(c.logPath).catch(() => "");
    }
    return message;
  };
  return {
    async read(c) {
      const hit = cache.get(c.id);
      if (hit !== undefined) return hit;
      const message = await readUncached(c);
      if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value ?? "");
      cache.set(c.id, message);
      return message;
    },
  };
}
