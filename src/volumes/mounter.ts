/**
 * tmpfs mounts for memory-backed volumes, with mount(8)/umount(8) run through one long-lived shell,
 * and the mount table as the kernel reports it.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { KubeletError, errorMessage } from "../util/errors.js";
import { createCommandRunner, type CommandRunner } from "../util/command-runner.js";

export interface Mounter {
  /** Mounts a tmpfs on `dir` (an existing directory) unless something is already mounted there. */
  mountTmpfs(dir: string, opts?: { sizeBytes?: number }): Promise<void>;
  /** Mount points at or below `dir`, deepest first. */
  mountsUnder(dir: string): Promise<string[]>;
  unmount(dir: string): Promise<void>;
}

async function run(runner: CommandRunner, argv: string[]): Promise<void> {
  let r;
  try {
    r = await runner.run(argv);
  } catch (err) {
    throw new KubeletError("MountFailed", `${argv.join(" ")} failed: ${errorMessage(err)}`);
  }
  if (r.code !== 0) throw new KubeletError("MountFailed", `${argv.join(" ")} failed: ${r.output.trim() || `exit status ${r.code}`}`);
}

/** Whether `dir` is the root of a mount: it lies on another device than its parent (upstream's "likely a mount point"). */
export async function isMountPoint(dir: string): Promise<boolean> {
  const [self, parent] = await Promise.all([stat(dir), stat(dirname(dir))]);
  return self.dev !== parent.dev || self.ino === parent.ino;
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

export function createSystemMounter(runner: CommandRunner = createCommandRunner()): Mounter {
  const under = async (dir: string): Promise<string[]> => {
    const base = dir.replace(/\/+$/, "");
    return (await readMountPoints()).filter((p) => p === base || p.startsWith(`${base}/`)).sort((a, b) => b.length - a.length);
  };
  return {
    async mountTmpfs(dir, opts = {}) {
      if (await isMountPoint(dir.replace(/\/+$/, "") || "/")) return;
      const options = opts.sizeBytes !== undefined && opts.sizeBytes > 0 ? ["-o", `size=${Math.floor(opts.sizeBytes)}`] : [];
      await run(runner, ["mount", "-t", "tmpfs", ...options, "tmpfs", dir]);
    },
    mountsUnder: under,
    unmount: (dir) => run(runner, ["umount", dir]),
  };
}
