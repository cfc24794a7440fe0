/** Builds the CRI ContainerConfig for one container of a pod. */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { ContainerConfig, KeyValue, Mount } from "../cri/types.js";
import { createHash } from "node:crypto";
import {
  ANN_CONTAINER_HASH,
  ANN_CONTAINER_PORTS,
  ANN_CONTAINER_RESTART_COUNT,
  ANN_POD_TERMINATION_GRACE,
  ANN_TERMINATION_MESSAGE_PATH,
  ANN_TERMINATION_MESSAGE_POLICY,
  LABEL_CONTAINER_NAME,
  LABEL_MANAGED_BY,
  LABEL_POD_NAME,
  LABEL_POD_NAMESPACE,
  LABEL_POD_UID,
} from "../api/labels.js";
import { canonicalJSON } from "../pods/defaults.js";
import { containerResources } from "./resources.js";
import { containerSecurityContext, DEFAULT_SECCOMP_PROFILE_ROOT, verifyRunAsNonRoot, type ImageUser, type SecurityOptions } from "./security.js";
import { expandVars, loadEnvSources, resolveEnv, type EnvContext, type EnvObjectLookup, type EnvSources, type NodeAllocatable } from "./env.js";

export interface ContainerOptions {
  restartCount: number;
  /** The image reference the runtime resolved (image id), used to create the container. */
  imageRef: string;
  memoryCapacity: number;
  /** Values of status fields for the downward API (podIP, hostIP). */
  podIPs: string[];
  hostIPs: string[];
  /** The ConfigMaps and Secrets env refers to (loadEnvSources). */
  envSources?: EnvSources;
  /** For resourceFieldRef without a limit. */
  allocatable?: NodeAllocatable;
  /** The container's volume mounts (from the volume manager). */
  mounts?: Mount[];
  /** The user the image runs as (ImageStatus); without it the runtime uses the image's own. */
  imageUser?: ImageUser;
  security?: SecurityOptions;
}

/** What building a container needs besides the spec: env lookups and the volume mounts. */
export interface ContainerInputs {
  envLookup: EnvObjectLookup | undefined;
  allocatable: NodeAllocatable;
  mountsFor(pod: V1Pod, c: V1Container, env: Record<string, string>): Promise<Mount[]>;
  /** The user an image runs as, from the runtime's ImageStatus (for runAsNonRoot and the default user). */
  imageUser?: (imageRef: string) => Promise<ImageUser | undefined>;
  security?: SecurityOptions;
}

/**
 * Fetches what the container's env refers to, prepares its mounts, and builds its config. Throws
 * ContainerConfigError (CreateContainerConfigError) when a reference cannot be satisfied.
 */
export async function makeContainerConfig(pod: V1Pod, c: V1Container, opts: Omit<ContainerOptions, "envSources" | "mounts" | "allocatable">, inputs: ContainerInputs): Promise<ContainerConfig> {
  // No uid and no name from the runtime means root, as upstream assumes.
  const imageUser = inputs.imageUser ? ((await inputs.imageUser(opts.imageRef || (c.image ?? ""))) ?? {}) : opts.imageUser;
  verifyRunAsNonRoot(pod, c, imageUser ?? {});
  const envSources = await loadEnvSources(pod, c, inputs.envLookup);
  const envs = resolveEnv(pod, c, { podIPs: opts.podIPs, hostIPs: opts.hostIPs, sources: envSources, allocatable: inputs.allocatable });
  const mounts = await inputs.mountsFor(pod, c, Object.fromEntries(envs.map((e) => [e.key, e.value])));
  return buildContainerConfig(pod, c, {
    ...opts,
    envSources,
    allocatable: inputs.allocatable,
    mounts,
    ...(imageUser ? { imageUser } : {}),
    ...(inputs.security ? { security: inputs.security } : {}),
  });
}

/** A hash of everything in the spec that needs a restart to take effect (resources excluded, as upstream). */
export function containerHash(c: V1Container): string {
  const { resources: _r, ...rest } = c;
  return createHash("sha256").update(canonicalJSON(rest)).digest("hex").slice(0, 8);
}

export function containerLogPath(name: string, restartCount: number): string {
  return `${name}/${restartCount}.log`;
}

function envContext(opts: ContainerOptions): EnvContext {
  const ctx: EnvContext = { podIPs: opts.podIPs, hostIPs: opts.hostIPs };
  if (opts.envSources) ctx.sources = opts.envSources;
  if (opts.allocatable) ctx.allocatable = opts.allocatable;
  return ctx;
}

export function buildContainerConfig(pod: V1Pod, c: V1Container, opts: ContainerOptions): ContainerConfig {
  const meta = pod.metadata ?? {};
  const envs: KeyValue[] = resolveEnv(pod, c, envContext(opts));
  const envMap = Object.fromEntries(envs.map((e) => [e.key, e.value]));
  const config: ContainerConfig = {
    metadata: { name: c.name, attempt: opts.restartCount },
    image: { image: opts.imageRef || (c.image ?? ""), userSpecifiedImage: c.image ?? "" },
    command: (c.command ?? []).map((s) => expandVars(s, envMap)),
    args: (c.args ?? []).map((s) => expandVars(s, envMap)),
    workingDir: c.workingDir ?? "",
    envs,
    mounts: opts.mounts ?? [],
    labels: {
      [LABEL_POD_NAME]: meta.name ?? "",
      [LABEL_POD_NAMESPACE]: meta.namespace ?? "default",
      [LABEL_POD_UID]: meta.uid ?? "",
      [LABEL_CONTAINER_NAME]: c.name,
      [LABEL_MANAGED_BY]: "true",
    },
    annotations: {
      [ANN_CONTAINER_HASH]: containerHash(c),
      [ANN_CONTAINER_RESTART_COUNT]: String(opts.restartCount),
      [ANN_TERMINATION_MESSAGE_PATH]: c.terminationMessagePath ?? "/dev/termination-log",
      [ANN_TERMINATION_MESSAGE_POLICY]: c.terminationMessagePolicy ?? "File",
      [ANN_POD_TERMINATION_GRACE]: String(pod.spec?.terminationGracePeriodSeconds ?? 30),
      ...(c.ports?.length ? { [ANN_CONTAINER_PORTS]: JSON.stringify(c.ports) } : {}),
    },
    logPath: containerLogPath(c.name, opts.restartCount),
    stdin: c.stdin ?? false,
    stdinOnce: c.stdinOnce ?? false,
    tty: c.tty ?? false,
    linux: {
      resources: containerResources(c, pod, opts.memoryCapacity),
      securityContext: containerSecurityContext(pod, c, opts.imageUser, opts.security ?? { seccompProfileRoot: DEFAULT_SECCOMP_PROFILE_ROOT }),
    },
  };
  return config;
}
