/**
 * Validation of a Pod as tskubelet receives it (static manifests mostly; the apiserver validated API pods).
 * Each problem is a field path and a reason, worded like the API server's field errors.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";

export interface FieldProblem {
  field: string;
  reason: string;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const RESTART_POLICIES = ["Always", "OnFailure", "Never"];
const PULL_POLICIES = ["Always", "IfNotPresent", "Never"];
const PROTOCOLS = ["TCP", "UDP", "SCTP"];

/** A docker-style image reference: [host[:port]/]path[:tag][@algo:digest]. */
const IMAGE_REF =
  /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$/;

export function isValidImageReference(ref: string): boolean {
  return ref.length <= 255 + 128 && IMAGE_REF.test(ref);
}

export function validatePod(pod: V1Pod): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const add = (field: string, reason: string): void => {
    problems.push({ field, reason });
  };
  const meta = pod.metadata;
  const name = meta?.name;
  if (!name) add("metadata.name", "Required value: name or generateName is required");
  else if (!DNS1123_SUBDOMAIN.test(name) || name.length > 253) add("metadata.name", `Invalid value: ${q(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`);
  const ns = meta?.namespace;
  if (ns !== undefined && ns !== "" && (!DNS1123_LABEL.test(ns) || ns.length > 63)) add("metadata.namespace", `Invalid value: ${q(ns)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`);

  const spec = pod.spec;
  if (!spec) {
    add("spec", "Required value");
    return problems;
  }
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) add("spec.containers", "Required value");
  if (spec.restartPolicy !== undefined && !RESTART_POLICIES.includes(spec.restartPolicy)) {
    add("spec.restartPolicy", `Unsupported value: ${q(spec.restartPolicy)}: supported values: "Always", "OnFailure", "Never"`);
  }
  const grace = spec.terminationGracePeriodSeconds;
  if (grace !== undefined && (!Number.isInteger(grace) || grace < 0)) add("spec.terminationGracePeriodSeconds", `Invalid value: ${String(grace)}: must be a non-negative integer`);
  if (spec.hostNetwork !== undefined && typeof spec.hostNetwork !== "boolean") add("spec.hostNetwork", "Invalid value: must be true or false");

  const seen = new Set<string>();
  const check = (list: V1Container[] | undefined, path: string, init: boolean): void => {
    if (list === undefined) return;
    if (!Array.isArray(list)) {
      add(path, "Invalid value: must be a list");
      return;
    }
    list.forEach((c, i) => validateContainer(c, `${path}[${i}]`, { seen, add, hostNetwork: spec.hostNetwork === true, init }));
  };
  check(spec.initContainers, "spec.initContainers", true);
  check(spec.containers, "spec.containers", false);
  return problems;
}

interface ContainerCtx {
  seen: Set<string>;
  add: (field: string, reason: string) => void;
  hostNetwork: boolean;
  init: boolean;
}

function validateContainer(c: V1Container, path: string, ctx: ContainerCtx): void {
  const { add } = ctx;
  if (typeof c !== "object" || c === null) {
    add(path, "Invalid value: must be an object");
    return;
  }
  if (!c.name) add(`${path}.name`, "Required value");
  else if (!DNS1123_LABEL.test(c.name) || c.name.length > 63) add(`${path}.name`, `Invalid value: ${q(c.name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`);
  else if (ctx.seen.has(c.name)) add(`${path}.name`, `Duplicate value: ${q(c.name)}`);
  else ctx.seen.add(c.name);

  if (!c.image) add(`${path}.image`, "Required value");
  else if (typeof c.image !== "string" || !isValidImageReference(c.image)) add(`${path}.image`, `Invalid value: ${q(String(c.image))}: not a valid image reference`);
  if (c.imagePullPolicy !== undefined && !PULL_POLICIES.includes(c.imagePullPolicy)) {
    add(`${path}.imagePullPolicy`, `Unsupported value: ${q(c.imagePullPolicy)}: supported values: "Always", "IfNotPresent", "Never"`);
  }
  for (const k of ["command", "args"] as const) {
    const v = c[k];
    if (v !== undefined && (!Array.isArray(v) || !v.every((s) => typeof s === "string"))) add(`${path}.${k}`, "Invalid value: must be a list of strings");
  }
  c.env?.forEach((e, j) => {
    if (!e.name) add(`${path}.env[${j}].name`, "Required value");
    else if (!ENV_NAME.test(e.name)) add(`${path}.env[${j}].name`, `Invalid value: ${q(e.name)}: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.'`);
  });
  c.ports?.forEach((p, j) => {
    const pp = `${path}.ports[${j}]`;
    if (!isPort(p.containerPort)) add(`${pp}.containerPort`, `Invalid value: ${String(p.containerPort)}: must be between 1 and 65535, inclusive`);
    if (p.hostPort !== undefined && p.hostPort !== 0 && !isPort(p.hostPort)) add(`${pp}.hostPort`, `Invalid value: ${String(p.hostPort)}: must be between 1 and 65535, inclusive`);
    if (p.protocol !== undefined && !PROTOCOLS.includes(p.protocol)) add(`${pp}.protocol`, `Unsupported value: ${q(p.protocol)}: supported values: "SCTP", "TCP", "UDP"`);
    if (ctx.hostNetwork && p.hostPort !== undefined && p.hostPort !== 0 && p.hostPort !== p.containerPort) {
      add(`${pp}.hostPort`, "Invalid value: must match `containerPort` when `hostNetwork` is true");
    }
  });
  if (ctx.init && c.restartPolicy !== undefined && c.restartPolicy !== "Always") {
    add(`${path}.restartPolicy`, `Unsupported value: ${q(c.restartPolicy)}: supported values: "Always"`);
  }
  if (!ctx.init && c.restartPolicy !== undefined) add(`${path}.restartPolicy`, "Forbidden: may not be set for non-init containers");
}

function isPort(n: unknown): boolean {
  return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65535;
}

function q(s: string): string {
  return JSON.stringify(s);
}
