import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../src/util/clock.js";
import { runPeriodically } from "../../src/util/periodic.js";

describe("runPeriodically", () => {
  it("runs at once and then every period, counting from the end of each run", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const ac = new AbortController();
    const runs: number[] = [];
    const done = runPeriodically(
      async () => {
        runs.push(clock.now() - t0);
        await clock.sleep(100);
      },
      { clock, signal: ac.signal, periodMs: 1_000, onError: () => assert.fail("no run fails") },
    );
    await clock.advance(2_500);
    assert.deepEqual(runs, [0, 1_100, 2_200]);
    ac.abort();
    await done;
  });

  it("with waitFirst, waits one period before the first run", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const ac = new AbortController();
    const runs: number[] = [];
    const done = runPeriodically(
      () => {
        runs.push(clock.now() - t0);
        return Promise.resolve();
      },
      { clock, signal: ac.signal, periodMs: 1_000, waitFirst: true, onError: () => assert.fail("no run fails") },
    );
    await clock.advance(999);
    assert.deepEqual(runs, []);
    await clock.advance(2_001);
    assert.deepEqual(runs, [1_000, 2_000, 3_000]);
    ac.abort();
    await done;
  });

  it("hands each failure to onError and keeps running", async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const errors: string[] = [];
    let runs = 0;
    const done = runPeriodically(
      () => {
        runs++;
        return runs % 2 === 1 ? Promise.reject(new Error(`boom ${runs}`)) : Promise.resolve();
      },
      { clock, signal: ac.signal, periodMs: 10, onError: (err) => errors.push(err instanceof Error ? err.message : String(err)) },
    );
    await clock.advance(40);
    assert.equal(runs, 5);
    assert.deepEqual(errors, ["boom 1", "boom 3", "boom 5"]);
    ac.abort();
    await done;
  });

  it("stops when the signal aborts during a wait, and does not run at all when already aborted", async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    let runs = 0;
    const task = (): Promise<void> => {
      runs++;
      return Promise.resolve();
    };
    const done = runPeriodically(task, { clock, signal: ac.signal, periodMs: 1_000, onError: () => undefined });
    await clock.advance(500);
    ac.abort();
    await done;
    assert.equal(runs, 1);
    assert.equal(clock.pendingTimers(), 0);
    await runPeriodically(task, { clock, signal: ac.signal, periodMs: 1_000, onError: () => undefined });
    await runPeriodically(task, { clock, signal: ac.signal, periodMs: 1_000, waitFirst: true, onError: () => undefined });
    assert.equal(runs, 1);
  });
});
