/**
 * One probe attempt: picks the probe's action (exec, httpGet, tcpSocket, grpc), runs it through the
 * handler runner with the probe's timeout and turns the outcome into a result. Also the probe
 * defaults, as upstream applies them.
 */
import type { V1Probe } from "@kubernetes/client-node";
import { errorMessage } from "../../util/errors.js";
import type { HandlerRunner, HandlerTarget } from "../handlers.js";

export type ProbeKind = "Liveness" | "Readiness" | "Startup";
export type ProbeResult = "success" | "failure" | "unknown";

export interface ProbeAttempt {
  result: ProbeResult;
  /** The action's output on success; the failure message otherwise. */
  output: string;
}

/** The probe's timing and thresholds with upstream's defaults filled in. */
export interface ProbeSettings {
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  successThreshold: number;
  failureThreshold: number;
}

const positive = (v: number | undefined, dflt: number): number => (v !== undefined && Number.isFinite(v) && v > 0 ? v : dflt);

export function probeSettings(probe: V1Probe, kind: ProbeKind): ProbeSettings {
  return {
    initialDelayMs: Math.max(0, probe.initialDelaySeconds ?? 0) * 1000,
    periodMs: positive(probe.periodSeconds, 10) * 1000,
    timeoutMs: positive(probe.timeoutSeconds, 1) * 1000,
    // Liveness and startup probes must use successThreshold 1 (validation enforces it upstream).
    successThreshold: kind === "Readiness" ? positive(probe.successThreshold, 1) : 1,
    failureThreshold: positive(probe.failureThreshold, 3),
  };
}

export async function runProbe(runner: HandlerRunner, probe: V1Probe, target: HandlerTarget, timeoutMs: number): Promise<ProbeAttempt> {
  try {
    let outcome;
    if (probe.exec) outcome = await runner.exec(target, probe.exec.command ?? [], timeoutMs);
    else if (probe.httpGet) outcome = await runner.httpGet(target, probe.httpGet, timeoutMs);
    else if (probe.tcpSocket) outcome = await runner.tcpSocket(target, probe.tcpSocket, timeoutMs);
    else if (probe.grpc) outcome = await runner.grpc(target, probe.grpc, timeoutMs);
    else return { result: "unknown", output: `missing probe handler for ${target.container.name}` };
    return outcome.ok ? { result: "success", output: outcome.output } : { result: "failure", output: outcome.message };
  } catch (err) {
    return { result: "unknown", output: errorMessage(err) };
  }
}
