/**
 * What a configMap, secret, downwardAPI or projected volume contains: the files (path, bytes,
 * mode) computed from the API objects, the pod and its service account tokens. Error messages are
 * upstream's; the caller prefixes them with `MountVolume.SetUp failed for volume "<name>" : `.
 */
import type { V1DownwardAPIVolumeFile, V1KeyToPath, V1Pod, V1Volume, V1VolumeProjection } from "@kubernetes/client-node";
import { fieldRefValue, resourceFieldValue, type NodeAllocatable } from "../containers/env.js";
import { errorMessage, KubeletError } from "../util/errors.js";
import type { Payload } from "./atomic-writer.js";
import type { ObjectData, ObjectSource } from "./objects.js";
import type { TokenSource } from "./tokens.js";

/** Mode of projected files when the volume names none (0644). */
export const DEFAULT_MODE = 0o644;

export interface PayloadContext {
  pod: V1Pod;
  /** Absent when tskubelet runs standalone. */
  objects: ObjectSource | undefined;
  tokens: TokenSource | undefined;
  allocatable: NodeAllocatable;
}

export class VolumeError extends KubeletError {
  constructor(message: string) {
    super("VolumeSetUpFailed", message);
    this.name = "VolumeError";
  }
}

function standalone(kind: string, volume: string): VolumeError {
  return new VolumeError(`cannot setup ${kind} volume ${volume} because kube client is not configured (tskubelet runs standalone, without --kubeconfig)`);
}

interface KeySource {
  kind: "configmap" | "secret";
  name: string;
  items: V1KeyToPath[] | undefined;
  optional: boolean;
}

/** Files from one ConfigMap or Secret: every key, or just `items`, each with its mode or `defaultMode`. */
export function keyPayload(data: ObjectData | undefined, src: KeySource, defaultMode: number): Payload {
  if (data === undefined && !src.optional) throw new VolumeError(`${src.kind} "${src.name}" not found`);
  const out: Payload = new Map();
  if (data === undefined) return out;
  if (!src.items || src.items.length === 0) {
    for (const [k, v] of Object.entries(data)) out.set(k, { data: v, mode: defaultMode });
    return out;
  }
  for (const it of src.items) {
    const v = data[it.key];
    if (v === undefined) {
      if (src.optional) continue;
      throw new VolumeError(src.kind === "configmap" ? `configmap references non-existent config key: ${it.key}` : `references non-existent secret key: ${it.key}`);
    }
    out.set(it.path, { data: v, mode: it.mode ?? defaultMode });
  }
  return out;
}

/** Files of a downwardAPI volume (or projection): pod fields and container resources. */
export function downwardPayload(pod: V1Pod, items: V1DownwardAPIVolumeFile[], opts: { defaultMode: number; allocatable: NodeAllocatable }): Payload {
  const out: Payload = new Map();
  for (const it of items) {
    let value: string;
    if (it.fieldRef) {
      const v = fieldRefValue(pod, it.fieldRef.fieldPath, { podIPs: [], hostIPs: [] });
      if (v === undefined) throw new VolumeError(`unsupported fieldPath: ${it.fieldRef.fieldPath}`);
      value = v;
    } else if (it.resourceFieldRef) {
      const self = pod.spec?.containers.find((c) => c.name === it.resourceFieldRef?.containerName) ?? { name: it.resourceFieldRef.containerName ?? "" };
      try {
        value = resourceFieldValue(pod, self, it.resourceFieldRef, opts.allocatable);
      } catch (err) {
        throw new VolumeError(errorMessage(err));
      }
    } else {
      continue;
    }
    out.set(it.path, { data: Buffer.from(value, "utf8"), mode: it.mode ?? opts.defaultMode });
  }
  return out;
}

async function projectionPayload(src: V1VolumeProjection, ctx: PayloadContext, defaultMode: number): Promise<Payload> {
  const ns = ctx.pod.metadata?.namespace ?? "default";
  if (src.configMap) {
    const name = src.configMap.name ?? "";
    const data = await ctx.objects?.configMap(ns, name);
    return keyPayload(data, { kind: "configmap", name, items: src.configMap.items, optional: src.configMap.optional === true }, defaultMode);
  }
  if (src.secret) {
    const name = src.secret.name ?? "";
    const data = await ctx.objects?.secret(ns, name);
    return keyPayload(data, { kind: "secret", name, items: src.secret.items, optional: src.secret.optional === true }, defaultMode);
  }
  if (src.downwardAPI) return downwardPayload(ctx.pod, src.downwardAPI.items ?? [], { defaultMode, allocatable: ctx.allocatable });
  if (src.serviceAccountToken) {
    const token = await ctx.tokens?.token(ctx.pod, src.serviceAccountToken);
    return new Map([[src.serviceAccountToken.path, { data: Buffer.from(token ?? "", "utf8"), mode: defaultMode }]]);
  }
  if (src.clusterTrustBundle) throw new VolumeError("clusterTrustBundle projections are not supported by tskubelet");
  return new Map();
}

async function projectedPayload(v: V1Volume, ctx: PayloadContext): Promise<Payload> {
  const sources = v.projected?.sources ?? [];
  const needsApi = sources.some((s) => s.configMap || s.secret || s.serviceAccountToken);
  if (needsApi && (!ctx.objects || !ctx.tokens)) throw standalone("projected", v.name);
  const out: Payload = new Map();
  const errors: string[] = [];
  for (const s of sources) {
    try {
      for (const [p, f] of await projectionPayload(s, ctx, v.projected?.defaultMode ?? DEFAULT_MODE)) out.set(p, f);
    } catch (err) {
      errors.push(errorMessage(err));
    }
  }
  // Every source is tried; the errors are reported together, as upstream aggregates them.
  if (errors.length === 1) throw new VolumeError(errors[0] ?? "");
  if (errors.length > 1) throw new VolumeError(`[${errors.join(", ")}]`);
  return out;
}

/**
 * The payload of an API-backed volume (configMap, secret, downwardAPI, projected); undefined for
 * other volume types.
 */
export async function volumePayload(v: V1Volume, ctx: PayloadContext): Promise<Payload | undefined> {
  const ns = ctx.pod.metadata?.namespace ?? "default";
  if (v.configMap) {
    if (!ctx.objects) throw standalone("configMap", v.name);
    const name = v.configMap.name ?? "";
    const data = await ctx.objects.configMap(ns, name);
    return keyPayload(data, { kind: "configmap", name, items: v.configMap.items, optional: v.configMap.optional === true }, v.configMap.defaultMode ?? DEFAULT_MODE);
  }
  if (v.secret) {
    if (!ctx.objects) throw standalone("secret", v.name);
    const name = v.secret.secretName ?? "";
    const data = await ctx.objects.secret(ns, name);
    return keyPayload(data, { kind: "secret", name, items: v.secret.items, optional: v.secret.optional === true }, v.secret.defaultMode ?? DEFAULT_MODE);
  }
  if (v.downwardAPI) return downwardPayload(ctx.pod, v.downwardAPI.items ?? [], { defaultMode: v.downwardAPI.defaultMode ?? DEFAULT_MODE, allocatable: ctx.allocatable });
  if (v.projected) return projectedPayload(v, ctx);
  return undefined;
}
