/**
 * The container lifecycle on a real containerd through the real tskubelet command, standalone
 * (static pods): init containers in order, a failing init container under Never and OnFailure,
 * sidecars, postStart and preStop hooks, termination messages, and the pod phase under each
 * restart policy. Every pod runs at the same time; each test waits for its own.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { findStatus, stateOf } from "../support/pods.js";
import { startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

const IMAGE = "tskubelet.local/busybox:1.35";
const WAIT_MS = 60_000;

interface PodOpts {
  policy: "Always" | "OnFailure" | "Never";
  grace?: number;
  init?: string[];
  containers: string[];
  volumes?: string;
}

/** A static pod manifest; init and app containers are YAML blocks from `ctr`. */
function manifest(name: string, o: PodOpts): string {
  return [
    "apiVersion: v1",
    "kind: Pod",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    `  restartPolicy: ${o.policy}`,
    `  terminationGracePeriodSeconds: ${o.grace ?? 2}`,
    ...(o.init?.length ? ["  initContainers:", ...o.init] : []),
    "  containers:",
    ...o.containers,
    ...(o.volumes ? ["  volumes:", o.volumes] : []),
  ].join("\n") + "\n";
}

/** One container: a shell script, and optional extra YAML lines (indented by four spaces). */
function ctr(name: string, script: string, extra: string[] = []): string {
  return [`  - name: ${name}`, `    image: ${IMAGE}`, `    command: ["sh", "-c", ${JSON.stringify(script)}]`, ...extra].join("\n");
}

const WORK_MOUNT = ["    volumeMounts:", "    - name: work", "      mountPath: /w"];
const WORK_VOLUME = "  - name: work\n    emptyDir: {}";


describe("container lifecycle on containerd (standalone)", () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let hostDir: string;

  const logOf = async (pod: string, c: string, restart = 0): Promise<string> => {
    const p = await k.pod(pod);
    const uid = p?.metadata?.uid ?? "";
    return readFile(join(k.logsDir, `default_${pod}-${k.nodeName}_${uid}`, c, `${restart}.log`), "utf8").catch(() => "");
  };
  const waitLog = (pod: string, c: string, re: RegExp): Promise<string> =>
    waitFor(async () => {
      const t = await logOf(pod, c);
      return re.test(t) ? t : undefined;
    }, { timeoutMs: WAIT_MS, what: () => `${pod}/${c} to log ${re.source}` });
  const waitPod = (name: string, ok: (p: V1Pod) => boolean, what: string): Promise<V1Pod> => {
    let last: V1Pod | undefined;
    return waitFor(async () => {
      last = await k.pod(name);
      return last && ok(last) ? last : undefined;
    }, { timeoutMs: WAIT_MS, what: () => `${name}: ${what}; last status: ${JSON.stringify(last?.status ?? null)}` });
  };
  const events = (pod: string, reason: string): string[] =>
    k
      .output()
      .split("\n")
      .filter((l) => l.includes('"event"') && l.includes(`reason="${reason}"`) && l.includes(`${pod}-${k.nodeName}`));

  before(async () => {
    rt = await startContainerd({ cni: true });
    k = await startTskubelet(rt);
    hostDir = join(k.dir, "host");
    await mkdir(hostDir, { recursive: true });
    const sleepForever = "trap 'exit 0' TERM; while true; do sleep 1; done";
    const pods: [string, PodOpts][] = [
      [
        "init-order",
        {
          policy: "Always",
          init: [ctr("first", "echo one >> /w/order", WORK_MOUNT), ctr("second", "echo two >> /w/order", WORK_MOUNT)],
          containers: [
            ctr("app", `until [ -f /w/post ]; do sleep 0.1; done; echo "order: $(cat /w/order | tr '\\n' ' ')"; echo "post: $(cat /w/post)"; ${sleepForever}`, [
              ...WORK_MOUNT,
              "    lifecycle:",
              "      postStart:",
              "        exec:",
              '          command: ["sh", "-c", "echo hooked > /w/post"]',
            ]),
          ],
          volumes: WORK_VOLUME,
        },
      ],
      ["init-never", { policy: "Never", init: [ctr("setup", "echo failing; exit 3")], containers: [ctr("app", sleepForever)] }],
      ["init-onfailure", { policy: "OnFailure", init: [ctr("setup", "exit 1")], containers: [ctr("app", sleepForever)] }],
      [
        "sidecar",
        {
          policy: "Always",
          init: [ctr("proxy", `echo up > /w/proxy; ${sleepForever}`, [...WORK_MOUNT, "    restartPolicy: Always"])],
          containers: [ctr("app", `until [ -f /w/proxy ]; do sleep 0.1; done; echo "proxy: $(cat /w/proxy)"; ${sleepForever}`, WORK_MOUNT)],
          volumes: WORK_VOLUME,
        },
      ],
      [
        "sidecar-never",
        {
          policy: "Never",
          init: [ctr("proxy", sleepForever, ["    restartPolicy: Always"])],
          containers: [ctr("app", "echo done")],
        },
      ],
      [
        "poststart-fail",
        {
          policy: "Always",
          containers: [ctr("app", sleepForever, ["    lifecycle:", "      postStart:", "        exec:", '          command: ["sh", "-c", "echo no-good; exit 7"]'])],
        },
      ],
      [
        "prestop",
        {
          policy: "Always",
          grace: 20,
          containers: [
            ctr("app", sleepForever, [
              "    lifecycle:",
              "      preStop:",
              "        exec:",
              '          command: ["sh", "-c", "echo goodbye > /h/prestop"]',
              "    volumeMounts:",
              "    - name: host",
              "      mountPath: /h",
            ]),
          ],
          volumes: `  - name: host\n    hostPath:\n      path: ${hostDir}\n      type: Directory`,
        },
      ],
      ["prestop-sleep", { policy: "Always", grace: 30, containers: [ctr("app", sleepForever, ["    lifecycle:", "      preStop:", "        sleep:", "          seconds: 3"])] }],
      [
        "prestop-hang",
        { policy: "Always", grace: 3, containers: [ctr("app", sleepForever, ["    lifecycle:", "      preStop:", "        exec:", '          command: ["sleep", "3600"]'])] },
      ],
      ["termmsg", { policy: "Never", containers: [ctr("app", "printf 'all good' > /dev/termination-log")] }],
      ["termpath", { policy: "OnFailure", containers: [ctr("app", "printf 'custom path' > /tmp/msg; exit 0", ["    terminationMessagePath: /tmp/msg"])] }],
      [
        "termlogs",
        { policy: "Never", containers: [ctr("app", "echo first line; echo it broke; exit 2", ["    terminationMessagePolicy: FallbackToLogsOnError"])] },
      ],
      ["onfailure-fail", { policy: "OnFailure", containers: [ctr("app", "exit 1")] }],
      ["always-exit0", { policy: "Always", containers: [ctr("app", "sleep 0.2")] }],
    ];
    await Promise.all(pods.map(([name, o]) => k.writeManifest(`${name}.yaml`, manifest(name, o))));
  });
  after(async () => {
    await k?.cleanup();
    await rt?.stop();
  });

  it("init containers run one after the other before the app container; postStart runs before the app reads its file", async () => {
    const log = await waitLog("init-order", "app", /post: /);
    assert.match(log, /stdout F order: one two $/m);
    assert.match(log, /stdout F post: hooked$/m);
    const p = await waitPod("init-order", (x) => x.status?.phase === "Running", "Running");
    for (const name of ["first", "second"]) {
      const s = findStatus(p.status?.initContainerStatuses, name);
      assert.equal(stateOf(s), "terminated:0", name);
      assert.equal(s?.state?.terminated?.reason, "Completed");
      assert.equal(s?.ready, true, `${name} ready once completed`);
    }
    assert.equal(p.status?.conditions?.find((c) => c.type === "Initialized")?.status, "True");
    assert.equal(findStatus(p.status?.containerStatuses, "app")?.ready, true);
  });

  it("a failing init container under Never fails the pod; the app container never starts", async () => {
    const p = await waitPod("init-never", (x) => x.status?.phase === "Failed", "phase Failed");
    assert.equal(stateOf(findStatus(p.status?.initContainerStatuses, "setup")), "terminated:3");
    assert.equal(stateOf(findStatus(p.status?.containerStatuses, "app")), "waiting:PodInitializing");
    const init = p.status?.conditions?.find((c) => c.type === "Initialized");
    assert.equal(init?.status, "False");
    assert.equal(init?.reason, "ContainersNotInitialized");
    assert.equal(init?.message, "containers with incomplete status: [setup]");
    await waitPod("init-never", (x) => x.status?.conditions?.find((c) => c.type === "PodReadyToStartContainers")?.status === "False", "its sandbox stopped");
  });

  it("a failing init container under OnFailure is retried with a growing restartCount; the pod stays Pending", async () => {
    const p = await waitPod("init-onfailure", (x) => (findStatus(x.status?.initContainerStatuses, "setup")?.restartCount ?? 0) >= 1, "setup restarted");
    assert.equal(p.status?.phase, "Pending");
    assert.equal(stateOf(findStatus(p.status?.containerStatuses, "app")), "waiting:PodInitializing");
    assert.equal(p.status?.conditions?.find((c) => c.type === "Initialized")?.reason, "ContainersNotInitialized");
  });

  it("a sidecar starts before the app container and keeps running while the pod runs", async () => {
    const log = await waitLog("sidecar", "app", /proxy: up/);
    assert.match(log, /stdout F proxy: up$/m);
    const p = await waitPod("sidecar", (x) => x.status?.phase === "Running" && stateOf(findStatus(x.status.containerStatuses, "app")) === "running", "Running");
    const side = findStatus(p.status?.initContainerStatuses, "proxy");
    assert.equal(stateOf(side), "running");
    assert.equal(side?.started, true);
    const appStarted = Date.parse(String(findStatus(p.status?.containerStatuses, "app")?.state?.running?.startedAt));
    const sideStarted = Date.parse(String(side?.state?.running?.startedAt));
    assert.ok(sideStarted <= appStarted, `sidecar started ${String(side?.state?.running?.startedAt)}, app ${String(findStatus(p.status?.containerStatuses, "app")?.state?.running?.startedAt)}`);
    assert.equal(p.status?.conditions?.find((c) => c.type === "Ready")?.status, "True");
  });

  it("a Never pod with a sidecar completes once its app container is done: the sidecar is stopped", async () => {
    const p = await waitPod("sidecar-never", (x) => x.status?.phase === "Succeeded", "phase Succeeded");
    assert.equal(stateOf(findStatus(p.status?.containerStatuses, "app")), "terminated:0");
    assert.match(stateOf(findStatus(p.status?.initContainerStatuses, "proxy")), /^terminated:/);
  });

  it("a failing postStart hook: FailedPostStartHook, the container is killed and restarted", async () => {
    const p = await waitPod("poststart-fail", (x) => (findStatus(x.status?.containerStatuses, "app")?.restartCount ?? 0) >= 1, "app restarted");
    assert.ok(events("poststart-fail", "FailedPostStartHook").length >= 1, "FailedPostStartHook event");
    const line = events("poststart-fail", "FailedPostStartHook")[0] ?? "";
    assert.match(line, /Exec lifecycle hook \(\[sh -c echo no-good; exit 7\]\) for Container/);
    const s = findStatus(p.status?.containerStatuses, "app");
    const term = s?.lastState?.terminated ?? s?.state?.terminated;
    assert.match(term?.message ?? "", /^PostStartHookError: /);
  });

  it("preStop exec runs before the container stops; a preStop sleep delays the stop; a hanging preStop is cut at the grace period", async () => {
    await Promise.all(
      ["prestop", "prestop-sleep", "prestop-hang"].map((n) => waitPod(n, (x) => stateOf(findStatus(x.status?.containerStatuses, "app")) === "running", "running")),
    );
    const t0 = Date.now();
    await Promise.all(["prestop", "prestop-sleep", "prestop-hang"].map((n) => k.removeManifest(`${n}.yaml`)));
    const gone = async (n: string): Promise<number> => {
      // The pod leaves /pods at once; its worker logs when the kill and the cleanup are over.
      const done = (l: string): boolean => l.includes("pod terminated and cleaned up") && l.includes(`default/${n}-${k.nodeName}`);
      await waitFor(() => k.output().split("\n").some(done), { timeoutMs: WAIT_MS, what: () => `${n} to be terminated` });
      return Date.now() - t0;
    };
    const [, sleepMs] = await Promise.all([gone("prestop"), gone("prestop-sleep"), gone("prestop-hang")]);
    assert.equal(await readFile(join(hostDir, "prestop"), "utf8"), "goodbye\n");
    assert.ok(sleepMs >= 3000, `the preStop sleep of 3 s held the stop back (gone after ${sleepMs} ms)`);
    assert.ok(events("prestop-hang", "FailedPreStopHook").length >= 1, "the abandoned hook is reported");
  });

  it("terminationMessagePath content ends in terminated.message (default and custom path); Never and OnFailure pods that succeeded are Succeeded", async () => {
    const a = await waitPod("termmsg", (x) => x.status?.phase === "Succeeded", "Succeeded");
    assert.equal(findStatus(a.status?.containerStatuses, "app")?.state?.terminated?.message, "all good");
    const b = await waitPod("termpath", (x) => x.status?.phase === "Succeeded", "Succeeded");
    assert.equal(findStatus(b.status?.containerStatuses, "app")?.state?.terminated?.message, "custom path");
    const dir = join(k.dir, "pods", a.metadata?.uid ?? "", "containers", "app");
    assert.ok((await stat(dir)).isDirectory(), `message files live under ${dir}`);
    await waitPod("termmsg", (x) => x.status?.conditions?.find((c) => c.type === "PodReadyToStartContainers")?.status === "False", "its sandbox stopped");
  });

  it("FallbackToLogsOnError: an empty message file and a non-zero exit take the log's tail; a Never pod that failed is Failed", async () => {
    const p = await waitPod("termlogs", (x) => x.status?.phase === "Failed", "Failed");
    const t = findStatus(p.status?.containerStatuses, "app")?.state?.terminated;
    assert.equal(t?.exitCode, 2);
    assert.equal(t?.reason, "Error");
    assert.equal(t?.message, "first line\nit broke\n");
  });

  it("phases: OnFailure after a failure and Always after a success keep the pod Running with restarts", async () => {
    const a = await waitPod("onfailure-fail", (x) => (findStatus(x.status?.containerStatuses, "app")?.restartCount ?? 0) >= 1, "restarted");
    assert.equal(a.status?.phase, "Running");
    const b = await waitPod("always-exit0", (x) => (findStatus(x.status?.containerStatuses, "app")?.restartCount ?? 0) >= 1, "restarted");
    assert.equal(b.status?.phase, "Running");
  });

  it("after a kubelet restart: completed init containers are not run again, termination messages are found again", async () => {
    const before = await waitPod("init-order", (x) => x.status?.phase === "Running", "Running");
    const ids = (p: V1Pod): string[] => [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].map((c) => `${c.name}=${c.containerID ?? ""}`);
    await k.stop();
    await k.restart();
    const again = await waitPod("init-order", (x) => x.status?.phase === "Running" && stateOf(findStatus(x.status.containerStatuses, "app")) === "running", "Running again");
    assert.deepEqual(ids(again), ids(before));
    for (const c of again.status?.initContainerStatuses ?? []) assert.equal(c.restartCount, 0, c.name);
    const msg = await waitPod("termmsg", (x) => x.status?.phase === "Succeeded", "Succeeded after the restart");
    assert.equal(findStatus(msg.status?.containerStatuses, "app")?.state?.terminated?.message, "all good");
  });
});
