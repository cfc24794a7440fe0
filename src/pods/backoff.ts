/**
 * Per-key exponential backoff as the kubelet uses it for crash loops and image pulls:
 * starts at `initialMs`, doubles up to `maxMs`; an entry whose last update is older than
 * `resetAfterMs` starts over (upstream: 10 s, 300 s, 600 s).
 */
import type { Clock } from "../util/clock.js";

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  resetAfterMs: number;
  clock: Clock;
}

interface Entry {
  delayMs: number;
  lastUpdate: number;
}

export interface Backoff {
  /**
   * Records a failure that happened at `eventMs` (default now); returns the new delay. The entry's
   * last update is now; an event more than resetAfterMs after it starts the delay over.
   */
  next(key: string, eventMs?: number): number;
  /** True while less than the current delay has passed since `eventMs` (e.g. a container's finish time). */
  isInBackoffSince(key: string, eventMs: number): boolean;
  /** True while less than the current delay has passed since the last recorded failure. */
  isInBackoffSinceUpdate(key: string): boolean;
  /** The current delay for the key (0 if none). */
  delay(key: string): number;
  reset(key: string): void;
  /** Drops entries not updated for longer than resetAfterMs; returns how many. */
  gc(): number;
}

export function createBackoff(opts: BackoffOptions): Backoff {
  const entries = new Map<string, Entry>();
  const expired = (e: Entry, at: number): boolean => at - e.lastUpdate > opts.resetAfterMs;
  return {
    next(key, eventMs = opts.clock.now()) {
      const e = entries.get(key);
      const delayMs = !e || expired(e, eventMs) ? opts.initialMs : Math.min(e.delayMs * 2, opts.maxMs);
      entries.set(key, { delayMs, lastUpdate: opts.clock.now() });
      return delayMs;
    },
    isInBackoffSince(key, eventMs) {
      const e = entries.get(key);
      if (!e || expired(e, eventMs)) return false;
      return opts.clock.now() - eventMs < e.delayMs;
    },
    isInBackoffSinceUpdate(key) {
      const e = entries.get(key);
      if (!e) return false;
      return opts.clock.now() - e.lastUpdate < e.delayMs;
    },
    delay(key) {
      return entries.get(key)?.delayMs ?? 0;
    },
    reset(key) {
      entries.delete(key);
    },
    gc() {
      let n = 0;
      for (const [k, e] of entries) {
        if (expired(e, opts.clock.now())) {
          entries.delete(k);
          n++;
        }
      }
      return n;
    },
  };
}

export const CRASHLOOP_BACKOFF = { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 };
export const IMAGE_PULL_BACKOFF = { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 };
