/**
 * Image garbage collection, as upstream's image manager does it: every period (5 minutes) the
 * images are detected (first seen, last used by a container), the image filesystem's usage is
 * compared with imageGCHighThresholdPercent, and when it is at or above it, unused images are
 * removed — least recently used first, none younger than imageMinimumGCAge, never one a container
 * (running or not) uses, never a pinned one or the sandbox (pause) image — until usage is down to
 * imageGCLowThresholdPercent. With imageMaximumGCAge set, images unused for longer than that go
 * first, whatever the usage.
 */
import { statfs } from "node:fs/promises";
import type { Image, ImageService, RuntimeService } from "../cri/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { runPeriodically } from "../util/periodic.js";

/** Upstream's ImageGCPeriod. */
export const IMAGE_GC_PERIOD_MS = 5 * 60_000;

/**
 * TSKUBELET_TEST_IMAGE_GC_PERIOD_MS (test-only, undocumented for operators): a shorter image GC
 * period, so integration tests need not wait five minutes.
 */
export function testImageGCPeriodMs(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = Number(env.TSKUBELET_TEST_IMAGE_GC_PERIOD_MS);
  return env.TSKUBELET_TEST_IMAGE_GC_PERIOD_MS !== undefined && Number.isInteger(v) && v > 0 ? v : undefined;
}

/** What GC knows about one image. */
export interface ImageRecord {
  id: string;
  names: string[];
  size: number;
  /** When this kubelet first saw the image. */
  firstDetected: number;
  /** When a container last used it (0: never seen in use). */
  lastUsed: number;
  /** Pinned by the runtime or protected here (sandbox image): never removed. */
  pinned: boolean;
}

export interface FsUsage {
  capacity: number;
  available: number;
}

export interface ImageGCPolicy {
  highThresholdPercent: number;
  lowThresholdPercent: number;
  minAgeMs: number;
  /** imageMaximumGCAge: unused images older than this go regardless of disk usage; 0 disables. */
  maxAgeMs?: number;
}

/** Upstream's usage figure: 100 − available·100/capacity (integer division). */
export function usagePercent(fs: FsUsage): number {
  return 100 - Math.floor((fs.available * 100) / fs.capacity);
}

/** Bytes to free to get from `fs` down to the low threshold; 0 when below the high threshold. */
export function bytesToFree(fs: FsUsage, policy: ImageGCPolicy): number {
  if (fs.capacity <= 0) return 0;
  if (usagePercent(fs) < policy.highThresholdPercent) return 0;
  return Math.max(0, Math.floor((fs.capacity * (100 - policy.lowThresholdPercent)) / 100) - fs.available);
}

/**
 * The images to remove to free `amount` bytes: not in use, not pinned, at least minAge old,
 * least recently used first (then oldest detected first), stopping once enough is freed.
 */
export function selectImagesToRemove(records: readonly ImageRecord[], inUse: ReadonlySet<string>, want: { now: number; minAgeMs: number; bytes: number }): ImageRecord[] {
  const { now, minAgeMs, bytes: amount } = want;
  const candidates = records
    .filter((r) => !inUse.has(r.id) && !r.pinned && now - r.firstDetected >= minAgeMs)
    .sort((a, b) => a.lastUsed - b.lastUsed || a.firstDetected - b.firstDetected || (a.id < b.id ? -1 : 1));
  const out: ImageRecord[] = [];
  let freed = 0;
  for (const r of candidates) {
    if (freed >= amount) break;
    out.push(r);
    freed += r.size;
  }
  return out;
}

/**
 * Images unused for longer than maxAge (never used: since forever), not in use and not pinned; none
 * until the kubelet itself has run for maxAge, so a restart does not remove everything at once.
 */
export function selectOldImages(records: readonly ImageRecord[], inUse: ReadonlySet<string>, at: { now: number; startedAt: number; maxAgeMs: number }): ImageRecord[] {
  if (at.maxAgeMs <= 0 || at.now - at.startedAt <= at.maxAgeMs) return [];
  return records.filter((r) => !inUse.has(r.id) && !r.pinned && at.now - r.lastUsed > at.maxAgeMs);
}

export interface ImageGCDeps {
  images: ImageService;
  runtime: RuntimeService;
  clock: Clock;
  logger: Logger;
  /** Image names never to remove besides pinned ones (e.g. --pod-infra-container-image). */
  protectedImages?: () => string[];
  /** statfs of the image filesystem's mount point (tests replace it). */
  fsUsage?: (mountpoint: string) => Promise<FsUsage>;
  /** A removed image, for kubelet_image_garbage_collected_total. */
  onRemoved?: (reason: "space" | "age", image: ImageRecord) => void;
  /** Not enough could be freed (upstream's FreeDiskSpaceFailed). */
  onFailed?: (message: string) => void;
}

export interface ImageGCOptions extends ImageGCPolicy {
  /** Upstream's ImageGCPeriod: 5 minutes. */
  periodMs: number;
}

export interface ImageGCResult {
  usagePercent: number;
  wanted: number;
  freed: number;
  removed: string[];
}

export interface ImageGC {
  /** One detection + collection pass (the periodic loop calls it). */
  collect(): Promise<ImageGCResult | undefined>;
  /** Runs passes every period until the signal aborts (disabled when the high threshold is 100). */
  run(signal: AbortSignal): Promise<void>;
  /** What GC currently knows, for tests and debugging. */
  records(): ImageRecord[];
}

async function statfsUsage(mountpoint: string): Promise<FsUsage> {
  const s = await statfs(mountpoint);
  return { capacity: s.blocks * s.bsize, available: s.bavail * s.bsize };
}

/** The runtime's sandbox image, from containerd's verbose status (`config.sandboxImage`). */
async function runtimeSandboxImage(rs: RuntimeService): Promise<string | undefined> {
  const st = await rs.status(true).catch(() => undefined);
  const raw = st?.info.config;
  if (raw === undefined) return undefined;
  try {
    const cfg = JSON.parse(raw) as { sandboxImage?: unknown };
    return typeof cfg.sandboxImage === "string" ? cfg.sandboxImage : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `name` (as written in a pod or config) refers to this image. */
function refersTo(img: Image, name: string): boolean {
  if (img.id === name) return true;
  const full = name.includes("/") ? name : `docker.io/library/${name}`;
  const withHost = /^[^/]+[.:][^/]*\//.test(full) || full.startsWith("localhost/") ? full : `docker.io/${full}`;
  return [...img.repoTags, ...img.repoDigests].some((t) => t === name || t === withHost || t === `${withHost}:latest`);
}

export function createImageGC(deps: ImageGCDeps, opts: ImageGCOptions): ImageGC {
  const known = new Map<string, ImageRecord>();
  const fsUsage = deps.fsUsage ?? statfsUsage;
  const startedAt = deps.clock.now();

  const remove = async (r: ImageRecord, reason: "space" | "age"): Promise<boolean> => {
    try {
      await deps.images.removeImage({ image: r.id });
    } catch (err) {
      deps.logger.info("failed to remove image", { imageID: r.id, err: errorMessage(err) });
      return false;
    }
    deps.logger.info(reason === "age" ? "Removing image because it has not been used for longer than imageMaximumGCAge" : "Removing image to free bytes", { imageID: r.id, names: r.names, size: r.size });
    known.delete(r.id);
    deps.onRemoved?.(reason, r);
    return true;
  };

  /** Refreshes the records; returns the ids of images containers use. */
  const detect = async (now: number): Promise<{ inUse: Set<string>; images: Image[] }> => {
    const [images, containers, sandboxImage] = await Promise.all([deps.images.listImages(), deps.runtime.listContainers(), runtimeSandboxImage(deps.runtime)]);
    const protectedNames = [...(deps.protectedImages?.() ?? []), ...(sandboxImage ? [sandboxImage] : [])];
    const inUse = new Set<string>();
    for (const c of containers) {
      const byRef = images.find((i) => i.id === c.imageRef || refersTo(i, c.imageRef));
      const bySpec = images.find((i) => refersTo(i, c.image.image));
      if (byRef) inUse.add(byRef.id);
      if (bySpec) inUse.add(bySpec.id);
    }
    const present = new Set<string>();
    for (const img of images) {
      present.add(img.id);
      const r = known.get(img.id);
      const pinned = img.pinned || protectedNames.some((n) => refersTo(img, n));
      const names = [...img.repoTags, ...img.repoDigests];
      if (r) {
        r.size = Number(img.size);
        r.names = names;
        r.pinned = pinned;
      } else {
        known.set(img.id, { id: img.id, names, size: Number(img.size), firstDetected: now, lastUsed: 0, pinned });
      }
      if (inUse.has(img.id)) {
        const rec = known.get(img.id);
        if (rec) rec.lastUsed = now;
      }
    }
    for (const id of [...known.keys()]) if (!present.has(id)) known.delete(id);
    return { inUse, images };
  };

  const collect = async (): Promise<ImageGCResult | undefined> => {
    const now = deps.clock.now();
    const { inUse } = await detect(now);
    const removed: string[] = [];
    for (const r of selectOldImages([...known.values()], inUse, { now, startedAt, maxAgeMs: opts.maxAgeMs ?? 0 })) {
      if (await remove(r, "age")) removed.push(r.id);
    }
    const info = await deps.images.imageFsInfo();
    const mountpoint = info.imageFilesystems[0]?.fsId?.mountpoint;
    if (!mountpoint) throw new Error("ImageFsInfo reported no image filesystem mount point");
    const fs = await fsUsage(mountpoint);
    if (fs.capacity <= 0) throw new Error(`invalid capacity ${fs.capacity} on image filesystem ${mountpoint}`);
    const usage = usagePercent(fs);
    const wanted = bytesToFree(fs, opts);
    if (wanted <= 0) return { usagePercent: usage, wanted: 0, freed: 0, removed };
    deps.logger.info("Disk usage on image filesystem is over the high threshold, trying to free bytes down to the low threshold", {
      usage,
      highThreshold: opts.highThresholdPercent,
      amountToFree: wanted,
      lowThreshold: opts.lowThresholdPercent,
    });
    const chosen = selectImagesToRemove([...known.values()], inUse, { now, minAgeMs: opts.minAgeMs, bytes: wanted });
    let freed = 0;
    for (const r of chosen) {
      if (!(await remove(r, "space"))) continue;
      freed += r.size;
      removed.push(r.id);
    }
    if (freed < wanted) {
      const message = `Failed to garbage collect required amount of images. Attempted to free ${wanted} bytes, but only found ${freed} bytes eligible to free.`;
      deps.logger.info(message);
      deps.onFailed?.(message);
    }
    return { usagePercent: usage, wanted, freed, removed };
  };

  return {
    collect,
    records: () => [...known.values()].map((r) => ({ ...r, names: [...r.names] })),
    async run(signal) {
      if (opts.highThresholdPercent >= 100) {
        deps.logger.info("ImageGCHighThresholdPercent is set 100, Disable image GC");
        return;
      }
      // Detect at once so that ages count from start-up; collect every period.
      await detect(deps.clock.now()).catch((err: unknown) => deps.logger.info("image detection failed", { err: errorMessage(err) }));
      await runPeriodically(collect, {
        clock: deps.clock,
        signal,
        periodMs: opts.periodMs,
        waitFirst: true,
        onError: (err) => deps.logger.info("Image garbage collection failed", { err: errorMessage(err) }),
      });
    },
  };
}
