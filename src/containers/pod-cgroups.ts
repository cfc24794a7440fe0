/**
 * What the pod worker calls before creating a sandbox (cgroupsPerQOS): the QoS tiers once, then the
 * pod's own cgroup under its tier with the pod-level limits.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { CGROUP_ROOT, detectCgroups, ensureCgroup, ensureQOSCgroups, type CgroupLayout } from "./cgroups.js";
import { podCgroupParent, podCgroupResources } from "./resources.js";

const layouts = new Map<string, Promise<CgroupLayout>>();
const tiers = new Map<string, Promise<void>>();

async function layoutOf(fsRoot: string): Promise<CgroupLayout> {
  let p = layouts.get(fsRoot);
  if (!p) {
    p = detectCgroups(fsRoot);
    layouts.set(fsRoot, p);
    p.catch(() => layouts.delete(fsRoot));
  }
  return p;
}

/** Creates (or updates) the pod's cgroup and, the first time, the QoS tiers above it. */
export async function ensurePodCgroup(pod: V1Pod, cgroupRoot: string, opts: { podPidsLimit?: number; fsRoot?: string } = {}): Promise<void> {
  const fsRoot = opts.fsRoot ?? CGROUP_ROOT;
  const layout = await layoutOf(fsRoot);
  const key = `${fsRoot}\u0000${cgroupRoot}`;
  let t = tiers.get(key);
  if (!t) {
    t = ensureQOSCgroups(cgroupRoot, layout);
    tiers.set(key, t);
    t.catch(() => tiers.delete(key));
  }
  await t;
  await ensureCgroup(podCgroupParent(pod, cgroupRoot), podCgroupResources(pod, opts.podPidsLimit ?? -1), layout);
}
