/**
 * The client certificate manager: decides at start whether --kubeconfig is usable or the kubelet
 * must bootstrap, hands out an ApiClient that works across certificate changes (it waits briefly
 * while there is none yet, and reloads after each new certificate), rotates the certificate at its
 * deadline when rotateCertificates is on, and bootstraps again by itself when the certificate has
 * expired and a bootstrap kubeconfig exists.
 */
import { randomBytes } from "node:crypto";
import type { ApiClient, ApiRequest, WatchEvent } from "../api/client.js";
import { ApiError } from "../api/client.js";
import { rfc3339 } from "../api/json.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { KubeletError, errorMessage } from "../util/errors.js";
import { CLIENT_PREFIX, bootstrapClientCertificate, clientSubject, inspectKubeconfig, kubeconfigServer, noBootstrapAdvice, writeClientKubeconfig } from "./bootstrap.js";
import { CLIENT_USAGES, CLIENT_SIGNER, createRequest, generateKey, submitCsr, waitForCertificate, type Subject } from "./csr.js";
import { EXPIRY_WARNING_MS, ROTATION_CSR_TIMEOUT_MS, RotationSchedule, ttlSeconds } from "./rotation.js";
import { CertStore, type CertPair } from "./store.js";

/** What the certificate managers record; KubeletMetrics provides it. */
export interface CertMetrics {
  certificateTTL: { client: () => number; server: () => number };
  certClientRenewErrors: { inc(): void };
  certServerRenewErrors: { inc(): void };
  certServerRotationSeconds: { observe(v: number): void };
}

export interface ClientCertOptions {
  kubeconfig: string;
  /** "" when there is none. */
  bootstrapKubeconfig: string;
  certDir: string;
  nodeName: string;
  /** rotateCertificates / --rotate-certificates. */
  rotate: boolean;
  clock: Clock;
  logger: Logger;
  metrics?: CertMetrics;
  createClient: (kubeconfigPath: string) => Promise<ApiClient>;
  random?: () => number;
  /** Test-only: rotate at this fraction of the lifetime instead of a random 70-90%. */
  rotationFraction?: number;
  /** Test-only: spec.expirationSeconds on the CSRs. */
  expirationSeconds?: number;
  pollMs?: number;
  /** How often to reread --kubeconfig while its certificate is unusable and there is no bootstrap kubeconfig. */
  recheckMs?: number;
}

export interface ClientCertificates {
  /** An ApiClient that always uses the current certificate. */
  readonly api: ApiClient;
  current(): CertPair | undefined;
  /** Bootstraps, rotates and recovers until the signal aborts. */
  run(signal: AbortSignal): Promise<void>;
}

/** Posts a Node event (best effort). */
export async function postNodeEvent(api: ApiClient, e: { nodeName: string; type: "Normal" | "Warning"; reason: string; message: string; nowMs: number }): Promise<void> {
  const ts = rfc3339(new Date(e.nowMs));
  await api.request({
    method: "POST",
    path: "/api/v1/namespaces/default/events",
    body: {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${e.nodeName}.${randomBytes(8).toString("hex")}`, namespace: "default" },
      involvedObject: { apiVersion: "v1", kind: "Node", name: e.nodeName, uid: e.nodeName },
      reason: e.reason,
      message: e.message,
      type: e.type,
      source: { component: "kubelet", host: e.nodeName },
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    },
  });
}

/** Warns (log + Event) at most once a day per certificate when it is within 30 days of expiry and cannot rotate. */
export function expiryWarner(o: { what: string; nodeName: string; clock: Clock; logger: Logger; api: () => ApiClient | undefined }): (pair: CertPair, why: string) => void {
  const last = new Map<string, number>();
  return (pair, why) => {
    const now = o.clock.now();
    const left = pair.notAfter - now;
    if (left > EXPIRY_WARNING_MS) return;
    const fp = pair.cert.fingerprint256;
    if (now - (last.get(fp) ?? Number.NEGATIVE_INFINITY) < 24 * 3_600_000) return;
    last.set(fp, now);
    const days = Math.max(0, Math.floor(left / 86_400_000));
    const message = `the ${o.what} certificate (${pair.source}) expires at ${new Date(pair.notAfter).toISOString()} (in ${days} days) and cannot rotate: ${why}`;
    o.logger.warn(message);
    const api = o.api();
    if (api) {
      postNodeEvent(api, { nodeName: o.nodeName, type: "Warning", reason: "CertificateExpiring", message, nowMs: now }).catch((err: unknown) =>
        o.logger.v(2).info("could not post the certificate expiry event", { err: errorMessage(err) }),
      );
    }
  };
}

export async function createClientCertificates(o: ClientCertOptions): Promise<ClientCertificates> {
  const { clock, logger: baseLogger } = o;
  const logger = baseLogger.with({ component: "certificates" });
  const random = o.random ?? Math.random;
  const store = new CertStore({ dir: o.certDir, prefix: CLIENT_PREFIX, clock });
  const schedule = new RotationSchedule(random, o.rotationFraction);
  const subject: Subject = clientSubject(o.nodeName);
  let inner: ApiClient | undefined;
  let bootApi: ApiClient | undefined;
  let pair: CertPair | undefined;
  let tokenOnly = false;
  let usesStore = false;
  let readyWaiters: (() => void)[] = [];
  let serverHint = await kubeconfigServer(o.kubeconfig);
  if (!serverHint && o.bootstrapKubeconfig) serverHint = await kubeconfigServer(o.bootstrapKubeconfig);

  const recovered = await store.recover();
  if (recovered !== "none") logger.info(`found ${store.updatedPath} left by an interrupted update`, { action: recovered });
  const st = await inspectKubeconfig(o.kubeconfig, o.certDir, clock.now());
  usesStore = st.usesStore;
  if (st.state === "usable" || st.state === "token") {
    pair = st.pair;
    tokenOnly = st.state === "token";
    inner = await o.createClient(o.kubeconfig);
  } else if (o.bootstrapKubeconfig) {
    let stored: CertPair | undefined;
    try {
      stored = await store.load();
    } catch (err) {
      logger.warn("ignoring the stored client certificate", { err: errorMessage(err) });
    }
    logger.info("the kubeconfig cannot be used; bootstrapping a client certificate", { problem: st.problem ?? st.state, bootstrapKubeconfig: o.bootstrapKubeconfig });
    await writeClientKubeconfig(o.kubeconfig, o.bootstrapKubeconfig, o.certDir);
    usesStore = true;
    if (stored && stored.notAfter > clock.now()) {
      pair = stored;
      inner = await o.createClient(o.kubeconfig);
    }
  } else if (st.state === "expired" && st.pair) {
    // Keep running (pods, the local API) and say what to do; the kubeconfig is reread every minute.
    logger.error(noBootstrapAdvice(o.kubeconfig, st.problem ?? "", o.nodeName));
    pair = st.pair;
    inner = await o.createClient(o.kubeconfig);
  } else {
    throw new KubeletError("KubeconfigInvalid", noBootstrapAdvice(o.kubeconfig, st.problem ?? `the kubeconfig ${o.kubeconfig} is unusable`, o.nodeName));
  }

  const metrics = o.metrics;
  if (metrics) metrics.certificateTTL.client = () => ttlSeconds(pair && pair.notAfter > clock.now() ? pair : undefined, clock.now());
  const warn = expiryWarner({ what: "client", nodeName: o.nodeName, clock, logger, api: () => inner });

  const install = async (next: CertPair): Promise<void> => {
    if (!usesStore) {
      const source = (await kubeconfigServer(o.kubeconfig)) ? o.kubeconfig : o.bootstrapKubeconfig;
      await writeClientKubeconfig(o.kubeconfig, source, o.certDir);
      usesStore = true;
      logger.info("kubeconfig now points at the certificate store", { kubeconfig: o.kubeconfig, cert: store.currentPath });
    }
    pair = next;
    if (inner) await inner.reload();
    else inner = await o.createClient(o.kubeconfig);
    const waiters = readyWaiters;
    readyWaiters = [];
    for (const w of waiters) w();
    logger.info("the API client now uses the new client certificate", { notBefore: new Date(next.notBefore).toISOString(), notAfter: new Date(next.notAfter).toISOString() });
  };

  const client = async (): Promise<ApiClient> => {
    if (inner) return inner;
    // Bootstrapping: give it a moment, then fail like an unreachable apiserver so callers back off.
    await new Promise<void>((resolve) => {
      const cancel = clock.setTimer(2_000, resolve);
      readyWaiters.push(() => {
        cancel();
        resolve();
      });
    });
    if (inner) return inner;
    throw new ApiError(0, "NoCredentials", `no client certificate yet for system:node:${o.nodeName}: waiting for its certificate signing request to be approved (kubectl get csr)`);
  };

  const api: ApiClient = {
    get server() {
      return inner?.server ?? serverHint;
    },
    identity: () => inner?.identity() ?? `system:node:${o.nodeName} (bootstrapping)`,
    request: async <T>(req: ApiRequest): Promise<T> => (await client()).request<T>(req),
    watch: async <T>(req: Omit<ApiRequest, "method" | "body">, onEvent: (e: WatchEvent<T>) => void): Promise<void> => (await client()).watch<T>(req, onEvent),
    reload: async () => {
      await inner?.reload();
    },
    close: () => {
      inner?.close();
      bootApi?.close();
    },
  };

  const rotateOnce = async (signal: AbortSignal): Promise<CertPair> => {
    if (!inner) throw new KubeletError("NoClient", "no API client to rotate with");
    const key = await generateKey();
    const csr = await submitCsr(inner, {
      requestPem: await createRequest(key, subject),
      signerName: CLIENT_SIGNER,
      usages: CLIENT_USAGES,
      ...(o.expirationSeconds !== undefined ? { expirationSeconds: o.expirationSeconds } : {}),
    });
    logger.info("rotating the client certificate", { csr: csr.metadata.name });
    const certPem = await waitForCertificate(inner, csr, {
      clock,
      signal,
      timeoutMs: ROTATION_CSR_TIMEOUT_MS,
      ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
    });
    return store.update(certPem, key.keyPem);
  };

  const recheckKubeconfig = async (): Promise<void> => {
    const again = await inspectKubeconfig(o.kubeconfig, o.certDir, clock.now());
    if (again.state === "usable" && again.pair && again.pair.cert.fingerprint256 !== pair?.cert.fingerprint256) {
      pair = again.pair;
      usesStore = again.usesStore;
      await inner?.reload();
      logger.info("the kubeconfig has a new usable client certificate; using it", { notAfter: new Date(again.pair.notAfter).toISOString() });
    }
  };

  const step = async (signal: AbortSignal): Promise<void> => {
    const now = clock.now();
    if (!pair || pair.notAfter <= now) {
      if (o.bootstrapKubeconfig) {
        if (pair) logger.warn("the client certificate has expired; bootstrapping a new one with the bootstrap kubeconfig", { expired: new Date(pair.notAfter).toISOString(), bootstrapKubeconfig: o.bootstrapKubeconfig });
        bootApi ??= await o.createClient(o.bootstrapKubeconfig);
        const next = await bootstrapClientCertificate({
          api: bootApi,
          store,
          certDir: o.certDir,
          nodeName: o.nodeName,
          clock,
          logger,
          signal,
          random,
          onError: () => metrics?.certClientRenewErrors.inc(),
          ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
          ...(o.expirationSeconds !== undefined ? { expirationSeconds: o.expirationSeconds } : {}),
        });
        await install(next);
        return;
      }
      logger.error(noBootstrapAdvice(o.kubeconfig, pair ? `the client certificate expired at ${new Date(pair.notAfter).toISOString()}` : "there is no client certificate", o.nodeName));
      await clock.sleep(o.recheckMs ?? 60_000, signal);
      await recheckKubeconfig();
      return;
    }
    if (!o.rotate) {
      warn(pair, "rotateCertificates is off");
      await clock.sleep(Math.min(pair.notAfter - now + 1, o.recheckMs ?? 60_000), signal);
      await recheckKubeconfig();
      return;
    }
    const deadline = schedule.deadlineOf(pair);
    if (now < deadline) {
      await clock.sleep(Math.min(deadline - now, 3_600_000), signal);
      return;
    }
    try {
      const next = await rotateOnce(signal);
      schedule.succeeded();
      await install(next);
    } catch (err) {
      if (signal.aborted) throw err;
      metrics?.certClientRenewErrors.inc();
      const wait = schedule.failed();
      logger.error("client certificate rotation failed; retrying", { err: errorMessage(err), attempt: schedule.failureCount, retryInMs: wait });
      warn(pair, `rotation fails: ${errorMessage(err)}`);
      await clock.sleep(wait, signal);
    }
  };

  return {
    api,
    current: () => pair,
    async run(signal) {
      if (tokenOnly) return;
      while (!signal.aborted) {
        try {
          await step(signal);
        } catch (err) {
          if (signal.aborted) return;
          logger.error("client certificate manager error; retrying in 10s", { err: errorMessage(err) });
          await clock.sleep(10_000, signal).catch(() => undefined);
        }
      }
    },
  };
}
