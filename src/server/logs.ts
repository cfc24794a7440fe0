/**
 * /containerLogs/{ns}/{pod}/{container}: a container's log with upstream's PodLogOptions, and
 * /logs/: files and directory listings under the node's log directory, with no way out of it.
 */
import { constants as fsConstants } from "node:fs";
import { open, readdir, readlink, realpath, stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import type { RuntimeService } from "../cri/types.js";
import { podLogDirectory } from "../containers/sandbox.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { HttpError, type Handler } from "./http.js";
import { parseTimestamp, readContainerLog, type DirWatch } from "./logs-reader.js";

/** A desired pod by namespace and name, with its latest status. */
export type PodByName = (namespace: string, name: string) => V1Pod | undefined;

export interface LogQuery {
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  tailLines?: number;
  limitBytes?: number;
  sinceSeconds?: number;
  sinceNs?: bigint;
}

/** Go's query-to-bool conversion: absent is false; "0", "f", "false" are false; anything else is true. */
function queryBool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null) return false;
  return !(v === "0" || v.toLowerCase() === "f" || v.toLowerCase() === "false");
}

function queryInt(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (!/^[+-]?\d+$/.test(v)) throw new HttpError(400, `{"message": "Unable to decode query."}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new HttpError(400, `{"message": "Unable to decode query."}`);
  return n;
}

/** Decodes and validates PodLogOptions as upstream does: 400 when undecodable, 422 when invalid. */
export function parseLogQuery(query: URLSearchParams, nowMs: number): LogQuery {
  const q = new URLSearchParams(query);
  const tail = q.get("tail");
  if (tail !== null && tail !== "") {
    q.set("tailLines", tail);
    if (tail === "all") q.delete("tailLines");
  }
  const out: LogQuery = { follow: queryBool(q, "follow"), previous: queryBool(q, "previous"), timestamps: queryBool(q, "timestamps") };
  const tailLines = queryInt(q, "tailLines");
  const limitBytes = queryInt(q, "limitBytes");
  const sinceSeconds = queryInt(q, "sinceSeconds");
  const sinceTime = q.get("sinceTime");
  let sinceTimeNs: bigint | undefined;
  if (sinceTime !== null && sinceTime !== "") {
    const t = parseTimestamp(sinceTime);
    if (!t) throw new HttpError(400, `{"message": "Unable to decode query."}`);
    sinceTimeNs = t.timeNs;
  }
  const stream = q.get("stream");
  const invalid =
    (tailLines !== undefined && tailLines < 0) ||
    (limitBytes !== undefined && limitBytes < 1) ||
    (sinceSeconds !== undefined && sinceSeconds < 1) ||
    (sinceSeconds !== undefined && sinceTimeNs !== undefined) ||
    (stream !== null && stream !== "All");
  if (invalid) throw new HttpError(422, `{"message": "Invalid request."}`);
  if (tailLines !== undefined) out.tailLines = tailLines;
  if (limitBytes !== undefined) out.limitBytes = limitBytes;
  if (sinceSeconds !== undefined) {
    out.sinceSeconds = sinceSeconds;
    out.sinceNs = BigInt(nowMs - sinceSeconds * 1000) * 1_000_000n;
  }
  if (sinceTimeNs !== undefined) out.sinceNs = sinceTimeNs;
  return out;
}

/** The three names of a /containerLogs path, empty ones kept, so missing ones get upstream's 400s. */
export function containerLogsPath(pathname: string): { namespace: string; pod: string; container: string } {
  const rest = pathname.replace(/^\/containerLogs\/?/, "");
  const parts = rest.split("/").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new HttpError(400, `malformed path segment ${JSON.stringify(s)}`);
    }
  });
  const [namespace = "", pod = "", container = "", ...extra] = parts;
  if (pod === "") throw new HttpError(400, `{"message": "Missing podID."}`);
  if (container === "") throw new HttpError(400, `{"message": "Missing container name."}`);
  if (namespace === "") throw new HttpError(400, `{"message": "Missing podNamespace."}`);
  if (extra.some((s) => s !== "")) throw new HttpError(404, "404 page not found");
  return { namespace, pod, container };
}

function allStatuses(pod: V1Pod): V1ContainerStatus[] {
  const s = pod.status ?? {};
  return [...(s.containerStatuses ?? []), ...(s.initContainerStatuses ?? []), ...(s.ephemeralContainerStatuses ?? [])];
}

function hasContainer(pod: V1Pod, name: string): boolean {
  const spec = pod.spec;
  return [...(spec?.containers ?? []), ...(spec?.initContainers ?? []), ...(spec?.ephemeralContainers ?? [])].some((c) => c.name === name);
}

/** Which container instance to read, as upstream's validateContainerLogStatus decides; 400 when none. */
export function logContainer(pod: V1Pod, name: string, previous: boolean): { id: string; restartCount: number } {
  const podName = pod.metadata?.name ?? "";
  const cs = allStatuses(pod).find((s) => s.name === name);
  const where = `container "${name}" in pod "${podName}"`;
  if (!cs) throw new HttpError(400, `${where} is not available`);
  const last = cs.lastState?.terminated;
  const { waiting, running, terminated } = cs.state ?? {};
  const id = (cid: string | undefined): string => (cid ?? "").replace(/^[a-z0-9-]+:\/\//, "");
  const restarts = cs.restartCount ?? 0;
  if (previous) {
    if (!last?.containerID) throw new HttpError(400, `previous terminated ${where} not found`);
    return { id: id(last.containerID), restartCount: Math.max(0, restarts - 1) };
  }
  if (running) return { id: id(cs.containerID), restartCount: restarts };
  if (terminated) {
    if (terminated.containerID) return { id: id(terminated.containerID), restartCount: restarts };
    if (last?.containerID) return { id: id(last.containerID), restartCount: Math.max(0, restarts - 1) };
    throw new HttpError(400, `${where} is terminated`);
  }
  if (last) {
    if (!last.containerID) throw new HttpError(400, `${where} is terminated`);
    return { id: id(last.containerID), restartCount: Math.max(0, restarts - 1) };
  }
  if (waiting) {
    if (waiting.reason === "ErrImagePull") throw new HttpError(400, `${where} is waiting to start: image can't be pulled`);
    if (waiting.reason === "ImagePullBackOff") throw new HttpError(400, `${where} is waiting to start: trying and failing to pull image`);
    throw new HttpError(400, `${where} is waiting to start: ${waiting.reason ?? ""}`);
  }
  throw new HttpError(400, `${where} is waiting to start - no logs yet`);
}

export interface ContainerLogsDeps {
  podByName: PodByName;
  runtime: Pick<RuntimeService, "containerStatus">;
  podLogsDir: string;
  clock: Clock;
  logger: Logger;
  watch?: DirWatch;
  pollMs?: number;
  /** A follow whose client stops reading for this long is ended (default 5 min). */
  stalledWriteTimeoutMs?: number;
}

export function containerLogsHandler(deps: ContainerLogsDeps): Handler {
  return async (req, res, ctx) => {
    const { namespace, pod: podName, container } = containerLogsPath(ctx.url.pathname);
    const opts = parseLogQuery(ctx.url.searchParams, deps.clock.now());
    const pod = deps.podByName(namespace, podName);
    if (!pod) throw new HttpError(404, `pod "${podName}" does not exist`);
    if (!hasContainer(pod, container)) throw new HttpError(404, `container "${container}" not found in pod "${podName}"`);
    const target = logContainer(pod, container, opts.previous);
    const path = await logPathOf(deps, pod, container, target);
    try {
      await stat(path);
    } catch (err) {
      throw new HttpError(400, `failed to open log file "${path}": ${errorMessage(err)}`);
    }
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    if (opts.follow) req.socket.setTimeout(0);
    res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8", "Transfer-Encoding": "chunked", "X-Content-Type-Options": "nosniff" });
    res.flushHeaders();
    await readContainerLog({
      path,
      follow: opts.follow,
      tailLines: opts.tailLines,
      sinceNs: opts.sinceNs,
      limitBytes: opts.limitBytes,
      timestamps: opts.timestamps,
      signal: abort.signal,
      sink: (chunk) => writeWithBackpressure(res, chunk, { clock: deps.clock, timeoutMs: deps.stalledWriteTimeoutMs ?? 300_000, signal: abort.signal }),
      isRunning: async () => {
        try {
          return (await deps.runtime.containerStatus(target.id)).status.state === "CONTAINER_RUNNING";
        } catch {
          return false;
        }
      },
      clock: deps.clock,
      ...(deps.watch ? { watch: deps.watch } : {}),
      ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
      onBadLine: (line) => deps.logger.v(4).info("skipping a log line not in the CRI format", { path, line: line.subarray(0, 200).toString() }),
    });
    if (!res.writableEnded && !abort.signal.aborted) res.end();
  };
}

async function logPathOf(deps: ContainerLogsDeps, pod: V1Pod, container: string, target: { id: string; restartCount: number }): Promise<string> {
  try {
    const p = (await deps.runtime.containerStatus(target.id)).status.logPath;
    if (p) return p;
  } catch {
    // Removed from the runtime: its file may still be there.
  }
  return join(podLogDirectory(deps.podLogsDir, pod), container, `${target.restartCount}.log`);
}

/** Writes a chunk; waits for drain, ending the response when the client stalls past the timeout. */
export async function writeWithBackpressure(res: ServerResponse, chunk: Buffer, o: { clock: Clock; timeoutMs: number; signal: AbortSignal }): Promise<void> {
  if (o.signal.aborted || res.destroyed) return;
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      cancel();
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    const cancel = o.clock.setTimer(o.timeoutMs, () => {
      res.destroy();
      done();
    });
    res.on("drain", done);
    res.on("close", done);
  });
}

// ---- /logs/ ----

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The path below /logs/ as safe segments; 400 for `..` (also encoded), NUL or bad escapes. */
export function systemLogSegments(pathname: string): string[] {
  const rest = pathname.replace(/^\/logs\/?/, "");
  const decoded = rest.split("/").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new HttpError(400, "invalid URL path");
    }
  });
  const segs = decoded.join("/").split("/");
  if (segs.some((s) => s === ".." || s.includes("\0") || s.includes("\\"))) throw new HttpError(400, "invalid URL path");
  return segs.filter((s) => s !== "" && s !== ".");
}

function within(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith("/") ? root : root + "/");
}

export interface SystemLogsOptions {
  /** The directory served; /var/log on a node. */
  root: string;
}

export function systemLogsHandler(opts: SystemLogsOptions): Handler {
  return async (req, res, ctx) => {
    const segs = systemLogSegments(ctx.url.pathname);
    const root = await realpath(opts.root).catch(() => {
      throw new HttpError(404, "404 page not found");
    });
    let real: string;
    try {
      real = await realpath(join(root, ...segs));
    } catch {
      throw new HttpError(404, "404 page not found");
    }
    if (!within(root, real)) throw new HttpError(403, `Forbidden: ${ctx.url.pathname} leads out of the log directory`);
    const st = await stat(real);
    if (st.isDirectory()) {
      if (!ctx.url.pathname.endsWith("/")) {
        res.writeHead(301, { Location: `${ctx.url.pathname}/`, "Content-Length": 0 });
        res.end();
        return;
      }
      await sendListing(res, real);
      return;
    }
    if (!st.isFile()) throw new HttpError(403, `Forbidden: ${ctx.url.pathname} is not a regular file`);
    await sendFile(req.socket, res, real, root);
  };
}

async function sendListing(res: ServerResponse, dir: string): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const lines = entries.map((e) => {
    const name = e.isDirectory() ? `${e.name}/` : e.name;
    return `<a href="${htmlEscape(encodeURIComponent(e.name) + (e.isDirectory() ? "/" : ""))}">${htmlEscape(name)}</a>`;
  });
  const body = `<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n${lines.map((l) => l + "\n").join("")}</pre>\n`;
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

function sniff(head: Buffer): string {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "application/x-gzip";
  return head.includes(0) ? "application/octet-stream" : "text/plain; charset=utf-8";
}

async function sendFile(socket: { setTimeout(ms: number): unknown }, res: ServerResponse, path: string, root: string): Promise<void> {
  const fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK).catch((err: unknown) => {
    throw new HttpError(403, `Forbidden: cannot open ${path}: ${errorMessage(err)}`);
  });
  try {
    // What was opened is what is checked: a path swapped after realpath cannot lead out.
    const opened = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => path);
    const st = await fh.stat();
    if (!within(root, opened) || !st.isFile()) throw new HttpError(403, "Forbidden: the file left the log directory");
    const head = Buffer.alloc(Math.min(512, st.size));
    await fh.read(head, 0, head.length, 0);
    res.writeHead(200, { "Content-Type": sniff(head), "Content-Length": st.size, "X-Content-Type-Options": "nosniff" });
    if (st.size === 0) {
      res.end();
      return;
    }
    // A download of a big file takes long; a client that stops reading is dropped after 2 minutes.
    socket.setTimeout(120_000);
    await pipeline(fh.createReadStream({ start: 0, end: st.size - 1, autoClose: false }), res);
  } finally {
    await fh.close();
  }
}
