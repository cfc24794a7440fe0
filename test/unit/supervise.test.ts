import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";
import { supervise } from "../../src/util/supervise.js";

describe("supervise", () => {
  it("restarts a throwing loop with a doubling backoff and logs the error with its stack", async () => {
    const clock = new FakeClock();
    const { logger, lines } = memoryLogger();
    const ac = new AbortController();
    const starts: number[] = [];
    const done = supervise(
      (signal) => {
        starts.push(clock.now());
        if (starts.length < 4) return Promise.reject(new Error(`boom ${starts.length}`));
        return new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      },
      { name: "relist", clock, logger, signal: ac.signal },
    );
    await clock.advance(10_000);
    const t0 = starts[0] ?? 0;
    assert.deepEqual(
      starts.map((t) => t - t0),
      [0, 1_000, 3_000, 7_000],
    );
    assert.equal(lines.filter((l) => l.includes("loop failed; restarting it")).length, 3);
    assert.match(lines[0] ?? "", /loop="relist" err="boom 1" stack="Error: boom 1/);
    ac.abort();
    await done;
  });

  it("returns when the loop returns, and when the signal aborts during a backoff", async () => {
    const clock = new FakeClock();
    const { logger } = memoryLogger();
    let runs = 0;
    await supervise(
      () => {
        runs++;
        return Promise.resolve();
      },
      { name: "once", clock, logger, signal: new AbortController().signal },
    );
    assert.equal(runs, 1);

    const ac = new AbortController();
    const failing = supervise(() => Promise.reject(new Error("always")), { name: "f", clock, logger, signal: ac.signal });
    await clock.advance(500);
    ac.abort();
    await failing;
    assert.equal(clock.pendingTimers(), 0);
  });

  it("goes back to the first delay after a run that lasted a minute", async () => {
    const clock = new FakeClock();
    const { logger } = memoryLogger();
    const ac = new AbortController();
    const starts: number[] = [];
    const done = supervise(
      async () => {
        starts.push(clock.now());
        if (starts.length === 3) await clock.sleep(120_000);
        throw new Error("x");
      },
      { name: "l", clock, logger, signal: ac.signal },
    );
    await clock.advance(200_000);
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] ?? 0));
    // 1 s, 2 s, then a 120 s run followed by the first delay again (1 s), then 2 s.
    assert.deepEqual(gaps.slice(0, 4), [1_000, 2_000, 121_000, 2_000]);
    ac.abort();
    await done;
  });
});
