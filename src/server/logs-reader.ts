/**
 * Reading container logs in the CRI format (`<RFC3339Nano> <stdout|stderr> <P|F> <text>`, P = a
 * partial line continued by the next) with upstream's options: tail, since, limitBytes,
 * timestamps, and follow, which keeps reading new data and across rotation (the file replaced
 * or renamed: the old one is drained, the new one opened) until the container stops or the
 * reader is aborted.
 */
import { watch as fsWatch } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { Clock } from "../util/clock.js";

export interface LogMessage {
  /** The timestamp as upstream prints it: RFC 3339 with exactly nine fractional digits. */
  timestamp: string;
  timeNs: bigint;
  stream: "stdout" | "stderr";
  /** The text; a full line keeps its newline, a partial one has none. */
  content: Buffer;
}

const TS_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** Parses an RFC 3339 timestamp with up to nanoseconds; undefined when it is not one. */
export function parseTimestamp(text: string): { timeNs: bigint; fixed: string } | undefined {
  const m = TS_RE.exec(text);
  if (!m) return undefined;
  const base = m[1] ?? "";
  const frac = (m[2] ?? "").padEnd(9, "0");
  const zone = m[3] === "+00:00" || m[3] === "-00:00" ? "Z" : (m[3] ?? "Z");
  const ms = Date.parse(`${base}${zone}`);
  if (Number.isNaN(ms)) return undefined;
  return { timeNs: BigInt(ms) * 1_000_000n + BigInt(frac), fixed: `${base}.${frac}${zone}` };
}

/** Parses one line of a CRI log file (without its newline). `hadNewline` says whether the file had one. */
export function parseCriLogLine(line: Buffer, hadNewline: boolean): LogMessage | undefined {
  const s1 = line.indexOf(0x20);
  if (s1 < 0) return undefined;
  const ts = parseTimestamp(line.subarray(0, s1).toString("latin1"));
  if (!ts) return undefined;
  const s2 = line.indexOf(0x20, s1 + 1);
  if (s2 < 0) return undefined;
  const stream = line.subarray(s1 + 1, s2).toString("latin1");
  if (stream !== "stdout" && stream !== "stderr") return undefined;
  const s3 = line.indexOf(0x20, s2 + 1);
  // The tag field is forward compatible: `P`, `F`, or `P:...`.
  const tagEnd = s3 < 0 ? line.length : s3;
  const tag = line.subarray(s2 + 1, tagEnd).toString("latin1").split(":")[0];
  if (tag === "" || s3 < 0) {
    if (s3 < 0 && tag !== "") return { timestamp: ts.fixed, timeNs: ts.timeNs, stream, content: hadNewline && tag !== "P" ? Buffer.from("\n") : Buffer.alloc(0) };
    return undefined;
  }
  const text = line.subarray(s3 + 1);
  const partial = tag === "P";
  const content = partial || !hadNewline ? Buffer.from(text) : Buffer.concat([text, Buffer.from("\n")]);
  return { timestamp: ts.fixed, timeNs: ts.timeNs, stream, content };
}

export interface LogWriterOptions {
  timestamps: boolean;
  /** Messages older than this are skipped. */
  sinceNs?: bigint | undefined;
  /** Stop after this many bytes of output. */
  limitBytes?: number | undefined;
}

/**
 * Turns messages into output: timestamps only at the start of a logical line (a partial line's
 * continuation gets none), since filter, byte limit. Output is batched; `flush` hands it on.
 */
export class LogWriter {
  private remain: number;
  private atLineStart = true;
  private batch: Buffer[] = [];
  private batchBytes = 0;

  constructor(
    private readonly opts: LogWriterOptions,
    private readonly sink: (chunk: Buffer) => Promise<void>,
  ) {
    this.remain = opts.limitBytes ?? Number.POSITIVE_INFINITY;
  }

  /** Whether the byte limit is used up. */
  get done(): boolean {
    return this.remain <= 0;
  }

  /** Queues one message; returns false once the limit is reached. */
  write(msg: LogMessage): boolean {
    if (this.done) return false;
    if (this.opts.sinceNs !== undefined && msg.timeNs < this.opts.sinceNs) return true;
    let out = msg.content;
    if (this.opts.timestamps && this.atLineStart) out = Buffer.concat([Buffer.from(msg.timestamp + " "), out]);
    this.atLineStart = msg.content.length > 0 && msg.content[msg.content.length - 1] === 0x0a;
    if (out.length > this.remain) out = out.subarray(0, this.remain);
    this.remain -= out.length;
    if (out.length > 0) {
      this.batch.push(out);
      this.batchBytes += out.length;
    }
    return !this.done;
  }

  pendingBytes(): number {
    return this.batchBytes;
  }

  async flush(): Promise<void> {
    if (this.batchBytes === 0) return;
    const chunk = this.batch.length === 1 ? (this.batch[0] ?? Buffer.alloc(0)) : Buffer.concat(this.batch);
    this.batch = [];
    this.batchBytes = 0;
    await this.sink(chunk);
  }
}

const MAX_PENDING_LINE = 1 << 20;

/** Splits a byte stream into lines; keeps an incomplete last line until more data (or the end). */
export class LineSplitter {
  private pending: Buffer = Buffer.alloc(0);

  push(data: Buffer): { line: Buffer; newline: boolean }[] {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    const out: { line: Buffer; newline: boolean }[] = [];
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      out.push({ line: buf.subarray(start, nl), newline: true });
      start = nl + 1;
    }
    this.pending = Buffer.from(buf.subarray(start));
    if (this.pending.length > MAX_PENDING_LINE) {
      out.push({ line: this.pending, newline: false });
      this.pending = Buffer.alloc(0);
    }
    return out;
  }

  /** The incomplete last line, if any, and forgets it. */
  flush(): Buffer | undefined {
    if (this.pending.length === 0) return undefined;
    const p = this.pending;
    this.pending = Buffer.alloc(0);
    return p;
  }
}

/** Byte offset where the last `n` lines of the file start (upstream's FindTailLineStartIndex). */
export async function tailStartOffset(fh: FileHandle, n: number): Promise<number> {
  if (n < 0) return 0;
  const size = (await fh.stat()).size;
  const block = 64 * 1024;
  let count = 0;
  let right = size;
  while (right > 0) {
    const left = Math.max(0, right - block);
    const buf = Buffer.alloc(right - left);
    await fh.read(buf, 0, buf.length, left);
    // Walk this block from its end: the (n+1)-th newline from the end marks the start.
    for (let i = buf.length - 1; i >= 0; i--) {
      if (buf[i] !== 0x0a) continue;
      count++;
      if (count > n) return left + i + 1;
    }
    right = left;
  }
  return 0;
}

/** Watches a directory; calls onChange on any event in it. Returns a close function. */
export type DirWatch = (dir: string, onChange: () => void) => () => void;

export const fsDirWatch: DirWatch = (dir, onChange) => {
  const w = fsWatch(dir, { persistent: false }, () => onChange());
  w.on("error", () => onChange());
  return () => w.close();
};

export interface ReadLogOptions extends LogWriterOptions {
  path: string;
  tailLines?: number | undefined;
  follow: boolean;
  signal: AbortSignal;
  /** Receives output; resolves when the consumer can take more. */
  sink: (chunk: Buffer) => Promise<void>;
  /** follow only: whether the container still runs; at the end of the file a stopped container ends the stream. */
  isRunning: () => Promise<boolean>;
  clock: Clock;
  watch?: DirWatch;
  /** follow only: the longest wait between checks when no watch event arrives (default 1 s). */
  pollMs?: number;
  onBadLine?: (line: Buffer) => void;
}

const READ_BLOCK = 64 * 1024;

/** Streams a container's log file to `sink` as the options say. Resolves when done or aborted. */
export async function readContainerLog(o: ReadLogOptions): Promise<void> {
  let fh = await open(o.path, "r");
  let closeWatch: (() => void) | undefined;
  let wake: (() => void) | undefined;
  let changed = false;
  try {
    const writer = new LogWriter(o, o.sink);
    const lines = new LineSplitter();
    let offset = o.tailLines !== undefined ? await tailStartOffset(fh, o.tailLines) : 0;
    const buf = Buffer.alloc(READ_BLOCK);
    const emit = (line: Buffer, newline: boolean): boolean => {
      const msg = parseCriLogLine(line, newline);
      if (!msg) {
        if (line.length > 0) o.onBadLine?.(line);
        return true;
      }
      return writer.write(msg);
    };
    const readSome = async (): Promise<number | "limit"> => {
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      offset += bytesRead;
      for (const l of lines.push(buf.subarray(0, bytesRead))) {
        if (!emit(l.line, l.newline)) return "limit";
      }
      if (writer.pendingBytes() >= READ_BLOCK || bytesRead === 0) await writer.flush();
      return bytesRead;
    };
    const finish = async (): Promise<void> => {
      const rest = lines.flush();
      if (rest) emit(rest, false);
      await writer.flush();
    };
    for (;;) {
      if (o.signal.aborted) return;
      const n = await readSome();
      if (n === "limit") {
        await writer.flush();
        return;
      }
      if (n > 0) continue;
      if (!o.follow) return finish();
      if (!closeWatch) {
        closeWatch = (o.watch ?? fsDirWatch)(dirname(o.path), () => {
          changed = true;
          wake?.();
        });
      }
      changed = false;
      const next = await rotatedOrTruncated(fh, o.path, offset);
      if (next === "rotated") {
        await finish();
        await fh.close();
        fh = await open(o.path, "r");
        offset = 0;
        continue;
      }
      if (next === "truncated") {
        offset = 0;
        continue;
      }
      if (next === "grown") continue;
      if (!(await o.isRunning())) {
        // Whatever the container wrote before it stopped, then the end.
        while ((await readSome()) !== 0) if (writer.done) break;
        return finish();
      }
      if (changed) continue;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          cancel();
          o.signal.removeEventListener("abort", done);
          wake = undefined;
          resolve();
        };
        const cancel = o.clock.setTimer(o.pollMs ?? 1000, done);
        wake = done;
        o.signal.addEventListener("abort", done, { once: true });
      });
    }
  } finally {
    closeWatch?.();
    await fh.close();
  }
}

async function rotatedOrTruncated(fh: FileHandle, path: string, offset: number): Promise<"rotated" | "truncated" | "grown" | "same"> {
  const [cur, named] = await Promise.all([fh.stat(), stat(path).catch(() => undefined)]);
  if (named && (named.ino !== cur.ino || named.dev !== cur.dev)) return "rotated";
  if (cur.size < offset) return "truncated";
  if (cur.size > offset) return "grown";
  return "same";
}
