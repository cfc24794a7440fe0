/**
 * Walks the schema over a raw (parsed YAML/JSON) object: fills defaults, checks kinds and values,
 * and collects unknown field names. Every error names the field path and what was expected.
 */
import { parseDuration, formatDuration } from "./duration.js";
import { parseQuantity } from "./quantity.js";
import { EVICTION_SIGNALS, KNOWN_BUT_IGNORED, type FieldSpec, type Schema } from "./schema.js";

export interface ApplyResult {
  value: Record<string, unknown>;
  errors: string[];
  unknown: string[];
}

export function applySchema(schema: Schema, raw: Record<string, unknown>, prefix = ""): ApplyResult {
  const out: Record<string, unknown> = {};
  const errors: string[] = [];
  const unknown: string[] = [];
  for (const key of Object.keys(raw)) {
    if (!(key in schema) && !(prefix === "" && KNOWN_BUT_IGNORED.has(key))) unknown.push(prefix + key);
  }
  for (const [key, spec] of Object.entries(schema)) {
    const path = prefix + key;
    const given = raw[key];
    if (spec.kind === "object") {
      const sub = given === undefined || given === null ? {} : given;
      if (!isPlainObject(sub)) {
        errors.push(`${path}: expected an object, got ${describe(given)}`);
        out[key] = applySchema(spec.fields, {}, path + ".").value;
        continue;
      }
      const r = applySchema(spec.fields, sub, path + ".");
      out[key] = r.value;
      errors.push(...r.errors);
      unknown.push(...r.unknown);
      continue;
    }
    if (given === undefined || given === null) {
      out[key] = structuredClone(spec.default);
      continue;
    }
    const r = convertField(spec, given, "file");
    if (typeof r === "string") {
      errors.push(`${path}: expected ${r}, got ${describe(given)}`);
      out[key] = structuredClone(spec.default);
    } else {
      out[key] = r.ok;
    }
  }
  return { value: out, errors, unknown };
}

/**
 * Converts one value to the field's internal form, or says what was expected. File values are
 * typed strictly (a string is not a number); flag values are strings and are parsed.
 */
export function convertField(spec: Exclude<FieldSpec, { kind: "object" }>, v: unknown, source: "file" | "flag"): { ok: unknown } | string {
  if (source === "file" && typeof v === "string" && !["string", "enum", "duration"].includes(spec.kind)) {
    return expectedForFile(spec.kind);
  }
  switch (spec.kind) {
    case "string": {
      if (typeof v !== "string") return spec.check ? "a string" : "a string";
      const bad = v === "" ? undefined : spec.check?.(v);
      return bad ? bad : { ok: v };
    }
    case "enum":
      return typeof v === "string" && spec.values.includes(v) ? { ok: v } : `one of ${spec.values.join(", ")}`;
    case "int": {
      const n = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v;
      const range = rangeText(spec.min, spec.max);
      if (typeof n !== "number" || !Number.isInteger(n)) return `an integer${range}`;
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) return `an integer${range}`;
      return { ok: n };
    }
    case "number": {
      const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isFinite(n) || (spec.min !== undefined && n < spec.min)) return `a number${rangeText(spec.min, undefined)}`;
      return { ok: n };
    }
    case "bool": {
      if (typeof v === "boolean") return { ok: v };
      if (v === "true") return { ok: true };
      if (v === "false") return { ok: false };
      return "true or false";
    }
    case "duration": {
      const ms = typeof v === "string" ? parseDuration(v) : undefined;
      return ms === undefined || ms < 0 ? "a duration such as 20s or 1m30s" : { ok: ms };
    }
    case "stringList": {
      const list = typeof v === "string" ? v.split(",").filter((s) => s !== "") : v;
      if (!Array.isArray(list) || !list.every((s): s is string => typeof s === "string")) return "a list of strings";
      for (const s of list) {
        const bad = spec.check?.(s);
        if (bad) return `a list of entries each ${bad} (bad entry ${JSON.stringify(s)})`;
      }
      return { ok: list };
    }
    case "quantityMap":
      return convertQuantityMap(spec.keys, v);
    case "evictionMap":
      return convertEvictionMap(v, spec.flagSep ?? "<");
    case "taints":
      return convertTaints(v);
  }
}

function expectedForFile(kind: string): string {
  switch (kind) {
    case "int":
      return "an integer";
    case "number":
      return "a number";
    case "bool":
      return "true or false";
    case "stringList":
      return "a list of strings";
    case "taints":
      return "a list of taints ({key, value, effect})";
    default:
      return "a map";
  }
}

function convertQuantityMap(keys: readonly string[] | undefined, v: unknown): { ok: Record<string, string> } | string {
  const map = typeof v === "string" ? parseKeyValueList(v, "=") : v;
  const what = `a map of ${keys ? keys.join("|") : "resource"} to quantities such as cpu=100m,memory=256Mi`;
  if (!isPlainObject(map)) return what;
  const out: Record<string, string> = {};
  for (const [k, q] of Object.entries(map)) {
    const text = typeof q === "number" ? String(q) : q;
    if (typeof text !== "string" || parseQuantity(text) === undefined || (keys && !keys.includes(k))) return `${what} (bad entry ${k})`;
    out[k] = text;
  }
  return { ok: out };
}

function convertEvictionMap(v: unknown, sep: string): { ok: Record<string, string> } | string {
  const map = typeof v === "string" ? parseKeyValueList(v, sep) : v;
  const what = `a map of eviction signals (${EVICTION_SIGNALS.join(", ")}) to a quantity or a percentage`;
  if (!isPlainObject(map)) return what;
  const out: Record<string, string> = {};
  for (const [k, q] of Object.entries(map)) {
    if (!(EVICTION_SIGNALS as readonly string[]).includes(k) || typeof q !== "string") return `${what} (bad entry ${k})`;
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(q);
    if (pct ? Number(pct[1]) > 100 : (parseQuantity(q) ?? -1) < 0) return `${what} (bad value ${q} for ${k})`;
    out[k] = q;
  }
  return { ok: out };
}

function convertTaints(v: unknown): { ok: unknown[] } | string {
  const what = "a list of taints key[=value]:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute";
  let list: unknown = v;
  if (typeof v === "string") {
    list = v
      .split(",")
      .filter((s) => s !== "")
      .map((s) => {
        const m = /^([^=:]+)(?:=([^:]*))?:(.+)$/.exec(s);
        return m ? { key: m[1], ...(m[2] !== undefined ? { value: m[2] } : {}), effect: m[3] } : { bad: s };
      });
  }
  if (!Array.isArray(list)) return what;
  for (const t of list) {
    if (!isPlainObject(t) || typeof t.key !== "string" || !["NoSchedule", "PreferNoSchedule", "NoExecute"].includes(String(t.effect)))
      return what;
  }
  return { ok: list };
}

/** "a=1,b=2" → {a:"1",b:"2"} (sep "=") or "memory.available<100Mi" (sep "<"). */
export function parseKeyValueList(text: string, sep: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const part of text.split(",")) {
    if (part.trim() === "") continue;
    const i = part.indexOf(sep);
    if (i <= 0) return undefined;
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** The inverse of applySchema for output (/configz): durations back to Go strings. */
export function toWire(schema: Schema, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    const v = value[key];
    if (spec.kind === "object") out[key] = toWire(spec.fields, isPlainObject(v) ? v : {});
    else if (spec.kind === "duration" && typeof v === "number") out[key] = formatDuration(v);
    else out[key] = v;
  }
  return out;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (isPlainObject(v)) return "an object";
  return `${typeof v} ${JSON.stringify(v)}`;
}

function rangeText(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return ` between ${min} and ${max}`;
  if (min !== undefined) return ` >= ${min}`;
  return "";
}
