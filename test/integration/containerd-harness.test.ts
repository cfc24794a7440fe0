// The private-containerd harness itself: start, images imported, crash and recovery, full
// cleanup. Other integration tests build on it, so it must be right and quick.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

import {
  TEST_IMAGES,
  containerdUnavailableReason,
  ctr,
  startContainerd,
  type PrivateContainerd,
} from "../support/containerd.js";

const skip = containerdUnavailableReason() ?? false;

function linkExists(name: string): boolean {
  return spawnSync("ip", ["link", "show", "dev", name], { stdio: "ignore" }).status === 0;
}

function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mp) => mp === dir || mp.startsWith(`${dir}/`));
}

async function imageRefs(rt: PrivateContainerd): Promise<string[]> {
  return (await ctr(rt, "images", "ls", "-q")).split("\n").filter((l) => l !== "");
}

async function socketAnswers(rt: PrivateContainerd): Promise<boolean> {
  return ctr(rt, "version").then(
    () => true,
    () => false,
  );
}

void test("private containerd: start, images, crash and restart, full cleanup", { skip, timeout: 180_000 }, async () => {
  // Two at once, as two test files would: they must not share a dir, bridge or subnet.
  const [rt, plain] = await Promise.all([startContainerd(), startContainerd({ cni: false })]);
  try {
    assert.equal(rt.endpoint, `unix://${rt.socketPath}`);
    assert.match(rt.dir, /^\/tmp\/tskubelet-it-/);
    assert.notEqual(rt.dir, plain.dir);
    assert.notEqual(rt.bridge, plain.bridge);
    assert.notEqual(rt.subnet, plain.subnet);
    assert.match(rt.subnet, /^10\.\d+\.\d+\.0\/24$/);
    assert.ok(rt.bridge.length <= 15, `bridge name ${rt.bridge} too long for Linux`);
    assert.equal(rt.cni, true);
    assert.equal(plain.cni, false);
    assert.ok(existsSync(`${rt.dir}/net.d`) && !existsSync(`${plain.dir}/net.d/10-tskubelet-${plain.bridge}.conflist`));

    for (const c of [rt, plain]) {
      const refs = await imageRefs(c);
      assert.ok(refs.includes(TEST_IMAGES.pause), `pause image missing in ${c.dir}: ${refs.join(", ")}`);
      assert.ok(refs.includes(TEST_IMAGES.busybox), `busybox image missing in ${c.dir}: ${refs.join(", ")}`);
    }

    // A runtime crash and recovery on the same state.
    await rt.kill();
    assert.equal(await socketAnswers(rt), false, "containerd still answers after kill()");
    await rt.startAgain();
    assert.ok((await imageRefs(rt)).includes(TEST_IMAGES.busybox));
    await rt.restart();
    assert.equal(await socketAnswers(rt), true);

    // The bridge is created by the CNI plugin with the first pod; stand in for it here, so
    // that stop() is seen to delete it.
    const add = spawnSync("ip", ["link", "add", "name", rt.bridge, "type", "bridge"], { encoding: "utf8" });
    assert.equal(add.status, 0, add.stderr);
  } finally {
    await Promise.all([rt.stop(), plain.stop()]);
  }

  for (const c of [rt, plain]) {
    assert.equal(existsSync(c.dir), false, `${c.dir} left behind`);
    assert.equal(linkExists(c.bridge), false, `bridge ${c.bridge} left behind`);
    assert.deepEqual(mountsUnder(c.dir), []);
  }
  await rt.stop(); // idempotent
});
