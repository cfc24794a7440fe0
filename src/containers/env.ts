/** Container environment: literal values, the downward API's fieldRef, and $(VAR) expansion. */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { KeyValue } from "../cri/types.js";

export interface EnvContext {
  podIPs: string[];
  hostIPs: string[];
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

/** Resolves env in order, so later entries may refer to earlier ones. Unresolvable sources are skipped. */
export function resolveEnv(pod: V1Pod, c: V1Container, ctx: EnvContext): KeyValue[] {
  const vars: Record<string, string> = {};
  const order: string[] = [];
  for (const e of c.env ?? []) {
    let value: string | undefined;
    if (e.valueFrom?.fieldRef) value = fieldRefValue(pod, e.valueFrom.fieldRef.fieldPath, ctx);
    else value = expandVars(e.value ?? "", vars);
    if (value === undefined) continue;
    if (!(e.name in vars)) order.push(e.name);
    vars[e.name] = value;
  }
  return order.map((k) => ({ key: k, value: vars[k] ?? "" }));
}

export function fieldRefValue(pod: V1Pod, path: string, ctx: EnvContext): string | undefined {
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

function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(m?.[k] ?? "")}`)
    .join("\n");
}
