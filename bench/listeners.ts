#!/usr/bin/env node
/**
 * The kubelet's read-only listener under load: tskubelet against the upstream kubelet (v1.33.13,
 * the `kubelet` sub-command of test/cluster/bin/kube-test-plane), one kubelet at a time, on one
 * private containerd with a CNI bridge, both **standalone** (no apiserver) with N static pods
 * (110 by default: busybox `sleep 3600`, pod network) and maxPods 120.
 *
 * Per kubelet: the N manifests are written into a fresh static pod directory, the kubelet is
 * started with the read-only port (HTTP, no authentication) on a free port of 127.0.0.1; the
 * benchmark waits until every pod's container runs (CRI), the read-only /pods lists all N pods
 * Running and /stats/summary lists all N pods, then lets the kubelet settle. Then, with `wrk`
 * (a separate native process) at a fixed concurrency: for /pods and /stats/summary, a warm-up,
 * then the measured run (requests per second, latency p50/p90/p99/max from wrk's histogram, the
 * kubelet's CPU seconds during the run). Also: sequential single requests of each endpoint (size,
 * median time), K sequential scrapes of /metrics/cadvisor (median and max), and the kubelet's RSS.
 * Then the manifests are removed, the benchmark waits until the kubelet has stopped every pod
 * (no READY sandbox of the namespace left), stops the kubelet by its PID and removes what is left.
 *
 * Run as root after `npm run build` (needs wrk: apt-get install -y wrk):
 *   node dist/bench/listeners.js [--pods 110] [--connections 8] [--threads 2] [--duration 20]
 *                                [--warmup 5] [--scrapes 10] [--only tskubelet|upstream] [--keep]
 * --keep keeps the work directory (kubelet logs, one body of each endpoint) and prints it.
 * wrk's percentiles are its own: it adds coordinated-omission samples (stats_correct) for every
 * response slower than the mean interval, so a stall of all connections weighs in p99 heavily.
 * The last line printed is one JSON object with the result.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createRuntimeService, type CriRuntimeService } from "../src/cri/index.js";
import { LABEL_POD_NAMESPACE } from "../src/api/labels.js";
import { startContainerd, TEST_IMAGES, type PrivateContainerd } from "../test/support/containerd.js";
import { freePort } from "../test/support/tskubelet.js";
import {
  errText,
  forceClean,
  KTP_BIN,
  makeCgroupRoot,
  removeCgroupRoot,
  removeLogLinks,
  removeNewChains,
  restoreHostFiles,
  restoreSysctls,
  saveHostState,
  sleep,
  unmountUnder,
  waitExit,
  waitUntil,
  type Kind,
} from "../test/support/kubelets.js";
import { load, machineInfo, median, pad, r1, r2, r3, snapshotTskubelet, sourceVersion, type MachineInfo } from "./common.js";

// ---------------------------------------------------------------------------------------------
// settings

interface Settings {
  pods: number;
  connections: number;
  threads: number;
  durationS: number;
  warmupS: number;
  scrapes: number;
  only: Kind | undefined;
  keep: boolean;
}

function parseArgs(argv: string[]): Settings {
  const s: Settings = { pods: 110, connections: 8, threads: 2, durationS: 20, warmupS: 5, scrapes: 10, only: undefined, keep: false };
  const num = (v: string | undefined, d: number): number => Math.max(1, Number(v ?? d) || d);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--pods") s.pods = num(argv[++i], 110);
    else if (a === "--connections") s.connections = num(argv[++i], 8);
    else if (a === "--threads") s.threads = num(argv[++i], 2);
    else if (a === "--duration") s.durationS = num(argv[++i], 20);
    else if (a === "--warmup") s.warmupS = num(argv[++i], 5);
    else if (a === "--scrapes") s.scrapes = num(argv[++i], 10);
    else if (a === "--only") {
      const k = argv[++i];
      if (k !== "tskubelet" && k !== "upstream") throw new Error("--only takes tskubelet or upstream");
      s.only = k;
    } else if (a === "--keep") s.keep = true;
    else if (a === "--help" || a === "-h") {
      console.log("usage: node dist/bench/listeners.js [--pods 110] [--connections 8] [--threads 2] [--duration 20] [--warmup 5] [--scrapes 10] [--only tskubelet|upstream] [--keep]");
      process.exit(0);
    } else throw new Error(`unknown argument ${a ?? ""}`);
  }
  if (s.threads > s.connections) s.threads = s.connections;
  return s;
}

const MAX_PODS = 120;
const PODS_RUNNING_TIMEOUT_MS = 300_000;
const SERVED_TIMEOUT_MS = 180_000;
const CLEANUP_TIMEOUT_MS = 240_000;
/** After every pod is running and listed: status writes, first stats housekeeping, GC timers. */
const SETTLE_MS = 10_000;
const BETWEEN_KUBELETS_MS = 3_000;
const SEQUENTIAL_REQUESTS = 10;
const ENDPOINTS = ["/pods", "/stats/summary"] as const;

// ---------------------------------------------------------------------------------------------
// HTTP (the benchmark's own checks and the /metrics/cadvisor scrapes; the load comes from wrk)

interface Got {
  status: number;
  body: Buffer;
  ms: number;
}

function get(port: number, path: string, timeoutMs = 60_000): Promise<Got> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = httpRequest({ host: "127.0.0.1", port, path, method: "GET", agent: false, headers: { accept: "*/*" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path}: timeout`)));
    req.on("error", reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// processes: RSS and CPU

const CLK_TCK = ((): number => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

function readCpuS(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

function readRssMiB(pid: number): { rss: number; hwm: number; threads: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s*(\\d+)\\s*kB`, "m").exec(text)?.[1] ?? NaN);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024, threads: Number(/^Threads:\s*(\d+)/m.exec(text)?.[1] ?? NaN) };
  } catch {
    return { rss: NaN, hwm: NaN, threads: NaN };
  }
}

let child: ChildProcess | undefined;
let loadGen: ChildProcess | undefined;

function killChildrenNow(): void {
  for (const p of [child, loadGen]) if (p && p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
}

// ---------------------------------------------------------------------------------------------
// wrk

/** wrk's Lua `done` hook: one machine-readable line with the histogram's percentiles. */
const WRK_LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKJSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,\\"connect_errors\\":%d,\\"read_errors\\":%d,\\"write_errors\\":%d,\\"status_errors\\":%d,\\"timeouts\\":%d,\\"mean_us\\":%.1f,\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d,\\"p999_us\\":%d,\\"max_us\\":%d}\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`;

interface WrkOut {
  requests: number;
  duration_us: number;
  bytes: number;
  connect_errors: number;
  read_errors: number;
  write_errors: number;
  status_errors: number;
  timeouts: number;
  mean_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
}

function runWrk(settings: Settings, script: string, url: string, seconds: number): Promise<WrkOut> {
  return new Promise((resolve, reject) => {
    const args = [`-t${settings.threads}`, `-c${settings.connections}`, `-d${seconds}s`, "--timeout", "30s", "-s", script, url];
    const p = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
    loadGen = p;
    let out = "";
    p.stdout.setEncoding("utf8");
    p.stderr.setEncoding("utf8");
    p.stdout.on("data", (d: string) => (out += d));
    p.stderr.on("data", (d: string) => (out += d));
    p.on("error", reject);
    p.on("exit", (code) => {
      loadGen = undefined;
      const line = out.split("\n").find((l) => l.startsWith("WRKJSON "));
      if (code !== 0 || !line) {
        reject(new Error(`wrk ${args.join(" ")} exited ${code}:\n${out}`));
        return;
      }
      resolve(JSON.parse(line.slice("WRKJSON ".length)) as WrkOut);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// kubelets

interface Ctx {
  settings: Settings;
  rt: PrivateContainerd;
  cri: CriRuntimeService;
  workDir: string;
  mainJs: string;
  cgroupRoot: string;
  sysctls: Map<string, string>;
  wrkScript: string;
}

interface EndpointResult {
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  mean_ms: number;
  requests: number;
  errors: number;
  mb_per_s: number;
  /** The kubelet's CPU (utime+stime) during the measured run, in cores (seconds per second). */
  kubelet_cpu_cores: number;
  /** One response: size, and the median of SEQUENTIAL_REQUESTS sequential requests (no load). */
  body_bytes: number;
  sequential_median_ms: number;
  warmup_rps: number;
}

interface KubeletResult {
  kind: Kind;
  version: string;
  pods: number;
  start_to_all_running_ms: number;
  endpoints: Record<string, EndpointResult>;
  cadvisor: { scrapes_ms: number[]; median_ms: number; max_ms: number; bytes: number; lines: number; status: number } | null;
  rss_mib_idle_110: number;
  rss_mib_after_load: number;
  hwm_mib: number;
  threads: number;
  load_1m: number;
}

function manifest(i: number, namespace: string): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `bench-${i}`, namespace },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "sleep", image: TEST_IMAGES.busybox, imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }],
    },
  };
}

function upstreamConfig(ctx: Ctx, p: { readOnlyPort: number; port: number; healthzPort: number; manifests: string; logsDir: string }): string {
  return [
    "apiVersion: kubelet.config.k8s.io/v1beta1",
    "kind: KubeletConfiguration",
    "cgroupDriver: cgroupfs",
    "cgroupsPerQOS: true",
    `cgroupRoot: /${ctx.cgroupRoot}`,
    "failSwapOn: false",
    `containerRuntimeEndpoint: ${ctx.rt.endpoint}`,
    // Standalone: no apiserver for webhooks. Only the read-only port is loaded; 10250 stays on localhost.
    "authentication:",
    "  anonymous: {enabled: true}",
    "  webhook: {enabled: false}",
    "authorization: {mode: AlwaysAllow}",
    "address: 127.0.0.1",
    `readOnlyPort: ${p.readOnlyPort}`,
    `port: ${p.port}`,
    `healthzPort: ${p.healthzPort}`,
    "healthzBindAddress: 127.0.0.1",
    `staticPodPath: ${p.manifests}`,
    "fileCheckFrequency: 20s",
    `maxPods: ${MAX_PODS}`,
    "resolvConf: /etc/resolv.conf",
    `podLogsDir: ${p.logsDir}`,
    "",
  ].join("\n");
}

interface KubeletPlace {
  node: string;
  dir: string;
  manifests: string;
  logFile: string;
  readOnlyPort: number;
}

async function startKubelet(ctx: Ctx, kind: Kind, place: KubeletPlace): Promise<ChildProcess> {
  const { node, dir, manifests, logFile, readOnlyPort } = place;
  const root = join(dir, "root");
  const logsDir = join(dir, "pod-logs");
  await Promise.all([mkdir(root, { recursive: true }), mkdir(logsDir, { recursive: true })]);
  const port = await freePort();
  const healthzPort = await freePort();
  let cmd: string;
  let args: string[];
  if (kind === "upstream") {
    const cfg = join(dir, "kubelet-config.yaml");
    await writeFile(cfg, upstreamConfig(ctx, { readOnlyPort, port, healthzPort, manifests, logsDir }));
    cmd = KTP_BIN;
    args = ["kubelet", `--config=${cfg}`, `--root-dir=${root}`, `--cert-dir=${join(root, "pki")}`, `--hostname-override=${node}`, "--v=2"];
  } else {
    cmd = process.execPath;
    args = [
      ctx.mainJs,
      `--container-runtime-endpoint=${ctx.rt.endpoint}`,
      `--pod-manifest-path=${manifests}`,
      "--file-check-frequency=20s",
      `--root-dir=${root}`,
      `--pod-logs-dir=${logsDir}`,
      "--address=127.0.0.1",
      `--port=${port}`,
      `--read-only-port=${readOnlyPort}`,
      `--healthz-port=${healthzPort}`,
      "--cadvisor-port=0",
      `--hostname-override=${node}`,
      `--max-pods=${MAX_PODS}`,
      `--cgroup-root=/${ctx.cgroupRoot}`,
      "--cgroup-driver=cgroupfs",
      "--cgroups-per-qos=true",
      "--fail-swap-on=false",
      "--resolv-conf=/etc/resolv.conf",
      "--v=2",
    ];
  }
  const fd = openSync(logFile, "a");
  const proc = spawn(cmd, args, { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  if (proc.pid === undefined) throw new Error(`could not start ${kind}`);
  return proc;
}

interface PodList {
  items?: { metadata?: { namespace?: string }; status?: { phase?: string } }[];
}

interface Summary {
  pods?: { podRef?: { namespace?: string } }[];
}

async function runKubelet(ctx: Ctx, kind: Kind, version: string): Promise<KubeletResult> {
  const s = ctx.settings;
  const short = kind === "tskubelet" ? "tsk" : "up";
  const node = `bench-${short}`;
  const namespace = `bench-listeners-${short}`;
  const dir = join(ctx.workDir, kind);
  const manifests = join(dir, "manifests");
  await mkdir(manifests, { recursive: true });
  const logFile = join(dir, `${kind}.log`);
  const files: string[] = [];
  for (let i = 0; i < s.pods; i++) {
    const tmp = join(manifests, `.bench-${i}.json`);
    await writeFile(tmp, JSON.stringify(manifest(i, namespace)));
    files.push(join(manifests, `bench-${i}.json`));
  }
  await Promise.all(files.map((f, i) => rename(join(manifests, `.bench-${i}.json`), f)));
  const readOnlyPort = await freePort();
  const t0 = performance.now();
  const proc = await startKubelet(ctx, kind, { node, dir, manifests, logFile, readOnlyPort });
  child = proc;
  const pid = proc.pid ?? 0;
  console.log(`${kind}: pid ${pid}, read-only port 127.0.0.1:${readOnlyPort}, ${s.pods} static pods in ${manifests}; load ${load()}`);
  const alive = (): void => {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${kind} exited (${proc.exitCode ?? proc.signalCode}); tail of ${logFile}:\n${readFileSync(logFile, "utf8").slice(-4000)}`);
  };
  try {
    // Every container running (CRI), then both endpoints show every pod.
    await waitUntil({ what: `${s.pods} containers running under ${kind}`, timeoutMs: PODS_RUNNING_TIMEOUT_MS, check: alive, intervalMs: 500 }, async () => {
      const list = await ctx.cri.listContainers({ state: { state: "CONTAINER_RUNNING" }, labelSelector: { [LABEL_POD_NAMESPACE]: namespace } });
      return list.length >= s.pods ? true : undefined;
    });
    const allRunningMs = performance.now() - t0;
    console.log(`  ${s.pods} containers running ${Math.round(allRunningMs)} ms after start; load ${load()}`);
    await waitUntil({ what: `/pods of ${kind} listing ${s.pods} Running pods`, timeoutMs: SERVED_TIMEOUT_MS, check: alive, intervalMs: 1000 }, async () => {
      const r = await get(readOnlyPort, "/pods");
      if (r.status !== 200) return undefined;
      const items = (JSON.parse(r.body.toString("utf8")) as PodList).items ?? [];
      return items.filter((p) => p.metadata?.namespace === namespace && p.status?.phase === "Running").length >= s.pods ? true : undefined;
    });
    let summaryPods = 0;
    await waitUntil({ what: `/stats/summary of ${kind} listing ${s.pods} pods`, timeoutMs: SERVED_TIMEOUT_MS, check: alive, intervalMs: 1000 }, async () => {
      const r = await get(readOnlyPort, "/stats/summary");
      if (r.status !== 200) return undefined;
      summaryPods = ((JSON.parse(r.body.toString("utf8")) as Summary).pods ?? []).filter((p) => p.podRef?.namespace === namespace).length;
      return summaryPods >= s.pods ? true : undefined;
    });
    console.log(`  /pods and /stats/summary list all ${s.pods} pods ${Math.round(performance.now() - t0)} ms after start; settling ${SETTLE_MS / 1000} s`);
    await sleep(SETTLE_MS);
    alive();
    const idle = readRssMiB(pid);

    const endpoints: Record<string, EndpointResult> = {};
    for (const path of ENDPOINTS) {
      const seq: number[] = [];
      let bytes = 0;
      for (let i = 0; i < SEQUENTIAL_REQUESTS; i++) {
        const r = await get(readOnlyPort, path);
        if (r.status !== 200) throw new Error(`${kind} ${path}: HTTP ${r.status}`);
        seq.push(r.ms);
        bytes = r.body.length;
        if (s.keep && i === 0) await writeFile(join(dir, `${path.slice(1).replace(/\//g, "-")}.json`), r.body);
      }
      const url = `http://127.0.0.1:${readOnlyPort}${path}`;
      const warm = await runWrk(s, ctx.wrkScript, url, s.warmupS);
      alive();
      const cpu0 = readCpuS(pid);
      const w = await runWrk(s, ctx.wrkScript, url, s.durationS);
      const cpu1 = readCpuS(pid);
      alive();
      const secs = w.duration_us / 1e6;
      const e: EndpointResult = {
        rps: r1(w.requests / secs),
        p50_ms: r2(w.p50_us / 1000),
        p90_ms: r2(w.p90_us / 1000),
        p99_ms: r2(w.p99_us / 1000),
        max_ms: r2(w.max_us / 1000),
        mean_ms: r2(w.mean_us / 1000),
        requests: w.requests,
        errors: w.connect_errors + w.read_errors + w.write_errors + w.status_errors + w.timeouts,
        mb_per_s: r2(w.bytes / secs / 1024 ** 2),
        kubelet_cpu_cores: r2((cpu1 - cpu0) / secs),
        body_bytes: bytes,
        sequential_median_ms: r2(median(seq)),
        warmup_rps: r1(warm.requests / (warm.duration_us / 1e6)),
      };
      endpoints[path] = e;
      console.log(`  ${path.padEnd(14)} ${pad(e.rps, 8)} req/s  p50 ${pad(e.p50_ms, 7)} ms  p90 ${pad(e.p90_ms, 7)} ms  p99 ${pad(e.p99_ms, 7)} ms  max ${pad(e.max_ms, 7)} ms  errors ${e.errors}  ${e.mb_per_s} MiB/s  kubelet CPU ${e.kubelet_cpu_cores} cores  | body ${e.body_bytes} B, sequential median ${e.sequential_median_ms} ms  | load ${load()}`);
    }

    // /metrics/cadvisor: sequential scrapes, each timed from request to the last byte.
    let cadvisor: KubeletResult["cadvisor"] = null;
    {
      const times: number[] = [];
      let last: Got | undefined;
      for (let i = 0; i < s.scrapes; i++) {
        last = await get(readOnlyPort, "/metrics/cadvisor");
        if (last.status !== 200) break;
        times.push(last.ms);
      }
      if (last && last.status === 200) {
        const text = last.body.toString("utf8");
        if (s.keep) await writeFile(join(dir, "metrics-cadvisor.txt"), text);
        cadvisor = { scrapes_ms: times.map(r1), median_ms: r1(median(times)), max_ms: r1(Math.max(...times)), bytes: last.body.length, lines: text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length, status: 200 };
        console.log(`  /metrics/cadvisor: ${s.scrapes} scrapes, median ${cadvisor.median_ms} ms, max ${cadvisor.max_ms} ms (${times.map((t) => Math.round(t)).join(", ")}); ${cadvisor.bytes} B, ${cadvisor.lines} samples`);
      } else {
        console.log(`  /metrics/cadvisor: HTTP ${last?.status ?? "?"} on the read-only port`);
      }
    }
    const after = readRssMiB(pid);
    console.log(`  RSS with ${s.pods} pods: ${r1(idle.rss)} MiB before the load, ${r1(after.rss)} MiB after, peak (VmHWM) ${r1(after.hwm)} MiB; threads ${after.threads}`);
    const result: KubeletResult = {
      kind,
      version,
      pods: s.pods,
      start_to_all_running_ms: r1(allRunningMs),
      endpoints,
      cadvisor,
      rss_mib_idle_110: r1(idle.rss),
      rss_mib_after_load: r1(after.rss),
      hwm_mib: r1(after.hwm),
      threads: after.threads,
      load_1m: r1(loadavg()[0] ?? NaN),
    };

    // Clean up, not measured: the manifests go; the kubelet stops every pod.
    await Promise.all(files.map((f) => unlink(f)));
    const tRemove = performance.now();
    await waitUntil({ what: `${kind} to stop its pods`, timeoutMs: CLEANUP_TIMEOUT_MS, check: alive, intervalMs: 500 }, async () => {
      const ready = await ctx.cri.listPodSandbox({ state: { state: "SANDBOX_READY" }, labelSelector: { [LABEL_POD_NAMESPACE]: namespace } });
      return ready.length === 0 ? true : undefined;
    });
    console.log(`  manifests removed: ${kind} stopped every pod in ${Math.round(performance.now() - tRemove)} ms`);
    return result;
  } catch (err) {
    const text = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
    console.error(`${kind} failed; tail of its log (${logFile}):\n${text.slice(-4000)}`);
    throw err;
  } finally {
    if (loadGen && loadGen.exitCode === null) loadGen.kill("SIGKILL");
    proc.kill("SIGTERM");
    if (!(await waitExit(proc, 15_000))) {
      proc.kill("SIGKILL");
      await waitExit(proc, 5_000);
    }
    child = undefined;
    await forceClean(ctx.cri, namespace);
    unmountUnder(dir);
    removeLogLinks(ctx.workDir);
    if (kind === "upstream") {
      const changed = restoreSysctls(ctx.sysctls);
      if (changed.length > 0) console.log(`  (restored sysctls the upstream kubelet changed: ${changed.join(", ")})`);
    }
    if (!s.keep) await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// machine and source

async function machineAndWrk(rs: CriRuntimeService): Promise<MachineInfo & { wrk: string }> {
  const wrk = spawnSync("wrk", ["-v"], { encoding: "utf8" });
  const wrkVersion = /wrk\s+(\S+)/.exec(`${wrk.stdout}${wrk.stderr}`)?.[1] ?? "?";
  return { ...(await machineInfo(rs)), wrk: wrkVersion };
}

type Ratios = Record<string, { rps: number; p99: number; met: boolean }>;

/** Prints the side-by-side table; the ratios and whether the target was met (null: one kubelet only). */
function report(settings: Settings, tsk: KubeletResult | undefined, up: KubeletResult | undefined): { ratios: Ratios; met: boolean | null } {
  const ratios: Ratios = {};
  console.log("");
  console.log(`summary (${settings.pods} pods, wrk -t${settings.threads} -c${settings.connections} -d${settings.durationS}s, read-only port):`);
  console.log("  endpoint       | kubelet   |    req/s |  p50 ms |  p99 ms |  max ms | body bytes | kubelet CPU cores");
  for (const path of ENDPOINTS) {
    for (const r of [tsk, up]) {
      const e = r?.endpoints[path];
      if (!r || !e) continue;
      console.log(`  ${path.padEnd(14)} | ${r.kind.padEnd(9)} | ${pad(e.rps, 8)} | ${pad(e.p50_ms, 7)} | ${pad(e.p99_ms, 7)} | ${pad(e.max_ms, 7)} | ${pad(e.body_bytes, 10)} | ${e.kubelet_cpu_cores}`);
    }
    const a = tsk?.endpoints[path];
    const b = up?.endpoints[path];
    if (a && b) {
      const x = { rps: r3(a.rps / b.rps), p99: r3(a.p99_ms / b.p99_ms), met: a.rps >= b.rps && a.p99_ms <= b.p99_ms };
      ratios[path] = x;
      console.log(`  ${path.padEnd(14)} | ratio tskubelet/upstream: req/s ${x.rps}, p99 ${x.p99} -> ${x.met ? "met" : "MISSED"}`);
    }
  }
  for (const r of [tsk, up]) {
    if (!r) continue;
    console.log(`  ${r.kind.padEnd(9)} /metrics/cadvisor ${r.cadvisor ? `median ${r.cadvisor.median_ms} ms, max ${r.cadvisor.max_ms} ms, ${r.cadvisor.bytes} B` : "not served"}; RSS ${r.rss_mib_idle_110} MiB (after load ${r.rss_mib_after_load}, peak ${r.hwm_mib})`);
  }
  const met = tsk && up ? Object.values(ratios).every((x) => x.met) : null;
  console.log(`  target: tskubelet req/s >= upstream and p99 <= upstream on /pods and /stats/summary: ${met === null ? "not compared" : met ? "met" : "MISSED"}`);
  return { ratios, met };
}

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("the benchmark needs root (a private containerd, kubelets)");
  if (spawnSync("wrk", ["-v"]).error) throw new Error("wrk is missing: apt-get install -y wrk");
  const kinds: Kind[] = settings.only ? [settings.only] : ["tskubelet", "upstream"];
  if (kinds.includes("upstream") && !existsSync(KTP_BIN)) throw new Error(`${KTP_BIN} is missing: run test/cluster/build.sh`);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(sig, killChildrenNow);
  process.on("exit", killChildrenNow);

  console.log(`listeners benchmark: ${settings.pods} static pods, standalone kubelets, read-only port, wrk -t${settings.threads} -c${settings.connections} -d${settings.durationS}s after a ${settings.warmupS} s warm-up; ${kinds.join(" then ")}`);
  const loadStart = loadavg()[0] ?? NaN;
  const version = sourceVersion();
  const snapshot = await snapshotTskubelet("listeners");
  process.on("exit", () => rmSync(snapshot.dir, { recursive: true, force: true }));
  const upstreamVersion = existsSync(KTP_BIN) ? spawnSync(KTP_BIN, ["kubelet", "--version"], { encoding: "utf8" }).stdout.trim() : "";
  const tskVersion = version ? `commit ${version.commit}${version.src_dirty ? " + uncommitted src/" : ""}` : "not a git tree";
  console.log(`tskubelet: ${tskVersion}; running a copy of dist/src in ${snapshot.dir}`);
  console.log(`upstream: ${KTP_BIN} kubelet (${upstreamVersion})`);

  const host = saveHostState();
  const cgroupRoot = `tsklisten-${process.pid}`;
  const workDir = await mkdtemp("/tmp/tskubelet-listeners-");
  const wrkScript = join(workDir, "report.lua");
  await writeFile(wrkScript, WRK_LUA);
  const hostRestore = (): void => restoreHostFiles(host, workDir);
  process.on("exit", hostRestore);

  let rt: PrivateContainerd | undefined;
  let cri: CriRuntimeService | undefined;
  try {
    rt = await startContainerd({ cni: true });
    cri = createRuntimeService(rt.endpoint, { timeoutMs: 120_000 });
    await makeCgroupRoot(cgroupRoot);
    const machine = await machineAndWrk(cri);
    console.log(`machine: ${String(machine.cpu_model)}, ${machine.cores} cores, ${machine.memory_gib} GiB, kernel ${machine.kernel}, containerd ${machine.containerd_version}, node ${machine.node}, wrk ${machine.wrk}`);
    console.log(`containerd: ${rt.endpoint} (CNI bridge ${rt.bridge}, ${rt.subnet}); cgroup root /${cgroupRoot}; load ${load()}`);
    const ctx: Ctx = { settings, rt, cri, workDir, mainJs: snapshot.mainJs, cgroupRoot, sysctls: host.sysctls, wrkScript };

    const results: Partial<Record<Kind, KubeletResult>> = {};
    for (const kind of kinds) {
      results[kind] = await runKubelet(ctx, kind, kind === "tskubelet" ? tskVersion : upstreamVersion);
      await sleep(BETWEEN_KUBELETS_MS);
    }

    const tsk = results.tskubelet;
    const up = results.upstream;
    const { ratios, met } = report(settings, tsk, up);

    const out = {
      benchmark: "listeners",
      date: new Date().toISOString(),
      machine,
      tskubelet_source: version,
      upstream_kubelet: `${upstreamVersion} (test/cluster/bin/kube-test-plane kubelet)`,
      mode: "standalone, static pods (--pod-manifest-path / staticPodPath), maxPods 120, read-only port on 127.0.0.1",
      pods: settings.pods,
      load: { tool: "wrk", threads: settings.threads, connections: settings.connections, duration_s: settings.durationS, warmup_s: settings.warmupS },
      load_avg_1m: { start: r1(loadStart), end: r1(loadavg()[0] ?? NaN) },
      tskubelet: tsk ?? null,
      upstream: up ?? null,
      ratio_tskubelet_over_upstream: ratios,
      target: "tskubelet req/s >= upstream and tskubelet p99 <= upstream, on /pods and /stats/summary",
      met,
    };
    console.log(JSON.stringify(out));
  } finally {
    killChildrenNow();
    cri?.close();
    const removed = removeNewChains(host.chains);
    if (removed.length > 0) console.error(`removed iptables chains the upstream kubelet created: ${removed.join(", ")}`);
    hostRestore();
    await rt?.stop();
    removeCgroupRoot(cgroupRoot);
    await rm(snapshot.dir, { recursive: true, force: true });
    if (!settings.keep) await rm(workDir, { recursive: true, force: true });
    else console.error(`kept ${workDir}`);
  }
}

main().catch((err: unknown) => {
  console.error(`listeners benchmark failed: ${errText(err)}`);
  process.exitCode = 1;
});
