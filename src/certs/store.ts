/**
 * The certificate store, laid out as upstream's client-go certificate store does:
 * `<dir>/<prefix>-YYYY-MM-DD-HH-MM-SS.pem` (certificate chain then private key, mode 0600) and a
 * `<prefix>-current.pem` symlink repointed atomically (a `<prefix>-updated.pem` symlink renamed
 * over it). A leftover `-updated` symlink (a crash between the two steps) is recovered at start.
 * Every step is atomic on its own, so a kill -9 anywhere leaves either the old or the new pair.
 */
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { lstat, mkdir, open, readFile, readlink, rename, symlink, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Clock } from "../util/clock.js";
import { KubeletError, errorMessage } from "../util/errors.js";

export class CertError extends KubeletError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("CertificateInvalid", message, options);
    this.name = "CertError";
  }
}

/** A certificate (chain) and its private key, parsed and checked to belong together. */
export interface CertPair {
  certPem: string;
  keyPem: string;
  /** The leaf. */
  cert: X509Certificate;
  notBefore: number;
  notAfter: number;
  /** Where it was read from (or written to). */
  source: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

/** Splits PEM text into certificate blocks and private key blocks. */
export function splitPem(text: string): { certs: string[]; keys: string[] } {
  const certs: string[] = [];
  const keys: string[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const type = m[1] ?? "";
    if (type === "CERTIFICATE") certs.push(`${m[0]}\n`);
    else if (type.endsWith("PRIVATE KEY")) keys.push(`${m[0]}\n`);
  }
  return { certs, keys };
}

/** Parses a certificate chain and a key; throws a CertError naming `what` when they are unusable or do not match. */
export function parsePair(certText: string, keyText: string, what: string): CertPair {
  const { certs } = splitPem(certText);
  const { keys } = splitPem(keyText);
  const first = certs[0];
  if (first === undefined) throw new CertError(`${what}: no PEM "CERTIFICATE" block found (corrupt or empty certificate file)`);
  const keyPem = keys[0];
  if (keyPem === undefined) throw new CertError(`${what}: no PEM private key block found`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(first);
  } catch (err) {
    throw new CertError(`${what}: the certificate cannot be parsed: ${errorMessage(err)}`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    // Never include the key itself in the message.
    throw new CertError(`${what}: the private key cannot be parsed: ${errorMessage(err)}`);
  }
  if (!cert.checkPrivateKey(key)) {
    const pub = createPublicKey(key);
    throw new CertError(`${what}: the private key does not match the certificate (certificate subject ${oneLine(cert.subject)}, key type ${pub.asymmetricKeyType ?? "unknown"})`);
  }
  return { certPem: certs.join(""), keyPem, cert, notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo), source: what };
}

export function oneLine(dn: string): string {
  return dn.split("\n").filter(Boolean).join(", ");
}

/** Where a pair may come from besides the store's current file (upstream's lookup order). */
export interface StoreOptions {
  dir: string;
  /** kubelet-client or kubelet-server. */
  prefix: string;
  clock: Clock;
  /** Explicit files (tlsCertFile/tlsPrivateKeyFile for the server prefix), tried after -current.pem. */
  certFile?: string;
  keyFile?: string;
  /** Test hook: called after each step of update(); throwing simulates a crash there. */
  afterStep?: (step: "pem-written" | "updated-linked" | "renamed") => void;
}

export class CertStore {
  readonly currentPath: string;
  readonly updatedPath: string;

  constructor(private readonly opts: StoreOptions) {
    this.currentPath = join(opts.dir, `${opts.prefix}-current.pem`);
    this.updatedPath = join(opts.dir, `${opts.prefix}-updated.pem`);
  }

  /**
   * Finishes an update a crash interrupted: a `-updated` symlink whose target holds a usable pair
   * becomes `-current`; a broken one is removed. Resolves to what it did, for the log.
   */
  async recover(): Promise<"none" | "recovered" | "discarded"> {
    const st = await lstat(this.updatedPath).catch(() => undefined);
    if (!st) return "none";
    try {
      const text = await readFile(this.updatedPath, "utf8");
      parsePair(text, text, this.updatedPath);
      await rename(this.updatedPath, this.currentPath);
      await syncDir(this.opts.dir);
      return "recovered";
    } catch {
      await unlink(this.updatedPath).catch(() => undefined);
      return "discarded";
    }
  }

  /**
   * The current pair: `-current.pem`, else the explicit files, else `<prefix>.crt`/`.key`.
   * Resolves undefined when none exist; throws a CertError when one exists but is unusable.
   */
  async load(): Promise<CertPair | undefined> {
    const current = await readFile(this.currentPath, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw new CertError(`cannot read ${this.currentPath}: ${err.message}`);
    });
    if (current !== undefined) return parsePair(current, current, this.currentPath);
    const candidates: [string, string][] = [];
    if (this.opts.certFile && this.opts.keyFile) candidates.push([this.opts.certFile, this.opts.keyFile]);
    candidates.push([join(this.opts.dir, `${this.opts.prefix}.crt`), join(this.opts.dir, `${this.opts.prefix}.key`)]);
    for (const [c, k] of candidates) {
      const [ct, kt] = await Promise.all([readFile(c, "utf8").catch(() => undefined), readFile(k, "utf8").catch(() => undefined)]);
      if (ct === undefined || kt === undefined) continue;
      return parsePair(ct, kt, `${c} and ${k}`);
    }
    return undefined;
  }

  /** Writes a new timestamped pair file and points `-current.pem` at it, atomically. */
  async update(certPem: string, keyPem: string): Promise<CertPair> {
    const pair = parsePair(certPem, keyPem, "the new certificate");
    await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    const file = join(this.opts.dir, `${this.opts.prefix}-${stamp(this.opts.clock.now())}.pem`);
    await writeFileAtomic(file, `${pair.certPem.trimEnd()}\n${pair.keyPem.trimEnd()}\n`);
    this.opts.afterStep?.("pem-written");
    await unlink(this.updatedPath).catch(() => undefined);
    await symlink(basename(file), this.updatedPath);
    this.opts.afterStep?.("updated-linked");
    await rename(this.updatedPath, this.currentPath);
    await syncDir(this.opts.dir);
    this.opts.afterStep?.("renamed");
    return { ...pair, source: this.currentPath };
  }

  /** The file -current.pem points at, or undefined. */
  async currentTarget(): Promise<string | undefined> {
    const t = await readlink(this.currentPath).catch(() => undefined);
    return t === undefined ? undefined : join(this.opts.dir, t);
  }
}

/** YYYY-MM-DD-HH-MM-SS (UTC), as upstream names pair files. */
export function stamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}-${p(d.getUTCHours())}-${p(d.getUTCMinutes())}-${p(d.getUTCSeconds())}`;
}

/** Writes through a temporary file, fsync and rename, mode 0600 unless told otherwise. */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r").catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => undefined);
  await fh.close();
}
