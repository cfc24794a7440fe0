/**
 * Eviction thresholds as upstream models them: a signal, the LessThan operator and a quantity or a
 * percentage of the signal's capacity. Parsed from evictionHard (map form, already checked by the
 * config schema); a bad entry is an error naming the field and the entry.
 */
import { formatBytes, parseQuantity } from "../config/quantity.js";

export const SIGNALS = ["memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available", "imagefs.inodesFree", "pid.available"] as const;
export type Signal = (typeof SIGNALS)[number];

export type NodeConditionType = "MemoryPressure" | "DiskPressure" | "PIDPressure";

/** Which node condition a signal drives (upstream's signalToNodeCondition). */
export const SIGNAL_TO_CONDITION: Record<Signal, NodeConditionType> = {
  "memory.available": "MemoryPressure",
  "nodefs.available": "DiskPressure",
  "nodefs.inodesFree": "DiskPressure",
  "imagefs.available": "DiskPressure",
  "imagefs.inodesFree": "DiskPressure",
  "pid.available": "PIDPressure",
};

/** The resource a signal reclaims (upstream's signalToResource): named in eviction messages. */
export const SIGNAL_TO_RESOURCE: Record<Signal, string> = {
  "memory.available": "memory",
  "nodefs.available": "ephemeral-storage",
  "nodefs.inodesFree": "inodes",
  "imagefs.available": "ephemeral-storage",
  "imagefs.inodesFree": "inodes",
  "pid.available": "pids",
};

export interface ThresholdValue {
  /** An absolute amount (bytes, inodes, pids) ... */
  quantity?: number;
  /** ... or a fraction (0..1) of the signal's capacity. */
  percentage?: number;
}

export interface Threshold {
  signal: Signal;
  value: ThresholdValue;
  /** 0 for hard thresholds: act as soon as the threshold is met. */
  gracePeriodMs: number;
  /** evictionMinimumReclaim: once met, the signal must recover this much beyond the threshold. */
  minReclaim?: ThresholdValue;
}

export function isSignal(s: string): s is Signal {
  return (SIGNALS as readonly string[]).includes(s);
}

/**
 * Parses an eviction map (signal → "100Mi" | "10%") and the minimum reclaim per signal. "0%" and
 * "0" disable a signal, as upstream. Throws an Error naming the field and the bad entry.
 */
export function parseThresholds(map: Record<string, string>, minimumReclaim: Record<string, string> = {}, field = "evictionHard"): Threshold[] {
  const reclaim = parseMap(minimumReclaim, "evictionMinimumReclaim");
  return [...parseMap(map, field)].filter(([, v]) => (v.percentage ?? 0) !== 0 || (v.quantity ?? 0) !== 0).map(([signal, value]) => {
    const t: Threshold = { signal, value, gracePeriodMs: 0 };
    const r = reclaim.get(signal);
    if (r) t.minReclaim = r;
    return t;
  });
}

function parseMap(map: Record<string, string>, field: string): Map<Signal, ThresholdValue> {
  const out = new Map<Signal, ThresholdValue>();
  for (const [signal, text] of Object.entries(map)) {
    if (!isSignal(signal)) throw new Error(`${field}: unknown eviction signal ${JSON.stringify(signal)} (expected one of ${SIGNALS.join(", ")})`);
    const value = parseThresholdValue(text);
    if (typeof value === "string") throw new Error(`${field}: bad value ${JSON.stringify(text)} for ${signal}: ${value}`);
    out.set(signal, value);
  }
  return out;
}

function parseThresholdValue(text: string): ThresholdValue | string {
  const t = text.trim();
  if (t.endsWith("%")) {
    const n = Number(t.slice(0, -1));
    if (t.length === 1 || !Number.isFinite(n)) return "expected a percentage such as 10%";
    if (n < 0 || n > 100) return "a percentage must be between 0% and 100%";
    return { percentage: n / 100 };
  }
  const q = parseQuantity(t);
  if (q === undefined) return "expected a quantity such as 100Mi or a percentage such as 10%";
  if (q < 0) return "a quantity must not be negative";
  return { quantity: q };
}

/** The threshold as an amount of the signal's unit, given the capacity (upstream's GetThresholdQuantity). */
export function thresholdQuantity(v: ThresholdValue, capacity: number): number {
  if (v.quantity !== undefined) return v.quantity;
  // Upstream multiplies by a float32 percentage and truncates to an integer.
  return Math.trunc(capacity * Math.fround(v.percentage ?? 0));
}

/** A quantity as the API prints it: bytes in binary SI (100Mi), counts as plain integers. */
export function formatAmount(signal: Signal, n: number): string {
  const v = Math.trunc(n);
  return SIGNAL_TO_RESOURCE[signal] === "memory" || SIGNAL_TO_RESOURCE[signal] === "ephemeral-storage" ? formatBytes(v) : String(v);
}
