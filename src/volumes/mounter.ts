/** tmpfs mounts for memory-backed volumes, with mount(8)/umount(8), and the mount table as the kernel reports it. */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { KubeletError } from "../util/errors.js";

export interface Mounter {
  /** Mounts a tmpfs on `dir` (an existing directory) unless something is already mounted there. */
  mountTmpfs(dir: string, opts?: { sizeBytes?: number }): Promise<void>;
  /** Mount points at or below `dir`, deepest first. */
  mountsUnder(dir: string): Promise<string[]>;
  unmount(dir: string): Promise<void>;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (!err) resolve();
      else reject(new KubeletError("MountFailed", `${cmd} ${args.join(" ")} failed: ${String(stderr).trim() || err.message}`));
    });
  });
}

/** Undoes the octal escapes (\040 for a space, ...) of /proc/self/mountinfo. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export async function readMountPoints(): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined && p !== "")
    .map(unescapeMountPath);
}

export function createSystemMounter(): Mounter {
  const under = async (dir: string): Promise<string[]> => {
    const base = dir.replace(/\/+$/, "");
    return (await readMountPoints()).filter((p) => p === base || p.startsWith(`${base}/`)).sort((a, b) => b.length - a.length);
  };
  return {
    async mountTmpfs(dir, opts = {}) {
      if ((await under(dir)).includes(dir.replace(/\/+$/, ""))) return;
      const options = opts.sizeBytes !== undefined && opts.sizeBytes > 0 ? ["-o", `size=${Math.floor(opts.sizeBytes)}`] : [];
      await run("mount", ["-t", "tmpfs", ...options, "tmpfs", dir]);
    },
    mountsUnder: under,
    unmount: (dir) => run("umount", [dir]),
  };
}
