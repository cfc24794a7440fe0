/**
 * Signal observations from one stats snapshot, computed as upstream's makeSignalObservations does
 * from the Summary API: memory.available is the machine's memory minus the root cgroup's working
 * set; nodefs is the filesystem of the kubelet's root dir; imagefs the runtime's image filesystem;
 * pid.available is pid_max minus the processes that exist.
 */
import type { StatsSnapshot } from "../stats/index.js";
import type { Signal } from "./thresholds.js";

export interface Observation {
  available: number;
  capacity: number;
  /** When the figures were read (ms since the epoch). */
  time: number;
}

export type Observations = Map<Signal, Observation>;

export function observeSignals(snap: StatsSnapshot): Observations {
  const out: Observations = new Map();
  const time = snap.time;
  const ws = snap.root?.stats.memory?.workingSet;
  if (snap.memoryCapacity > 0 && ws !== undefined) {
    out.set("memory.available", { available: Math.max(0, snap.memoryCapacity - ws), capacity: snap.memoryCapacity, time });
  }
  const fs = (bytes: Signal, inodes: Signal, u: StatsSnapshot["nodeFs"]): void => {
    if (!u) return;
    if (u.available !== undefined && u.capacity !== undefined) out.set(bytes, { available: u.available, capacity: u.capacity, time: u.time });
    if (u.inodesFree !== undefined && u.inodes !== undefined) out.set(inodes, { available: u.inodesFree, capacity: u.inodes, time: u.time });
  };
  fs("nodefs.available", "nodefs.inodesFree", snap.nodeFs);
  fs("imagefs.available", "imagefs.inodesFree", snap.imageFs);
  const { maxPid, curProc } = snap.rlimit;
  if (maxPid !== undefined && curProc !== undefined) out.set("pid.available", { available: Math.max(0, maxPid - curProc), capacity: maxPid, time });
  return out;
}

/** Whether the image filesystem is a different filesystem from the node's (upstream: a dedicated imagefs). */
export function hasDedicatedImageFs(snap: StatsSnapshot): boolean {
  const n = snap.nodeFs;
  const i = snap.imageFs;
  if (!n || !i) return false;
  if (n.device !== undefined && i.device !== undefined) return n.device !== i.device;
  return n.capacity !== i.capacity || n.inodes !== i.inodes;
}
