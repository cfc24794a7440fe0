/** cgroup v2 (unified): every controller's files in one directory per cgroup. */
import { join } from "node:path";
import { parseProcs, parsePsi, workingSet, type BlockIO, type CgroupSpec, type CgroupStats, type CpuUsage, type MemoryUsage } from "./cgroup.js";
import { finiteLimit, parseFlatKeyed, parseNumber, readNumber, readText } from "./read.js";

/** `spec`: the cgroup's limits when the caller already knows them. */
export async function readCgroupV2(root: string, path: string, known?: CgroupSpec): Promise<CgroupStats | undefined> {
  const d = join(root, path);
  const procsText = await readText(join(d, "cgroup.procs"));
  if (procsText === undefined) return undefined;
  const t = (f: string): Promise<string | undefined> => readText(join(d, f));
  const [cpuStat, memory, ioStat, pidsCur, pidsMax, cpuP, memP, ioP, spec] = await Promise.all([
    t("cpu.stat"),
    readMemory(d),
    t("io.stat"),
    readNumber(join(d, "pids.current")),
    known ? Promise.resolve(known.pidsMax ?? Infinity) : readNumber(join(d, "pids.max")),
    t("cpu.pressure"),
    t("memory.pressure"),
    t("io.pressure"),
    known ?? readSpec(d),
  ]);
  const out: CgroupStats = { procs: parseProcs(procsText), spec };
  const cpu = cpuFromStat(cpuStat);
  if (cpu) out.cpu = cpu;
  if (memory) out.memory = memory;
  if (ioStat !== undefined) out.io = parseIoStat(ioStat);
  if (pidsCur !== undefined) {
    const m = finiteLimit(pidsMax);
    out.pids = m === undefined ? { current: pidsCur } : { current: pidsCur, max: m };
  }
  const [cpuPsi, memPsi, ioPsi] = [parsePsi(cpuP), parsePsi(memP), parsePsi(ioP)];
  if (cpuPsi || memPsi || ioPsi) out.psi = { ...(cpuPsi ? { cpu: cpuPsi } : {}), ...(memPsi ? { memory: memPsi } : {}), ...(ioPsi ? { io: ioPsi } : {}) };
  return out;
}

function cpuFromStat(text: string | undefined): CpuUsage | undefined {
  const s = parseFlatKeyed(text);
  const usage = s.get("usage_usec");
  if (usage === undefined) return undefined;
  return {
    usageNs: usage * 1000,
    userNs: (s.get("user_usec") ?? 0) * 1000,
    systemNs: (s.get("system_usec") ?? 0) * 1000,
    periods: s.get("nr_periods") ?? 0,
    throttledPeriods: s.get("nr_throttled") ?? 0,
    throttledNs: (s.get("throttled_usec") ?? 0) * 1000,
  };
}

/** Memory of a v2 cgroup; the root has no memory.current, so it reads as undefined there. */
async function readMemory(d: string): Promise<MemoryUsage | undefined> {
  const [current, peak, swap, statText, eventsText] = await Promise.all([
    readNumber(join(d, "memory.current")),
    readNumber(join(d, "memory.peak")),
    readNumber(join(d, "memory.swap.current")),
    readText(join(d, "memory.stat")),
    readText(join(d, "memory.events")),
  ]);
  if (current === undefined) return undefined;
  return memoryFromStat(current, parseFlatKeyed(statText), { peak, swap, events: parseFlatKeyed(eventsText) });
}

/** Builds MemoryUsage from a usage figure and v2 memory.stat keys (also used for the root from /proc/meminfo). */
export function memoryFromStat(usage: number, s: Map<string, number>, extra: { peak?: number | undefined; swap?: number | undefined; events?: Map<string, number> } = {}): MemoryUsage {
  const inactiveFile = s.get("inactive_file") ?? 0;
  const kernel = s.get("kernel") ?? (s.get("kernel_stack") ?? 0) + (s.get("slab") ?? 0) + (s.get("sock") ?? 0) + (s.get("pagetables") ?? 0);
  const pgfault = s.get("pgfault") ?? 0;
  const pgmajfault = s.get("pgmajfault") ?? 0;
  return {
    usage,
    maxUsage: extra.peak ?? usage,
    workingSet: workingSet(usage, inactiveFile),
    rss: s.get("anon") ?? 0,
    cache: s.get("file") ?? 0,
    swap: extra.swap ?? 0,
    mappedFile: s.get("file_mapped") ?? 0,
    kernel,
    activeFile: s.get("active_file") ?? 0,
    inactiveFile,
    failcnt: extra.events?.get("max") ?? 0,
    pgfault,
    pgmajfault,
    hierarchicalPgfault: pgfault,
    hierarchicalPgmajfault: pgmajfault,
    oomEvents: extra.events?.get("oom_kill") ?? 0,
  };
}

/** `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` lines. */
export function parseIoStat(text: string): BlockIO[] {
  const out: BlockIO[] = [];
  for (const line of text.split("\n")) {
    const [dev, ...fields] = line.trim().split(/\s+/);
    if (!dev?.includes(":")) continue;
    const [maj, min] = dev.split(":").map(Number);
    const v: Record<string, number> = {};
    for (const f of fields) {
      const [k, n] = f.split("=");
      if (k !== undefined && n !== undefined) v[k] = Number(n);
    }
    out.push({ major: maj ?? 0, minor: min ?? 0, readBytes: v.rbytes ?? 0, writeBytes: v.wbytes ?? 0, reads: v.rios ?? 0, writes: v.wios ?? 0 });
  }
  return out;
}

/** cpu.weight back to v1 shares, as runc maps them (weight = 1 + (shares - 2) * 9999 / 262142). */
export function weightToShares(weight: number): number {
  return Math.round(2 + ((weight - 1) * 262142) / 9999);
}

async function readSpec(d: string): Promise<CgroupSpec> {
  const t = (f: string): Promise<string | undefined> => readText(join(d, f));
  const [weight, cpuMax, memMax, memLow, swapMax, pidsMax, cpus] = await Promise.all([
    readNumber(join(d, "cpu.weight")),
    t("cpu.max"),
    readNumber(join(d, "memory.max")),
    readNumber(join(d, "memory.low")),
    readNumber(join(d, "memory.swap.max")),
    readNumber(join(d, "pids.max")),
    t("cpuset.cpus.effective"),
  ]);
  const spec: CgroupSpec = {};
  if (weight !== undefined) spec.cpuShares = weightToShares(weight);
  if (cpuMax !== undefined) {
    const [q, p] = cpuMax.trim().split(/\s+/);
    const quota = parseNumber(q ?? "");
    const period = parseNumber(p ?? "");
    if (quota !== undefined && Number.isFinite(quota)) spec.cpuQuota = quota;
    if (period !== undefined) spec.cpuPeriod = period;
  }
  if (cpus !== undefined && cpus.trim() !== "") spec.cpus = cpus.trim();
  const lim = finiteLimit(memMax);
  if (lim !== undefined) spec.memoryLimit = lim;
  if (memLow !== undefined && memLow > 0) spec.memoryReservation = memLow;
  const sw = finiteLimit(swapMax);
  if (sw !== undefined) spec.swapLimit = sw;
  const pm = finiteLimit(pidsMax);
  if (pm !== undefined) spec.pidsMax = pm;
  return spec;
}
