/**
 * The machine as cAdvisor's MachineInfo describes it (served as /spec/, /api/v1.3/machine and
 * /api/v2.0/machine): cores and topology, memory and hugepages, ids, filesystems, disks, NICs.
 * Read from sysfs and procfs under configurable roots so tests can use fixture trees.
 */
import { readdir, realpath } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fsCapacity, parseMountinfo, type MountEntry } from "./fs.js";
import { parseCpuList, parseMeminfo, readNumber, readText } from "./read.js";

export interface CacheInfo {
  id: number;
  size: number;
  type: string;
  level: number;
}

export interface CoreInfo {
  core_id: number;
  thread_ids: number[];
  caches: CacheInfo[] | null;
  uncore_caches: CacheInfo[] | null;
  socket_id: number;
}

export interface NodeInfo {
  node_id: number;
  memory: number;
  hugepages: HugePages[];
  cores: CoreInfo[];
  caches: CacheInfo[] | null;
  distances: number[];
}

export interface HugePages {
  page_size: number;
  num_pages: number;
}

export interface FsInfo {
  device: string;
  capacity: number;
  type: string;
  inodes: number;
  has_inodes: boolean;
}

export interface DiskInfo {
  name: string;
  major: number;
  minor: number;
  size: number;
  scheduler: string;
}

export interface NetInfo {
  name: string;
  mac_address: string;
  speed: number;
  mtu: number;
}

export interface MachineInfo {
  timestamp: string;
  vendor_id: string;
  num_cores: number;
  num_physical_cores: number;
  num_sockets: number;
  cpu_frequency_khz: number;
  memory_capacity: number;
  swap_capacity: number;
  memory_by_type: Record<string, { Capacity: number; DimmCount: number }>;
  nvm: { memory_mode_capacity: number; app_direct_mode_capacity: number; avg_power_budget: number };
  hugepages: HugePages[];
  machine_id: string;
  system_uuid: string;
  boot_id: string;
  filesystems: FsInfo[];
  disk_map: Record<string, DiskInfo>;
  network_devices: NetInfo[];
  topology: NodeInfo[];
  cloud_provider: string;
  instance_type: string;
  instance_id: string;
}

export interface MachineRoots {
  proc: string;
  sys: string;
  /** Where machine-id lives (/etc). */
  etc: string;
}

export const HOST_ROOTS: MachineRoots = { proc: "/proc", sys: "/sys", etc: "/etc" };

/** Filesystem types worth reporting (real storage, not pseudo filesystems). */
const STORAGE_FS = new Set(["ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "vfat", "overlay", "tmpfs", "nfs", "nfs4", "ceph", "fuse.glusterfs"]);
/** Block devices that are not disks. */
const NOT_DISKS = ["loop", "ram", "sr", "fd"];

const trimmed = async (p: string): Promise<string> => ((await readText(p)) ?? "").trim();

/** "32K", "1024K", "32M" (sysfs cache sizes) in bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)([KMG]?)$/.exec(s.trim());
  if (!m?.[1]) return 0;
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * mult;
}

async function listNumbered(dir: string, prefix: string): Promise<number[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const re = new RegExp(`^${prefix}(\\d+)$`);
  return names.map((n) => re.exec(n)?.[1]).filter((x): x is string => x !== undefined).map(Number).sort((a, b) => a - b);
}

async function hugepagesUnder(dir: string): Promise<HugePages[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: HugePages[] = [];
  for (const n of names) {
    const m = /^hugepages-(\d+)kB$/.exec(n);
    if (!m?.[1]) continue;
    out.push({ page_size: Number(m[1]), num_pages: (await readNumber(join(dir, n, "nr_hugepages"))) ?? 0 });
  }
  return out.sort((a, b) => a.page_size - b.page_size);
}

interface CpuTopo {
  cpu: number;
  coreId: number;
  socket: number;
  caches: { cache: CacheInfo; shared: number[] }[];
}

async function readCpuTopo(sys: string, cpu: number): Promise<CpuTopo> {
  const base = join(sys, "devices/system/cpu", `cpu${cpu}`);
  const coreId = await readNumber(join(base, "topology/core_id"));
  const socket = await readNumber(join(base, "topology/physical_package_id"));
  const caches: CpuTopo["caches"] = [];
  for (const idx of await listNumbered(join(base, "cache"), "index")) {
    const d = join(base, "cache", `index${idx}`);
    const [level, type, size, shared, id] = await Promise.all([readNumber(join(d, "level")), trimmed(join(d, "type")), trimmed(join(d, "size")), readText(join(d, "shared_cpu_list")), readNumber(join(d, "id"))]);
    caches.push({ cache: { id: id ?? 0, size: parseSize(size), type, level: level ?? 0 }, shared: parseCpuList(shared) });
  }
  return { cpu, coreId: coreId ?? cpu, socket: socket ?? 0, caches };
}

/** NUMA nodes with their cores (threads grouped by socket and core id) and caches. */
export async function readTopology(sys: string, memoryCapacity: number, numCpus: number): Promise<NodeInfo[]> {
  let cpuIds = await listNumbered(join(sys, "devices/system/cpu"), "cpu");
  if (cpuIds.length === 0) cpuIds = Array.from({ length: numCpus }, (_, i) => i);
  const topo = await Promise.all(cpuIds.map((c) => readCpuTopo(sys, c)));
  let nodeIds = await listNumbered(join(sys, "devices/system/node"), "node");
  const single = nodeIds.length === 0;
  if (single) nodeIds = [0];
  const nodes: NodeInfo[] = [];
  for (const id of nodeIds) {
    const d = join(sys, "devices/system/node", `node${id}`);
    const cpuList = single ? cpuIds : parseCpuList(await readText(join(d, "cpulist")));
    const mem = single ? memoryCapacity : (parseMeminfo(await readText(join(d, "meminfo"))).get("MemTotal") ?? 0);
    const distances = ((await readText(join(d, "distance"))) ?? "").trim().split(/\s+/).filter((s) => s !== "").map(Number);
    const cores = new Map<string, CoreInfo>();
    const nodeCaches = new Map<string, CacheInfo>();
    for (const t of topo.filter((x) => cpuList.includes(x.cpu))) {
      const key = `${t.socket}/${t.coreId}`;
      let core = cores.get(key);
      if (!core) {
        core = { core_id: t.coreId, thread_ids: [], caches: null, uncore_caches: null, socket_id: t.socket };
        cores.set(key, core);
      }
      core.thread_ids.push(t.cpu);
      const siblings = topo.filter((x) => x.socket === t.socket && x.coreId === t.coreId).map((x) => x.cpu);
      for (const c of t.caches) {
        const perCore = c.shared.length === 0 || c.shared.every((s) => siblings.includes(s));
        if (perCore) {
          if (core.thread_ids.length === 1) (core.caches ??= []).push(c.cache);
        } else nodeCaches.set(`${c.cache.level}/${c.cache.type}/${c.shared.join(",")}`, c.cache);
      }
    }
    nodes.push({
      node_id: id,
      memory: mem,
      hugepages: await hugepagesUnder(join(d, "hugepages")),
      cores: [...cores.values()].sort((a, b) => a.socket_id - b.socket_id || a.core_id - b.core_id),
      caches: nodeCaches.size > 0 ? [...nodeCaches.values()] : null,
      distances,
    });
  }
  return nodes;
}

async function cpuFrequencyKhz(proc: string, sys: string): Promise<number> {
  const max = await readNumber(join(sys, "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"));
  if (max !== undefined) return max;
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec((await readText(join(proc, "cpuinfo"))) ?? "")?.[1];
  return mhz ? Math.round(Number(mhz) * 1000) : 0;
}

export async function readDiskMap(sys: string): Promise<Record<string, DiskInfo>> {
  const out: Record<string, DiskInfo> = {};
  for (const name of (await readdir(join(sys, "block")).catch(() => [] as string[])).sort()) {
    if (NOT_DISKS.some((p) => name.startsWith(p))) continue;
    const d = join(sys, "block", name);
    const dev = await trimmed(join(d, "dev"));
    const [maj, min] = dev.split(":").map(Number);
    if (maj === undefined || min === undefined || !Number.isFinite(maj)) continue;
    const sectors = (await readNumber(join(d, "size"))) ?? 0;
    const sched = /\[([^\]]+)\]/.exec(await trimmed(join(d, "queue/scheduler")))?.[1] ?? "none";
    out[dev] = { name, major: maj, minor: min ?? 0, size: sectors * 512, scheduler: sched };
  }
  return out;
}

/** Physical NICs (not under devices/virtual), or every non-loopback, non-veth one when there is none. */
export async function readNetworkDevices(sys: string): Promise<NetInfo[]> {
  const base = join(sys, "class/net");
  const names = (await readdir(base).catch(() => [] as string[])).sort();
  const all: { name: string; virtual: boolean }[] = [];
  for (const name of names) {
    const target = await realpath(join(base, name)).catch(() => "");
    all.push({ name, virtual: target.includes("/devices/virtual/") });
  }
  let chosen = all.filter((n) => !n.virtual);
  if (chosen.length === 0) chosen = all.filter((n) => n.name !== "lo" && !n.name.startsWith("veth"));
  return Promise.all(
    chosen.map(async ({ name }) => {
      const speed = (await readNumber(join(base, name, "speed"))) ?? 0;
      return { name, mac_address: await trimmed(join(base, name, "address")), speed: speed > 0 ? speed : 0, mtu: (await readNumber(join(base, name, "mtu"))) ?? 0 };
    }),
  );
}

/** Filesystems on block devices and tmpfs, one per device. */
export async function readFilesystems(mounts: MountEntry[]): Promise<FsInfo[]> {
  const byDevice = new Map<string, MountEntry>();
  for (const m of mounts) {
    if (!STORAGE_FS.has(m.fsType)) continue;
    const device = m.source.startsWith("/dev/") ? m.source : m.fsType === "tmpfs" ? (m.mountPoint === "/dev/shm" ? "shm" : "") : "";
    if (device === "" || byDevice.has(device)) continue;
    byDevice.set(device, m);
  }
  const out: FsInfo[] = [];
  for (const [device, m] of byDevice) {
    const cap = await fsCapacity(m.mountPoint);
    if (!cap) continue;
    out.push({ device, capacity: cap.capacity, type: "vfs", inodes: cap.inodes, has_inodes: cap.inodes > 0 });
  }
  return out;
}

async function cloudProvider(sys: string): Promise<string> {
  const vendor = await trimmed(join(sys, "class/dmi/id/sys_vendor"));
  const product = await trimmed(join(sys, "class/dmi/id/product_name"));
  if (/google/i.test(vendor) || /google/i.test(product)) return "GCE";
  if (/amazon/i.test(vendor) || /^(HVM domU|amazon)/i.test(product)) return "AWS";
  if (/microsoft/i.test(vendor) && /virtual machine/i.test(product)) return "Azure";
  return "Unknown";
}

export async function readMachineInfo(roots: MachineRoots = HOST_ROOTS, now = new Date(0)): Promise<MachineInfo> {
  const { proc, sys, etc } = roots;
  const numCores = cpus().length;
  const memoryCapacity = totalmem();
  const meminfo = parseMeminfo(await readText(join(proc, "meminfo")));
  const topology = await readTopology(sys, memoryCapacity, numCores);
  const cores = topology.flatMap((n) => n.cores);
  const sockets = new Set(cores.map((c) => c.socket_id));
  const mounts = parseMountinfo(await readText(join(proc, "self/mountinfo")));
  const [filesystems, diskMap, nics, freq, provider] = await Promise.all([readFilesystems(mounts), readDiskMap(sys), readNetworkDevices(sys), cpuFrequencyKhz(proc, sys), cloudProvider(sys)]);
  return {
    timestamp: now.toISOString(),
    vendor_id: /^vendor_id\s*:\s*(.+)$/m.exec((await readText(join(proc, "cpuinfo"))) ?? "")?.[1]?.trim() ?? "",
    num_cores: numCores,
    num_physical_cores: cores.length || numCores,
    num_sockets: sockets.size || 1,
    cpu_frequency_khz: freq,
    memory_capacity: memoryCapacity,
    swap_capacity: meminfo.get("SwapTotal") ?? 0,
    memory_by_type: {},
    nvm: { memory_mode_capacity: 0, app_direct_mode_capacity: 0, avg_power_budget: 0 },
    hugepages: await hugepagesUnder(join(sys, "kernel/mm/hugepages")),
    machine_id: (await trimmed(join(etc, "machine-id"))) || (await trimmed("/var/lib/dbus/machine-id")),
    system_uuid: (await trimmed(join(sys, "class/dmi/id/product_uuid"))).toLowerCase(),
    boot_id: await trimmed(join(proc, "sys/kernel/random/boot_id")),
    filesystems,
    disk_map: diskMap,
    network_devices: nics,
    topology,
    cloud_provider: provider,
    instance_type: "Unknown",
    instance_id: "None",
  };
}
