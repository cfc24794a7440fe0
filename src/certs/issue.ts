/**
 * `tskubelet certs issue`: node credentials signed directly by the cluster CA, for clusters that
 * run without bootstrap tokens. Writes, in --out-dir:
 *
 *   kubelet-client-<YYYY-MM-DD-HH-MM-SS>.pem   client certificate + ECDSA P-256 key (0600)
 *   kubelet-client-current.pem                 symlink to it (upstream's store layout)
 *   kubelet-server-<…>.pem, kubelet-server-current.pem   the same for --serving
 *   kubelet.conf (or --kubeconfig-out)         kubeconfig: default-cluster / default-auth /
 *                                              default-context as the kubelet writes it, the CA
 *                                              embedded, the client pair referenced by path
 *                                              (or embedded with --embed)
 *
 * so a kubelet started with --cert-dir=<out-dir> --kubeconfig=<kubeconfig> (and, for rotation
 * later, rotateCertificates) finds everything where upstream puts it.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createPrivateKey, randomBytes, webcrypto, type KeyObject } from "node:crypto";
import { mkdir, rename, symlink, unlink, writeFile, chmod } from "node:fs/promises";
import { isIP } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { KubeletError, errorMessage } from "../util/errors.js";
import { keyMatchesCert, parsePrivateKey, splitPem } from "./inspect.js";

x509.cryptoProvider.set(webcrypto);

type CryptoKey = webcrypto.CryptoKey;

export interface IssueOptions {
  caCertPem: string;
  caKeyPem: string;
  nodeName: string;
  /** IPs and DNS names for the serving certificate's SANs. */
  addresses: string[];
  serving: boolean;
  /** apiserver URL for the kubeconfig; no kubeconfig is written without it. */
  server?: string;
  outDir: string;
  days: number;
  /** Default <outDir>/kubelet.conf. */
  kubeconfigOut?: string;
  /** Embed the client certificate and key in the kubeconfig instead of referencing kubelet-client-current.pem. */
  embed?: boolean;
  now: number;
}

export interface IssuedFile {
  path: string;
  what: string;
}

export interface IssueResult {
  files: IssuedFile[];
  clientCertPem: string;
  servingCertPem?: string;
  kubeconfigPath?: string;
  notAfter: Date;
  warnings: string[];
}

interface SigningCA {
  cert: x509.X509Certificate;
  key: CryptoKey;
  signingAlgorithm: Algorithm | EcdsaParams;
}

type Algorithm = { name: string; hash?: string };
type EcdsaParams = { name: "ECDSA"; hash: string };

/** Imports the CA key (PKCS#1, PKCS#8 or SEC1 PEM) into webcrypto, checking it belongs to the CA certificate. */
export async function loadSigningCA(caCertPem: string, caKeyPem: string): Promise<SigningCA> {
  const certBlock = splitPem(caCertPem).find((b) => b.type === "CERTIFICATE");
  if (!certBlock) throw new KubeletError("CertificateInvalid", "--ca-cert: no PEM CERTIFICATE block found");
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(new Uint8Array(certBlock.der));
  } catch (err) {
    throw new KubeletError("CertificateInvalid", `--ca-cert: not a valid certificate: ${errorMessage(err)}`);
  }
  const keyObj = parsePrivateKey(caKeyPem, "--ca-key");
  if (!keyObj) throw new KubeletError("KeyInvalid", "--ca-key: no PEM private key block found");
  if (!keyMatchesCert(keyObj, certBlock.text)) throw new KubeletError("KeyInvalid", "--ca-key does not belong to the --ca-cert certificate");
  const { importAlg, signingAlgorithm } = algorithmsFor(keyObj);
  const der = keyObj.export({ type: "pkcs8", format: "der" });
  const key = await webcrypto.subtle.importKey("pkcs8", der, importAlg, false, ["sign"]);
  return { cert, key, signingAlgorithm };
}

function algorithmsFor(key: KeyObject): { importAlg: Algorithm & { namedCurve?: string }; signingAlgorithm: Algorithm | EcdsaParams } {
  if (key.asymmetricKeyType === "rsa") {
    return { importAlg: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, signingAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } };
  }
  if (key.asymmetricKeyType === "ec") {
    const c = key.asymmetricKeyDetails?.namedCurve ?? "";
    const namedCurve = c === "prime256v1" || c === "P-256" ? "P-256" : c === "secp384r1" || c === "P-384" ? "P-384" : c === "secp521r1" || c === "P-521" ? "P-521" : "";
    if (!namedCurve) throw new KubeletError("KeyInvalid", `--ca-key: unsupported EC curve ${c}`);
    const hash = namedCurve === "P-384" ? "SHA-384" : namedCurve === "P-521" ? "SHA-512" : "SHA-256";
    return { importAlg: { name: "ECDSA", namedCurve }, signingAlgorithm: { name: "ECDSA", hash } };
  }
  throw new KubeletError("KeyInvalid", `--ca-key: unsupported key type ${key.asymmetricKeyType ?? "unknown"} (want RSA or ECDSA)`);
}

/** A fresh ECDSA P-256 key pair and its SEC1 ("EC PRIVATE KEY") PEM, as the kubelet generates them. */
export async function generateNodeKey(): Promise<{ keys: webcrypto.CryptoKeyPair; pem: string }> {
  const keys = await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const pem = createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ type: "sec1", format: "pem" }).toString();
  return { keys, pem };
}

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f || 0x01; // positive and 16 bytes long
  return b.toString("hex");
}

export interface LeafSpec {
  cn: string;
  orgs: string[];
  eku: "clientAuth" | "serverAuth";
  dns: string[];
  ips: string[];
  notBefore: Date;
  notAfter: Date;
}

/** Signs a leaf certificate for `publicKey` with the CA. */
export async function signLeaf(ca: SigningCA, publicKey: CryptoKey, spec: LeafSpec): Promise<x509.X509Certificate> {
  const extensions: x509.Extension[] = [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([spec.eku === "clientAuth" ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth]),
    new x509.BasicConstraintsExtension(false, undefined, true),
  ];
  const caSki = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (caSki) extensions.push(new x509.AuthorityKeyIdentifierExtension(caSki.keyId));
  else extensions.push(await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey));
  const sans: { type: "dns" | "ip"; value: string }[] = [...spec.dns.map((value) => ({ type: "dns" as const, value })), ...spec.ips.map((value) => ({ type: "ip" as const, value }))];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  // Go's pkix.Name order: O before CN.
  const subject: Record<string, string[]>[] = [...spec.orgs.map((o) => ({ O: [o] })), { CN: [spec.cn] }];
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: ca.cert.subjectName,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey,
    signingKey: ca.key,
    signingAlgorithm: ca.signingAlgorithm,
    extensions,
  });
}

/** Upstream's store timestamp: 2006-01-02-15-04-05 (UTC here). */
export function storeTimestamp(now: number): string {
  const d = new Date(now);
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}-${p(d.getUTCHours())}-${p(d.getUTCMinutes())}-${p(d.getUTCSeconds())}`;
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

/** Writes <prefix>-<ts>.pem (cert then key, 0600) and swaps <prefix>-current.pem to it atomically. */
export async function writePair(p: { dir: string; prefix: string; certPem: string; keyPem: string; now: number }): Promise<string> {
  const { dir, prefix, certPem, keyPem, now } = p;
  const file = join(dir, `${prefix}-${storeTimestamp(now)}.pem`);
  await writeAtomic(file, certPem.trimEnd() + "\n" + keyPem.trimEnd() + "\n", 0o600);
  const updated = join(dir, `${prefix}-updated.pem`);
  await unlink(updated).catch(() => undefined);
  await symlink(basename(file), updated);
  await rename(updated, join(dir, `${prefix}-current.pem`));
  return file;
}

function splitAddresses(addresses: string[]): { dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const raw of addresses.flatMap((a) => a.split(","))) {
    const a = raw.trim();
    if (a === "") continue;
    if (isIP(a)) {
      if (!ips.includes(a)) ips.push(a);
    } else if (/^[a-z0-9*]([-a-z0-9.]*[a-z0-9])?$/i.test(a)) {
      if (!dns.includes(a)) dns.push(a);
    } else throw new KubeletError("AddressInvalid", `--address ${JSON.stringify(a)} is neither an IP address nor a DNS name`);
  }
  return { dns: dns.sort(), ips: ips.sort() };
}

export function kubeconfigText(opts: { server: string; caPem: string; clientCertFile?: string; clientKeyFile?: string; clientCertPem?: string; clientKeyPem?: string }): string {
  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  const user =
    opts.clientCertFile !== undefined
      ? [`    client-certificate: ${opts.clientCertFile}`, `    client-key: ${opts.clientKeyFile ?? opts.clientCertFile}`]
      : [`    client-certificate-data: ${b64(opts.clientCertPem ?? "")}`, `    client-key-data: ${b64(opts.clientKeyPem ?? "")}`];
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- cluster:",
    `    certificate-authority-data: ${b64(opts.caPem)}`,
    `    server: ${opts.server}`,
    "  name: default-cluster",
    "contexts:",
    "- context:",
    "    cluster: default-cluster",
    "    namespace: default",
    "    user: default-auth",
    "  name: default-context",
    "current-context: default-context",
    "preferences: {}",
    "users:",
    "- name: default-auth",
    "  user:",
    ...user,
    "",
  ].join("\n");
}

const NODE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export async function issueNodeCredentials(opts: IssueOptions): Promise<IssueResult> {
  if (!NODE_NAME.test(opts.nodeName) || opts.nodeName.length > 253) throw new KubeletError("NodeNameInvalid", `--node ${JSON.stringify(opts.nodeName)} is not a valid node name (lower-case DNS subdomain)`);
  if (!Number.isFinite(opts.days) || opts.days <= 0) throw new KubeletError("DaysInvalid", `--days must be a positive number, got ${opts.days}`);
  const ca = await loadSigningCA(opts.caCertPem, opts.caKeyPem);
  const warnings: string[] = [];
  const notBefore = new Date(opts.now - 5 * 60_000);
  let notAfter = new Date(opts.now + opts.days * 86_400_000);
  if (notAfter > ca.cert.notAfter) {
    notAfter = ca.cert.notAfter;
    warnings.push(`the CA expires ${ca.cert.notAfter.toISOString()}; the certificates end then, not after ${opts.days} days`);
  }
  if (ca.cert.notAfter.getTime() <= opts.now) throw new KubeletError("CAExpired", `the CA certificate expired ${ca.cert.notAfter.toISOString()}`);
  const outDir = resolve(opts.outDir);
  await mkdir(outDir, { recursive: true, mode: 0o755 });
  const files: IssuedFile[] = [];
  const cn = `system:node:${opts.nodeName}`;

  const client = await generateNodeKey();
  const clientCert = await signLeaf(ca, client.keys.publicKey, { cn, orgs: ["system:nodes"], eku: "clientAuth", dns: [], ips: [], notBefore, notAfter });
  const clientPem = clientCert.toString("pem") + "\n";
  const clientFile = await writePair({ dir: outDir, prefix: "kubelet-client", certPem: clientPem, keyPem: client.pem, now: opts.now });
  files.push({ path: clientFile, what: `client certificate and key for ${cn} (0600)` }, { path: join(outDir, "kubelet-client-current.pem"), what: "symlink to the client pair" });

  const result: IssueResult = { files, clientCertPem: clientPem, notAfter, warnings };
  if (opts.serving) {
    const { dns, ips } = splitAddresses(opts.addresses);
    if (dns.length === 0 && ips.length === 0) dns.push(opts.nodeName);
    const serving = await generateNodeKey();
    const servingCert = await signLeaf(ca, serving.keys.publicKey, { cn, orgs: ["system:nodes"], eku: "serverAuth", dns, ips, notBefore, notAfter });
    const servingPem = servingCert.toString("pem") + "\n";
    const servingFile = await writePair({ dir: outDir, prefix: "kubelet-server", certPem: servingPem, keyPem: serving.pem, now: opts.now });
    files.push({ path: servingFile, what: `serving certificate and key (SANs ${[...dns, ...ips].join(", ")}) (0600)` }, { path: join(outDir, "kubelet-server-current.pem"), what: "symlink to the serving pair" });
    result.servingCertPem = servingPem;
  }

  if (opts.server) {
    const kcPath = resolve(opts.kubeconfigOut ?? join(outDir, "kubelet.conf"));
    await mkdir(dirname(kcPath), { recursive: true });
    const caPem = (splitPem(opts.caCertPem).find((b) => b.type === "CERTIFICATE")?.text ?? "") + "\n";
    const current = join(outDir, "kubelet-client-current.pem");
    const text = opts.embed
      ? kubeconfigText({ server: opts.server, caPem, clientCertPem: clientPem, clientKeyPem: client.pem })
      : kubeconfigText({ server: opts.server, caPem, clientCertFile: current, clientKeyFile: current });
    await writeAtomic(kcPath, text, 0o600);
    files.push({ path: kcPath, what: opts.embed ? "kubeconfig with the CA and client pair embedded" : "kubeconfig (CA embedded, client pair referenced)" });
    result.kubeconfigPath = kcPath;
  } else {
    warnings.push("no --server given: no kubeconfig written");
  }
  return result;
}
