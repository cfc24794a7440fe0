/**
 * `/metrics/cadvisor` (and /metrics on 4194): cAdvisor's container_* families for every tracked
 * cgroup, labelled {container, id, image, name, namespace, pod} as the kubelet labels them, plus
 * the machine_* families and cadvisor_version_info.
 */
import type { MachineInfo } from "./machine.js";
import { Exposition, type Labels } from "./prom.js";
import type { CgroupEntry, StatsSnapshot } from "./types.js";

export interface VersionLabels {
  cadvisorVersion: string;
  cadvisorRevision: string;
  kernelVersion: string;
  osVersion: string;
  dockerVersion: string;
}

type Add = (labels: Labels, value: number, timestampMs?: number) => void;

/** The kubelet's label set: blank strings for what a cgroup does not have, so every series has all six. */
export function containerLabels(e: CgroupEntry): Labels {
  return {
    container: e.containerName ?? "",
    id: e.name,
    image: e.image ?? "",
    name: e.id ?? "",
    namespace: e.pod?.namespace ?? "",
    pod: e.pod?.name ?? "",
  };
}

function cpuFamilies(x: Exposition): (e: CgroupEntry, l: Labels) => void {
  const usage = x.family("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.");
  const user = x.family("container_cpu_user_seconds_total", "counter", "Cumulative user cpu time consumed in seconds.");
  const system = x.family("container_cpu_system_seconds_total", "counter", "Cumulative system cpu time consumed in seconds.");
  const periods = x.family("container_cpu_cfs_periods_total", "counter", "Number of elapsed enforcement period intervals.");
  const throttledPeriods = x.family("container_cpu_cfs_throttled_periods_total", "counter", "Number of throttled period intervals.");
  const throttledTime = x.family("container_cpu_cfs_throttled_seconds_total", "counter", "Total time duration the container has been throttled.");
  return (e, l) => {
    const c = e.stats.cpu;
    if (!c) return;
    usage({ ...l, cpu: "total" }, c.usageNs / 1e9, e.time);
    user(l, c.userNs / 1e9, e.time);
    system(l, c.systemNs / 1e9, e.time);
    if (e.stats.spec.cpuQuota !== undefined) {
      periods(l, c.periods, e.time);
      throttledPeriods(l, c.throttledPeriods, e.time);
      throttledTime(l, c.throttledNs / 1e9, e.time);
    }
  };
}

function memoryFamilies(x: Exposition): (e: CgroupEntry, l: Labels) => void {
  const g = (name: string, help: string): Add => x.family(name, "gauge", help);
  const usage = g("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed");
  const max = g("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes");
  const ws = g("container_memory_working_set_bytes", "Current working set in bytes.");
  const rss = g("container_memory_rss", "Size of RSS in bytes.");
  const cache = g("container_memory_cache", "Number of bytes of page cache memory.");
  const swap = g("container_memory_swap", "Container swap usage in bytes.");
  const mapped = g("container_memory_mapped_file", "Size of memory mapped files in bytes.");
  const kernel = g("container_memory_kernel_usage", "Size of kernel memory allocated in bytes.");
  const active = g("container_memory_total_active_file_bytes", "Current total active file in bytes.");
  const inactive = g("container_memory_total_inactive_file_bytes", "Current total inactive file in bytes.");
  const failcnt = x.family("container_memory_failcnt", "counter", "Number of memory usage hits limits");
  const failures = x.family("container_memory_failures_total", "counter", "Cumulative count of memory allocation failures.");
  const oom = x.family("container_oom_events_total", "counter", "Count of out of memory events observed for the container");
  return (e, l) => {
    const m = e.stats.memory;
    if (!m) return;
    const t = e.time;
    usage(l, m.usage, t);
    max(l, m.maxUsage, t);
    ws(l, m.workingSet, t);
    rss(l, m.rss, t);
    cache(l, m.cache, t);
    swap(l, m.swap, t);
    mapped(l, m.mappedFile, t);
    kernel(l, m.kernel, t);
    active(l, m.activeFile, t);
    inactive(l, m.inactiveFile, t);
    failcnt(l, m.failcnt, t);
    failures({ ...l, failure_type: "pgfault", scope: "container" }, m.pgfault, t);
    failures({ ...l, failure_type: "pgmajfault", scope: "container" }, m.pgmajfault, t);
    failures({ ...l, failure_type: "pgfault", scope: "hierarchy" }, m.hierarchicalPgfault, t);
    failures({ ...l, failure_type: "pgmajfault", scope: "hierarchy" }, m.hierarchicalPgmajfault, t);
    oom(l, m.oomEvents, t);
  };
}

function networkFamilies(x: Exposition): (e: CgroupEntry, l: Labels) => void {
  const c = (name: string, help: string): Add => x.family(name, "counter", help);
  const rxB = c("container_network_receive_bytes_total", "Cumulative count of bytes received");
  const rxP = c("container_network_receive_packets_total", "Cumulative count of packets received");
  const rxD = c("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving");
  const rxE = c("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving");
  const txB = c("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted");
  const txP = c("container_network_transmit_packets_total", "Cumulative count of packets transmitted");
  const txD = c("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting");
  const txE = c("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting");
  return (e, l) => {
    for (const i of e.network?.interfaces ?? []) {
      const il = { ...l, interface: i.name };
      const t = e.network?.time ?? e.time;
      rxB(il, i.rxBytes, t);
      rxP(il, i.rxPackets, t);
      rxD(il, i.rxDropped, t);
      rxE(il, i.rxErrors, t);
      txB(il, i.txBytes, t);
      txP(il, i.txPackets, t);
      txD(il, i.txDropped, t);
      txE(il, i.txErrors, t);
    }
  };
}

function diskFamilies(x: Exposition, devices: Record<string, string>): (e: CgroupEntry, l: Labels) => void {
  const usage = x.family("container_fs_usage_bytes", "gauge", "Number of bytes that are consumed by the container on this filesystem.");
  const limit = x.family("container_fs_limit_bytes", "gauge", "Number of bytes that can be consumed by the container on this filesystem.");
  const inodesFree = x.family("container_fs_inodes_free", "gauge", "Number of available Inodes");
  const inodesTotal = x.family("container_fs_inodes_total", "gauge", "Number of Inodes");
  const readBytes = x.family("container_fs_reads_bytes_total", "counter", "Cumulative count of bytes read");
  const writeBytes = x.family("container_fs_writes_bytes_total", "counter", "Cumulative count of bytes written");
  const reads = x.family("container_fs_reads_total", "counter", "Cumulative count of reads completed");
  const writes = x.family("container_fs_writes_total", "counter", "Cumulative count of writes completed");
  const blkio = x.family("container_blkio_device_usage_total", "counter", "Blkio Device bytes usage");
  return (e, l) => {
    const fs = e.rootfs;
    if (fs?.used !== undefined) {
      const fl = { ...l, device: fs.device ?? "" };
      usage(fl, fs.used, e.time);
      if (fs.capacity !== undefined) limit(fl, fs.capacity, e.time);
      if (fs.inodesFree !== undefined) inodesFree(fl, fs.inodesFree, e.time);
      if (fs.inodes !== undefined) inodesTotal(fl, fs.inodes, e.time);
    }
    for (const d of e.stats.io ?? []) {
      const mm = `${d.major}:${d.minor}`;
      const dl = { ...l, device: devices[mm] ?? mm };
      readBytes(dl, d.readBytes, e.time);
      writeBytes(dl, d.writeBytes, e.time);
      reads(dl, d.reads, e.time);
      writes(dl, d.writes, e.time);
      const bl = { ...l, device: devices[mm] ?? mm, major: String(d.major), minor: String(d.minor) };
      blkio({ ...bl, operation: "Read" }, d.readBytes, e.time);
      blkio({ ...bl, operation: "Write" }, d.writeBytes, e.time);
    }
  };
}

function processAndPressureFamilies(x: Exposition): (e: CgroupEntry, l: Labels) => void {
  const processes = x.family("container_processes", "gauge", "Number of processes running inside the container.");
  const threads = x.family("container_threads", "gauge", "Number of threads running inside the container");
  const threadsMax = x.family("container_threads_max", "gauge", "Maximum number of threads allowed inside the container, infinity if value is zero");
  const p = (name: string, help: string): Add => x.family(name, "counter", help);
  const pressure = {
    cpu: [p("container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion."), p("container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.")],
    memory: [p("container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion."), p("container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.")],
    io: [p("container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion."), p("container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.")],
  } as const;
  return (e, l) => {
    if (e.kind !== "root") {
      processes(l, e.stats.procs.length, e.time);
      if (e.stats.pids) {
        threads(l, e.stats.pids.current, e.time);
        threadsMax(l, e.stats.pids.max ?? 0, e.time);
      }
    }
    for (const r of ["cpu", "memory", "io"] as const) {
      const psi = e.stats.psi?.[r];
      if (!psi) continue;
      const [waiting, stalled] = pressure[r];
      waiting(l, psi.some.total / 1e6, e.time);
      if (psi.full) stalled(l, psi.full.total / 1e6, e.time);
    }
  };
}

function specFamilies(x: Exposition): (e: CgroupEntry, l: Labels) => void {
  const g = (name: string, help: string): Add => x.family(name, "gauge", help);
  const lastSeen = g("container_last_seen", "Last time a container was seen by the exporter");
  const start = g("container_start_time_seconds", "Start time of the container since unix epoch in seconds.");
  const period = g("container_spec_cpu_period", "CPU period of the container.");
  const quota = g("container_spec_cpu_quota", "CPU quota of the container.");
  const shares = g("container_spec_cpu_shares", "CPU share of the container.");
  const memLimit = g("container_spec_memory_limit_bytes", "Memory limit for the container.");
  const memRes = g("container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.");
  const swapLimit = g("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.");
  return (e, l) => {
    const s = e.stats.spec;
    lastSeen(l, Math.floor(e.time / 1000), e.time);
    start(l, e.createdAt / 1000);
    if (s.cpuPeriod !== undefined) period(l, s.cpuPeriod);
    if (s.cpuQuota !== undefined) quota(l, s.cpuQuota);
    if (s.cpuShares !== undefined) shares(l, s.cpuShares);
    memLimit(l, e.kind === "root" ? 0 : (s.memoryLimit ?? 0));
    memRes(l, s.memoryReservation ?? 0);
    swapLimit(l, s.swapLimit ?? 0);
  };
}

function machineFamilies(x: Exposition, m: MachineInfo | undefined): void {
  const g = (name: string, help: string): Add => x.family(name, "gauge", help);
  const scrapeError = g("machine_scrape_error", "1 if there was an error while getting machine metrics, 0 otherwise.");
  if (!m) {
    scrapeError({}, 1);
    return;
  }
  const l = { boot_id: m.boot_id, machine_id: m.machine_id, system_uuid: m.system_uuid };
  g("machine_cpu_cores", "Number of logical CPU cores.")(l, m.num_cores);
  g("machine_cpu_physical_cores", "Number of physical CPU cores.")(l, m.num_physical_cores);
  g("machine_cpu_sockets", "Number of CPU sockets.")(l, m.num_sockets);
  g("machine_memory_bytes", "Amount of memory installed on the machine.")(l, m.memory_capacity);
  g("machine_swap_bytes", "Amount of swap memory available on the machine.")(l, m.swap_capacity);
  const nvm = g("machine_nvm_capacity", "NVM capacity value labeled by NVM mode (memory mode or app direct mode).");
  nvm({ ...l, mode: "memory_mode" }, m.nvm.memory_mode_capacity);
  nvm({ ...l, mode: "app_direct_mode" }, m.nvm.app_direct_mode_capacity);
  g("machine_nvm_avg_power_budget_watts", "NVM power budget.")(l, m.nvm.avg_power_budget);
  scrapeError({}, 0);
}

/** The whole exposition for a snapshot (undefined: the snapshot failed, container_scrape_error 1). */
export function renderCadvisorMetrics(s: StatsSnapshot | undefined, machine: MachineInfo | undefined, version: VersionLabels): string {
  const x = new Exposition();
  x.family("cadvisor_version_info", "gauge", "A metric with a constant '1' value labeled by kernel version, OS version, docker version, cadvisor version & cadvisor revision.")(
    { cadvisorRevision: version.cadvisorRevision, cadvisorVersion: version.cadvisorVersion, dockerVersion: version.dockerVersion, kernelVersion: version.kernelVersion, osVersion: version.osVersion },
    1,
  );
  const scrapeError = x.family("container_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise");
  const writers = [cpuFamilies(x), memoryFamilies(x), networkFamilies(x), diskFamilies(x, s?.blockDevices ?? {}), processAndPressureFamilies(x), specFamilies(x)];
  for (const e of s?.cgroups ?? []) {
    const l = containerLabels(e);
    for (const w of writers) w(e, l);
  }
  scrapeError({}, s && !s.podsUnavailable ? 0 : 1);
  machineFamilies(x, machine);
  return x.render({ omitEmpty: true });
}
