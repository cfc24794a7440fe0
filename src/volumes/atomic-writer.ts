/**
 * Projects a set of files into a volume directory so that a reader never sees a mix of old and new
 * contents — the layout upstream's kubelet uses and that programs watching ConfigMap volumes expect:
 *
 *   <dir>/..2026_01_01_10_00_00.abc123/   the files of one version (a "timestamped dir")
 *   <dir>/..data -> ..2026_01_01_10_00_00.abc123   swapped by renaming a new symlink over it
 *   <dir>/<key> -> ..data/<key>           one visible symlink per top-level name
 *
 * An update writes a new timestamped dir, renames `..data_tmp` over `..data` (atomic), adds and
 * removes the visible symlinks, and deletes the old timestamped dir. Names starting with `..` are
 * reserved. Not safe for concurrent calls on the same dir: the caller serializes.
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Clock } from "../util/clock.js";
import { KubeletError } from "../util/errors.js";

export interface FileProjection {
  data: Buffer;
  /** Permission bits (0o644, ...). */
  mode: number;
}

/** Relative path → contents. */
export type Payload = Map<string, FileProjection>;

export const DATA_LINK = "..data";
const DATA_TMP_LINK = "..data_tmp";
const MAX_NAME = 255;
const MAX_PATH = 4096;
const TIMESTAMPED = /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\./;

/** Checks and cleans one payload path: relative, no `..` element, not starting with `..`, sane lengths. */
export function cleanPayloadPath(path: string): string {
  if (path === "") throw new KubeletError("InvalidPath", "invalid path: must not be empty");
  if (path.startsWith("/")) throw new KubeletError("InvalidPath", `invalid path ${JSON.stringify(path)}: must be relative`);
  if (path.length > MAX_PATH) throw new KubeletError("InvalidPath", `invalid path ${JSON.stringify(path)}: must be less than or equal to ${MAX_PATH} characters`);
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0) throw new KubeletError("InvalidPath", `invalid path ${JSON.stringify(path)}: must name a file`);
  for (const p of parts) {
    if (p === "..") throw new KubeletError("InvalidPath", `invalid path ${JSON.stringify(path)}: must not contain '..'`);
    if (p.length > MAX_NAME) throw new KubeletError("InvalidPath", `invalid path ${JSON.stringify(path)}: element must be less than or equal to ${MAX_NAME} characters`);
  }
  if (parts[0]?.startsWith("..")) throw new KubeletError("InvalidPath", `invalid path ${JSON.stringify(path)}: must not start with '..'`);
  return parts.join("/");
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** `..YYYY_MM_DD_HH_MM_SS.` in UTC, the prefix of a timestamped dir. */
export function timestampPrefix(ms: number): string {
  const d = new Date(ms);
  return `..${d.getUTCFullYear()}_${pad(d.getUTCMonth() + 1)}_${pad(d.getUTCDate())}_${pad(d.getUTCHours())}_${pad(d.getUTCMinutes())}_${pad(d.getUTCSeconds())}.`;
}

async function readTree(root: string, rel = "", out: Payload = new Map()): Promise<Payload> {
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await readTree(root, p, out);
    else if (e.isFile()) {
      const full = join(root, p);
      const [data, st] = await Promise.all([readFile(full), stat(full)]);
      out.set(p, { data, mode: st.mode & 0o7777 });
    }
  }
  return out;
}

function samePayload(a: Payload, b: Payload): boolean {
  if (a.size !== b.size) return false;
  for (const [p, f] of a) {
    const g = b.get(p);
    if (!g || g.mode !== f.mode || !g.data.equals(f.data)) return false;
  }
  return true;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Writes `payload` into `dir` (which must exist) atomically; returns whether anything changed.
 * `clock` names the timestamped directory.
 */
export async function writeAtomically(dir: string, payload: Payload, clock: Clock): Promise<boolean> {
  const clean: Payload = new Map();
  for (const [p, f] of payload) clean.set(cleanPayloadPath(p), f);
  const oldName = await readlink(join(dir, DATA_LINK)).catch(() => undefined);
  let changed = true;
  if (oldName !== undefined) {
    const current = await readTree(join(dir, oldName)).catch(() => undefined);
    if (current && samePayload(current, clean)) changed = false;
  }
  let newName = oldName ?? "";
  if (changed) {
    const tsDir = await mkdtemp(join(dir, timestampPrefix(clock.now())));
    await chmod(tsDir, 0o755);
    for (const [p, f] of clean) {
      const file = join(tsDir, p);
      await mkdir(dirname(file), { recursive: true, mode: 0o755 });
      await writeFile(file, f.data, { mode: f.mode });
      await chmod(file, f.mode);
    }
    newName = tsDir.slice(dir.length + 1);
    await rm(join(dir, DATA_TMP_LINK), { force: true });
    await symlink(newName, join(dir, DATA_TMP_LINK));
    await rename(join(dir, DATA_TMP_LINK), join(dir, DATA_LINK));
  }
  await syncVisibleLinks(dir, clean);
  if (changed) {
    for (const e of await readdir(dir)) {
      if (TIMESTAMPED.test(e) && e !== newName) await rm(join(dir, e), { recursive: true, force: true });
    }
  }
  return changed;
}

/** One `<top> -> ..data/<top>` symlink per top-level name of the payload; stale ones removed. */
async function syncVisibleLinks(dir: string, payload: Payload): Promise<void> {
  const tops = new Set([...payload.keys()].map((p) => p.split("/")[0] ?? p));
  for (const top of tops) {
    const link = join(dir, top);
    if (!(await exists(link))) await symlink(join(DATA_LINK, top), link);
  }
  for (const e of await readdir(dir)) {
    if (e.startsWith("..") || tops.has(e)) continue;
    const target = await readlink(join(dir, e)).catch(() => undefined);
    if (target?.startsWith(`${DATA_LINK}/`)) await unlink(join(dir, e));
  }
}
