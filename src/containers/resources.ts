/** QoS class and the CRI resources of a container, computed from requests and limits as upstream does. */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { LinuxContainerResources } from "../cri/types.js";
import { cpuMillis, parseQuantity } from "../config/quantity.js";
import type { CgroupResources } from "./cgroups.js";

export type QOSClass = "Guaranteed" | "Burstable" | "BestEffort";

const MIN_SHARES = 2;
const MAX_SHARES = 262144;
const SHARES_PER_CPU = 1024;
export const CPU_PERIOD_US = 100_000;
const MIN_QUOTA_US = 1000;

type ResourceMap = Record<string, string | number> | undefined;

function quantityOf(map: ResourceMap, key: string): string | number | undefined {
  return map?.[key];
}

export function qosClass(pod: V1Pod): QOSClass {
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  let any = false;
  let guaranteed = true;
  for (const c of containers) {
    const req = c.resources?.requests as ResourceMap;
    const lim = c.resources?.limits as ResourceMap;
    for (const r of ["cpu", "memory"]) {
      const rq = quantityOf(req, r);
      const lm = quantityOf(lim, r);
      if ((rq !== undefined && parseQuantity(rq) !== 0) || (lm !== undefined && parseQuantity(lm) !== 0)) any = true;
      if (lm === undefined) guaranteed = false;
      else if (rq !== undefined && parseQuantity(rq) !== parseQuantity(lm)) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

/** CPU shares / quota / period, memory limit and oom_score_adj for one container. */
export function containerResources(c: V1Container, pod: V1Pod, memoryCapacity: number): LinuxContainerResources {
  const req = c.resources?.requests as ResourceMap;
  const lim = c.resources?.limits as ResourceMap;
  const cpuReq = quantityOf(req, "cpu") ?? quantityOf(lim, "cpu");
  const cpuLim = quantityOf(lim, "cpu");
  const memLim = quantityOf(lim, "memory");
  const out: LinuxContainerResources = {};
  const reqMilli = cpuReq !== undefined ? (cpuMillis(cpuReq) ?? 0) : 0;
  out.cpuShares = BigInt(sharesFromMilli(reqMilli));
  if (cpuLim !== undefined) {
    const limMilli = cpuMillis(cpuLim) ?? 0;
    if (limMilli > 0) {
      out.cpuPeriod = BigInt(CPU_PERIOD_US);
      out.cpuQuota = BigInt(quotaFromMilli(limMilli));
    }
  }
  if (memLim !== undefined) {
    const bytes = parseQuantity(memLim);
    if (bytes !== undefined && bytes > 0) out.memoryLimitInBytes = BigInt(Math.floor(bytes));
  }
  out.oomScoreAdj = BigInt(oomScoreAdj(c, pod, memoryCapacity));
  return out;
}

export function sharesFromMilli(milli: number): number {
  if (milli === 0) return MIN_SHARES;
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, Math.floor((milli * SHARES_PER_CPU) / 1000)));
}

/**
 * Upstream's policy: node-critical static pods and Guaranteed -997, BestEffort 1000, Burstable
 * scaled by its memory request into [3, 999] (strictly between the two).
 */
export function oomScoreAdj(c: V1Container, pod: V1Pod, memoryCapacity: number): number {
  const GUARANTEED = -997;
  const nodeCritical = pod.spec?.priorityClassName === "system-node-critical" || (pod.spec?.priority ?? 0) >= 2_000_001_000;
  if (nodeCritical && pod.metadata?.annotations?.["kubernetes.io/config.source"] === "file") return GUARANTEED;
  const qos = qosClass(pod);
  if (qos === "Guaranteed") return GUARANTEED;
  if (qos === "BestEffort") return 1000;
  const memReq = parseQuantity(quantityOf(c.resources?.requests, "memory") ?? 0) ?? 0;
  if (memoryCapacity <= 0) return 999;
  const adj = 1000 - Math.floor((1000 * memReq) / memoryCapacity);
  return Math.min(999, Math.max(1000 + GUARANTEED, adj));
}

/** The cgroupfs parent of a pod's sandbox: /kubepods[/burstable|/besteffort]/pod<uid>. */
export function podCgroupParent(pod: V1Pod, root = ""): string {
  const qos = qosClass(pod);
  const base = `${root}/kubepods`;
  const tier = qos === "Guaranteed" ? base : `${base}/${qos.toLowerCase()}`;
  return `${tier}/pod${pod.metadata?.uid ?? ""}`;
}

/** Milli-CPU to a CFS quota over CPU_PERIOD_US (0 stays 0: no quota), as upstream converts. */
export function quotaFromMilli(milli: number): number {
  if (milli <= 0) return 0;
  return Math.max(MIN_QUOTA_US, Math.floor((milli * CPU_PERIOD_US) / 1000));
}

interface PodTotals {
  cpuRequestMilli: number;
  cpuLimitMilli: number;
  memoryLimit: number;
  /** Every app container declares the limit. */
  cpuLimitsDeclared: boolean;
  memoryLimitsDeclared: boolean;
}

/** Pod requests and limits: max(sum of app containers, largest init container), plus the pod overhead. */
function podTotals(pod: V1Pod): PodTotals {
  const one = (c: V1Container): [number, number, number] => {
    const req = c.resources?.requests as ResourceMap;
    const lim = c.resources?.limits as ResourceMap;
    const cpuReq = quantityOf(req, "cpu") ?? quantityOf(lim, "cpu");
    const cpuLim = quantityOf(lim, "cpu");
    const memLim = quantityOf(lim, "memory");
    return [cpuReq !== undefined ? (cpuMillis(cpuReq) ?? 0) : 0, cpuLim !== undefined ? (cpuMillis(cpuLim) ?? 0) : 0, memLim !== undefined ? (parseQuantity(memLim) ?? 0) : 0];
  };
  const apps = pod.spec?.containers ?? [];
  const sum: [number, number, number] = [0, 0, 0];
  for (const c of apps) one(c).forEach((v, i) => (sum[i] = (sum[i] ?? 0) + v));
  for (const c of pod.spec?.initContainers ?? []) one(c).forEach((v, i) => (sum[i] = Math.max(sum[i] ?? 0, v)));
  const overhead = pod.spec?.overhead as ResourceMap;
  const ohCpu = quantityOf(overhead, "cpu");
  const ohMem = quantityOf(overhead, "memory");
  if (ohCpu !== undefined) {
    const m = cpuMillis(ohCpu) ?? 0;
    sum[0] += m;
    if (sum[1] > 0) sum[1] += m;
  }
  if (ohMem !== undefined && sum[2] > 0) sum[2] += parseQuantity(ohMem) ?? 0;
  const declared = (r: string): boolean => apps.length > 0 && apps.every((c) => {
    const v = quantityOf(c.resources?.limits, r);
    return v !== undefined && (parseQuantity(v) ?? 0) > 0;
  });
  return { cpuRequestMilli: sum[0], cpuLimitMilli: sum[1], memoryLimit: sum[2], cpuLimitsDeclared: declared("cpu"), memoryLimitsDeclared: declared("memory") };
}

/**
 * The pod cgroup's values, as upstream's ResourceConfigForPod: Guaranteed gets shares, quota and
 * memory; Burstable gets shares, and a limit only when every container declares it; BestEffort
 * gets the minimum shares. `podPidsLimit` > 0 caps the pod's processes.
 */
export function podCgroupResources(pod: V1Pod, podPidsLimit = -1): CgroupResources {
  const t = podTotals(pod);
  const qos = qosClass(pod);
  const out: CgroupResources = {};
  if (qos === "BestEffort") {
    out.cpuShares = MIN_SHARES;
  } else {
    out.cpuShares = sharesFromMilli(t.cpuRequestMilli);
    if (qos === "Guaranteed" || t.cpuLimitsDeclared) {
      const quota = quotaFromMilli(t.cpuLimitMilli);
      if (quota > 0) {
        out.cpuQuota = quota;
        out.cpuPeriod = CPU_PERIOD_US;
      }
    }
    if ((qos === "Guaranteed" || t.memoryLimitsDeclared) && t.memoryLimit > 0) out.memoryLimitBytes = Math.floor(t.memoryLimit);
  }
  if (podPidsLimit > 0) out.pidsLimit = podPidsLimit;
  return out;
}
