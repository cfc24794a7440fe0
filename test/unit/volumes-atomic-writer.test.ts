import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanPayloadPath, timestampPrefix, writeAtomically, type Payload } from "../../src/volumes/atomic-writer.js";
import { FakeClock } from "../../src/util/clock.js";

const file = (text: string, mode = 0o644): { data: Buffer; mode: number } => ({ data: Buffer.from(text), mode });

describe("atomic writer", () => {
  let root: string;
  let n = 0;
  const clock = new FakeClock(Date.UTC(2026, 2, 4, 5, 6, 7));
  const freshDir = async (): Promise<string> => {
    const d = join(root, `v${n++}`);
    await mkdir(d);
    return d;
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tsk-atomic-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("names timestamped dirs ..YYYY_MM_DD_HH_MM_SS. in UTC", () => {
    assert.equal(timestampPrefix(Date.UTC(2026, 2, 4, 5, 6, 7)), "..2026_03_04_05_06_07.");
  });

  it("writes keys as symlinks through ..data into a timestamped dir, with their modes", async () => {
    const dir = await freshDir();
    const payload: Payload = new Map([
      ["a.txt", file("alpha")],
      ["b", file("beta", 0o400)],
      ["sub/deep/c.conf", file("gamma", 0o600)],
    ]);
    assert.equal(await writeAtomically(dir, payload, clock), true);
    const entries = (await readdir(dir)).sort();
    const ts = entries.find((e) => e.startsWith("..2026_03_04_05_06_07."));
    assert.ok(ts, `a timestamped dir in ${entries.join(",")}`);
    assert.deepEqual(entries.filter((e) => e !== ts), ["..data", "a.txt", "b", "sub"]);
    assert.equal(await readlink(join(dir, "..data")), ts);
    assert.equal(await readlink(join(dir, "a.txt")), "..data/a.txt");
    assert.equal(await readlink(join(dir, "sub")), "..data/sub");
    assert.equal(await readFile(join(dir, "a.txt"), "utf8"), "alpha");
    assert.equal(await readFile(join(dir, "sub/deep/c.conf"), "utf8"), "gamma");
    assert.equal((await stat(join(dir, "b"))).mode & 0o777, 0o400);
    assert.equal((await stat(join(dir, "sub/deep/c.conf"))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, "a.txt"))).mode & 0o777, 0o644);
    assert.equal((await stat(join(dir, ts))).mode & 0o777, 0o755);
  });

  it("an unchanged payload changes nothing (same timestamped dir)", async () => {
    const dir = await freshDir();
    const payload: Payload = new Map([["k", file("v")]]);
    await writeAtomically(dir, payload, clock);
    const before1 = await readlink(join(dir, "..data"));
    assert.equal(await writeAtomically(dir, new Map([["k", file("v")]]), clock), false);
    assert.equal(await readlink(join(dir, "..data")), before1);
  });

  it("a mode change alone is a change", async () => {
    const dir = await freshDir();
    await writeAtomically(dir, new Map([["k", file("v", 0o644)]]), clock);
    assert.equal(await writeAtomically(dir, new Map([["k", file("v", 0o600)]]), clock), true);
    assert.equal((await stat(join(dir, "k"))).mode & 0o777, 0o600);
  });

  it("an update swaps ..data to a new dir, removes the old dir and keys that went away, adds new keys", async () => {
    const dir = await freshDir();
    await writeAtomically(dir, new Map([["keep", file("1")], ["gone", file("x")]]), clock);
    const oldTs = await readlink(join(dir, "..data"));
    await clock.advance(61_000);
    assert.equal(await writeAtomically(dir, new Map([["keep", file("2")], ["new", file("n")]]), clock), true);
    const newTs = await readlink(join(dir, "..data"));
    assert.notEqual(newTs, oldTs);
    assert.match(newTs, /^\.\.2026_03_04_05_07_08\./);
    await assert.rejects(lstat(join(dir, oldTs)), "old timestamped dir removed");
    await assert.rejects(lstat(join(dir, "gone")), "the link of a removed key is gone");
    assert.equal(await readFile(join(dir, "keep"), "utf8"), "2");
    assert.equal(await readFile(join(dir, "new"), "utf8"), "n");
    assert.deepEqual((await readdir(dir)).filter((e) => !e.startsWith("..")).sort(), ["keep", "new"]);
    assert.deepEqual((await readdir(dir)).filter((e) => e.startsWith("..")).sort(), ["..data", newTs].sort());
  });

  it("a reader holding the old version keeps a complete old version (files are never rewritten in place)", async () => {
    const dir = await freshDir();
    await writeAtomically(dir, new Map([["a", file("old-a")], ["b", file("old-b")]]), clock);
    // Resolve the path a reader would have opened before the swap.
    const oldTs = await readlink(join(dir, "..data"));
    const fd = await import("node:fs/promises").then((fs) => fs.open(join(dir, oldTs, "b")));
    await writeAtomically(dir, new Map([["a", file("new-a")], ["b", file("new-b")]]), clock);
    assert.equal((await fd.readFile()).toString(), "old-b");
    await fd.close();
    assert.equal(await readFile(join(dir, "a"), "utf8"), "new-a");
    assert.equal(await readFile(join(dir, "b"), "utf8"), "new-b");
  });

  it("an empty payload leaves just ..data pointing at an empty dir", async () => {
    const dir = await freshDir();
    await writeAtomically(dir, new Map([["a", file("x")]]), clock);
    await writeAtomically(dir, new Map(), clock);
    assert.deepEqual((await readdir(dir)).filter((e) => !e.startsWith("..")), []);
    assert.deepEqual(await readdir(join(dir, "..data")), []);
  });

  it("rejects absolute paths, '..' elements and names starting with '..'", async () => {
    const dir = await freshDir();
    for (const bad of ["/etc/passwd", "../escape", "a/../../b", "..data", "..hidden", ""]) {
      await assert.rejects(writeAtomically(dir, new Map([[bad, file("x")]]), clock), /invalid path/, bad);
    }
    assert.equal(cleanPayloadPath("./a//b/"), "a/b");
    assert.deepEqual(await readdir(dir), [], "nothing written for a bad payload");
  });
});
