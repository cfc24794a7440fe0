/**
 * Runs a task every period until the signal aborts: a failure of one run is handed to `onError`
 * and the next run comes a period later as usual. The first run is at once, or after one period
 * with `waitFirst`. Each period counts from the end of the previous run.
 */
import type { Clock } from "./clock.js";

export interface PeriodicOptions {
  clock: Clock;
  signal: AbortSignal;
  periodMs: number;
  /** Wait one period before the first run (default: run at once). */
  waitFirst?: boolean;
  /** Called with what a run threw; the loop goes on. */
  onError: (err: unknown) => void;
}

export async function runPeriodically(task: () => Promise<unknown>, o: PeriodicOptions): Promise<void> {
  let wait = o.waitFirst === true;
  while (!o.signal.aborted) {
    if (wait) {
      const slept = await o.clock.sleep(o.periodMs, o.signal).then(
        () => true,
        () => false,
      );
      if (!slept) return;
    }
    wait = true;
    try {
      await task();
    } catch (err) {
      o.onError(err);
    }
  }
}
