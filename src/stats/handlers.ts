/**
 * HTTP handlers over a StatsProvider: the kubelet's stats paths (10250 and 10255) and the
 * cAdvisor API paths of 4194.
 */
import type { IncomingMessage } from "node:http";
import { release } from "node:os";
import { HttpError, sendJSON, sendText, type Handler, type Route } from "../server/http.js";
import { TSKUBELET_VERSION } from "../cli/version.js";
import { errorMessage } from "../util/errors.js";
import { parseStatsQuery, selectEntries, specResponse, statsResponse, v2Stats as v2StatsOf } from "./cadvisor-api.js";
import { renderCadvisorMetrics, type VersionLabels } from "./cadvisor-metrics.js";
import type { MachineInfo } from "./machine.js";
import { PROM_CONTENT_TYPE } from "./prom.js";
import type { StatsProvider } from "./provider.js";
import { renderResourceMetrics } from "./resource-metrics.js";
import { buildSummary } from "./summary.js";
import type { StatsSnapshot } from "./types.js";

const MAX_FORM_BYTES = 64 * 1024;

/**
 * Scrapes (summary, metrics) are served from the background samples when those are this fresh,
 * as the upstream kubelet serves cAdvisor's housekeeping samples: a scrape then costs a rendering,
 * not a read of every cgroup. Longer than the provider's housekeeping period (10 s), so a scrape
 * waits for a read only before the first one. Samples carry the time they were taken.
 */
export const SCRAPE_MAX_AGE_MS = 15_000;

export function versionLabels(osVersion = ""): VersionLabels {
  return { cadvisorVersion: `tskubelet-${TSKUBELET_VERSION}`, cadvisorRevision: "", kernelVersion: release(), osVersion, dockerVersion: "" };
}

/** A small urlencoded POST body (upstream parses the form of POST /stats/summary). */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers["content-type"] ?? "";
  if (req.method !== "POST" || !type.startsWith("application/x-www-form-urlencoded")) return new URLSearchParams();
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_FORM_BYTES) throw new HttpError(413, `request body larger than ${MAX_FORM_BYTES} bytes`);
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function parseBool(v: string | null): boolean {
  return v !== null && ["1", "t", "T", "true", "TRUE", "True"].includes(v);
}

/** Remembers the last rendering per key, so scrapes sharing a snapshot share its serialisation too. */
function memo<K extends object>(): (key: K, variant: string, render: () => string) => string {
  let last: { key: K; variant: string; body: string } | undefined;
  return (key, variant, render) => {
    if (last?.key === key && last.variant === variant) return last.body;
    const body = render();
    last = { key, variant, body };
    return body;
  };
}

export function summaryHandler(stats: StatsProvider): Handler {
  const cache = memo<StatsSnapshot>();
  return async (req, res, ctx) => {
    const form = await readForm(req);
    const values = [...ctx.url.searchParams.getAll("only_cpu_and_memory"), ...form.getAll("only_cpu_and_memory")];
    const only = values.length === 1 && parseBool(values[0] ?? null);
    let snap: StatsSnapshot;
    try {
      snap = await stats.snapshot(SCRAPE_MAX_AGE_MS);
    } catch (err) {
      throw new HttpError(500, `Internal Error: failed to get node info: ${errorMessage(err)}`);
    }
    if (snap.podsUnavailable) throw new HttpError(500, `Internal Error: failed to list pod stats: ${snap.errors.join("; ")}`);
    // go-restful, which serves upstream's summary, pretty-prints with two spaces.
    sendJSON(res, cache(snap, String(only), () => JSON.stringify(buildSummary(snap, only), null, 2)));
  };
}

export function resourceMetricsHandler(stats: StatsProvider): Handler {
  const cache = memo<StatsSnapshot>();
  return async (_req, res) => {
    const snap = await stats.snapshot(SCRAPE_MAX_AGE_MS).catch(() => undefined);
    const body = snap ? cache(snap, "", () => renderResourceMetrics(snap)) : renderResourceMetrics(undefined);
    sendText(res, body, 200, PROM_CONTENT_TYPE);
  };
}

export function cadvisorMetricsHandler(stats: StatsProvider, version: VersionLabels): Handler {
  const cache = memo<StatsSnapshot>();
  return async (_req, res) => {
    const [snap, machine] = await Promise.all([stats.snapshot(SCRAPE_MAX_AGE_MS).catch(() => undefined), stats.machineInfo().catch(() => undefined)]);
    const render = (): string => renderCadvisorMetrics(snap, machine, version);
    sendText(res, snap ? cache(snap, machine?.timestamp ?? "none", render) : render(), 200, PROM_CONTENT_TYPE);
  };
}

export function machineHandler(stats: StatsProvider): Handler {
  return async (_req, res) => {
    sendJSON(res, JSON.stringify(await stats.machineInfo()));
  };
}

/** The stats paths both kubelet listeners serve. */
export function statsRoutes(stats: StatsProvider): Route[] {
  return [
    { pattern: "/stats/summary", methods: ["GET", "POST"], handler: summaryHandler(stats) },
    { pattern: "/metrics/cadvisor", methods: ["GET"], handler: cadvisorMetricsHandler(stats, versionLabels()) },
    { pattern: "/metrics/resource", methods: ["GET"], handler: resourceMetricsHandler(stats) },
    { pattern: "/spec", methods: ["GET"], handler: machineHandler(stats) },
  ];
}

function attributes(m: MachineInfo, v: VersionLabels): Record<string, unknown> {
  return {
    kernel_version: v.kernelVersion,
    container_os_version: v.osVersion,
    docker_version: v.dockerVersion,
    cadvisor_version: v.cadvisorVersion,
    num_cores: m.num_cores,
    cpu_frequency_khz: m.cpu_frequency_khz,
    memory_capacity: m.memory_capacity,
    machine_id: m.machine_id,
    system_uuid: m.system_uuid,
    filesystems: m.filesystems,
    disk_map: m.disk_map,
    network_devices: m.network_devices,
    topology: m.topology,
    cloud_provider: m.cloud_provider,
    instance_type: m.instance_type,
  };
}

function v2Spec(stats: StatsProvider): Handler {
  return async (_req, res, ctx) => {
    const q = parseStatsQuery(ctx.params["*"], ctx.url.searchParams);
    const entries = selectEntries(await stats.snapshot(), q);
    if (!entries) throw new HttpError(404, `unknown container "${q.name}"`);
    sendJSON(res, JSON.stringify(specResponse(entries)));
  };
}

function v2Stats(stats: StatsProvider): Handler {
  return async (_req, res, ctx) => {
    const q = parseStatsQuery(ctx.params["*"], ctx.url.searchParams);
    const snap = await stats.snapshot();
    const entries = selectEntries(snap, q);
    if (!entries) throw new HttpError(404, `unknown container "${q.name}"`);
    sendJSON(res, JSON.stringify(statsResponse(entries, (n, c) => stats.history(n, c), q.count, snap.blockDevices)));
  };
}

/** The machine's recent samples (the "/" cgroup) with its filesystems' current use. */
function machineStats(stats: StatsProvider): Handler {
  return async (_req, res, ctx) => {
    const q = parseStatsQuery(undefined, ctx.url.searchParams);
    const snap = await stats.snapshot();
    const seen = new Set<string>();
    const filesystem = [snap.nodeFs, snap.imageFs, snap.containerFs]
      .filter((f) => f !== undefined)
      .filter((f) => {
        const key = f.device ?? String(f.capacity);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      })
      .map((f) => ({ device: f.device ?? "", capacity: f.capacity, usage: f.used, available: f.available, ...(f.inodes !== undefined ? { inodes: f.inodes, inodes_free: f.inodesFree } : {}) }));
    const samples = stats.history("/", q.count + 1);
    const shown = samples.length > q.count ? samples.slice(1) : samples;
    const offset = samples.length - shown.length;
    const body = shown.map((s, i) => ({ ...v2StatsOf(s, samples[offset + i - 1], snap.blockDevices), filesystem }));
    sendJSON(res, JSON.stringify(body));
  };
}

/** cAdvisor's API on 4194: Prometheus metrics, machine, attributes, container specs and stats. */
export function cadvisorApiRoutes(stats: StatsProvider, osVersion = ""): Route[] {
  const version = versionLabels(osVersion);
  return [
    { pattern: "/metrics", methods: ["GET"], handler: cadvisorMetricsHandler(stats, version) },
    { pattern: "/api/v1.3/machine", methods: ["GET"], handler: machineHandler(stats) },
    { pattern: "/api/v2.0/machine", methods: ["GET"], handler: machineHandler(stats) },
    {
      pattern: "/api/v2.0/attributes",
      methods: ["GET"],
      handler: async (_req, res) => sendJSON(res, JSON.stringify(attributes(await stats.machineInfo(), version))),
    },
    {
      pattern: "/api/v2.0/version",
      methods: ["GET"],
      handler: (_req, res) => sendJSON(res, JSON.stringify(version.cadvisorVersion)),
    },
    { pattern: "/api/v2.0/machinestats", methods: ["GET"], handler: machineStats(stats) },
    { pattern: "/api/v2.0/spec", methods: ["GET"], handler: v2Spec(stats) },
    { pattern: "/api/v2.0/spec/*", methods: ["GET"], handler: v2Spec(stats) },
    { pattern: "/api/v2.0/stats", methods: ["GET"], handler: v2Stats(stats) },
    { pattern: "/api/v2.0/stats/*", methods: ["GET"], handler: v2Stats(stats) },
  ];
}
