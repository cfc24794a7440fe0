/** cgroup v1 (and hybrid): one hierarchy per controller; PSI from the unified mount when there is one. */
import { join } from "node:path";
import {
  cgroupDir,
  parseProcs,
  parsePsi,
  workingSet,
  type BlockIO,
  type CgroupLayout,
  type CgroupPath,
  type CgroupSpec,
  type CgroupStats,
  type CpuUsage,
  type MemoryUsage,
  type V1Controller,
} from "./cgroup.js";
import { finiteLimit, parseFlatKeyed, readNumber, readText } from "./read.js";

/** cpuacct.stat counts in USER_HZ ticks, which is 100 per second on every Linux that matters. */
const NS_PER_TICK = 1e9 / 100;

type V1Layout = Extract<CgroupLayout, { version: 1 }>;

function numberIn(dir: string | undefined, file: string): Promise<number | undefined> {
  return dir === undefined ? Promise.resolve(undefined) : readNumber(join(dir, file));
}

/** `spec`: the cgroup's limits when the caller already knows them (they rarely change; reading them is 8 files). */
export async function readCgroupV1(layout: V1Layout, path: CgroupPath, spec?: CgroupSpec): Promise<CgroupStats | undefined> {
  const dir = (c: V1Controller | "unified"): string | undefined => cgroupDir(layout, c, path);
  const probe = dir("memory") ?? dir("cpuacct") ?? dir("cpu");
  if (probe === undefined) return undefined;
  const procsText = await readText(join(probe, "cgroup.procs"));
  if (procsText === undefined) return undefined; // the cgroup is gone (or never existed)
  const [cpu, memory, io, pidsCurrent, psi, limits] = await Promise.all([
    readCpu(dir("cpuacct"), dir("cpu")),
    readMemory(dir("memory")),
    readBlkio(dir("blkio")),
    numberIn(dir("pids"), "pids.current"),
    readPsi(dir("unified")),
    spec ?? readSpec(dir("cpu"), dir("memory"), dir("pids"), dir("cpuset")),
  ]);
  const out: CgroupStats = { procs: parseProcs(procsText), spec: limits };
  if (cpu) out.cpu = cpu;
  if (memory) out.memory = memory;
  if (io) out.io = io;
  if (pidsCurrent !== undefined) out.pids = limits.pidsMax === undefined ? { current: pidsCurrent } : { current: pidsCurrent, max: limits.pidsMax };
  if (psi) out.psi = psi;
  return out;
}

async function readCpu(acct: string | undefined, cpuDir: string | undefined): Promise<CpuUsage | undefined> {
  if (acct === undefined) return undefined;
  const [usage, user, sys, cpuStat] = await Promise.all([
    readNumber(join(acct, "cpuacct.usage")),
    readNumber(join(acct, "cpuacct.usage_user")),
    readNumber(join(acct, "cpuacct.usage_sys")),
    cpuDir === undefined ? Promise.resolve(undefined) : readText(join(cpuDir, "cpu.stat")),
  ]);
  if (usage === undefined) return undefined;
  // Older kernels have no usage_user/usage_sys: fall back to the tick counts of cpuacct.stat.
  const ticks = parseFlatKeyed(user === undefined || sys === undefined ? await readText(join(acct, "cpuacct.stat")) : undefined);
  const cfs = parseFlatKeyed(cpuStat);
  return {
    usageNs: usage,
    userNs: user ?? (ticks.get("user") ?? 0) * NS_PER_TICK,
    systemNs: sys ?? (ticks.get("system") ?? 0) * NS_PER_TICK,
    periods: cfs.get("nr_periods") ?? 0,
    throttledPeriods: cfs.get("nr_throttled") ?? 0,
    throttledNs: cfs.get("throttled_time") ?? 0,
  };
}

async function readMemory(d: string | undefined): Promise<MemoryUsage | undefined> {
  if (d === undefined) return undefined;
  const f = (name: string): Promise<number | undefined> => readNumber(join(d, name));
  const [usage, maxUsage, failcnt, kmem, statText, oomText] = await Promise.all([
    f("memory.usage_in_bytes"),
    f("memory.max_usage_in_bytes"),
    f("memory.failcnt"),
    f("memory.kmem.usage_in_bytes"),
    readText(join(d, "memory.stat")),
    readText(join(d, "memory.oom_control")),
  ]);
  if (usage === undefined) return undefined;
  const s = parseFlatKeyed(statText);
  // The total_* lines cover the whole subtree (a pod's cgroup holds its containers).
  const h = (k: string): number => s.get(`total_${k}`) ?? s.get(k) ?? 0;
  const inactiveFile = h("inactive_file");
  return {
    usage,
    maxUsage: maxUsage ?? usage,
    workingSet: workingSet(usage, inactiveFile),
    rss: h("rss"),
    cache: h("cache"),
    swap: h("swap"),
    mappedFile: h("mapped_file"),
    kernel: kmem ?? 0,
    activeFile: h("active_file"),
    inactiveFile,
    failcnt: failcnt ?? 0,
    pgfault: s.get("pgfault") ?? 0,
    pgmajfault: s.get("pgmajfault") ?? 0,
    hierarchicalPgfault: h("pgfault"),
    hierarchicalPgmajfault: h("pgmajfault"),
    oomEvents: parseFlatKeyed(oomText).get("oom_kill") ?? 0,
  };
}

/** `8:0 Read 4096` lines of blkio.*_recursive, per device. */
export function parseBlkio(bytesText: string | undefined, opsText: string | undefined): BlockIO[] {
  const devices = new Map<string, BlockIO>();
  const take = (text: string | undefined, kind: "bytes" | "ops"): void => {
    for (const line of (text ?? "").split("\n")) {
      const [dev, op, value] = line.trim().split(/\s+/);
      if (!dev || !op || value === undefined || !dev.includes(":")) continue;
      const [maj, min] = dev.split(":").map(Number);
      let e = devices.get(dev);
      if (!e) {
        e = { major: maj ?? 0, minor: min ?? 0, readBytes: 0, writeBytes: 0, reads: 0, writes: 0 };
        devices.set(dev, e);
      }
      const n = Number(value);
      if (op === "Read") e[kind === "bytes" ? "readBytes" : "reads"] = n;
      else if (op === "Write") e[kind === "bytes" ? "writeBytes" : "writes"] = n;
    }
  };
  take(bytesText, "bytes");
  take(opsText, "ops");
  return [...devices.values()];
}

async function readBlkio(d: string | undefined): Promise<BlockIO[] | undefined> {
  if (d === undefined) return undefined;
  const pair = async (prefix: string): Promise<BlockIO[]> => {
    const bytesText = await readText(join(d, `${prefix}io_service_bytes_recursive`));
    if (parseBlkio(bytesText, undefined).length === 0) return []; // nothing per device: skip the ops file
    return parseBlkio(bytesText, await readText(join(d, `${prefix}io_serviced_recursive`)));
  };
  // The throttle files count every request; the scheduler's files only exist with CFQ/BFQ.
  const throttled = await pair("blkio.throttle.");
  if (throttled.length > 0) return throttled;
  return pair("blkio.");
}

async function readPsi(d: string | undefined): Promise<CgroupStats["psi"]> {
  if (d === undefined) return undefined;
  const [cpu, memory, io] = await Promise.all(["cpu", "memory", "io"].map((r) => readText(join(d, `${r}.pressure`)).then(parsePsi)));
  if (!cpu && !memory && !io) return undefined;
  return { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}), ...(io ? { io } : {}) };
}

export async function readSpec(cpuDir?: string, memDir?: string, pidsDir?: string, cpusetDir?: string): Promise<CgroupSpec> {
  const n = numberIn;
  const [shares, quota, period, limit, soft, memsw, pidsMax, cpus] = await Promise.all([
    n(cpuDir, "cpu.shares"),
    n(cpuDir, "cpu.cfs_quota_us"),
    n(cpuDir, "cpu.cfs_period_us"),
    n(memDir, "memory.limit_in_bytes"),
    n(memDir, "memory.soft_limit_in_bytes"),
    n(memDir, "memory.memsw.limit_in_bytes"),
    n(pidsDir, "pids.max"),
    cpusetDir === undefined ? Promise.resolve(undefined) : readText(join(cpusetDir, "cpuset.cpus")),
  ]);
  const spec: CgroupSpec = {};
  if (shares !== undefined) spec.cpuShares = shares;
  if (quota !== undefined && quota > 0) spec.cpuQuota = quota;
  if (period !== undefined) spec.cpuPeriod = period;
  if (cpus !== undefined && cpus.trim() !== "") spec.cpus = cpus.trim();
  const lim = finiteLimit(limit);
  if (lim !== undefined) spec.memoryLimit = lim;
  const res = finiteLimit(soft);
  if (res !== undefined) spec.memoryReservation = res;
  const sw = finiteLimit(memsw);
  if (sw !== undefined) spec.swapLimit = sw;
  const pm = finiteLimit(pidsMax);
  if (pm !== undefined) spec.pidsMax = pm;
  return spec;
}
