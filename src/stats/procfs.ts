/** What the stats need from /proc: interface counters of a network namespace, boot time, memory, processes. */
import { join } from "node:path";
import type { V1Controller } from "./cgroup.js";
import { parseMeminfo, readNumber, readText } from "./read.js";

export interface InterfaceCounters {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** Interfaces no one wants in container or node network stats. */
const IGNORED_PREFIXES = ["lo", "veth", "docker", "nerdctl"];

export function ignoredInterface(name: string): boolean {
  return IGNORED_PREFIXES.some((p) => name.startsWith(p));
}

/** /proc/<pid>/net/dev: a header of two lines, then `name: rx(8 fields) tx(8 fields)`. */
export function parseNetDev(text: string | undefined, keep: (name: string) => boolean = (n) => !ignoredInterface(n)): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of (text ?? "").split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === "" || name.includes("|") || !keep(name)) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    const at = (i: number): number => f[i] ?? 0;
    out.push({
      name,
      rxBytes: at(0),
      rxPackets: at(1),
      rxErrors: at(2),
      rxDropped: at(3),
      txBytes: at(8),
      txPackets: at(9),
      txErrors: at(10),
      txDropped: at(11),
    });
  }
  return out;
}

/** Interfaces of the network namespace `pid` lives in (a pod's, through one of its processes). */
export async function readNetDev(procRoot: string, pid: number | "self"): Promise<InterfaceCounters[] | undefined> {
  const text = await readText(join(procRoot, String(pid), "net", "dev"));
  return text === undefined ? undefined : parseNetDev(text);
}

/** Boot time in ms since the epoch (btime of /proc/stat). */
export async function readBootTimeMs(procRoot: string): Promise<number | undefined> {
  const text = await readText(join(procRoot, "stat"));
  const m = /^btime\s+(\d+)/m.exec(text ?? "");
  return m?.[1] ? Number(m[1]) * 1000 : undefined;
}

export async function readMeminfo(procRoot: string): Promise<Map<string, number>> {
  return parseMeminfo(await readText(join(procRoot, "meminfo")));
}

export interface Rlimit {
  maxPid?: number;
  /** Processes (threads included) that exist now. */
  curProc?: number;
}

export async function readRlimit(procRoot: string): Promise<Rlimit> {
  const [pidMax, loadavg] = await Promise.all([readNumber(join(procRoot, "sys", "kernel", "pid_max")), readText(join(procRoot, "loadavg"))]);
  const m = /\s\d+\/(\d+)\s/.exec(loadavg ?? "");
  const out: Rlimit = {};
  if (pidMax !== undefined) out.maxPid = pidMax;
  if (m?.[1]) out.curProc = Number(m[1]);
  return out;
}

/** Load averages (1, 5, 15 minutes) from /proc/loadavg. */
export async function readLoadavg(procRoot: string): Promise<number[]> {
  const text = await readText(join(procRoot, "loadavg"));
  return (text ?? "").trim().split(/\s+/).slice(0, 3).map(Number).filter(Number.isFinite);
}

/** /proc/<pid>/cgroup: per v1 controller paths and the unified (v2) path. */
export function parseProcCgroup(text: string | undefined): { byController: Partial<Record<V1Controller, string>>; unified: string } {
  const byController: Partial<Record<V1Controller, string>> = {};
  let unified = "/";
  for (const line of (text ?? "").split("\n")) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const ctrls = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (ctrls === "") unified = path;
    for (const c of ctrls.split(",")) if (["cpu", "cpuacct", "memory", "blkio", "pids", "cpuset"].includes(c)) byController[c as V1Controller] = path;
  }
  return { byController, unified };
}

/** The machine's CPU time from the `cpu` line of /proc/stat (USER_HZ ticks), in nanoseconds. */
export async function readProcStatCpu(procRoot: string): Promise<{ totalNs: number; userNs: number; systemNs: number } | undefined> {
  const line = /^cpu\s+(.+)$/m.exec((await readText(join(procRoot, "stat"))) ?? "")?.[1];
  if (!line) return undefined;
  const f = line.trim().split(/\s+/).map(Number);
  const at = (i: number): number => f[i] ?? 0;
  const tick = 1e9 / 100;
  // user nice system idle iowait irq softirq steal
  const user = at(0) + at(1);
  const system = at(2) + at(5) + at(6);
  return { totalNs: (user + system + at(7)) * tick, userNs: user * tick, systemNs: system * tick };
}
