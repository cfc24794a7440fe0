/**
 * Profiling for Node under /debug/pprof/ (behind enableProfilingHandler): a V8 heap snapshot and a
 * CPU profile taken through the inspector, in the formats Chrome DevTools opens.
 */
import { Session } from "node:inspector/promises";
import { pipeline } from "node:stream/promises";
import { getHeapSnapshot } from "node:v8";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { HttpError, sendText, type Handler, type Route } from "./http.js";

export interface ProfilingDeps {
  clock: Clock;
  logger: Logger;
}

const MAX_PROFILE_SECONDS = 300;

const INDEX = `tskubelet profiles (Node ${process.version}):
/debug/pprof/heap              V8 heap snapshot (.heapsnapshot; open in Chrome DevTools > Memory)
/debug/pprof/profile?seconds=N CPU profile over N seconds, default 30 (.cpuprofile; DevTools > Performance)
`;

export function profileSeconds(q: URLSearchParams): number {
  const v = q.get("seconds");
  if (v === null || v === "") return 30;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_PROFILE_SECONDS) throw new HttpError(400, `seconds: expected a whole number from 1 to ${MAX_PROFILE_SECONDS}, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function profilingRoutes(deps: ProfilingDeps): Route[] {
  let heapBusy = false;
  let cpuBusy = false;
  const index: Handler = (_req, res) => sendText(res, INDEX);

  const heap: Handler = async (_req, res) => {
    if (heapBusy) throw new HttpError(409, "a heap snapshot is already being taken");
    heapBusy = true;
    try {
      deps.logger.info("taking a heap snapshot for /debug/pprof/heap");
      const snapshot = getHeapSnapshot();
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Disposition": 'attachment; filename="tskubelet.heapsnapshot"' });
      await pipeline(snapshot, res).catch((err: unknown) => {
        if (!res.destroyed) throw err;
      });
    } finally {
      heapBusy = false;
    }
  };

  const cpu: Handler = async (req, res, ctx) => {
    const seconds = profileSeconds(ctx.url.searchParams);
    if (cpuBusy) throw new HttpError(409, "a CPU profile is already being taken");
    cpuBusy = true;
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    req.socket.setTimeout(0);
    const session = new Session();
    session.connect();
    try {
      await session.post("Profiler.enable");
      await session.post("Profiler.start");
      let completed = true;
      await deps.clock.sleep(seconds * 1000, abort.signal).catch(() => {
        completed = false;
      });
      const { profile } = await session.post("Profiler.stop");
      if (!completed) return;
      const body = JSON.stringify(profile);
      res.writeHead(200, { "Content-Type": "application/json", "Content-Disposition": 'attachment; filename="tskubelet.cpuprofile"', "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    } finally {
      session.disconnect();
      cpuBusy = false;
    }
  };

  return [
    { pattern: "/debug/pprof", methods: ["GET"], handler: index },
    { pattern: "/debug/pprof/", methods: ["GET"], handler: index },
    { pattern: "/debug/pprof/heap", methods: ["GET"], handler: heap, longRunning: true },
    { pattern: "/debug/pprof/profile", methods: ["GET"], handler: cpu, longRunning: true },
  ];
}
