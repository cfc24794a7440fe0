/**
 * The typed boundary between tskubelet's CRI types (src/cri/types.ts) and what
 * @grpc/proto-loader hands over (loaded with longs: String, enums: String, defaults: true).
 *
 * The rules, driven by the proto's own descriptors so no 64-bit field can be forgotten:
 * - every int64/uint64 (plain, repeated or inside a map value) is a `bigint` on our side and a
 *   decimal string on the wire side: exact in both directions, never a lossy JS number;
 * - an absent sub-message (proto-loader's `null`) becomes an absent property;
 * - `bytes` become Buffers.
 */
import type { PackageDefinition } from "@grpc/proto-loader";

type FieldKind = "int64" | "uint64" | "bytes" | "message" | "other";

interface FieldSchema {
  name: string;
  kind: FieldKind;
  repeated: boolean;
  /** For message fields: the message's fully qualified name. */
  typeName?: string;
  /** For map fields: how the map's values are converted. */
  mapValue?: { kind: FieldKind; typeName?: string };
}

export type MessageSchema = Map<string, FieldSchema>;
export type Schemas = Map<string, MessageSchema>;

// ---- reading the descriptors proto-loader exposes as `type: object` ----

interface FieldDescriptorLike {
  name: string;
  label: string;
  type: string;
  typeName: string;
}

interface DescriptorLike {
  name: string;
  field: FieldDescriptorLike[];
  nestedType: DescriptorLike[];
  options?: { mapEntry?: boolean } | null;
}

function isDescriptorLike(v: unknown): v is DescriptorLike {
  if (typeof v !== "object" || v === null) return false;
  const d = v as Partial<DescriptorLike>;
  return typeof d.name === "string" && Array.isArray(d.field) && Array.isArray(d.nestedType);
}

const INT64_TYPES = new Set(["TYPE_INT64", "TYPE_SINT64", "TYPE_SFIXED64"]);
const UINT64_TYPES = new Set(["TYPE_UINT64", "TYPE_FIXED64"]);

function kindOf(type: string): FieldKind {
  if (INT64_TYPES.has(type)) return "int64";
  if (UINT64_TYPES.has(type)) return "uint64";
  if (type === "TYPE_BYTES") return "bytes";
  if (type === "TYPE_MESSAGE") return "message";
  return "other";
}

/**
 * Builds the conversion schema for every message of `pkg` (e.g. "runtime.v1"). Message type names
 * in proto-loader's descriptors are relative; within one package with unique simple names they
 * resolve to `${pkg}.${name}`, which this checks.
 */
export function buildSchemas(def: PackageDefinition, pkg: string): Schemas {
  const schemas: Schemas = new Map();
  const resolve = (typeName: string): string => {
    const simple = typeName.replace(/^\./, "").split(".").pop() ?? typeName;
    const full = `${pkg}.${simple}`;
    if (!(full in def)) throw new Error(`CRI proto: cannot resolve message type ${typeName}`);
    return full;
  };
  for (const [fullName, entry] of Object.entries(def)) {
    if (!fullName.startsWith(`${pkg}.`) || !("format" in entry) || entry.format !== "Protocol Buffer 3 DescriptorProto") continue;
    const desc: unknown = entry.type;
    if (!isDescriptorLike(desc)) throw new Error(`CRI proto: unexpected descriptor for ${fullName}`);
    const fields: MessageSchema = new Map();
    for (const f of desc.field) {
      const kind = kindOf(f.type);
      const schema: FieldSchema = { name: f.name, kind, repeated: f.label === "LABEL_REPEATED" };
      if (kind === "message") {
        const entryType = desc.nestedType.find((n) => n.name === f.typeName && n.options?.mapEntry === true);
        if (entryType) {
          const value = entryType.field.find((x) => x.name === "value");
          const vkind = value ? kindOf(value.type) : "other";
          schema.mapValue = vkind === "message" && value ? { kind: vkind, typeName: resolve(value.typeName) } : { kind: vkind };
          schema.repeated = false;
          schema.kind = "other";
        } else {
          schema.typeName = resolve(f.typeName);
        }
      }
      fields.set(f.name, schema);
    }
    schemas.set(fullName, fields);
  }
  return schemas;
}

// ---- outgoing: our objects -> proto-loader input ----

export class WireConversionError extends Error {
  constructor(readonly path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "WireConversionError";
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

function int64Out(v: unknown, kind: "int64" | "uint64", path: string): string {
  let b: bigint;
  if (typeof v === "bigint") b = v;
  else if (typeof v === "number" && Number.isSafeInteger(v)) b = BigInt(v);
  else if (typeof v === "string" && /^-?\d+$/.test(v)) b = BigInt(v);
  else throw new WireConversionError(path, `expected a bigint, got ${typeof v} ${String(v)}`);
  const [min, max] = kind === "int64" ? [INT64_MIN, INT64_MAX] : [0n, UINT64_MAX];
  if (b < min || b > max) throw new WireConversionError(path, `${b} is out of range for ${kind}`);
  return b.toString();
}

function valueOut(v: unknown, f: { kind: FieldKind; typeName?: string }, ctx: { schemas: Schemas; path: string }): unknown {
  if (f.kind === "int64" || f.kind === "uint64") return int64Out(v, f.kind, ctx.path);
  if (f.kind === "message" && f.typeName !== undefined) return messageOut(ctx.schemas, f.typeName, v, ctx.path);
  return v;
}

/** Converts one of our request objects into what proto-loader's serializer expects. */
export function messageOut(schemas: Schemas, typeName: string, obj: unknown, path = typeName): Record<string, unknown> {
  const schema = schemas.get(typeName);
  if (!schema) throw new WireConversionError(path, `unknown message type ${typeName}`);
  if (typeof obj !== "object" || obj === null) throw new WireConversionError(path, `expected an object`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined || value === null) continue;
    const f = schema.get(key);
    if (!f) continue; // not part of the wire message (our proto omits it): nothing to send
    const at = `${path}.${key}`;
    if (f.mapValue) {
      const mv = f.mapValue;
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([k, x]) => [k, valueOut(x, mv, { schemas, path: `${at}[${k}]` })]),
      );
    } else if (f.repeated) {
      if (!Array.isArray(value)) throw new WireConversionError(at, "expected an array");
      out[key] = value.map((x: unknown, i) => valueOut(x, f, { schemas, path: `${at}[${i}]` }));
    } else {
      out[key] = valueOut(value, f, { schemas, path: at });
    }
  }
  return out;
}

// ---- incoming: proto-loader output -> our objects ----

function int64In(v: unknown): bigint {
  if (typeof v === "string" || typeof v === "number" || typeof v === "bigint") return BigInt(v);
  // A Long-like object (should not happen with longs: String, but cheap to honour).
  if (typeof v === "object" && v !== null && typeof (v as { toString?: unknown }).toString === "function") {
    return BigInt((v as { toString(): string }).toString());
  }
  return 0n;
}

function valueIn(v: unknown, f: { kind: FieldKind; typeName?: string }, schemas: Schemas): unknown {
  switch (f.kind) {
    case "int64":
    case "uint64":
      return int64In(v);
    case "bytes":
      return Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v) : Buffer.alloc(0);
    case "message":
      return f.typeName === undefined ? v : messageIn(schemas, f.typeName, v);
    default:
      return v;
  }
}

/** Converts a decoded response message into our shape (bigints, absent optionals, Buffers). */
export function messageIn<T>(schemas: Schemas, typeName: string, obj: unknown): T {
  const schema = schemas.get(typeName);
  if (!schema) throw new Error(`CRI proto: unknown message type ${typeName}`);
  const out: Record<string, unknown> = {};
  if (typeof obj !== "object" || obj === null) return out as T;
  for (const [key, value] of Object.entries(obj)) {
    if (value === null || value === undefined) continue;
    const f = schema.get(key);
    if (!f) {
      out[key] = value;
    } else if (f.mapValue) {
      const mv = f.mapValue;
      out[key] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, x]) => [k, valueIn(x, mv, schemas)]));
    } else if (f.repeated) {
      out[key] = Array.isArray(value) ? value.map((x: unknown) => valueIn(x, f, schemas)) : [];
    } else {
      out[key] = valueIn(value, f, schemas);
    }
  }
  return out as T;
}
