/**
 * Resources on a real containerd through the real tskubelet command, standalone (static pods):
 * container cpu/memory limits in the container's own cgroup files, the QoS tiers and pod cgroups
 * (with pod-level limits) created while pods run and removed with them, and a container killed
 * by the kernel for exceeding its memory limit reported as OOMKilled. Works on cgroup v1 and v2.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { scriptOutput, staticPodYaml } from "../support/pods.js";
import { startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";
import { CGROUP_ROOT, detectCgroups, removeCgroup, type CgroupLayout } from "../../src/containers/cgroups.js";
import { podCgroupParent } from "../../src/containers/resources.js";

const IMAGE = "tskubelet.local/busybox:1.35";
const MiB = 2 ** 20;

// Prints the container's own limits whichever cgroup version the node runs.
const SHOW_LIMITS = [
  "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then",
  "  echo mem=$(cat /sys/fs/cgroup/memory.max); echo cpu=$(cat /sys/fs/cgroup/cpu.max);",
  "else",
  "  echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); echo cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us);",
  "fi; echo oom=$(cat /proc/self/oom_score_adj); echo END; sleep 3600",
].join(" ");

function manifest(name: string, resources: string, script: string, restartPolicy = "Always"): string {
  return staticPodYaml(name, `  restartPolicy: ${restartPolicy}
  containers:
  - name: main
    image: ${IMAGE}
    command: ["sh", "-c", ${JSON.stringify(script)}]
${resources}`);
}

describe("resources and pod cgroups on containerd (standalone)", () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let layout: CgroupLayout;

  const output = (pod: string): Promise<string> => scriptOutput(k, pod, "main");
  const isDir = (p: string): Promise<boolean> => stat(p).then((s) => s.isDirectory(), () => false);
  /** The cgroup directory of `path` for a controller (v2: the one tree). */
  const dirOf = (controller: "cpu" | "memory", path: string): string => join(layout.controllers[controller] ?? CGROUP_ROOT, path);
  const inAllHierarchies = async (path: string): Promise<boolean[]> => Promise.all(layout.hierarchies.map((h) => isDir(join(h, path))));
  const podOf = (name: string): Promise<V1Pod> => waitFor(async () => {
    const p = await k.pod(name);
    return p?.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
  }, { timeoutMs: 60_000, what: () => `${name} running` });

  before(async () => {
    layout = await detectCgroups();
    rt = await startContainerd({ cni: true });
    k = await startTskubelet(rt);
    await Promise.all([
      k.writeManifest("guaranteed.yaml", manifest("res-guaranteed", "    resources:\n      limits: {cpu: 500m, memory: 64Mi}\n", SHOW_LIMITS)),
      k.writeManifest("burstable.yaml", manifest("res-burstable", "    resources:\n      requests: {cpu: 100m, memory: 16Mi}\n", SHOW_LIMITS)),
      k.writeManifest("besteffort.yaml", manifest("res-besteffort", "", SHOW_LIMITS)),
      // The allocation waits a second: containerd 1.6 can miss the OOM event of a container killed
      // right after its start and report Error instead of OOMKilled (containerd issue 8180).
      k.writeManifest("oom.yaml", manifest("res-oom", "    resources:\n      limits: {memory: 16Mi}\n", "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1", "Never")),
    ]);
  });
  after(async () => {
    // Pod cgroups outlive their containers when containerd, not tskubelet, removes the pods.
    const cgroups = ((await k?.pods().catch(() => [])) ?? []).map((p) => podCgroupParent(p));
    await k?.cleanup();
    await rt?.stop();
    for (const c of cgroups) await removeCgroup(c);
  });

  it("cpu and memory limits are in the container's own cgroup files", async () => {
    const out = await output("res-guaranteed");
    assert.match(out, new RegExp(`^mem=${64 * MiB}$`, "m"), out);
    assert.match(out, /^cpu=50000 100000$/m, out);
    const free = await output("res-besteffort");
    assert.match(free, /^mem=(max|\d{13,})$/m, `no memory limit: ${free}`);
    assert.match(free, /^cpu=(max 100000|-1 100000)$/m, free);
  });

  it("oom_score_adj by QoS class: BestEffort 1000, Burstable below it, Guaranteed lowest (never negative here)", async () => {
    const oom = async (pod: string): Promise<number> => Number(/^oom=(-?\d+)$/m.exec(await output(pod))?.[1]);
    const [g, b, e] = [await oom("res-guaranteed"), await oom("res-burstable"), await oom("res-besteffort")];
    assert.equal(e, 1000);
    assert.ok(b >= 2 && b <= 999, `burstable ${b}`);
    assert.ok(g < b && g >= 0, `guaranteed ${g}: the runtime clamps upstream's -997 to what the node allows`);
  });

  it("QoS tiers and pod cgroups exist while pods run, under the tier of their QoS class, with pod-level limits", async () => {
    const g = await podOf("res-guaranteed");
    const b = await podOf("res-burstable");
    const e = await podOf("res-besteffort");
    assert.equal(g.status?.qosClass, "Guaranteed");
    for (const tier of ["/kubepods", "/kubepods/burstable", "/kubepods/besteffort"]) assert.ok((await inAllHierarchies(tier)).every(Boolean), `${tier} in every hierarchy`);
    assert.equal(podCgroupParent(g), `/kubepods/pod${g.metadata?.uid ?? ""}`);
    assert.equal(podCgroupParent(b), `/kubepods/burstable/pod${b.metadata?.uid ?? ""}`);
    assert.equal(podCgroupParent(e), `/kubepods/besteffort/pod${e.metadata?.uid ?? ""}`);
    for (const p of [g, b, e]) assert.ok((await inAllHierarchies(podCgroupParent(p))).every(Boolean), `${podCgroupParent(p)} in every hierarchy`);
    const read = (c: "cpu" | "memory", p: V1Pod, f: string): Promise<string> => readFile(join(dirOf(c, podCgroupParent(p)), f), "utf8").then((s) => s.trim());
    if (layout.version === 1) {
      assert.equal(await read("memory", g, "memory.limit_in_bytes"), String(64 * MiB));
      assert.equal(await read("cpu", g, "cpu.cfs_quota_us"), "50000");
      assert.equal(await read("cpu", b, "cpu.shares"), "102");
      assert.equal(await read("cpu", e, "cpu.shares"), "2");
    } else {
      assert.equal(await read("memory", g, "memory.max"), String(64 * MiB));
      assert.equal(await read("cpu", g, "cpu.max"), "50000 100000");
      assert.equal(await read("memory", b, "memory.max"), "max");
    }
  });

  it("a pod's cgroup is removed with the pod; the QoS tiers stay", async () => {
    const b = await podOf("res-burstable");
    const path = podCgroupParent(b);
    await k.removeManifest("burstable.yaml");
    await waitFor(async () => (await inAllHierarchies(path)).every((x) => !x), { timeoutMs: 60_000, what: () => `${path} removed from every hierarchy` });
    assert.ok((await inAllHierarchies("/kubepods/burstable")).every(Boolean));
  });

  it("a container over its memory limit is OOMKilled", async () => {
    const p = await waitFor(async () => {
      const x = await k.pod("res-oom");
      return x?.status?.containerStatuses?.[0]?.state?.terminated ? x : undefined;
    }, { timeoutMs: 60_000, what: () => "res-oom terminated" });
    const t = p.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(t?.reason, "OOMKilled", JSON.stringify(t));
    assert.equal(t?.exitCode, 137);
    assert.equal(p.status?.phase, "Failed");
  });
});
