import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { chmod, chown, lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requiresPermissionChange, setVolumeOwnership } from "../../src/volumes/ownership.js";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const temps: string[] = [];
after(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

async function volume(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tsk-fsgroup-"));
  temps.push(dir);
  await chmod(dir, 0o755);
  await mkdir(join(dir, "sub"), { mode: 0o700 });
  await writeFile(join(dir, "sub/file"), "x", { mode: 0o600 });
  await writeFile(join(dir, "ro"), "y", { mode: 0o400 });
  await symlink("sub/file", join(dir, "link"));
  return dir;
}

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o7777;

// Changing a file's group to an arbitrary one needs root (the unit suite also runs without it).
describe("fsGroup volume ownership", { skip: isRoot ? false : "changing groups needs root" }, () => {
  it("read-write: group fsGroup, group rw, directories group x and setgid; symlinks get the group only", async () => {
    const dir = await volume();
    await setVolumeOwnership(dir, 2345);
    for (const p of [dir, join(dir, "sub"), join(dir, "sub/file"), join(dir, "ro")]) assert.equal((await stat(p)).gid, 2345, p);
    assert.equal((await lstat(join(dir, "link"))).gid, 2345);
    assert.equal(await mode(dir), 0o2775);
    assert.equal(await mode(join(dir, "sub")), 0o2770);
    assert.equal(await mode(join(dir, "sub/file")), 0o660);
    assert.equal(await mode(join(dir, "ro")), 0o660);
    assert.equal(await requiresPermissionChange(dir, 2345, false), false);
    assert.equal(await requiresPermissionChange(dir, 999, false), true);
  });

  it("read-only volumes: group read only", async () => {
    const dir = await volume();
    await setVolumeOwnership(dir, 2345, { readOnly: true });
    assert.equal(await mode(join(dir, "ro")), 0o440);
    assert.equal(await mode(join(dir, "sub/file")), 0o640);
    assert.equal(await mode(join(dir, "sub")), 0o2750);
  });

  it("OnRootMismatch skips a volume whose root already fits; Always walks it again", async () => {
    const dir = await volume();
    await setVolumeOwnership(dir, 2345);
    await chown(join(dir, "sub/file"), 0, 0);
    await setVolumeOwnership(dir, 2345, { policy: "OnRootMismatch" });
    assert.equal((await stat(join(dir, "sub/file"))).gid, 0, "root fits: nothing walked");
    await setVolumeOwnership(dir, 2345, { policy: "Always" });
    assert.equal((await stat(join(dir, "sub/file"))).gid, 2345);
    await chown(dir, 0, 0);
    await chown(join(dir, "sub/file"), 0, 0);
    await setVolumeOwnership(dir, 2345, { policy: "OnRootMismatch" });
    assert.equal((await stat(join(dir, "sub/file"))).gid, 2345, "root mismatch: walked");
  });

  it("a missing volume directory is an error naming it", async () => {
    await assert.rejects(setVolumeOwnership("/nonexistent/tsk-volume", 1), /setting fsGroup 1 on \/nonexistent\/tsk-volume: /);
  });
});
