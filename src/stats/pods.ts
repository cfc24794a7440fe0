/**
 * Pods as the stats see them: one per ready sandbox, with its cgroup, its running containers,
 * the network of its namespace, and the disk its containers, logs and volumes use.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import type { Container, PodSandbox } from "../cri/types.js";
import { ANN_HOST_NETWORK } from "../api/labels.js";
import type { DuCache, FsCapacity } from "./fs.js";
import { readNetDev } from "./procfs.js";
import { nsToMs, podRefOfSandbox, statsFromCri, sumStats, type RuntimeView } from "./tree.js";
import type { CgroupEntry, ContainerEntry, FsUsage, NetworkSample, PodEntry, VolumeUsage } from "./types.js";

export interface PodAssemblyContext {
  time: number;
  view: RuntimeView;
  /** Desired pods by uid (spec volumes, start time, hostNetwork), when known. */
  desired: Map<string, V1Pod>;
  podCgroupByUid: Map<string, CgroupEntry>;
  cgroupById: Map<string, CgroupEntry>;
  imageOf: (c: Container) => string;
  procRoot: string;
  rootDir: string;
  podLogsDir: string;
  du: DuCache;
  capacityOf: (path: string) => Promise<FsCapacity | undefined>;
  /** The device of the filesystem holding `path`. */
  deviceOf: (path: string) => string | undefined;
  /** Called for entries made here (containers without a readable cgroup, summed pods). */
  adopt: (e: CgroupEntry) => void;
}

const EMPTY_DIR_PLUGIN = "kubernetes.io~empty-dir";
const TMPFS_MAGIC = 0x01021994;

function fsUsage(time: number, cap: FsCapacity | undefined, used: number | undefined, inodesUsed: number | undefined): FsUsage {
  const u: FsUsage = { time };
  if (cap) {
    u.capacity = cap.capacity;
    u.available = cap.available;
    u.inodes = cap.inodes;
    u.inodesFree = cap.inodesFree;
  }
  if (used !== undefined) u.used = used;
  if (inodesUsed !== undefined) u.inodesUsed = inodesUsed;
  return u;
}

async function podNetwork(ctx: PodAssemblyContext, entries: (CgroupEntry | undefined)[]): Promise<NetworkSample | undefined> {
  for (const e of entries) {
    const pid = e?.stats.procs[0];
    if (pid === undefined) continue;
    const interfaces = await readNetDev(ctx.procRoot, pid);
    if (interfaces) return { time: ctx.time, interfaces };
  }
  return undefined;
}

async function containerFs(ctx: PodAssemblyContext, pod: PodEntry, c: Container): Promise<{ rootfs?: FsUsage; logs?: FsUsage }> {
  const out: { rootfs?: FsUsage; logs?: FsUsage } = {};
  const wl = ctx.view.containerStats.get(c.id)?.writableLayer;
  if (wl) {
    const cap = wl.fsId?.mountpoint ? await ctx.capacityOf(wl.fsId.mountpoint) : undefined;
    const used = wl.usedBytes ? Number(wl.usedBytes.value) : undefined;
    const inodes = wl.inodesUsed ? Number(wl.inodesUsed.value) : undefined;
    out.rootfs = fsUsage(ctx.time, cap, used, inodes);
    const dev = wl.fsId?.mountpoint ? ctx.deviceOf(wl.fsId.mountpoint) : undefined;
    if (dev) out.rootfs.device = dev;
  }
  const { namespace, name, uid } = pod.ref;
  const logDir = join(ctx.podLogsDir, `${namespace}_${name}_${uid}`, c.metadata.name);
  const [du, cap] = await Promise.all([ctx.du.get(logDir), ctx.capacityOf(ctx.podLogsDir)]);
  if (du) {
    out.logs = fsUsage(ctx.time, cap, du.bytes, du.inodes);
    const dev = ctx.deviceOf(ctx.podLogsDir);
    if (dev) out.logs.device = dev;
  }
  return out;
}

async function podVolumes(ctx: PodAssemblyContext, uid: string, spec: V1Pod | undefined): Promise<VolumeUsage[]> {
  const base = join(ctx.rootDir, "pods", uid, "volumes");
  const out: VolumeUsage[] = [];
  for (const plugin of (await readdir(base).catch(() => [] as string[])).sort()) {
    for (const name of (await readdir(join(base, plugin)).catch(() => [] as string[])).sort()) {
      const dir = join(base, plugin, name);
      const [du, cap] = await Promise.all([ctx.du.get(dir), ctx.capacityOf(dir)]);
      const v: VolumeUsage = { ...fsUsage(ctx.time, cap, du?.bytes, du?.inodes), name, plugin, memoryBacked: cap?.type === TMPFS_MAGIC };
      const claim = spec?.spec?.volumes?.find((x) => x.name === name)?.persistentVolumeClaim;
      if (claim) v.pvcRef = { name: claim.claimName, namespace: spec?.metadata?.namespace ?? "" };
      out.push(v);
    }
  }
  return out;
}

function ephemeral(ctx: PodAssemblyContext, pod: PodEntry, rootCap: FsCapacity | undefined): FsUsage {
  let used = 0;
  let inodes = 0;
  for (const c of pod.containers) {
    used += (c.rootfs?.used ?? 0) + (c.logs?.used ?? 0);
    inodes += (c.rootfs?.inodesUsed ?? 0) + (c.logs?.inodesUsed ?? 0);
  }
  for (const v of pod.volumes) {
    if (v.plugin !== EMPTY_DIR_PLUGIN || v.memoryBacked) continue;
    used += v.used ?? 0;
    inodes += v.inodesUsed ?? 0;
  }
  return fsUsage(ctx.time, rootCap, used, inodes);
}

function containerEntry(ctx: PodAssemblyContext, pod: PodEntry, c: Container): ContainerEntry {
  let cg = ctx.cgroupById.get(c.id);
  if (!cg) {
    // No cgroup files for it: the runtime's own numbers (cpu, memory) stand in.
    const cs = ctx.view.containerStats.get(c.id);
    const parent = pod.cgroup?.kind === "pod" ? pod.cgroup.name : "";
    cg = { name: `${parent}/${c.id}`, kind: "container", time: ctx.time, createdAt: nsToMs(c.createdAt), stats: statsFromCri(cs), id: c.id, pod: pod.ref, containerName: c.metadata.name, image: ctx.imageOf(c) };
    const rate = cs?.cpu?.usageNanoCores?.value;
    if (rate !== undefined && rate > 0n) cg.cpuNanoCores = Number(rate);
    ctx.adopt(cg);
  }
  return { name: c.metadata.name, id: c.id, image: cg.image ?? ctx.imageOf(c), state: c.state, startTime: nsToMs(c.createdAt), cgroup: cg };
}

async function assemblePod(ctx: PodAssemblyContext, s: PodSandbox, rootCap: FsCapacity | undefined): Promise<PodEntry> {
  const ref = podRefOfSandbox(s);
  const desired = ctx.desired.get(ref.uid);
  const started = desired?.status?.startTime ? new Date(desired.status.startTime).getTime() : NaN;
  const pod: PodEntry = {
    ref,
    sandboxId: s.id,
    startTime: Number.isFinite(started) ? started : nsToMs(s.createdAt),
    hostNetwork: desired?.spec?.hostNetwork === true || s.annotations[ANN_HOST_NETWORK] === "true",
    containers: [],
    volumes: [],
  };
  const podCg = ctx.podCgroupByUid.get(ref.uid);
  if (podCg) pod.cgroup = podCg;
  const running = [...ctx.view.containers.values()].filter((c) => c.podSandboxId === s.id && c.state === "CONTAINER_RUNNING").sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  pod.containers = running.map((c) => containerEntry(ctx, pod, c));
  if (!podCg) {
    const sum: CgroupEntry = { name: `pod:${ref.uid}`, kind: "pod", time: ctx.time, createdAt: pod.startTime, stats: sumStats(pod.containers.map((c) => c.cgroup.stats)), pod: ref };
    pod.cgroup = sum;
    ctx.adopt(sum);
  }
  const sandboxCg = ctx.cgroupById.get(s.id);
  const network = await podNetwork(ctx, [sandboxCg, ...pod.containers.map((c) => c.cgroup), podCg]);
  if (network) {
    pod.network = network;
    for (const e of [sandboxCg, podCg, ...pod.containers.map((c) => c.cgroup)]) if (e) e.network = network;
  }
  for (const [i, c] of running.entries()) {
    const entry = pod.containers[i];
    if (!entry) continue;
    const fs = await containerFs(ctx, pod, c);
    if (fs.rootfs) entry.rootfs = entry.cgroup.rootfs = fs.rootfs;
    if (fs.logs) entry.logs = entry.cgroup.logs = fs.logs;
  }
  pod.volumes = await podVolumes(ctx, ref.uid, desired);
  pod.ephemeral = ephemeral(ctx, pod, rootCap);
  return pod;
}

/** One PodEntry per pod with a ready sandbox, sorted by namespace and name. */
export async function assemblePods(ctx: PodAssemblyContext): Promise<PodEntry[]> {
  const ready = [...ctx.view.sandboxByUid.values()].filter((s) => s.state === "SANDBOX_READY");
  const rootCap = await ctx.capacityOf(ctx.rootDir);
  const pods = await Promise.all(ready.map((s) => assemblePod(ctx, s, rootCap)));
  return pods.sort((a, b) => a.ref.namespace.localeCompare(b.ref.namespace) || a.ref.name.localeCompare(b.ref.name));
}
