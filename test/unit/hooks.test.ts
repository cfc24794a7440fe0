import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { createHookRunner, hookFailureMessage } from "../../src/pods/hooks.js";
import type { HandlerOutcome, HandlerRunner, HandlerTarget } from "../../src/pods/handlers.js";
import { FakeClock } from "../../src/util/clock.js";

const pod: V1Pod = { metadata: { name: "web", namespace: "default", uid: "u1" }, spec: { containers: [{ name: "app" }] } };
const container: V1Container = { name: "app", image: "busybox" };
const target: HandlerTarget = { containerId: "c1", container, podIP: "10.0.0.5" };

/** A handler runner whose actions answer as told and record their calls. */
function fakeHandlers(clock: FakeClock, answer: Partial<Record<"exec" | "httpGet", HandlerOutcome | "hang">>): { runner: HandlerRunner; calls: string[] } {
  const calls: string[] = [];
  const respond = (kind: "exec" | "httpGet"): Promise<HandlerOutcome> => {
    const a = answer[kind] ?? { ok: true, output: "" };
    return a === "hang" ? new Promise<HandlerOutcome>(() => undefined) : Promise.resolve(a);
  };
  const runner: HandlerRunner = {
    exec: (_t, command, timeoutMs) => {
      calls.push(`exec ${command.join(" ")} ${timeoutMs}`);
      return respond("exec");
    },
    httpGet: (_t, action, timeoutMs) => {
      calls.push(`httpGet ${action.path ?? ""} ${timeoutMs}`);
      return respond("httpGet");
    },
    tcpSocket: () => Promise.resolve({ ok: false, message: "unused" }),
    grpc: () => Promise.resolve({ ok: false, message: "unused" }),
    sleep: async (seconds, signal) => {
      calls.push(`sleep ${seconds}`);
      try {
        await clock.sleep(seconds * 1000, signal);
        return { ok: true, output: "" };
      } catch {
        return { ok: false, message: "sleep aborted" };
      }
    },
  };
  return { runner, calls };
}

describe("lifecycle hooks", () => {
  it("an exec hook that succeeds: ok, with the time it took", async () => {
    const clock = new FakeClock();
    const { runner, calls } = fakeHandlers(clock, { exec: { ok: true, output: "fine" } });
    const r = await createHookRunner({ handlers: runner, clock }).run({ exec: { command: ["sh", "-c", "true"] } }, target, pod, 30_000);
    assert.deepEqual(r, { ok: true, message: "", elapsedMs: 0, timedOut: false });
    assert.deepEqual(calls, ["exec sh -c true 30000"], "the deadline is handed to the action");
  });

  it("a failing exec hook: upstream's message naming the command, container and pod", async () => {
    const clock = new FakeClock();
    const { runner } = fakeHandlers(clock, { exec: { ok: false, message: "boom\n" } });
    const r = await createHookRunner({ handlers: runner, clock }).run({ exec: { command: ["sh", "-c", "exit 3"] } }, target, pod, 30_000);
    assert.equal(r.ok, false);
    assert.equal(r.timedOut, false);
    assert.equal(r.message, 'Exec lifecycle hook ([sh -c exit 3]) for Container "app" in Pod "web_default(u1)" failed - error: command "sh -c exit 3" exited with a failure, message: "boom\\n"');
  });

  it("a failing httpGet hook names its path", async () => {
    const clock = new FakeClock();
    const { runner, calls } = fakeHandlers(clock, { httpGet: { ok: false, message: "HTTP probe failed with statuscode: 500" } });
    const r = await createHookRunner({ handlers: runner, clock }).run({ httpGet: { path: "/shutdown", port: 8080 } }, target, pod, 5_000);
    assert.equal(r.ok, false);
    assert.equal(r.message, 'HTTP lifecycle hook (/shutdown) for Container "app" in Pod "web_default(u1)" failed - error: HTTP probe failed with statuscode: 500');
    assert.deepEqual(calls, ["httpGet /shutdown 5000"]);
  });

  it("a sleep hook takes its time on the clock and succeeds within the deadline", async () => {
    const clock = new FakeClock();
    const { runner } = fakeHandlers(clock, {});
    const p = createHookRunner({ handlers: runner, clock }).run({ sleep: { seconds: 3 } }, target, pod, 10_000);
    await clock.advance(3_000);
    const r = await p;
    assert.equal(r.ok, true);
    assert.equal(r.elapsedMs, 3_000);
  });

  it("a sleep longer than the deadline is cut there", async () => {
    const clock = new FakeClock();
    const { runner } = fakeHandlers(clock, {});
    const p = createHookRunner({ handlers: runner, clock }).run({ sleep: { seconds: 60 } }, target, pod, 2_000);
    await clock.advance(2_000);
    const r = await p;
    assert.equal(r.ok, false);
    assert.equal(r.timedOut, true);
    assert.equal(r.elapsedMs, 2_000);
  });

  it("a hook that hangs is abandoned at the deadline", async () => {
    const clock = new FakeClock();
    const { runner } = fakeHandlers(clock, { exec: "hang" });
    const p = createHookRunner({ handlers: runner, clock }).run({ exec: { command: ["sleep", "3600"] } }, target, pod, 5_000);
    await clock.advance(5_000);
    const r = await p;
    assert.equal(r.ok, false);
    assert.equal(r.timedOut, true);
    assert.match(r.message, /^Exec lifecycle hook \(\[sleep 3600\]\) .* failed - error: hook did not complete within 5s$/);
  });

  it("tcpSocket and empty handlers fail with a clear message", async () => {
    const clock = new FakeClock();
    const { runner, calls } = fakeHandlers(clock, {});
    const hooks = createHookRunner({ handlers: runner, clock });
    const tcp = await hooks.run({ tcpSocket: { port: 80 } }, target, pod, 1_000);
    assert.equal(tcp.ok, false);
    assert.match(tcp.message, /tcpSocket is not supported as a lifecycle handler/);
    const none = await hooks.run({}, target, pod, 1_000);
    assert.match(none.message, /none of exec, httpGet, sleep is set/);
    assert.deepEqual(calls, []);
  });

  it("hookFailureMessage follows the handler's kind", () => {
    assert.match(hookFailureMessage({ exec: { command: ["a", "b"] } }, container, pod, "x"), /^Exec lifecycle hook \(\[a b\]\)/);
    assert.match(hookFailureMessage({ httpGet: { path: "/p", port: 1 } }, container, pod, "x"), /^HTTP lifecycle hook \(\/p\)/);
  });
});
