/**
 * The keyring for one pod's image pulls: the docker configs of its imagePullSecrets (read from the
 * apiserver in cluster mode), then the node's own docker config. A missing or unreadable secret (or
 * any secret when there is no apiserver) is reported with upstream's event and skipped: the pull
 * may still succeed without it.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { createKeyring, dockerConfigFromSecret, readNodeDockerConfig, type DockerConfig, type Keyring } from "./credentials.js";

export interface PodCredentialsDeps {
  /** A Secret's decoded data; undefined when it does not exist. Absent standalone (no API). */
  secret?: (namespace: string, name: string) => Promise<Record<string, Buffer> | undefined>;
  /** The node's docker config; default: read from rootDir and the usual places, cached. */
  nodeConfig?: () => Promise<DockerConfig>;
  rootDir: string;
  clock: Clock;
  logger: Logger;
  events?: (pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string) => void;
}

/** How long the node's docker config is cached before it is read again. */
const NODE_CONFIG_TTL_MS = 30_000;

export function createPodCredentials(deps: PodCredentialsDeps): (pod: V1Pod) => Promise<Keyring> {
  let cached: { at: number; config: DockerConfig } | undefined;
  const nodeConfig =
    deps.nodeConfig ??
    (async (): Promise<DockerConfig> => {
      const now = deps.clock.now();
      if (cached && now - cached.at < NODE_CONFIG_TTL_MS) return cached.config;
      let config: DockerConfig = {};
      try {
        config = (await readNodeDockerConfig(deps.rootDir)).config;
      } catch (err) {
        deps.logger.info("could not read the node's docker config", { err: errorMessage(err) });
      }
      cached = { at: now, config };
      return config;
    });

  return async (pod) => {
    const ns = pod.metadata?.namespace ?? "default";
    const configs: DockerConfig[] = [];
    const failed: string[] = [];
    for (const ref of pod.spec?.imagePullSecrets ?? []) {
      const name = ref.name ?? "";
      if (name === "") continue;
      if (!deps.secret) {
        // Standalone: no apiserver to read it from.
        failed.push(name);
        continue;
      }
      try {
        const data = await deps.secret(ns, name);
        if (!data) {
          failed.push(name);
          continue;
        }
        const cfg = dockerConfigFromSecret(data, `secret ${ns}/${name}`);
        if (cfg) configs.push(cfg);
        else deps.logger.info("image pull secret has neither .dockerconfigjson nor .dockercfg", { secret: `${ns}/${name}` });
      } catch (err) {
        deps.logger.info("Unable to retrieve pull secret, the image pull may not succeed.", { pod: `${ns}/${pod.metadata?.name ?? ""}`, secret: name, err: errorMessage(err) });
        failed.push(name);
      }
    }
    if (failed.length > 0) {
      deps.events?.(pod, "Warning", "FailedToRetrieveImagePullSecret", `Unable to retrieve some image pull secrets (${failed.join(", ")}); attempting to pull the image may not succeed.`);
    }
    configs.push(await nodeConfig());
    return createKeyring(configs);
  };
}
