import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { cgroupExists, cgroupFiles, detectCgroups, ensureCgroup, ensureQOSCgroups, removeCgroup, sharesToWeight } from "../../src/containers/cgroups.js";
import { ensurePodCgroup } from "../../src/containers/pod-cgroups.js";
import { containerResources, podCgroupParent, podCgroupResources, qosClass } from "../../src/containers/resources.js";

const MiB = 2 ** 20;

function mkPod(uid: string, containers: V1Container["resources"][], init: V1Container["resources"][] = []): V1Pod {
  return {
    metadata: { name: "p", namespace: "default", uid },
    spec: {
      containers: containers.map((resources, i) => ({ name: `c${i}`, image: "busybox", ...(resources ? { resources } : {}) })),
      ...(init.length ? { initContainers: init.map((resources, i) => ({ name: `i${i}`, image: "busybox", ...(resources ? { resources } : {}) })) } : {}),
    },
  };
}

const temps: string[] = [];
after(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

/** A fake v1 hierarchy set: cpu, memory, pids, a cpuacct symlink, a name=systemd one and an empty unified v2 mount. */
async function fakeV1(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "tsk-cg1-"));
  temps.push(root);
  const files: Record<string, string[]> = {
    cpu: ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
    memory: ["memory.limit_in_bytes"],
    pids: ["pids.max"],
    systemd: [],
    unified: ["cgroup.controllers"],
  };
  for (const [h, fs] of Object.entries(files)) {
    await mkdir(join(root, h));
    for (const f of ["cgroup.procs", ...fs]) await writeFile(join(root, h, f), "");
  }
  await symlink(join(root, "cpu"), join(root, "cpuacct"));
  return root;
}

async function fakeV2(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "tsk-cg2-"));
  temps.push(root);
  await writeFile(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids\n");
  await writeFile(join(root, "cgroup.procs"), "");
  return root;
}

const read = (p: string): Promise<string> => readFile(p, "utf8");

describe("QoS and pod cgroup values", () => {
  it("cgroup parents by QoS class", () => {
    const g = mkPod("g", [{ limits: { cpu: "1", memory: "64Mi" } }]);
    const b = mkPod("b", [{ requests: { cpu: "100m" } }]);
    const e = mkPod("e", [undefined]);
    assert.deepEqual([qosClass(g), qosClass(b), qosClass(e)], ["Guaranteed", "Burstable", "BestEffort"]);
    assert.equal(podCgroupParent(g), "/kubepods/podg");
    assert.equal(podCgroupParent(b), "/kubepods/burstable/podb");
    assert.equal(podCgroupParent(e, "/custom"), "/custom/kubepods/besteffort/pode");
  });

  it("Guaranteed: shares from requests, quota and memory from the summed limits", () => {
    const p = mkPod("g", [{ limits: { cpu: "500m", memory: "64Mi" } }, { limits: { cpu: "250m", memory: "16Mi" } }]);
    assert.deepEqual(podCgroupResources(p), { cpuShares: 768, cpuQuota: 75_000, cpuPeriod: 100_000, memoryLimitBytes: 80 * MiB });
  });

  it("Burstable: a limit only when every container declares it; an init container counts by its max", () => {
    const partial = mkPod("b", [{ requests: { cpu: "100m" }, limits: { cpu: "200m", memory: "32Mi" } }, { requests: { memory: "8Mi" } }]);
    assert.deepEqual(podCgroupResources(partial), { cpuShares: 102 });
    const all = mkPod("b2", [{ requests: { cpu: "100m" }, limits: { cpu: "200m", memory: "32Mi" } }], [{ limits: { cpu: "1", memory: "16Mi" } }]);
    assert.deepEqual(podCgroupResources(all), { cpuShares: 1024, cpuQuota: 100_000, cpuPeriod: 100_000, memoryLimitBytes: 32 * MiB });
  });

  it("BestEffort: minimum shares only; pids limit when set", () => {
    assert.deepEqual(podCgroupResources(mkPod("e", [undefined])), { cpuShares: 2 });
    assert.deepEqual(podCgroupResources(mkPod("e", [undefined]), 1024), { cpuShares: 2, pidsLimit: 1024 });
  });

  it("container resources: shares from requests, quota/period from limits, memory limit, oom_score_adj by QoS", () => {
    const p = mkPod("b", [{ requests: { cpu: "250m", memory: "1Gi" }, limits: { cpu: "1500m", memory: "2Gi" } }]);
    const c = p.spec?.containers[0] as V1Container;
    const r = containerResources(c, p, 8 * 2 ** 30);
    assert.deepEqual(r, { cpuShares: 256n, cpuPeriod: 100_000n, cpuQuota: 150_000n, memoryLimitInBytes: 2n * 2n ** 30n, oomScoreAdj: 875n });
    const e = mkPod("e", [undefined]);
    assert.deepEqual(containerResources(e.spec?.containers[0] as V1Container, e, 2 ** 30), { cpuShares: 2n, oomScoreAdj: 1000n });
    const tiny = mkPod("t", [{ limits: { cpu: "1m" } }]);
    assert.equal(containerResources(tiny.spec?.containers[0] as V1Container, tiny, 2 ** 30).cpuQuota, 1000n, "quota floor is 1ms");
  });

  it("files per version: v1 shares/cfs/limit_in_bytes, v2 weight/max", () => {
    const res = { cpuShares: 1024, cpuQuota: 50_000, cpuPeriod: 100_000, memoryLimitBytes: 64 * MiB };
    assert.deepEqual(
      cgroupFiles(1, res).map((f) => `${f.file}=${f.value}`),
      ["cpu.shares=1024", "cpu.cfs_period_us=100000", "cpu.cfs_quota_us=50000", `memory.limit_in_bytes=${64 * MiB}`],
    );
    assert.deepEqual(cgroupFiles(2, res).map((f) => `${f.file}=${f.value}`), ["cpu.weight=39", "cpu.max=50000 100000", `memory.max=${64 * MiB}`]);
    assert.deepEqual(cgroupFiles(2, { cpuShares: 2 }).map((f) => `${f.file}=${f.value}`), ["cpu.weight=1", "cpu.max=max 100000", "memory.max=max"]);
    assert.equal(sharesToWeight(262144), 10000);
  });
});

describe("cgroupfs on a fake root", () => {
  it("v1: detects each controller's hierarchy (symlinks skipped)", async () => {
    const root = await fakeV1();
    const l = await detectCgroups(root);
    assert.equal(l.version, 1);
    assert.deepEqual(l.hierarchies, ["cpu", "memory", "pids", "systemd", "unified"].map((h) => join(root, h)));
    assert.deepEqual(l.controllers, { cpu: join(root, "cpu"), memory: join(root, "memory"), pids: join(root, "pids") });
  });

  it("v1: QoS tiers and a pod cgroup with its limits in every hierarchy; removal takes it away", async () => {
    const root = await fakeV1();
    const p = mkPod("abc", [{ limits: { cpu: "500m", memory: "64Mi" } }]);
    await ensurePodCgroup(p, "", { fsRoot: root });
    for (const h of ["cpu", "memory", "pids", "systemd", "unified"]) {
      for (const d of ["kubepods", "kubepods/burstable", "kubepods/besteffort", "kubepods/podabc"]) assert.ok((await stat(join(root, h, d))).isDirectory(), `${h}/${d}`);
    }
    assert.equal(await read(join(root, "cpu/kubepods/besteffort/cpu.shares")), "2");
    assert.equal(await read(join(root, "cpu/kubepods/podabc/cpu.shares")), "512");
    assert.equal(await read(join(root, "cpu/kubepods/podabc/cpu.cfs_quota_us")), "50000");
    assert.equal(await read(join(root, "cpu/kubepods/podabc/cpu.cfs_period_us")), "100000");
    assert.equal(await read(join(root, "memory/kubepods/podabc/memory.limit_in_bytes")), String(64 * MiB));
    assert.equal(await cgroupExists("/kubepods/podabc", root), true);
    await removeCgroup(podCgroupParent(p), root);
    assert.equal(await cgroupExists("/kubepods/podabc", root), false);
    assert.equal(await cgroupExists("/kubepods/besteffort", root), true, "QoS tiers stay");
  });

  it("v2: controllers enabled down the tree, cpu.max / memory.max / cpu.weight written; removal", async () => {
    const root = await fakeV2();
    const l = await detectCgroups(root);
    assert.deepEqual(l, { version: 2, hierarchies: [root], controllers: { cpu: root, memory: root, pids: root } });
    const p = mkPod("xyz", [{ requests: { cpu: "250m" }, limits: { cpu: "1", memory: "32Mi" } }]);
    await ensurePodCgroup(p, "/custom", { fsRoot: root });
    const dir = join(root, "custom/kubepods/burstable/podxyz");
    assert.equal(await read(join(dir, "cpu.max")), "100000 100000");
    assert.equal(await read(join(dir, "memory.max")), String(32 * MiB));
    assert.equal(await read(join(dir, "cpu.weight")), String(sharesToWeight(256)));
    for (const d of ["", "custom", "custom/kubepods", "custom/kubepods/burstable"]) assert.equal(await read(join(root, d, "cgroup.subtree_control")), "+cpu +memory +pids", `subtree_control of /${d}`);
    assert.equal(await read(join(root, "custom/kubepods/besteffort/cpu.weight")), "1");
    await removeCgroup(podCgroupParent(p, "/custom"), root);
    assert.equal(await cgroupExists("/custom/kubepods/burstable/podxyz", root), false);
  });

  it("an unwritable limit names the cgroup and the file", async () => {
    const root = await fakeV2();
    const l = await detectCgroups(root);
    await ensureQOSCgroups("", l);
    await mkdir(join(root, "kubepods/podbad/memory.max"), { recursive: true });
    await assert.rejects(ensureCgroup("/kubepods/podbad", { memoryLimitBytes: MiB }, l), /cgroup \/kubepods\/podbad: cannot write 1048576 to .*memory\.max/);
  });
});
