/**
 * The kubelet's listeners. Public surface: startApiServer (10250), startReadOnlyServer (10255), startHealthzServer (10248).
 */
import type { Server } from "node:http";
import type { Logger } from "../util/log.js";
import type { KubeletMetrics } from "../metrics/index.js";
import type { Registry } from "prom-client";
import { closeServer, createHttpServer, createRouter, listen, type Route } from "./http.js";
import { healthzHandler, singleCheckHandler, type HealthCheck } from "./healthz.js";
import { debugDisabledRoutes, metricsHandler, podsHandler, type PodLister } from "./handlers.js";
import { statsRoutes, type StatsProvider } from "../stats/index.js";

export type { HealthCheck } from "./healthz.js";

/** Failing checks are named in the response; their reasons go to the log. */
export function healthLog(logger: Logger): (name: string, reason: string) => void {
  return (name, reason) => logger.warn("health check failed", { check: name, reason });
}
export type { PodLister } from "./handlers.js";
export { startApiServer, type ApiServer, type ApiServerDeps, type ApiServerOptions } from "./api.js";
export type { AccessReviewer, SubjectAccessReviewSpec, AccessReviewResult, TokenReviewer, TokenReviewResult } from "./auth/index.js";
export type { ServingTLS } from "./tls.js";
export { startCadvisorServer, type CadvisorServer, type CadvisorServerDeps } from "./cadvisor.js";

export interface RunningServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export interface ReadOnlyDeps {
  pods: PodLister;
  checks: HealthCheck[];
  metrics: KubeletMetrics;
  logger: Logger;
  /** The registry of /metrics/probes. */
  probeMetrics?: Registry;
  /** /stats/summary, /metrics/cadvisor, /metrics/resource and /spec/. */
  stats?: StatsProvider;
}

/** Upstream's "auth-not-required" group: served as is on 10255, behind authn/authz on 10250. */
export function sharedRoutes(deps: ReadOnlyDeps): Route[] {
  return [
    { pattern: "/healthz", methods: ["GET", "HEAD"], handler: healthzHandler(deps.checks, healthLog(deps.logger)) },
    { pattern: "/healthz/:name", methods: ["GET", "HEAD"], handler: singleCheckHandler(deps.checks, healthLog(deps.logger)) },
    { pattern: "/pods", methods: ["GET"], handler: podsHandler(deps.pods) },
    { pattern: "/metrics", methods: ["GET"], handler: metricsHandler(deps.metrics.registry) },
    ...(deps.probeMetrics ? [{ pattern: "/metrics/probes", methods: ["GET"], handler: metricsHandler(deps.probeMetrics) }] : []),
    ...(deps.stats ? statsRoutes(deps.stats) : []),
  ];
}

export function readOnlyRoutes(deps: ReadOnlyDeps): Route[] {
  return [...sharedRoutes(deps), ...debugDisabledRoutes()];
}

async function start(server: Server, port: number, host: string): Promise<RunningServer> {
  await listen(server, port, host);
  const addr = server.address();
  const bound = typeof addr === "object" && addr ? addr.port : port;
  return { address: { host, port: bound }, close: () => closeServer(server) };
}

export function startReadOnlyServer(deps: ReadOnlyDeps, opts: { address: string; port: number }): Promise<RunningServer> {
  const router = createRouter(readOnlyRoutes(deps), { serverType: "readonly", metrics: deps.metrics, logger: deps.logger });
  return start(createHttpServer(router), opts.port, opts.address);
}

/** 10248: plain HTTP, only /healthz (and /healthz/<check>). */
export function startHealthzServer(deps: { checks: HealthCheck[]; logger: Logger }, opts: { address: string; port: number }): Promise<RunningServer> {
  const routes: Route[] = [
    { pattern: "/healthz", methods: ["GET", "HEAD"], handler: healthzHandler(deps.checks, healthLog(deps.logger)) },
    { pattern: "/healthz/:name", methods: ["GET", "HEAD"], handler: singleCheckHandler(deps.checks, healthLog(deps.logger)) },
  ];
  const router = createRouter(routes, { serverType: "healthz", logger: deps.logger });
  return start(createHttpServer(router), opts.port, opts.address);
}
