/** The counting semaphore behind --max-parallel-pod-starts and parallel image pulls. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLimiter, trackLimiter } from "../../src/util/limiter.js";
import { FakeClock } from "../../src/util/clock.js";

/** A task the test finishes by hand. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

const tick = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe("limiter", () => {
  it("runs at most `limit` calls at once and starts the others in arrival order", async () => {
    const limit = createLimiter(2);
    const started: number[] = [];
    const gates = [gate(), gate(), gate(), gate()];
    const runs = gates.map((g, i) => limit(async () => {
      started.push(i);
      await g.promise;
      return i;
    }));
    await tick();
    assert.deepEqual(started, [0, 1]);
    gates[1]?.open();
    await tick();
    assert.deepEqual(started, [0, 1, 2]);
    gates[0]?.open();
    await tick();
    assert.deepEqual(started, [0, 1, 2, 3]);
    for (const g of gates) g.open();
    assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3]);
  });

  it("a failing call frees its turn", async () => {
    const limit = createLimiter(1);
    await assert.rejects(limit(() => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(await limit(() => Promise.resolve("next")), "next");
  });

  it("0 means no limit", async () => {
    const limit = createLimiter(0);
    let running = 0;
    let most = 0;
    const gates = Array.from({ length: 10 }, () => gate());
    const runs = gates.map((g) => limit(async () => {
      running++;
      most = Math.max(most, running);
      await g.promise;
      running--;
    }));
    await tick();
    assert.equal(most, 10);
    for (const g of gates) g.open();
    await Promise.all(runs);
  });

  it("a call that holds its turn too long lets the next one start, and the limit holds afterwards", async () => {
    const clock = new FakeClock();
    const limit = createLimiter(1, { ms: 10_000, clock });
    const started: string[] = [];
    const hung = gate();
    const first = limit(async () => {
      started.push("hung");
      await hung.promise;
    });
    const second = limit(() => {
      started.push("second");
      return Promise.resolve();
    });
    const third = gate();
    const thirdRun = limit(async () => {
      started.push("third");
      await third.promise;
    });
    const fourth = limit(() => {
      started.push("fourth");
      return Promise.resolve();
    });
    await tick();
    assert.deepEqual(started, ["hung"]);
    await clock.advance(9_999);
    await tick();
    assert.deepEqual(started, ["hung"]);
    await clock.advance(1);
    await tick();
    await second;
    await tick();
    assert.deepEqual(started, ["hung", "second", "third"], "second ran when the hung call's turn ended; third took the freed turn");
    hung.open();
    await first;
    await tick();
    assert.deepEqual(started, ["hung", "second", "third"], "the hung call finishing late frees no second turn");
    third.open();
    await thirdRun;
    await fourth;
    assert.deepEqual(started, ["hung", "second", "third", "fourth"]);
  });

  it("a tracked limiter counts the calls in it, waiting or running, and when the last one left", async () => {
    const clock = new FakeClock(1_000);
    const t = trackLimiter(createLimiter(1), clock);
    assert.equal(t.lastDoneMs(), -Infinity);
    const a = gate();
    const b = gate();
    const ra = t.run(() => a.promise);
    const rb = t.run(() => b.promise);
    await tick();
    assert.equal(t.pending(), 2, "one running, one waiting");
    await clock.advance(500);
    a.open();
    await ra;
    assert.equal(t.pending(), 1);
    assert.equal(t.lastDoneMs(), 1_500);
    b.open();
    await rb;
    assert.equal(t.pending(), 0);
    await assert.rejects(t.run(() => Promise.reject(new Error("boom"))), /boom/);
    assert.equal(t.pending(), 0, "a failed call leaves too");
  });
});
