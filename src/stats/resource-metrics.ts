/**
 * `/metrics/resource`: the small set metrics-server scrapes (node, pod and container CPU and
 * working-set memory, container start times), each sample stamped with when it was read.
 */
import { Exposition, PROM_CONTENT_TYPE } from "./prom.js";
import type { StatsSnapshot } from "./types.js";

export { PROM_CONTENT_TYPE };

/** Renders the resource metrics; a snapshot without pod data (runtime down) sets resource_scrape_error. */
export function renderResourceMetrics(s: StatsSnapshot | undefined): string {
  const x = new Exposition();
  const nodeCpu = x.family("node_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds");
  const nodeMem = x.family("node_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the node in bytes");
  const nodeSwap = x.family("node_swap_usage_bytes", "gauge", "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems");
  const podCpu = x.family("pod_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds");
  const podMem = x.family("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes");
  const podSwap = x.family("pod_swap_usage_bytes", "gauge", "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems");
  const ctrCpu = x.family("container_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the container in core-seconds");
  const ctrMem = x.family("container_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the container in bytes");
  const ctrSwap = x.family("container_swap_usage_bytes", "gauge", "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems");
  const ctrStart = x.family("container_start_time_seconds", "gauge", "[STABLE] Start time of the container since unix epoch in seconds");
  const scrapeError = x.family("resource_scrape_error", "gauge", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise");
  if (!s) {
    scrapeError({}, 1);
    return x.render({ omitEmpty: true });
  }
  const root = s.root;
  if (root?.stats.cpu) nodeCpu({}, root.stats.cpu.usageNs / 1e9, root.time);
  if (root?.stats.memory) nodeMem({}, root.stats.memory.workingSet, root.time);
  if (s.swapCapacity > 0 && s.swapUsed !== undefined) nodeSwap({}, s.swapUsed, s.time);
  for (const p of s.pods) {
    const podLabels = { namespace: p.ref.namespace, pod: p.ref.name };
    const pc = p.cgroup;
    if (pc?.stats.cpu) podCpu(podLabels, pc.stats.cpu.usageNs / 1e9, pc.time);
    if (pc?.stats.memory) podMem(podLabels, pc.stats.memory.workingSet, pc.time);
    if (pc?.stats.memory && s.swapCapacity > 0) podSwap(podLabels, pc.stats.memory.swap, pc.time);
    for (const c of p.containers) {
      const labels = { container: c.name, namespace: p.ref.namespace, pod: p.ref.name };
      const e = c.cgroup;
      if (e.stats.cpu) ctrCpu(labels, e.stats.cpu.usageNs / 1e9, e.time);
      if (e.stats.memory) ctrMem(labels, e.stats.memory.workingSet, e.time);
      if (e.stats.memory && s.swapCapacity > 0) ctrSwap(labels, e.stats.memory.swap, e.time);
      if (c.startTime > 0) ctrStart(labels, c.startTime / 1000, c.startTime);
    }
  }
  scrapeError({}, s.podsUnavailable ? 1 : 0);
  return x.render({ omitEmpty: true });
}
