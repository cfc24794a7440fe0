/** The long-lived command shell behind mount/umount: quoting, status and output, order, timeouts. */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCommandRunner, shellQuote } from "../../src/util/command-runner.js";
import { isMountPoint } from "../../src/volumes/mounter.js";

describe("command runner", () => {
  const runner = createCommandRunner();
  after(() => runner.close());

  it("passes every argument through verbatim (quotes, $, backticks, spaces)", async () => {
    const word = `it's "a" $HOME \`id\` ; rm -rf x | y & *`;
    const r = await runner.run(["printf", "%s", word]);
    assert.deepEqual(r, { code: 0, output: word });
    assert.equal(shellQuote("a'b"), `'a'\\''b'`);
  });

  it("reports the exit status and the output of both streams", async () => {
    const r = await runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert.equal(r.code, 3);
    assert.equal(r.output, "out\nerr\n");
    const missing = await runner.run(["/nonexistent/tool"]);
    assert.equal(missing.code, 127);
    assert.match(missing.output, /not found/);
  });

  it("runs concurrent calls one after another, each with its own answer", async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => runner.run(["sh", "-c", `echo ${i}; exit ${i % 3}`])));
    rs.forEach((r, i) => assert.deepEqual(r, { code: i % 3, output: `${i}\n` }));
  });

  it("does not give a command the runner's own input", async () => {
    const r = await runner.run(["cat"]);
    assert.deepEqual(r, { code: 0, output: "" });
  });

  it("fails a command past its timeout, ends it, and the next command still runs", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tsk-runner-"));
    try {
      const marker = join(dir, "late");
      await assert.rejects(runner.run(["sh", "-c", `sleep 1; touch ${marker}`], 100), /did not finish in 100 ms/);
      assert.deepEqual(await runner.run(["echo", "next"]), { code: 0, output: "next\n" });
      await new Promise((r) => setTimeout(r, 1300));
      assert.equal((await runner.run(["test", "-e", marker])).code, 1, "the timed-out command was killed with its shell");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses arguments with a newline or NUL", async () => {
    await assert.rejects(runner.run(["echo", "a\nb"]), /newline or NUL/);
    await assert.rejects(runner.run([]), /empty command/);
  });

  it("fails calls after close", async () => {
    const r = createCommandRunner();
    assert.equal((await r.run(["true"])).code, 0);
    r.close();
    await assert.rejects(r.run(["true"]), /closed/);
  });
});

describe("isMountPoint", () => {
  it("tells mount roots from plain directories", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tsk-mp-"));
    try {
      assert.equal(await isMountPoint("/"), true);
      assert.equal(await isMountPoint("/proc"), true);
      assert.equal(await isMountPoint(dir), false);
      await assert.rejects(isMountPoint(join(dir, "missing")));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
