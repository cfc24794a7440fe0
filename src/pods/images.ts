/**
 * Makes sure a container's image is present, following imagePullPolicy, with the pull backoff
 * (ErrImagePull, then ImagePullBackOff) and serialized pulls when configured.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { AuthConfig, ImageService, PodSandboxConfig } from "../cri/types.js";
import type { Backoff } from "./backoff.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { isValidImageReference } from "./validation.js";
import type { ImageUser } from "../containers/security.js";

export type EnsureImageResult =
  | { ok: true; imageRef: string; pulled: boolean }
  | { ok: false; reason: "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" | "InvalidImageName" | "ImageInspectError"; message: string };

export interface ImageManager {
  ensureImage(pod: V1Pod, c: V1Container, sandbox: PodSandboxConfig | undefined, auth?: AuthConfig[]): Promise<EnsureImageResult>;
  /** The user an image runs as (ImageStatus: uid, else user name; neither means root); undefined for an unknown image. */
  imageUser(image: string): Promise<ImageUser | undefined>;
}

export interface ImageManagerOptions {
  images: ImageService;
  backoff: Backoff;
  serialize: boolean;
  logger: Logger;
  /** Event hooks (Pulling / Pulled / Failed / BackOff). */
  onEvent?: (pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string) => void;
}

export function createImageManager(opts: ImageManagerOptions): ImageManager {
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    if (!opts.serialize) return fn();
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  const event = (pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string): void => opts.onEvent?.(pod, type, reason, message);

  return {
    async imageUser(image) {
      const st = await opts.images.imageStatus({ image });
      if (!st) return undefined;
      if (st.uid) return { uid: st.uid.value };
      return st.username ? { username: st.username } : {};
    },
    async ensureImage(pod, c, sandbox, auth) {
      const image = c.image ?? "";
      if (!isValidImageReference(image)) return { ok: false, reason: "InvalidImageName", message: `Failed to apply default image tag "${image}": couldn't parse image name` };
      let present: string | undefined;
      try {
        present = (await opts.images.imageStatus({ image }))?.id;
      } catch (err) {
        return { ok: false, reason: "ImageInspectError", message: `Failed to inspect image "${image}": ${errorMessage(err)}` };
      }
      const policy = c.imagePullPolicy ?? "IfNotPresent";
      if (present && policy !== "Always") {
        return { ok: true, imageRef: present, pulled: false };
      }
      if (policy === "Never") {
        const message = `Container image "${image}" is not present with pull policy of Never`;
        event(pod, "Warning", "ErrImageNeverPull", message);
        return { ok: false, reason: "ErrImageNeverPull", message };
      }
      const key = `${pod.metadata?.uid ?? ""}_${image}`;
      if (opts.backoff.isInBackoffSinceUpdate(key)) {
        const message = `Back-off pulling image "${image}"`;
        event(pod, "Normal", "BackOff", message);
        return { ok: false, reason: "ImagePullBackOff", message };
      }
      event(pod, "Normal", "Pulling", `Pulling image "${image}"`);
      const started = process.hrtime.bigint();
      const attempts = auth && auth.length > 0 ? auth : [undefined];
      let lastErr: unknown;
      for (const a of attempts) {
        try {
          const ref = await serialized(() => opts.images.pullImage({ image }, a, sandbox));
          const secs = Number(process.hrtime.bigint() - started) / 1e9;
          event(pod, "Normal", "Pulled", `Successfully pulled image "${image}" in ${secs.toFixed(3)}s`);
          opts.backoff.reset(key);
          return { ok: true, imageRef: ref || present || image, pulled: true };
        } catch (err) {
          lastErr = err;
        }
      }
      // Under policy Always a failed pull fails even when the image is present locally, as upstream.
      opts.backoff.next(key);
      const message = `Failed to pull image "${image}": ${errorMessage(lastErr)}`;
      opts.logger.v(1).info("image pull failed", { pod: pod.metadata?.name, image, err: errorMessage(lastErr) });
      event(pod, "Warning", "Failed", message);
      return { ok: false, reason: "ErrImagePull", message };
    },
  };
}
