import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1Pod, V1PodStatus, V1Probe } from "@kubernetes/client-node";
import type { HandlerOutcome, HandlerRunner, HandlerTarget } from "../../src/pods/handlers.js";
import { createProbeMetrics } from "../../src/metrics/probes.js";
import { createProbeManager, runtimeContainerId, type ProbeManager } from "../../src/pods/prober/index.js";
import { probeSettings, runProbe } from "../../src/pods/prober/probe.js";
import { FakeClock } from "../../src/util/clock.js";
import { createLogger } from "../../src/util/log.js";

interface Call {
  action: string;
  container: string;
  containerId: string;
  podIP: string | undefined;
  timeoutMs: number;
}

/** A runner whose answers the test sets per container and action ("exec", "httpGet", ...). */
function fakeRunner(): HandlerRunner & { calls: Call[]; answer: Map<string, HandlerOutcome | Error> } {
  const calls: Call[] = [];
  const answer = new Map<string, HandlerOutcome | Error>();
  const run = (action: string, t: HandlerTarget, timeoutMs: number): Promise<HandlerOutcome> => {
    calls.push({ action, container: t.container.name, containerId: t.containerId, podIP: t.podIP, timeoutMs });
    const a = answer.get(`${t.container.name}/${action}`) ?? { ok: true, output: "" };
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  };
  return {
    calls,
    answer,
    exec: (t, _cmd, ms) => run("exec", t, ms),
    httpGet: (t, _a, ms) => run("httpGet", t, ms),
    tcpSocket: (t, _a, ms) => run("tcpSocket", t, ms),
    grpc: (t, _a, ms) => run("grpc", t, ms),
    sleep: () => Promise.resolve({ ok: true, output: "" }),
  };
}

const FAIL = (message: string): HandlerOutcome => ({ ok: false, message });
const OK: HandlerOutcome = { ok: true, output: "" };
const exec = (extra: Partial<V1Probe> = {}): V1Probe => ({ exec: { command: ["true"] }, periodSeconds: 1, ...extra });

function setup(containers: V1Container[], opts: { podName?: string } = {}) {
  const clock = new FakeClock();
  const runner = fakeRunner();
  const metrics = createProbeMetrics();
  const events: string[] = [];
  const syncs: string[] = [];
  const pod: V1Pod = { metadata: { uid: "uid-1", name: opts.podName ?? "web", namespace: "default" }, spec: { containers } };
  const desired = new Map<string, V1Pod>([["uid-1", pod]]);
  const m: ProbeManager = createProbeManager({
    runner,
    clock,
    logger: createLogger({ verbosity: 0, sink: { write: () => undefined } }),
    events: (p, type, reason, message) => events.push(`${p.metadata?.name ?? ""} ${type} ${reason} ${message}`),
    metrics,
    podByUid: (uid) => desired.get(uid),
    onChange: (uid) => syncs.push(uid),
  });
  /** Reports the containers (name → runtime ID) as running since `startedAt`. */
  const running = (ids: Record<string, string>, startedAt = clock.now(), podIP = "10.0.0.7"): void => {
    const status: V1PodStatus = {
      phase: "Running",
      podIP,
      containerStatuses: Object.entries(ids).map(([name, id]) => ({
        name,
        image: "busybox",
        imageID: "",
        restartCount: 0,
        ready: false,
        containerID: `containerd://${id}`,
        state: { running: { startedAt: new Date(startedAt) } },
      })),
    };
    m.observe(pod, status);
  };
  /** Moves time a second at a time, letting each attempt settle. */
  const seconds = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      await clock.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
  };
  /** Lets the attempts due now run. */
  const settle = async (): Promise<void> => {
    await clock.advance(0);
    await new Promise((r) => setImmediate(r));
  };
  const attempts = (container: string, action = "exec") => runner.calls.filter((c) => c.container === container && c.action === action).length;
  return { clock, runner, metrics, events, syncs, pod, desired, m, running, seconds, settle, attempts };
}

describe("probe settings and a single attempt", () => {
  it("defaults match upstream: period 10s, timeout 1s, failureThreshold 3, successThreshold 1, no initial delay", () => {
    assert.deepEqual(probeSettings({ exec: { command: ["true"] } }, "Readiness"), { initialDelayMs: 0, periodMs: 10_000, timeoutMs: 1_000, successThreshold: 1, failureThreshold: 3 });
    assert.equal(probeSettings({ successThreshold: 3 }, "Readiness").successThreshold, 3);
    assert.equal(probeSettings({ successThreshold: 3 }, "Liveness").successThreshold, 1, "liveness always needs a single success");
  });

  it("runs the probe's own action with its timeout; a probe without an action is unknown", async () => {
    const runner = fakeRunner();
    const t: HandlerTarget = { containerId: "c1", container: { name: "web" }, podIP: "10.0.0.7" };
    assert.equal((await runProbe(runner, { tcpSocket: { port: 80 } }, t, 2000)).result, "success");
    assert.equal((await runProbe(runner, { grpc: { port: 9000 } }, t, 2000)).result, "success");
    assert.equal((await runProbe(runner, { httpGet: { port: 80 } }, t, 2000)).result, "success");
    assert.deepEqual(runner.calls.map((c) => [c.action, c.timeoutMs]), [["tcpSocket", 2000], ["grpc", 2000], ["httpGet", 2000]]);
    assert.deepEqual(await runProbe(runner, {}, t, 1000), { result: "unknown", output: "missing probe handler for web" });
    runner.answer.set("web/exec", new Error("boom"));
    assert.deepEqual(await runProbe(runner, { exec: { command: ["x"] } }, t, 1000), { result: "unknown", output: "boom" });
  });

  it("container IDs are compared without the runtime's scheme", () => {
    assert.equal(runtimeContainerId("containerd://abc"), "abc");
    assert.equal(runtimeContainerId("abc"), "abc");
  });
});

describe("readiness", () => {
  it("starts not ready, turns ready on a success and unready after failureThreshold failures", async () => {
    const s = setup([{ name: "web", readinessProbe: exec({ failureThreshold: 2 }) }]);
    assert.equal(s.m.ready("uid-1", "c1"), false, "a container not yet seen running with a readiness probe is not ready");
    s.running({ web: "c1" });
    assert.equal(s.m.ready("uid-1", "containerd://c1"), false);
    await s.settle();
    assert.equal(s.attempts("web"), 1, "first attempt at once");
    assert.equal(s.m.ready("uid-1", "c1"), true);
    s.runner.answer.set("web/exec", FAIL("not yet"));
    await s.seconds(1);
    assert.equal(s.m.ready("uid-1", "c1"), true, "one failure is below the threshold");
    await s.seconds(1);
    assert.equal(s.m.ready("uid-1", "c1"), false);
    assert.equal(s.m.failed("uid-1", "c1"), undefined, "readiness never restarts a container");
    assert.deepEqual(s.events, ["web Warning Unhealthy Readiness probe failed: not yet", "web Warning Unhealthy Readiness probe failed: not yet"]);
    assert.equal(s.attempts("web"), 3);
    await s.seconds(1);
    assert.equal(s.attempts("web"), 4, "readiness keeps probing after failing");
  });

  it("successThreshold needs that many successes in a row", async () => {
    const s = setup([{ name: "web", readinessProbe: exec({ successThreshold: 3 }) }]);
    s.running({ web: "c1" });
    await s.settle();
    await s.seconds(1);
    assert.equal(s.m.ready("uid-1", "c1"), false, "two successes of three");
    await s.seconds(1);
    assert.equal(s.m.ready("uid-1", "c1"), true);
  });

  it("every verdict change asks for a sync of the pod, and only a change does", async () => {
    const s = setup([{ name: "web", readinessProbe: exec() }]);
    s.running({ web: "c1" });
    const afterSeen = s.syncs.length;
    assert.equal(afterSeen, 1, "seeing the container changes the answer from cautious to its own");
    await s.seconds(3);
    assert.equal(s.syncs.length, 2, "one change to ready; successes after it change nothing");
    s.runner.answer.set("web/exec", FAIL("down"));
    await s.seconds(3);
    assert.equal(s.syncs.length, 3);
    s.running({ web: "c1" });
    assert.equal(s.syncs.length, 3, "the same running container again is no news");
  });

  it("the probe runs against the pod IP, which may arrive after the container", async () => {
    const s = setup([{ name: "web", readinessProbe: { httpGet: { port: 80 }, periodSeconds: 1 } }]);
    s.running({ web: "c1" }, s.clock.now(), "");
    await s.settle();
    s.running({ web: "c1" }, s.clock.now(), "10.0.0.9");
    await s.seconds(1);
    assert.deepEqual(s.runner.calls.map((c) => c.podIP), [undefined, "10.0.0.9"]);
  });
});

describe("liveness", () => {
  it("starts as success; failureThreshold failures in a row fail the container with upstream's message, then the probe holds", async () => {
    const s = setup([{ name: "app", livenessProbe: exec({ terminationGracePeriodSeconds: 5 }) }]);
    s.running({ app: "c1" });
    assert.equal(s.m.failed("uid-1", "c1"), undefined);
    assert.equal(s.m.ready("uid-1", "c1"), undefined, "no readiness probe: ready once started");
    assert.equal(s.m.started("uid-1", "c1"), undefined);
    s.runner.answer.set("app/exec", FAIL("cat: can't open '/tmp/healthy'"));
    await s.settle();
    await s.seconds(1);
    assert.equal(s.m.failed("uid-1", "c1"), undefined, "two failures of three");
    s.runner.answer.set("app/exec", OK);
    await s.seconds(1);
    s.runner.answer.set("app/exec", FAIL("cat: can't open '/tmp/healthy'"));
    await s.seconds(2);
    assert.equal(s.m.failed("uid-1", "c1"), undefined, "a success in between starts the count again");
    const syncsBefore = s.syncs.length;
    await s.seconds(1);
    assert.deepEqual(s.m.failed("uid-1", "c1"), { probe: "Liveness", message: "Container app failed liveness probe, will be restarted", terminationGracePeriodSeconds: 5 });
    assert.equal(s.syncs.length, syncsBefore + 1);
    assert.equal(s.events.filter((e) => e === "web Warning Unhealthy Liveness probe failed: cat: can't open '/tmp/healthy'").length, 5);
    const n = s.attempts("app");
    await s.seconds(5);
    assert.equal(s.attempts("app"), n, "on hold until the container is replaced");
  });

  it("a new container ID starts afresh; the old container's probes stop", async () => {
    const s = setup([{ name: "app", livenessProbe: exec({ failureThreshold: 1 }) }]);
    s.running({ app: "c1" });
    s.runner.answer.set("app/exec", FAIL("dead"));
    await s.settle();
    assert.equal(s.m.failed("uid-1", "c1")?.probe, "Liveness");
    s.runner.answer.set("app/exec", OK);
    s.running({ app: "c2" });
    assert.equal(s.m.failed("uid-1", "c2"), undefined);
    assert.equal(s.m.failed("uid-1", "c1"), undefined, "the old container is forgotten");
    await s.seconds(2);
    assert.deepEqual([...new Set(s.runner.calls.map((c) => c.containerId))], ["c1", "c2"]);
    assert.equal(s.m.workerCount(), 1);
  });

  it("initialDelaySeconds counts from the container's start", async () => {
    const s = setup([{ name: "app", livenessProbe: exec({ initialDelaySeconds: 5, periodSeconds: 10 }) }]);
    s.running({ app: "c1" }, s.clock.now() - 2000);
    await s.seconds(2);
    assert.equal(s.attempts("app"), 0);
    await s.seconds(1);
    assert.equal(s.attempts("app"), 1, "3 s after it was seen, 5 s after the container started");
    await s.seconds(9);
    assert.equal(s.attempts("app"), 1);
    await s.seconds(1);
    assert.equal(s.attempts("app"), 2, "then every period");
  });

  it("an erroring runner leaves the verdict alone and the probe keeps going", async () => {
    const s = setup([{ name: "app", livenessProbe: exec({ failureThreshold: 1 }) }]);
    s.runner.answer.set("app/exec", new Error("runtime hiccup"));
    s.running({ app: "c1" });
    await s.seconds(3);
    assert.equal(s.m.failed("uid-1", "c1"), undefined);
    assert.equal(s.attempts("app"), 4);
    assert.deepEqual(s.events, []);
  });
});

describe("startup", () => {
  const containers = (): V1Container[] => [
    { name: "app", startupProbe: exec({ failureThreshold: 5 }), livenessProbe: { tcpSocket: { port: 80 }, periodSeconds: 1 }, readinessProbe: { httpGet: { port: 80 }, periodSeconds: 1 } },
  ];

  it("holds back liveness and readiness until it succeeds, then stops", async () => {
    const s = setup(containers());
    assert.equal(s.m.started("uid-1", "c1"), false);
    s.running({ app: "c1" });
    s.runner.answer.set("app/exec", FAIL("starting"));
    await s.seconds(3);
    assert.equal(s.m.started("uid-1", "c1"), false);
    assert.equal(s.m.ready("uid-1", "c1"), false);
    assert.equal(s.attempts("app", "tcpSocket"), 0, "liveness waits");
    assert.equal(s.attempts("app", "httpGet"), 0, "readiness waits");
    s.runner.answer.set("app/exec", OK);
    await s.seconds(1);
    assert.equal(s.m.started("uid-1", "c1"), true);
    const startups = s.attempts("app", "exec");
    await s.seconds(3);
    assert.equal(s.attempts("app", "exec"), startups, "the startup probe is done");
    assert.ok(s.attempts("app", "tcpSocket") >= 2);
    assert.ok(s.attempts("app", "httpGet") >= 2);
    assert.equal(s.m.ready("uid-1", "c1"), true);
  });

  it("failing failureThreshold times fails the container", async () => {
    const s = setup(containers());
    s.running({ app: "c1" });
    s.runner.answer.set("app/exec", FAIL("never"));
    await s.seconds(3);
    assert.equal(s.m.failed("uid-1", "c1"), undefined);
    await s.seconds(1);
    assert.deepEqual(s.m.failed("uid-1", "c1"), { probe: "Startup", message: "Container app failed startup probe, will be restarted", terminationGracePeriodSeconds: undefined });
    assert.ok(s.events.includes("web Warning Unhealthy Startup probe failed: never"));
    assert.equal(s.attempts("app", "tcpSocket"), 0);
  });
});

describe("probe workers follow the pod", () => {
  it("a container that stops running, a finished pod and a pod no longer desired stop their probes", async () => {
    const s = setup([{ name: "a", readinessProbe: exec() }, { name: "b", livenessProbe: exec() }]);
    s.running({ a: "c1", b: "c2" });
    assert.equal(s.m.workerCount(), 2);
    s.running({ a: "c1" });
    assert.equal(s.m.workerCount(), 1);
    s.m.observe(s.pod, { phase: "Succeeded" });
    assert.equal(s.m.workerCount(), 0);
    s.running({ a: "c1", b: "c2" });
    await s.seconds(1);
    s.desired.delete("uid-1");
    const n = s.runner.calls.length;
    await s.seconds(3);
    assert.ok(s.runner.calls.length <= n + 2, "at most the attempts already due");
    assert.equal(s.m.workerCount(), 0);
  });

  it("a container without probes answers nothing; init containers and unknown names are ignored", () => {
    const s = setup([{ name: "plain" }]);
    s.running({ plain: "c1", ghost: "c9" });
    assert.equal(s.m.workerCount(), 0);
    assert.equal(s.m.ready("uid-1", "c1"), undefined);
    assert.equal(s.m.started("uid-1", "c1"), undefined);
    assert.equal(s.m.failed("uid-1", "c1"), undefined);
    assert.equal(s.m.ready("other", "x"), undefined);
  });

  it("sidecars (init containers with restartPolicy Always) are probed; a running regular init container is known but never probed", async () => {
    const s = setup([{ name: "app", startupProbe: exec() }]);
    s.pod.spec = {
      ...s.pod.spec,
      containers: s.pod.spec?.containers ?? [],
      initContainers: [
        { name: "setup", readinessProbe: exec() },
        { name: "proxy", restartPolicy: "Always", readinessProbe: { tcpSocket: { port: 15001 }, periodSeconds: 1 } },
      ],
    };
    const running = (name: string, id: string) => ({ name, image: "busybox", imageID: "", restartCount: 0, ready: false, containerID: `containerd://${id}`, state: { running: { startedAt: new Date(s.clock.now()) } } });
    assert.equal(s.m.started("uid-1", "i1"), false, "unknown while the pod has a startup probe");
    s.m.observe(s.pod, { phase: "Pending", podIP: "10.0.0.7", initContainerStatuses: [running("setup", "i1"), running("proxy", "i2")] });
    assert.equal(s.m.started("uid-1", "i1"), undefined, "the regular init container is known: no probe of its own");
    assert.equal(s.m.ready("uid-1", "i1"), undefined);
    assert.equal(s.m.ready("uid-1", "i2"), false, "the sidecar waits for its readiness probe");
    await s.settle();
    assert.equal(s.m.ready("uid-1", "i2"), true);
    assert.deepEqual([...new Set(s.runner.calls.map((c) => `${c.container}/${c.action}`))], ["proxy/tcpSocket"]);
  });

  it("stop ends every probe", async () => {
    const s = setup([{ name: "a", readinessProbe: exec() }]);
    s.running({ a: "c1" });
    s.m.stop();
    await s.seconds(3);
    assert.equal(s.runner.calls.length, 0);
    assert.equal(s.clock.pendingTimers(), 0);
  });
});

describe("prober metrics", () => {
  it("prober_probe_total counts results by probe type; durations are observed for successes", async () => {
    const s = setup([{ name: "web", readinessProbe: exec(), livenessProbe: { tcpSocket: { port: 80 }, periodSeconds: 1 } }]);
    s.running({ web: "c1" });
    await s.settle();
    await s.seconds(1);
    s.runner.answer.set("web/tcpSocket", FAIL("dial tcp 10.0.0.7:80: connect: connection refused"));
    await s.seconds(1);
    const text = await s.metrics.registry.metrics();
    const labels = 'container="web",pod="web",namespace="default",pod_uid="uid-1"';
    assert.match(text, new RegExp(`prober_probe_total\\{probe_type="Readiness",result="successful",${labels}\\} 3`));
    assert.match(text, new RegExp(`prober_probe_total\\{probe_type="Liveness",result="successful",${labels}\\} 2`));
    assert.match(text, new RegExp(`prober_probe_total\\{probe_type="Liveness",result="failed",${labels}\\} 1`));
    assert.match(text, /prober_probe_duration_seconds_count\{probe_type="Readiness",container="web",pod="web",namespace="default"\} 3/);
    assert.match(text, /prober_probe_duration_seconds_count\{probe_type="Liveness",container="web",pod="web",namespace="default"\} 2/);
  });
});
