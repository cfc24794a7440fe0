/**
 * Node-pressure eviction on a real containerd through the real tskubelet command, standalone.
 * Upstream treats every static pod as critical: under DiskPressure static pods are still admitted,
 * and neither node pressure nor an emptyDir over its sizeLimit evicts them. The node's disk is
 * made to cross nodefs.available by a threshold computed from statfs just above the free space.
 * (Evictions of API pods are covered end to end in test/e2e/eviction.test.ts.)
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import type { V1Pod } from "@kubernetes/client-node";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { staticPodYaml } from "../support/pods.js";
import { startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

const IMAGE = "tskubelet.local/busybox:1.35";

function manifest(name: string, opts: { script: string; resources?: string; volumes?: string; mounts?: string }): string {
  return staticPodYaml(name, `  containers:
  - name: main
    image: ${IMAGE}
    command: ["sh", "-c", ${JSON.stringify(opts.script)}]
${opts.resources ?? ""}${opts.mounts ?? ""}${opts.volumes ?? ""}`);
}

function running(p: V1Pod | undefined): boolean {
  return p?.status?.phase === "Running" && p.status.containerStatuses?.[0]?.state?.running !== undefined;
}

describe("eviction under node pressure (standalone, static pods)", () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let thresholdPct = "";

  before(async () => {
    rt = await startContainerd({ cni: true });
    // The root dir lives under the temp dir: a threshold one point above its free share is crossed at once.
    const s = await statfs(tmpdir());
    thresholdPct = `${Math.min(100, Math.ceil((s.bavail / s.blocks) * 100) + 1)}%`;
    k = await startTskubelet(rt, { extraArgs: [`--eviction-hard=nodefs.available<${thresholdPct}`, "--eviction-pressure-transition-period=1m"] });
  });
  after(async () => {
    await k?.cleanup();
    await rt?.stop();
  });

  it("detects DiskPressure from nodefs.available", async () => {
    const line = await waitFor(() => k.output().split("\n").find((l) => l.includes('"node pressure conditions changed"')), {
      timeoutMs: 30_000,
      what: () => `the pressure condition in the log:\n${k.output().slice(-2000)}`,
    });
    assert.match(line, /conditions="DiskPressure"/);
    assert.match(k.output(), /"eviction thresholds met".*nodefs\.available: available \d+ < \d+/);
  });

  it("still admits static pods (critical) and never evicts them, for node pressure or for an emptyDir over its sizeLimit", async () => {
    await k.writeManifest("besteffort.yaml", manifest("besteffort", { script: "sleep 3600" }));
    await k.writeManifest(
      "burstable.yaml",
      manifest("burstable", { script: "sleep 3600", resources: "    resources:\n      requests:\n        memory: 16Mi\n        ephemeral-storage: 1Gi\n" }),
    );
    await k.writeManifest(
      "filler.yaml",
      manifest("filler", {
        script: "dd if=/dev/zero of=/scratch/fill bs=1M count=4 && sleep 3600",
        mounts: "    volumeMounts:\n    - name: scratch\n      mountPath: /scratch\n",
        volumes: "  volumes:\n  - name: scratch\n    emptyDir:\n      sizeLimit: 1Mi\n",
      }),
    );
    const names = ["besteffort", "burstable", "filler"].map((n) => `${n}-${k.nodeName}`);
    await waitFor(async () => (await Promise.all(["besteffort", "burstable", "filler"].map((n) => k.pod(n)))).every(running), {
      timeoutMs: 60_000,
      what: () => `the three static pods to run:\n${k.output().slice(-3000)}`,
    });
    assert.doesNotMatch(k.output(), /"pod rejected at admission"/);
    // The manager tries them all (the emptyDir one for its limit, then the ranking under DiskPressure) and refuses each.
    for (const n of names) {
      await waitFor(() => k.output().split("\n").some((l) => l.includes('"cannot evict a critical static pod"') && l.includes(`pod="default/${n}"`)), {
        timeoutMs: 60_000,
        what: () => `the refusal to evict ${n}:\n${k.output().slice(-3000)}`,
      });
    }
    assert.match(k.output(), /"attempting to reclaim".* signal="nodefs\.available"/);
    assert.match(k.output(), /"unable to evict any pods from the node".* signal="nodefs\.available"/);
    for (const n of ["besteffort", "burstable", "filler"]) {
      const p = await k.pod(n);
      assert.ok(running(p), `${n} keeps running`);
      assert.equal(p?.status?.containerStatuses?.[0]?.restartCount, 0);
      assert.notEqual(p?.status?.reason, "Evicted");
    }
    assert.doesNotMatch(k.output(), /"event".*reason="Evicted"/);
  });
});
