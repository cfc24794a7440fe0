/**
 * The pod worker's hooks and kill order on the fake CRI with a fake clock: postStart failures,
 * preStop inside the grace period (what is left goes to StopContainer, at least 2 s), a hanging
 * preStop abandoned at the grace period, sidecars stopped after the app containers, and the
 * termination message mount.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Container, V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { FakeCri } from "../support/fake-cri.js";
import { fakeWorkerEnv } from "../support/worker-env.js";
import { createPodWorker, type PodWorker } from "../../src/pods/worker.js";
import type { HandlerOutcome, HandlerRunner } from "../../src/pods/handlers.js";
import type { ContainerConfig } from "../../src/cri/types.js";
import { createLogger } from "../../src/util/log.js";
import { FakeClock } from "../../src/util/clock.js";

const IMAGE = "tskubelet.local/busybox:1.35";

function mkPod(name: string, o: { grace: number; containers: V1Container[]; inits?: V1Container[] }): V1Pod {
  return {
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec: { terminationGracePeriodSeconds: o.grace, containers: o.containers, ...(o.inits ? { initContainers: o.inits } : {}) },
  };
}

/** Hook actions the test decides: exec answers as told (or never), sleep runs on the fake clock. */
function handlers(clock: FakeClock, exec: HandlerOutcome | "hang"): { runner: HandlerRunner; calls: string[] } {
  const calls: string[] = [];
  const runner: HandlerRunner = {
    exec: (_t, command) => {
      calls.push(`exec ${command.join(" ")}`);
      return exec === "hang" ? new Promise<HandlerOutcome>(() => undefined) : Promise.resolve(exec);
    },
    httpGet: () => Promise.resolve({ ok: true, output: "" }),
    tcpSocket: () => Promise.resolve({ ok: true, output: "" }),
    grpc: () => Promise.resolve({ ok: true, output: "" }),
    sleep: async (seconds, signal) => {
      calls.push(`sleep ${seconds}`);
      try {
        await clock.sleep(seconds * 1000, signal);
        return { ok: true, output: "" };
      } catch {
        return { ok: false, message: "aborted" };
      }
    },
  };
  return { runner, calls };
}

/** Lets the worker's real I/O (log dirs, message files) and promises run until `cond` holds. */
async function until<T>(cond: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error(`never happened: ${what}`);
}

describe("pod worker: hooks and kill order", async () => {
  const root = await mkdtemp(join(tmpdir(), "tsk-worker-hooks-"));
  const workers: PodWorker[] = [];
  after(async () => {
    for (const w of workers) w.stop();
    await rm(root, { recursive: true, force: true });
  });

  const setup = (pod: V1Pod, exec: HandlerOutcome | "hang" = { ok: true, output: "" }) => {
    const clock = new FakeClock();
    const cri = new FakeCri({ clock });
    const events: string[] = [];
    const statuses = new Map<string, V1PodStatus>();
    const history: V1PodStatus[] = [];
    const logger = createLogger({ verbosity: 0, sink: { write: () => undefined } });
    const h = handlers(clock, exec);
    const env = fakeWorkerEnv(
      {
        cri,
        clock,
        logger,
        rootDir: root,
        events: (_p, type, reason, message) => events.push(`${type} ${reason} ${message}`),
        setStatus: (p, s) => {
          statuses.set(p.metadata?.uid ?? "", s);
          history.push(s);
        },
        getStatus: (uid) => statuses.get(uid),
      },
      { handlers: h.runner },
    );
    const w = createPodWorker(pod, env);
    workers.push(w);
    const uid = pod.metadata?.uid ?? "";
    // Container names by ID, noted while they exist (the worker removes them when the pod goes).
    const names = new Map<string, string>();
    const stops = (): { name: string; grace: number }[] =>
      cri.calls.filter((c) => c.op === "stopContainer").map((c) => ({ name: names.get(String(c.args[0])) ?? "?", grace: Number(c.args[1]) }));
    const running = async (name: string): Promise<boolean> => {
      const list = await cri.listContainers({});
      for (const c of list) names.set(c.id, c.metadata.name);
      return list.some((c) => c.metadata.name === name && c.state === "CONTAINER_RUNNING");
    };
    return { clock, cri, events, statuses, history, w, uid, hooks: h.calls, stops, running };
  };

  it("a new pod is reported Pending with its containers in ContainerCreating before its sandbox is made", async () => {
    const t = setup(mkPod("fresh", { grace: 5, containers: [{ name: "app", image: IMAGE }] }));
    await until(() => t.running("app"), "app running");
    const first = t.history[0];
    assert.equal(first?.phase, "Pending");
    assert.equal(first?.containerStatuses?.[0]?.state?.waiting?.reason, "ContainerCreating");
    assert.equal(first?.conditions?.find((c) => c.type === "PodReadyToStartContainers")?.status, "False");
    await until(() => t.history.at(-1)?.phase === "Running", "Running reported");
  });

  it("a preStop sleep uses part of the grace period; StopContainer gets what is left", async () => {
    const t = setup(mkPod("sleepy", { grace: 10, containers: [{ name: "app", image: IMAGE, lifecycle: { preStop: { sleep: { seconds: 3 } } } }] }));
    await until(() => t.running("app"), "app running");
    const done = t.w.terminate();
    await until(() => t.hooks.includes("sleep 3"), "the preStop sleep");
    assert.deepEqual(t.stops(), [], "no stop while the hook runs");
    await t.clock.advance(3000);
    await done;
    assert.deepEqual(t.stops(), [{ name: "app", grace: 7 }]);
    assert.ok(t.events.includes("Normal Killing Stopping container app"));
  });

  it("a hanging preStop is abandoned at the grace period: FailedPreStopHook, then StopContainer with the 2 s minimum", async () => {
    const t = setup(mkPod("hang", { grace: 5, containers: [{ name: "app", image: IMAGE, lifecycle: { preStop: { exec: { command: ["sleep", "3600"] } } } }] }), "hang");
    await until(() => t.running("app"), "app running");
    const done = t.w.terminate();
    await until(() => t.hooks.includes("exec sleep 3600"), "the preStop exec");
    await t.clock.advance(5000);
    await done;
    assert.deepEqual(t.stops(), [{ name: "app", grace: 2 }]);
    assert.ok(t.events.some((e) => e.startsWith("Warning FailedPreStopHook Exec lifecycle hook ([sleep 3600])")), t.events.join("\n"));
  });

  it("a failing preStop is reported and the container is still stopped with the full grace period", async () => {
    const t = setup(mkPod("prefail", { grace: 4, containers: [{ name: "app", image: IMAGE, lifecycle: { preStop: { exec: { command: ["false"] } } } }] }), { ok: false, message: "nope" });
    await until(() => t.running("app"), "app running");
    await t.w.terminate();
    assert.deepEqual(t.stops(), [{ name: "app", grace: 4 }]);
    assert.ok(t.events.some((e) => e.startsWith("Warning FailedPreStopHook")));
  });

  it("sidecars start before the app container and are stopped after it", async () => {
    const t = setup(
      mkPod("side", {
        grace: 5,
        inits: [
          { name: "log", image: IMAGE, restartPolicy: "Always" },
          { name: "proxy", image: IMAGE, restartPolicy: "Always" },
        ],
        containers: [{ name: "app", image: IMAGE }],
      }),
    );
    await until(() => t.running("app"), "app running");
    const created = t.cri.calls.filter((c) => c.op === "createContainer").map((c) => (c.args[1] as ContainerConfig).metadata.name);
    assert.deepEqual(created, ["log", "proxy", "app"]);
    await t.w.terminate();
    assert.deepEqual(t.stops().map((s) => s.name), ["app", "proxy", "log"]);
  });

  it("a failing postStart: FailedPostStartHook, the container is killed, PostStartHookError, then restarted", async () => {
    const t = setup(mkPod("post", { grace: 3, containers: [{ name: "app", image: IMAGE, lifecycle: { postStart: { exec: { command: ["sh", "-c", "exit 1"] } } } }] }), { ok: false, message: "bad" });
    const status = await until(() => {
      const s = t.statuses.get(t.uid);
      return s?.containerStatuses?.[0]?.state?.waiting?.reason === "PostStartHookError" ? s : undefined;
    }, "status PostStartHookError");
    assert.match(status.containerStatuses?.[0]?.state?.waiting?.message ?? "", /^Exec lifecycle hook \(\[sh -c exit 1\]\) for Container "app" in Pod "post_default\(uid-post\)" failed/);
    assert.match(status.containerStatuses?.[0]?.lastState?.terminated?.message ?? "", /^PostStartHookError: /);
    assert.ok(t.events.some((e) => e.startsWith("Warning FailedPostStartHook Exec lifecycle hook")));
    assert.ok(t.events.includes("Normal Killing FailedPostStartHook"));
    await t.running("app");
    assert.deepEqual(t.stops().map((s) => s.name), ["app"]);
    // The next sync restarts it, as after any exit.
    await t.clock.advance(10_000);
    await until(() => t.cri.calls.filter((c) => c.op === "createContainer").length === 2 || undefined, "a second instance");
    const second = t.cri.calls.filter((c) => c.op === "createContainer")[1]?.args[1] as ContainerConfig;
    assert.equal(second.metadata.attempt, 1);
  });

  it("each container gets a termination message file mounted at its terminationMessagePath", async () => {
    const t = setup(mkPod("msg", { grace: 2, containers: [{ name: "app", image: IMAGE }, { name: "other", image: IMAGE, terminationMessagePath: "/tmp/done" }] }));
    await until(() => t.running("other"), "other running");
    const configs = t.cri.calls.filter((c) => c.op === "createContainer").map((c) => c.args[1] as ContainerConfig);
    const mount = (name: string, path: string) => configs.find((c) => c.metadata.name === name)?.mounts?.find((m) => m.containerPath === path);
    assert.ok(mount("app", "/dev/termination-log")?.hostPath.startsWith(join(root, "pods", "uid-msg", "containers", "app") + "/"));
    assert.ok(mount("other", "/tmp/done")?.hostPath.startsWith(join(root, "pods", "uid-msg", "containers", "other") + "/"));
    await t.w.terminate();
  });
});
