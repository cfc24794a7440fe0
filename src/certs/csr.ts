/**
 * Keys and CertificateSigningRequests (certificates.k8s.io/v1): ECDSA P-256 keys, PKCS#10
 * requests, upstream's deterministic bootstrap name, submitting, and waiting for Approved plus a
 * certificate (Denied, Failed, a deleted or replaced CSR, or a time limit end the wait with an error).
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createHash, createPrivateKey, createPublicKey, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import type { ApiClient } from "../api/client.js";
import { ApiError, isApiStatus } from "../api/client.js";
import type { Clock } from "../util/clock.js";
import { KubeletError } from "../util/errors.js";

x509.cryptoProvider.set(webcrypto);

export const CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet";
export const SERVING_SIGNER = "kubernetes.io/kubelet-serving";
/** Upstream's usages for an EC key: bootstrap adds key encipherment, the rotation manager does not. */
export const BOOTSTRAP_USAGES = ["digital signature", "key encipherment", "client auth"];
export const CLIENT_USAGES = ["digital signature", "client auth"];
export const SERVING_USAGES = ["digital signature", "server auth"];
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;

export interface NodeKey {
  /** "EC PRIVATE KEY" PEM (SEC 1), as upstream writes it. */
  keyPem: string;
  keys: webcrypto.CryptoKeyPair;
  spkiDer: Buffer;
}

export async function generateKey(): Promise<NodeKey> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }).export({ type: "sec1", format: "pem" }).toString();
  return { keyPem, keys, spkiDer: Buffer.from(await webcrypto.subtle.exportKey("spki", keys.publicKey)) };
}

/** Imports an EC P-256 private key PEM (SEC 1 or PKCS#8). */
export async function importKey(keyPem: string): Promise<NodeKey> {
  const priv = createPrivateKey(keyPem);
  if (priv.asymmetricKeyType !== "ec") throw new KubeletError("KeyInvalid", `expected an ECDSA P-256 key, found ${priv.asymmetricKeyType ?? "unknown"}`);
  const pkcs8 = priv.export({ type: "pkcs8", format: "der" });
  const spkiDer = createPublicKey(priv).export({ type: "spki", format: "der" });
  const privateKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, EC, true, ["sign"]);
  const publicKey = await webcrypto.subtle.importKey("spki", spkiDer, EC, true, ["verify"]);
  return { keyPem, keys: { privateKey, publicKey }, spkiDer };
}

export interface Subject {
  cn: string;
  orgs: string[];
  dnsNames?: string[];
  ips?: string[];
}

/** A PEM "CERTIFICATE REQUEST" signed with the key. */
export async function createRequest(key: NodeKey, subject: Subject): Promise<string> {
  const name: Record<string, string[]>[] = [];
  for (const o of subject.orgs) name.push({ O: [o] });
  name.push({ CN: [subject.cn] });
  const sans: x509.JsonGeneralName[] = [...(subject.dnsNames ?? []).map((v) => ({ type: "dns" as const, value: v })), ...(subject.ips ?? []).map((v) => ({ type: "ip" as const, value: v }))];
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys: key.keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : [],
  });
  return req.toString("pem");
}

/**
 * Upstream's deterministic bootstrap name: node-csr-<base64url(SHA-512/256 over base64url(field)+"|"
 * for the public key, CN, each O and each usage)>. The same key asks under the same name after a restart.
 */
export function bootstrapCsrName(spkiDer: Buffer, subject: Subject, usages: string[]): string {
  const h = createHash("sha512-256");
  const write = (data: Buffer): void => {
    h.update(data.toString("base64url"));
    h.update("|");
  };
  write(spkiDer);
  write(Buffer.from(subject.cn));
  for (const o of subject.orgs) write(Buffer.from(o));
  for (const u of usages) write(Buffer.from(u));
  return `node-csr-${h.digest("base64url")}`;
}

interface CsrCondition {
  type: string;
  status?: string;
  reason?: string;
  message?: string;
}

export interface CsrObject {
  metadata: { name: string; uid?: string };
  spec: { request: string; signerName: string; usages?: string[]; expirationSeconds?: number; username?: string };
  status?: { conditions?: CsrCondition[]; certificate?: string };
}

export interface CsrSpec {
  /** A fixed name (bootstrap) or generateName "csr-" when absent. */
  name?: string;
  requestPem: string;
  signerName: string;
  usages: string[];
  expirationSeconds?: number;
}

const CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

export class CsrRejectedError extends KubeletError {
  constructor(
    readonly csrName: string,
    readonly condition: string,
    message: string,
  ) {
    super(`Csr${condition}`, message);
    this.name = "CsrRejectedError";
  }
}

/**
 * Creates the CSR; with a fixed name that already exists (a restart), the existing one is reused
 * when it is for the same signer, else an error says so. Resolves to the CSR as stored.
 */
export async function submitCsr(api: ApiClient, spec: CsrSpec): Promise<CsrObject> {
  const body = {
    apiVersion: "certificates.k8s.io/v1",
    kind: "CertificateSigningRequest",
    metadata: spec.name !== undefined ? { name: spec.name } : { generateName: "csr-" },
    spec: {
      request: Buffer.from(spec.requestPem).toString("base64"),
      signerName: spec.signerName,
      usages: spec.usages,
      ...(spec.expirationSeconds !== undefined ? { expirationSeconds: spec.expirationSeconds } : {}),
    },
  };
  try {
    return await api.request<CsrObject>({ method: "POST", path: CSR_PATH, body });
  } catch (err) {
    if (spec.name === undefined || !isApiStatus(err, 409)) throw err;
    const existing = await api.request<CsrObject>({ method: "GET", path: `${CSR_PATH}/${spec.name}` });
    if (existing.spec.signerName !== spec.signerName) {
      throw new KubeletError("CsrConflict", `CSR ${spec.name} already exists for signer ${existing.spec.signerName}, not ${spec.signerName}`);
    }
    return existing;
  }
}

/** The `Denied` or `Failed` condition, if any, as an error. */
function rejection(csr: CsrObject): CsrRejectedError | undefined {
  for (const c of csr.status?.conditions ?? []) {
    if ((c.type === "Denied" || c.type === "Failed") && c.status !== "False") {
      const why = [c.reason, c.message].filter(Boolean).join(": ") || "no reason given";
      return new CsrRejectedError(csr.metadata.name, c.type, `certificate signing request ${csr.metadata.name} was ${c.type === "Denied" ? "denied" : "not signed (Failed)"}: ${why}`);
    }
  }
  return undefined;
}

export interface WaitOptions {
  clock: Clock;
  signal?: AbortSignal;
  /** Gives up after this long (upstream: 15 min for rotation, 1 h for bootstrap). */
  timeoutMs: number;
  pollMs?: number;
  /** Called on every poll while the CSR is still pending approval. */
  onPending?: (csr: CsrObject) => void;
}

/** Polls the CSR until it is Approved and has a certificate; resolves to the certificate PEM. */
export async function waitForCertificate(api: ApiClient, created: CsrObject, opts: WaitOptions): Promise<string> {
  const name = created.metadata.name;
  const deadline = opts.clock.now() + opts.timeoutMs;
  let csr = created;
  for (;;) {
    const rej = rejection(csr);
    if (rej) throw rej;
    if (created.metadata.uid !== undefined && csr.metadata.uid !== undefined && csr.metadata.uid !== created.metadata.uid) {
      throw new KubeletError("CsrReplaced", `certificate signing request ${name} was deleted and created again (uid changed)`);
    }
    const approved = (csr.status?.conditions ?? []).some((c) => c.type === "Approved" && c.status !== "False");
    const cert = csr.status?.certificate;
    if (approved && cert) return Buffer.from(cert, "base64").toString("utf8");
    if (!approved) opts.onPending?.(csr);
    if (opts.clock.now() >= deadline) {
      throw new KubeletError("CsrTimeout", `certificate signing request ${name} was not ${approved ? "signed" : "approved"} within ${Math.round(opts.timeoutMs / 1000)}s`);
    }
    await opts.clock.sleep(opts.pollMs ?? 2_000, opts.signal);
    try {
      csr = await api.request<CsrObject>({ method: "GET", path: `${CSR_PATH}/${name}` });
    } catch (err) {
      if (isApiStatus(err, 404)) throw new KubeletError("CsrDeleted", `certificate signing request ${name} was deleted while waiting for it`);
      if (err instanceof ApiError && err.status === 0) continue; // apiserver unreachable: keep waiting
      throw err;
    }
  }
}

/** Sorted, de-duplicated SANs from a Node's status.addresses, as upstream's serving template builds them. */
export function servingSans(addresses: { type: string; address: string }[]): { dnsNames: string[]; ips: string[] } {
  const dns = new Set<string>();
  const ips = new Set<string>();
  for (const a of addresses) {
    if (!a.address) continue;
    if (a.type === "Hostname") (isIP(a.address) ? ips : dns).add(a.address);
    else if (a.type === "InternalDNS" || a.type === "ExternalDNS") dns.add(a.address);
    else if (a.type === "InternalIP" || a.type === "ExternalIP") ips.add(a.address);
  }
  return { dnsNames: [...dns].sort(), ips: [...ips].sort() };
}
