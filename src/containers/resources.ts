/** QoS class and the CRI resources of a container, computed from requests and limits as upstream does. */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { LinuxContainerResources } from "../cri/types.js";
import { cpuMillis, parseQuantity } from "../config/quantity.js";

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
      out.cpuQuota = BigInt(Math.max(MIN_QUOTA_US, Math.floor((limMilli * CPU_PERIOD_US) / 1000)));
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
