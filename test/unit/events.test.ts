/** The pod event recorder: one sender in order, aggregation of repeats, rate limit, held while pods start. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import type { ApiClient, ApiRequest } from "../../src/api/client.js";
import { createEventRecorder, type EventRecorderOptions } from "../../src/api/events.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

interface Sent {
  req: ApiRequest;
  done: () => void;
}

/** An apiserver that answers each request when the test says so. */
function fakeApi(): { api: ApiClient; sent: Sent[]; inFlight: () => number } {
  const sent: Sent[] = [];
  let inFlight = 0;
  const api: ApiClient = {
    server: "https://127.0.0.1:6443",
    identity: () => "system:node:n1",
    request<T>(req: ApiRequest): Promise<T> {
      inFlight++;
      return new Promise<T>((resolve) => {
        sent.push({
          req,
          done: () => {
            inFlight--;
            resolve({} as T);
          },
        });
      });
    },
    watch: () => Promise.resolve(),
    reload: () => Promise.resolve(),
    close: () => undefined,
  };
  return { api, sent, inFlight: () => inFlight };
}

const tick = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

const pod = (name: string): V1Pod => ({ metadata: { name, namespace: "ns", uid: `uid-${name}` } });

function recorder(extra: Partial<EventRecorderOptions> = {}): { clock: FakeClock; sent: Sent[]; inFlight: () => number; record: ReturnType<typeof createEventRecorder>; lines: string[] } {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const { api, sent, inFlight } = fakeApi();
  const { logger, lines } = memoryLogger(4);
  const record = createEventRecorder({ api, nodeName: "n1", clock, logger, qps: 5, burst: 10, ...extra });
  return { clock, sent, inFlight, record, lines };
}

const body = (s: Sent | undefined): Record<string, unknown> => (s?.req.body ?? {}) as Record<string, unknown>;

describe("event recorder", () => {
  it("sends events one at a time, in the order they happened, in upstream's shape", async () => {
    const r = recorder();
    r.record(pod("a"), "Normal", "Pulled", "Container image \"busybox\" already present on machine");
    r.record(pod("a"), "Normal", "Created", "Created container main");
    r.record(pod("b"), "Warning", "Failed", "Error: boom");
    await tick();
    assert.equal(r.sent.length, 1, "one request in flight at a time");
    assert.equal(r.inFlight(), 1);
    const first = body(r.sent[0]);
    assert.equal(r.sent[0]?.req.method, "POST");
    assert.equal(r.sent[0]?.req.path, "/api/v1/namespaces/ns/events");
    assert.equal(first.reason, "Pulled");
    assert.deepEqual(first.involvedObject, { apiVersion: "v1", kind: "Pod", name: "a", namespace: "ns", uid: "uid-a" });
    assert.deepEqual(first.source, { component: "kubelet", host: "n1" });
    assert.equal(first.count, 1);
    assert.equal(first.firstTimestamp, "2026-01-01T00:00:00Z");
    r.sent[0]?.done();
    await tick();
    assert.equal(body(r.sent[1]).reason, "Created");
    r.sent[1]?.done();
    await tick();
    assert.equal(body(r.sent[2]).type, "Warning");
    r.sent[2]?.done();
    await tick();
    assert.equal(r.sent.length, 3);
  });

  it("a repeat is counted into the queued event, or PATCHes the count of a sent one", async () => {
    const r = recorder();
    r.record(pod("a"), "Warning", "BackOff", "Back-off restarting failed container");
    r.record(pod("b"), "Normal", "Started", "Started container main");
    await r.clock.advance(2_000);
    r.record(pod("b"), "Normal", "Started", "Started container main");
    await tick();
    r.sent[0]?.done();
    await tick();
    const b = body(r.sent[1]);
    assert.equal(b.count, 2, "one POST carries both occurrences");
    assert.equal(b.firstTimestamp, "2026-01-01T00:00:00Z");
    assert.equal(b.lastTimestamp, "2026-01-01T00:00:02Z");
    r.sent[1]?.done();
    await tick();
    await r.clock.advance(1_000);
    r.record(pod("a"), "Warning", "BackOff", "Back-off restarting failed container");
    await tick();
    const patch = r.sent[2];
    assert.equal(patch?.req.method, "PATCH");
    assert.equal(patch?.req.path, `/api/v1/namespaces/ns/events/${String((body(r.sent[0]).metadata as { name: string }).name)}`);
    assert.deepEqual(patch?.req.body, { count: 2, lastTimestamp: "2026-01-01T00:00:03Z" });
    patch?.done();
  });

  it("drops events over eventBurst / eventRecordQPS", async () => {
    const r = recorder({ qps: 1, burst: 2 });
    for (let i = 0; i < 4; i++) r.record(pod(`p${i}`), "Normal", "Created", "Created container main");
    for (let i = 0; i < 4; i++) {
      await tick();
      r.sent[i]?.done();
    }
    await tick();
    assert.deepEqual(r.sent.map((s) => (body(s).involvedObject as { name: string }).name), ["p0", "p1"]);
    assert.ok(r.lines.some((l) => l.includes("event dropped by the rate limit")));
  });

  it("while pods are starting, events wait until the node is idle, at most maxHoldMs", async () => {
    let busy = true;
    const r = recorder({ busy: () => busy, maxHoldMs: 10_000 });
    r.record(pod("a"), "Normal", "Created", "Created container main");
    await r.clock.advance(3_000);
    assert.equal(r.sent.length, 0, "held while busy");
    busy = false;
    await r.clock.advance(250);
    assert.equal(r.sent.length, 1, "sent within a recheck of the node becoming idle");
    assert.equal(body(r.sent[0]).firstTimestamp, "2026-01-01T00:00:00Z", "stamped when it happened");
    r.sent[0]?.done();
    busy = true;
    await r.clock.advance(1);
    r.record(pod("a"), "Normal", "Started", "Started container main");
    await r.clock.advance(9_000);
    assert.equal(r.sent.length, 1);
    await r.clock.advance(1_000);
    assert.equal(r.sent.length, 2, "busy for good: sent once it has waited maxHoldMs");
    r.sent[1]?.done();
  });

  it("a full queue drops new events and says so", async () => {
    const r = recorder({ queueSize: 2, busy: () => true });
    for (let i = 0; i < 3; i++) r.record(pod(`p${i}`), "Normal", "Created", "Created container main");
    assert.ok(r.lines.some((l) => l.includes("event dropped: the event queue is full")));
    await r.clock.advance(10_000);
    r.sent[0]?.done();
    await r.clock.advance(1);
    assert.deepEqual(r.sent.map((s) => (body(s).involvedObject as { name: string }).name), ["p0", "p1"]);
    r.sent[1]?.done();
  });
});
