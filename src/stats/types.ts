/** The stats provider's model of one moment: the node, its tracked cgroups and its pods. */
import type { ContainerState } from "../cri/types.js";
import type { CgroupStats } from "./cgroup.js";
import type { InterfaceCounters, Rlimit } from "./procfs.js";

export interface PodRef {
  name: string;
  namespace: string;
  uid: string;
}

export type CgroupKind = "root" | "system" | "qos" | "pod" | "sandbox" | "container";

export interface FsUsage {
  time: number;
  /** The block device (or source) of the filesystem, e.g. /dev/vda1. */
  device?: string;
  capacity?: number;
  available?: number;
  used?: number;
  inodes?: number;
  inodesFree?: number;
  inodesUsed?: number;
}

export interface NetworkSample {
  time: number;
  interfaces: InterfaceCounters[];
}

/** One tracked cgroup (or, where no cgroup could be read, a container as the runtime reports it). */
export interface CgroupEntry {
  /** The cgroup path, "/" for the machine: cAdvisor's container name and the `id` label. */
  name: string;
  kind: CgroupKind;
  /** When these numbers were read, ms since the epoch. */
  time: number;
  /** When the cgroup (container, pod) was created, ms since the epoch. */
  createdAt: number;
  stats: CgroupStats;
  /** CPU use over the interval since the previous sample, in nanocores (absent for a first sample). */
  cpuNanoCores?: number;
  /** Container or sandbox id. */
  id?: string;
  pod?: PodRef;
  containerName?: string;
  image?: string;
  network?: NetworkSample;
  rootfs?: FsUsage;
  logs?: FsUsage;
}

export interface ContainerEntry {
  name: string;
  id: string;
  image: string;
  state: ContainerState;
  startTime: number;
  cgroup: CgroupEntry;
  rootfs?: FsUsage;
  logs?: FsUsage;
}

export interface VolumeUsage extends FsUsage {
  name: string;
  pvcRef?: { name: string; namespace: string };
  /** The volume plugin's directory name, e.g. kubernetes.io~empty-dir. */
  plugin: string;
  /** On tmpfs (emptyDir medium Memory): counted as memory, not ephemeral storage. */
  memoryBacked: boolean;
}

export interface PodEntry {
  ref: PodRef;
  sandboxId: string;
  startTime: number;
  hostNetwork: boolean;
  /** The pod-level cgroup, or the sum of its containers when there is none. */
  cgroup?: CgroupEntry;
  containers: ContainerEntry[];
  network?: NetworkSample;
  volumes: VolumeUsage[];
  ephemeral?: FsUsage;
}

export interface StatsSnapshot {
  time: number;
  nodeName: string;
  /** Boot time: the node's stats "startTime". */
  bootTime: number;
  memoryCapacity: number;
  swapCapacity: number;
  swapUsed?: number;
  root?: CgroupEntry;
  /** Every tracked cgroup, sorted by name (root, system, QoS, pods, sandboxes, containers). */
  cgroups: CgroupEntry[];
  pods: PodEntry[];
  systemContainers: { name: string; entry: CgroupEntry }[];
  nodeNetwork?: NetworkSample;
  nodeFs?: FsUsage;
  imageFs?: FsUsage;
  containerFs?: FsUsage;
  rlimit: Rlimit;
  /** Block devices by "major:minor", e.g. "254:0" -> "/dev/vda". */
  blockDevices: Record<string, string>;
  /** What could not be read (runtime down, ...); the rest of the snapshot is still good. */
  errors: string[];
  /** True when the runtime could not list pods: pod data is missing, not empty. */
  podsUnavailable: boolean;
}

/** A compact sample kept per cgroup for charts and the cAdvisor v2.0 stats history. */
export interface HistorySample {
  time: number;
  cpu?: { total: number; user: number; system: number; nanoCores?: number };
  memory?: { usage: number; maxUsage: number; workingSet: number; rss: number; cache: number; swap: number; mappedFile: number; failcnt: number; pgfault: number; pgmajfault: number; hPgfault: number; hPgmajfault: number };
  network?: InterfaceCounters[];
  fs?: { usage: number; capacity?: number; available?: number; inodes?: number; inodesFree?: number; inodesUsed?: number };
  io?: { major: number; minor: number; readBytes: number; writeBytes: number; reads: number; writes: number }[];
  processes?: { count: number; threads: number; threadsMax?: number };
}
