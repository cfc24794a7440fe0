/**
 * The CRI contract (test/support/cri-contract.ts) against a real, private containerd, plus what
 * only a real runtime can show: pod-network sandboxes on CNI, and a runtime that crashes and comes
 * back under a client that stays open.
 */
import assert from "node:assert/strict";
import { after, before, describe, it, test } from "node:test";
import { createImageService, createRuntimeService, CriError, type CriRuntimeService } from "../../src/cri/index.js";
import { criContract } from "../support/cri-contract.js";
import { containerdUnavailableReason, startContainerd, TEST_IMAGES, type PrivateContainerd } from "../support/containerd.js";

const unavailable = containerdUnavailableReason();

if (unavailable !== undefined) {
  void test("CRI contract: containerd", { skip: unavailable }, () => undefined);
} else {
  criContract("containerd", async () => {
    const rt = await startContainerd({ cni: false });
    const rs = createRuntimeService(rt.endpoint, { timeoutMs: 30_000 });
    const is = createImageService(rt.endpoint, { timeoutMs: 30_000 });
    return {
      rs,
      is,
      pauseImage: TEST_IMAGES.pause,
      busybox: TEST_IMAGES.busybox,
      teardown: async () => {
        rs.close();
        is.close();
        await rt.stop();
      },
    };
  });

  void describe("CRI client against containerd with CNI", { timeout: 180_000 }, () => {
    let rt: PrivateContainerd | undefined;
    let rs: CriRuntimeService | undefined;
    const r = (): CriRuntimeService => {
      assert.ok(rs);
      return rs;
    };

    before(async () => {
      rt = await startContainerd({ cni: true });
      rs = createRuntimeService(rt.endpoint, { timeoutMs: 30_000 });
    });
    after(async () => {
      rs?.close();
      await rt?.stop();
    });

    void it("a pod-network sandbox gets an IP in the CNI subnet and loses it when stopped", async () => {
      assert.ok(rt);
      const net = (await r().status()).status.conditions.find((c) => c.type === "NetworkReady");
      assert.equal(net?.status, true);
      const cfg = {
        metadata: { name: "podnet", uid: "podnet-uid", namespace: "it", attempt: 0 },
        hostname: "podnet",
        linux: { cgroupParent: "/kubepods/besteffort/podpodnet-uid", securityContext: { namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" } } },
      } as const;
      const id = await r().runPodSandbox(cfg);
      try {
        const ip = (await r().podSandboxStatus(id)).status.network?.ip ?? "";
        const prefix = rt.subnet.split(".").slice(0, 3).join(".");
        assert.ok(ip.startsWith(`${prefix}.`), `ip ${ip} not in ${rt.subnet}`);
        const stats = await r().listPodSandboxStats({ id });
        assert.equal(stats[0]?.attributes?.id, id);
        assert.equal(typeof stats[0]?.linux?.network?.timestamp, "bigint");
        await r().stopPodSandbox(id);
        assert.equal((await r().podSandboxStatus(id)).status.network?.ip ?? "", "");
      } finally {
        await r().stopPodSandbox(id).catch(() => undefined);
        await r().removePodSandbox(id);
      }
    });

    void it("a crashed runtime is Unavailable, and the same client recovers when it is back", async () => {
      assert.ok(rt);
      await rt.kill();
      const err = await r()
        .version({ timeoutMs: 5_000 })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(err instanceof CriError, String(err));
      assert.equal(err.code, "Unavailable");
      assert.match(err.message, new RegExp(`^CRI Version on ${rt.endpoint}: runtime unavailable \\(is containerd running\\?`));
      await rt.startAgain();
      const t0 = Date.now();
      for (;;) {
        try {
          assert.equal((await r().version({ timeoutMs: 5_000 })).runtimeApiVersion, "v1");
          break;
        } catch (e) {
          if (Date.now() - t0 > 15_000) throw e;
          await new Promise((res) => setTimeout(res, 200));
        }
      }
      assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0}ms to reconnect`);
    });
  });
}
