/**
 * One probe of one container: runs it every period on the clock, counts consecutive results
 * against the thresholds and holds the verdict. Bound to one container ID; a restarted container
 * gets a new worker. A liveness or startup verdict of failure puts the worker on hold (the
 * container is about to be restarted); a startup success ends the startup probe.
 */
import type { V1Probe } from "@kubernetes/client-node";
import type { Clock } from "../../util/clock.js";
import type { HandlerRunner, HandlerTarget } from "../handlers.js";
import { probeSettings, runProbe, type ProbeAttempt, type ProbeKind, type ProbeResult, type ProbeSettings } from "./probe.js";

export interface ProbeWorkerEnv {
  runner: HandlerRunner;
  clock: Clock;
  /** Where the probe runs (read on every attempt: the pod IP may arrive late). */
  target: () => HandlerTarget;
  /** True while the probe must not run (liveness and readiness wait for the startup probe). */
  gated: () => boolean;
  /** False once the pod is gone: the worker stops itself. */
  alive: () => boolean;
  /** Every attempt, for events, logs and metrics. */
  onAttempt: (attempt: ProbeAttempt, durationMs: number) => void;
  /** The verdict changed. */
  onVerdict: (result: ProbeResult) => void;
  /** An unexpected error inside the loop; the worker keeps going. */
  onError: (err: unknown) => void;
}

export interface ProbeWorker {
  readonly kind: ProbeKind;
  readonly settings: ProbeSettings;
  readonly probe: V1Probe;
  /** The current verdict: readiness starts as failure, liveness as success, startup as unknown. */
  result(): ProbeResult;
  /** Schedules the first attempt `delayMs` from now. */
  start(delayMs: number): void;
  stop(): void;
}

export function createProbeWorker(kind: ProbeKind, probe: V1Probe, env: ProbeWorkerEnv): ProbeWorker {
  const settings = probeSettings(probe, kind);
  let result: ProbeResult = kind === "Readiness" ? "failure" : kind === "Liveness" ? "success" : "unknown";
  let lastResult: ProbeResult = "unknown";
  let resultRun = 0;
  let onHold = false;
  let stopped = false;
  let cancelTimer: (() => void) | undefined;

  /** Whether the worker keeps running after this attempt. */
  const attempt = async (): Promise<boolean> => {
    if (!env.alive()) return false;
    if (env.gated()) return true;
    const startedAt = env.clock.now();
    const a = await runProbe(env.runner, probe, env.target(), settings.timeoutMs);
    if (stopped) return false;
    env.onAttempt(a, env.clock.now() - startedAt);
    // An error of the prober itself (not of the target) leaves the verdict as it was.
    if (a.result === "unknown") return true;
    if (a.result === lastResult) resultRun++;
    else {
      lastResult = a.result;
      resultRun = 1;
    }
    if ((a.result === "failure" && resultRun < settings.failureThreshold) || (a.result === "success" && resultRun < settings.successThreshold)) return true;
    const changed = a.result !== result;
    result = a.result;
    if (kind !== "Readiness" && result === "failure") {
      onHold = true;
      resultRun = 0;
    }
    if (changed) env.onVerdict(result);
    // After a startup success the startup probe has done its job; after a liveness or startup
    // failure the container is restarted under a new ID, which gets a new worker.
    return !onHold && !(kind === "Startup" && result === "success");
  };

  const tick = (): void => {
    cancelTimer = undefined;
    if (stopped) return;
    const began = env.clock.now();
    attempt().then(
      (more) => schedule(more, began),
      (err: unknown) => {
        env.onError(err);
        schedule(true, began);
      },
    );
  };

  const schedule = (more: boolean, began: number): void => {
    if (stopped || !more) return;
    // Periods count from the start of an attempt, so a slow probe does not stretch them.
    cancelTimer = env.clock.setTimer(Math.max(0, began + settings.periodMs - env.clock.now()), tick);
  };

  return {
    kind,
    settings,
    probe,
    result: () => result,
    start(delayMs) {
      if (stopped || cancelTimer) return;
      cancelTimer = env.clock.setTimer(Math.max(0, delayMs), tick);
    },
    stop() {
      stopped = true;
      cancelTimer?.();
      cancelTimer = undefined;
    },
  };
}
