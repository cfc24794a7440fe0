/**
 * The stats provider: reads the node, the pods' cgroups and the runtime into one snapshot, keeps a
 * short history per cgroup (for usageNanoCores and the charts), and caches the latest snapshot so
 * that scrapes arriving together share one read.
 */
import { readdir, realpath, stat } from "node:fs/promises";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { basename, join, posix } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import type { Container, ContainerStats, ImageFsInfo, ImageFsInfoResponse, PodSandbox } from "../cri/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { runPeriodically } from "../util/periodic.js";
import { detectCgroupLayout, type CgroupLayout, type CgroupPath, type CgroupSpec, type CgroupStats } from "./cgroup.js";
import { readCgroup } from "./cgroup-read.js";
import { memoryFromStat } from "./cgroup-v2.js";
import { createDuCache, fsCapacity, mountOf, parseMountinfo, type FsCapacity, type MountEntry } from "./fs.js";
import { createHistory } from "./history.js";
import { readMachineInfo, type MachineInfo, type MachineRoots } from "./machine.js";
import { assemblePods } from "./pods.js";
import { parseProcCgroup, readBootTimeMs, readMeminfo, readNetDev, readProcStatCpu, readRlimit } from "./procfs.js";
import { readText } from "./read.js";
import { describe as describeEntry, discoverPodCgroups, runtimeView, type DiscoveredCgroup, type RuntimeView } from "./tree.js";
import type { CgroupEntry, FsUsage, HistorySample, StatsSnapshot } from "./types.js";

/** The runtime calls the stats need (CRI RuntimeService). */
export interface StatsRuntime {
  listPodSandbox(): Promise<PodSandbox[]>;
  listContainers(): Promise<Container[]>;
  listContainerStats(): Promise<ContainerStats[]>;
}

export interface StatsImages {
  imageFsInfo(): Promise<ImageFsInfoResponse>;
}

export interface StatsProviderDeps {
  runtime: StatsRuntime;
  images?: StatsImages;
  /** Desired pods with their status (volumes, start times, images). */
  pods?: () => V1Pod[];
  clock: Clock;
  logger: Logger;
}

export interface StatsProviderOptions {
  nodeName: string;
  /** The kubelet's root directory: the node filesystem, and pods/<uid>/volumes. */
  rootDir: string;
  podLogsDir: string;
  cgroupRoot?: string;
  /** Detected under /sys/fs/cgroup when absent. */
  layout?: CgroupLayout;
  roots?: MachineRoots;
  /** A snapshot younger than this is served again (default 1 s). */
  maxAgeMs?: number;
  /** Samples kept per cgroup (default 60). */
  historySize?: number;
  /** Background sampling period of run() (default 10 s). */
  housekeepingIntervalMs?: number;
  /**
   * While this says the node is busy (starting pods), a due background sample waits, for at most
   * one more period: it reads every cgroup and asks the runtime for every container's stats, work
   * that would compete with the pod starts for the CPU.
   */
  busy?: () => boolean;
  /** How long a directory's du result is reused (default 15 s). */
  duTtlMs?: number;
}

export interface StatsProvider {
  readonly nodeName: string;
  /** Samples in the background until the signal aborts, so rates and charts have history. */
  run(signal: AbortSignal): Promise<void>;
  /** The latest snapshot, taken now unless one is younger than maxAgeMs. */
  snapshot(maxAgeMs?: number): Promise<StatsSnapshot>;
  /**
   * The node-level figures only (memory, filesystems, processes; no pods, no cgroups below the
   * root): the latest full snapshot when it is younger than maxAgeMs, else a read of those alone,
   * which costs no runtime list and no cgroup walk. What the eviction signals need.
   */
  nodeSnapshot(maxAgeMs?: number): Promise<StatsSnapshot>;
  history(name: string, count?: number): HistorySample[];
  machineInfo(): Promise<MachineInfo>;
}

const MACHINE_INFO_TTL_MS = 60_000;
/** Limits (cgroup spec files) are re-read this often; they change only when a pod is resized. */
const SPEC_TTL_MS = 10_000;
/** The runtime's container stats are needed for writable-layer usage, which containerd itself refreshes about this often. */
const CRI_STATS_TTL_MS = 10_000;
/** How often a background sample that waits for the node to be less busy looks again. */
const BUSY_RECHECK_MS = 1_000;
/** Cgroups read between two yields to the event loop (~0.3 ms each). */
const READ_BATCH = 8;

/** Maps in order, yielding to the event loop every `batch` items so a big read never blocks requests for long. */
async function mapYielding<T, R>(items: T[], batch: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const [i, item] of items.entries()) {
    if (i > 0 && i % batch === 0) await yieldToLoop();
    out.push(await fn(item));
  }
  return out;
}

function fsFromCapacity(time: number, cap: FsCapacity | undefined): FsUsage | undefined {
  if (!cap) return undefined;
  return { time, capacity: cap.capacity, available: cap.available, used: cap.used, inodes: cap.inodes, inodesFree: cap.inodesFree, inodesUsed: cap.inodes - cap.inodesFree };
}

export function createStatsProvider(deps: StatsProviderDeps, opts: StatsProviderOptions): StatsProvider {
  const { clock, logger } = deps;
  const roots = opts.roots ?? { proc: "/proc", sys: "/sys", etc: "/etc" };
  const maxAgeDefault = opts.maxAgeMs ?? 1000;
  const history = createHistory(opts.historySize ?? 60);
  const du = createDuCache(clock, opts.duTtlMs ?? 15_000);
  const kubepods = posix.join("/", opts.cgroupRoot ?? "", "kubepods");
  const createdCache = new Map<string, number>();
  const specCache = new Map<string, { at: number; spec: CgroupSpec }>();
  let criStats: { at: number; stats: ContainerStats[] } | undefined;
  let layout: CgroupLayout | undefined = opts.layout;
  let latest: StatsSnapshot | undefined;
  let inflight: Promise<StatsSnapshot> | undefined;
  let machine: { at: number; info: Promise<MachineInfo> } | undefined;
  let bootTime: number | undefined;
  let devices: { at: number; names: Record<string, string> } | undefined;

  /** "major:minor" -> /dev/<name>, from /sys/dev/block (re-read every minute). */
  const blockDevices = async (now: number): Promise<Record<string, string>> => {
    if (devices && now - devices.at < MACHINE_INFO_TTL_MS) return devices.names;
    const dir = join(roots.sys, "dev/block");
    const names: Record<string, string> = {};
    for (const mm of await readdir(dir).catch(() => [] as string[])) {
      const target = await realpath(join(dir, mm)).catch(() => "");
      if (target) names[mm] = `/dev/${basename(target)}`;
    }
    devices = { at: now, names };
    return names;
  };

  const getLayout = async (): Promise<CgroupLayout> => (layout ??= await detectCgroupLayout(join(roots.sys, "fs/cgroup")));

  const createdAt = async (l: CgroupLayout, name: string, fallback: number): Promise<number> => {
    const known = createdCache.get(name);
    if (known !== undefined) return known;
    const base = l.version === 2 ? l.root : (l.mounts.memory ?? l.mounts.cpuacct ?? l.mounts.cpu ?? "");
    const st = await stat(join(base, name)).catch(() => undefined);
    const t = st ? Math.round(st.birthtimeMs || st.ctimeMs) : fallback;
    createdCache.set(name, t);
    return t;
  };

  const listRuntime = async (errors: string[]): Promise<{ sandboxes: PodSandbox[]; containers: Container[]; ok: boolean }> => {
    try {
      const [sandboxes, containers] = await Promise.all([deps.runtime.listPodSandbox(), deps.runtime.listContainers()]);
      return { sandboxes, containers, ok: true };
    } catch (err) {
      errors.push(`listing pods from the runtime: ${errorMessage(err)}`);
      return { sandboxes: [], containers: [], ok: false };
    }
  };

  /**
   * ListContainerStats is the runtime's slowest list (it reads every container's cgroup itself).
   * Its writable-layer figures are reused for a while, unless a running container is new to them,
   * or has no cgroup we can read (then its CPU and memory must come from the runtime, fresh).
   */
  const containerStats = async (time: number, running: Container[], withCgroup: Set<string | undefined>, errors: string[]): Promise<ContainerStats[]> => {
    const cached = criStats && time - criStats.at < CRI_STATS_TTL_MS ? criStats : undefined;
    const known = new Set(cached?.stats.map((s) => s.attributes?.id));
    if (cached && running.every((c) => withCgroup.has(c.id) && known.has(c.id))) return cached.stats;
    try {
      const stats = await deps.runtime.listContainerStats();
      criStats = { at: time, stats };
      return stats;
    } catch (err) {
      errors.push(`ListContainerStats: ${errorMessage(err)}`);
      return criStats?.stats ?? [];
    }
  };

  /** The runtime's image and container filesystems: its usage figures plus statfs of their mount points. */
  const runtimeFs = async (time: number, errors: string[]): Promise<{ image?: FsUsage; container?: FsUsage }> => {
    if (!deps.images) return {};
    const info = await deps.images.imageFsInfo().catch((err: unknown) => {
      errors.push(`ImageFsInfo: ${errorMessage(err)}`);
      return undefined;
    });
    const one = async (fs: ImageFsInfo | undefined): Promise<FsUsage | undefined> => {
      if (!fs) return undefined;
      const cap = fs.fsId?.mountpoint ? await fsCapacity(fs.fsId.mountpoint) : undefined;
      const u: FsUsage = fsFromCapacity(time, cap) ?? { time };
      if (fs.usedBytes) u.used = Number(fs.usedBytes.value);
      if (fs.inodesUsed) u.inodesUsed = Number(fs.inodesUsed.value);
      return u;
    };
    const image = await one(info?.imageFilesystems[0]);
    const container = (await one(info?.containerFilesystems[0])) ?? image;
    return { ...(image ? { image } : {}), ...(container ? { container } : {}) };
  };

  /** "/": the cgroup root, with /proc standing in for what a v2 root lacks (memory.current). */
  const readRoot = async (l: CgroupLayout, time: number, memTotal: number, meminfo: Map<string, number>): Promise<CgroupEntry> => {
    const stats: CgroupStats = (await readCgroup(l, "/")) ?? { procs: [], spec: {} };
    if (!stats.memory) {
      const usage = memTotal - (meminfo.get("MemFree") ?? 0);
      stats.memory = memoryFromStat(usage, new Map([["inactive_file", meminfo.get("Inactive(file)") ?? 0], ["active_file", meminfo.get("Active(file)") ?? 0], ["file", meminfo.get("Cached") ?? 0], ["anon", (meminfo.get("AnonPages") ?? 0)]]));
    }
    if (!stats.cpu) {
      const c = await readProcStatCpu(roots.proc);
      if (c) stats.cpu = { usageNs: c.totalNs, userNs: c.userNs, systemNs: c.systemNs, periods: 0, throttledPeriods: 0, throttledNs: 0 };
    }
    stats.spec.memoryLimit ??= memTotal;
    return { name: "/", kind: "root", time, createdAt: bootTime ?? 0, stats };
  };

  const readDiscovered = async (l: CgroupLayout, time: number, found: DiscoveredCgroup[], ctx: { view: RuntimeView; imageOf: (c: Container) => string }): Promise<CgroupEntry[]> => {
    const { view, imageOf } = ctx;
    const read = await mapYielding(found, READ_BATCH, async (d) => {
      const known = specCache.get(d.name);
      const stats = await readCgroup(l, d.name, known && time - known.at < SPEC_TTL_MS ? known.spec : undefined);
      if (!stats) {
        specCache.delete(d.name);
        return undefined;
      }
      if (!known || time - known.at >= SPEC_TTL_MS) specCache.set(d.name, { at: time, spec: stats.spec });
      const e: CgroupEntry = { name: d.name, kind: d.kind, time, createdAt: 0, stats };
      describeEntry(e, d, view, imageOf);
      if (e.createdAt === 0) e.createdAt = await createdAt(l, d.name, time);
      return e;
    });
    return read.filter((e): e is CgroupEntry => e !== undefined);
  };

  const kubeletEntry = async (l: CgroupLayout, time: number): Promise<CgroupEntry | undefined> => {
    const self = parseProcCgroup(await readText(join(roots.proc, "self/cgroup")));
    const path: CgroupPath = l.version === 2 ? self.unified : self;
    const name = l.version === 2 ? self.unified : (self.byController.memory ?? self.byController.cpuacct ?? "/");
    const stats = await readCgroup(l, path);
    if (!stats) return undefined;
    return { name, kind: "system", time, createdAt: await createdAt(l, name, bootTime ?? time), stats };
  };

  /** A snapshot of the node alone (no cgroup tree, no pods); collect adds those. */
  const nodeOnly = ({ time, meminfo, root, rlimit, errors }: { time: number; meminfo: Map<string, number>; root: CgroupEntry; rlimit: StatsSnapshot["rlimit"]; errors: string[] }): StatsSnapshot => ({
    time,
    nodeName: opts.nodeName,
    bootTime: bootTime ?? 0,
    memoryCapacity: meminfo.get("MemTotal") ?? 0,
    swapCapacity: meminfo.get("SwapTotal") ?? 0,
    swapUsed: (meminfo.get("SwapTotal") ?? 0) - (meminfo.get("SwapFree") ?? 0),
    root,
    cgroups: [root],
    pods: [],
    systemContainers: [],
    rlimit,
    blockDevices: {},
    errors,
    podsUnavailable: true,
  });

  const collect = async (): Promise<StatsSnapshot> => {
    const time = clock.now();
    const l = await getLayout();
    const errors: string[] = [];
    bootTime ??= await readBootTimeMs(roots.proc);
    const [rt, found, meminfo, rlimit, nodeIfaces, rootCap, rfs, kubelet, mountText, blockDevs] = await Promise.all([
      listRuntime(errors),
      discoverPodCgroups(l, kubepods),
      readMeminfo(roots.proc),
      readRlimit(roots.proc),
      readNetDev(roots.proc, "self"),
      fsCapacity(opts.rootDir),
      runtimeFs(time, errors),
      kubeletEntry(l, time),
      readText(join(roots.proc, "self/mountinfo")),
      blockDevices(time),
    ]);
    const mounts: MountEntry[] = parseMountinfo(mountText);
    const deviceOf = (p: string): string | undefined => {
      const m = mountOf(mounts, p);
      if (!m) return undefined;
      return m.source.startsWith("/dev/") ? m.source : (blockDevs[m.majorMinor] ?? m.source);
    };
    const memTotal = meminfo.get("MemTotal") ?? 0;
    const preliminary = runtimeView(rt.sandboxes, rt.containers, []);
    const desired = new Map((deps.pods?.() ?? []).map((p) => [p.metadata?.uid ?? "", p]));
    const imageOf = (c: Container): string => {
      const spec = desired.get(c.labels["io.kubernetes.pod.uid"] ?? "")?.spec;
      const fromSpec = [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])].find((x) => x.name === c.metadata.name)?.image;
      return fromSpec ?? c.image.image;
    };
    const root = await readRoot(l, time, memTotal, meminfo);
    const tree = await readDiscovered(l, time, found, { view: preliminary, imageOf });
    const running = rt.containers.filter((c) => c.state === "CONTAINER_RUNNING");
    const cstats = await containerStats(time, running, new Set(tree.map((e) => e.id)), errors);
    const view: RuntimeView = { ...preliminary, containerStats: runtimeView([], [], cstats).containerStats };
    const extra: CgroupEntry[] = [];
    const capMemo = new Map<string, Promise<FsCapacity | undefined>>();
    const pods = await assemblePods({
      time,
      view,
      desired,
      podCgroupByUid: new Map(tree.filter((e) => e.kind === "pod").map((e) => [/pod([^/]+)$/.exec(e.name)?.[1] ?? "", e])),
      cgroupById: new Map(tree.filter((e) => e.id !== undefined).map((e) => [e.id ?? "", e])),
      imageOf,
      procRoot: roots.proc,
      rootDir: opts.rootDir,
      podLogsDir: opts.podLogsDir,
      du,
      capacityOf: (p) => {
        let v = capMemo.get(p);
        if (!v) capMemo.set(p, (v = fsCapacity(p)));
        return v;
      },
      deviceOf,
      adopt: (e) => extra.push(e),
    });
    if (nodeIfaces) root.network = { time, interfaces: nodeIfaces };
    const nodeFs = fsFromCapacity(time, rootCap);
    const rootDev = deviceOf(opts.rootDir);
    if (nodeFs && rootDev) nodeFs.device = rootDev;
    const all = [root, ...(kubelet && kubelet.name !== "/" ? [kubelet] : []), ...tree, ...extra];
    for (const e of all) history.record(e);
    history.prune(time, 5 * 60_000);
    du.sweep();
    const cgroups = [root, ...tree, ...extra.filter((e) => !e.name.startsWith("pod:"))].sort((a, b) => a.name.localeCompare(b.name));
    const podsCg = tree.find((e) => e.name === kubepods);
    const systemContainers = [...(kubelet ? [{ name: "kubelet", entry: kubelet }] : []), ...(podsCg ? [{ name: "pods", entry: podsCg }] : [])];
    const snap: StatsSnapshot = { ...nodeOnly({ time, meminfo, root, rlimit, errors }), cgroups, pods, systemContainers, blockDevices: blockDevs, podsUnavailable: !rt.ok };
    if (root.network) snap.nodeNetwork = root.network;
    if (nodeFs) snap.nodeFs = nodeFs;
    if (rfs.image) snap.imageFs = rfs.image;
    if (rfs.container) snap.containerFs = rfs.container;
    if (errors.length > 0) logger.v(2).info("stats: partial snapshot", { errors: errors.join("; ") });
    return snap;
  };

  const collectNode = async (): Promise<StatsSnapshot> => {
    const time = clock.now();
    const l = await getLayout();
    const errors: string[] = [];
    bootTime ??= await readBootTimeMs(roots.proc);
    const [meminfo, rlimit, rootCap, rfs] = await Promise.all([readMeminfo(roots.proc), readRlimit(roots.proc), fsCapacity(opts.rootDir), runtimeFs(time, errors)]);
    const memTotal = meminfo.get("MemTotal") ?? 0;
    const root = await readRoot(l, time, memTotal, meminfo);
    const snap = nodeOnly({ time, meminfo, root, rlimit, errors });
    const nodeFs = fsFromCapacity(time, rootCap);
    if (nodeFs) snap.nodeFs = nodeFs;
    if (rfs.image) snap.imageFs = rfs.image;
    if (rfs.container) snap.containerFs = rfs.container;
    return snap;
  };

  const nodeSnapshot = (maxAgeMs = maxAgeDefault): Promise<StatsSnapshot> => {
    if (latest && clock.now() - latest.time <= maxAgeMs) return Promise.resolve(latest);
    return inflight ?? collectNode();
  };

  const snapshot = (maxAgeMs = maxAgeDefault): Promise<StatsSnapshot> => {
    if (latest && clock.now() - latest.time <= maxAgeMs) return Promise.resolve(latest);
    if (inflight) return inflight;
    const p = collect()
      .then((s) => {
        latest = s;
        return s;
      })
      .finally(() => {
        inflight = undefined;
      });
    inflight = p;
    return p;
  };

  return {
    nodeName: opts.nodeName,
    snapshot,
    nodeSnapshot,
    history: (name, count) => history.samples(name, count),
    machineInfo() {
      const now = clock.now();
      if (!machine || now - machine.at > MACHINE_INFO_TTL_MS) {
        const info = readMachineInfo(roots, new Date(now));
        machine = { at: now, info };
        info.catch(() => {
          machine = undefined;
        });
      }
      return machine.info;
    },
    async run(signal) {
      const every = opts.housekeepingIntervalMs ?? 10_000;
      const sample = async (): Promise<void> => {
        // Yield to pod starts, for one period at most; re-checked every second.
        const until = clock.now() + every;
        while (opts.busy?.() === true && clock.now() < until && !signal.aborted) await clock.sleep(Math.min(BUSY_RECHECK_MS, until - clock.now()), signal).catch(() => undefined);
        if (!signal.aborted) await snapshot(every / 2);
      };
      await runPeriodically(sample, {
        clock,
        signal,
        periodMs: every,
        onError: (err) => logger.warn("stats housekeeping failed", { err: errorMessage(err) }),
      });
    },
  };
}
