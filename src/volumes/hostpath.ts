/** hostPath volumes: the type checks upstream runs before a container may use a path of the node. */
import { mkdir, open, stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import { VolumeError } from "./payload.js";

export const HOST_PATH_TYPES = ["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"] as const;

async function statOf(path: string): Promise<Stats | undefined> {
  return stat(path).catch(() => undefined);
}

const CHECKS: Record<string, { what: string; ok: (st: Stats) => boolean }> = {
  DirectoryOrCreate: { what: "directory", ok: (st) => st.isDirectory() },
  Directory: { what: "directory", ok: (st) => st.isDirectory() },
  FileOrCreate: { what: "file", ok: (st) => st.isFile() },
  File: { what: "file", ok: (st) => st.isFile() },
  Socket: { what: "socket file", ok: (st) => st.isSocket() },
  CharDevice: { what: "character device", ok: (st) => st.isCharacterDevice() },
  BlockDevice: { what: "block device", ok: (st) => st.isBlockDevice() },
};

/** Checks (and for the *OrCreate types creates) a hostPath; throws upstream's messages. */
export async function checkHostPath(path: string, type: string | undefined): Promise<void> {
  if (!path.startsWith("/")) throw new VolumeError(`hostPath ${JSON.stringify(path)} must be an absolute path`);
  if (path.split("/").includes("..")) throw new VolumeError(`hostPath ${JSON.stringify(path)} must not contain '..'`);
  const t = type ?? "";
  if (!(HOST_PATH_TYPES as readonly string[]).includes(t)) throw new VolumeError(`invalid HostPathType: ${JSON.stringify(t)}`);
  if (t === "") return;
  let st = await statOf(path);
  if (!st && t === "DirectoryOrCreate") {
    await mkdir(path, { recursive: true, mode: 0o755 });
    st = await statOf(path);
  }
  if (!st && t === "FileOrCreate") {
    await (await open(path, "a", 0o644)).close();
    st = await statOf(path);
  }
  const check = CHECKS[t];
  if (check && !(st && check.ok(st))) throw new VolumeError(`hostPath type check failed: ${path} is not a ${check.what}`);
}
