/**
 * The cgroups the stats track: the machine ("/"), the pods' hierarchy (/kubepods, its QoS tiers,
 * pod<uid> and the containers in them), and the kubelet's own cgroup. Discovered from the
 * cgroup filesystem (as cAdvisor does), then named after what the runtime says they hold.
 */
import { readdir, stat } from "node:fs/promises";
import { posix } from "node:path";
import type { Container, ContainerStats, PodSandbox } from "../cri/types.js";
import { LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID } from "../api/labels.js";
import { discoveryDir, type CgroupLayout, type CgroupStats, type MemoryUsage } from "./cgroup.js";
import type { CgroupEntry, CgroupKind, PodRef } from "./types.js";

export interface DiscoveredCgroup {
  name: string;
  kind: CgroupKind;
  /** For pod cgroups: the uid from pod<uid>. For container-level cgroups: the id. */
  key?: string;
}

const POD_DIR = /^pod([0-9a-fA-F-]{8,})$/;

/** Walks <cgroupRoot>/kubepods: QoS tiers, pod<uid> directories and the container directories in them. */
export async function discoverPodCgroups(layout: CgroupLayout, kubepods: string): Promise<DiscoveredCgroup[]> {
  const top = discoveryDir(layout, kubepods);
  if (top === undefined) return [];
  const out: DiscoveredCgroup[] = [];
  const subdirs = async (name: string): Promise<string[]> => {
    const d = discoveryDir(layout, name);
    if (d === undefined) return [];
    const ents = await readdir(d, { withFileTypes: true }).catch(() => []);
    return ents.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  };
  if (!(await stat(top).then((s) => s.isDirectory(), () => false))) return [];
  out.push({ name: kubepods, kind: "system" });
  const podDirsIn = async (parent: string): Promise<void> => {
    for (const child of await subdirs(parent)) {
      const m = POD_DIR.exec(child);
      if (!m?.[1]) continue;
      const podName = posix.join(parent, child);
      out.push({ name: podName, kind: "pod", key: m[1] });
      for (const c of await subdirs(podName)) out.push({ name: posix.join(podName, c), kind: "container", key: c });
    }
  };
  const tiers = await subdirs(kubepods);
  for (const qos of ["burstable", "besteffort"]) {
    const q = posix.join(kubepods, qos);
    if (tiers.includes(qos)) {
      out.push({ name: q, kind: "qos" });
      await podDirsIn(q);
    }
  }
  await podDirsIn(kubepods); // Guaranteed pods sit directly under kubepods
  return out;
}

export interface RuntimeView {
  sandboxes: Map<string, PodSandbox>;
  containers: Map<string, Container>;
  containerStats: Map<string, ContainerStats>;
  /** The newest sandbox of each pod uid. */
  sandboxByUid: Map<string, PodSandbox>;
}

export function runtimeView(sandboxes: PodSandbox[], containers: Container[], stats: ContainerStats[]): RuntimeView {
  const sandboxByUid = new Map<string, PodSandbox>();
  for (const s of sandboxes) {
    const uid = s.metadata.uid || s.labels[LABEL_POD_UID] || "";
    const cur = sandboxByUid.get(uid);
    const better = !cur || (s.state === "SANDBOX_READY" && cur.state !== "SANDBOX_READY") || (s.state === cur.state && s.createdAt > cur.createdAt);
    if (better) sandboxByUid.set(uid, s);
  }
  return {
    sandboxes: new Map(sandboxes.map((s) => [s.id, s])),
    containers: new Map(containers.map((c) => [c.id, c])),
    containerStats: new Map(stats.filter((s) => s.attributes?.id).map((s) => [s.attributes?.id ?? "", s])),
    sandboxByUid,
  };
}

export function podRefOfSandbox(s: PodSandbox): PodRef {
  return { name: s.metadata.name || (s.labels[LABEL_POD_NAME] ?? ""), namespace: s.metadata.namespace || (s.labels[LABEL_POD_NAMESPACE] ?? ""), uid: s.metadata.uid || (s.labels[LABEL_POD_UID] ?? "") };
}

export const nsToMs = (ns: bigint): number => Number(ns / 1_000_000n);

/** Fills in what the runtime knows about a discovered cgroup: its kind, pod, container name and image. */
export function describe(entry: CgroupEntry, d: DiscoveredCgroup, rt: RuntimeView, imageOf: (c: Container) => string): void {
  if (d.kind === "pod" && d.key) {
    const s = rt.sandboxByUid.get(d.key);
    if (s) {
      entry.pod = podRefOfSandbox(s);
      entry.createdAt = nsToMs(s.createdAt);
    }
    return;
  }
  if (d.kind !== "container" || !d.key) return;
  entry.id = d.key;
  const sandbox = rt.sandboxes.get(d.key);
  if (sandbox) {
    entry.kind = "sandbox";
    entry.pod = podRefOfSandbox(sandbox);
    entry.createdAt = nsToMs(sandbox.createdAt);
    return;
  }
  const c = rt.containers.get(d.key);
  if (!c) return;
  const s = rt.sandboxes.get(c.podSandboxId);
  entry.pod = s ? podRefOfSandbox(s) : { name: c.labels[LABEL_POD_NAME] ?? "", namespace: c.labels[LABEL_POD_NAMESPACE] ?? "", uid: c.labels[LABEL_POD_UID] ?? "" };
  entry.containerName = c.metadata.name || (c.labels[LABEL_CONTAINER_NAME] ?? "");
  entry.image = imageOf(c);
  entry.createdAt = nsToMs(c.createdAt);
}

/** A container the cgroup files did not show (another cgroup layout, a runtime in a VM): the runtime's own numbers. */
export function statsFromCri(cs: ContainerStats | undefined): CgroupStats {
  const out: CgroupStats = { procs: [], spec: {} };
  const cpu = cs?.cpu?.usageCoreNanoSeconds?.value;
  if (cpu !== undefined) out.cpu = { usageNs: Number(cpu), userNs: 0, systemNs: 0, periods: 0, throttledPeriods: 0, throttledNs: 0 };
  const memory = memoryFromCri(cs?.memory);
  if (memory) out.memory = memory;
  return out;
}

function memoryFromCri(m: ContainerStats["memory"]): MemoryUsage | undefined {
  if (m?.workingSetBytes === undefined && m?.usageBytes === undefined) return undefined;
  const n = (v: { value: bigint } | undefined): number => Number(v?.value ?? 0n);
  const usage = n(m.usageBytes ?? m.workingSetBytes);
  const faults = n(m.pageFaults);
  const major = n(m.majorPageFaults);
  return {
    usage,
    maxUsage: usage,
    workingSet: n(m.workingSetBytes),
    rss: n(m.rssBytes),
    cache: 0,
    swap: 0,
    mappedFile: 0,
    kernel: 0,
    activeFile: 0,
    inactiveFile: 0,
    failcnt: 0,
    pgfault: faults,
    pgmajfault: major,
    hierarchicalPgfault: faults,
    hierarchicalPgmajfault: major,
    oomEvents: 0,
  };
}

/** CPU and memory of several cgroups added up (a pod without a pod-level cgroup). */
export function sumStats(parts: CgroupStats[]): CgroupStats {
  const out: CgroupStats = { procs: parts.flatMap((p) => p.procs), spec: {} };
  const cpus = parts.map((p) => p.cpu).filter((c) => c !== undefined);
  if (cpus.length > 0) {
    out.cpu = { usageNs: 0, userNs: 0, systemNs: 0, periods: 0, throttledPeriods: 0, throttledNs: 0 };
    for (const c of cpus) for (const k of Object.keys(out.cpu) as (keyof typeof out.cpu)[]) out.cpu[k] += c[k];
  }
  const mems = parts.map((p) => p.memory).filter((m) => m !== undefined);
  if (mems.length > 0) {
    const first = mems[0];
    if (first) {
      out.memory = { ...first };
      for (const m of mems.slice(1)) for (const k of Object.keys(out.memory) as (keyof typeof out.memory)[]) out.memory[k] += m[k];
    }
  }
  return out;
}
