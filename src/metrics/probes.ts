/**
 * The registry behind /metrics/probes: upstream's prober metrics (recorded by the probe manager)
 * and the process start time. Made per kubelet, never a module singleton.
 */
import { performance } from "node:perf_hooks";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface ProbeMetrics {
  registry: Registry;
  /** prober_probe_total{probe_type, result, container, pod, namespace, pod_uid}; result is successful, failed or unknown. */
  probeTotal: Counter<"probe_type" | "result" | "container" | "pod" | "namespace" | "pod_uid">;
  /** prober_probe_duration_seconds{probe_type, container, pod, namespace}. */
  probeDuration: Histogram<"probe_type" | "container" | "pod" | "namespace">;
}

export function createProbeMetrics(): ProbeMetrics {
  const registry = new Registry();
  const r = { registers: [registry] };
  const startTime = new Gauge({ name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", ...r });
  startTime.set(Math.round(performance.timeOrigin) / 1000);
  return {
    registry,
    probeTotal: new Counter({
      name: "prober_probe_total",
      help: "Cumulative number of a liveness, readiness or startup probe for a container by result.",
      labelNames: ["probe_type", "result", "container", "pod", "namespace", "pod_uid"],
      ...r,
    }),
    probeDuration: new Histogram({
      name: "prober_probe_duration_seconds",
      help: "Duration in seconds for a probe response.",
      labelNames: ["probe_type", "container", "pod", "namespace"],
      ...r,
    }),
  };
}
