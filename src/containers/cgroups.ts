/**
 * Pod cgroups: runc creates the parents it is given but never removes them, so the kubelet does.
 * Works on cgroup v1 (one hierarchy per controller), hybrid and v2 (unified).
 */
import { readdir, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";

const CGROUP_ROOT = "/sys/fs/cgroup";

/** Hierarchy roots to act on: every v1 controller mount, or the single v2 root. */
export async function cgroupHierarchies(root = CGROUP_ROOT): Promise<string[]> {
  try {
    await stat(join(root, "cgroup.controllers"));
    return [root];
  } catch {
    // not pure v2
  }
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory()) continue;
    const dir = join(root, e.name);
    if (await stat(join(dir, "cgroup.procs")).then(() => true, () => false)) out.push(dir);
  }
  return out;
}

/** Removes a cgroup (e.g. /kubepods/besteffort/pod<uid>) and its empty children in every hierarchy. */
export async function removeCgroup(path: string, root = CGROUP_ROOT): Promise<void> {
  for (const h of await cgroupHierarchies(root)) await removeTree(join(h, path));
}

async function removeTree(dir: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}
