/**
 * Checks src/cri/proto/api.proto against the CRI descriptor compiled into the installed containerd.
 *
 * containerd's Go code registers each .proto as a gzipped FileDescriptorProto inside the binary;
 * the one named api.proto in package runtime.v1 is the CRI API containerd serves. Every message,
 * field (name, number, type, label), enum value and RPC in our proto must match it. The few fields
 * newer than the cri-api that containerd 1.6 vendors are listed below; they were checked by hand
 * against k8s.io/cri-api pkg/apis/runtime/v1/api.proto.
 */
import assert from "node:assert/strict";
import { accessSync, constants, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { gunzipSync, constants as zc } from "node:zlib";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath } from "../../src/cri/transport.js";

/** Fields in our proto that containerd 1.6.20's vendored cri-api predates (numbers from upstream). */
const NEWER_THAN_RUNTIME = new Set([
  "ImageSpec.user_specified_image", // 18
  "ImageSpec.runtime_handler", // 19
  "ContainerEventResponse.pod_sandbox_status", // 4
  "ContainerEventResponse.containers_statuses", // 5
  "ImageFsInfoResponse.container_filesystems", // 2
]);

function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/bin", "/usr/local/bin"])) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** The gzipped runtime.v1 FileDescriptorProto embedded in a Go binary, or undefined. */
function embeddedCriDescriptor(binary: string): Buffer | undefined {
  const buf = readFileSync(binary);
  // Go's gzip writer: no name, mtime 0, best compression, OS unknown.
  const magic = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0x02, 0xff]);
  const marker = Buffer.from("\n\tapi.proto\x12\nruntime.v1\x1a", "latin1");
  for (let i = buf.indexOf(magic); i >= 0; i = buf.indexOf(magic, i + 1)) {
    try {
      const out = gunzipSync(buf.subarray(i, i + 512 * 1024), { finishFlush: zc.Z_SYNC_FLUSH });
      if (out.subarray(0, marker.length).equals(marker)) return out;
    } catch {
      // not a complete gzip stream: keep scanning
    }
  }
  return undefined;
}

function asFileDescriptorSet(fileDescriptorProto: Buffer): Buffer {
  const len: number[] = [];
  let n = fileDescriptorProto.length;
  while (n > 127) {
    len.push((n & 127) | 128);
    n >>>= 7;
  }
  len.push(n);
  return Buffer.concat([Buffer.from([0x0a, ...len]), fileDescriptorProto]); // field 1 (file), length-delimited
}

interface Field {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}
interface Message {
  name: string;
  field: Field[];
  nestedType: Message[];
  enumType: { name: string; value: { name: string; number: number }[] }[];
  options?: { mapEntry?: boolean } | null;
}

const simple = (typeName: string): string => typeName.split(".").pop() ?? typeName;

function mapEntry(m: Message, f: Field): Message | undefined {
  return m.nestedType.find((n) => n.name === simple(f.typeName) && n.options?.mapEntry === true);
}

const binary = findBinary("containerd");
const descriptor = binary === undefined ? undefined : embeddedCriDescriptor(binary);
const skip = binary === undefined ? "containerd is not installed" : descriptor === undefined ? `no runtime.v1 descriptor in ${binary}` : false;

type EnumValues = { value: { name: string; number: number }[] };

function compareEnum(name: string, mine: EnumValues, ref: EnumValues | undefined, problems: string[]): void {
  for (const v of mine.value) {
    const tv = ref?.value.find((x) => x.name === v.name);
    if (tv?.number !== v.number) problems.push(`${name}.${v.name} = ${v.number}, containerd has ${tv?.number}`);
  }
}

function compareField(mine: Message, ref: Message, f: Field, problems: string[]): boolean {
  const key = `${mine.name}.${f.name}`;
  const g = ref.field.find((x) => x.name === f.name);
  if (!g) {
    if (!NEWER_THAN_RUNTIME.has(key)) problems.push(`${key} (= ${f.number}) is not in containerd's ${ref.name}`);
    return false;
  }
  if (f.number !== g.number) problems.push(`${key}: number ${f.number}, containerd has ${g.number}`);
  if (f.type !== g.type) problems.push(`${key}: type ${f.type}, containerd has ${g.type}`);
  if (f.label !== g.label) problems.push(`${key}: label ${f.label}, containerd has ${g.label}`);
  const myEntry = mapEntry(mine, f);
  const theirEntry = mapEntry(ref, g);
  if (myEntry || theirEntry) {
    const kv = (m: Message | undefined): string => (m ? m.field.map((x) => `${x.number}:${x.type}:${simple(x.typeName)}`).join(",") : "not a map");
    if (kv(myEntry) !== kv(theirEntry)) problems.push(`${key}: map ${kv(myEntry)}, containerd has ${kv(theirEntry)}`);
  } else if (simple(f.typeName) !== simple(g.typeName)) {
    problems.push(`${key}: type ${f.typeName}, containerd has ${g.typeName}`);
  }
  return true;
}

function compareMessage(mine: Message, ref: Message, problems: string[]): number {
  let checked = 0;
  for (const f of mine.field) if (compareField(mine, ref, f, problems)) checked += 1;
  for (const en of mine.enumType) compareEnum(`${mine.name}.${en.name}`, en, ref.enumType.find((x) => x.name === en.name), problems);
  return checked;
}

function compareService(name: string, mine: protoLoader.ServiceDefinition, ref: protoLoader.ServiceDefinition, problems: string[]): void {
  const sig = (x: protoLoader.MethodDefinition<object, object>): string =>
    `${x.path} ${x.requestStream ? "stream " : ""}${(x.requestType.type as Message).name} -> ${x.responseStream ? "stream " : ""}${(x.responseType.type as Message).name}`;
  for (const [rpc, m] of Object.entries(mine)) {
    const o = ref[rpc];
    if (!o) problems.push(`${name}/${rpc} is not in containerd's CRI`);
    else if (sig(m) !== sig(o)) problems.push(`${name}/${rpc}: ${sig(m)}, containerd has ${sig(o)}`);
  }
}

void test("api.proto matches the CRI descriptor compiled into containerd", { skip }, () => {
  assert.ok(descriptor);
  const opts = { keepCase: true };
  const theirs = protoLoader.loadFileDescriptorSetFromBuffer(asFileDescriptorSet(descriptor), opts);
  const ours = protoLoader.loadSync(protoPath(), opts);
  const problems: string[] = [];
  let fieldsChecked = 0;
  for (const [fullName, def] of Object.entries(ours)) {
    const other = theirs[fullName];
    if (!other) problems.push(`${fullName} is not in containerd's CRI`);
    else if (!("format" in def) || !("format" in other)) {
      if (!("format" in def) && !("format" in other)) compareService(fullName, def, other, problems);
      else problems.push(`${fullName}: a service on one side only`);
    } else if (def.format === "Protocol Buffer 3 DescriptorProto") {
      fieldsChecked += compareMessage(def.type as Message, other.type as Message, problems);
    } else {
      compareEnum(fullName, def.type as EnumValues, other.type as EnumValues, problems);
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(fieldsChecked > 250, `only ${fieldsChecked} fields were compared`);
});
