/**
 * The kubelet's listeners. Public surface: startReadOnlyServer (10255), startHealthzServer (10248).
 */
import type { Server } from "node:http";
import type { Logger } from "../util/log.js";
import type { KubeletMetrics } from "../metrics/index.js";
import { closeServer, createHttpServer, createRouter, listen, type Route } from "./http.js";
import { healthzHandler, singleCheckHandler, type HealthCheck } from "./healthz.js";
import { debugDisabledRoutes, metricsHandler, podsHandler, type PodLister } from "./handlers.js";

export type { HealthCheck } from "./healthz.js";

/** Failing checks are named in the response; their reasons go to the log. */
export function healthLog(logger: Logger): (name: string, reason: string) => void {
  return (name, reason) => logger.warn("health check failed", { check: name, reason });
}
export type { PodLister } from "./handlers.js";

export interface RunningServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export interface ReadOnlyDeps {
  pods: PodLister;
  checks: HealthCheck[];
  metrics: KubeletMetrics;
  logger: Logger;
}

export function readOnlyRoutes(deps: ReadOnlyDeps): Route[] {
  return [
    { pattern: "/healthz", methods: ["GET", "HEAD"], handler: healthzHandler(deps.checks, healthLog(deps.logger)) },
    { pattern: "/healthz/:name", methods: ["GET", "HEAD"], handler: singleCheckHandler(deps.checks, healthLog(deps.logger)) },
    { pattern: "/pods", methods: ["GET"], handler: podsHandler(deps.pods) },
    { pattern: "/metrics", methods: ["GET"], handler: metricsHandler(deps.metrics.registry) },
    ...debugDisabledRoutes(),
  ];
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
