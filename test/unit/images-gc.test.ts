import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Container, Image, ImageFsInfoResponse, ImageService, ImageSpec, RuntimeService, StatusResponse } from "../../src/cri/types.js";
import { bytesToFree, createImageGC, selectImagesToRemove, selectOldImages, usagePercent, type FsUsage, type ImageRecord } from "../../src/images/gc.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

const rec = (id: string, o: Partial<ImageRecord> = {}): ImageRecord => ({ id, names: [id], size: 100, firstDetected: 0, lastUsed: 0, pinned: false, ...o });
const ids = (r: ImageRecord[]): string[] => r.map((x) => x.id);

describe("image GC selection", () => {
  const policy = { highThresholdPercent: 85, lowThresholdPercent: 80, minAgeMs: 120_000 };

  it("computes usage and the bytes to free as upstream", () => {
    assert.equal(usagePercent({ capacity: 1000, available: 150 }), 85);
    assert.equal(usagePercent({ capacity: 1000, available: 151 }), 85);
    assert.equal(bytesToFree({ capacity: 1000, available: 160 }, policy), 0);
    // At 85 %: free down to 80 % (200 bytes available).
    assert.equal(bytesToFree({ capacity: 1000, available: 150 }, policy), 50);
    assert.equal(bytesToFree({ capacity: 1000, available: 0 }, policy), 200);
  });

  it("never picks an image in use or a pinned one", () => {
    const records = [rec("a"), rec("b", { pinned: true }), rec("c")];
    assert.deepEqual(ids(selectImagesToRemove(records, new Set(["a"]), { now: 1e9, minAgeMs: 0, bytes: 1e9 })), ["c"]);
  });

  it("skips images younger than the minimum age", () => {
    const records = [rec("old", { firstDetected: 0 }), rec("young", { firstDetected: 1_000_000 })];
    assert.deepEqual(ids(selectImagesToRemove(records, new Set(), { now: 1_100_000, minAgeMs: 120_000, bytes: 1e9 })), ["old"]);
  });

  it("removes the least recently used first and stops once enough is freed", () => {
    const records = [rec("recent", { lastUsed: 500 }), rec("never", { lastUsed: 0, firstDetected: 10 }), rec("older", { lastUsed: 100 }), rec("never-older", { lastUsed: 0, firstDetected: 5 })];
    assert.deepEqual(ids(selectImagesToRemove(records, new Set(), { now: 1e9, minAgeMs: 0, bytes: 250 })), ["never-older", "never", "older"]);
    assert.deepEqual(ids(selectImagesToRemove(records, new Set(), { now: 1e9, minAgeMs: 0, bytes: 100 })), ["never-older"]);
    assert.deepEqual(selectImagesToRemove(records, new Set(), { now: 1e9, minAgeMs: 0, bytes: 0 }), []);
  });
});

describe("image GC by age (imageMaximumGCAge)", () => {
  it("picks images unused for longer than the maximum age, not before the kubelet ran that long", () => {
    const records = [rec("stale", { lastUsed: 1_000 }), rec("fresh", { lastUsed: 90_000 }), rec("never"), rec("pinned", { pinned: true }), rec("used")];
    const inUse = new Set(["used"]);
    assert.deepEqual(ids(selectOldImages(records, inUse, { now: 100_000, startedAt: 0, maxAgeMs: 60_000 })), ["stale", "never"]);
    assert.deepEqual(selectOldImages(records, inUse, { now: 100_000, startedAt: 50_000, maxAgeMs: 60_000 }), []);
    assert.deepEqual(selectOldImages(records, inUse, { now: 100_000, startedAt: 0, maxAgeMs: 0 }), []);
  });
});

/** A runtime with images and containers, enough for the image GC. */
class FakeRuntime {
  images: Image[] = [];
  containers: Container[] = [];
  removed: string[] = [];
  sandboxImage = "registry.local/pause:3.9";

  img(id: string, tag: string, size = 100): void {
    this.images.push({ id, repoTags: [tag], repoDigests: [], size: BigInt(size), username: "", pinned: false });
  }
  ctr(imageRef: string): void {
    this.containers.push({ id: `c${this.containers.length}`, podSandboxId: "s", metadata: { name: "c", attempt: 0 }, image: { image: imageRef }, imageRef, state: "CONTAINER_EXITED", createdAt: 0n, labels: {}, annotations: {} });
  }
  imageService(): ImageService {
    return {
      listImages: () => Promise.resolve(this.images),
      imageStatus: () => Promise.resolve(undefined),
      pullImage: () => Promise.resolve(""),
      removeImage: (spec: ImageSpec) => {
        this.removed.push(spec.image);
        this.images = this.images.filter((i) => i.id !== spec.image);
        return Promise.resolve();
      },
      imageFsInfo: (): Promise<ImageFsInfoResponse> => Promise.resolve({ imageFilesystems: [{ timestamp: 0n, fsId: { mountpoint: "/images" } }], containerFilesystems: [] }),
      close: () => undefined,
    };
  }
  runtimeService(): RuntimeService {
    const partial: Pick<RuntimeService, "listContainers" | "status"> = {
      listContainers: () => Promise.resolve(this.containers),
      status: (): Promise<StatusResponse> => Promise.resolve({ status: { conditions: [] }, info: { config: JSON.stringify({ sandboxImage: this.sandboxImage }) } }),
    };
    return partial as RuntimeService;
  }
}

describe("image GC passes", () => {
  function setup(fs: FsUsage, minAgeMs = 0): { rt: FakeRuntime; gc: ReturnType<typeof createImageGC>; clock: FakeClock; log: string[] } {
    const rt = new FakeRuntime();
    const clock = new FakeClock();
    const { logger, lines } = memoryLogger();
    const gc = createImageGC(
      { images: rt.imageService(), runtime: rt.runtimeService(), clock, logger, fsUsage: () => Promise.resolve(fs) },
      { periodMs: 300_000, highThresholdPercent: 50, lowThresholdPercent: 40, minAgeMs },
    );
    return { rt, gc, clock, log: lines };
  }

  it("does nothing below the high threshold", async () => {
    const { rt, gc } = setup({ capacity: 1000, available: 600 });
    rt.img("sha256:a", "x/a:1");
    const r = await gc.collect();
    assert.equal(r?.usagePercent, 40);
    assert.deepEqual(rt.removed, []);
  });

  it("removes unused images down to the low threshold, keeping the sandbox image and those containers use", async () => {
    const { rt, gc, log } = setup({ capacity: 1000, available: 400 });
    rt.img("sha256:pause", "registry.local/pause:3.9");
    rt.img("sha256:used", "x/used:1");
    rt.img("sha256:u1", "x/unused1:1");
    rt.img("sha256:u2", "x/unused2:1");
    rt.ctr("sha256:used");
    const r = await gc.collect();
    // 60 % used: free 1000·60 % − 400 = 200 bytes, both unused images.
    assert.equal(r?.wanted, 200);
    assert.deepEqual(rt.removed.sort(), ["sha256:u1", "sha256:u2"]);
    assert.ok(log.some((l) => l.includes("Removing image to free bytes")));
  });

  it("protects images by the name a container was created with", async () => {
    const { rt, gc } = setup({ capacity: 1000, available: 0 });
    rt.img("sha256:named", "docker.io/library/busybox:1.35");
    rt.ctr("busybox:1.35");
    await gc.collect();
    assert.deepEqual(rt.removed, []);
  });

  it("waits for the minimum age, counted from the first time it saw an image", async () => {
    const { rt, gc, clock } = setup({ capacity: 1000, available: 0 }, 120_000);
    rt.img("sha256:new", "x/new:1");
    await gc.collect();
    assert.deepEqual(rt.removed, []);
    await clock.advance(120_000);
    const r = await gc.collect();
    assert.deepEqual(rt.removed, ["sha256:new"]);
    assert.equal(r?.freed, 100);
  });

  it("reports when not enough can be freed", async () => {
    const rt = new FakeRuntime();
    const failures: string[] = [];
    const gc = createImageGC(
      { images: rt.imageService(), runtime: rt.runtimeService(), clock: new FakeClock(), logger: memoryLogger().logger, fsUsage: () => Promise.resolve({ capacity: 1000, available: 0 }), onFailed: (m) => failures.push(m) },
      { periodMs: 1, highThresholdPercent: 50, lowThresholdPercent: 40, minAgeMs: 0 },
    );
    rt.img("sha256:one", "x/one:1", 50);
    await gc.collect();
    assert.deepEqual(failures, ["Failed to garbage collect required amount of images. Attempted to free 600 bytes, but only found 50 bytes eligible to free."]);
  });

  it("removes images unused for longer than imageMaximumGCAge below the thresholds too", async () => {
    const rt = new FakeRuntime();
    const clock = new FakeClock();
    const reasons: string[] = [];
    const gc = createImageGC(
      { images: rt.imageService(), runtime: rt.runtimeService(), clock, logger: memoryLogger().logger, fsUsage: () => Promise.resolve({ capacity: 1000, available: 900 }), onRemoved: (reason, r) => reasons.push(`${reason} ${r.id}`) },
      { periodMs: 1, highThresholdPercent: 85, lowThresholdPercent: 80, minAgeMs: 0, maxAgeMs: 600_000 },
    );
    rt.img("sha256:old", "x/old:1");
    rt.img("sha256:busy", "x/busy:1");
    rt.ctr("sha256:busy");
    await gc.collect();
    await clock.advance(600_001);
    const r = await gc.collect();
    assert.deepEqual(r?.removed, ["sha256:old"]);
    assert.deepEqual(reasons, ["age sha256:old"]);
  });

  it("runs every period and not at all with a high threshold of 100", async () => {
    const { rt, gc, clock } = setup({ capacity: 1000, available: 0 });
    const ac = new AbortController();
    const running = gc.run(ac.signal);
    rt.img("sha256:late", "x/late:1");
    await clock.advance(299_000);
    assert.deepEqual(rt.removed, []);
    await clock.advance(1_000);
    await clock.advance(0);
    assert.deepEqual(rt.removed, ["sha256:late"]);
    ac.abort();
    await running;

    const rt2 = new FakeRuntime();
    const clock2 = new FakeClock();
    const off = createImageGC(
      { images: rt2.imageService(), runtime: rt2.runtimeService(), clock: clock2, logger: memoryLogger().logger, fsUsage: () => Promise.resolve({ capacity: 1000, available: 0 }) },
      { periodMs: 1000, highThresholdPercent: 100, lowThresholdPercent: 0, minAgeMs: 0 },
    );
    rt2.img("sha256:x", "x/x:1");
    await off.run(new AbortController().signal);
    await clock2.advance(5000);
    assert.deepEqual(rt2.removed, []);
  });
});
