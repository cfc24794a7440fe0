/**
 * What the prober has concluded about a pod's containers, as the pod worker reads it: the plan
 * restarts containers whose liveness or startup probe failed, and status derives `started` and
 * `ready` from it. Keyed by the container's runtime ID, so a restarted container starts afresh.
 */
export interface ProbeFailure {
  probe: "Liveness" | "Startup";
  /** For the Killing event: "Container web failed liveness probe, will be restarted". */
  message: string;
  /** The probe's own terminationGracePeriodSeconds, when it sets one. */
  terminationGracePeriodSeconds: number | undefined;
}

export interface ProbeVerdicts {
  /** The readiness probe's latest result; undefined when the container has none (ready once started). */
  ready(podUid: string, containerId: string): boolean | undefined;
  /** Whether the startup probe has succeeded; undefined when the container has none. */
  started(podUid: string, containerId: string): boolean | undefined;
  /** Set once liveness or startup failed failureThreshold times in a row: restart the container. */
  failed(podUid: string, containerId: string): ProbeFailure | undefined;
}

/** For pods and tests without a prober: no probes, so running containers are started and ready. */
export const noProbeVerdicts: ProbeVerdicts = {
  ready: () => undefined,
  started: () => undefined,
  failed: () => undefined,
};
