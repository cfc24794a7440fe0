/**
 * cAdvisor's REST shapes on 4194: /api/v2.0/spec (ContainerSpec by container name) and
 * /api/v2.0/stats (recent ContainerStats by container name), where a container's name is its
 * cgroup path and its alias is the runtime's id.
 */
import { LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID } from "../api/labels.js";
import type { InterfaceCounters } from "./procfs.js";
import type { CgroupEntry, HistorySample, StatsSnapshot } from "./types.js";

export interface V2ContainerSpec {
  creation_time: string;
  aliases?: string[];
  namespace?: string;
  labels?: Record<string, string>;
  has_cpu: boolean;
  cpu: { limit: number; max_limit: number; mask?: string; quota?: number; period?: number };
  has_memory: boolean;
  memory: { limit?: number; reservation?: number; swap_limit?: number };
  has_hugetlb: boolean;
  has_custom_metrics: boolean;
  has_processes: boolean;
  processes: { fd_limit?: number };
  has_network: boolean;
  has_filesystem: boolean;
  has_diskio: boolean;
  image?: string;
  /** tskubelet's addition for the web UI: root, system, qos, pod, sandbox or container. */
  kind: string;
}

export interface StatsQuery {
  /** Container name (cgroup path) or runtime id; "/" by default. */
  name: string;
  recursive: boolean;
  count: number;
}

/** cAdvisor's default number of samples for v2.0 stats. */
export const DEFAULT_STATS_COUNT = 64;

export function parseStatsQuery(rest: string | undefined, params: URLSearchParams): StatsQuery {
  const name = "/" + (rest ?? "").replace(/^\/+/, "");
  const count = Number(params.get("count") ?? DEFAULT_STATS_COUNT);
  return {
    name: name.length > 1 ? name.replace(/\/+$/, "") : "/",
    recursive: params.get("recursive") === "true",
    count: Number.isFinite(count) && count > 0 ? Math.min(Math.floor(count), 10_000) : DEFAULT_STATS_COUNT,
  };
}

/** The entries a query names: one container (by name or id), and its descendants when recursive. */
export function selectEntries(s: StatsSnapshot, q: StatsQuery): CgroupEntry[] | undefined {
  const byId = s.cgroups.find((e) => e.id !== undefined && (e.id === q.name.slice(1) || (q.name.length > 12 && e.id.startsWith(q.name.slice(1)))));
  const target = s.cgroups.find((e) => e.name === q.name) ?? byId;
  if (!target) return undefined;
  if (!q.recursive) return [target];
  const prefix = target.name === "/" ? "/" : target.name + "/";
  return s.cgroups.filter((e) => e === target || e.name.startsWith(prefix));
}

function labelsOf(e: CgroupEntry): Record<string, string> | undefined {
  if (!e.pod) return undefined;
  const l: Record<string, string> = { [LABEL_POD_NAME]: e.pod.name, [LABEL_POD_NAMESPACE]: e.pod.namespace, [LABEL_POD_UID]: e.pod.uid };
  if (e.containerName !== undefined) l[LABEL_CONTAINER_NAME] = e.containerName;
  return l;
}

export function containerSpec(e: CgroupEntry): V2ContainerSpec {
  const s = e.stats.spec;
  const spec: V2ContainerSpec = {
    creation_time: new Date(e.createdAt).toISOString(),
    has_cpu: e.stats.cpu !== undefined,
    cpu: { limit: s.cpuShares ?? 1024, max_limit: 0 },
    has_memory: e.stats.memory !== undefined,
    memory: {},
    has_hugetlb: false,
    has_custom_metrics: false,
    has_processes: true,
    processes: {},
    has_network: e.network !== undefined,
    has_filesystem: e.rootfs !== undefined,
    has_diskio: e.stats.io !== undefined,
    kind: e.kind,
  };
  if (s.cpus) spec.cpu.mask = s.cpus;
  if (s.cpuQuota !== undefined) {
    spec.cpu.quota = s.cpuQuota;
    if (s.cpuPeriod) spec.cpu.max_limit = Math.round((s.cpuQuota * 1000) / s.cpuPeriod);
  }
  if (s.cpuPeriod !== undefined) spec.cpu.period = s.cpuPeriod;
  if (s.memoryLimit !== undefined) spec.memory.limit = s.memoryLimit;
  if (s.memoryReservation !== undefined) spec.memory.reservation = s.memoryReservation;
  if (s.swapLimit !== undefined) spec.memory.swap_limit = s.swapLimit;
  if (e.id) {
    spec.aliases = [e.id];
    spec.namespace = "containerd";
  }
  const labels = labelsOf(e);
  if (labels) spec.labels = labels;
  if (e.image) spec.image = e.image;
  return spec;
}

export function specResponse(entries: CgroupEntry[]): Record<string, V2ContainerSpec> {
  return Object.fromEntries(entries.map((e) => [e.name, containerSpec(e)]));
}

const zeroTcp = (): Record<string, number> =>
  Object.fromEntries(["Established", "SynSent", "SynRecv", "FinWait1", "FinWait2", "TimeWait", "Close", "CloseWait", "LastAck", "Listen", "Closing"].map((k) => [k, 0]));

function iface(i: InterfaceCounters): Record<string, string | number> {
  return { name: i.name, rx_bytes: i.rxBytes, rx_packets: i.rxPackets, rx_errors: i.rxErrors, rx_dropped: i.rxDropped, tx_bytes: i.txBytes, tx_packets: i.txPackets, tx_errors: i.txErrors, tx_dropped: i.txDropped };
}

function rate(cur: number, prev: number, dtMs: number): number {
  return dtMs > 0 && cur >= prev ? Math.round(((cur - prev) * 1000) / dtMs) : 0;
}

/** One v2 ContainerStats from a history sample (cpu_inst from the previous sample). */
export function v2Stats(cur: HistorySample, prev: HistorySample | undefined, devices: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = { timestamp: new Date(cur.time).toISOString() };
  if (cur.cpu) {
    out.cpu = {
      usage: { total: cur.cpu.total, user: cur.cpu.user, system: cur.cpu.system },
      cfs: { periods: 0, throttled_periods: 0, throttled_time: 0 },
      schedstat: { run_time: 0, runqueue_time: 0, run_periods: 0 },
      load_average: 0,
    };
    if (prev?.cpu) {
      const dt = cur.time - prev.time;
      out.cpu_inst = { usage: { total: cur.cpu.nanoCores ?? rate(cur.cpu.total, prev.cpu.total, dt), user: rate(cur.cpu.user, prev.cpu.user, dt), system: rate(cur.cpu.system, prev.cpu.system, dt) } };
    }
  }
  if (cur.memory) {
    const m = cur.memory;
    out.memory = {
      usage: m.usage,
      max_usage: m.maxUsage,
      cache: m.cache,
      rss: m.rss,
      swap: m.swap,
      mapped_file: m.mappedFile,
      working_set: m.workingSet,
      failcnt: m.failcnt,
      container_data: { pgfault: m.pgfault, pgmajfault: m.pgmajfault },
      hierarchical_data: { pgfault: m.hPgfault, pgmajfault: m.hPgmajfault },
    };
  }
  if (cur.network) out.network = { interfaces: cur.network.map(iface), tcp: zeroTcp(), tcp6: zeroTcp(), udp: { Listen: 0, Dropped: 0, RxQueued: 0, TxQueued: 0 }, udp6: { Listen: 0, Dropped: 0, RxQueued: 0, TxQueued: 0 }, tcp_advanced: {} };
  if (cur.fs) out.filesystem = { totalUsageBytes: cur.fs.usage, baseUsageBytes: cur.fs.usage, ...(cur.fs.inodesUsed !== undefined ? { containter_inode_usage: cur.fs.inodesUsed } : {}) };
  if (cur.io) {
    const dev = (d: { major: number; minor: number }): { device: string; major: number; minor: number } => ({ device: devices[`${d.major}:${d.minor}`] ?? "", major: d.major, minor: d.minor });
    out.diskio = {
      io_service_bytes: cur.io.map((d) => ({ ...dev(d), stats: { Read: d.readBytes, Write: d.writeBytes, Total: d.readBytes + d.writeBytes } })),
      io_serviced: cur.io.map((d) => ({ ...dev(d), stats: { Read: d.reads, Write: d.writes, Total: d.reads + d.writes } })),
    };
  }
  if (cur.processes) out.processes = { process_count: cur.processes.count, fd_count: 0, socket_count: 0, threads_current: cur.processes.threads, ...(cur.processes.threadsMax !== undefined ? { threads_max: cur.processes.threadsMax } : {}) };
  return out;
}

/** name -> the newest `count` samples, oldest first. */
export function statsResponse(entries: CgroupEntry[], history: (name: string, count: number) => HistorySample[], count: number, devices: Record<string, string>): Record<string, Record<string, unknown>[]> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const e of entries) {
    const samples = history(e.name, count + 1);
    const shown = samples.length > count ? samples.slice(1) : samples;
    const offset = samples.length - shown.length;
    out[e.name] = shown.map((s, i) => v2Stats(s, samples[offset + i - 1], devices));
  }
  return out;
}
