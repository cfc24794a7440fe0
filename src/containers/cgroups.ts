/**
 * Pod and QoS cgroups with the cgroupfs driver: the kubelet creates `kubepods`,
 * `kubepods/burstable`, `kubepods/besteffort` and each pod's `pod<uid>` under its QoS tier, writes
 * the pod-level cpu and memory limits, and removes the pod's cgroup when the pod is cleaned up
 * (runc creates the parents it is given but never removes them).
 * Works on cgroup v1 (one hierarchy per controller), hybrid (v1 plus an empty unified mount) and v2.
 */
import { access, mkdir, readdir, readFile, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const CGROUP_ROOT = "/sys/fs/cgroup";

/** Pod-level values; absent fields are left to the parent (unlimited). */
export interface CgroupResources {
  cpuShares?: number;
  /** Microseconds per period; with cpuPeriod. */
  cpuQuota?: number;
  cpuPeriod?: number;
  memoryLimitBytes?: number;
  pidsLimit?: number;
}

export interface CgroupLayout {
  version: 1 | 2;
  /** Every hierarchy root to create cgroups in: each v1 mount (hybrid: the unified one too), or the v2 root. */
  hierarchies: string[];
  /** v1: the hierarchy of each controller; v2: the root for all of them. */
  controllers: Partial<Record<"cpu" | "memory" | "pids", string>>;
}

const exists = (p: string): Promise<boolean> => access(p).then(
  () => true,
  () => false,
);

/** Reads the mounted cgroup layout under `root`. */
export async function detectCgroups(root = CGROUP_ROOT): Promise<CgroupLayout> {
  if (await exists(join(root, "cgroup.controllers"))) {
    const available = (await readFile(join(root, "cgroup.controllers"), "utf8")).split(/\s+/);
    const controllers: CgroupLayout["controllers"] = {};
    for (const c of ["cpu", "memory", "pids"] as const) if (available.includes(c)) controllers[c] = root;
    return { version: 2, hierarchies: [root], controllers };
  }
  const hierarchies: string[] = [];
  const controllers: CgroupLayout["controllers"] = {};
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    // Symlinks (cpu -> cpu,cpuacct) name a hierarchy already listed.
    if (!e.isDirectory()) continue;
    const dir = join(root, e.name);
    if (!(await exists(join(dir, "cgroup.procs")))) continue;
    hierarchies.push(dir);
    if (controllers.cpu === undefined && (await exists(join(dir, "cpu.shares")))) controllers.cpu = dir;
    if (controllers.memory === undefined && (await exists(join(dir, "memory.limit_in_bytes")))) controllers.memory = dir;
    if (controllers.pids === undefined && (await exists(join(dir, "pids.max"))) && !(await exists(join(dir, "cgroup.controllers")))) controllers.pids = dir;
  }
  return { version: 1, hierarchies, controllers };
}

/** cgroup v1 cpu.shares to v2 cpu.weight, as runc and the kubelet convert. */
export function sharesToWeight(shares: number): number {
  if (shares <= 0) return 100;
  return Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

/** The files (relative to each controller's hierarchy) and values that express `res`. */
export function cgroupFiles(version: 1 | 2, res: CgroupResources): { controller: "cpu" | "memory" | "pids"; file: string; value: string }[] {
  const out: { controller: "cpu" | "memory" | "pids"; file: string; value: string }[] = [];
  if (version === 1) {
    if (res.cpuShares !== undefined) out.push({ controller: "cpu", file: "cpu.shares", value: String(res.cpuShares) });
    if (res.cpuPeriod !== undefined) out.push({ controller: "cpu", file: "cpu.cfs_period_us", value: String(res.cpuPeriod) });
    out.push({ controller: "cpu", file: "cpu.cfs_quota_us", value: String(res.cpuQuota ?? -1) });
    out.push({ controller: "memory", file: "memory.limit_in_bytes", value: String(res.memoryLimitBytes ?? -1) });
    if (res.pidsLimit !== undefined) out.push({ controller: "pids", file: "pids.max", value: res.pidsLimit > 0 ? String(res.pidsLimit) : "max" });
    return out;
  }
  if (res.cpuShares !== undefined) out.push({ controller: "cpu", file: "cpu.weight", value: String(sharesToWeight(res.cpuShares)) });
  out.push({ controller: "cpu", file: "cpu.max", value: `${res.cpuQuota !== undefined ? String(res.cpuQuota) : "max"} ${res.cpuPeriod ?? 100_000}` });
  out.push({ controller: "memory", file: "memory.max", value: res.memoryLimitBytes !== undefined ? String(res.memoryLimitBytes) : "max" });
  if (res.pidsLimit !== undefined) out.push({ controller: "pids", file: "pids.max", value: res.pidsLimit > 0 ? String(res.pidsLimit) : "max" });
  return out;
}

/**
 * v2: enables the cpu/memory/pids controllers for the children of every ancestor of `path`. As
 * runc does, a refused line is retried one controller at a time and refusals are left to show
 * up when a limit is written (a delegated subtree may already have them, or not allow them).
 */
async function enableControllers(layout: CgroupLayout, root: string, path: string): Promise<void> {
  const wanted = (["cpu", "memory", "pids"] as const).filter((c) => layout.controllers[c] !== undefined).map((c) => `+${c}`);
  if (wanted.length === 0) return;
  const parts = path.split("/").filter((p) => p !== "");
  let dir = root;
  for (const part of ["", ...parts.slice(0, -1)]) {
    dir = join(dir, part);
    const file = join(dir, "cgroup.subtree_control");
    try {
      await writeFile(file, wanted.join(" "));
    } catch {
      for (const c of wanted) await writeFile(file, c).catch(() => undefined);
    }
  }
}

/**
 * Creates `path` (e.g. /kubepods/burstable/pod<uid>) in every hierarchy, parents included, and
 * writes `res` into it. Errors name the cgroup and the file.
 */
export async function ensureCgroup(path: string, res: CgroupResources | undefined, layout: CgroupLayout): Promise<void> {
  await Promise.all(layout.hierarchies.map((h) => mkdir(join(h, path), { recursive: true })));
  if (layout.version === 2 && layout.hierarchies[0] !== undefined) await enableControllers(layout, layout.hierarchies[0], path);
  if (!res) return;
  for (const f of cgroupFiles(layout.version, res)) {
    const h = layout.controllers[f.controller];
    if (h === undefined) continue;
    const file = join(h, path, f.file);
    try {
      await writeFile(file, f.value);
    } catch (err) {
      throw new Error(`cgroup ${path}: cannot write ${f.value} to ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** The QoS tiers under the pods' root: kubepods, kubepods/burstable (no limits) and kubepods/besteffort (minimal cpu shares). */
export async function ensureQOSCgroups(cgroupRoot: string, layout: CgroupLayout): Promise<void> {
  const base = `${cgroupRoot.replace(/\/+$/, "")}/kubepods`;
  await ensureCgroup(base, undefined, layout);
  await ensureCgroup(`${base}/burstable`, undefined, layout);
  await ensureCgroup(`${base}/besteffort`, { cpuShares: 2 }, layout);
}

/** Hierarchy roots to act on: every v1 controller mount, or the single v2 root. */
export async function cgroupHierarchies(root = CGROUP_ROOT): Promise<string[]> {
  return (await detectCgroups(root)).hierarchies;
}

/** True when `path` exists in any hierarchy. */
export async function cgroupExists(path: string, root = CGROUP_ROOT): Promise<boolean> {
  for (const h of await cgroupHierarchies(root)) {
    if (await stat(join(h, path)).then((s) => s.isDirectory(), () => false)) return true;
  }
  return false;
}

/** Removes a cgroup (e.g. /kubepods/besteffort/pod<uid>) and its empty children in every hierarchy. */
export async function removeCgroup(path: string, root = CGROUP_ROOT): Promise<void> {
  for (const h of await cgroupHierarchies(root)) await removeTree(join(h, path));
}

async function removeTree(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(join(dir, e.name));
  try {
    await rmdir(dir);
  } catch {
    // A real cgroup goes with its control files; a plain directory (a fake root) needs them removed first.
    for (const e of entries) if (!e.isDirectory()) await unlink(join(dir, e.name)).catch(() => undefined);
    await rmdir(dir).catch(() => undefined);
  }
}
