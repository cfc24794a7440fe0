import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { AuthConfig, Image, ImageService, ImageSpec } from "../../src/cri/types.js";
import { CriError } from "../../src/cri/errors.js";
import { createBackoff, IMAGE_PULL_BACKOFF } from "../../src/pods/backoff.js";
import { createImageManager, createTokenBucket, effectivePullPolicy, pullErrorText, shouldPull, type ImageManagerOptions } from "../../src/pods/images.js";
import { createKeyring } from "../../src/images/credentials.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

/** An image service whose pulls the test controls. */
class FakeImages implements ImageService {
  present = new Map<string, Image>();
  pulls: { image: string; auth?: AuthConfig }[] = [];
  active = 0;
  maxActive = 0;
  /** Per reference: an error to fail with, or a gate to wait on. */
  failWith = new Map<string, Error>();
  gate: Promise<void> | undefined;

  add(ref: string): void {
    this.present.set(ref, { id: `sha256:${ref.length}${ref.replace(/[^a-z0-9]/g, "")}`, repoTags: [ref], repoDigests: [], size: 1234n, username: "", pinned: false });
  }
  listImages(): Promise<Image[]> {
    return Promise.resolve([...this.present.values()]);
  }
  imageStatus(spec: ImageSpec): Promise<Image | undefined> {
    return Promise.resolve(this.present.get(spec.image) ?? [...this.present.values()].find((i) => i.id === spec.image));
  }
  async pullImage(spec: ImageSpec, auth?: AuthConfig): Promise<string> {
    this.pulls.push({ image: spec.image, ...(auth ? { auth } : {}) });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.gate) await this.gate;
      const err = this.failWith.get(spec.image);
      if (err) throw err;
      if (auth?.password === "wrong") throw new CriError("Unknown", "CRI PullImage on x: 401", { rpc: "PullImage", endpoint: "x", grpcCode: 2, details: "pulling failed: 401 Unauthorized" });
      this.add(spec.image);
      return this.present.get(spec.image)?.id ?? "";
    } finally {
      this.active--;
    }
  }
  removeImage(spec: ImageSpec): Promise<void> {
    this.present.delete(spec.image);
    return Promise.resolve();
  }
  imageFsInfo(): Promise<{ imageFilesystems: []; containerFilesystems: [] }> {
    return Promise.resolve({ imageFilesystems: [], containerFilesystems: [] });
  }
  close(): void {}
}

const pod = (uid = "u1"): V1Pod => ({ metadata: { name: "p", namespace: "ns", uid }, spec: { containers: [] } });
const container = (image: string, imagePullPolicy?: string): V1Container => ({ name: "c", image, ...(imagePullPolicy ? { imagePullPolicy } : {}) });

function setup(extra: Partial<ImageManagerOptions> = {}): { images: FakeImages; clock: FakeClock; events: string[]; manager: ReturnType<typeof createImageManager> } {
  const images = new FakeImages();
  const clock = new FakeClock();
  const events: string[] = [];
  const manager = createImageManager({
    images,
    clock,
    backoff: createBackoff({ ...IMAGE_PULL_BACKOFF, clock }),
    serialize: true,
    logger: memoryLogger().logger,
    onEvent: (_p, type, reason, message) => events.push(`${type} ${reason}: ${message}`),
    ...extra,
  });
  return { images, clock, events, manager };
}

describe("pull policy", () => {
  it("defaults as upstream: Always for :latest or no tag, IfNotPresent otherwise", () => {
    assert.equal(effectivePullPolicy(container("busybox")), "Always");
    assert.equal(effectivePullPolicy(container("busybox:latest")), "Always");
    assert.equal(effectivePullPolicy(container("reg:5000/busybox")), "Always");
    assert.equal(effectivePullPolicy(container("reg:5000/busybox:1.35")), "IfNotPresent");
    assert.equal(effectivePullPolicy(container("busybox@sha256:0123")), "IfNotPresent");
    assert.equal(effectivePullPolicy(container("busybox:1.35", "Never")), "Never");
  });

  it("decides whether to pull", () => {
    assert.equal(shouldPull("Always", true), true);
    assert.equal(shouldPull("Always", false), true);
    assert.equal(shouldPull("IfNotPresent", true), false);
    assert.equal(shouldPull("IfNotPresent", false), true);
    assert.equal(shouldPull("Never", true), false);
    assert.equal(shouldPull("Never", false), false);
  });
});

describe("ensureImage", () => {
  it("uses a present image under IfNotPresent without pulling", async () => {
    const { images, events, manager } = setup();
    images.add("reg/app:1");
    const r = await manager.ensureImage(pod(), container("reg/app:1", "IfNotPresent"), undefined);
    assert.equal(r.ok, true);
    assert.equal(images.pulls.length, 0);
    // The worker records "already present on machine" when it starts the container.
    assert.deepEqual(events, []);
  });

  it("fails under Never with the image missing", async () => {
    const { images, events, manager } = setup();
    const r = await manager.ensureImage(pod(), container("reg/app:1", "Never"), undefined);
    assert.deepEqual(r, { ok: false, reason: "ErrImageNeverPull", message: 'Container image "reg/app:1" is not present with pull policy of Never' });
    assert.equal(images.pulls.length, 0);
    assert.deepEqual(events, ['Warning ErrImageNeverPull: Container image "reg/app:1" is not present with pull policy of Never', "Warning Failed: Error: ErrImageNeverPull"]);
  });

  it("pulls again under Always and reports the time and size", async () => {
    const { images, events, manager, clock } = setup();
    images.add("reg/app:1");
    images.gate = clock.sleep(1500);
    const p = manager.ensureImage(pod(), container("reg/app:1", "Always"), undefined);
    await clock.advance(1500);
    const r = await p;
    assert.equal(r.ok && r.pulled, true);
    assert.equal(images.pulls.length, 1);
    assert.deepEqual(events, ['Normal Pulling: Pulling image "reg/app:1"', 'Normal Pulled: Successfully pulled image "reg/app:1" in 1.5s (1.5s including waiting). Image size: 1234 bytes.']);
  });

  it("gives ErrImagePull, then ImagePullBackOff with the cause, per image with doubling backoff", async () => {
    const { images, events, manager, clock } = setup();
    images.failWith.set("reg/app:2", new CriError("Unknown", "CRI PullImage on x: ...", { rpc: "PullImage", endpoint: "x", grpcCode: 5, details: 'failed to resolve reference "reg/app:2": not found' }));
    const c = container("reg/app:2", "IfNotPresent");
    const r1 = await manager.ensureImage(pod(), c, undefined);
    assert.deepEqual(r1, { ok: false, reason: "ErrImagePull", message: 'rpc error: code = NotFound desc = failed to resolve reference "reg/app:2": not found' });
    assert.deepEqual(events.slice(-2), ['Warning Failed: Failed to pull image "reg/app:2": rpc error: code = NotFound desc = failed to resolve reference "reg/app:2": not found', "Warning Failed: Error: ErrImagePull"]);
    await clock.advance(9_000);
    const r2 = await manager.ensureImage(pod(), c, undefined);
    assert.equal(r2.ok, false);
    assert.equal(!r2.ok && r2.reason, "ImagePullBackOff");
    assert.equal(!r2.ok && r2.message, 'Back-off pulling image "reg/app:2": rpc error: code = NotFound desc = failed to resolve reference "reg/app:2": not found');
    assert.deepEqual(events.slice(-2), ['Normal BackOff: Back-off pulling image "reg/app:2"', "Warning Failed: Error: ImagePullBackOff"]);
    assert.equal(images.pulls.length, 1);
    // Another pod's backoff is its own.
    const other = await manager.ensureImage(pod("u2"), c, undefined);
    assert.equal(!other.ok && other.reason, "ErrImagePull");
    // After 10 s the pull is tried again; the next delay is 20 s.
    await clock.advance(1_000);
    assert.equal(!(await manager.ensureImage(pod(), c, undefined)).ok, true);
    assert.equal(images.pulls.length, 3);
    await clock.advance(15_000);
    const r4 = await manager.ensureImage(pod(), c, undefined);
    assert.equal(!r4.ok && r4.reason, "ImagePullBackOff");
    await clock.advance(5_000);
    images.failWith.delete("reg/app:2");
    assert.equal((await manager.ensureImage(pod(), c, undefined)).ok, true);
  });

  it("tries the pod's credentials for the image's registry, most specific first", async () => {
    const { images, manager } = setup({
      credentials: () => Promise.resolve(createKeyring([{ "reg.io": { username: "u", password: "right" }, "reg.io/team": { username: "u", password: "wrong" } }])),
    });
    const r = await manager.ensureImage(pod(), container("reg.io/team/app:1"), undefined);
    assert.equal(r.ok, true);
    assert.deepEqual(
      images.pulls.map((p) => p.auth?.password),
      ["wrong", "right"],
    );
  });

  it("pulls without credentials when none match", async () => {
    const { images, manager } = setup({ credentials: () => Promise.resolve(createKeyring([{ "other.io": { username: "u", password: "p" } }])) });
    assert.equal((await manager.ensureImage(pod(), container("reg.io/app:1"), undefined)).ok, true);
    assert.equal(images.pulls[0]?.auth, undefined);
  });

  it("pulls one image at a time when serialized, up to maxParallelImagePulls otherwise", async () => {
    for (const [opts, want] of [
      [{ serialize: true }, 1],
      [{ serialize: false, maxParallel: 2 }, 2],
      [{ serialize: false }, 4],
    ] as const) {
      const { images, manager, clock } = setup(opts);
      images.gate = clock.sleep(1000);
      const all = ["a", "b", "c", "d"].map((n) => manager.ensureImage(pod(), container(`reg/${n}:1`), undefined));
      await clock.advance(1000);
      await clock.advance(1000);
      await clock.advance(1000);
      const results = await Promise.all(all);
      assert.ok(results.every((r) => r.ok));
      assert.equal(images.maxActive, want, JSON.stringify(opts));
    }
  });

  it("fails pulls beyond registryPullQPS/registryBurst at once with \"pull QPS exceeded\"", async () => {
    const { images, manager, clock } = setup({ pullQPS: { qps: 1, burst: 2 } });
    const results = [];
    for (const n of ["a", "b", "c"]) results.push(await manager.ensureImage(pod(), container(`reg/${n}:1`), undefined));
    assert.deepEqual(
      results.map((r) => (r.ok ? "ok" : r.message)),
      ["ok", "ok", "pull QPS exceeded"],
    );
    assert.equal(images.pulls.length, 2);
    await clock.advance(1000);
    assert.equal((await manager.ensureImage(pod("u2"), container("reg/c:1"), undefined)).ok, true);
  });

  it("refills the token bucket at the QPS, up to the burst; QPS 0 is unlimited", async () => {
    const clock = new FakeClock();
    const b = createTokenBucket(2, 3, clock);
    assert.deepEqual([b.tryAccept(), b.tryAccept(), b.tryAccept(), b.tryAccept()], [true, true, true, false]);
    await clock.advance(500);
    assert.deepEqual([b.tryAccept(), b.tryAccept()], [true, false]);
    await clock.advance(60_000);
    assert.deepEqual([b.tryAccept(), b.tryAccept(), b.tryAccept(), b.tryAccept()], [true, true, true, false]);
    const free = createTokenBucket(0, 0, clock);
    assert.ok(Array.from({ length: 100 }, () => free.tryAccept()).every(Boolean));
  });

  it("rejects an invalid image name", async () => {
    const { manager, events } = setup();
    const r = await manager.ensureImage(pod(), container("Not A Valid//Name"), undefined);
    assert.equal(!r.ok && r.reason, "InvalidImageName");
    assert.deepEqual(events, ['Warning InspectFailed: Failed to apply default image tag "Not A Valid//Name": couldn\'t parse image name', "Warning Failed: Error: InvalidImageName"]);
  });

  it("formats runtime errors as upstream shows them", () => {
    assert.equal(pullErrorText(new CriError("Unknown", "x", { rpc: "PullImage", endpoint: "e", grpcCode: 2, details: "boom" })), "rpc error: code = Unknown desc = boom");
    assert.equal(pullErrorText(new Error("plain")), "plain");
  });
});
