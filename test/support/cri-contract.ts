/**
 * The CRI behaviour tskubelet relies on, as one node:test suite that runs against any
 * RuntimeService + ImageService: the in-memory fake (test/unit/cri-fake.test.ts) and a real
 * containerd (test/integration/cri-containerd.test.ts). If the fake drifts from containerd, one of
 * the two runs fails.
 *
 * Every test makes its own hostNetwork sandbox (no CNI needed), labels it with a per-run id, and
 * removes what it made even when it fails.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { checkVersion } from "../../src/cri/client.js";
import { CriError } from "../../src/cri/errors.js";
import type {
  ContainerConfig,
  ContainerState,
  ContainerStatus,
  CriErrorCode,
  ImageService,
  PodSandboxConfig,
  RuntimeService,
} from "../../src/cri/types.js";

export interface CriContractEnv {
  rs: RuntimeService;
  is: ImageService;
  pauseImage?: string;
  busybox: string;
  teardown(): Promise<void>;
}

const TEST_LABEL = "tskubelet.test/contract";
const BOGUS_ID = "0123456789abcdef".repeat(4);
const TWO_POW_53 = 2n ** 53n;

async function rejectsWith(p: Promise<unknown>, code: CriErrorCode): Promise<CriError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CriError, `expected a CriError, got ${String(err)}`);
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.fail(`expected the call to fail with ${code}, but it succeeded`);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function criContract(name: string, setup: () => Promise<CriContractEnv>): void {
  void describe(`CRI contract: ${name}`, () => {
    let env: CriContractEnv | undefined;
    const runId = randomBytes(4).toString("hex");
    const e = (): CriContractEnv => {
      assert.ok(env, "contract setup failed");
      return env;
    };

    before(async () => {
      env = await setup();
    });
    after(async () => {
      if (!env) return;
      // Belt and braces: anything a failed test left behind.
      const left = await env.rs.listPodSandbox({ labelSelector: { [TEST_LABEL]: runId } }).catch(() => []);
      for (const s of left) {
        await env.rs.stopPodSandbox(s.id).catch(() => undefined);
        await env.rs.removePodSandbox(s.id).catch(() => undefined);
      }
      await env.teardown();
    });

    let podSeq = 0;
    /** A fresh hostNetwork sandbox config (no hostname: runc refuses one without a UTS namespace). */
    const sandboxConfig = (): PodSandboxConfig => {
      podSeq += 1;
      const pod = `pod-${runId}-${podSeq}`;
      return {
        metadata: { name: pod, uid: `${runId}-${podSeq}-uid`, namespace: "contract", attempt: 0 },
        labels: { [TEST_LABEL]: runId, "tskubelet.test/pod": pod },
        annotations: { "tskubelet.test/note": "contract" },
        linux: { securityContext: { namespaceOptions: { network: "NODE", pid: "CONTAINER", ipc: "POD" } } },
      };
    };
    const containerConfig = (cname: string, script: string): ContainerConfig => ({
      metadata: { name: cname, attempt: 0 },
      image: { image: e().busybox },
      command: ["sh", "-c", script],
      labels: { [TEST_LABEL]: runId, "tskubelet.test/container": cname },
      annotations: { "tskubelet.test/hash": "abc" },
    });

    /** Runs `fn` with a READY sandbox, then stops and removes it whatever happened. */
    const withSandbox = async (fn: (id: string, cfg: PodSandboxConfig) => Promise<void>): Promise<void> => {
      const cfg = sandboxConfig();
      const id = await e().rs.runPodSandbox(cfg);
      try {
        await fn(id, cfg);
      } finally {
        await e().rs.stopPodSandbox(id).catch(() => undefined);
        await e().rs.removePodSandbox(id);
      }
    };
    const startContainer = async (sb: string, cfg: PodSandboxConfig, c: ContainerConfig): Promise<string> => {
      const id = await e().rs.createContainer(sb, c, cfg);
      await e().rs.startContainer(id);
      return id;
    };
    const statusOf = async (id: string): Promise<ContainerStatus> => (await e().rs.containerStatus(id)).status;
    const waitState = (id: string, state: ContainerState): Promise<ContainerStatus> =>
      waitFor(`container ${id.slice(0, 12)} to be ${state}`, async () => {
        const s = await statusOf(id);
        return s.state === state ? s : undefined;
      });

    void it("Version reports CRI API v1", async () => {
      const v = await checkVersion(e().rs);
      assert.equal(v.runtimeApiVersion, "v1");
      assert.notEqual(v.runtimeName, "");
      assert.notEqual(v.runtimeVersion, "");
    });

    void it("Status reports RuntimeReady", async () => {
      const s = await e().rs.status();
      const ready = s.status.conditions.find((c) => c.type === "RuntimeReady");
      assert.ok(ready, "no RuntimeReady condition");
      assert.equal(ready.status, true);
      assert.ok(s.status.conditions.some((c) => c.type === "NetworkReady"), "no NetworkReady condition");
    });

    void it("runs a hostNetwork sandbox and finds it by label", async () => {
      await withSandbox(async (id, cfg) => {
        assert.match(id, /^[0-9a-f]{64}$/);
        const listed = await e().rs.listPodSandbox({ labelSelector: { "tskubelet.test/pod": cfg.metadata.name } });
        assert.equal(listed.length, 1);
        const sb = listed[0];
        assert.ok(sb);
        assert.equal(sb.id, id);
        assert.equal(sb.state, "SANDBOX_READY");
        assert.deepEqual(sb.metadata, cfg.metadata);
        assert.equal(sb.labels[TEST_LABEL], runId);
        assert.equal(sb.annotations["tskubelet.test/note"], "contract");
        assert.equal(typeof sb.createdAt, "bigint");

        const st = (await e().rs.podSandboxStatus(id)).status;
        assert.equal(st.id, id);
        assert.equal(st.state, "SANDBOX_READY");
        assert.equal(st.createdAt, sb.createdAt);
        assert.equal(st.network?.ip ?? "", "", "a hostNetwork sandbox has no pod IP of its own");

        const ready = await e().rs.listPodSandbox({ state: { state: "SANDBOX_READY" }, labelSelector: { [TEST_LABEL]: runId } });
        assert.ok(ready.some((s) => s.id === id));
        const byPrefix = await e().rs.listPodSandbox({ id: id.slice(0, 16) });
        assert.deepEqual(byPrefix.map((s) => s.id), [id]);
      });
    });

    void it("refuses a second sandbox with the same metadata while the first exists", async () => {
      await withSandbox(async (_id, cfg) => {
        const err = await rejectsWith(e().rs.runPodSandbox(cfg), "Unknown");
        assert.match(err.message, /reserve sandbox name/);
      });
    });

    void it("creates and starts a container, which is RUNNING with startedAt set", async () => {
      await withSandbox(async (sb, cfg) => {
        const c = containerConfig("main", "echo hi; sleep 3600");
        const id = await e().rs.createContainer(sb, c, cfg);
        assert.match(id, /^[0-9a-f]{64}$/);
        const created = await e().rs.listContainers({ labelSelector: { "tskubelet.test/container": "main", [TEST_LABEL]: runId } });
        assert.deepEqual(created.map((x) => [x.id, x.state]), [[id, "CONTAINER_CREATED"]]);
        assert.equal((await statusOf(id)).startedAt, 0n);

        await e().rs.startContainer(id);
        const listed = await e().rs.listContainers({ podSandboxId: sb, labelSelector: { "tskubelet.test/container": "main" } });
        assert.equal(listed.length, 1);
        const ctr = listed[0];
        assert.ok(ctr);
        assert.equal(ctr.state, "CONTAINER_RUNNING");
        assert.equal(ctr.podSandboxId, sb);
        assert.deepEqual(ctr.metadata, { name: "main", attempt: 0 });
        assert.equal(ctr.annotations["tskubelet.test/hash"], "abc");
        assert.notEqual(ctr.imageRef, "");

        const st = await statusOf(id);
        assert.equal(st.state, "CONTAINER_RUNNING");
        assert.equal(typeof st.startedAt, "bigint");
        assert.ok(st.startedAt > 0n, "startedAt must be set");
        assert.equal(st.finishedAt, 0n);
        assert.equal(st.createdAt, ctr.createdAt);
        assert.notEqual(st.imageRef, "");

        const running = await e().rs.listContainers({ state: { state: "CONTAINER_RUNNING" }, podSandboxId: sb });
        assert.deepEqual(running.map((x) => x.id), [id]);
        const exited = await e().rs.listContainers({ state: { state: "CONTAINER_EXITED" }, podSandboxId: sb });
        assert.deepEqual(exited, []);
      });
    });

    void it("stops a running container with a grace period: EXITED with 137 or 143, and stopping again is fine", async () => {
      await withSandbox(async (sb, cfg) => {
        const id = await startContainer(sb, cfg, containerConfig("stopme", "echo hi; sleep 3600"));
        await e().rs.stopContainer(id, 2);
        const st = await statusOf(id);
        assert.equal(st.state, "CONTAINER_EXITED");
        assert.ok([137, 143].includes(st.exitCode), `exit code ${st.exitCode}`);
        assert.ok(st.finishedAt > 0n);
        assert.equal(st.reason, "Error");
        await e().rs.stopContainer(id, 2);
        await rejectsWith(e().rs.startContainer(id), "Unknown"); // an exited container cannot be restarted
      });
    });

    void it("a container that exits 3 shows exitCode 3", async () => {
      await withSandbox(async (sb, cfg) => {
        const id = await startContainer(sb, cfg, containerConfig("three", "exit 3"));
        const st = await waitState(id, "CONTAINER_EXITED");
        assert.equal(st.exitCode, 3);
        assert.equal(st.reason, "Error");
        assert.ok(st.finishedAt > 0n && st.startedAt > 0n);
        const ok = await startContainer(sb, cfg, containerConfig("zero", "true"));
        const st0 = await waitState(ok, "CONTAINER_EXITED");
        assert.equal(st0.exitCode, 0);
        assert.equal(st0.reason, "Completed");
      });
    });

    void it("ExecSync returns stdout, stderr and the exit code", async () => {
      await withSandbox(async (sb, cfg) => {
        const id = await startContainer(sb, cfg, containerConfig("exec", "sleep 3600"));
        const r = await e().rs.execSync(id, ["sh", "-c", "echo out; echo err >&2; exit 7"], 5);
        assert.equal(r.exitCode, 7);
        assert.ok(Buffer.isBuffer(r.stdout) && Buffer.isBuffer(r.stderr));
        assert.equal(r.stdout.toString(), "out\n");
        assert.equal(r.stderr.toString(), "err\n");
        const ok = await e().rs.execSync(id, ["sh", "-c", "exit 0"], 5);
        assert.equal(ok.exitCode, 0);
      });
    });

    void it("removes a container, then the sandbox; neither is listed afterwards", async () => {
      const cfg = sandboxConfig();
      const sb = await e().rs.runPodSandbox(cfg);
      const id = await startContainer(sb, cfg, containerConfig("gone", "sleep 3600"));
      await e().rs.stopContainer(id, 0);
      await e().rs.removeContainer(id);
      await rejectsWith(e().rs.containerStatus(id), "NotFound");
      assert.deepEqual(await e().rs.listContainers({ podSandboxId: sb }), []);
      await e().rs.stopPodSandbox(sb);
      await e().rs.removePodSandbox(sb);
      assert.deepEqual(await e().rs.listPodSandbox({ labelSelector: { "tskubelet.test/pod": cfg.metadata.name } }), []);
      await rejectsWith(e().rs.podSandboxStatus(sb), "NotFound");
    });

    void it("StopPodSandbox kills the sandbox's containers (137) and leaves it NOTREADY; nothing new can be created in it", async () => {
      await withSandbox(async (sb, cfg) => {
        const id = await startContainer(sb, cfg, containerConfig("victim", "sleep 3600"));
        await e().rs.stopPodSandbox(sb);
        const st = (await e().rs.podSandboxStatus(sb)).status;
        assert.equal(st.state, "SANDBOX_NOTREADY");
        const c = await statusOf(id);
        assert.equal(c.state, "CONTAINER_EXITED");
        assert.equal(c.exitCode, 137);
        await e().rs.stopPodSandbox(sb); // idempotent
        await rejectsWith(e().rs.createContainer(sb, containerConfig("late", "true"), cfg), "NotFound");
      });
    });

    void it("removing a running container force-stops it (containerd 1.6 does not refuse)", async () => {
      await withSandbox(async (sb, cfg) => {
        const id = await startContainer(sb, cfg, containerConfig("busy", "sleep 3600"));
        await e().rs.removeContainer(id);
        await rejectsWith(e().rs.containerStatus(id), "NotFound");
      });
    });

    void it("removing a READY sandbox removes it and its running containers", async () => {
      const cfg = sandboxConfig();
      const sb = await e().rs.runPodSandbox(cfg);
      const id = await startContainer(sb, cfg, containerConfig("inside", "sleep 3600"));
      await e().rs.removePodSandbox(sb);
      await rejectsWith(e().rs.podSandboxStatus(sb), "NotFound");
      await rejectsWith(e().rs.containerStatus(id), "NotFound");
    });

    void it("imageStatus: present image has id and size, a missing one is undefined", async () => {
      const img = await e().is.imageStatus({ image: e().busybox });
      assert.ok(img, `${e().busybox} should be present`);
      assert.match(img.id, /^sha256:[0-9a-f]{64}$/);
      assert.equal(typeof img.size, "bigint");
      assert.ok(img.size > 0n);
      const pause = e().pauseImage;
      if (pause !== undefined) assert.ok(await e().is.imageStatus({ image: pause }), `${pause} should be present`);
      assert.equal(await e().is.imageStatus({ image: "tskubelet.local/does-not-exist:0.0" }), undefined);
      const all = await e().is.listImages();
      assert.ok(all.some((i) => i.id === img.id));
    });

    void it("creating a container from a missing image fails with NotFound", async () => {
      await withSandbox(async (sb, cfg) => {
        const c = { ...containerConfig("noimage", "true"), image: { image: "tskubelet.local/does-not-exist:0.0" } };
        const err = await rejectsWith(e().rs.createContainer(sb, c, cfg), "NotFound");
        assert.match(err.message, /CreateContainer/);
        assert.match(err.message, /does-not-exist/);
      });
    });

    void it("nonexistent ids: remove succeeds, status/stop/start are NotFound", async () => {
      await e().rs.removeContainer(BOGUS_ID);
      await e().rs.removePodSandbox(BOGUS_ID);
      await e().is.removeImage({ image: "tskubelet.local/does-not-exist:0.0" });
      await rejectsWith(e().rs.containerStatus(BOGUS_ID), "NotFound");
      await rejectsWith(e().rs.stopContainer(BOGUS_ID, 1), "NotFound");
      await rejectsWith(e().rs.startContainer(BOGUS_ID), "NotFound");
      await rejectsWith(e().rs.podSandboxStatus(BOGUS_ID), "NotFound");
      await rejectsWith(e().rs.stopPodSandbox(BOGUS_ID), "NotFound");
      await rejectsWith(e().rs.containerStats(BOGUS_ID), "NotFound");
      await rejectsWith(e().rs.createContainer(BOGUS_ID, containerConfig("x", "true"), sandboxConfig()), "NotFound");
    });

    void it("int64 fields arrive as exact bigints (createdAt > 2^53)", async () => {
      await withSandbox(async (sb, cfg) => {
        const id = await startContainer(sb, cfg, containerConfig("precise", "sleep 3600"));
        const sandbox = (await e().rs.podSandboxStatus(sb)).status;
        const st = await statusOf(id);
        const stamps = [sandbox.createdAt, st.createdAt, st.startedAt];
        for (const t of stamps) {
          assert.equal(typeof t, "bigint");
          assert.ok(t > TWO_POW_53, `${t} should exceed 2^53`);
        }
        // Nanosecond stamps that survived a trip through a JS number would all be multiples of 256.
        assert.ok(
          stamps.some((t) => BigInt(Number(t)) !== t),
          `all of ${stamps.join(", ")} are exactly representable as doubles: precision was probably lost`,
        );
        assert.ok(st.startedAt >= st.createdAt);
        const stats = await e().rs.containerStats(id);
        assert.equal(typeof stats.cpu?.timestamp, "bigint");
        assert.equal(typeof stats.memory?.workingSetBytes?.value, "bigint");
      });
    });

    void it("GetContainerEvents support is reported as a boolean, never an error", async () => {
      assert.equal(typeof (await e().rs.supportsContainerEvents()), "boolean");
    });
  });
}
