/**
 * Pod volumes: emptyDir (disk or tmpfs), hostPath (with its type checks), configMap, secret,
 * downwardAPI and projected (configMap + secret + downwardAPI + serviceAccountToken), written with
 * upstream's atomic `..data` layout under `<rootDir>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`.
 *
 *   const volumes = createVolumeManager({ api, clock, logger, events, allocatable }, { rootDir, refreshMs });
 *   const failures = await volumes.setUp(pod);         // before the sandbox; [] when ready
 *   const mounts = await volumes.mountsFor(pod, c, env); // the container's CRI mounts
 *   await volumes.tearDown(uid);                        // after the pod's containers are gone
 *   void volumes.run(signal);                           // periodic refresh, token rotation
 */
import type { ApiClient } from "../api/client.js";
import type { NodeAllocatable } from "../containers/env.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { parseQuantity } from "../config/quantity.js";
import { createVolumeManager as createManager, type VolumeEventRecorder, type VolumeManager, type VolumeManagerOptions } from "./manager.js";
import { createSystemMounter, type Mounter } from "./mounter.js";
import { createApiObjectSource, envLookupFrom, type ObjectSource } from "./objects.js";
import { createApiTokenRequester, createTokenManager, type TokenRequester } from "./tokens.js";

export type { VolumeFailure, VolumeManager, VolumeManagerOptions } from "./manager.js";

export interface VolumeDeps {
  /** The apiserver client in cluster mode; absent standalone (API-backed volumes then fail clearly). */
  api: ApiClient | undefined;
  clock: Clock;
  logger: Logger;
  events: VolumeEventRecorder;
  allocatable: () => NodeAllocatable;
  /** Test seams: the mount(8) runner, the ConfigMap/Secret source and the TokenRequest call. */
  mounter?: Mounter;
  objects?: ObjectSource;
  requestToken?: TokenRequester;
}

export function createVolumeManager(deps: VolumeDeps, opts: VolumeManagerOptions): VolumeManager {
  const { api, clock, logger } = deps;
  const objects = deps.objects ?? (api ? createApiObjectSource(api, clock) : undefined);
  const request = deps.requestToken ?? (api ? createApiTokenRequester(api, clock) : undefined);
  return createManager(
    {
      clock,
      logger,
      mounter: deps.mounter ?? createSystemMounter(),
      objects,
      tokens: request ? createTokenManager({ request, clock, logger }) : undefined,
      envLookup: api ? envLookupFrom(api, clock) : undefined,
      events: deps.events,
      allocatable: deps.allocatable,
    },
    opts,
  );
}

/** The node's allocatable resources from the Node's status (cluster mode), else the machine's capacity. */
export function nodeAllocatable(status: Record<string, string> | undefined, machine: { numCores: number; memoryCapacity: number }): NodeAllocatable {
  const out: NodeAllocatable = {
    cpu: parseQuantity(status?.cpu ?? "") ?? machine.numCores,
    memory: parseQuantity(status?.memory ?? "") ?? machine.memoryCapacity,
  };
  const storage = parseQuantity(status?.["ephemeral-storage"] ?? "");
  if (storage !== undefined) out["ephemeral-storage"] = storage;
  return out;
}
