import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CRASHLOOP_BACKOFF, IMAGE_PULL_BACKOFF, createBackoff, type Backoff } from "../../src/pods/backoff.js";
import { FakeClock } from "../../src/util/clock.js";

const KEY = "uid-1/main";

function setup(params = CRASHLOOP_BACKOFF): { clock: FakeClock; b: Backoff } {
  const clock = new FakeClock();
  return { clock, b: createBackoff({ ...params, clock }) };
}

describe("backoff constants match upstream", () => {
  it("crash loop: 10s initial, 300s cap, reset after 600s; image pulls: 10s / 300s", () => {
    assert.deepEqual(CRASHLOOP_BACKOFF, { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 });
    assert.equal(IMAGE_PULL_BACKOFF.initialMs, 10_000);
    assert.equal(IMAGE_PULL_BACKOFF.maxMs, 300_000);
  });
});

describe("crash-loop backoff", () => {
  it("starts at 10s and doubles to the 300s cap", () => {
    const { b } = setup();
    assert.equal(b.delay(KEY), 0, "no entry yet");
    const seen = [];
    for (let i = 0; i < 8; i++) seen.push(b.next(KEY));
    assert.deepEqual(seen, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
    assert.equal(b.delay(KEY), 300_000);
  });

  it("keys are independent", () => {
    const { b } = setup();
    b.next("a");
    b.next("a");
    assert.equal(b.delay("a"), 20_000);
    assert.equal(b.next("b"), 10_000);
  });

  it("isInBackoffSince is measured from the container's finish time", async () => {
    const { clock, b } = setup();
    const finishedAt = clock.now();
    b.next(KEY, finishedAt);
    assert.equal(b.isInBackoffSince(KEY, finishedAt), true);
    await clock.advance(9_999);
    assert.equal(b.isInBackoffSince(KEY, finishedAt), true);
    await clock.advance(1);
    assert.equal(b.isInBackoffSince(KEY, finishedAt), false, "exactly the delay later the backoff is over");
    // a container that finished long ago is not in backoff, even with an entry
    assert.equal(b.isInBackoffSince(KEY, finishedAt - 60_000), false);
  });

  it("isInBackoffSince uses the current (doubled) delay", async () => {
    const { clock, b } = setup();
    b.next(KEY);
    b.next(KEY);
    b.next(KEY); // 40s
    const finishedAt = clock.now();
    await clock.advance(39_000);
    assert.equal(b.isInBackoffSince(KEY, finishedAt), true);
    await clock.advance(1_000);
    assert.equal(b.isInBackoffSince(KEY, finishedAt), false);
  });

  it("an unknown key is never in backoff", () => {
    const { clock, b } = setup();
    assert.equal(b.isInBackoffSince("nope", clock.now()), false);
    assert.equal(b.isInBackoffSinceUpdate("nope"), false);
  });

  it("the entry resets after more than 600s without failures", async () => {
    const { clock, b } = setup();
    b.next(KEY);
    b.next(KEY);
    b.next(KEY);
    assert.equal(b.delay(KEY), 40_000);
    await clock.advance(600_000);
    assert.equal(b.next(KEY), 80_000, "exactly 600s is not 'more than' 600s");
    await clock.advance(600_001);
    assert.equal(b.next(KEY), 10_000, "quiet for more than 600s: start over");
  });

  it("an expired entry does not keep a new finish in backoff", async () => {
    const { clock, b } = setup();
    b.next(KEY);
    for (let i = 0; i < 6; i++) b.next(KEY);
    await clock.advance(700_000);
    assert.equal(b.isInBackoffSince(KEY, clock.now()), false);
  });

  it("expiry is measured from the last update (when next() ran), not from the event time (upstream flowcontrol.Backoff)", async () => {
    // Upstream Backoff.Next(id, eventTime) sets entry.lastUpdate = Clock.Now(); HasExpiredFunc compares the next
    // eventTime with that lastUpdate. The kubelet calls Next(key, finishedAt) when it restarts a container.
    const { clock, b } = setup();
    // crash loop until the 300s cap: each restart is recorded when its backoff ends, with the finish time
    let finishedAt = clock.now();
    b.next(KEY, finishedAt);
    while (b.delay(KEY) < 300_000) {
      finishedAt = clock.now(); // crashed right after start
      await clock.advance(b.delay(KEY));
      assert.equal(b.isInBackoffSince(KEY, finishedAt), false);
      b.next(KEY, finishedAt); // restarted now
    }
    finishedAt = clock.now();
    await clock.advance(300_000);
    b.next(KEY, finishedAt); // restart at the cap; upstream lastUpdate = now
    // this run lasts 301s: 301s since the last update (not expired), 601s since the previous finish
    await clock.advance(301_000);
    const crashedAgain = clock.now();
    await clock.advance(1_000);
    assert.equal(b.isInBackoffSince(KEY, crashedAgain), true, "still crash-looping: back off 5m0s");
    assert.equal(b.delay(KEY), 300_000);
  });

  it("reset forgets the key; gc drops entries idle for more than 600s", async () => {
    const { clock, b } = setup();
    b.next("a");
    b.next("b");
    b.reset("a");
    assert.equal(b.delay("a"), 0);
    assert.equal(b.isInBackoffSinceUpdate("a"), false);
    await clock.advance(300_000);
    b.next("c");
    await clock.advance(300_001);
    assert.equal(b.gc(), 1, "b is idle for 600.001s; c for 300.001s");
    assert.equal(b.delay("b"), 0);
    assert.equal(b.delay("c"), 10_000);
  });
});

describe("image pull backoff (isInBackoffSinceUpdate)", () => {
  it("is measured from the last recorded failure", async () => {
    const { clock, b } = setup(IMAGE_PULL_BACKOFF);
    const key = "docker.io/library/nginx:bad";
    assert.equal(b.isInBackoffSinceUpdate(key), false);
    b.next(key); // ErrImagePull
    assert.equal(b.isInBackoffSinceUpdate(key), true, "ImagePullBackOff right after the failure");
    await clock.advance(9_999);
    assert.equal(b.isInBackoffSinceUpdate(key), true);
    await clock.advance(1);
    assert.equal(b.isInBackoffSinceUpdate(key), false, "retry allowed after 10s");
    b.next(key); // failed again: 20s
    await clock.advance(19_999);
    assert.equal(b.isInBackoffSinceUpdate(key), true);
    await clock.advance(1);
    assert.equal(b.isInBackoffSinceUpdate(key), false);
  });
});
