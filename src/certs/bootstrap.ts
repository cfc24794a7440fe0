/**
 * Client certificate bootstrap (upstream's pkg/kubelet/certificate/bootstrap): deciding whether the
 * --kubeconfig is usable, writing the kubeconfig that points at kubelet-client-current.pem, and
 * getting a first certificate with the bootstrap credentials through a deterministically named CSR.
 */
import { readFile, unlink } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { ApiClient } from "../api/client.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { KubeletError, errorMessage } from "../util/errors.js";
import { BOOTSTRAP_USAGES, CLIENT_SIGNER, CsrRejectedError, bootstrapCsrName, createRequest, generateKey, importKey, submitCsr, waitForCertificate, type Subject } from "./csr.js";
import { CertStore, parsePair, writeFileAtomic, type CertPair } from "./store.js";
import { backoffDelayMs } from "./rotation.js";

export const CLIENT_PREFIX = "kubelet-client";
export const SERVER_PREFIX = "kubelet-server";
const BOOTSTRAP_WAIT_MS = 3_600_000;

export function clientSubject(nodeName: string): Subject {
  return { cn: `system:node:${nodeName}`, orgs: ["system:nodes"] };
}

interface KubeconfigDoc {
  clusters?: { name: string; cluster: Record<string, unknown> }[];
  users?: { name: string; user: Record<string, unknown> }[];
  contexts?: { name: string; context: { cluster?: string; user?: string; namespace?: string } }[];
  "current-context"?: string;
}

export interface KubeconfigState {
  /** "usable": every certificate in it is readable, matches its key and has not expired. */
  state: "missing" | "usable" | "expired" | "invalid" | "token";
  /** Why it cannot be used, for the log. */
  problem?: string;
  /** The client pair it references or embeds. */
  pair?: CertPair;
  /** Whether its user already points at <certDir>/kubelet-client-current.pem. */
  usesStore: boolean;
}

async function readKubeconfig(path: string): Promise<KubeconfigDoc | undefined> {
  const text = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (text === undefined) return undefined;
  const doc = parseYaml(text) as KubeconfigDoc | null;
  if (!doc || typeof doc !== "object") throw new KubeletError("KubeconfigInvalid", `${path} is not a kubeconfig`);
  return doc;
}

function currentEntries(doc: KubeconfigDoc, path: string): { cluster: Record<string, unknown>; user: Record<string, unknown> } {
  const ctxName = doc["current-context"] ?? doc.contexts?.[0]?.name;
  const ctx = doc.contexts?.find((c) => c.name === ctxName)?.context;
  const cluster = doc.clusters?.find((c) => c.name === ctx?.cluster)?.cluster ?? doc.clusters?.[0]?.cluster;
  const user = doc.users?.find((u) => u.name === ctx?.user)?.user ?? doc.users?.[0]?.user ?? {};
  if (!cluster) throw new KubeletError("KubeconfigInvalid", `${path} has no cluster for its current context`);
  return { cluster, user };
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const resolveFrom = (base: string, p: string): string => (isAbsolute(p) ? p : resolve(dirname(base), p));

/** Looks at --kubeconfig the way upstream's LoadClientConfig does before deciding to bootstrap. */
export async function inspectKubeconfig(path: string, certDir: string, nowMs: number): Promise<KubeconfigState> {
  let doc: KubeconfigDoc | undefined;
  try {
    doc = await readKubeconfig(path);
  } catch (err) {
    return { state: "invalid", problem: `cannot read the kubeconfig ${path}: ${errorMessage(err)}`, usesStore: false };
  }
  if (!doc) return { state: "missing", problem: `the kubeconfig ${path} does not exist`, usesStore: false };
  let user: Record<string, unknown>;
  try {
    user = currentEntries(doc, path).user;
  } catch (err) {
    return { state: "invalid", problem: errorMessage(err), usesStore: false };
  }
  const certFile = str(user["client-certificate"]);
  const keyFile = str(user["client-key"]);
  const certData = str(user["client-certificate-data"]);
  const keyData = str(user["client-key-data"]);
  const storePath = join(certDir, `${CLIENT_PREFIX}-current.pem`);
  const usesStore = certFile !== undefined && resolveFrom(path, certFile) === resolve(storePath);
  // Token, exec or auth-provider users: no certificate for tskubelet to manage.
  if (!certFile && !certData) return { state: "token", usesStore };
  let certText: string;
  let keyText: string;
  try {
    certText = certData ? Buffer.from(certData, "base64").toString("utf8") : await readRef(path, certFile ?? "", "client-certificate");
    keyText = keyData ? Buffer.from(keyData, "base64").toString("utf8") : keyFile ? await readRef(path, keyFile, "client-key") : "";
  } catch (err) {
    return { state: "invalid", problem: errorMessage(err), usesStore };
  }
  let pair: CertPair;
  try {
    pair = parsePair(certText, keyText, certData ? `the client certificate embedded in ${path}` : resolveFrom(path, certFile ?? ""));
  } catch (err) {
    return { state: "invalid", problem: errorMessage(err), usesStore };
  }
  if (pair.notAfter <= nowMs) return { state: "expired", problem: `the client certificate in ${pair.source} expired at ${new Date(pair.notAfter).toISOString()}`, pair, usesStore };
  return { state: "usable", pair, usesStore };
}

async function readRef(kubeconfig: string, ref: string, field: string): Promise<string> {
  const p = resolveFrom(kubeconfig, ref);
  try {
    return await readFile(p, "utf8");
  } catch (err) {
    throw new KubeletError("KubeconfigInvalid", `the kubeconfig ${kubeconfig} points ${field} at ${p}, which cannot be read: ${errorMessage(err)}`);
  }
}

/**
 * Writes --kubeconfig as upstream does after bootstrap: the cluster (server, CA, insecure flag) of
 * `sourceKubeconfig` as default-cluster, user default-auth with client-certificate and client-key
 * both at <certDir>/kubelet-client-current.pem, context default-context (namespace default).
 */
export async function writeClientKubeconfig(target: string, sourceKubeconfig: string, certDir: string): Promise<void> {
  const doc = await readKubeconfig(sourceKubeconfig);
  if (!doc) throw new KubeletError("KubeconfigInvalid", `the kubeconfig ${sourceKubeconfig} does not exist`);
  const { cluster } = currentEntries(doc, sourceKubeconfig);
  const out: Record<string, unknown> = { server: cluster.server };
  if (str(cluster["certificate-authority-data"])) out["certificate-authority-data"] = cluster["certificate-authority-data"];
  else if (str(cluster["certificate-authority"])) out["certificate-authority"] = resolveFrom(sourceKubeconfig, String(cluster["certificate-authority"]));
  if (cluster["insecure-skip-tls-verify"] === true) out["insecure-skip-tls-verify"] = true;
  if (str(cluster["tls-server-name"])) out["tls-server-name"] = cluster["tls-server-name"];
  const pem = resolve(join(certDir, `${CLIENT_PREFIX}-current.pem`));
  const kc = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "default-cluster", cluster: out }],
    users: [{ name: "default-auth", user: { "client-certificate": pem, "client-key": pem } }],
    contexts: [{ name: "default-context", context: { cluster: "default-cluster", user: "default-auth", namespace: "default" } }],
    "current-context": "default-context",
    preferences: {},
  };
  await writeFileAtomic(target, stringifyYaml(kc), 0o600);
}

/** The apiserver URL of a kubeconfig's current cluster ("" when unknown). */
export async function kubeconfigServer(path: string): Promise<string> {
  try {
    const doc = await readKubeconfig(path);
    return doc ? (str(currentEntries(doc, path).cluster.server) ?? "") : "";
  } catch {
    return "";
  }
}

export interface BootstrapOptions {
  /** A client with the bootstrap credentials. */
  api: ApiClient;
  store: CertStore;
  certDir: string;
  nodeName: string;
  clock: Clock;
  logger: Logger;
  signal: AbortSignal;
  random: () => number;
  /** Called after every failed attempt (the renew-error counter). */
  onError?: (err: unknown) => void;
  /** Test hook: shorter waits. */
  pollMs?: number;
  /** spec.expirationSeconds for the CSR (unset upstream; tests shorten certificates with it). */
  expirationSeconds?: number;
}

/**
 * Gets a client certificate with the bootstrap credentials. The key lives in
 * <certDir>/kubelet-client.key.tmp until the certificate is stored, so a restart asks again under
 * the same node-csr-<hash> name. Retries with backoff until it succeeds or the signal aborts;
 * a Denied CSR is logged as such and the next attempt uses a new key (a new name).
 */
export async function bootstrapClientCertificate(o: BootstrapOptions): Promise<CertPair> {
  const tmpKey = join(o.certDir, `${CLIENT_PREFIX}.key.tmp`);
  const subject = clientSubject(o.nodeName);
  let failures = 0;
  for (;;) {
    o.signal.throwIfAborted();
    try {
      let key;
      const existing = await readFile(tmpKey, "utf8").catch(() => undefined);
      try {
        key = existing !== undefined ? await importKey(existing) : undefined;
      } catch (err) {
        o.logger.warn("ignoring an unusable bootstrap key; generating a new one", { file: tmpKey, err: errorMessage(err) });
      }
      if (!key) {
        key = await generateKey();
        await writeFileAtomic(tmpKey, key.keyPem, 0o600);
      }
      const name = bootstrapCsrName(key.spkiDer, subject, BOOTSTRAP_USAGES);
      const requestPem = await createRequest(key, subject);
      const csr = await submitCsr(o.api, {
        name,
        requestPem,
        signerName: CLIENT_SIGNER,
        usages: BOOTSTRAP_USAGES,
        ...(o.expirationSeconds !== undefined ? { expirationSeconds: o.expirationSeconds } : {}),
      });
      let lastHint = Number.NEGATIVE_INFINITY;
      o.logger.info("waiting for the client certificate signing request to be approved", { csr: name, signer: CLIENT_SIGNER, approve: `kubectl certificate approve ${name}` });
      const certPem = await waitForCertificate(o.api, csr, {
        clock: o.clock,
        signal: o.signal,
        timeoutMs: BOOTSTRAP_WAIT_MS,
        ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
        onPending: () => {
          if (o.clock.now() - lastHint < 30_000) return;
          lastHint = o.clock.now();
          o.logger.info(`certificate signing request ${name} is pending approval; to approve it run: kubectl certificate approve ${name}`, { csr: name });
        },
      });
      const pair = await o.store.update(certPem, key.keyPem);
      await unlink(tmpKey).catch(() => undefined);
      o.logger.info("client certificate issued and stored", { csr: name, file: o.store.currentPath, notAfter: new Date(pair.notAfter).toISOString() });
      return pair;
    } catch (err) {
      if (o.signal.aborted) throw err;
      failures++;
      o.onError?.(err);
      if (err instanceof CsrRejectedError) {
        // The name is derived from the key: a new key asks again under a new name.
        await unlink(tmpKey).catch(() => undefined);
      }
      const wait = backoffDelayMs(failures, o.random);
      o.logger.error("client certificate bootstrap failed; retrying", { err: errorMessage(err), retryInMs: wait });
      await o.clock.sleep(wait, o.signal);
    }
  }
}

/** The exact steps when the client certificate is unusable and there is no bootstrap kubeconfig. */
export function noBootstrapAdvice(kubeconfig: string, problem: string, nodeName: string): string {
  return (
    `${problem}; there is no --bootstrap-kubeconfig, so tskubelet cannot get a new client certificate by itself. ` +
    `Either pass --bootstrap-kubeconfig=<file with a bootstrap token> (tskubelet then requests and stores a new certificate without a restart), ` +
    `or issue a certificate for CN=system:node:${nodeName}, O=system:nodes from the cluster CA (tskubelet certs issue) and update ${kubeconfig}; tskubelet rereads it every minute.`
  );
}
