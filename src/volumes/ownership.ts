/**
 * fsGroup ownership of a volume, as upstream applies it to volumes that support it (emptyDir,
 * configMap, secret, downwardAPI, projected): every file and directory gets group fsGroup and
 * group read (and write unless the volume is read-only) permission; directories get group
 * execute and the setgid bit so new files inherit the group. With fsGroupChangePolicy
 * OnRootMismatch the walk is skipped when the volume's root already looks right.
 */
import { chmod, lchown, lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

const RW_MASK = 0o660;
const RO_MASK = 0o440;
const EXEC_MASK = 0o110;
const SETGID = 0o2000;

/** Whether the root of the volume still needs the walk (upstream's requiresPermissionChange). */
export async function requiresPermissionChange(dir: string, fsGroup: number, readOnly: boolean): Promise<boolean> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st || st.gid !== fsGroup || !st.isDirectory()) return true;
  const want = (readOnly ? RO_MASK : RW_MASK) | EXEC_MASK;
  if ((st.mode & want) !== want) return true;
  return (st.mode & SETGID) === 0;
}

/**
 * Applies fsGroup to everything under `dir` (symlinks: group only, their targets are walked
 * themselves). `policy` is fsGroupChangePolicy: OnRootMismatch skips a volume whose root already
 * fits; anything else (Always) walks.
 */
export async function setVolumeOwnership(dir: string, fsGroup: number, opts: { readOnly?: boolean; policy?: string } = {}): Promise<void> {
  const readOnly = opts.readOnly === true;
  if (opts.policy === "OnRootMismatch" && !(await requiresPermissionChange(dir, fsGroup, readOnly))) return;
  const mask = readOnly ? RO_MASK : RW_MASK;
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    await lchown(path, st.uid, fsGroup);
    if (st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      await chmod(path, (st.mode & 0o7777) | mask | EXEC_MASK | SETGID);
      for (const name of await readdir(path)) await walk(join(path, name));
      return;
    }
    await chmod(path, (st.mode & 0o7777) | mask);
  };
  try {
    await walk(dir);
  } catch (err) {
    throw new Error(`setting fsGroup ${fsGroup} on ${dir}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
