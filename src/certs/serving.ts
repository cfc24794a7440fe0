/**
 * The serving certificate of 10250. With serverTLSBootstrap (--rotate-server-certificates): a
 * kubernetes.io/kubelet-serving CSR whose SANs are the Node's status.addresses, sent once an IP is
 * known, stored as kubelet-server-*.pem and rotated like the client certificate (also when the
 * addresses change). With tlsCertFile/tlsPrivateKeyFile: the files are reread when they change.
 * Either way the new certificate goes to the live server; open connections keep theirs.
 */
import { readFile } from "node:fs/promises";
import type { ApiClient } from "../api/client.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { SERVER_PREFIX } from "./bootstrap.js";
import { SERVING_SIGNER, SERVING_USAGES, createRequest, generateKey, servingSans, submitCsr, waitForCertificate, type Subject } from "./csr.js";
import { expiryWarner, type CertMetrics } from "./manager.js";
import { ROTATION_CSR_TIMEOUT_MS, RotationSchedule, satisfiesTemplate, ttlSeconds } from "./rotation.js";
import { CertStore, parsePair, type CertPair } from "./store.js";

/** What the 10250 server's TLS offers for swapping certificates (src/server/tls.ts ServingTLS has it). */
export interface ServingTarget {
  setCertificate(pair: { cert: string | Buffer; key: string | Buffer }): void;
}

export interface ServingCertOptions {
  api: ApiClient;
  certDir: string;
  nodeName: string;
  clock: Clock;
  logger: Logger;
  metrics?: CertMetrics;
  /** The Node's last observed status.addresses. */
  addresses: () => { type: string; address: string }[] | undefined;
  /** The live 10250 TLS (absent until the server listens). */
  tls: () => ServingTarget | undefined;
  random?: () => number;
  rotationFraction?: number;
  expirationSeconds?: number;
  pollMs?: number;
  /** How often to look at the addresses while waiting for an IP or the deadline. */
  checkMs?: number;
}

export interface ServingCertificates {
  run(signal: AbortSignal): Promise<void>;
  current(): CertPair | undefined;
}

export function createServingCertificates(o: ServingCertOptions): ServingCertificates {
  const { clock } = o;
  const logger = o.logger.with({ component: "serving-certificate" });
  const random = o.random ?? Math.random;
  const store = new CertStore({ dir: o.certDir, prefix: SERVER_PREFIX, clock });
  const schedule = new RotationSchedule(random, o.rotationFraction);
  const checkMs = o.checkMs ?? 5_000;
  let pair: CertPair | undefined;
  let applied = "";
  if (o.metrics) o.metrics.certificateTTL.server = () => ttlSeconds(pair && pair.notAfter > clock.now() ? pair : undefined, clock.now());
  const warn = expiryWarner({ what: "serving", nodeName: o.nodeName, clock, logger, api: () => o.api });

  /** Pushes the pair to the live server once it listens. */
  const apply = (): void => {
    const tls = o.tls();
    if (!pair || !tls || applied === pair.cert.fingerprint256) return;
    try {
      tls.setCertificate({ cert: pair.certPem, key: pair.keyPem });
      applied = pair.cert.fingerprint256;
      logger.info("10250 now serves the certificate", { file: store.currentPath, notAfter: new Date(pair.notAfter).toISOString() });
    } catch (err) {
      logger.error("cannot serve the new certificate; keeping the previous one", { err: errorMessage(err) });
    }
  };

  const template = (): Subject | undefined => {
    const sans = servingSans(o.addresses() ?? []);
    if (sans.ips.length === 0) return undefined;
    return { cn: `system:node:${o.nodeName}`, orgs: ["system:nodes"], dnsNames: sans.dnsNames, ips: sans.ips };
  };

  const rotate = async (t: Subject, signal: AbortSignal): Promise<void> => {
    const key = await generateKey();
    const csr = await submitCsr(o.api, {
      requestPem: await createRequest(key, t),
      signerName: SERVING_SIGNER,
      usages: SERVING_USAGES,
      ...(o.expirationSeconds !== undefined ? { expirationSeconds: o.expirationSeconds } : {}),
    });
    const name = csr.metadata.name;
    logger.info(`requested a serving certificate; it needs approval: kubectl certificate approve ${name}`, { csr: name, ips: t.ips, dnsNames: t.dnsNames });
    let lastHint = clock.now();
    const certPem = await waitForCertificate(o.api, csr, {
      clock,
      signal,
      timeoutMs: ROTATION_CSR_TIMEOUT_MS,
      ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
      onPending: () => {
        if (clock.now() - lastHint < 60_000) return;
        lastHint = clock.now();
        logger.info(`serving certificate signing request ${name} is pending approval; to approve it run: kubectl certificate approve ${name}`, { csr: name });
      },
    });
    const old = pair;
    pair = await store.update(certPem, key.keyPem);
    if (old) o.metrics?.certServerRotationSeconds.observe(Math.max(0, (clock.now() - old.notBefore) / 1000));
    logger.info("serving certificate issued and stored", { csr: name, file: store.currentPath });
  };

  const step = async (signal: AbortSignal): Promise<void> => {
    apply();
    const t = template();
    if (!t) {
      await clock.sleep(checkMs, signal);
      return;
    }
    const now = clock.now();
    const fits = pair !== undefined && pair.notAfter > now && satisfiesTemplate(pair.cert, t);
    if (pair && fits) {
      const deadline = schedule.deadlineOf(pair);
      if (now < deadline) {
        await clock.sleep(Math.min(deadline - now, checkMs), signal);
        return;
      }
    }
    try {
      await rotate(t, signal);
      schedule.succeeded();
      apply();
    } catch (err) {
      if (signal.aborted) throw err;
      o.metrics?.certServerRenewErrors.inc();
      const wait = schedule.failed();
      logger.error("serving certificate request failed; retrying", { err: errorMessage(err), attempt: schedule.failureCount, retryInMs: wait });
      if (pair) warn(pair, `rotation fails: ${errorMessage(err)}`);
      await clock.sleep(wait, signal);
    }
  };

  return {
    current: () => pair,
    async run(signal) {
      const recovered = await store.recover().catch(() => "none");
      if (recovered !== "none") logger.info(`found ${store.updatedPath} left by an interrupted update`, { action: recovered });
      try {
        const stored = await store.load();
        if (stored && stored.notAfter > clock.now()) pair = stored;
      } catch (err) {
        logger.warn("ignoring the stored serving certificate; requesting a new one", { err: errorMessage(err) });
      }
      while (!signal.aborted) {
        try {
          await step(signal);
        } catch (err) {
          if (signal.aborted) return;
          logger.error("serving certificate manager error; retrying in 10s", { err: errorMessage(err) });
          await clock.sleep(10_000, signal).catch(() => undefined);
        }
      }
    },
  };
}

export interface ServingFilesOptions {
  certFile: string;
  keyFile: string;
  tls: () => ServingTarget | undefined;
  clock: Clock;
  logger: Logger;
  metrics?: CertMetrics;
  nodeName: string;
  api?: ApiClient;
  intervalMs?: number;
}

/**
 * Rereads tlsCertFile/tlsPrivateKeyFile every intervalMs (10 s) and serves them when they changed
 * and form a usable pair; a corrupt or mismatched pair is reported and the previous one kept.
 */
export function watchServingFiles(o: ServingFilesOptions): { run(signal: AbortSignal): Promise<void> } {
  const logger = o.logger.with({ component: "serving-certificate" });
  let last = "";
  let pair: CertPair | undefined;
  let reported = "";
  if (o.metrics) o.metrics.certificateTTL.server = () => ttlSeconds(pair, o.clock.now());
  const warn = expiryWarner({ what: "serving", nodeName: o.nodeName, clock: o.clock, logger, api: () => o.api });
  const check = async (first: boolean): Promise<void> => {
    const [c, k] = await Promise.all([readFile(o.certFile, "utf8"), readFile(o.keyFile, "utf8")]);
    const sig = `${c}\0${k}`;
    if (sig === last) return;
    const next = parsePair(c, k, `${o.certFile} and ${o.keyFile}`);
    last = sig;
    pair = next;
    if (!first) {
      o.tls()?.setCertificate({ cert: next.certPem, key: next.keyPem });
      logger.info("the serving certificate files changed; 10250 serves the new certificate", { cert: o.certFile, notAfter: new Date(next.notAfter).toISOString() });
    }
  };
  return {
    async run(signal) {
      let first = true;
      while (!signal.aborted) {
        try {
          await check(first);
          reported = "";
        } catch (err) {
          const msg = errorMessage(err);
          if (msg !== reported) logger.error("cannot use the changed serving certificate files; keeping the previous certificate", { err: msg });
          reported = msg;
        }
        first = false;
        if (pair) warn(pair, "it comes from tlsCertFile, which tskubelet does not renew");
        await o.clock.sleep(o.intervalMs ?? 10_000, signal).catch(() => undefined);
      }
    },
  };
}
