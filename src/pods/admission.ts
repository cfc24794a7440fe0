/**
 * Pod admission as the kubelet does it before running a pod: room for one more pod, requests
 * within allocatable, and the pod's nodeSelector / required node affinity matching this node.
 * Pure: takes the node's allocatable and labels, returns a rejection with upstream's reason.
 */
import type { V1NodeSelectorRequirement, V1Pod } from "@kubernetes/client-node";
import { cpuMillis, parseQuantity } from "../config/quantity.js";
import type { Rejection } from "./manager.js";
import type { SysctlAllowlist } from "../containers/sysctls.js";

export interface NodeForAdmission {
  allocatable: Record<string, string>;
  labels: Record<string, string>;
}

/** Effective requests: max(sum of app containers, largest init container) per resource. */
export function podRequests(pod: V1Pod): { cpuMilli: number; memory: number } {
  const one = (c: { resources?: { requests?: Record<string, string | number> } }): { cpuMilli: number; memory: number } => ({
    cpuMilli: cpuMillis(c.resources?.requests?.cpu ?? 0) ?? 0,
    memory: parseQuantity(c.resources?.requests?.memory ?? 0) ?? 0,
  });
  const sum = (pod.spec?.containers ?? []).map(one).reduce((a, b) => ({ cpuMilli: a.cpuMilli + b.cpuMilli, memory: a.memory + b.memory }), { cpuMilli: 0, memory: 0 });
  for (const ic of (pod.spec?.initContainers ?? []).map(one)) {
    sum.cpuMilli = Math.max(sum.cpuMilli, ic.cpuMilli);
    sum.memory = Math.max(sum.memory, ic.memory);
  }
  const overhead = pod.spec?.overhead as Record<string, string> | undefined;
  if (overhead) {
    sum.cpuMilli += cpuMillis(overhead.cpu ?? 0) ?? 0;
    sum.memory += parseQuantity(overhead.memory ?? 0) ?? 0;
  }
  return sum;
}

export function admitPod(pod: V1Pod, active: V1Pod[], node: NodeForAdmission): Rejection | undefined {
  const maxPods = Number(node.allocatable.pods ?? "110");
  if (active.length + 1 > maxPods) {
    return { reason: "OutOfpods", message: `Node didn't have enough resource: pods, requested: 1, used: ${active.length}, capacity: ${maxPods}` };
  }
  const want = podRequests(pod);
  const used = active.map(podRequests).reduce((a, b) => ({ cpuMilli: a.cpuMilli + b.cpuMilli, memory: a.memory + b.memory }), { cpuMilli: 0, memory: 0 });
  const cpuCap = cpuMillis(node.allocatable.cpu ?? "0") ?? 0;
  if (want.cpuMilli > 0 && used.cpuMilli + want.cpuMilli > cpuCap) {
    return { reason: "OutOfcpu", message: `Node didn't have enough resource: cpu, requested: ${want.cpuMilli}, used: ${used.cpuMilli}, capacity: ${cpuCap}` };
  }
  const memCap = parseQuantity(node.allocatable.memory ?? "0") ?? 0;
  if (want.memory > 0 && used.memory + want.memory > memCap) {
    return { reason: "OutOfmemory", message: `Node didn't have enough resource: memory, requested: ${want.memory}, used: ${used.memory}, capacity: ${memCap}` };
  }
  if (!matchesNode(pod, node.labels)) {
    return { reason: "NodeAffinity", message: "Pod was rejected: Predicate NodeAffinity failed" };
  }
  return undefined;
}

export function matchesNode(pod: V1Pod, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(pod.spec?.nodeSelector ?? {})) if (labels[k] !== v) return false;
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (!terms || terms.length === 0) return true;
  return terms.some((t) => (t.matchExpressions ?? []).every((e) => requirementMatches(e, labels)) && (t.matchExpressions?.length ?? 0) + (t.matchFields?.length ?? 0) > 0);
}

function requirementMatches(r: V1NodeSelectorRequirement, labels: Record<string, string>): boolean {
  const v = labels[r.key];
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
      return v !== undefined && values.includes(v);
    case "NotIn":
      return v === undefined || !values.includes(v);
    case "Exists":
      return v !== undefined;
    case "DoesNotExist":
      return v === undefined;
    case "Gt":
      return v !== undefined && Number(v) > Number(values[0]);
    case "Lt":
      return v !== undefined && Number(v) < Number(values[0]);
    default:
      return false;
  }
}

/**
 * Upstream's sysctl admission: every sysctl of the pod must be safe or allowed by
 * --allowed-unsafe-sysctls, and net / ipc sysctls need the pod's own network / IPC namespace.
 */
export function admitSysctls(pod: V1Pod, allowlist: SysctlAllowlist): Rejection | undefined {
  const sysctls = pod.spec?.securityContext?.sysctls ?? [];
  for (const s of sysctls) {
    const why = allowlist.check(s.name, pod.spec?.hostNetwork === true, pod.spec?.hostIPC === true);
    if (why !== undefined) return { reason: "SysctlForbidden", message: `forbidden sysctl: ${why}` };
  }
  return undefined;
}
