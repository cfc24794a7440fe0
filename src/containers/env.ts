/**
 * Container environment: envFrom (ConfigMaps and Secrets, with a prefix), literal values with
 * $(VAR) expansion, and the sources of env[].valueFrom — the downward API (fieldRef,
 * resourceFieldRef), configMapKeyRef and secretKeyRef.
 *
 * Two steps, so the pure part stays synchronous and testable: `loadEnvSources` fetches the
 * ConfigMaps and Secrets a container refers to through an injected lookup (absent when tskubelet
 * runs standalone), then `resolveEnv` computes the variables. Failures are ContainerConfigErrors
 * whose messages are upstream's (the pod then waits with reason CreateContainerConfigError).
 */
import type { V1Container, V1Pod, V1ResourceFieldSelector } from "@kubernetes/client-node";
import type { KeyValue } from "../cri/types.js";
import { KubeletError } from "../util/errors.js";
import { parseQuantity } from "../config/quantity.js";

export type EnvObjectKind = "ConfigMap" | "Secret";

/**
 * Reads one ConfigMap's `data` or one Secret's decoded `data`; undefined when the object does not
 * exist; rejects on any other failure (the apiserver unreachable, forbidden, ...).
 */
export type EnvObjectLookup = (kind: EnvObjectKind, namespace: string, name: string) => Promise<Record<string, string> | undefined>;

/** The node's allocatable resources in base units (cores, bytes): the limit a container without one gets. */
export type NodeAllocatable = Partial<Record<"cpu" | "memory" | "ephemeral-storage", number>>;

/** The objects a container's env refers to, by kind and name; undefined marks one that does not exist. */
export interface EnvSources {
  configMaps: Map<string, Record<string, string> | undefined>;
  secrets: Map<string, Record<string, string> | undefined>;
}

export interface EnvContext {
  podIPs: string[];
  hostIPs: string[];
  /** What loadEnvSources fetched; without it any configMap/secret reference fails. */
  sources?: EnvSources;
  /** For resourceFieldRef on a resource without a limit. */
  allocatable?: NodeAllocatable;
}

/** A container cannot be configured (upstream's CreateContainerConfigError). */
export class ContainerConfigError extends KubeletError {
  constructor(message: string) {
    super("CreateContainerConfigError", message);
    this.name = "ContainerConfigError";
  }
}

/** Expands $(VAR) from `vars`; $$ escapes a dollar; unknown references stay as written (upstream rules). */
export function expandVars(input: string, vars: Record<string, string>): string {
  let out = "";
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch === "$" && i + 1 < input.length) {
      const next = input[i + 1];
      if (next === "$") {
        out += "$";
        i++;
        continue;
      }
      if (next === "(") {
        const close = input.indexOf(")", i + 2);
        if (close > 0) {
          const name = input.slice(i + 2, close);
          const v = vars[name];
          out += v !== undefined ? v : input.slice(i, close + 1);
          i = close;
          continue;
        }
      }
    }
    out += ch;
  }
  return out;
}

const kindLabel = (kind: EnvObjectKind): string => (kind === "ConfigMap" ? "configMap" : "secret");

/** The ConfigMaps and Secrets a container's env and envFrom name. */
export function envReferences(c: V1Container): { kind: EnvObjectKind; name: string }[] {
  const out = new Map<string, { kind: EnvObjectKind; name: string }>();
  const add = (kind: EnvObjectKind, name: string | undefined): void => {
    if (name) out.set(`${kind}/${name}`, { kind, name });
  };
  for (const f of c.envFrom ?? []) {
    add("ConfigMap", f.configMapRef?.name);
    add("Secret", f.secretRef?.name);
  }
  for (const e of c.env ?? []) {
    if (e.value) continue;
    add("ConfigMap", e.valueFrom?.configMapKeyRef?.name);
    add("Secret", e.valueFrom?.secretKeyRef?.name);
  }
  return [...out.values()];
}

/** Fetches every object the container's env refers to; standalone (no lookup) fails with upstream's message. */
export async function loadEnvSources(pod: V1Pod, c: V1Container, lookup: EnvObjectLookup | undefined): Promise<EnvSources> {
  const ns = pod.metadata?.namespace ?? "default";
  const sources: EnvSources = { configMaps: new Map(), secrets: new Map() };
  for (const ref of envReferences(c)) {
    if (!lookup) throw new ContainerConfigError(`couldn't get ${kindLabel(ref.kind)} ${ns}/${ref.name}, no kubeClient defined (tskubelet runs standalone, without --kubeconfig)`);
    const data = await lookup(ref.kind, ns, ref.name);
    (ref.kind === "ConfigMap" ? sources.configMaps : sources.secrets).set(ref.name, data);
  }
  return sources;
}

/** One object from the sources, or the upstream error when it is missing and not optional (undefined: skip). */
function sourceObject(ctx: EnvContext, kind: EnvObjectKind, ref: { ns: string; name: string; optional: boolean }): Record<string, string> | undefined {
  const map = kind === "ConfigMap" ? ctx.sources?.configMaps : ctx.sources?.secrets;
  if (!map?.has(ref.name)) throw new ContainerConfigError(`couldn't get ${kindLabel(kind)} ${ref.ns}/${ref.name}, no kubeClient defined`);
  const data = map.get(ref.name);
  if (data === undefined && !ref.optional) throw new ContainerConfigError(`${kind.toLowerCase()} "${ref.name}" not found`);
  return data;
}

/** A key of a ConfigMap or Secret, or undefined when it (or the object) is missing and optional. */
function keyValue(ctx: EnvContext, kind: EnvObjectKind, ref: { ns: string; name: string; key: string; optional: boolean }): string | undefined {
  const data = sourceObject(ctx, kind, ref);
  if (data === undefined) return undefined;
  const v = data[ref.key];
  if (v === undefined && !ref.optional) throw new ContainerConfigError(`couldn't find key ${ref.key} in ${kind} ${ref.ns}/${ref.name}`);
  return v;
}

/**
 * Resolves the environment as upstream does: envFrom first (in order, prefix applied), then env in
 * order, later entries overriding earlier ones and referring to them with $(VAR). Values from
 * envFrom are taken as they are; only literal env values are expanded.
 */
export function resolveEnv(pod: V1Pod, c: V1Container, ctx: EnvContext): KeyValue[] {
  const ns = pod.metadata?.namespace ?? "default";
  const vars: Record<string, string> = {};
  const order: string[] = [];
  const set = (k: string, v: string): void => {
    if (!(k in vars)) order.push(k);
    vars[k] = v;
  };
  for (const f of c.envFrom ?? []) {
    const kind: EnvObjectKind | undefined = f.configMapRef ? "ConfigMap" : f.secretRef ? "Secret" : undefined;
    const ref = f.configMapRef ?? f.secretRef;
    if (!kind || !ref) continue;
    const data = sourceObject(ctx, kind, { ns, name: ref.name ?? "", optional: ref.optional === true });
    for (const [k, v] of Object.entries(data ?? {})) set(`${f.prefix ?? ""}${k}`, v);
  }
  for (const e of c.env ?? []) {
    const value = envValue(pod, c, e, { ...ctx, ns, vars });
    if (value !== undefined) set(e.name, value);
  }
  return order.map((k) => ({ key: k, value: vars[k] ?? "" }));
}

type EnvVar = NonNullable<V1Container["env"]>[number];

function envValue(pod: V1Pod, c: V1Container, e: EnvVar, ctx: EnvContext & { ns: string; vars: Record<string, string> }): string | undefined {
  const from = e.valueFrom;
  if (e.value || !from) return expandVars(e.value ?? "", ctx.vars);
  if (from.fieldRef) {
    const v = fieldRefValue(pod, from.fieldRef.fieldPath, ctx);
    if (v === undefined) throw new ContainerConfigError(`unsupported fieldPath: ${from.fieldRef.fieldPath}`);
    return v;
  }
  if (from.resourceFieldRef) return resourceFieldValue(pod, c, from.resourceFieldRef, ctx.allocatable);
  if (from.configMapKeyRef) {
    const r = from.configMapKeyRef;
    return keyValue(ctx, "ConfigMap", { ns: ctx.ns, name: r.name ?? "", key: r.key, optional: r.optional === true });
  }
  if (from.secretKeyRef) {
    const r = from.secretKeyRef;
    return keyValue(ctx, "Secret", { ns: ctx.ns, name: r.name ?? "", key: r.key, optional: r.optional === true });
  }
  return "";
}

export function fieldRefValue(pod: V1Pod, path: string, ctx: Pick<EnvContext, "podIPs" | "hostIPs">): string | undefined {
  const m = pod.metadata ?? {};
  const sub = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (sub) return (sub[1] === "labels" ? m.labels : m.annotations)?.[sub[2] ?? ""] ?? "";
  switch (path) {
    case "metadata.name":
      return m.name ?? "";
    case "metadata.namespace":
      return m.namespace ?? "";
    case "metadata.uid":
      return m.uid ?? "";
    case "metadata.labels":
      return formatMap(m.labels);
    case "metadata.annotations":
      return formatMap(m.annotations);
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "";
    case "status.podIP":
      return ctx.podIPs[0] ?? "";
    case "status.podIPs":
      return ctx.podIPs.join(",");
    case "status.hostIP":
      return ctx.hostIPs[0] ?? "";
    case "status.hostIPs":
      return ctx.hostIPs.join(",");
    default:
      return undefined;
  }
}

/**
 * The value of a resourceFieldRef (limits.cpu, requests.memory, limits.hugepages-2Mi, ...) divided
 * by its divisor and rounded up, as upstream computes it. A missing cpu, memory or ephemeral-storage
 * limit is the node's allocatable; a missing request is 0.
 */
export function resourceFieldValue(pod: V1Pod, self: V1Container, ref: V1ResourceFieldSelector, allocatable: NodeAllocatable = {}): string {
  const name = ref.containerName || self.name;
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const c = all.find((x) => x.name === name) ?? (name === self.name ? self : undefined);
  if (!c) throw new ContainerConfigError(`container ${name} not found in pod ${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`);
  const m = /^(limits|requests)\.(cpu|memory|ephemeral-storage|hugepages-.+)$/.exec(ref.resource);
  if (!m) throw new ContainerConfigError(`unsupported container resource : ${ref.resource}`);
  const kind = m[1] === "limits" ? "limits" : "requests";
  const res = m[2] ?? "";
  const value = resourceAmount(c, { kind, res }, allocatable);
  const divisorText = ref.divisor === undefined || ref.divisor === "" ? "1" : String(ref.divisor);
  const divisor = parseQuantity(divisorText);
  if (divisor === undefined || divisor <= 0) throw new ContainerConfigError(`invalid divisor ${JSON.stringify(divisorText)} for ${ref.resource}`);
  // cpu in millicores, bytes as whole numbers, each rounded up first as resource.Quantity does.
  const scale = res === "cpu" ? 1000 : 1;
  const up = (x: number): number => Math.ceil(x * scale - 1e-9);
  return String(Math.ceil(up(value) / up(divisor)));
}

/** A container's limit (default: the node's allocatable) or request (default: its limit, else 0). */
function resourceAmount(c: V1Container, what: { kind: "limits" | "requests"; res: string }, allocatable: NodeAllocatable): number {
  const get = (map: Record<string, unknown> | undefined): number | undefined => {
    const q = map?.[what.res];
    return typeof q === "string" || typeof q === "number" ? parseQuantity(q) : undefined;
  };
  const limit = get(c.resources?.limits);
  if (what.kind === "requests") return get(c.resources?.requests) ?? limit ?? 0;
  if (limit !== undefined) return limit;
  return what.res.startsWith("hugepages-") ? 0 : (allocatable[what.res as keyof NodeAllocatable] ?? 0);
}

/** key="value" lines sorted by key, as the downward API formats labels and annotations. */
export function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(m?.[k] ?? "")}`)
    .join("\n");
}
