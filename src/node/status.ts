/**
 * The Node object and its status, computed from machine facts, configuration and runtime health,
 * with upstream's labels, capacity/allocatable arithmetic, conditions, reasons and messages.
 */
import type { V1ContainerImage, V1Node, V1NodeCondition, V1NodeStatus, V1Taint } from "@kubernetes/client-node";
import type { KubeletConfiguration } from "../config/index.js";
import { parseQuantity } from "../config/quantity.js";
import type { Image } from "../cri/types.js";
import type { MachineFacts } from "./machine.js";

export interface NodeFacts {
  nodeName: string;
  hostname: string;
  nodeIPs: string[];
  machine: MachineFacts;
  /** Size of the filesystem holding the kubelet's root dir (ephemeral-storage capacity). */
  rootFsBytes: number;
  hugepages: Record<string, number>;
  runtimeVersion: string;
  kubeletVersion: string;
  labels: Record<string, string>;
  os: string;
  arch: string;
}

export interface HealthFacts {
  /** Problems that make the node NotReady, upstream-worded. Empty when ready. */
  notReadyReasons: string[];
  memoryPressure: boolean;
  diskPressure: boolean;
  pidPressure: boolean;
}

export function goArch(nodeArch: string): string {
  const m: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x" };
  return m[nodeArch] ?? nodeArch;
}

export function nodeLabels(f: Pick<NodeFacts, "hostname" | "os" | "arch" | "labels">): Record<string, string> {
  return {
    ...f.labels,
    "kubernetes.io/hostname": f.hostname,
    "kubernetes.io/os": f.os,
    "kubernetes.io/arch": f.arch,
    "beta.kubernetes.io/os": f.os,
    "beta.kubernetes.io/arch": f.arch,
  };
}

/** The Node object tskubelet registers. */
export function initialNode(f: NodeFacts, cfg: KubeletConfiguration): V1Node {
  const taints: V1Taint[] = cfg.registerWithTaints.map((t) => ({ key: t.key, effect: t.effect, ...(t.value !== undefined ? { value: t.value } : {}) }));
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: f.nodeName,
      labels: nodeLabels(f),
      annotations: { "volumes.kubernetes.io/controller-managed-attach-detach": "true" },
    },
    spec: { ...(taints.length ? { taints } : {}), ...(cfg.providerID ? { providerID: cfg.providerID } : {}) },
  };
}

const ki = (bytes: number): string => `${Math.floor(bytes / 1024)}Ki`;

export function capacity(f: NodeFacts, cfg: KubeletConfiguration): Record<string, string> {
  const cap: Record<string, string> = {
    cpu: String(f.machine.numCores),
    memory: ki(f.machine.memoryCapacity),
    pods: String(cfg.maxPods),
    "ephemeral-storage": ki(f.rootFsBytes),
  };
  for (const [size, count] of Object.entries(f.hugepages)) cap[`hugepages-${size}`] = String(count * (parseQuantity(size) ?? 0));
  return cap;
}

/** capacity − kube-reserved − system-reserved − hard eviction thresholds, never below zero. */
export function allocatable(f: NodeFacts, cfg: KubeletConfiguration): Record<string, string> {
  const reserved = (res: string): number => (parseQuantity(cfg.kubeReserved[res] ?? "0") ?? 0) + (parseQuantity(cfg.systemReserved[res] ?? "0") ?? 0);
  const hugepageBytes = Object.entries(f.hugepages).reduce((s, [size, count]) => s + count * (parseQuantity(size) ?? 0), 0);
  const memEviction = evictionBytes(cfg.evictionHard["memory.available"], f.machine.memoryCapacity);
  const fsEviction = evictionBytes(cfg.evictionHard["nodefs.available"], f.rootFsBytes);
  const milli = Math.max(0, f.machine.numCores * 1000 - Math.round(reserved("cpu") * 1000));
  const out: Record<string, string> = {
    cpu: milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`,
    memory: ki(Math.max(0, f.machine.memoryCapacity - reserved("memory") - memEviction - hugepageBytes)),
    pods: String(cfg.maxPods),
    "ephemeral-storage": String(Math.max(0, Math.floor(f.rootFsBytes - reserved("ephemeral-storage") - fsEviction))),
  };
  for (const [size, count] of Object.entries(f.hugepages)) out[`hugepages-${size}`] = String(count * (parseQuantity(size) ?? 0));
  return out;
}

function evictionBytes(threshold: string | undefined, total: number): number {
  if (!threshold) return 0;
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(threshold);
  if (pct) return Math.floor((Number(pct[1]) / 100) * total);
  return parseQuantity(threshold) ?? 0;
}

const CONDITION_TEXT = {
  MemoryPressure: [
    ["KubeletHasSufficientMemory", "kubelet has sufficient memory available"],
    ["KubeletHasInsufficientMemory", "kubelet has insufficient memory available"],
  ],
  DiskPressure: [
    ["KubeletHasNoDiskPressure", "kubelet has no disk pressure"],
    ["KubeletHasDiskPressure", "kubelet has disk pressure"],
  ],
  PIDPressure: [
    ["KubeletHasSufficientPID", "kubelet has sufficient PID available"],
    ["KubeletHasInsufficientPID", "kubelet has insufficient PID available"],
  ],
} as const;

export function conditions(h: HealthFacts, previous: V1NodeCondition[] | undefined, now: Date): V1NodeCondition[] {
  const make = (type: string, status: "True" | "False", reason: string, message: string): V1NodeCondition => {
    const prev = previous?.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: prev && prev.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now,
    };
  };
  const pressure = (type: keyof typeof CONDITION_TEXT, on: boolean): V1NodeCondition => {
    const [reason, message] = CONDITION_TEXT[type][on ? 1 : 0];
    return make(type, on ? "True" : "False", reason, message);
  };
  const ready = h.notReadyReasons.length === 0;
  return [
    pressure("MemoryPressure", h.memoryPressure),
    pressure("DiskPressure", h.diskPressure),
    pressure("PIDPressure", h.pidPressure),
    make("Ready", ready ? "True" : "False", ready ? "KubeletReady" : "KubeletNotReady", ready ? "kubelet is posting ready status" : h.notReadyReasons.join(", ")),
  ];
}

/** Up to 50 images, largest first, each with up to 5 names (digests first, then tags). */
export function nodeImages(images: Image[]): V1ContainerImage[] {
  return [...images]
    .sort((a, b) => (b.size > a.size ? 1 : b.size < a.size ? -1 : 0))
    .slice(0, 50)
    .map((i) => ({ names: [...i.repoDigests, ...i.repoTags].slice(0, 5), sizeBytes: Number(i.size) }));
}

export function nodeStatus(f: NodeFacts, cfg: KubeletConfiguration, parts: { health: HealthFacts; images: Image[]; previous: V1NodeStatus | undefined; now: Date }): V1NodeStatus {
  return {
    capacity: capacity(f, cfg),
    allocatable: allocatable(f, cfg),
    conditions: conditions(parts.health, parts.previous?.conditions, parts.now),
    addresses: [...f.nodeIPs.map((ip) => ({ type: "InternalIP", address: ip })), { type: "Hostname", address: f.hostname }],
    daemonEndpoints: { kubeletEndpoint: { Port: cfg.port } },
    nodeInfo: {
      machineID: f.machine.machineID,
      systemUUID: f.machine.systemUUID,
      bootID: f.machine.bootID,
      kernelVersion: f.machine.kernelVersion,
      osImage: f.machine.osImage,
      containerRuntimeVersion: f.runtimeVersion,
      kubeletVersion: f.kubeletVersion,
      kubeProxyVersion: "",
      operatingSystem: f.os,
      architecture: f.arch,
    },
    images: nodeImages(parts.images),
  };
}

/**
 * What counts as a change worth a PATCH: everything but the conditions' times (a transition
 * changes the status anyway; the times come back from the API cut to seconds, which must not
 * count as a change).
 */
export function statusFingerprint(s: V1NodeStatus): string {
  const stripped = { ...s, conditions: (s.conditions ?? []).map(({ lastHeartbeatTime: _h, lastTransitionTime: _t, ...rest }) => rest) };
  return JSON.stringify(stripped);
}
