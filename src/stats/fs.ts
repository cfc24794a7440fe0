/**
 * Filesystem usage: capacity and free space of the filesystem under a path (statfs), and the
 * bytes and inodes a directory tree uses (a du walk, cached because it is the expensive part).
 */
import { lstat, readdir, statfs } from "node:fs/promises";
import { join } from "node:path";
import type { Clock } from "../util/clock.js";

export interface FsCapacity {
  capacity: number;
  /** Bytes available to unprivileged users. */
  available: number;
  /** Bytes in use on the whole filesystem (capacity minus free). */
  used: number;
  inodes: number;
  inodesFree: number;
  type: number;
}

export async function fsCapacity(path: string): Promise<FsCapacity | undefined> {
  try {
    const s = await statfs(path);
    return {
      capacity: s.blocks * s.bsize,
      available: s.bavail * s.bsize,
      used: (s.blocks - s.bfree) * s.bsize,
      inodes: s.files,
      inodesFree: s.ffree,
      type: s.type,
    };
  } catch {
    return undefined;
  }
}

export interface DirUsage {
  bytes: number;
  inodes: number;
}

/** Allocated bytes and inodes of a tree, each inode once (hard links), never following symlinks or leaving the device. */
export async function diskUsage(root: string, limit = 200_000): Promise<DirUsage | undefined> {
  let top;
  try {
    top = await lstat(root);
  } catch {
    return undefined;
  }
  const seen = new Set<number>();
  let bytes = 0;
  let inodes = 0;
  const visit = (st: { ino: number; blocks: number }): void => {
    if (seen.has(st.ino)) return;
    seen.add(st.ino);
    bytes += st.blocks * 512;
    inodes++;
  };
  visit(top);
  if (!top.isDirectory()) return { bytes, inodes };
  const stack = [root];
  while (stack.length > 0 && inodes < limit) {
    const dir = stack.pop() ?? "";
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      const p = join(dir, name);
      const st = await lstat(p).catch(() => undefined);
      if (!st || st.dev !== top.dev) continue;
      visit(st);
      if (st.isDirectory()) stack.push(p);
    }
  }
  return { bytes, inodes };
}

/** du results remembered for `ttlMs`, refreshed in the background so a scrape never waits for a walk twice. */
export interface DuCache {
  get(path: string): Promise<DirUsage | undefined>;
  /** Forgets paths not asked for since the last sweep. */
  sweep(): void;
}

export function createDuCache(clock: Clock, ttlMs: number): DuCache {
  const entries = new Map<string, { at: number; value: DirUsage | undefined; pending?: Promise<DirUsage | undefined>; used: boolean }>();
  const refresh = (path: string): Promise<DirUsage | undefined> => {
    const e = entries.get(path);
    if (e?.pending) return e.pending;
    const pending = diskUsage(path).then((value) => {
      entries.set(path, { at: clock.now(), value, used: true });
      return value;
    });
    entries.set(path, { at: e?.at ?? 0, value: e?.value, pending, used: true });
    return pending;
  };
  return {
    async get(path) {
      const e = entries.get(path);
      if (!e) return refresh(path);
      e.used = true;
      if (clock.now() - e.at >= ttlMs) {
        // Stale: answer with what we have and walk again behind the scenes.
        if (e.value === undefined) return refresh(path);
        void refresh(path);
      }
      return e.value;
    },
    sweep() {
      for (const [k, e] of entries) {
        if (!e.used && !e.pending) entries.delete(k);
        else e.used = false;
      }
    },
  };
}

export interface MountEntry {
  majorMinor: string;
  mountPoint: string;
  fsType: string;
  source: string;
}

/** /proc/self/mountinfo lines: `id parent maj:min root mountpoint opts [tags] - fstype source superopts`. */
export function parseMountinfo(text: string | undefined): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of (text ?? "").split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 6) continue;
    out.push({
      majorMinor: f[2] ?? "",
      mountPoint: unescapeMount(f[4] ?? ""),
      fsType: f[dash + 1] ?? "",
      source: unescapeMount(f[dash + 2] ?? ""),
    });
  }
  return out;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mount whose mount point is the longest prefix of `path`. */
export function mountOf(mounts: MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const under = mp === "/" || path === mp || path.startsWith(mp.endsWith("/") ? mp : mp + "/");
    if (under && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
