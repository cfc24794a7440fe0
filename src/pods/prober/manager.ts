/**
 * The probe manager: learns the pods' running containers from the statuses the pod workers set,
 * runs one probe worker per container and probe kind, and answers the pod workers through
 * ProbeVerdicts. Every verdict change asks for a sync of the pod; every attempt counts in the
 * prober metrics and every failed attempt records an Unhealthy event.
 */
import type { V1Container, V1Pod, V1PodStatus } from "@kubernetes/client-node";
import type { ProbeMetrics } from "../../metrics/probes.js";
import type { Clock } from "../../util/clock.js";
import { errorMessage } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import type { HandlerRunner } from "../handlers.js";
import type { ProbeFailure, ProbeVerdicts } from "../probe-verdicts.js";
import type { EventRecorder } from "../worker.js";
import type { ProbeAttempt, ProbeKind } from "./probe.js";
import { createProbeWorker, type ProbeWorker } from "./worker.js";

export interface ProbeManager extends ProbeVerdicts {
  /** A status a pod worker set: starts probes of newly running containers, stops those of containers that are gone. */
  observe(pod: V1Pod, status: V1PodStatus): void;
  /** Stops the pod's probes and forgets it. */
  removePod(uid: string): void;
  /** Stops every probe (kubelet shutdown). */
  stop(): void;
  /** How many probe workers run (tests). */
  workerCount(): number;
}

export interface ProbeManagerDeps {
  runner: HandlerRunner;
  clock: Clock;
  logger: Logger;
  events: EventRecorder;
  metrics: ProbeMetrics;
  /** The desired pod by UID; a pod no longer desired has its probes stopped. */
  podByUid: (uid: string) => V1Pod | undefined;
  /** Asks for a sync of the pod (a verdict changed). */
  onChange: (uid: string) => void;
}

interface ContainerProbes {
  id: string;
  container: V1Container;
  workers: Partial<Record<ProbeKind, ProbeWorker>>;
}

interface PodProbes {
  pod: V1Pod;
  podIP: string | undefined;
  containers: Map<string, ContainerProbes>;
}

const KINDS: readonly ProbeKind[] = ["Startup", "Liveness", "Readiness"];

const probeOf = (c: V1Container, kind: ProbeKind) => (kind === "Liveness" ? c.livenessProbe : kind === "Readiness" ? c.readinessProbe : c.startupProbe);

/** "containerd://abc" → "abc"; a bare ID stays as it is. */
export function runtimeContainerId(id: string): string {
  const i = id.indexOf("://");
  return i >= 0 ? id.slice(i + 3) : id;
}

/** The containers probes apply to: the regular ones and sidecars (init containers with restartPolicy Always). */
function probedContainers(pod: V1Pod | undefined): V1Container[] {
  return [...(pod?.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always"), ...(pod?.spec?.containers ?? [])];
}

interface RunningContainer {
  id: string;
  container: V1Container;
  startedAtMs: number;
  /** False for regular init containers: they are known (answers for them are final) but never probed. */
  probed: boolean;
}

/** The pod's containers the status shows running, with their runtime IDs and start times. */
function runningContainers(pod: V1Pod, status: V1PodStatus, nowMs: number): RunningContainer[] {
  const out: RunningContainer[] = [];
  const probed = probedContainers(pod);
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  for (const cs of [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]) {
    const container = all.find((c) => c.name === cs.name);
    if (!cs.containerID || !cs.state?.running || !container) continue;
    const startedAt = cs.state.running.startedAt ? new Date(cs.state.running.startedAt).getTime() : NaN;
    out.push({ id: runtimeContainerId(cs.containerID), container, startedAtMs: Number.isFinite(startedAt) ? startedAt : nowMs, probed: probed.includes(container) });
  }
  return out;
}

export function createProbeManager(deps: ProbeManagerDeps): ProbeManager {
  const { clock, logger, metrics } = deps;
  const pods = new Map<string, PodProbes>();
  let stopped = false;

  const podFor = (uid: string): V1Pod | undefined => pods.get(uid)?.pod ?? deps.podByUid(uid);
  const anyProbe = (uid: string, kinds: ProbeKind[]): boolean =>
    probedContainers(podFor(uid)).some((c) => kinds.some((k) => probeOf(c, k) !== undefined));

  const notify = (uid: string): void => {
    try {
      deps.onChange(uid);
    } catch (err) {
      logger.error("probe manager: asking for a pod sync failed", { podUID: uid, err: errorMessage(err) });
    }
  };

  const stopContainer = (c: ContainerProbes): void => {
    for (const w of Object.values(c.workers)) w.stop();
  };

  const removePod = (uid: string): void => {
    const p = pods.get(uid);
    if (!p) return;
    for (const c of p.containers.values()) stopContainer(c);
    pods.delete(uid);
  };

  const record = (entry: PodProbes, c: ContainerProbes, kind: ProbeKind, a: ProbeAttempt & { durationMs: number }): void => {
    const meta = entry.pod.metadata ?? {};
    const labels = { probe_type: kind, container: c.container.name, pod: meta.name ?? "", namespace: meta.namespace ?? "" };
    const result = a.result === "success" ? "successful" : a.result === "failure" ? "failed" : "unknown";
    metrics.probeTotal.inc({ probe_type: kind, result, container: labels.container, pod: labels.pod, namespace: labels.namespace, pod_uid: meta.uid ?? "" });
    // As upstream: the duration is observed for answered probes, not for failures.
    if (a.result !== "failure") metrics.probeDuration.observe(labels, a.durationMs / 1000);
    if (a.result === "success") return;
    const fields = { pod: `${meta.namespace ?? ""}/${meta.name ?? ""}`, podUID: meta.uid ?? "", containerName: c.container.name, probeType: kind, output: a.output };
    if (a.result === "failure") {
      logger.v(1).info("Probe failed", fields);
      deps.events(entry.pod, "Warning", "Unhealthy", `${kind} probe failed: ${a.output}`);
    } else {
      logger.warn("Probe errored", fields);
    }
  };

  const startContainer = (uid: string, entry: PodProbes, running: RunningContainer): ContainerProbes => {
    const { id, container, startedAtMs } = running;
    const c: ContainerProbes = { id, container, workers: {} };
    for (const kind of running.probed ? KINDS : []) {
      const probe = probeOf(container, kind);
      if (!probe) continue;
      const w = createProbeWorker(kind, probe, {
        runner: deps.runner,
        clock,
        target: () => ({ containerId: id, container, podIP: entry.podIP }),
        gated: () => kind !== "Startup" && c.workers.Startup !== undefined && c.workers.Startup.result() !== "success",
        alive: () => {
          if (pods.get(uid) !== entry) return false;
          if (deps.podByUid(uid) !== undefined) return true;
          removePod(uid);
          return false;
        },
        onAttempt: (a, ms) => record(entry, c, kind, { ...a, durationMs: ms }),
        onVerdict: (result) => {
          logger.v(2).info("probe verdict changed", { pod: `${entry.pod.metadata?.namespace ?? ""}/${entry.pod.metadata?.name ?? ""}`, containerName: container.name, probeType: kind, result });
          notify(uid);
        },
        onError: (err) => logger.error("probe worker failed", { podUID: uid, containerName: container.name, probeType: kind, err: errorMessage(err) }),
      });
      c.workers[kind] = w;
      w.start(startedAtMs + w.settings.initialDelayMs - clock.now());
    }
    return c;
  };

  return {
    observe(pod, status) {
      const uid = pod.metadata?.uid ?? "";
      if (stopped || uid === "") return;
      if (status.phase === "Succeeded" || status.phase === "Failed") {
        removePod(uid);
        return;
      }
      let entry = pods.get(uid);
      if (!entry) {
        entry = { pod, podIP: status.podIP || undefined, containers: new Map() };
        pods.set(uid, entry);
      }
      entry.pod = pod;
      if (status.podIP) entry.podIP = status.podIP;
      const running = new Set<string>();
      let added = false;
      for (const r of runningContainers(pod, status, clock.now())) {
        running.add(r.id);
        if (entry.containers.has(r.id)) continue;
        entry.containers.set(r.id, startContainer(uid, entry, r));
        added = true;
      }
      for (const [id, c] of entry.containers) {
        if (running.has(id)) continue;
        stopContainer(c);
        entry.containers.delete(id);
      }
      if (entry.containers.size === 0) pods.delete(uid);
      // Pods that went away without a final status (removed from their source) are forgotten here too.
      for (const other of [...pods.keys()]) if (deps.podByUid(other) === undefined) removePod(other);
      // Until now the answers for the new containers were the cautious "not started, not ready".
      if (added && anyProbe(uid, ["Readiness", "Startup"])) notify(uid);
    },

    removePod,

    ready(uid, containerId) {
      const c = pods.get(uid)?.containers.get(runtimeContainerId(containerId));
      if (!c) return anyProbe(uid, ["Readiness", "Startup"]) ? false : undefined;
      const w = c.workers.Readiness;
      return w ? w.result() === "success" : undefined;
    },

    started(uid, containerId) {
      const c = pods.get(uid)?.containers.get(runtimeContainerId(containerId));
      if (!c) return anyProbe(uid, ["Startup"]) ? false : undefined;
      const w = c.workers.Startup;
      return w ? w.result() === "success" : undefined;
    },

    failed(uid, containerId): ProbeFailure | undefined {
      const c = pods.get(uid)?.containers.get(runtimeContainerId(containerId));
      if (!c) return undefined;
      for (const kind of ["Startup", "Liveness"] as const) {
        const w = c.workers[kind];
        if (w?.result() !== "failure") continue;
        return {
          probe: kind,
          message: `Container ${c.container.name} failed ${kind.toLowerCase()} probe, will be restarted`,
          terminationGracePeriodSeconds: w.probe.terminationGracePeriodSeconds,
        };
      }
      return undefined;
    },

    stop() {
      stopped = true;
      for (const uid of [...pods.keys()]) removePod(uid);
    },

    workerCount: () => [...pods.values()].reduce((n, p) => n + [...p.containers.values()].reduce((m, c) => m + Object.keys(c.workers).length, 0), 0),
  };
}
