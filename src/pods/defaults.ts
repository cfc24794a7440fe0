/**
 * Defaulting: the API server's defaults for a Pod (applied to static pods, which never went through it),
 * and the static-pod identity upstream gives a manifest (name, UID hash, config annotations).
 */
import { createHash } from "node:crypto";
import type { V1Container, V1Pod, V1Probe } from "@kubernetes/client-node";
import { ANN_CONFIG_HASH, ANN_CONFIG_SEEN, ANN_CONFIG_SOURCE, SOURCE_FILE } from "../api/labels.js";
import { rfc3339Nano } from "../api/json.js";

export function applyApiDefaults(pod: V1Pod): void {
  const spec = pod.spec;
  if (!spec) return;
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.schedulerName ??= "default-scheduler";
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.priority ??= 0;
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) defaultContainer(c);
  pod.metadata ??= {};
  pod.metadata.namespace ||= "default";
}

function defaultContainer(c: V1Container): void {
  c.imagePullPolicy ??= defaultPullPolicy(c.image ?? "");
  c.terminationMessagePath ??= "/dev/termination-log";
  c.terminationMessagePolicy ??= "File";
  c.resources ??= {};
  for (const p of c.ports ?? []) p.protocol ??= "TCP";
  for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) if (probe) defaultProbe(probe);
  // Limits without requests: the API copies limits into requests.
  const r = c.resources;
  if (r.limits) {
    r.requests ??= {};
    for (const [k, v] of Object.entries(r.limits)) r.requests[k] ??= v;
  }
}

function defaultProbe(p: V1Probe): void {
  p.periodSeconds ??= 10;
  p.timeoutSeconds ??= 1;
  p.successThreshold ??= 1;
  p.failureThreshold ??= 3;
  p.initialDelaySeconds ??= 0;
  if (p.httpGet) {
    p.httpGet.path ??= "/";
    p.httpGet.scheme ??= "HTTP";
  }
}

/** Always for `:latest` or an untagged reference, IfNotPresent otherwise (digests count as tagged). */
export function defaultPullPolicy(image: string): "Always" | "IfNotPresent" {
  const at = image.indexOf("@");
  const named = at >= 0 ? image.slice(0, at) : image;
  const lastSlash = named.lastIndexOf("/");
  const tagAt = named.indexOf(":", lastSlash + 1);
  const tag = tagAt < 0 ? "" : named.slice(tagAt + 1);
  if (tag === "latest") return "Always";
  if (at >= 0 || tag !== "") return "IfNotPresent";
  return "Always";
}

/**
 * Gives a manifest from a file its static-pod identity: `<name>-<node>`, a UID hashed from the
 * manifest's content, the node and the file's path, and the config annotations.
 */
export function applyStaticPodDefaults(pod: V1Pod, opts: { nodeName: string; file: string; seenMs: number }): void {
  pod.metadata ??= {};
  const meta = pod.metadata;
  const uid = staticPodUID(pod, opts.nodeName, opts.file);
  meta.uid = uid;
  meta.name = `${meta.name ?? ""}-${opts.nodeName}`;
  meta.namespace ||= "default";
  meta.annotations = {
    ...meta.annotations,
    [ANN_CONFIG_HASH]: uid,
    [ANN_CONFIG_SOURCE]: SOURCE_FILE,
    [ANN_CONFIG_SEEN]: rfc3339Nano(opts.seenMs),
  };
  if (pod.spec) {
    pod.spec.nodeName = opts.nodeName;
    const tolerations = pod.spec.tolerations ?? [];
    if (!tolerations.some((t) => t.operator === "Exists" && t.effect === "NoExecute" && !t.key)) {
      tolerations.push({ operator: "Exists", effect: "NoExecute" });
    }
    pod.spec.tolerations = tolerations;
  }
  pod.status = { phase: "Pending" };
}

/** A stable UID for a manifest: the same content on the same node from the same file always maps to it. */
export function staticPodUID(pod: V1Pod, nodeName: string, file: string): string {
  const h = createHash("sha256");
  h.update(canonicalJSON(pod));
  h.update(`host:${nodeName}`);
  h.update(`file:${file}`);
  return h.digest("hex").slice(0, 32);
}

/** JSON with object keys sorted, so equal content hashes equally whatever the key order in the file. */
export function canonicalJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(",")}]`;
  if (v !== null && typeof v === "object" && !(v instanceof Date)) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJSON(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}
