/**
 * Node-pressure eviction: thresholds (evictionHard), signals from the stats, the manager that sets
 * the pressure conditions, evicts pods and refuses pods at admission under pressure.
 */
export { createEvictionManager, EVICTED_REASON, MONITORING_INTERVAL_MS, thresholdsMet, type EvictionDeps, type EvictionManager, type EvictionOptions } from "./manager.js";
export { parseThresholds, thresholdQuantity, SIGNALS, type Signal, type Threshold, type NodeConditionType } from "./thresholds.js";
export { observeSignals, type Observation, type Observations } from "./signals.js";
export { evictionMessage, isCriticalPod, localStorageViolation, podRequest, rankForSignal } from "./rank.js";
