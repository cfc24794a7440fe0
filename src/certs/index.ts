/**
 * Kubelet certificates: client bootstrap and rotation (manager), the serving certificate of 10250
 * (serving), the on-disk store, CSRs and the rotation policy. The one public surface of src/certs
 * for the rest of tskubelet.
 */
import type { ApiClient } from "../api/client.js";
import type { LoadedConfiguration } from "../config/index.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { createServingCertificates as createServing, watchServingFiles as watchFiles, type ServingTarget as Target } from "./serving.js";
import type { CertMetrics as Metrics } from "./manager.js";
import { testRotationFraction as fraction } from "./rotation.js";

export { CertStore, CertError, parsePair, splitPem, stamp, writeFileAtomic, type CertPair, type StoreOptions } from "./store.js";
export {
  BOOTSTRAP_USAGES,
  CLIENT_SIGNER,
  CLIENT_USAGES,
  SERVING_SIGNER,
  SERVING_USAGES,
  CsrRejectedError,
  bootstrapCsrName,
  createRequest,
  generateKey,
  importKey,
  servingSans,
  submitCsr,
  waitForCertificate,
  type CsrObject,
  type Subject,
} from "./csr.js";
export { CLIENT_PREFIX, SERVER_PREFIX, bootstrapClientCertificate, clientSubject, inspectKubeconfig, noBootstrapAdvice, writeClientKubeconfig } from "./bootstrap.js";
export { BACKOFF_STEPS_S, EXPIRY_WARNING_MS, ROTATION_CSR_TIMEOUT_MS, RotationSchedule, backoffDelayMs, rotationDeadline, satisfiesTemplate, testRotationFraction, ttlSeconds } from "./rotation.js";
export { createClientCertificates, postNodeEvent, type CertMetrics, type ClientCertificates, type ClientCertOptions } from "./manager.js";
export { createServingCertificates, watchServingFiles, type ServingCertificates, type ServingCertOptions, type ServingTarget } from "./serving.js";

/** Test-only: TSKUBELET_TEST_CSR_EXPIRATION_SECONDS sets spec.expirationSeconds on every CSR (upstream leaves it unset). */
export function testCsrExpirationSeconds(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = Number(env.TSKUBELET_TEST_CSR_EXPIRATION_SECONDS);
  return Number.isInteger(v) && v >= 600 ? v : undefined;
}

/**
 * The kubelet's serving-certificate loops: the CSR-based manager with serverTLSBootstrap (cluster
 * mode only), else a watcher of tlsCertFile/tlsPrivateKeyFile, else nothing (self-signed fallback).
 */
export function servingCertificateLoops(
  d: {
    loaded: LoadedConfiguration;
    api: ApiClient | undefined;
    clock: Clock;
    logger: Logger;
    metrics: Metrics;
    tls: () => Target | undefined;
    addresses: () => { type: string; address: string }[] | undefined;
  },
  signal: AbortSignal,
): Promise<void>[] {
  const { config, nodeName, flags } = d.loaded;
  if (!config.enableServer || config.port <= 0) return [];
  if (config.serverTLSBootstrap && d.api) {
    const f = fraction();
    const exp = testCsrExpirationSeconds();
    const m = createServing({
      api: d.api,
      certDir: flags.certDir,
      nodeName,
      clock: d.clock,
      logger: d.logger,
      metrics: d.metrics,
      addresses: d.addresses,
      tls: d.tls,
      ...(f !== undefined ? { rotationFraction: f } : {}),
      ...(exp !== undefined ? { expirationSeconds: exp } : {}),
    });
    return [m.run(signal)];
  }
  if (config.serverTLSBootstrap) d.logger.warn("serverTLSBootstrap needs a kubeconfig (cluster mode); serving the self-signed certificate");
  if (config.tlsCertFile && config.tlsPrivateKeyFile) {
    return [watchFiles({ certFile: config.tlsCertFile, keyFile: config.tlsPrivateKeyFile, tls: d.tls, clock: d.clock, logger: d.logger, metrics: d.metrics, nodeName, ...(d.api ? { api: d.api } : {}) }).run(signal)];
  }
  return [];
}
