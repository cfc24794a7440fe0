/**
 * The volume manager: sets up a pod's volumes before its containers start, hands out the CRI
 * mounts of each container, keeps the API-backed volumes (configMap, secret, downwardAPI,
 * projected) current, refreshes service account tokens at 80% of their life, and removes
 * everything when the pod is cleaned up. One pod's operations run one at a time.
 */
import { chmod, lstat, mkdir, realpath, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { V1Container, V1Pod, V1Volume } from "@kubernetes/client-node";
import type { Mount, MountPropagation } from "../cri/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { parseQuantity } from "../config/quantity.js";
import { ContainerConfigError, expandVars, type EnvObjectLookup, type NodeAllocatable } from "../containers/env.js";
import { writeAtomically } from "./atomic-writer.js";
import { checkHostPath } from "./hostpath.js";
import { setVolumeOwnership } from "./ownership.js";
import type { Mounter } from "./mounter.js";
import type { ObjectSource } from "./objects.js";
import { VolumeError, volumePayload, type PayloadContext } from "./payload.js";
import { podDir, volumeDir, type VolumePlugin } from "./paths.js";
import type { TokenSource } from "./tokens.js";

export type VolumeEventRecorder = (pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string) => void;

export interface VolumeManagerDeps {
  clock: Clock;
  logger: Logger;
  mounter: Mounter;
  /** ConfigMaps and Secrets; absent when tskubelet runs standalone. */
  objects: ObjectSource | undefined;
  tokens: TokenSource | undefined;
  /** Env lookups for containers (the same API, strings instead of bytes); absent standalone. */
  envLookup: EnvObjectLookup | undefined;
  events: VolumeEventRecorder;
  /** For resourceFieldRef in downwardAPI volumes without a limit. */
  allocatable: () => NodeAllocatable;
}

export interface VolumeManagerOptions {
  /** `<rootDir>/pods/<uid>/volumes/...` */
  rootDir: string;
  /** How often API-backed volumes are rewritten from the API (upstream: the pod sync period). */
  refreshMs: number;
}

export interface VolumeFailure {
  volume: string;
  /** `MountVolume.SetUp failed for volume "<name>" : <why>`, upstream's event message. */
  message: string;
}

export interface VolumeManager {
  /** Sets up every volume of the pod that is not yet set up; resolves to the failures ([] when all are ready). */
  setUp(pod: V1Pod): Promise<VolumeFailure[]>;
  /** The CRI mounts of one container (subPath prepared); throws ContainerConfigError. */
  mountsFor(pod: V1Pod, c: V1Container, env: Record<string, string>): Promise<Mount[]>;
  /** Unmounts and removes everything of the pod (after its containers are gone). */
  tearDown(uid: string): Promise<void>;
  /** Rewrites every API-backed volume now (the periodic refresh, for tests). */
  refresh(): Promise<void>;
  /** Refreshes periodically and when a token is due, until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
  /** Env lookups for containers; undefined standalone. */
  readonly envLookup: EnvObjectLookup | undefined;
}

interface PodState {
  pod: V1Pod;
  /** Volumes set up, by name. */
  ready: Set<string>;
  /** Labels and annotations the downward API files were last written from. */
  metaKey: string;
}

const PLUGIN_FOR: [keyof V1Volume, VolumePlugin][] = [
  ["emptyDir", "empty-dir"],
  ["configMap", "configmap"],
  ["secret", "secret"],
  ["downwardAPI", "downward-api"],
  ["projected", "projected"],
];

export function pluginOf(v: V1Volume): VolumePlugin | undefined {
  return PLUGIN_FOR.find(([k]) => v[k] !== undefined && v[k] !== null)?.[1];
}

const isApiBacked = (v: V1Volume): boolean => v.configMap !== undefined || v.secret !== undefined || v.downwardAPI !== undefined || v.projected !== undefined;
const usesDownward = (v: V1Volume): boolean => v.downwardAPI !== undefined || (v.projected?.sources ?? []).some((s) => s.downwardAPI !== undefined);
const metaKeyOf = (pod: V1Pod): string => JSON.stringify([pod.metadata?.labels ?? {}, pod.metadata?.annotations ?? {}]);

function volumeType(v: V1Volume): string {
  return Object.keys(v).find((k) => k !== "name" && (v as unknown as Record<string, unknown>)[k] != null) ?? "unknown";
}

function propagationOf(p: string | undefined): MountPropagation {
  if (p === "HostToContainer") return "PROPAGATION_HOST_TO_CONTAINER";
  if (p === "Bidirectional") return "PROPAGATION_BIDIRECTIONAL";
  return "PROPAGATION_PRIVATE";
}

const MIN_WAIT_MS = 1_000;

export function createVolumeManager(deps: VolumeManagerDeps, opts: VolumeManagerOptions): VolumeManager {
  const pods = new Map<string, PodState>();
  const locks = new Map<string, Promise<unknown>>();
  let kick: (() => void) | undefined;

  /** Runs `fn` after every earlier operation on the same pod. */
  const serialize = <T>(uid: string, fn: () => Promise<T>): Promise<T> => {
    const prev = locks.get(uid) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    locks.set(uid, settled);
    void settled.then(() => {
      if (locks.get(uid) === settled) locks.delete(uid);
    });
    return next;
  };

  const dirOf = (uid: string, v: V1Volume): string => {
    const plugin = pluginOf(v);
    if (plugin) return volumeDir(opts.rootDir, uid, plugin, v.name);
    if (v.hostPath) return v.hostPath.path;
    return "";
  };

  /** The pod's fsGroup on a volume that supports ownership (API-backed volumes are read-only). */
  const applyFsGroup = async (pod: V1Pod, v: V1Volume, dir: string): Promise<void> => {
    const sc = pod.spec?.securityContext;
    if (sc?.fsGroup == null || pluginOf(v) === undefined) return;
    await setVolumeOwnership(dir, sc.fsGroup, { readOnly: isApiBacked(v), ...(sc.fsGroupChangePolicy != null ? { policy: sc.fsGroupChangePolicy } : {}) });
  };

  const payloadContext = (pod: V1Pod): PayloadContext => ({ pod, objects: deps.objects, tokens: deps.tokens, allocatable: deps.allocatable() });

  /** Writes an API-backed volume's current contents; true when they changed. */
  const writeApiVolume = async (pod: V1Pod, v: V1Volume): Promise<boolean> => {
    const payload = await volumePayload(v, payloadContext(pod));
    if (!payload) return false;
    const changed = await writeAtomically(dirOf(pod.metadata?.uid ?? "", v), payload, deps.clock);
    if (changed) await applyFsGroup(pod, v, dirOf(pod.metadata?.uid ?? "", v));
    return changed;
  };

  const setUpVolume = async (pod: V1Pod, v: V1Volume): Promise<void> => {
    const uid = pod.metadata?.uid ?? "";
    if (v.hostPath) {
      await checkHostPath(v.hostPath.path, v.hostPath.type);
      return;
    }
    const plugin = pluginOf(v);
    if (!plugin) throw new VolumeError(`volume type ${volumeType(v)} is not supported by tskubelet`);
    const dir = volumeDir(opts.rootDir, uid, plugin, v.name);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    // Memory-backed as upstream: emptyDir medium Memory, and secret and projected volumes (never on disk).
    if (v.emptyDir?.medium === "Memory" || plugin === "secret" || plugin === "projected") {
      const size = v.emptyDir?.sizeLimit !== undefined ? parseQuantity(String(v.emptyDir.sizeLimit)) : undefined;
      await deps.mounter.mountTmpfs(dir, size !== undefined ? { sizeBytes: size } : {});
    }
    await chmod(dir, 0o777);
    if (isApiBacked(v)) await writeApiVolume(pod, v);
    await applyFsGroup(pod, v, dir);
  };

  const failure = (v: V1Volume, err: unknown): VolumeFailure => ({ volume: v.name, message: `MountVolume.SetUp failed for volume "${v.name}" : ${errorMessage(err)}` });

  const refreshPod = async (uid: string): Promise<void> => {
    const st = pods.get(uid);
    if (!st) return;
    for (const v of st.pod.spec?.volumes ?? []) {
      if (!isApiBacked(v) || !st.ready.has(v.name)) continue;
      try {
        if (await writeApiVolume(st.pod, v)) deps.logger.v(2).info("volume contents updated", { pod: `${st.pod.metadata?.namespace ?? ""}/${st.pod.metadata?.name ?? ""}`, volume: v.name });
      } catch (err) {
        const f = failure(v, err);
        deps.logger.warn("refreshing a volume failed", { pod: `${st.pod.metadata?.namespace ?? ""}/${st.pod.metadata?.name ?? ""}`, volume: v.name, err: errorMessage(err) });
        deps.events(st.pod, "Warning", "FailedMount", f.message);
      }
    }
    st.metaKey = metaKeyOf(st.pod);
  };

  const refreshAll = async (): Promise<void> => {
    await Promise.all([...pods.keys()].map((uid) => serialize(uid, () => refreshPod(uid))));
  };

  const prepareSubPath = async (base: string, sub: string, where: { mount: string; container: string }): Promise<string> => {
    if (sub.startsWith("/")) throw new ContainerConfigError(`error SubPath \`${sub}\` must not be an absolute path`);
    if (sub.split("/").includes("..")) throw new ContainerConfigError(`unable to provision SubPath \`${sub}\`: must not contain '..'`);
    const path = join(base, sub);
    const exists = await lstat(path).then(
      () => true,
      () => false,
    );
    if (!exists) {
      try {
        const mode = (await stat(base)).mode & 0o7777;
        await mkdir(path, { recursive: true, mode });
      } catch {
        throw new ContainerConfigError(`failed to create subPath directory for volumeMount "${where.mount}" of container "${where.container}"`);
      }
    }
    // The path (after symlinks) must stay inside the volume.
    try {
      const [real, realBase] = await Promise.all([realpath(path), realpath(base)]);
      if (real !== realBase && !real.startsWith(`${realBase}/`)) throw new Error("outside the volume");
      return real;
    } catch {
      throw new ContainerConfigError(`failed to prepare subPath for volumeMount "${where.mount}" of container "${where.container}"`);
    }
  };

  return {
    envLookup: deps.envLookup,
    setUp(pod) {
      const uid = pod.metadata?.uid ?? "";
      return serialize(uid, async () => {
        let st = pods.get(uid);
        if (!st) {
          st = { pod, ready: new Set(), metaKey: metaKeyOf(pod) };
          pods.set(uid, st);
        }
        st.pod = pod;
        const metaChanged = st.metaKey !== metaKeyOf(pod);
        const failures: VolumeFailure[] = [];
        const volumes = pod.spec?.volumes ?? [];
        if (volumes.length > 0) await mkdir(join(podDir(opts.rootDir, uid), "volumes"), { recursive: true, mode: 0o750 });
        for (const v of volumes) {
          try {
            if (!st.ready.has(v.name)) {
              await setUpVolume(pod, v);
              st.ready.add(v.name);
            } else if (metaChanged && usesDownward(v)) {
              await writeApiVolume(pod, v);
            }
          } catch (err) {
            failures.push(failure(v, err));
          }
        }
        if (metaChanged && failures.length === 0) st.metaKey = metaKeyOf(pod);
        kick?.();
        return failures;
      });
    },

    async mountsFor(pod, c, env) {
      const uid = pod.metadata?.uid ?? "";
      const out: Mount[] = [];
      for (const m of c.volumeMounts ?? []) {
        const v = pod.spec?.volumes?.find((x) => x.name === m.name);
        if (!v) throw new ContainerConfigError(`cannot find volume "${m.name}" to mount into container "${c.name}"`);
        const base = dirOf(uid, v);
        if (base === "") throw new ContainerConfigError(`volume "${v.name}" of type ${volumeType(v)} is not supported by tskubelet`);
        const sub = m.subPathExpr ? expandVars(m.subPathExpr, env) : (m.subPath ?? "");
        const hostPath = sub ? await prepareSubPath(base, sub, { mount: m.name, container: c.name }) : base;
        out.push({
          containerPath: m.mountPath,
          hostPath,
          // API-backed volumes are always read-only in the container, as upstream mounts them.
          readonly: m.readOnly === true || isApiBacked(v),
          selinuxRelabel: false,
          propagation: propagationOf(m.mountPropagation),
        });
      }
      return out;
    },

    tearDown(uid) {
      return serialize(uid, async () => {
        pods.delete(uid);
        deps.tokens?.forget(uid);
        const dir = podDir(opts.rootDir, uid);
        for (const mp of await deps.mounter.mountsUnder(dir)) await deps.mounter.unmount(mp);
        const left = await deps.mounter.mountsUnder(dir);
        if (left.length > 0) throw new VolumeError(`cannot remove ${dir}: still mounted: ${left.join(", ")}`);
        await rm(dir, { recursive: true, force: true });
        deps.logger.v(2).info("pod volumes torn down", { uid, dir });
      });
    },

    refresh: refreshAll,

    async run(signal) {
      let lastFull = deps.clock.now();
      while (!signal.aborted) {
        const now = deps.clock.now();
        const tokenAt = deps.tokens?.nextRefreshAt();
        const due = Math.min(lastFull + opts.refreshMs, tokenAt ?? Infinity);
        const wait = Math.max(MIN_WAIT_MS, due - now);
        const woken = new AbortController();
        kick = () => woken.abort();
        const onAbort = (): void => woken.abort();
        signal.addEventListener("abort", onAbort, { once: true });
        const slept = await deps.clock.sleep(wait, woken.signal).then(
          () => true,
          () => false,
        );
        signal.removeEventListener("abort", onAbort);
        kick = undefined;
        if (signal.aborted) return;
        if (!slept) continue; // kicked: a new token may be due earlier; recompute
        lastFull = deps.clock.now();
        await refreshAll().catch((err: unknown) => deps.logger.error("volume refresh failed", { err: errorMessage(err) }));
      }
    },
  };
}
