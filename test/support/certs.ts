/**
 * Certificate test helpers: an in-process ECDSA CA that issues certificates with chosen validity,
 * and a fake apiserver (an ApiClient) that keeps CertificateSigningRequests, lets the test approve,
 * deny or fail them (or approve automatically), and can be made unreachable.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createPrivateKey, webcrypto } from "node:crypto";
import type { ApiClient, ApiRequest, WatchEvent } from "../../src/api/client.js";
import { ApiError } from "../../src/api/client.js";
import type { CsrObject } from "../../src/certs/index.js";

x509.cryptoProvider.set(webcrypto);
const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

export interface EcCA {
  certPem: string;
  keys: webcrypto.CryptoKeyPair;
  cert: x509.X509Certificate;
}

async function pkcs8Pem(k: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", k));
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ type: "sec1", format: "pem" }).toString();
}

export async function makeEcCA(nowMs: number): Promise<EcCA> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: [{ CN: ["test-ca"] }],
    notBefore: new Date(nowMs - 86_400_000),
    notAfter: new Date(nowMs + 10 * 365 * 86_400_000),
    keys,
    signingAlgorithm: EC,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { certPem: cert.toString("pem"), keys, cert };
}

let serial = 100;

/** Signs `publicKey` (or a fresh key) with the CA for [notBefore, notAfter]. */
export async function issue(
  ca: EcCA,
  o: { cn: string; orgs?: string[]; notBefore: number; notAfter: number; publicKey?: x509.PublicKey; sans?: x509.JsonGeneralName[] },
): Promise<{ certPem: string; keyPem: string }> {
  let keyPem = "";
  let publicKey: x509.PublicKey | webcrypto.CryptoKey;
  if (o.publicKey) publicKey = o.publicKey;
  else {
    const keys = await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"]);
    publicKey = keys.publicKey;
    keyPem = await pkcs8Pem(keys.privateKey);
  }
  const subject: Record<string, string[]>[] = [...(o.orgs ?? []).map((x) => ({ O: [x] })), { CN: [o.cn] }];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16),
    subject,
    issuer: ca.cert.subject,
    notBefore: new Date(o.notBefore),
    notAfter: new Date(o.notAfter),
    publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: EC,
    extensions: o.sans ? [new x509.SubjectAlternativeNameExtension(o.sans)] : [],
  });
  return { certPem: cert.toString("pem"), keyPem };
}

export interface FakeCsrApi extends ApiClient {
  csrs: Map<string, CsrObject>;
  /** Every POST of a CSR (also failed ones), with the clock time. */
  posts: { atMs: number; name: string; generateName?: string }[];
  reloads: number;
  /** Clock times of CSR requests refused while down. */
  failed: number[];
  /** When set, every request fails as if the apiserver were down. */
  down: boolean;
  /** Approve and sign every new CSR at once, with this lifetime. */
  autoApproveLifetimeMs: number | undefined;
  approve(name: string, lifetimeMs: number): Promise<void>;
  deny(name: string, reason: string): void;
  events: unknown[];
}

/** A fake apiserver for CSRs. `now` gives the clock for issued certificates. */
export function fakeCsrApi(ca: EcCA, now: () => number): FakeCsrApi {
  let seq = 0;
  const api: FakeCsrApi = {
    csrs: new Map(),
    posts: [],
    reloads: 0,
    failed: [],
    down: false,
    autoApproveLifetimeMs: undefined,
    events: [],
    server: "https://fake:6443/",
    identity: () => "fake",
    async approve(name, lifetimeMs) {
      const csr = api.csrs.get(name);
      if (!csr) throw new Error(`no CSR ${name}`);
      const req = new x509.Pkcs10CertificateRequest(Buffer.from(csr.spec.request, "base64").toString("utf8"));
      const cnMatch = /CN=([^,]+)/.exec(req.subject);
      const sanExt = req.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
      const { certPem } = await issue(ca, {
        cn: cnMatch?.[1] ?? "x",
        orgs: ["system:nodes"],
        notBefore: now(),
        notAfter: now() + lifetimeMs,
        publicKey: req.publicKey,
        ...(sanExt ? { sans: sanExt.names.toJSON() } : {}),
      });
      csr.status = { conditions: [{ type: "Approved", status: "True", reason: "Test" }], certificate: Buffer.from(certPem).toString("base64") };
    },
    deny(name, reason) {
      const csr = api.csrs.get(name);
      if (csr) csr.status = { conditions: [{ type: "Denied", status: "True", reason, message: "denied by the test" }] };
    },
    async request<T>(req: ApiRequest): Promise<T> {
      await Promise.resolve();
      if (api.down && req.path.includes("certificatesigningrequests")) api.failed.push(now());
      if (api.down) throw new ApiError(0, "Unreachable", `${req.method} ${req.path}: connect ECONNREFUSED`);
      if (req.method === "POST" && req.path.endsWith("/certificatesigningrequests")) {
        const body = req.body as CsrObject & { metadata: { name?: string; generateName?: string } };
        const name = body.metadata.name ?? `${body.metadata.generateName ?? ""}${(seq++).toString(36).padStart(5, "0")}`;
        api.posts.push({ atMs: now(), name, ...(body.metadata.generateName ? { generateName: body.metadata.generateName } : {}) });
        if (api.csrs.has(name)) throw new ApiError(409, "AlreadyExists", `certificatesigningrequests "${name}" already exists`);
        const stored: CsrObject = { metadata: { name, uid: `uid-${name}` }, spec: body.spec };
        api.csrs.set(name, stored);
        if (api.autoApproveLifetimeMs !== undefined) await api.approve(name, api.autoApproveLifetimeMs);
        return structuredClone(stored) as T;
      }
      const m = /\/certificatesigningrequests\/([^/]+)$/.exec(req.path);
      if (req.method === "GET" && m) {
        const csr = api.csrs.get(m[1] ?? "");
        if (!csr) throw new ApiError(404, "NotFound", "not found");
        return structuredClone(csr) as T;
      }
      if (req.method === "POST" && req.path.endsWith("/events")) {
        api.events.push(req.body);
        return {} as T;
      }
      throw new ApiError(404, "NotFound", `fake: ${req.method} ${req.path}`);
    },
    watch<T>(_req: Omit<ApiRequest, "method" | "body">, _on: (e: WatchEvent<T>) => void): Promise<void> {
      return Promise.reject(new Error("fake: no watch"));
    },
    reload() {
      api.reloads++;
      return Promise.resolve();
    },
    close: () => undefined,
  };
  return api;
}

/** Polls `cond` in real time (async I/O inside the code under test needs real time to finish). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function kubeconfigYaml(o: { server: string; caPem: string; certPem?: string; keyPem?: string; token?: string }): string {
  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  const user = o.token !== undefined ? `    token: ${o.token}` : `    client-certificate-data: ${b64(o.certPem ?? "")}\n    client-key-data: ${b64(o.keyPem ?? "")}`;
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: c",
    "  cluster:",
    `    server: ${o.server}`,
    `    certificate-authority-data: ${b64(o.caPem)}`,
    "users:",
    "- name: u",
    "  user:",
    user,
    "contexts:",
    "- name: x",
    "  context:",
    "    cluster: c",
    "    user: u",
    "current-context: x",
    "",
  ].join("\n");
}
