/**
 * 4194, the cAdvisor-style listener (plain HTTP; `cadvisorPort`, 0 disables): Prometheus /metrics
 * with cAdvisor's families, cAdvisor's v1.3/v2.0 JSON API, and the web UI at / and /containers/.
 */
import type { KubeletMetrics } from "../metrics/index.js";
import type { StatsProvider } from "../stats/index.js";
import { cadvisorApiRoutes } from "../stats/index.js";
import { uiRoutes } from "../ui/index.js";
import type { Logger } from "../util/log.js";
import { closeServer, createHttpServer, createRouter, listen, sendText, type Route } from "./http.js";

export interface CadvisorServerDeps {
  stats: StatsProvider;
  logger: Logger;
  metrics?: KubeletMetrics;
  /** The node's OS (PRETTY_NAME) for cadvisor_version_info. */
  osVersion?: string;
}

export interface CadvisorServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export async function cadvisorRoutes(deps: CadvisorServerDeps): Promise<Route[]> {
  return [
    ...cadvisorApiRoutes(deps.stats, deps.osVersion ?? ""),
    { pattern: "/healthz", methods: ["GET", "HEAD"], handler: (_req, res) => sendText(res, "ok") },
    ...(await uiRoutes()),
  ];
}

export async function startCadvisorServer(deps: CadvisorServerDeps, opts: { address: string; port: number }): Promise<CadvisorServer> {
  const router = createRouter(await cadvisorRoutes(deps), { serverType: "cadvisor", metrics: deps.metrics, logger: deps.logger });
  const server = createHttpServer(router);
  await listen(server, opts.port, opts.address);
  const addr = server.address();
  return { address: { host: opts.address, port: typeof addr === "object" && addr ? addr.port : opts.port }, close: () => closeServer(server) };
}
