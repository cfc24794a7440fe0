/**
 * The serving certificate of 10250. Either tlsCertFile/tlsPrivateKeyFile, or upstream's
 * self-signed fallback: <certDir>/kubelet.crt (leaf + its CA) and kubelet.key (PKCS#1 RSA),
 * generated when they cannot be read. The TLS material can be swapped later (certificate
 * rotation, a reloaded client CA) without dropping open connections.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createPrivateKey, webcrypto } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { writeFileAtomic } from "../certs/store.js";
import { isIP } from "node:net";
import { dirname, join } from "node:path";
import { createSecureContext, type SecureContextOptions, type TlsOptions } from "node:tls";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { ConfigError, errorMessage } from "../util/errors.js";

x509.cryptoProvider.set(webcrypto);

const RSA_ALG = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
const HOUR_MS = 3_600_000;
const YEAR_MS = 365 * 24 * HOUR_MS;

export interface ServingTLSOptions {
  certDir: string;
  /** The node's hostname (--hostname-override or the OS hostname): CN and SAN of the fallback. */
  hostname: string;
  tlsCertFile: string;
  tlsPrivateKeyFile: string;
  /** authentication.x509.clientCAFile; "" asks for no client certificates. */
  clientCAFile: string;
  clock: Clock;
  logger: Logger;
}

export interface CertKeyPair {
  cert: string | Buffer;
  key: string | Buffer;
}

/** A server whose TLS material can be replaced (node:https and node:tls servers are). */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

export interface ServingTLS {
  readonly certFile: string;
  readonly keyFile: string;
  /** Whether clients are asked for a certificate (a client CA is configured). */
  readonly requestsClientCert: boolean;
  /** Options for https.createServer. Clients without a valid certificate are not refused here: the authenticator decides. */
  serverOptions(): TlsOptions;
  /** Remembers the server so later swaps reach it. */
  attach(server: SecureContextTarget): void;
  /** Serves a new certificate and key to new connections; open connections keep theirs. Throws when they do not match. */
  setCertificate(pair: CertKeyPair): void;
  /** Rereads the client CA file and uses it for new connections. */
  reloadClientCA(): Promise<void>;
}

export async function loadServingTLS(opts: ServingTLSOptions): Promise<ServingTLS> {
  let certFile = opts.tlsCertFile;
  let keyFile = opts.tlsPrivateKeyFile;
  if (certFile === "" || keyFile === "") {
    certFile = join(opts.certDir, "kubelet.crt");
    keyFile = join(opts.certDir, "kubelet.key");
    if (await ensureSelfSignedCertKey({ certFile, keyFile, hostname: opts.hostname, nowMs: opts.clock.now() })) {
      opts.logger.info("generated a self-signed serving certificate", { cert: certFile, key: keyFile });
    }
  }
  let pair: CertKeyPair = { cert: await readOrFail(certFile, "serving certificate"), key: await readOrFail(keyFile, "serving key") };
  checkPair(pair, `${certFile} and ${keyFile}`);
  let ca: Buffer | undefined = opts.clientCAFile === "" ? undefined : await readOrFail(opts.clientCAFile, "client CA file");
  const servers: SecureContextTarget[] = [];

  const contextOptions = (): TlsOptions => ({ cert: pair.cert, key: pair.key, ...(ca ? { ca } : {}) });
  const push = (): void => {
    for (const s of servers) s.setSecureContext(contextOptions());
  };
  return {
    certFile,
    keyFile,
    requestsClientCert: ca !== undefined,
    serverOptions: () => ({ ...contextOptions(), requestCert: ca !== undefined, rejectUnauthorized: false }),
    attach(server) {
      servers.push(server);
    },
    setCertificate(next) {
      checkPair(next, "the new serving certificate");
      pair = next;
      push();
    },
    async reloadClientCA() {
      if (opts.clientCAFile === "") return;
      const next = await readOrFail(opts.clientCAFile, "client CA file");
      createSecureContext({ ca: next });
      ca = next;
      push();
    },
  };
}

async function readOrFail(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ConfigError(`cannot read the ${what} ${path}: ${errorMessage(err)}`);
  }
}

function checkPair(pair: CertKeyPair, what: string): void {
  try {
    createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (err) {
    throw new ConfigError(`${what}: not a usable certificate and private key: ${errorMessage(err)}`);
  }
}

/**
 * Upstream's fallback: keeps <cert, key> when both can be read, else generates a fresh self-signed
 * pair and writes it (0600, atomically). Resolves true when it generated one.
 */
export async function ensureSelfSignedCertKey(opts: { certFile: string; keyFile: string; hostname: string; nowMs: number }): Promise<boolean> {
  const readable = await Promise.all([readFile(opts.certFile), readFile(opts.keyFile)]).then(
    () => true,
    () => false,
  );
  if (readable) return false;
  const { certPem, keyPem } = await generateSelfSignedCertKey(opts.hostname, opts.nowMs);
  await mkdir(dirname(opts.certFile), { recursive: true, mode: 0o700 });
  await mkdir(dirname(opts.keyFile), { recursive: true, mode: 0o700 });
  await writeFileAtomic(opts.certFile, certPem);
  await writeFileAtomic(opts.keyFile, keyPem);
  return true;
}

/**
 * A self-signed CA `<host>-ca@<unix-ts>` and a serving leaf `<host>@<unix-ts>` it signed (EKU
 * serverAuth, SAN = host as an IP or DNS name), valid from now-1h for a year, RSA 2048 both.
 * certPem is the leaf followed by the CA; keyPem is the leaf's PKCS#1 "RSA PRIVATE KEY".
 */
export async function generateSelfSignedCertKey(host: string, nowMs: number): Promise<{ certPem: string; keyPem: string }> {
  const subtle = webcrypto.subtle;
  const [caKeys, leafKeys] = await Promise.all([subtle.generateKey(RSA_ALG, true, ["sign", "verify"]), subtle.generateKey(RSA_ALG, true, ["sign", "verify"])]);
  const ts = Math.floor(nowMs / 1000);
  const notBefore = new Date(nowMs - HOUR_MS);
  const notAfter = new Date(nowMs + YEAR_MS);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: [{ CN: [`${host}-ca@${ts}`] }],
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: RSA_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const san = isIP(host) !== 0 ? { type: "ip" as const, value: host } : { type: "dns" as const, value: host };
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: "02",
    subject: [{ CN: [`${host}@${ts}`] }],
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: RSA_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([san]),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await subtle.exportKey("pkcs8", leafKeys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }).export({ type: "pkcs1", format: "pem" }).toString();
  return { certPem: `${leaf.toString("pem")}\n${ca.toString("pem")}\n`, keyPem };
}

/** Certificate files have one writer, the certificate store; the fallback uses its atomic write. */
export { writeFileAtomic };
