/**
 * The Summary API (stats/v1alpha1, `/stats/summary`) built from a snapshot, in upstream's JSON shape:
 * numeric fields are omitted when unknown, times are RFC 3339.
 */
import type { Psi } from "./cgroup.js";
import type { CgroupEntry, FsUsage, NetworkSample, PodEntry, StatsSnapshot } from "./types.js";

export interface PsiData {
  total: number;
  avg10: number;
  avg60: number;
  avg300: number;
}
export interface PSIStats {
  full: PsiData;
  some: PsiData;
}
export interface CPUStats {
  time: string;
  usageNanoCores?: number;
  usageCoreNanoSeconds?: number;
  psi?: PSIStats;
}
export interface MemoryStats {
  time: string;
  availableBytes?: number;
  usageBytes?: number;
  workingSetBytes?: number;
  rssBytes?: number;
  pageFaults?: number;
  majorPageFaults?: number;
  psi?: PSIStats;
}
export interface SwapStats {
  time: string;
  swapAvailableBytes?: number;
  swapUsageBytes?: number;
}
export interface IOStats {
  time: string;
  psi?: PSIStats;
}
export interface InterfaceStats {
  name: string;
  rxBytes?: number;
  rxErrors?: number;
  txBytes?: number;
  txErrors?: number;
}
export interface NetworkStats extends Partial<InterfaceStats> {
  time: string;
  interfaces?: InterfaceStats[];
}
export interface FsStats {
  time: string;
  availableBytes?: number;
  capacityBytes?: number;
  usedBytes?: number;
  inodesFree?: number;
  inodes?: number;
  inodesUsed?: number;
}
export interface VolumeStats extends FsStats {
  name?: string;
  pvcRef?: { name: string; namespace: string };
}
export interface ContainerStats {
  name: string;
  startTime: string;
  cpu?: CPUStats;
  memory?: MemoryStats;
  swap?: SwapStats;
  io?: IOStats;
  rootfs?: FsStats;
  logs?: FsStats;
}
export interface PodStats {
  podRef: { name: string; namespace: string; uid: string };
  startTime: string;
  containers: ContainerStats[];
  cpu?: CPUStats;
  memory?: MemoryStats;
  swap?: SwapStats;
  io?: IOStats;
  network?: NetworkStats;
  volume?: VolumeStats[];
  "ephemeral-storage"?: FsStats;
  process_stats?: { process_count?: number };
}
export interface NodeStats {
  nodeName: string;
  systemContainers?: ContainerStats[];
  startTime: string;
  cpu?: CPUStats;
  memory?: MemoryStats;
  swap?: SwapStats;
  io?: IOStats;
  network?: NetworkStats;
  fs?: FsStats;
  runtime?: { imageFs?: FsStats; containerFs?: FsStats };
  rlimit?: { time: string; maxpid?: number; curproc?: number };
}
export interface Summary {
  node: NodeStats;
  pods: PodStats[];
}

/** metav1.Time: RFC 3339 with whole seconds. */
export function kubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

const int = (n: number): number => Math.max(0, Math.round(n));

function psiStats(p: Psi | undefined): PSIStats | undefined {
  if (!p) return undefined;
  const d = (l: Psi["some"]): PsiData => ({ total: l.total, avg10: l.avg10, avg60: l.avg60, avg300: l.avg300 });
  return { full: d(p.full ?? { total: 0, avg10: 0, avg60: 0, avg300: 0 }), some: d(p.some) };
}

export function cpuStats(e: CgroupEntry): CPUStats | undefined {
  const cpu = e.stats.cpu;
  if (!cpu) return undefined;
  const out: CPUStats = { time: kubeTime(e.time) };
  if (e.cpuNanoCores !== undefined) out.usageNanoCores = int(e.cpuNanoCores);
  out.usageCoreNanoSeconds = int(cpu.usageNs);
  const psi = psiStats(e.stats.psi?.cpu);
  if (psi) out.psi = psi;
  return out;
}

/** `limit` defaults to the cgroup's own limit; availableBytes is limit minus working set. */
export function memoryStats(e: CgroupEntry, limit = e.stats.spec.memoryLimit): MemoryStats | undefined {
  const m = e.stats.memory;
  if (!m) return undefined;
  const out: MemoryStats = { time: kubeTime(e.time) };
  if (limit !== undefined) out.availableBytes = int(limit - m.workingSet);
  out.usageBytes = int(m.usage);
  out.workingSetBytes = int(m.workingSet);
  out.rssBytes = int(m.rss);
  out.pageFaults = int(m.pgfault);
  out.majorPageFaults = int(m.pgmajfault);
  const psi = psiStats(e.stats.psi?.memory);
  if (psi) out.psi = psi;
  return out;
}

function swapStats(e: CgroupEntry): SwapStats | undefined {
  const m = e.stats.memory;
  if (!m) return undefined;
  const out: SwapStats = { time: kubeTime(e.time), swapUsageBytes: int(m.swap) };
  if (e.stats.spec.swapLimit !== undefined && e.stats.spec.memoryLimit !== undefined) out.swapAvailableBytes = int(e.stats.spec.swapLimit - e.stats.spec.memoryLimit - m.swap);
  return out;
}

function ioStats(e: CgroupEntry): IOStats | undefined {
  const psi = psiStats(e.stats.psi?.io);
  return psi ? { time: kubeTime(e.time), psi } : undefined;
}

export function fsStats(f: FsUsage | undefined): FsStats | undefined {
  if (!f) return undefined;
  const out: FsStats = { time: kubeTime(f.time) };
  if (f.available !== undefined) out.availableBytes = int(f.available);
  if (f.capacity !== undefined) out.capacityBytes = int(f.capacity);
  if (f.used !== undefined) out.usedBytes = int(f.used);
  if (f.inodesFree !== undefined) out.inodesFree = int(f.inodesFree);
  if (f.inodes !== undefined) out.inodes = int(f.inodes);
  if (f.inodesUsed !== undefined) out.inodesUsed = int(f.inodesUsed);
  return out;
}

/** The default interface (eth0, as upstream; else the first) inline, and all of them in `interfaces`. */
export function networkStats(n: NetworkSample | undefined): NetworkStats | undefined {
  if (!n) return undefined;
  const interfaces: InterfaceStats[] = n.interfaces.map((i) => ({ name: i.name, rxBytes: i.rxBytes, rxErrors: i.rxErrors, txBytes: i.txBytes, txErrors: i.txErrors }));
  const def = interfaces.find((i) => i.name === "eth0") ?? interfaces[0];
  return { time: kubeTime(n.time), ...(def ?? {}), ...(interfaces.length > 0 ? { interfaces } : {}) };
}

function assign<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

function containerStats(name: string, startTime: number, e: CgroupEntry, cpuAndMemoryOnly: boolean): ContainerStats {
  const out: ContainerStats = { name, startTime: kubeTime(startTime) };
  assign(out, "cpu", cpuStats(e));
  assign(out, "memory", memoryStats(e));
  if (cpuAndMemoryOnly) return out;
  assign(out, "swap", swapStats(e));
  assign(out, "io", ioStats(e));
  return out;
}

function podStats(p: PodEntry, cpuAndMemoryOnly: boolean): PodStats {
  const out: PodStats = {
    podRef: { ...p.ref },
    startTime: kubeTime(p.startTime),
    containers: p.containers.map((c) => {
      const cs = containerStats(c.name, c.startTime, c.cgroup, cpuAndMemoryOnly);
      if (!cpuAndMemoryOnly) {
        assign(cs, "rootfs", fsStats(c.rootfs));
        assign(cs, "logs", fsStats(c.logs));
      }
      return cs;
    }),
  };
  if (p.cgroup) {
    assign(out, "cpu", cpuStats(p.cgroup));
    assign(out, "memory", memoryStats(p.cgroup));
  }
  if (cpuAndMemoryOnly) return out;
  if (p.cgroup) {
    assign(out, "swap", swapStats(p.cgroup));
    assign(out, "io", ioStats(p.cgroup));
  }
  assign(out, "network", networkStats(p.network));
  if (p.volumes.length > 0) {
    out.volume = p.volumes.map((v) => {
      const vs: VolumeStats = { ...(fsStats(v) ?? { time: kubeTime(v.time) }), name: v.name };
      if (v.pvcRef) vs.pvcRef = { ...v.pvcRef };
      return vs;
    });
  }
  assign(out, "ephemeral-storage", fsStats(p.ephemeral));
  out.process_stats = { process_count: p.containers.reduce((n, c) => n + c.cgroup.stats.procs.length, 0) };
  return out;
}

function nodeStats(s: StatsSnapshot, cpuAndMemoryOnly: boolean): NodeStats {
  const node: NodeStats = { nodeName: s.nodeName, startTime: kubeTime(s.bootTime) };
  if (s.systemContainers.length > 0) node.systemContainers = s.systemContainers.map((sc) => containerStats(sc.name, sc.entry.createdAt, sc.entry, cpuAndMemoryOnly));
  if (s.root) {
    assign(node, "cpu", cpuStats(s.root));
    assign(node, "memory", memoryStats(s.root, s.memoryCapacity));
  }
  if (cpuAndMemoryOnly) return node;
  if (s.root) assign(node, "io", ioStats(s.root));
  if (s.swapCapacity > 0 || s.swapUsed !== undefined) {
    node.swap = { time: kubeTime(s.time), swapAvailableBytes: int(s.swapCapacity - (s.swapUsed ?? 0)), swapUsageBytes: int(s.swapUsed ?? 0) };
  }
  assign(node, "network", networkStats(s.nodeNetwork));
  assign(node, "fs", fsStats(s.nodeFs));
  const imageFs = fsStats(s.imageFs);
  const containerFs = fsStats(s.containerFs);
  if (imageFs || containerFs) node.runtime = { ...(imageFs ? { imageFs } : {}), ...(containerFs ? { containerFs } : {}) };
  const rl = { time: kubeTime(s.time), ...(s.rlimit.maxPid !== undefined ? { maxpid: s.rlimit.maxPid } : {}), ...(s.rlimit.curProc !== undefined ? { curproc: s.rlimit.curProc } : {}) };
  node.rlimit = rl;
  return node;
}

/** The summary; with cpuAndMemoryOnly, only what `only_cpu_and_memory=true` returns upstream. */
export function buildSummary(s: StatsSnapshot, cpuAndMemoryOnly = false): Summary {
  return { node: nodeStats(s, cpuAndMemoryOnly), pods: s.pods.map((p) => podStats(p, cpuAndMemoryOnly)) };
}
