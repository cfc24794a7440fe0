/**
 * Reading certificates the way an operator looks at them: PEM bundles, private keys and kubeconfigs
 * parsed into plain objects (subject, issuer, validity, SANs, key usages, key ids), with the checks
 * `tskubelet certs check` reports (key matches certificate, chain verifies against a CA bundle).
 *
 * @peculiar/x509 decodes the extensions; node:crypto does key matching and signature checks.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { X509Certificate as NodeX509, createPrivateKey, createPublicKey, webcrypto, type KeyObject } from "node:crypto";
import { existsSync, lstatSync, readFileSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { KubeletError, errorMessage } from "../util/errors.js";

x509.cryptoProvider.set(webcrypto);

export interface PemBlock {
  type: string;
  der: Buffer;
  text: string;
}

/** Splits text into its PEM blocks (anything between BEGIN/END lines). */
export function splitPem(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    const body = (m[2] ?? "").replace(/^[A-Za-z-]+:.*$/gm, "").replace(/\s+/g, "");
    out.push({ type: m[1] ?? "", der: Buffer.from(body, "base64"), text: m[0] });
  }
  return out;
}

export interface NameInfo {
  /** One "key = value" line the way `openssl x509 -subject` prints it (without "subject="). */
  text: string;
  /** Attributes in order: short name (C, O, OU, CN, …) and value. */
  attributes: { type: string; value: string }[];
}

export interface PublicKeyInfo {
  /** OpenSSL's name: rsaEncryption, id-ecPublicKey, ED25519. */
  algorithm: string;
  bits: number;
  /** prime256v1, secp384r1, secp521r1 for EC keys. */
  curve?: string;
  /** NIST name: P-256 … */
  nistCurve?: string;
}

export interface CertInfo {
  version: number;
  /** Hex, upper case, no leading zeros stripped beyond what openssl prints (as `openssl x509 -serial`). */
  serialHex: string;
  serialDecimal: string;
  /** OpenSSL's name (sha256WithRSAEncryption, ecdsa-with-SHA256). */
  signatureAlgorithm: string;
  /** cfssl's name (SHA256WithRSA, ECDSAWithSHA256). */
  cfsslSigAlg: string;
  subject: NameInfo;
  issuer: NameInfo;
  notBefore: Date;
  notAfter: Date;
  /** As openssl prints them: "Nov 28 15:53:32 2026 GMT". */
  notBeforeText: string;
  notAfterText: string;
  publicKey: PublicKeyInfo;
  /** Extension OIDs in the order the certificate carries them, with criticality. */
  extensions: { oid: string; critical: boolean }[];
  isCA: boolean;
  selfSigned: boolean;
  pathLen?: number;
  basicConstraintsCritical?: boolean;
  keyUsage: string[];
  keyUsageCritical?: boolean;
  extKeyUsage: string[];
  sans: { dns: string[]; ip: string[]; email: string[]; uri: string[] };
  /** Colon-separated upper-case hex, as openssl prints it. */
  subjectKeyId?: string;
  authorityKeyId?: string;
  /** SHA-256 fingerprint, colon-separated. */
  fingerprint256: string;
  pem: string;
}

const SIG_ALGS: Record<string, { openssl: string; cfssl: string }> = {
  "1.2.840.113549.1.1.4": { openssl: "md5WithRSAEncryption", cfssl: "MD5WithRSA" },
  "1.2.840.113549.1.1.5": { openssl: "sha1WithRSAEncryption", cfssl: "SHA1WithRSA" },
  "1.2.840.113549.1.1.11": { openssl: "sha256WithRSAEncryption", cfssl: "SHA256WithRSA" },
  "1.2.840.113549.1.1.12": { openssl: "sha384WithRSAEncryption", cfssl: "SHA384WithRSA" },
  "1.2.840.113549.1.1.13": { openssl: "sha512WithRSAEncryption", cfssl: "SHA512WithRSA" },
  "1.2.840.113549.1.1.10": { openssl: "rsassaPss", cfssl: "Unknown Signature" },
  "1.2.840.10045.4.1": { openssl: "ecdsa-with-SHA1", cfssl: "ECDSAWithSHA1" },
  "1.2.840.10045.4.3.2": { openssl: "ecdsa-with-SHA256", cfssl: "ECDSAWithSHA256" },
  "1.2.840.10045.4.3.3": { openssl: "ecdsa-with-SHA384", cfssl: "ECDSAWithSHA384" },
  "1.2.840.10045.4.3.4": { openssl: "ecdsa-with-SHA512", cfssl: "ECDSAWithSHA512" },
  "1.3.101.112": { openssl: "ED25519", cfssl: "Unknown Signature" },
};

const CURVES: Record<string, { openssl: string; nist: string; bits: number }> = {
  "1.2.840.10045.3.1.7": { openssl: "prime256v1", nist: "P-256", bits: 256 },
  "1.3.132.0.34": { openssl: "secp384r1", nist: "P-384", bits: 384 },
  "1.3.132.0.35": { openssl: "secp521r1", nist: "P-521", bits: 521 },
};

const EKU_NAMES: Record<string, string> = {
  "1.3.6.1.5.5.7.3.1": "TLS Web Server Authentication",
  "1.3.6.1.5.5.7.3.2": "TLS Web Client Authentication",
  "1.3.6.1.5.5.7.3.3": "Code Signing",
  "1.3.6.1.5.5.7.3.4": "E-mail Protection",
  "1.3.6.1.5.5.7.3.8": "Time Stamping",
  "1.3.6.1.5.5.7.3.9": "OCSP Signing",
  "2.5.29.37.0": "Any Extended Key Usage",
};

/** Key usage bit → openssl's words, in bit order. */
const KEY_USAGES: [number, string][] = [
  [x509.KeyUsageFlags.digitalSignature, "Digital Signature"],
  [x509.KeyUsageFlags.nonRepudiation, "Non Repudiation"],
  [x509.KeyUsageFlags.keyEncipherment, "Key Encipherment"],
  [x509.KeyUsageFlags.dataEncipherment, "Data Encipherment"],
  [x509.KeyUsageFlags.keyAgreement, "Key Agreement"],
  [x509.KeyUsageFlags.keyCertSign, "Certificate Sign"],
  [x509.KeyUsageFlags.cRLSign, "CRL Sign"],
  [x509.KeyUsageFlags.encipherOnly, "Encipher Only"],
  [x509.KeyUsageFlags.decipherOnly, "Decipher Only"],
];

const NAME_SHORT: Record<string, string> = { E: "emailAddress", "1.2.840.113549.1.9.1": "emailAddress" };

function hexColons(buf: ArrayBuffer | Uint8Array): string {
  return Buffer.from(buf instanceof Uint8Array ? buf : new Uint8Array(buf))
    .toString("hex")
    .toUpperCase()
    .replace(/(..)(?=.)/g, "$1:");
}

function nameInfo(name: x509.Name, nodeText: string): NameInfo {
  const attributes: { type: string; value: string }[] = [];
  for (const rdn of name.toJSON()) {
    for (const [type, values] of Object.entries(rdn)) for (const value of values) attributes.push({ type: NAME_SHORT[type] ?? type, value });
  }
  // node prints "C=US\nO=Acme"; openssl -subject prints "C = US, O = Acme".
  const text = nodeText
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.replace(/=/, " = "))
    .join(", ");
  return { text, attributes };
}

/** Dotted IP text as Go's net.IP.String() writes it (IPv6 compressed). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  if (bytes.length !== 16) return Buffer.from(bytes).toString("hex");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // IPv4-mapped addresses print dotted.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) return Array.from(bytes.slice(12)).join(".");
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

export function collectSans(ext: x509.SubjectAlternativeNameExtension | null): CertInfo["sans"] {
  const sans: CertInfo["sans"] = { dns: [], ip: [], email: [], uri: [] };
  if (!ext) return sans;
  for (const g of ext.names.items) {
    if (g.type === "dns") sans.dns.push(g.value);
    else if (g.type === "email") sans.email.push(g.value);
    else if (g.type === "url") sans.uri.push(g.value);
    else if (g.type === "ip") {
      // rawData is the DER GeneralName: [7] IMPLICIT OCTET STRING (tag 0x87, short length).
      const raw = new Uint8Array(g.rawData);
      sans.ip.push(raw[0] === 0x87 && raw.length === 2 + (raw[1] ?? 0) ? formatIp(raw.slice(2)) : g.value);
    }
  }
  return sans;
}

function publicKeyInfo(spkiDer: ArrayBuffer): PublicKeyInfo {
  const key = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "rsa") return { algorithm: "rsaEncryption", bits: d.modulusLength ?? 0 };
  if (key.asymmetricKeyType === "ec") {
    const curve = Object.values(CURVES).find((c) => c.openssl === d.namedCurve || c.nist === d.namedCurve);
    return { algorithm: "id-ecPublicKey", bits: curve?.bits ?? 0, curve: curve?.openssl ?? d.namedCurve ?? "unknown", nistCurve: curve?.nist ?? d.namedCurve ?? "unknown" };
  }
  if (key.asymmetricKeyType === "ed25519") return { algorithm: "ED25519", bits: 256 };
  return { algorithm: key.asymmetricKeyType ?? "unknown", bits: 0 };
}

/** Parses one DER or PEM certificate. Throws a KubeletError naming `where` when it is not one. */
export function parseCertificate(input: Buffer | string, where = "certificate"): CertInfo {
  let cert: x509.X509Certificate;
  let node: NodeX509;
  try {
    cert = new x509.X509Certificate(typeof input === "string" ? input : new Uint8Array(input));
    node = new NodeX509(Buffer.from(cert.rawData));
  } catch (err) {
    throw new KubeletError("CertificateInvalid", `${where}: not a valid X.509 certificate: ${errorMessage(err)}`);
  }
  const sigOid = sigOidOf(cert);
  const sig = SIG_ALGS[sigOid] ?? { openssl: sigOid, cfssl: "Unknown Signature" };
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  const serialHex = cert.serialNumber.toUpperCase().replace(/^(00)+(?=..)/, "");
  const info: CertInfo = {
    version: versionOf(cert),
    serialHex,
    serialDecimal: BigInt(`0x${serialHex || "0"}`).toString(10),
    signatureAlgorithm: sig.openssl,
    cfsslSigAlg: sig.cfssl,
    subject: nameInfo(cert.subjectName, node.subject),
    issuer: nameInfo(cert.issuerName, node.issuer),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    notBeforeText: node.validFrom,
    notAfterText: node.validTo,
    publicKey: publicKeyInfo(cert.publicKey.rawData),
    extensions: cert.extensions.map((e) => ({ oid: e.type, critical: e.critical })),
    isCA: bc?.ca ?? false,
    selfSigned: node.checkIssued(node),
    keyUsage: ku ? KEY_USAGES.filter(([bit]) => (ku.usages & bit) !== 0).map(([, n]) => n) : [],
    extKeyUsage: eku ? Array.from(eku.usages, (u) => EKU_NAMES[String(u)] ?? String(u)) : [],
    sans: collectSans(cert.getExtension(x509.SubjectAlternativeNameExtension)),
    fingerprint256: node.fingerprint256,
    pem: cert.toString("pem") + "\n",
  };
  if (bc) {
    info.basicConstraintsCritical = bc.critical;
    if (bc.pathLength !== undefined) info.pathLen = bc.pathLength;
  }
  if (ku) info.keyUsageCritical = ku.critical;
  if (ski) info.subjectKeyId = hexColons(Buffer.from(ski.keyId, "hex"));
  if (aki?.keyId) info.authorityKeyId = hexColons(Buffer.from(aki.keyId, "hex"));
  return info;
}

function sigOidOf(cert: x509.X509Certificate): string {
  // The signatureAlgorithm field of the outer Certificate: SEQUENCE { tbs, algId, sig }.
  const asn = (cert as unknown as { asn: { signatureAlgorithm: { algorithm: string } } }).asn;
  return asn.signatureAlgorithm.algorithm;
}

function versionOf(cert: x509.X509Certificate): number {
  const asn = (cert as unknown as { asn: { tbsCertificate: { version: number } } }).asn;
  return asn.tbsCertificate.version + 1;
}

/** Every certificate in a PEM text, in order. Throws when there is none or one is corrupt. */
export function parseCertificates(text: string, where = "input"): CertInfo[] {
  const blocks = splitPem(text).filter((b) => b.type === "CERTIFICATE");
  if (blocks.length === 0) throw new KubeletError("CertificateInvalid", `${where}: no PEM CERTIFICATE block found`);
  return blocks.map((b, i) => parseCertificate(b.der, blocks.length > 1 ? `${where} (certificate ${i + 1})` : where));
}

/** The first private key block in a PEM text (PKCS#1, PKCS#8 or SEC1), or undefined. */
export function parsePrivateKey(text: string, where = "key"): KeyObject | undefined {
  const block = splitPem(text).find((b) => /PRIVATE KEY$/.test(b.type));
  if (!block) return undefined;
  if (block.type === "ENCRYPTED PRIVATE KEY") throw new KubeletError("KeyInvalid", `${where}: the private key is encrypted`);
  try {
    return createPrivateKey(block.text);
  } catch (err) {
    throw new KubeletError("KeyInvalid", `${where}: not a valid private key: ${errorMessage(err)}`);
  }
}

/** Whether `key` is the private half of the certificate's public key. */
export function keyMatchesCert(key: KeyObject, certPem: string): boolean {
  const pub = createPublicKey(key).export({ type: "spki", format: "der" });
  const certPub = new NodeX509(certPem).publicKey.export({ type: "spki", format: "der" });
  return Buffer.compare(pub, certPub) === 0;
}

/**
 * Verifies that the chain (leaf first, then any intermediates) leads to one of the CAs in the
 * bundle by signature and issuer name. Returns undefined when it does, or the reason it does not.
 */
export function verifyChain(chainPem: string[], caPems: string[]): string | undefined {
  if (chainPem.length === 0) return "empty chain";
  const chain = chainPem.map((p) => new NodeX509(p));
  const cas = caPems.map((p) => new NodeX509(p));
  let cur = chain[0];
  const pool = [...chain.slice(1)];
  for (let depth = 0; cur && depth < 10; depth++) {
    const c: NodeX509 = cur;
    const trusted = cas.find((ca) => c.checkIssued(ca) && c.verify(ca.publicKey));
    if (trusted) return undefined;
    const next = pool.find((p) => c.checkIssued(p) && c.verify(p.publicKey));
    if (!next) break;
    cur = next;
  }
  const leaf = chain[0];
  return `not signed by the CA (issuer "${leaf?.issuer.replace(/\n/g, ", ") ?? "?"}"; CA bundle: ${cas.map((c) => `"${c.subject.replace(/\n/g, ", ")}"`).join(", ") || "empty"})`;
}

/** Where a kubeconfig's credentials come from: inline data or a file (resolved against the kubeconfig's directory). */
export interface KubeconfigMaterial {
  pem?: string;
  file?: string;
  /** Set when the file could not be read. */
  error?: string;
}

export interface KubeconfigInfo {
  path: string;
  server: string;
  context: string;
  cluster: string;
  user: string;
  ca?: KubeconfigMaterial;
  clientCert?: KubeconfigMaterial;
  clientKey?: KubeconfigMaterial;
  token: boolean;
  insecure: boolean;
}

interface NamedEntry<K extends string> {
  name?: string;
  [key: string]: unknown;
  _k?: K;
}

function material(data: unknown, file: unknown, baseDir: string, readFile: (p: string) => string): KubeconfigMaterial | undefined {
  if (typeof data === "string" && data !== "") return { pem: Buffer.from(data, "base64").toString("utf8") };
  if (typeof file === "string" && file !== "") {
    const path = isAbsolute(file) ? file : resolve(baseDir, file);
    try {
      return { file: path, pem: readFile(path) };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { file: path, error: e.code === "ENOENT" ? "file does not exist" : errorMessage(err) };
    }
  }
  return undefined;
}

/** Parses a kubeconfig's current context: server, CA, client certificate and key (inline or files). */
export function readKubeconfig(path: string, readFile: (p: string) => string = (p) => readFileSync(p, "utf8")): KubeconfigInfo {
  let doc: Record<string, unknown>;
  try {
    doc = (parseYaml(readFile(path)) ?? {}) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw err;
    throw new KubeletError("KubeconfigInvalid", `kubeconfig ${path}: ${errorMessage(err)}`);
  }
  const list = (k: string): NamedEntry<string>[] => (Array.isArray(doc[k]) ? (doc[k] as NamedEntry<string>[]) : []);
  const pick = (entries: NamedEntry<string>[], name: unknown): NamedEntry<string> | undefined => entries.find((e) => e.name === name) ?? (entries.length === 1 ? entries[0] : undefined);
  const currentName = typeof doc["current-context"] === "string" ? doc["current-context"] : "";
  const ctxEntry = pick(list("contexts"), currentName);
  const ctx = (ctxEntry?.context ?? {}) as Record<string, unknown>;
  const clusterEntry = pick(list("clusters"), ctx.cluster);
  const userEntry = pick(list("users"), ctx.user);
  if (!clusterEntry) throw new KubeletError("KubeconfigInvalid", `kubeconfig ${path}: no cluster for the current context "${currentName}"`);
  const cluster = (clusterEntry.cluster ?? {}) as Record<string, unknown>;
  const user = (userEntry?.user ?? {}) as Record<string, unknown>;
  const base = dirname(resolve(path));
  const info: KubeconfigInfo = {
    path,
    server: typeof cluster.server === "string" ? cluster.server : "",
    context: ctxEntry?.name ?? "",
    cluster: clusterEntry.name ?? "",
    user: userEntry?.name ?? "",
    token: typeof user.token === "string" || typeof user.tokenFile === "string",
    insecure: cluster["insecure-skip-tls-verify"] === true,
  };
  const ca = material(cluster["certificate-authority-data"], cluster["certificate-authority"], base, readFile);
  const cc = material(user["client-certificate-data"], user["client-certificate"], base, readFile);
  const ck = material(user["client-key-data"], user["client-key"], base, readFile);
  if (ca) info.ca = ca;
  if (cc) info.clientCert = cc;
  if (ck) info.clientKey = ck;
  return info;
}

/** How long is left, like Go's duration.ShortHumanDuration (kubeadm's RESIDUAL TIME). */
export function shortHumanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < -1) return "<invalid>";
  if (s < 0) return "0s";
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24)}d`;
  return `${Math.floor(h / 24 / 365)}y`;
}

// ---------------------------------------------------------------------------------------------
// `certs check`: every certificate tskubelet uses, with what is wrong with it.

export type CheckStatus = "ok" | "expiring" | "expired" | "error";

export interface CheckRow {
  /** What the certificate is for ("client (cert dir)", "kubeconfig certificate-authority", …). */
  name: string;
  /** A file path, "embedded in <kubeconfig>", or "tls://host:port". */
  source: string;
  kind: "client" | "serving" | "ca" | "endpoint";
  subject?: string;
  /** Issuer CN (or the full issuer when it has no CN); "self-signed" for self-signed certificates. */
  issuer?: string;
  notBefore?: Date;
  notAfter?: Date;
  residualMs?: number;
  /** Whether tskubelet renews it by itself (rotateCertificates / serverTLSBootstrap); undefined when not applicable. */
  rotates?: boolean;
  status: CheckStatus;
  notes: string[];
}

export interface CheckOptions {
  certDir?: string;
  kubeconfig?: string;
  bootstrapKubeconfig?: string;
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  clientCAFile?: string;
  rotateCertificates: boolean;
  serverTLSBootstrap: boolean;
  endpoints: string[];
  warnWithinMs: number;
  now: number;
  endpointTimeoutMs?: number;
}

export interface CheckReport {
  rows: CheckRow[];
  /** 1 when anything is expired, expiring within the threshold, or broken; 0 otherwise. */
  exitCode: number;
}

function cnOf(n: NameInfo): string {
  return n.attributes.filter((a) => a.type === "CN").map((a) => a.value)[0] ?? n.text;
}

function finishRow(row: CheckRow, cert: CertInfo | undefined, opts: CheckOptions): CheckRow {
  if (cert) {
    row.subject = cert.subject.text;
    row.issuer = cert.selfSigned ? "self-signed" : cnOf(cert.issuer);
    row.notBefore = cert.notBefore;
    row.notAfter = cert.notAfter;
    row.residualMs = cert.notAfter.getTime() - opts.now;
    if (cert.notBefore.getTime() > opts.now) row.notes.push(`not valid before ${cert.notBefore.toISOString()}`);
  }
  if (row.status !== "error") {
    if (!cert) row.status = "error";
    else if (cert.notBefore.getTime() > opts.now) row.status = "error";
    else if ((row.residualMs ?? 0) <= 0) {
      row.status = "expired";
      row.notes.push("expired");
    } else if ((row.residualMs ?? 0) < opts.warnWithinMs) {
      row.status = "expiring";
      row.notes.push(`expires within ${shortHumanDuration(opts.warnWithinMs)}`);
    }
  }
  return row;
}

interface ErrorRowSpec {
  name: string;
  source: string;
  kind: CheckRow["kind"];
  note: string;
  rotates?: boolean | undefined;
}

function errorRow(spec: ErrorRowSpec): CheckRow {
  const row: CheckRow = { name: spec.name, source: spec.source, kind: spec.kind, status: "error", notes: [spec.note] };
  if (spec.rotates !== undefined) row.rotates = spec.rotates;
  return row;
}

interface Loaded {
  certs: CertInfo[];
  pems: string[];
  key?: KeyObject;
}

interface PemSource {
  text: string;
  where: string;
  /** Look for a private key: in keyText when given, else in text. */
  wantKey: boolean;
  keyText?: string | undefined;
  keyWhere?: string | undefined;
}

function loadPemText(src: PemSource): Loaded {
  const certs = parseCertificates(src.text, src.where);
  const pems = splitPem(src.text)
    .filter((b) => b.type === "CERTIFICATE")
    .map((b) => b.text + "\n");
  const out: Loaded = { certs, pems };
  if (src.wantKey) {
    const key = parsePrivateKey(src.keyText ?? src.text, src.keyWhere ?? src.where);
    if (key) out.key = key;
  }
  return out;
}

function realPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

function readText(p: string): string {
  return readFileSync(p, "utf8");
}

function fileError(err: unknown): string {
  return (err as NodeJS.ErrnoException).code === "ENOENT" ? "file does not exist" : errorMessage(err);
}

interface FileSpec {
  name: string;
  kind: CheckRow["kind"];
  certFile: string;
  keyFile?: string | undefined;
  rotates?: boolean | undefined;
  /** Verify the chain against the kubeconfig CA. */
  verify: boolean;
  note?: string;
}

interface TextSpec {
  row: CheckRow;
  text: string;
  where: string;
  keyFile?: string | undefined;
  keyText?: string | undefined;
  verify: boolean;
}

function tryKubeconfig(path: string | undefined, what: string): { info?: KubeconfigInfo; error?: string } {
  if (!path) return {};
  try {
    return { info: readKubeconfig(path) };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code === "ENOENT" ? `${what} file does not exist` : errorMessage(err) };
  }
}

/** Collects the rows of `certs check`; one instance per run. */
class Checker {
  readonly rows: CheckRow[] = [];
  private readonly seen = new Map<string, CheckRow>();
  caPems: string[] = [];
  caSource = "";

  constructor(private readonly opts: CheckOptions) {}

  useCA(kc: KubeconfigInfo | undefined): void {
    if (this.caPems.length > 0 || !kc?.ca?.pem) return;
    try {
      this.caPems = loadPemText({ text: kc.ca.pem, where: "kubeconfig CA", wantKey: false }).pems;
      this.caSource = kc.ca.file ?? `embedded in ${kc.path}`;
    } catch {
      // reported on the CA's own row
    }
  }

  addFile(spec: FileSpec): void {
    const rp = realPath(spec.certFile);
    const prev = this.seen.get(rp);
    if (prev) {
      prev.notes.push(`also ${spec.name}`);
      return;
    }
    const row: CheckRow = { name: spec.name, source: spec.certFile, kind: spec.kind, status: "ok", notes: [] };
    if (spec.rotates !== undefined) row.rotates = spec.rotates;
    if (spec.note) row.notes.push(spec.note);
    this.seen.set(rp, row);
    this.rows.push(row);
    let text: string;
    try {
      text = readText(spec.certFile);
    } catch (err) {
      row.status = "error";
      row.notes.push((err as NodeJS.ErrnoException).code === "ENOENT" && lstatOk(spec.certFile) ? "symlink points at a missing file" : fileError(err));
      finishRow(row, undefined, this.opts);
      return;
    }
    this.checkText({ row, text, where: spec.certFile, keyFile: spec.keyFile, verify: spec.verify });
  }

  rowFor(path: string): CheckRow | undefined {
    return this.seen.get(realPath(path));
  }

  checkText(spec: TextSpec): void {
    const { row } = spec;
    const wantKey = row.kind !== "ca";
    let loaded: Loaded | undefined;
    let keyText = spec.keyText;
    if (wantKey && spec.keyFile !== undefined && keyText === undefined) {
      try {
        keyText = readText(spec.keyFile);
      } catch (err) {
        row.status = "error";
        row.notes.push(`key ${spec.keyFile}: ${fileError(err)}`);
      }
    }
    try {
      loaded = loadPemText({ text: spec.text, where: spec.where, wantKey, keyText, keyWhere: spec.keyFile });
    } catch (err) {
      row.status = "error";
      row.notes.push(errorMessage(err));
    }
    const leaf = loaded?.certs[0];
    if (!loaded || !leaf) {
      finishRow(row, undefined, this.opts);
      return;
    }
    if (row.kind === "ca") {
      // A bundle: report the certificate that expires first.
      const soonest = loaded.certs.reduce((a, b) => (b.notAfter < a.notAfter ? b : a), leaf);
      if (loaded.certs.length > 1) row.notes.push(`${loaded.certs.length} certificates in bundle`);
      if (!leaf.isCA) row.notes.push("not a CA certificate");
      finishRow(row, soonest, this.opts);
      return;
    }
    if (!loaded.key) {
      if (row.status !== "error") row.notes.push("no private key found");
      row.status = "error";
    } else if (!keyMatchesCert(loaded.key, loaded.pems[0] ?? "")) {
      row.status = "error";
      row.notes.push("private key does not match the certificate");
    }
    if (spec.verify && this.caPems.length > 0) {
      const why = verifyChain(loaded.pems, this.caPems);
      if (why) {
        row.status = "error";
        row.notes.push(`chain does not verify against the kubeconfig CA (${this.caSource}): ${why}`);
      }
    }
    finishRow(row, leaf, this.opts);
  }

  certDir(d: string): void {
    const client = `${d}/kubelet-client-current.pem`;
    if (existsSync(client) || lstatOk(client)) this.addFile({ name: "client (cert dir)", kind: "client", certFile: client, rotates: this.opts.rotateCertificates, verify: true });
    const server = `${d}/kubelet-server-current.pem`;
    if (existsSync(server) || lstatOk(server)) this.addFile({ name: "serving (cert dir)", kind: "serving", certFile: server, rotates: this.opts.serverTLSBootstrap, verify: true });
    const selfCrt = `${d}/kubelet.crt`;
    if (existsSync(selfCrt)) this.addFile({ name: "serving self-signed (cert dir)", kind: "serving", certFile: selfCrt, keyFile: `${d}/kubelet.key`, rotates: false, verify: false });
  }

  kubeconfigClient(kc: KubeconfigInfo, label: string, rotates: boolean | undefined): void {
    const m = kc.clientCert;
    if (!m) return;
    const name = `${label} client-certificate`;
    if (m.file && m.error) {
      this.rows.push(finishRow(errorRow({ name, source: m.file, kind: "client", note: `referenced by ${kc.path}: ${m.error}`, rotates }), undefined, this.opts));
      return;
    }
    if (kc.clientKey?.error) {
      this.rows.push(finishRow(errorRow({ name: `${label} client-key`, source: kc.clientKey.file ?? "", kind: "client", note: `referenced by ${kc.path}: ${kc.clientKey.error}`, rotates }), undefined, this.opts));
    }
    if (m.file) {
      const keyFile = kc.clientKey?.file;
      this.addFile({ name, kind: "client", certFile: m.file, keyFile: keyFile && keyFile !== m.file ? keyFile : undefined, rotates, verify: true });
      const row = this.rowFor(m.file);
      if (!keyFile && kc.clientKey?.pem && row && m.pem) {
        // an embedded key with a certificate file
        const key = parsePrivateKeyQuiet(kc.clientKey.pem);
        if (key && !keyMatchesCert(key, splitPem(m.pem).find((b) => b.type === "CERTIFICATE")?.text ?? "")) {
          row.status = "error";
          row.notes.push("client-key-data does not match the certificate");
        }
      }
      return;
    }
    if (m.pem) {
      const row: CheckRow = { name, source: `embedded in ${kc.path}`, kind: "client", status: "ok", notes: [] };
      if (rotates !== undefined) row.rotates = rotates;
      this.rows.push(row);
      this.checkText({ row, text: m.pem, where: `${kc.path} client-certificate-data`, keyFile: kc.clientKey?.file, keyText: kc.clientKey?.pem ?? "", verify: true });
    }
  }

  kubeconfigCA(kc: KubeconfigInfo, label: string): void {
    const m = kc.ca;
    if (!m) return;
    const name = `${label} certificate-authority`;
    if (m.file && m.error) {
      this.rows.push(finishRow(errorRow({ name, source: m.file, kind: "ca", note: `referenced by ${kc.path}: ${m.error}` }), undefined, this.opts));
    } else if (m.file) {
      this.addFile({ name, kind: "ca", certFile: m.file, verify: false });
    } else if (m.pem) {
      const key = `data:${m.pem.trim()}`;
      const dup = this.seen.get(key);
      if (dup) {
        dup.notes.push(`also ${name}`);
        return;
      }
      const row: CheckRow = { name, source: `embedded in ${kc.path}`, kind: "ca", status: "ok", notes: [] };
      this.seen.set(key, row);
      this.rows.push(row);
      this.checkText({ row, text: m.pem, where: `${kc.path} certificate-authority-data`, verify: false });
    }
  }
}

/** Reads and checks every certificate tskubelet uses, then the live endpoints. */
export async function checkCertificates(opts: CheckOptions): Promise<CheckReport> {
  const c = new Checker(opts);
  const kc = tryKubeconfig(opts.kubeconfig, "kubeconfig");
  const boot = tryKubeconfig(opts.bootstrapKubeconfig, "bootstrap kubeconfig");
  c.useCA(kc.info);
  c.useCA(boot.info);

  if (opts.certDir) c.certDir(opts.certDir);
  if (opts.kubeconfig) {
    if (kc.info) {
      c.kubeconfigClient(kc.info, "kubeconfig", opts.rotateCertificates);
      c.kubeconfigCA(kc.info, "kubeconfig");
    } else c.rows.push(finishRow(errorRow({ name: "kubeconfig", source: opts.kubeconfig, kind: "client", note: kc.error ?? "unreadable" }), undefined, opts));
  }
  if (opts.bootstrapKubeconfig) {
    if (boot.info) {
      c.kubeconfigClient(boot.info, "bootstrap-kubeconfig", false);
      c.kubeconfigCA(boot.info, "bootstrap-kubeconfig");
    } else if (!kc.info) {
      // Once the node has its own kubeconfig, a missing bootstrap kubeconfig is normal.
      c.rows.push(finishRow(errorRow({ name: "bootstrap-kubeconfig", source: opts.bootstrapKubeconfig, kind: "client", note: boot.error ?? "unreadable" }), undefined, opts));
    }
  }
  if (opts.tlsCertFile) c.addFile({ name: "serving (tlsCertFile)", kind: "serving", certFile: opts.tlsCertFile, keyFile: opts.tlsPrivateKeyFile || undefined, rotates: false, verify: false, note: "reloaded when the file changes" });
  if (opts.clientCAFile) c.addFile({ name: "client CA (clientCAFile)", kind: "ca", certFile: opts.clientCAFile, verify: false });
  for (const ep of opts.endpoints) c.rows.push(await checkEndpoint(ep, { caPems: c.caPems, caSource: c.caSource }, opts));
  return { rows: c.rows, exitCode: c.rows.some((r) => r.status !== "ok") ? 1 : 0 };
}

function lstatOk(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function parsePrivateKeyQuiet(text: string): KeyObject | undefined {
  try {
    return parsePrivateKey(text);
  } catch {
    return undefined;
  }
}

/** A TLS handshake with host:port; the row describes the leaf the peer presented. */
export async function checkEndpoint(endpoint: string, trust: { caPems: string[]; caSource: string }, opts: CheckOptions): Promise<CheckRow> {
  const { caPems, caSource } = trust;
  const row: CheckRow = { name: "endpoint", source: `tls://${endpoint}`, kind: "endpoint", status: "ok", notes: [] };
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(endpoint.replace(/^(https|tls):\/\//, "").replace(/\/.*$/, ""));
  if (!m) return finishRow(errorRow({ name: "endpoint", source: endpoint, kind: "endpoint", note: "expected host:port" }), undefined, opts);
  const host = m[1] ?? "";
  const port = Number(m[2]);
  const { connect } = await import("node:tls");
  const { isIP } = await import("node:net");
  let chain: string[];
  try {
    chain = await new Promise<string[]>((resolveChain, reject) => {
      const sock = connect({ host, port, rejectUnauthorized: false, ...(isIP(host) ? {} : { servername: host }) });
      sock.setTimeout(opts.endpointTimeoutMs ?? 5000, () => sock.destroy(new Error(`no TLS handshake within ${opts.endpointTimeoutMs ?? 5000} ms`)));
      sock.once("secureConnect", () => {
        sock.setTimeout(0);
        const out: string[] = [];
        let c = sock.getPeerCertificate(true) as import("node:tls").DetailedPeerCertificate | undefined;
        const seenFp = new Set<string>();
        while (c?.raw && !seenFp.has(c.fingerprint256)) {
          seenFp.add(c.fingerprint256);
          out.push(`-----BEGIN CERTIFICATE-----\n${c.raw.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END CERTIFICATE-----\n`.replace(/\n\n/g, "\n"));
          c = c.issuerCertificate;
        }
        sock.end();
        resolveChain(out);
      });
      sock.once("error", (e: Error) => {
        reject(e);
      });
    });
  } catch (err) {
    row.status = "error";
    row.notes.push(`TLS handshake failed: ${errorMessage(err)}`);
    return finishRow(row, undefined, opts);
  }
  if (chain.length === 0) {
    row.status = "error";
    row.notes.push("the peer sent no certificate");
    return finishRow(row, undefined, opts);
  }
  const leaf = parseCertificate(chain[0] ?? "", `tls://${endpoint}`);
  row.notes.push(`chain of ${chain.length}`);
  if (caPems.length > 0) {
    const why = verifyChain(chain, caPems);
    if (why) {
      row.status = "error";
      row.notes.push(`chain does not verify against the kubeconfig CA (${caSource}): ${why}`);
    }
  }
  return finishRow(row, leaf, opts);
}
