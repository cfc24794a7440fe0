/**
 * What every benchmark of bench/ uses: statistics and rounding for the report, the machine and
 * source description, and a snapshot of the built tskubelet.
 */
import { spawnSync } from "node:child_process";
import { cp, readFile, rm } from "node:fs/promises";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CriRuntimeService } from "../src/cri/index.js";
import { repoRoot } from "../test/support/containerd.js";

const DIST_SRC = fileURLToPath(new URL("../src", import.meta.url));

/** Nearest-rank percentile of a non-empty list. */
export function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx] ?? NaN;
}

/** The median of the finite values (NaN when there are none). */
export function median(values: number[]): number {
  const sorted = [...values].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return NaN;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

export const r1 = (x: number): number => Math.round(x * 10) / 10;
export const r2 = (x: number): number => Math.round(x * 100) / 100;
export const r3 = (x: number): number => Math.round(x * 1000) / 1000;
export const load = (): string => loadavg().map((x) => x.toFixed(2)).join(" ");
export const pad = (s: string | number, n: number): string => String(s).padStart(n);

export interface MachineInfo {
  cpu_model: string;
  cores: number;
  memory_gib: number;
  kernel: string;
  node: string;
  containerd_version: string;
}

export async function machineInfo(rs: CriRuntimeService): Promise<MachineInfo> {
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? "unknown";
  const v = await rs.version();
  return {
    cpu_model: model.trim(),
    cores: cpus().length,
    memory_gib: r1(totalmem() / 1024 ** 3),
    kernel: release(),
    node: process.version,
    containerd_version: v.runtimeVersion,
  };
}

/** The commit the tree is at and whether src/ has uncommitted changes (null outside git). */
export function sourceVersion(): { commit: string; src_dirty: boolean } | null {
  const head = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot(), encoding: "utf8" });
  if (head.status !== 0) return null;
  const dirty = spawnSync("git", ["status", "--porcelain", "--", "src"], { cwd: repoRoot(), encoding: "utf8" });
  return { commit: head.stdout.trim(), src_dirty: dirty.stdout.trim() !== "" };
}

/**
 * Copies dist/src once at the start, so every round runs the same tskubelet even when someone
 * rebuilds dist/ during the run (a shared work tree). The copy lives in bench/bin/<name>-<pid>
 * (git-ignored) inside the repository, so its imports still resolve through its node_modules.
 */
export async function snapshotTskubelet(name: string): Promise<{ dir: string; mainJs: string }> {
  const dir = join(repoRoot(), "bench", "bin", `${name}-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  await cp(DIST_SRC, join(dir, "src"), { recursive: true });
  return { dir, mainJs: join(dir, "src", "cli", "main.js") };
}
