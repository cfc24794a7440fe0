import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Container, ContainerState, PodSandbox, PodSandboxState, RuntimeService } from "../../src/cri/types.js";
import { createContainerGC, planContainerGC } from "../../src/gc/containers.js";
import { LABEL_POD_UID } from "../../src/api/labels.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

const NOW = Date.UTC(2026, 0, 1);
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;

const ctr = (id: string, uid: string, state: ContainerState, at: { sandbox?: string; createdMs?: number } = {}): Container => ({
  id,
  podSandboxId: at.sandbox ?? `s-${uid}`,
  metadata: { name: "main", attempt: 0 },
  image: { image: "img" },
  imageRef: "img",
  state,
  createdAt: ns(at.createdMs ?? NOW - 120_000),
  labels: { [LABEL_POD_UID]: uid },
  annotations: {},
});
const sb = (id: string, uid: string, state: PodSandboxState): PodSandbox => ({
  id,
  metadata: { name: "p", uid, namespace: "ns", attempt: 0 },
  state,
  createdAt: ns(NOW - 120_000),
  labels: { [LABEL_POD_UID]: uid },
  annotations: {},
  runtimeHandler: "",
});

describe("container GC plan", () => {
  it("removes dead containers and not-ready sandboxes of gone pods only", () => {
    const containers = [ctr("live-dead", "live", "CONTAINER_EXITED"), ctr("gone-dead", "gone", "CONTAINER_EXITED"), ctr("gone-created", "gone", "CONTAINER_CREATED")];
    const sandboxes = [sb("s-live", "live", "SANDBOX_NOTREADY"), sb("s-gone", "gone", "SANDBOX_NOTREADY")];
    const plan = planContainerGC({ containers, sandboxes }, new Set(["gone"]), { nowMs: NOW, minAgeMs: 0 });
    assert.deepEqual(plan.containers.sort(), ["gone-created", "gone-dead"]);
    assert.deepEqual(plan.sandboxes, ["s-gone"]);
    assert.deepEqual(plan.clearedPods, ["gone"]);
  });

  it("never removes a running container, nor its sandbox, nor a ready sandbox", () => {
    const containers = [ctr("run", "gone", "CONTAINER_RUNNING"), ctr("dead", "gone", "CONTAINER_EXITED")];
    const sandboxes = [sb("s-gone", "gone", "SANDBOX_NOTREADY"), sb("s-ready", "gone2", "SANDBOX_READY")];
    const plan = planContainerGC({ containers, sandboxes }, new Set(["gone", "gone2"]), { nowMs: NOW, minAgeMs: 0 });
    assert.deepEqual(plan.containers, ["dead"]);
    assert.deepEqual(plan.sandboxes, []);
    assert.deepEqual(plan.clearedPods, []);
  });

  it("keeps what is younger than the minimum age", () => {
    const containers = [ctr("young", "gone", "CONTAINER_EXITED", { sandbox: "s-gone", createdMs: NOW - 10_000 }), ctr("old", "gone", "CONTAINER_EXITED", { sandbox: "s-other", createdMs: NOW - 60_000 })];
    const plan = planContainerGC({ containers, sandboxes: [] }, new Set(["gone"]), { nowMs: NOW, minAgeMs: 30_000 });
    assert.deepEqual(plan.containers, ["old"]);
  });
});

describe("container GC passes", () => {
  it("acts only on pods gone on two passes in a row, after the sources reported, and removes their log directories", async () => {
    const logs = await mkdtemp(join(tmpdir(), "tsk-cgc-"));
    try {
      await mkdir(join(logs, "ns_gone_uid-gone"));
      await mkdir(join(logs, "ns_live_uid-live"));
      const removed: string[] = [];
      const containers = [ctr("c-gone", "uid-gone", "CONTAINER_EXITED"), ctr("c-live", "uid-live", "CONTAINER_EXITED")];
      const sandboxes = [sb("s-uid-gone", "uid-gone", "SANDBOX_NOTREADY")];
      const runtime: Pick<RuntimeService, "listContainers" | "listPodSandbox" | "removeContainer" | "removePodSandbox"> = {
        listContainers: () => Promise.resolve(containers.filter((c) => !removed.includes(c.id))),
        listPodSandbox: () => Promise.resolve(sandboxes.filter((s) => !removed.includes(s.id))),
        removeContainer: (id) => {
          removed.push(id);
          return Promise.resolve();
        },
        removePodSandbox: (id) => {
          removed.push(id);
          return Promise.resolve();
        },
      };
      let ready = false;
      const clock = new FakeClock(NOW);
      const gc = createContainerGC(
        { runtime: runtime as RuntimeService, clock, logger: memoryLogger().logger, podKnown: (uid) => uid === "uid-live", sourcesReady: () => ready },
        { periodMs: 60_000, minAgeMs: 0, podLogsDir: logs },
      );
      await gc.collect();
      assert.deepEqual(removed, [], "sources not ready");
      ready = true;
      await gc.collect();
      assert.deepEqual(removed, [], "gone for one pass only");
      const plan = await gc.collect();
      assert.deepEqual(removed, ["c-gone", "s-uid-gone"]);
      assert.deepEqual(plan.clearedPods, ["uid-gone"]);
      assert.deepEqual(await readdir(logs), ["ns_live_uid-live"]);
    } finally {
      await rm(logs, { recursive: true, force: true });
    }
  });
});
