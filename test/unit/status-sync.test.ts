import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { createStatusSyncer, statusPatch } from "../../src/pods/status-sync.js";
import { createStatusManager } from "../../src/pods/status-manager.js";
import type { ApiClient, ApiRequest } from "../../src/api/client.js";
import { createLogger } from "../../src/util/log.js";
import { FakeClock } from "../../src/util/clock.js";

describe("status patch", () => {
  it("clears a condition's old reason and message with explicit nulls once it has none", () => {
    const body = statusPatch("uid-1", {
      phase: "Running",
      conditions: [
        { type: "Ready", status: "True", lastTransitionTime: new Date(Date.UTC(2026, 0, 1)) },
        { type: "ContainersReady", status: "False", reason: "ContainersNotReady", message: "containers with unready status: [main]" },
      ],
    });
    assert.deepEqual(body.metadata, { uid: "uid-1" });
    const conds = body.status.conditions as Record<string, unknown>[];
    assert.deepEqual(conds[0], { type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z", reason: null, message: null });
    assert.equal(conds[1]?.reason, "ContainersNotReady");
    assert.equal(conds[1]?.message, "containers with unready status: [main]");
    assert.equal(body.status.phase, "Running");
  });

  it("leaves a status without conditions as it is", () => {
    const body = statusPatch("u", { phase: "Pending" });
    assert.deepEqual(body.status, { phase: "Pending" });
  });
});

describe("status writers", () => {
  /** An apiserver the test answers by hand: each PATCH waits until the test settles it. */
  function fakeApi() {
    const calls: { path: string; body: { status: { phase?: string } }; settle: (err?: Error) => void }[] = [];
    let inFlight = 0;
    let most = 0;
    const api: ApiClient = {
      server: "https://127.0.0.1:6443",
      identity: () => "system:node:n1",
      request: <T>(req: ApiRequest): Promise<T> =>
        new Promise<T>((resolve, reject) => {
          inFlight++;
          most = Math.max(most, inFlight);
          calls.push({
            path: req.path,
            body: req.body as { status: { phase?: string } },
            settle: (err) => {
              inFlight--;
              if (err) reject(err);
              else resolve({} as T);
            },
          });
        }),
      watch: () => Promise.resolve(),
      reload: () => Promise.resolve(),
      close: () => undefined,
    };
    return { api, calls, most: () => most };
  }
  const pod = (name: string): V1Pod => ({ metadata: { name, namespace: "default", uid: `uid-${name}` } });
  const tick = async (): Promise<void> => {
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  };

  it("writes with at most `concurrency` PATCHes at once, a free writer takes the next pod at once, one pod never twice at a time", async () => {
    const statuses = createStatusManager();
    const { api, calls, most } = fakeApi();
    const clock = new FakeClock();
    const syncer = createStatusSyncer({ api, statuses, clock, logger: createLogger({ verbosity: 0, sink: { write: () => undefined } }), target: (p) => ({ namespace: "default", name: p.metadata?.name ?? "", uid: p.metadata?.uid ?? "" }), concurrency: 2 });
    const ac = new AbortController();
    const run = syncer.run(ac.signal);
    for (const n of ["a", "b", "c"]) statuses.setStatus(pod(n), { phase: "Pending" });
    await tick();
    assert.equal(calls.length, 2, "two writers");
    // a is slow; b answers: c goes at once, without waiting for a.
    calls[1]?.settle();
    await tick();
    assert.equal(calls.length, 3);
    assert.equal(calls[2]?.path, "/api/v1/namespaces/default/pods/c/status");
    // a changes while its PATCH is in flight: written again after, never two at once.
    statuses.setStatus(pod("a"), { phase: "Running" });
    await tick();
    assert.equal(calls.length, 3, "a is not written twice at a time");
    calls[0]?.settle();
    await tick();
    assert.equal(calls.length, 4);
    assert.equal(calls[3]?.path, "/api/v1/namespaces/default/pods/a/status");
    assert.equal(calls[3]?.body.status.phase, "Running");
    // A failed write is retried after the backoff.
    calls[3]?.settle(new Error("connection refused"));
    calls[2]?.settle();
    await tick();
    assert.equal(calls.length, 4);
    await clock.advance(500);
    await tick();
    assert.equal(calls.length, 5);
    assert.equal(calls[4]?.body.status.phase, "Running");
    calls[4]?.settle();
    await tick();
    const flushed = syncer.flush("uid-a");
    await flushed;
    assert.equal(most(), 2);
    ac.abort();
    await run;
  });
});
