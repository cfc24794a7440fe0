/**
 * Makes sure a container's image is present, following imagePullPolicy, with registry credentials
 * from the pod's imagePullSecrets (and the node's docker config), the per-image pull backoff
 * (ErrImagePull, then ImagePullBackOff) and serialized or bounded-parallel pulls.
 */
import type { ImageUser } from "../containers/security.js";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { AuthConfig, ImageService, PodSandboxConfig } from "../cri/types.js";
import { CriError } from "../cri/errors.js";
import type { Backoff } from "./backoff.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import type { Keyring } from "../images/credentials.js";
import { formatDuration } from "../config/duration.js";
import { errorMessage } from "../util/errors.js";
import { isValidImageReference } from "./validation.js";
import { defaultPullPolicy } from "./defaults.js";
import { createLimiter } from "../util/limiter.js";

export type EnsureImageResult =
  | { ok: true; imageRef: string; pulled: boolean; /** The image's user, when the check that found it read it. */ user?: ImageUser }
  | { ok: false; reason: "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" | "InvalidImageName" | "ImageInspectError"; message: string };

export interface ImageManager {
  /** The user an image runs as (ImageStatus: uid, else user name), for runAsNonRoot; undefined when the image is absent. */
  imageUser(image: string): Promise<ImageUser | undefined>;
  ensureImage(pod: V1Pod, c: V1Container, sandbox: PodSandboxConfig | undefined, auth?: AuthConfig[]): Promise<EnsureImageResult>;
}

/** What a pull recorded, for kubelet_image_pull_duration_seconds. */
export interface PullObservation {
  seconds: number;
  sizeBytes: number;
}

export interface ImageManagerOptions {
  images: ImageService;
  backoff: Backoff;
  /** true: one pull at a time (serializeImagePulls). */
  serialize: boolean;
  /** With serialize false: at most this many pulls at once (maxParallelImagePulls); 0 or absent: no limit. */
  maxParallel?: number;
  logger: Logger;
  clock: Clock;
  /** The credentials for a pod (its imagePullSecrets, then the node's); absent: pull without credentials. */
  credentials?: (pod: V1Pod) => Promise<Keyring>;
  /** Event hooks (Pulling / Pulled / Failed / BackOff / ErrImageNeverPull). */
  onEvent?: (pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string) => void;
  onPulled?: (o: PullObservation) => void;
  /** registryPullQPS / registryBurst: pulls beyond them fail at once with "pull QPS exceeded"; qps 0: no limit. */
  pullQPS?: { qps: number; burst: number };
}

/** A token bucket that never waits: tryAccept() takes a token or says no, as upstream's pull limiter. */
export function createTokenBucket(qps: number, burst: number, clock: Clock): { tryAccept(): boolean } {
  let tokens = burst;
  let last = clock.now();
  return {
    tryAccept() {
      if (qps <= 0) return true;
      const now = clock.now();
      tokens = Math.min(burst, tokens + ((now - last) / 1000) * qps);
      last = now;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
  };
}

/**
 * Pulls are not bound by runtimeRequestTimeout (upstream gives them no deadline): a large image on a
 * slow link takes minutes. One hour only keeps a pull the runtime never answers from blocking forever.
 */
const PULL_DEADLINE_MS = 60 * 60_000;

/** Failure texts kept for ImagePullBackOff messages before stale ones are dropped. */
const MAX_REMEMBERED_ERRORS = 256;

const GRPC_CODE_NAMES: Record<number, string> = {
  1: "Canceled",
  2: "Unknown",
  3: "InvalidArgument",
  4: "DeadlineExceeded",
  5: "NotFound",
  7: "PermissionDenied",
  8: "ResourceExhausted",
  9: "FailedPrecondition",
  12: "Unimplemented",
  13: "Internal",
  14: "Unavailable",
  16: "Unauthenticated",
};

/** The runtime's error as upstream shows it in the waiting message: `rpc error: code = X desc = ...`. */
export function pullErrorText(err: unknown): string {
  if (err instanceof CriError && err.grpcCode !== undefined && err.details !== "") {
    return `rpc error: code = ${GRPC_CODE_NAMES[err.grpcCode] ?? String(err.grpcCode)} desc = ${err.details}`;
  }
  return errorMessage(err);
}

/** The effective pull policy: the container's, else upstream's default for the image. */
export function effectivePullPolicy(c: V1Container): "Always" | "IfNotPresent" | "Never" {
  const p = c.imagePullPolicy;
  if (p === "Always" || p === "IfNotPresent" || p === "Never") return p;
  return defaultPullPolicy(c.image ?? "");
}

/** Whether to pull: Always pulls every time, IfNotPresent only when missing, Never never. */
export function shouldPull(policy: "Always" | "IfNotPresent" | "Never", present: boolean): boolean {
  if (policy === "Always") return true;
  if (policy === "Never") return false;
  return !present;
}

export function createImageManager(opts: ImageManagerOptions): ImageManager {
  const limit = opts.serialize ? 1 : Math.max(0, opts.maxParallel ?? 0);
  const limited = createLimiter(limit);
  const lastError = new Map<string, string>();
  const pullLimiter = createTokenBucket(opts.pullQPS?.qps ?? 0, opts.pullQPS?.burst ?? 0, opts.clock);
  const event = (pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string): void => opts.onEvent?.(pod, type, reason, message);
  /** The credentials to try in order: given ones, else the pod's keyring's; [undefined] pulls without. */
  const credentialsFor = async (pod: V1Pod, image: string, auth: AuthConfig[] | undefined): Promise<(AuthConfig | undefined)[]> => {
    if (auth && auth.length > 0) return auth;
    if (!opts.credentials) return [undefined];
    try {
      const found = (await opts.credentials(pod)).lookup(image);
      return found.length > 0 ? found : [undefined];
    } catch (err) {
      opts.logger.info("could not read image pull credentials; pulling without them", { pod: pod.metadata?.name, err: errorMessage(err) });
      return [undefined];
    }
  };

  const ensure = async (pod: V1Pod, c: V1Container, sandbox: PodSandboxConfig | undefined, auth: AuthConfig[] | undefined): Promise<EnsureImageResult> => {
    const image = c.image ?? "";
    if (!isValidImageReference(image)) {
      const message = `Failed to apply default image tag "${image}": couldn't parse image name`;
      event(pod, "Warning", "InspectFailed", message);
      return { ok: false, reason: "InvalidImageName", message };
    }
    let present: string | undefined;
    let user: ImageUser | undefined;
    try {
      const st = await opts.images.imageStatus({ image });
      present = st?.id;
      if (st) user = imageUserOf(st);
    } catch (err) {
      const message = `Failed to inspect image "${image}": ${errorMessage(err)}`;
      event(pod, "Warning", "InspectFailed", message);
      return { ok: false, reason: "ImageInspectError", message };
    }
    const policy = effectivePullPolicy(c);
    if (!shouldPull(policy, present !== undefined)) {
      // The worker records "already present on machine" when it starts the container.
      if (present !== undefined) return { ok: true, imageRef: present, pulled: false, ...(user ? { user } : {}) };
      const message = `Container image "${image}" is not present with pull policy of Never`;
      event(pod, "Warning", "ErrImageNeverPull", message);
      return { ok: false, reason: "ErrImageNeverPull", message };
    }
    const key = `${pod.metadata?.uid ?? ""}_${image}`;
    if (lastError.size > MAX_REMEMBERED_ERRORS) {
      opts.backoff.gc();
      for (const k of [...lastError.keys()]) if (opts.backoff.delay(k) === 0) lastError.delete(k);
    }
    if (opts.backoff.isInBackoffSinceUpdate(key)) {
      const message = `Back-off pulling image "${image}"`;
      event(pod, "Normal", "BackOff", message);
      const prev = lastError.get(key);
      return { ok: false, reason: "ImagePullBackOff", message: prev !== undefined ? `${message}: ${prev}` : message };
    }
    event(pod, "Normal", "Pulling", `Pulling image "${image}"`);
    const queued = opts.clock.now();
    const attempts = await credentialsFor(pod, image, auth);
    let lastErr: unknown;
    const pulled = await limited(async () => {
      const started = opts.clock.now();
      if (!pullLimiter.tryAccept()) {
        lastErr = new Error("pull QPS exceeded");
        return undefined;
      }
      for (const a of attempts) {
        try {
          const ref = await opts.images.pullImage({ image }, a, sandbox, { timeoutMs: PULL_DEADLINE_MS });
          return { ref, pullMs: opts.clock.now() - started };
        } catch (err) {
          lastErr = err;
        }
      }
      return undefined;
    });
    if (pulled === undefined) {
      // Under policy Always a failed pull fails even when the image is present locally, as upstream.
      opts.backoff.next(key);
      const text = pullErrorText(lastErr);
      lastError.set(key, text);
      opts.logger.v(1).info("image pull failed", { pod: pod.metadata?.name, image, err: text });
      event(pod, "Warning", "Failed", `Failed to pull image "${image}": ${text}`);
      return { ok: false, reason: "ErrImagePull", message: text };
    }
    const totalMs = opts.clock.now() - queued;
    const ref = pulled.ref || present || image;
    const size = await opts.images
      .imageStatus({ image: ref })
      .then((i) => Number(i?.size ?? 0n))
      .catch(() => 0);
    opts.backoff.reset(key);
    lastError.delete(key);
    opts.onPulled?.({ seconds: pulled.pullMs / 1000, sizeBytes: size });
    event(pod, "Normal", "Pulled", `Successfully pulled image "${image}" in ${formatDuration(pulled.pullMs)} (${formatDuration(totalMs)} including waiting). Image size: ${size} bytes.`);
    return { ok: true, imageRef: ref, pulled: true };
  };

  return {
    async imageUser(image) {
      const st = await opts.images.imageStatus({ image });
      return st ? imageUserOf(st) : undefined;
    },
    async ensureImage(pod, c, sandbox, auth) {
      const r = await ensure(pod, c, sandbox, auth);
      // As upstream's container start: every image failure is also "Failed: Error: <reason>".
      if (!r.ok) event(pod, "Warning", "Failed", `Error: ${r.reason}`);
      return r;
    },
  };
}

/** The user an image runs as: its uid, else its user name (ImageStatus). */
function imageUserOf(st: { uid?: { value: bigint } | undefined; username?: string }): ImageUser {
  if (st.uid) return { uid: st.uid.value };
  return st.username ? { username: st.username } : {};
}
