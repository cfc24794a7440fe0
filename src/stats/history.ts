/**
 * Recent samples per cgroup: the previous sample gives usageNanoCores (CPU time over wall time
 * between two reads), and the ring of compact samples feeds the charts and /api/v2.0/stats.
 */
import type { CgroupEntry, HistorySample } from "./types.js";

export interface History {
  /** Stores the entry's sample; sets entry.cpuNanoCores from the previous one when it can. */
  record(entry: CgroupEntry): void;
  /** The newest `count` samples (oldest first). */
  samples(name: string, count?: number): HistorySample[];
  /** Drops the history of cgroups not seen for `forgetAfterMs`. */
  prune(now: number, forgetAfterMs: number): void;
}

/** CPU nanocores between two cumulative readings: delta CPU-nanoseconds per delta wall-second. */
export function nanoCores(prevNs: number, prevMs: number, curNs: number, curMs: number): number | undefined {
  const dt = curMs - prevMs;
  if (dt <= 0 || curNs < prevNs) return undefined;
  return Math.round(((curNs - prevNs) * 1000) / dt);
}

export function toHistorySample(e: CgroupEntry): HistorySample {
  const s: HistorySample = { time: e.time };
  const { cpu, memory, io, pids } = e.stats;
  if (cpu) s.cpu = { total: cpu.usageNs, user: cpu.userNs, system: cpu.systemNs, ...(e.cpuNanoCores !== undefined ? { nanoCores: e.cpuNanoCores } : {}) };
  if (memory) {
    s.memory = {
      usage: memory.usage,
      maxUsage: memory.maxUsage,
      workingSet: memory.workingSet,
      rss: memory.rss,
      cache: memory.cache,
      swap: memory.swap,
      mappedFile: memory.mappedFile,
      failcnt: memory.failcnt,
      pgfault: memory.pgfault,
      pgmajfault: memory.pgmajfault,
      hPgfault: memory.hierarchicalPgfault,
      hPgmajfault: memory.hierarchicalPgmajfault,
    };
  }
  if (e.network) s.network = e.network.interfaces;
  const fs = e.rootfs;
  if (fs?.used !== undefined) {
    s.fs = { usage: fs.used };
    if (fs.capacity !== undefined) s.fs.capacity = fs.capacity;
    if (fs.available !== undefined) s.fs.available = fs.available;
    if (fs.inodes !== undefined) s.fs.inodes = fs.inodes;
    if (fs.inodesFree !== undefined) s.fs.inodesFree = fs.inodesFree;
    if (fs.inodesUsed !== undefined) s.fs.inodesUsed = fs.inodesUsed;
  }
  if (io && io.length > 0) s.io = io;
  const threads = pids?.current ?? e.stats.procs.length;
  if (e.stats.procs.length > 0 || pids) s.processes = { count: e.stats.procs.length, threads, ...(pids?.max !== undefined ? { threadsMax: pids.max } : {}) };
  return s;
}

export function createHistory(capacity: number): History {
  const rings = new Map<string, { createdAt: number; samples: HistorySample[]; lastSeen: number }>();
  return {
    record(entry) {
      let ring = rings.get(entry.name);
      if (ring && ring.createdAt !== entry.createdAt) ring = undefined; // a new cgroup under an old name
      const prev = ring?.samples[ring.samples.length - 1];
      const cpu = entry.stats.cpu;
      if (entry.cpuNanoCores === undefined && cpu && prev?.cpu && prev.time < entry.time) {
        const rate = nanoCores(prev.cpu.total, prev.time, cpu.usageNs, entry.time);
        if (rate !== undefined) entry.cpuNanoCores = rate;
      }
      if (prev && prev.time === entry.time) return; // the same snapshot recorded twice
      if (!ring) {
        ring = { createdAt: entry.createdAt, samples: [], lastSeen: entry.time };
        rings.set(entry.name, ring);
      }
      ring.samples.push(toHistorySample(entry));
      if (ring.samples.length > capacity) ring.samples.splice(0, ring.samples.length - capacity);
      ring.lastSeen = entry.time;
    },
    samples(name, count) {
      const all = rings.get(name)?.samples ?? [];
      return count === undefined || count >= all.length ? [...all] : all.slice(all.length - count);
    },
    prune(now, forgetAfterMs) {
      for (const [name, ring] of rings) if (now - ring.lastSeen > forgetAfterMs) rings.delete(name);
    },
  };
}
