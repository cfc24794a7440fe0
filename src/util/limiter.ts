import type { Clock } from "./clock.js";

/** A counting semaphore: at most `limit` calls of the returned function run at once (0: no limit); the rest wait in order. */
export type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

/** A limiter that also says how many calls are in it (running or waiting) and when the last one left. */
export interface TrackedLimiter {
  run: Limiter;
  pending(): number;
  /** Clock time at which the last call finished (-Infinity before any did). */
  lastDoneMs(): number;
}

export function trackLimiter(limiter: Limiter, clock: Clock): TrackedLimiter {
  let pending = 0;
  let lastDone = -Infinity;
  const run: Limiter = async (fn) => {
    pending++;
    try {
      return await limiter(fn);
    } finally {
      pending--;
      lastDone = clock.now();
    }
  };
  return { run, pending: () => pending, lastDoneMs: () => lastDone };
}

/**
 * `maxHold` bounds how long one call keeps its turn: after that long the call goes on outside
 * the limit and the next waiting call starts (so a call that hangs cannot stop the others).
 */
export function createLimiter(limit: number, maxHold?: { ms: number; clock: Clock }): Limiter {
  let active = 0;
  const waiting: (() => void)[] = [];
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (limit <= 0) return fn();
    if (active >= limit) await new Promise<void>((res) => waiting.push(res));
    else active++;
    let held = true;
    const letGo = (): void => {
      if (!held) return;
      held = false;
      cancel?.();
      release();
    };
    const cancel = maxHold ? maxHold.clock.setTimer(maxHold.ms, letGo) : undefined;
    try {
      return await fn();
    } finally {
      letGo();
    }
  };
}
