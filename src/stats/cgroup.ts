/**
 * Where the cgroup files are (v1, hybrid or v2) and what one cgroup's usage looks like once read.
 * The per-version readers are cgroup-v1.ts and cgroup-v2.ts; readCgroup (cgroup-read.ts) picks one.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

export type V1Controller = "cpu" | "cpuacct" | "memory" | "blkio" | "pids" | "cpuset";
const V1_CONTROLLERS: V1Controller[] = ["cpu", "cpuacct", "memory", "blkio", "pids", "cpuset"];

export type CgroupLayout =
  /** One hierarchy per controller; `unified` is the cgroup2 mount of a hybrid setup (PSI lives there). */
  | { version: 1; mounts: Partial<Record<V1Controller, string>>; unified?: string }
  | { version: 2; root: string };

export interface CpuUsage {
  /** Cumulative CPU time, nanoseconds. */
  usageNs: number;
  userNs: number;
  systemNs: number;
  periods: number;
  throttledPeriods: number;
  throttledNs: number;
}

export interface MemoryUsage {
  usage: number;
  maxUsage: number;
  /** usage minus inactive file pages: what the kubelet and metrics-server call the working set. */
  workingSet: number;
  rss: number;
  cache: number;
  swap: number;
  mappedFile: number;
  kernel: number;
  activeFile: number;
  inactiveFile: number;
  failcnt: number;
  /** Fault counters of this cgroup alone and of its whole subtree (equal on v2). */
  pgfault: number;
  pgmajfault: number;
  hierarchicalPgfault: number;
  hierarchicalPgmajfault: number;
  oomEvents: number;
}

export interface BlockIO {
  major: number;
  minor: number;
  readBytes: number;
  writeBytes: number;
  reads: number;
  writes: number;
}

export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Cumulative stall time, microseconds. */
  total: number;
}

export interface Psi {
  some: PsiLine;
  full?: PsiLine;
}

export interface CgroupSpec {
  cpuShares?: number;
  /** Microseconds per period; absent when there is no quota. */
  cpuQuota?: number;
  cpuPeriod?: number;
  cpus?: string;
  memoryLimit?: number;
  memoryReservation?: number;
  swapLimit?: number;
  pidsMax?: number;
}

export interface CgroupStats {
  cpu?: CpuUsage;
  memory?: MemoryUsage;
  io?: BlockIO[];
  pids?: { current: number; max?: number };
  psi?: { cpu?: Psi; memory?: Psi; io?: Psi };
  /** The cgroup's processes (cgroup.procs). */
  procs: number[];
  spec: CgroupSpec;
}

/**
 * A cgroup's path, or per-controller paths for a process whose v1 controllers disagree
 * (the kubelet's own cgroup, from /proc/self/cgroup).
 */
export type CgroupPath = string | { byController: Partial<Record<V1Controller, string>>; unified: string };

export function pathFor(p: CgroupPath, c: V1Controller | "unified"): string {
  if (typeof p === "string") return p;
  return (c === "unified" ? p.unified : p.byController[c]) ?? p.unified;
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/**
 * Finds the hierarchies under `root` (default /sys/fs/cgroup): pure v2 when the root has
 * cgroup.controllers, else one directory per v1 controller (also "cpu,cpuacct" style names),
 * plus the hybrid unified mount.
 */
export async function detectCgroupLayout(root = "/sys/fs/cgroup"): Promise<CgroupLayout> {
  if (await exists(join(root, "cgroup.controllers"))) return { version: 2, root };
  const mounts: Partial<Record<V1Controller, string>> = {};
  for (const c of V1_CONTROLLERS) if (await isDir(join(root, c))) mounts[c] = join(root, c);
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!name.includes(",")) continue;
    for (const c of name.split(",")) if ((V1_CONTROLLERS as string[]).includes(c) && !mounts[c as V1Controller]) mounts[c as V1Controller] = join(root, name);
  }
  const unified = join(root, "unified");
  const layout: CgroupLayout = { version: 1, mounts };
  if (await exists(join(unified, "cgroup.controllers"))) layout.unified = unified;
  return layout;
}

/** The directory holding `controller`'s files for a cgroup path, or undefined when not mounted. */
export function cgroupDir(layout: CgroupLayout, controller: V1Controller | "unified", path: CgroupPath): string | undefined {
  if (layout.version === 2) return join(layout.root, pathFor(path, "unified"));
  const base = controller === "unified" ? layout.unified : layout.mounts[controller];
  return base === undefined ? undefined : join(base, pathFor(path, controller));
}

/** The hierarchy used to discover cgroups and decide whether one exists. */
export function discoveryDir(layout: CgroupLayout, path: string): string | undefined {
  if (layout.version === 2) return join(layout.root, path);
  const base = layout.mounts.memory ?? layout.mounts.cpuacct ?? layout.mounts.cpu ?? layout.mounts.pids;
  return base === undefined ? undefined : join(base, path);
}

export async function cgroupExists(layout: CgroupLayout, path: string): Promise<boolean> {
  const d = discoveryDir(layout, path);
  return d !== undefined && (await isDir(d));
}

/** `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` lines (cpu/memory/io.pressure). */
export function parsePsi(text: string | undefined): Psi | undefined {
  if (text === undefined) return undefined;
  const lines: Partial<Record<"some" | "full", PsiLine>> = {};
  for (const line of text.split("\n")) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== "some" && kind !== "full") continue;
    const v: Record<string, number> = {};
    for (const f of fields) {
      const [k, n] = f.split("=");
      if (k !== undefined && n !== undefined) v[k] = Number(n);
    }
    lines[kind] = { avg10: v.avg10 ?? 0, avg60: v.avg60 ?? 0, avg300: v.avg300 ?? 0, total: v.total ?? 0 };
  }
  if (!lines.some) return undefined;
  return lines.full ? { some: lines.some, full: lines.full } : { some: lines.some };
}

/** cgroup.procs as pids. */
export function parseProcs(text: string | undefined): number[] {
  if (text === undefined) return [];
  const out: number[] = [];
  for (const l of text.split("\n")) {
    const n = Number(l);
    if (l !== "" && Number.isInteger(n)) out.push(n);
  }
  return out;
}

/** Working set as the kubelet defines it: usage minus inactive file pages, never negative. */
export function workingSet(usage: number, inactiveFile: number): number {
  return usage > inactiveFile ? usage - inactiveFile : 0;
}
