/**
 * Configuration: the KubeletConfiguration file, overridden by flags, defaulted and validated.
 * Public surface: loadConfiguration, configz, and the types.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, hostname as osHostname } from "node:os";
import { isIP } from "node:net";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError, errorMessage } from "../util/errors.js";
import { applySchema, convertField, isPlainObject, parseKeyValueList, toWire } from "./apply.js";
import { CONFIG_FLAGS, FLAG_ONLY } from "./flags.js";
import { kubeletConfigSchema, type FieldSpec } from "./schema.js";
import type { KubeletConfiguration, KubeletFlags, LoadedConfiguration } from "./types.js";
import { formatDuration as fmtDuration } from "./duration.js";

export type { KubeletConfiguration, KubeletFlags, LoadedConfiguration, Taint } from "./types.js";
export { CONFIG_FLAGS, FLAG_ONLY } from "./flags.js";
export { parseDuration, formatDuration } from "./duration.js";
export { parseQuantity, cpuMillis, formatBytes } from "./quantity.js";

export const CONFIG_API_VERSION = "kubelet.config.k8s.io/v1beta1";
export const CONFIG_KIND = "KubeletConfiguration";

export interface LoadOptions {
  /** Flags the user set explicitly, by upstream flag name without dashes (e.g. "pod-manifest-path"). */
  flags: Record<string, string>;
  readFile?: (path: string) => string;
  hostname?: () => string;
}

export function loadConfiguration(opts: LoadOptions): LoadedConfiguration {
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  const warnings: string[] = [];
  const errors: string[] = [];

  const flags = flagOnlySettings(opts.flags, errors);
  let raw: Record<string, unknown> = {};
  if (flags.config !== "") raw = readConfigFile(flags.config, readFile);

  if (flags.config !== "") resolveRelativePaths(raw, dirname(resolve(flags.config)));
  const applied = applySchema(kubeletConfigSchema, raw);
  for (const e of applied.errors) errors.push(`${flags.config}: ${e}`);
  if (applied.unknown.length > 0) {
    warnings.push(`${flags.config}: unknown KubeletConfiguration field(s) ignored: ${applied.unknown.join(", ")}`);
  }
  const cfg = applied.value;

  if (flags.config === "") applyLegacyDefaults(cfg);
  // Upstream: an explicitly set nodeStatusUpdateFrequency is also the report frequency's default.
  if (raw.nodeStatusReportFrequency === undefined && raw.nodeStatusUpdateFrequency !== undefined) {
    cfg.nodeStatusReportFrequency = cfg.nodeStatusUpdateFrequency;
  }

  for (const f of CONFIG_FLAGS) {
    const given = opts.flags[f.flag];
    if (given === undefined) continue;
    const spec = specAt(f.path);
    const r = convertField(spec, f.bool && given === "" ? "true" : given, "flag");
    if (typeof r === "string") errors.push(`flag --${f.flag}: expected ${r}, got ${JSON.stringify(given)}`);
    else setPath(cfg, f.path, r.ok);
  }

  const config = cfg as unknown as KubeletConfiguration;
  errors.push(...crossFieldErrors(config, flags));
  if (errors.length > 0) throw new ConfigError(`invalid configuration:\n  ${errors.join("\n  ")}`);

  if (flags.certDir === "") flags.certDir = `${flags.rootDir}/pki`;
  const nodeName = (flags.hostnameOverride || (opts.hostname ?? osHostname)()).trim().toLowerCase();
  return { config, flags, nodeName, warnings };
}

/** The JSON /configz serves: {"kubeletconfig": {...}} with durations as Go strings. */
export function configz(config: KubeletConfiguration): { kubeletconfig: Record<string, unknown> } {
  return { kubeletconfig: toWire(kubeletConfigSchema, config as unknown as Record<string, unknown>) };
}

function readConfigFile(path: string, readFile: (p: string) => string): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${errorMessage(err)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { version: "1.1" });
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML or JSON: ${errorMessage(err)}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isPlainObject(doc)) throw new ConfigError(`config file ${path}: expected a KubeletConfiguration object`);
  if (doc.kind !== CONFIG_KIND || doc.apiVersion !== CONFIG_API_VERSION) {
    throw new ConfigError(
      `config file ${path}: expected apiVersion ${CONFIG_API_VERSION} and kind ${CONFIG_KIND}, got apiVersion ${JSON.stringify(doc.apiVersion)} kind ${JSON.stringify(doc.kind)}`,
    );
  }
  return doc;
}

/** Upstream resolves these file paths of the config file relative to the file's own directory. */
const RELATIVE_PATH_FIELDS = ["staticPodPath", "tlsCertFile", "tlsPrivateKeyFile", "resolvConf", "authentication.x509.clientCAFile"];

function resolveRelativePaths(raw: Record<string, unknown>, base: string): void {
  for (const path of RELATIVE_PATH_FIELDS) {
    const parts = path.split(".");
    let holder: unknown = raw;
    for (const p of parts.slice(0, -1)) holder = isPlainObject(holder) ? holder[p] : undefined;
    const key = parts[parts.length - 1] ?? "";
    if (!isPlainObject(holder)) continue;
    const v = holder[key];
    if (typeof v === "string" && v !== "" && !isAbsolute(v)) holder[key] = resolve(base, v);
  }
}

/** What the upstream kubelet defaults differently when it runs on flags alone (no --config). */
function applyLegacyDefaults(cfg: Record<string, unknown>): void {
  cfg.readOnlyPort = 10255;
  cfg.cadvisorPort = 4194;
  setPath(cfg, "authentication.anonymous.enabled", true);
  setPath(cfg, "authentication.webhook.enabled", false);
  setPath(cfg, "authorization.mode", "AlwaysAllow");
}

/** --max-parallel-pod-starts when not given: enough to keep a runtime busy on every core. */
const DEFAULT_POD_STARTS_PER_CORE = 3;

function flagOnlySettings(given: Record<string, string>, errors: string[]): KubeletFlags {
  const out: Record<string, unknown> = {};
  for (const f of FLAG_ONLY) out[f.key] = given[f.flag] ?? f.default;
  const labels = parseKeyValueList(String(out.nodeLabels), "=");
  if (labels === undefined) errors.push(`flag --node-labels: expected key=value pairs separated by commas, got ${JSON.stringify(out.nodeLabels)}`);
  out.nodeLabels = labels ?? {};
  for (const key of Object.keys(labels ?? {})) {
    if (!nodeLabelAllowed(key)) {
      errors.push(
        `flag --node-labels: unknown 'kubernetes.io' or 'k8s.io' label ${JSON.stringify(key)}: only kubelet.kubernetes.io/*, node.kubernetes.io/* and the well-known labels may be set by the kubelet`,
      );
    }
  }
  const starts = String(out.maxParallelPodStarts);
  out.maxParallelPodStarts = starts === "" ? DEFAULT_POD_STARTS_PER_CORE * availableParallelism() : Number(starts);
  if (!/^\d+$/.test(starts) && starts !== "") errors.push(`flag --max-parallel-pod-starts: expected a whole number (0 for no limit), got ${JSON.stringify(starts)}`);
  if (out.nodeIP !== "" && !String(out.nodeIP).split(",").every((ip) => isIP(ip) !== 0)) {
    errors.push(`flag --node-ip: expected an IP address (or two, comma-separated, for dual-stack), got ${JSON.stringify(out.nodeIP)}`);
  }
  return out as unknown as KubeletFlags;
}

const WELL_KNOWN_NODE_LABELS = new Set([
  "kubernetes.io/hostname",
  "kubernetes.io/os",
  "kubernetes.io/arch",
  "beta.kubernetes.io/os",
  "beta.kubernetes.io/arch",
  "beta.kubernetes.io/instance-type",
  "node.kubernetes.io/instance-type",
  "topology.kubernetes.io/zone",
  "topology.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "failure-domain.beta.kubernetes.io/region",
]);

/** Upstream allows labels in kubernetes.io / k8s.io only from a fixed set and two namespaces. */
export function nodeLabelAllowed(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash < 0) return true;
  const prefix = key.slice(0, slash);
  const restricted = prefix === "kubernetes.io" || prefix === "k8s.io" || prefix.endsWith(".kubernetes.io") || prefix.endsWith(".k8s.io");
  if (!restricted) return true;
  if (WELL_KNOWN_NODE_LABELS.has(key)) return true;
  return prefix === "kubelet.kubernetes.io" || prefix.endsWith(".kubelet.kubernetes.io") || prefix === "node.kubernetes.io" || prefix.endsWith(".node.kubernetes.io");
}

function crossFieldErrors(c: KubeletConfiguration, f: KubeletFlags): string[] {
  const errs: string[] = [];
  if (c.imageGCLowThresholdPercent > c.imageGCHighThresholdPercent) {
    errs.push(`imageGCLowThresholdPercent (${c.imageGCLowThresholdPercent}) must not be greater than imageGCHighThresholdPercent (${c.imageGCHighThresholdPercent})`);
  }
  if (c.imageMaximumGCAge !== 0 && c.imageMaximumGCAge < c.imageMinimumGCAge) {
    errs.push(`imageMaximumGCAge (${fmtDuration(c.imageMaximumGCAge)}) must not be less than imageMinimumGCAge (${fmtDuration(c.imageMinimumGCAge)})`);
  }
  if (c.serializeImagePulls && c.maxParallelImagePulls > 1) {
    errs.push(`maxParallelImagePulls (${c.maxParallelImagePulls}) cannot be larger than 1 unless serializeImagePulls (--serialize-image-pulls) is set to false`);
  }
  if (c.fileCheckFrequency <= 0) errs.push("fileCheckFrequency: expected a positive duration");
  if (c.runtimeRequestTimeout <= 0) errs.push("runtimeRequestTimeout: expected a positive duration");
  if (c.nodeStatusUpdateFrequency <= 0) errs.push("nodeStatusUpdateFrequency: expected a positive duration");
  if ((c.tlsCertFile === "") !== (c.tlsPrivateKeyFile === "")) errs.push("tlsCertFile and tlsPrivateKeyFile must be set together");
  if (!f.rootDir.startsWith("/")) errs.push(`flag --root-dir: expected an absolute path, got ${JSON.stringify(f.rootDir)}`);
  return errs;
}

function specAt(path: string): Exclude<FieldSpec, { kind: "object" }> {
  let schema = kubeletConfigSchema;
  const parts = path.split(".");
  for (let i = 0; i < parts.length; i++) {
    const spec = schema[parts[i] ?? ""];
    if (!spec) break;
    if (spec.kind === "object") schema = spec.fields;
    else if (i === parts.length - 1) return spec;
  }
  throw new Error(`internal: no schema field at ${path}`);
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (!isPlainObject(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1] ?? ""] = value;
}
