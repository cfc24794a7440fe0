/**
 * Keeps a long-lived loop running: when it throws (a bug, or a fault it did not expect), the
 * error is logged with its stack and the loop starts again after a backoff (1 s doubling to 60 s,
 * back to 1 s once a run lasted a minute). A loop that returns ends normally; so does every loop
 * once the signal aborts. One failing part of the kubelet never takes the others down.
 */
import type { Clock } from "./clock.js";
import type { Logger } from "./log.js";
import { errorMessage } from "./errors.js";

const FIRST_DELAY_MS = 1_000;
const MAX_DELAY_MS = 60_000;
const HEALTHY_RUN_MS = 60_000;

export interface SuperviseOptions {
  name: string;
  clock: Clock;
  logger: Logger;
  signal: AbortSignal;
  /** Called after each failure (metrics, tests). */
  onRestart?: (err: unknown, restarts: number) => void;
}

export async function supervise(run: (signal: AbortSignal) => Promise<void>, o: SuperviseOptions): Promise<void> {
  let delay = FIRST_DELAY_MS;
  let restarts = 0;
  while (!o.signal.aborted) {
    const started = o.clock.now();
    try {
      await run(o.signal);
      return;
    } catch (err) {
      if (o.signal.aborted) return;
      if (o.clock.now() - started >= HEALTHY_RUN_MS) delay = FIRST_DELAY_MS;
      restarts++;
      o.logger.error("loop failed; restarting it", {
        loop: o.name,
        err: errorMessage(err),
        stack: err instanceof Error ? (err.stack ?? "") : "",
        restartInMs: delay,
        restarts,
      });
      o.onRestart?.(err, restarts);
      const ok = await o.clock.sleep(delay, o.signal).then(
        () => true,
        () => false,
      );
      if (!ok) return;
      delay = Math.min(MAX_DELAY_MS, delay * 2);
    }
  }
}
