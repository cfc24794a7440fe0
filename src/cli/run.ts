/** `tskubelet [flags]`: loads the configuration, connects to the runtime and runs the kubelet. */
import { setMaxListeners } from "node:events";
import { createImageService, createRuntimeService } from "../cri/index.js";
import type { LoadedConfiguration } from "../config/index.js";
import { createKubelet } from "../kubelet.js";
import { createApiClient, type ApiClient } from "../api/client.js";
import { createKubeletMetrics } from "../metrics/index.js";
import { createClientCertificates, testCsrExpirationSeconds, testRotationFraction, type ClientCertificates } from "../certs/index.js";
import { detectNodeIPs, readMachineFacts } from "../node/machine.js";
import { systemClock } from "../util/clock.js";
import { createLogger, type Logger } from "../util/log.js";
import { createServingCsrApprover, DEFAULT_MAX_EXPIRATION_SECONDS } from "../certs/approver.js";
import { errorMessage } from "../util/errors.js";

export async function runKubelet(loaded: LoadedConfiguration): Promise<number> {
  const { config } = loaded;
  const logger = createLogger({ verbosity: config.logging.verbosity });
  for (const w of loaded.warnings) logger.warn(w);
  const metrics = createKubeletMetrics({ nodeName: loaded.nodeName });
  const onCall = (op: string, ms: number, err?: unknown): void => metrics.recordRuntimeCall(op, ms, err);
  const rs = createRuntimeService(config.containerRuntimeEndpoint, { timeoutMs: config.runtimeRequestTimeout, logger, onCall });
  const is = createImageService(config.imageServiceEndpoint || config.containerRuntimeEndpoint, { timeoutMs: config.runtimeRequestTimeout, logger, onCall });
  const [machine, nodeIPs] = await Promise.all([readMachineFacts(), detectNodeIPs(loaded.flags.nodeIP)]);
  let api: ApiClient | undefined;
  let certs: ClientCertificates | undefined;
  if (loaded.flags.kubeconfig) {
    try {
      const createClient = (kubeconfigPath: string): Promise<ApiClient> =>
        createApiClient({ kubeconfigPath, clock: systemClock, qps: config.kubeAPIQPS, burst: config.kubeAPIBurst, timeoutMs: 30_000 });
      const fraction = testRotationFraction();
      const expirationSeconds = testCsrExpirationSeconds();
      certs = await createClientCertificates({
        kubeconfig: loaded.flags.kubeconfig,
        bootstrapKubeconfig: loaded.flags.bootstrapKubeconfig,
        certDir: loaded.flags.certDir,
        nodeName: loaded.nodeName,
        rotate: config.rotateCertificates,
        clock: systemClock,
        logger,
        metrics,
        createClient,
        ...(fraction !== undefined ? { rotationFraction: fraction } : {}),
        ...(expirationSeconds !== undefined ? { expirationSeconds } : {}),
      });
      api = certs.api;
    } catch (err) {
      logger.error("cannot use the kubeconfig", { kubeconfig: loaded.flags.kubeconfig, err: errorMessage(err) });
      return 1;
    }
  }
  const kubelet = createKubelet(loaded, { rs, is, clock: systemClock, logger, metrics, machine, nodeIPs, ...(api ? { api } : {}) });

  const controller = new AbortController();
  // Every long-lived loop waits on this one signal; more than Node's default of 10 is expected.
  setMaxListeners(256, controller.signal);
  const onSignal = (sig: string): void => {
    logger.info("received signal; shutting down (pods keep running)", { signal: sig });
    controller.abort();
  };
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("SIGINT", () => onSignal("SIGINT"));
  // A promise nobody awaited failing is a bug in one component; it is logged with its stack and the
  // node keeps serving its pods rather than going down with it.
  process.on("unhandledRejection", (reason: unknown) => {
    logger.error("unhandled promise rejection (a bug; please report it); continuing", {
      err: errorMessage(reason),
      stack: reason instanceof Error ? (reason.stack ?? "") : "",
    });
  });
  try {
    await Promise.all([kubelet.run(controller.signal), certs?.run(controller.signal), runApprover(loaded, logger, controller.signal)]);
    return 0;
  } catch (err) {
    controller.abort();
    logger.error("tskubelet failed", { err: errorMessage(err), stack: err instanceof Error ? (err.stack ?? "") : "" });
    return 1;
  } finally {
    rs.close();
    is.close();
    api?.close();
  }
}

/** The kubelet-serving CSR approver inside tskubelet (--csr-approver-kubeconfig), when asked for. */
async function runApprover(loaded: LoadedConfiguration, logger: Logger, signal: AbortSignal): Promise<void> {
  const path = loaded.flags.csrApproverKubeconfig;
  if (!path) return;
  const api = await createApiClient({ kubeconfigPath: path, clock: systemClock, qps: 5, burst: 10, timeoutMs: 30_000 });
  const log = logger.with({ component: "csr-approver" });
  log.info("serving-certificate CSR approver running", { identity: api.identity() });
  try {
    await createServingCsrApprover(api, { approveOnly: false, maxExpirationSeconds: DEFAULT_MAX_EXPIRATION_SECONDS, logger: log }).run(signal, (o) => {
      if (o.verdict !== "skipped") log.info("kubelet-serving CSR decided", { csr: o.name, verdict: o.verdict, reason: o.reason, message: o.message });
    });
  } finally {
    api.close();
  }
}
