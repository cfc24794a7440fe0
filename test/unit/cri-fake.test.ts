import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CriError } from "../../src/cri/errors.js";
import type { ContainerConfig, PodSandboxConfig } from "../../src/cri/types.js";
import { FakeClock } from "../../src/util/clock.js";
import { criContract } from "../support/cri-contract.js";
import { defaultProgram, FakeCri, normalizeImageRef } from "../support/fake-cri.js";

const BUSYBOX = "tskubelet.local/busybox:1.35";

criContract("in-memory fake", () => {
  const fake = new FakeCri();
  return Promise.resolve({ rs: fake, is: fake, pauseImage: "tskubelet.local/pause:3.9", busybox: BUSYBOX, teardown: () => Promise.resolve() });
});

// ---- the fake's own controls (what the contract cannot express) ----

let n = 0;
function pod(opts: { hostNetwork?: boolean; hostname?: string } = {}): PodSandboxConfig {
  n += 1;
  const cfg: PodSandboxConfig = {
    metadata: { name: `p${n}`, uid: `uid-${n}`, namespace: "ns", attempt: 0 },
    labels: { app: "x" },
    logDirectory: `/var/log/pods/ns_p${n}_uid-${n}`,
    linux: { securityContext: { namespaceOptions: { network: opts.hostNetwork ? "NODE" : "POD", pid: "CONTAINER", ipc: "POD" } } },
  };
  if (opts.hostname !== undefined) cfg.hostname = opts.hostname;
  return cfg;
}

function ctr(name: string, script: string): ContainerConfig {
  return { metadata: { name, attempt: 0 }, image: { image: BUSYBOX }, command: ["sh", "-c", script], labels: { c: name }, logPath: `${name}/0.log` };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    assert.ok(err instanceof CriError, String(err));
    return err.code;
  }
}

void describe("fake CRI controls", () => {
  void it("exitContainer ends a running container with the given code and reason", async () => {
    const f = new FakeCri();
    const cfg = pod();
    const sb = await f.runPodSandbox(cfg);
    const id = await f.createContainer(sb, ctr("app", "sleep 3600"), cfg);
    await f.startContainer(id);
    f.exitContainer(id, 137, { reason: "OOMKilled" });
    const st = (await f.containerStatus(id)).status;
    assert.equal(st.state, "CONTAINER_EXITED");
    assert.equal(st.exitCode, 137);
    assert.equal(st.reason, "OOMKilled");
    assert.equal(st.logPath, `/var/log/pods/ns_${cfg.metadata.name}_${cfg.metadata.uid}/app/0.log`);
    assert.throws(() => f.exitContainer(id, 1), /not running/);
  });

  void it("failNext fails exactly the next call of that op, with that code", async () => {
    const f = new FakeCri();
    f.failNext("listContainers", "DeadlineExceeded");
    assert.equal(await codeOf(f.listContainers()), "DeadlineExceeded");
    assert.deepEqual(await f.listContainers(), []);
    f.failNext("runPodSandbox", "Unknown", "boom");
    await assert.rejects(f.runPodSandbox(pod()), /CRI RunPodSandbox on .*: boom/);
  });

  void it("down makes every call Unavailable and keeps the state", async () => {
    const f = new FakeCri();
    const sb = await f.runPodSandbox(pod());
    f.setDown(true);
    assert.equal(await codeOf(f.version()), "Unavailable");
    assert.equal(await codeOf(f.listPodSandbox()), "Unavailable");
    assert.equal(await codeOf(f.imageStatus({ image: BUSYBOX })), "Unavailable");
    await assert.rejects(f.status(), /runtime unavailable \(is containerd running\?/);
    f.setDown(false);
    assert.deepEqual((await f.listPodSandbox()).map((s) => s.id), [sb]);
  });

  void it("pod-network sandboxes get an IP; without a network they fail and leave a NOTREADY record", async () => {
    const f = new FakeCri();
    const ok = await f.runPodSandbox(pod());
    assert.match((await f.podSandboxStatus(ok)).status.network?.ip ?? "", /^10\.88\.\d+\.\d+$/);
    f.setNetworkReady(false);
    const st = await f.status();
    assert.equal(st.status.conditions.find((c) => c.type === "NetworkReady")?.status, false);
    const cfg = pod();
    await assert.rejects(f.runPodSandbox(cfg), /cni plugin not initialized/);
    const left = await f.listPodSandbox({ labelSelector: {} , state: { state: "SANDBOX_NOTREADY" } });
    assert.equal(left.length, 1);
    assert.ok((left[0]?.createdAt ?? 0n) < 0n, "containerd reports a zero-time createdAt");
    // Its name stays reserved until the record is removed.
    assert.equal(await codeOf(f.runPodSandbox(cfg)), "Unknown");
    await f.removePodSandbox(left[0]?.id ?? "");
    f.setNetworkReady(true);
    assert.equal(await codeOf(f.runPodSandbox(cfg)), "ok");
    // hostNetwork sandboxes need no network.
    f.setNetworkReady(false);
    assert.equal(await codeOf(f.runPodSandbox(pod({ hostNetwork: true }))), "ok");
  });

  void it("a hostNetwork sandbox with a hostname fails and leaves nothing", async () => {
    const f = new FakeCri();
    await assert.rejects(f.runPodSandbox(pod({ hostNetwork: true, hostname: "h" })), /without a private UTS namespace/);
    assert.deepEqual(await f.listPodSandbox(), []);
  });

  void it("programs: ignoring SIGTERM means 137 after the grace period, which is recorded", async () => {
    const f = new FakeCri();
    f.setProgram(() => ({ onTerm: "ignore" }));
    const cfg = pod();
    const sb = await f.runPodSandbox(cfg);
    const id = await f.createContainer(sb, ctr("stubborn", "sleep 3600"), cfg);
    await f.startContainer(id);
    await f.stopContainer(id, 30);
    assert.equal((await f.containerStatus(id)).status.exitCode, 137);
    assert.deepEqual(f.getStopTimeouts(id), [30]);
  });

  void it("defaultProgram reads the command line", () => {
    const p = (s: string): ReturnType<typeof defaultProgram> => defaultProgram(ctr("x", s));
    assert.deepEqual(p("exit 3"), { exitOnStart: 3 });
    assert.deepEqual(p("echo hi; sleep 3600"), {});
    assert.deepEqual(p("true"), { exitOnStart: 0 });
    assert.deepEqual(p("false"), { exitOnStart: 1 });
    assert.deepEqual(defaultProgram({ metadata: { name: "pause", attempt: 0 }, image: { image: "x" } }), {});
  });

  void it("exec handler, stats and images", async () => {
    const f = new FakeCri({ clock: new FakeClock(), registry: ["docker.io/library/nginx:1.25"] });
    const cfg = pod();
    const sb = await f.runPodSandbox(cfg);
    const id = await f.createContainer(sb, ctr("app", "sleep 3600"), cfg);
    await f.startContainer(id);
    f.setExecHandler((_id, cmd) => (cmd[0] === "slow" ? "timeout" : { stdout: "custom", exitCode: 2 }));
    assert.equal(await codeOf(f.execSync(id, ["slow"], 1)), "DeadlineExceeded");
    assert.equal((await f.execSync(id, ["x"], 1)).stdout.toString(), "custom");
    f.setStats(id, { memory: { workingSetBytes: { value: 5n * 2n ** 60n } } });
    assert.equal((await f.containerStats(id)).memory?.workingSetBytes?.value, 5n * 2n ** 60n);

    assert.equal(await f.imageStatus({ image: "nginx:1.25" }), undefined);
    assert.equal(await codeOf(f.pullImage({ image: "nginx:1.26" })), "Unknown");
    const ref = await f.pullImage({ image: "nginx:1.25" }, { username: "u", password: "p" });
    assert.match(ref, /^sha256:[0-9a-f]{64}$/);
    const img = await f.imageStatus({ image: "docker.io/library/nginx:1.25" });
    assert.deepEqual(img?.repoTags, ["docker.io/library/nginx:1.25"]);
    assert.equal((await f.imageStatus({ image: ref }))?.id, ref);
    assert.deepEqual(f.getPulls().map((p) => p.auth?.username), [undefined, "u"]);
    await f.removeImage({ image: "nginx:1.25" });
    assert.equal(await f.imageStatus({ image: ref }), undefined);
    const fs = await f.imageFsInfo();
    assert.equal(fs.imageFilesystems.length, 1);
  });

  void it("pod stats need a cgroup parent, like containerd", async () => {
    const f = new FakeCri();
    const noParent = await f.runPodSandbox(pod());
    assert.equal(await codeOf(f.podSandboxStats(noParent)), "Unknown");
    assert.equal(await codeOf(f.listPodSandboxStats()), "Unknown");
    await f.removePodSandbox(noParent);
    const cfg = pod();
    cfg.linux = { ...cfg.linux, cgroupParent: "/kubepods/besteffort/poduid" };
    const sb = await f.runPodSandbox(cfg);
    const stats = await f.listPodSandboxStats();
    assert.deepEqual(stats.map((s) => s.attributes?.id), [sb]);
  });

  void it("events are unimplemented, as on containerd 1.6", async () => {
    const f = new FakeCri();
    assert.equal(await f.supportsContainerEvents(), false);
    const it = f.containerEvents({ signal: new AbortController().signal });
    await assert.rejects(async () => {
      for await (const _ of it) assert.fail("no events expected");
    }, (err: unknown) => err instanceof CriError && err.code === "Unimplemented");
  });

  void it("normalizes docker-style references", () => {
    assert.equal(normalizeImageRef("busybox"), "docker.io/library/busybox:latest");
    assert.equal(normalizeImageRef("me/app:1"), "docker.io/me/app:1");
    assert.equal(normalizeImageRef("localhost:5000/app"), "localhost:5000/app:latest");
    assert.equal(normalizeImageRef("tskubelet.local/busybox:1.35"), "tskubelet.local/busybox:1.35");
  });

  void it("records calls", async () => {
    const f = new FakeCri();
    await f.version();
    await f.version();
    assert.equal(f.getCallCount("version"), 2);
    assert.deepEqual(f.calls.map((c) => c.op), ["version", "version"]);
  });
});
