import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { createTerminationMessages, logTail, terminationMessageMount, type ExitedContainer } from "../../src/pods/termination-message.js";
import { ANN_TERMINATION_MESSAGE_PATH, ANN_TERMINATION_MESSAGE_POLICY } from "../../src/api/labels.js";

const pod: V1Pod = { metadata: { name: "web", namespace: "default", uid: "uid-7" }, spec: { containers: [] } };

function criLines(lines: string[]): string {
  return lines.map((l, i) => `2026-01-01T00:00:${String(i % 60).padStart(2, "0")}.000000000Z stdout F ${l}\n`).join("");
}

describe("termination messages", async () => {
  const root = await mkdtemp(join(tmpdir(), "tsk-termmsg-"));
  after(() => rm(root, { recursive: true, force: true }));

  const exited = (over: Partial<ExitedContainer> & { path?: string; policy?: string }): ExitedContainer => ({
    id: over.id ?? "c1",
    exitCode: over.exitCode ?? 0,
    logPath: over.logPath ?? "",
    mounts: over.mounts ?? [],
    annotations: { [ANN_TERMINATION_MESSAGE_PATH]: over.path ?? "/dev/termination-log", [ANN_TERMINATION_MESSAGE_POLICY]: over.policy ?? "File" },
  });

  it("each container gets an empty, world-writable host file under pods/<uid>/containers/<name>/, mounted at its path", async () => {
    const m = await terminationMessageMount(root, pod, { name: "app" });
    assert.ok(m);
    assert.equal(m.containerPath, "/dev/termination-log");
    assert.ok(m.hostPath.startsWith(join(root, "pods", "uid-7", "containers", "app") + "/"), m.hostPath);
    assert.equal((await stat(m.hostPath)).mode & 0o777, 0o666);
    assert.equal(await readFile(m.hostPath, "utf8"), "");
    const custom = await terminationMessageMount(root, pod, { name: "app", terminationMessagePath: "/tmp/msg" });
    assert.equal(custom?.containerPath, "/tmp/msg");
    assert.notEqual(custom?.hostPath, m.hostPath, "every instance gets its own file");
    assert.equal(await terminationMessageMount(root, pod, { name: "app", terminationMessagePath: "" }), undefined);
  });

  it("the file's content, found through the container's mounts, at most 4096 bytes", async () => {
    const m = await terminationMessageMount(root, pod, { name: "big" });
    assert.ok(m);
    await writeFile(m.hostPath, "x".repeat(5000));
    const messages = createTerminationMessages();
    const msg = await messages.read(exited({ id: "big-1", mounts: [{ containerPath: "/data", hostPath: "/nowhere" }, m] }));
    assert.equal(msg.length, 4096);
  });

  it("no mount for the path (or a missing file): no message", async () => {
    const messages = createTerminationMessages();
    assert.equal(await messages.read(exited({ id: "none-1" })), "");
    assert.equal(await messages.read(exited({ id: "none-2", mounts: [{ containerPath: "/dev/termination-log", hostPath: join(root, "missing") }] })), "");
  });

  it("FallbackToLogsOnError: an empty file and a non-zero exit take the last 80 log lines, at most 2048 bytes", async () => {
    const m = await terminationMessageMount(root, pod, { name: "fb" });
    assert.ok(m);
    const log = join(root, "fb.log");
    await writeFile(log, criLines(Array.from({ length: 100 }, (_, i) => `line ${i}`)));
    const messages = createTerminationMessages();
    const msg = await messages.read(exited({ id: "fb-1", exitCode: 1, policy: "FallbackToLogsOnError", logPath: log, mounts: [m] }));
    assert.ok(msg.startsWith("line 20\nline 21\n"), msg.slice(0, 40));
    assert.ok(msg.endsWith("line 99\n"));
    // Exit 0, or policy File: no fallback.
    assert.equal(await messages.read(exited({ id: "fb-2", exitCode: 0, policy: "FallbackToLogsOnError", logPath: log, mounts: [m] })), "");
    assert.equal(await messages.read(exited({ id: "fb-3", exitCode: 1, policy: "File", logPath: log, mounts: [m] })), "");
    // A written file wins over the logs.
    await writeFile(m.hostPath, "from the file");
    assert.equal(await messages.read(exited({ id: "fb-4", exitCode: 1, policy: "FallbackToLogsOnError", logPath: log, mounts: [m] })), "from the file");
  });

  it("logTail joins partial lines and cuts at the byte limit", async () => {
    const log = join(root, "partial.log");
    await writeFile(log, "2026-01-01T00:00:00Z stdout P hel\n2026-01-01T00:00:00Z stdout F lo\n" + criLines(["a".repeat(3000)]));
    const t = await logTail(log);
    assert.ok(t.startsWith("hello\naaa"));
    assert.equal(Buffer.byteLength(t), 2048);
    assert.equal(await logTail(log, 1, 10), "aaaaaaaaaa");
  });

  it("an exited container's message is read once", async () => {
    const m = await terminationMessageMount(root, pod, { name: "once" });
    assert.ok(m);
    await writeFile(m.hostPath, "first");
    const messages = createTerminationMessages();
    assert.equal(await messages.read(exited({ id: "once-1", mounts: [m] })), "first");
    await writeFile(m.hostPath, "second");
    assert.equal(await messages.read(exited({ id: "once-1", mounts: [m] })), "first");
  });
});
