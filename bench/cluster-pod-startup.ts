#!/usr/bin/env node
/**
 * Pod startup through the apiserver: tskubelet against the upstream kubelet (v1.33.13, the
 * `kubelet` sub-command of test/cluster/bin/kube-test-plane, built from the same Go modules as the
 * control plane), one kubelet at a time, on one real control plane (test/cluster) and one private
 * containerd with a CNI bridge.
 *
 * Per run (one kubelet, one round): a fresh node name and namespace; the kubelet is started with a
 * node kubeconfig (client certificate CN system:node:<name>, O system:nodes, issued with openssl
 * from the cluster CA) and waited for until its Node is Ready; a watch on the namespace's pods is
 * opened; N pods (busybox `sleep 3600`, image present, imagePullPolicy IfNotPresent, pod network,
 * spec.nodeName set directly: no scheduler) are created at once through the API; per pod, the time
 * from its creation (the 201 of its POST) to the first watch event showing its Ready condition True.
 * Per run: p50, p99 (nearest rank) and total (first creation -> last Ready). Then the pods are
 * deleted and waited for until gone, the kubelet is stopped by its PID, and its Node and namespace
 * are deleted. Rounds alternate which kubelet goes first; the figures are medians over rounds.
 * Each kubelet's RSS (VmRSS, sampled every 250 ms) and CPU seconds (utime+stime of
 * /proc/<pid>/stat) are recorded over the run.
 *
 * Run as root after `npm run build`:
 *   node dist/bench/cluster-pod-startup.js [--rounds 5] [--pods 30] [--profile] [--keep] [--v 2]
 * The last line printed is one JSON object with the result.
 */
import { spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { createRuntimeService, type CriRuntimeService } from "../src/cri/index.js";
import { startContainerd, TEST_IMAGES, type PrivateContainerd } from "../test/support/containerd.js";
import { startCluster, type TestCluster } from "../test/support/cluster.js";
import { load, machineInfo, median, pad, percentile, r1, r2, r3, snapshotTskubelet, sourceVersion } from "./common.js";
import {
  Api,
  errText,
  forceClean,
  KTP_BIN,
  makeCgroupRoot,
  nodeReady,
  readKubeconfig,
  removeCgroupRoot,
  removeLogLinks,
  removeNewChains,
  restoreHostFiles,
  restoreSysctls,
  saveHostState,
  sleep,
  startNodeKubelet,
  unmountUnder,
  waitExit,
  waitUntil,
  type Kind,
  type WatchEvent,
} from "../test/support/kubelets.js";

// ---------------------------------------------------------------------------------------------
// settings

interface Settings {
  rounds: number;
  pods: number;
  profile: boolean;
  keep: boolean;
  verbosity: number;
  /** Run tskubelet under `node --cpu-prof` and print where its CPU went during startup. */
  cpuProf: boolean;
  /** Print the machine's CPU during each startup window by process name. */
  cpuByProcess: boolean;
}

function parseArgs(argv: string[]): Settings {
  const s: Settings = { rounds: 5, pods: 30, profile: false, keep: false, verbosity: 2, cpuProf: false, cpuByProcess: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--rounds") s.rounds = Math.max(1, Number(argv[++i] ?? "5") || 5);
    else if (a === "--pods") s.pods = Math.max(1, Number(argv[++i] ?? "30") || 30);
    else if (a === "--v") s.verbosity = Math.max(0, Number(argv[++i] ?? "2") || 0);
    else if (a === "--profile") s.profile = true;
    else if (a === "--keep") s.keep = true;
    else if (a === "--cpu-prof") s.cpuProf = true;
    else if (a === "--cpu-by-process") s.cpuByProcess = true;
    else if (a === "--help" || a === "-h") {
      console.log("usage: node dist/bench/cluster-pod-startup.js [--rounds N] [--pods N] [--profile] [--cpu-prof] [--cpu-by-process] [--keep] [--v LEVEL]");
      process.exit(0);
    } else throw new Error(`unknown argument ${a ?? ""}`);
  }
  return s;
}

const NODE_READY_TIMEOUT_MS = 90_000;
const POD_READY_TIMEOUT_MS = 180_000;
const POD_GONE_TIMEOUT_MS = 180_000;
/** After the Node is Ready: first relist, informers synced, image/eviction managers started. */
const SETTLE_MS = 3_000;
/** RSS is also read this long after the last pod was Ready. */
const RSS_STEADY_MS = 5_000;
const BETWEEN_RUNS_MS = 3_000;
const SAMPLE_MS = 250;

/** The parts of a pod the benchmark reads. */
interface PodObj {
  metadata?: { name?: string; uid?: string; resourceVersion?: string; deletionTimestamp?: string };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { state?: { running?: object } }[] };
}

// ---------------------------------------------------------------------------------------------
// small helpers

const ms = (x: number): string => `${Math.round(x)} ms`;

// ---------------------------------------------------------------------------------------------
// processes: RSS and CPU

const CLK_TCK = ((): number => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

interface CpuTimes {
  /** utime + stime, seconds. */
  self: number;
  /** cutime + cstime (waited-for children: mount(8) and the like), seconds. */
  children: number;
}

function readCpu(pid: number): CpuTimes | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const f = (i: number): number => Number(rest[i] ?? NaN);
    return { self: (f(11) + f(12)) / CLK_TCK, children: (f(13) + f(14)) / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat. */
function machineBusyS(): number {
  try {
    const first = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const v = first.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
    return busy / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** The private containerd's pid (its pidfile) and the shims serving it (their -address argument). */
function runtimePids(rt: PrivateContainerd): { containerd: number; shims: number[] } {
  let containerd = NaN;
  try {
    containerd = Number(readFileSync(join(rt.dir, "containerd.pid"), "utf8").trim());
  } catch {
    /* not readable: NaN */
  }
  const shims: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
      if ((cmd[0] ?? "").endsWith("containerd-shim-runc-v2") && cmd.includes(rt.socketPath)) shims.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return { containerd, shims };
}

/** CPU seconds of containerd itself and of its live shims (whole lifetime of each shim). */
function runtimeCpu(rt: PrivateContainerd): { containerd: number; shims: number } {
  const p = runtimePids(rt);
  const shims = p.shims.reduce((sum, pid) => sum + (readCpu(pid)?.self ?? 0), 0);
  return { containerd: readCpu(p.containerd)?.self ?? NaN, shims };
}

interface ProcCpu {
  name: string;
  start: string;
  /** utime + stime + cutime + cstime, seconds. */
  total: number;
}

/** Every live process's CPU, self and reaped children, by pid. */
function allProcessCpu(): Map<number, ProcCpu> {
  const out = new Map<number, ProcCpu>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const f = (i: number): number => Number(rest[i] ?? 0);
      let name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (name === "kube-test-plane" || name === "node") {
        const argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
        name = name === "node" ? `node ${(argv[1] ?? "").split("/").slice(-2).join("/")}` : `${name} ${argv[1] ?? ""}`;
      }
      out.set(Number(e), { name, start: rest[19] ?? "", total: (f(11) + f(12) + f(13) + f(14)) / CLK_TCK });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** containerd's gRPC calls handled so far by method, from its metrics endpoint (TSK_CONTAINERD_METRICS), if configured. */
async function runtimeCalls(): Promise<Map<string, number> | undefined> {
  const addr = process.env.TSK_CONTAINERD_METRICS;
  if (!addr) return undefined;
  try {
    const text = await (await fetch(`http://${addr}/v1/metrics`)).text();
    const out = new Map<string, number>();
    for (const m of text.matchAll(/^grpc_server_handled_total\{([^}]*)\} (\S+)$/gm)) {
      const method = /grpc_method="([^"]+)"/.exec(m[1] ?? "")?.[1] ?? "?";
      out.set(method, (out.get(method) ?? 0) + Number(m[2]));
    }
    return out;
  } catch {
    return undefined;
  }
}

/** The apiserver's requests so far by verb, resource and subresource (apiserver_request_total), for user agents other than the control plane's own. */
async function apiCalls(api: Api): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const r = await api.request("GET", "/metrics").catch(() => undefined);
  for (const m of (r?.text ?? "").matchAll(/^apiserver_request_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = m[1] ?? "";
    const get = (k: string): string => new RegExp(`${k}="([^"]*)"`).exec(labels)?.[1] ?? "";
    const key = `${get("verb")} ${get("resource")}${get("subresource") ? `/${get("subresource")}` : ""}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[2]));
  }
  return out;
}

/** CPU seconds spent between two snapshots, by process name (a process born in between counts whole). */
function cpuByName(before: Map<number, ProcCpu>, after: Map<number, ProcCpu>): [string, number][] {
  const by = new Map<string, number>();
  for (const [pid, a] of after) {
    const b = before.get(pid);
    const d = b && b.start === a.start ? a.total - b.total : a.total;
    if (d > 0) by.set(a.name, (by.get(a.name) ?? 0) + d);
  }
  return [...by].sort((x, y) => y[1] - x[1]);
}

function readRssMiB(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s*(\\d+)\\s*kB`, "m").exec(text)?.[1] ?? NaN);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/** Samples a process's VmRSS every SAMPLE_MS; `peak()` is the highest sample since `reset()`. */
function rssSampler(pid: number): { peak(): number; reset(): void; stop(): void } {
  let peak = 0;
  const tick = (): void => {
    const m = readRssMiB(pid);
    if (m && m.rss > peak) peak = m.rss;
  };
  tick();
  const t = setInterval(tick, SAMPLE_MS);
  return {
    peak: () => (tick(), peak),
    reset: () => {
      peak = 0;
      tick();
    },
    stop: () => clearInterval(t),
  };
}

let child: ChildProcess | undefined;

function killChildNow(): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

// ---------------------------------------------------------------------------------------------
// the benchmark context

interface Ctx {
  settings: Settings;
  cluster: TestCluster;
  api: Api;
  rt: PrivateContainerd;
  cri: CriRuntimeService;
  workDir: string;
  mainJs: string;
  cgroupRoot: string;
  sysctls: Map<string, string>;
  seq: number;
}

interface PodTimes {
  sent: number;
  created: number;
  /** First watch event with status conditions (the kubelet's first status write). */
  ack?: number;
  ip?: number;
  running?: number;
  ready?: number;
  updates: number;
  deleteSent?: number;
  gone?: number;
}

interface RunResult {
  kind: Kind;
  label: string;
  node: string;
  namespace: string;
  /** Per pod: created -> Ready seen, ms. */
  perPod: number[];
  p50: number;
  p99: number;
  /** First creation -> last Ready. */
  total: number;
  /** POST latency (sent -> 201). */
  createP50: number;
  createMax: number;
  /** Created -> first status written by the kubelet / pod IP / container running / Ready (medians). */
  phases: { ack: number; ip: number; running: number; ready: number; updatesToReady: number };
  /** Delete sent -> pod gone: p50 and total. */
  deleteP50: number;
  deleteTotal: number;
  rssReadyMiB: number;
  rssSteadyMiB: number;
  rssPeakMiB: number;
  /** utime+stime over the measured window (first create -> all gone) and over the startup (-> all Ready). */
  cpuS: number;
  cpuStartupS: number;
  childCpuS: number;
  /** utime+stime since the process started, read just before it was stopped. */
  cpuLifetimeS: number;
  /** Startup window (first create -> all Ready): busy CPU of the whole machine, of containerd, of the pods' shims. */
  machineCpuStartupS: number;
  containerdCpuStartupS: number;
  shimCpuStartupS: number;
  startToReadyNodeMs: number;
  /** 1-minute load average when the run ended. */
  load1m: number;
  profile?: string;
}

// ---------------------------------------------------------------------------------------------
// one run

function podManifest(i: number, namespace: string, node: string): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `bench-${i}`, namespace, labels: { app: "cluster-pod-startup" } },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "sleep", image: TEST_IMAGES.busybox, imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }],
    },
  };
}

interface KubeletRun {
  kind: Kind;
  node: string;
  kubeconfig: string;
  dir: string;
  logFile: string;
}

function startKubelet(ctx: Ctx, run: KubeletRun): Promise<ChildProcess> {
  const v = ctx.settings.profile ? (run.kind === "tskubelet" ? 5 : 4) : ctx.settings.verbosity;
  return startNodeKubelet({
    ...run,
    endpoint: ctx.rt.endpoint,
    cgroupRoot: ctx.cgroupRoot,
    caCert: ctx.cluster.caCert,
    mainJs: ctx.mainJs,
    verbosity: v,
    nodeOptions: [
      ...(ctx.settings.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${join(run.dir, "cpuprof")}`] : []),
      // Experiments only: V8/Node flags for tskubelet, e.g. "--max-semi-space-size=16".
      ...(process.env.TSK_BENCH_NODE_OPTIONS ?? "").split(" ").filter((a) => a !== ""),
    ],
    // Experiments only (the figures use the defaults): more tskubelet flags, e.g. "--max-parallel-pod-starts=0".
    extraArgs: (process.env.TSK_BENCH_TSKUBELET_ARGS ?? "").split(" ").filter((a) => a !== ""),
  });
}

async function runOnce(ctx: Ctx, kind: Kind, label: string): Promise<RunResult> {
  const id = ++ctx.seq;
  const node = `bench-${kind === "tskubelet" ? "tsk" : "up"}-${id}`;
  const namespace = `bench-${id}-${kind === "tskubelet" ? "tsk" : "up"}`;
  const dir = join(ctx.workDir, `run-${id}-${kind}`);
  await mkdir(dir, { recursive: true });
  const logFile = join(dir, `${kind}.log`);
  const n = ctx.settings.pods;
  const api = ctx.api;
  const kubeconfig = await ctx.cluster.nodeKubeconfig(node);
  await api.ok("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });

  const tStart = performance.now();
  const proc = await startKubelet(ctx, { kind, node, kubeconfig, dir, logFile });
  child = proc;
  const pid = proc.pid ?? 0;
  const alive = (): void => {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${kind} exited (${proc.exitCode ?? proc.signalCode}); tail of ${logFile}:\n${readFileSync(logFile, "utf8").slice(-4000)}`);
  };
  const sampler = rssSampler(pid);
  let watch: { close(): void } | undefined;
  let stopWatch = (): void => watch?.close();
  const cpuWindow = { start: 0, ready: 0 };
  const times = new Map<string, PodTimes>();
  try {
    await waitUntil({ what: `node ${node} Ready`, timeoutMs: NODE_READY_TIMEOUT_MS, check: alive }, async () => {
      const r = await api.request("GET", `/api/v1/nodes/${node}`);
      return r.status === 200 && nodeReady(r.body) ? true : undefined;
    });
    const startToReadyNodeMs = performance.now() - tStart;
    // Pods get the projected service-account token volume: the namespace needs its ServiceAccount and CA ConfigMap.
    await waitUntil({ what: `ServiceAccount and kube-root-ca.crt in ${namespace}`, timeoutMs: 60_000, check: alive }, async () => {
      const [sa, cm] = await Promise.all([api.request("GET", `/api/v1/namespaces/${namespace}/serviceaccounts/default`), api.request("GET", `/api/v1/namespaces/${namespace}/configmaps/kube-root-ca.crt`)]);
      return sa.status === 200 && cm.status === 200 ? true : undefined;
    });
    await sleep(SETTLE_MS);
    alive();

    // The watch first, from the resourceVersion of an (empty) list.
    const list = (await api.ok("GET", `/api/v1/namespaces/${namespace}/pods`)) as { metadata?: { resourceVersion?: string } };
    let watchErr: Error | undefined;
    const names = Array.from({ length: n }, (_, i) => `bench-${i}`);
    let readyCount = 0;
    let goneCount = 0;
    // The watch is resumed from the last resourceVersion if the apiserver ends it (it does, rarely, under load).
    let lastRv = list.metadata?.resourceVersion ?? "0";
    let watchClosed = false;
    const onEvent = (e: WatchEvent<PodObj>, at: number): void => {
      if (e.type === "ERROR") {
        watchErr = new Error(`watch error event: ${JSON.stringify(e.object).slice(0, 300)}`);
        return;
      }
      if (e.object.metadata?.resourceVersion) lastRv = e.object.metadata.resourceVersion;
      if (e.type === "BOOKMARK") return;
      const name = e.object.metadata?.name ?? "";
      const t = times.get(name);
      if (!t) return;
      if (e.type === "DELETED") {
        if (t.gone === undefined) {
          t.gone = at;
          goneCount++;
        }
        return;
      }
      const st = e.object.status;
      if (t.ready === undefined && e.type === "MODIFIED") t.updates++;
      if (t.ack === undefined && (st?.conditions?.length ?? 0) > 0) t.ack = at;
      if (t.ip === undefined && st?.podIP) t.ip = at;
      if (t.running === undefined && st?.containerStatuses?.some((c) => c.state?.running)) t.running = at;
      if (t.ready === undefined && st?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) {
        t.ready = at;
        readyCount++;
      }
    };
    let reconnects = 0;
    const openWatch = (): void => {
      watch = api.watch(`/api/v1/namespaces/${namespace}/pods?watch=1&allowWatchBookmarks=true&resourceVersion=${lastRv}`, onEvent, (err) => {
        if (watchClosed) return;
        reconnects++;
        console.log(`  (watch ended at resourceVersion ${lastRv}: ${err instanceof Error ? err.message : String(err)}; resumed)`);
        if (reconnects > 20) watchErr = err instanceof Error ? err : new Error(`watch ended: ${String(err)}`);
        else setTimeout(() => {
          if (!watchClosed) openWatch();
        }, 50);
      });
    };
    openWatch();
    stopWatch = () => {
      watchClosed = true;
      watch?.close();
    };
    for (const name of names) times.set(name, { sent: NaN, created: NaN, updates: 0 });
    await sleep(200); // the watch is established

    // Measured window starts: CPU and RSS.
    const cpu0 = readCpu(pid);
    const machine0 = machineBusyS();
    const runtime0 = runtimeCpu(ctx.rt);
    const procs0 = ctx.settings.cpuByProcess ? allProcessCpu() : undefined;
    const calls0 = ctx.settings.cpuByProcess ? await runtimeCalls() : undefined;
    const api0 = ctx.settings.cpuByProcess ? await apiCalls(api) : undefined;
    cpuWindow.start = monotonicUs();
    sampler.reset();
    await Promise.all(
      names.map(async (name, i) => {
        const t = times.get(name);
        if (!t) return;
        t.sent = performance.now();
        await api.ok("POST", `/api/v1/namespaces/${namespace}/pods`, podManifest(i, namespace, node), [201]);
        t.created = performance.now();
      }),
    );
    const watchAlive = (): void => {
      alive();
      if (watchErr) throw watchErr;
    };
    await waitUntil({ what: `${n} pods Ready on ${kind}`, timeoutMs: POD_READY_TIMEOUT_MS, check: watchAlive, intervalMs: 20 }, () => (readyCount >= n ? true : undefined));
    const cpuReady = readCpu(pid);
    const machineReady = machineBusyS();
    const runtimeReady = runtimeCpu(ctx.rt);
    if (procs0) {
      const rows = cpuByName(procs0, allProcessCpu());
      console.log(`  ${kind} startup CPU by process (s): ${rows.slice(0, 14).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}`);
      const calls1 = await runtimeCalls();
      if (calls0 && calls1) {
        const d = [...calls1].map(([k, v]) => [k, v - (calls0.get(k) ?? 0)] as const).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
        console.log(`  ${kind} CRI calls during startup: ${d.map(([k, v]) => `${k} ${v}`).join(", ")}`);
      }
      if (api0) {
        const api1 = await apiCalls(api);
        const d = [...api1].map(([k, v]) => [k, v - (api0.get(k) ?? 0)] as const).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
        console.log(`  ${kind} apiserver requests during startup (all clients, incl. the benchmark's): ${d.map(([k, v]) => `${k} ${v}`).join(", ")}`);
      }
    }
    cpuWindow.ready = monotonicUs();
    const rssReady = readRssMiB(pid)?.rss ?? NaN;
    await sleep(RSS_STEADY_MS);
    const rssSteady = readRssMiB(pid)?.rss ?? NaN;
    const peakStartup = sampler.peak();

    // Delete, wait until every pod is gone.
    await Promise.all(
      names.map(async (name) => {
        const t = times.get(name);
        if (!t) return;
        t.deleteSent = performance.now();
        await api.ok("DELETE", `/api/v1/namespaces/${namespace}/pods/${name}`, undefined, [200, 202]);
      }),
    );
    await waitUntil({ what: `${n} pods gone on ${kind}`, timeoutMs: POD_GONE_TIMEOUT_MS, check: watchAlive, intervalMs: 50 }, () => (goneCount >= n ? true : undefined));
    const cpuEnd = readCpu(pid);
    const peak = Math.max(peakStartup, sampler.peak());

    const all = names.map((nm) => times.get(nm)).filter((t): t is PodTimes => t !== undefined);
    const perPod = all.map((t) => (t.ready ?? NaN) - t.created);
    const firstCreated = Math.min(...all.map((t) => t.created));
    const rel = (f: (t: PodTimes) => number | undefined): number => median(all.map((t) => (f(t) ?? NaN) - t.created));
    const deletes = all.map((t) => (t.gone ?? NaN) - (t.deleteSent ?? NaN));
    const result: RunResult = {
      kind,
      label,
      node,
      namespace,
      perPod,
      p50: percentile(perPod, 0.5),
      p99: percentile(perPod, 0.99),
      total: Math.max(...all.map((t) => t.ready ?? NaN)) - firstCreated,
      createP50: median(all.map((t) => t.created - t.sent)),
      createMax: Math.max(...all.map((t) => t.created - t.sent)),
      phases: { ack: rel((t) => t.ack), ip: rel((t) => t.ip), running: rel((t) => t.running), ready: rel((t) => t.ready), updatesToReady: median(all.map((t) => t.updates)) },
      deleteP50: median(deletes),
      deleteTotal: Math.max(...all.map((t) => t.gone ?? NaN)) - Math.min(...all.map((t) => t.deleteSent ?? NaN)),
      rssReadyMiB: rssReady,
      rssSteadyMiB: rssSteady,
      rssPeakMiB: peak,
      cpuS: (cpuEnd?.self ?? NaN) - (cpu0?.self ?? NaN),
      cpuStartupS: (cpuReady?.self ?? NaN) - (cpu0?.self ?? NaN),
      childCpuS: (cpuEnd?.children ?? NaN) - (cpu0?.children ?? NaN),
      cpuLifetimeS: readCpu(pid)?.self ?? NaN,
      machineCpuStartupS: machineReady - machine0,
      containerdCpuStartupS: runtimeReady.containerd - runtime0.containerd,
      shimCpuStartupS: runtimeReady.shims - runtime0.shims,
      startToReadyNodeMs,
      load1m: loadavg()[0] ?? NaN,
    };
    if (ctx.settings.profile) {
      const firstWall = Date.now() - (performance.now() - firstCreated);
      result.profile = await profileRun(ctx, { kind, logFile, namespace, byName: times, firstWall, firstCreated });
    }
    return result;
  } catch (err) {
    const text = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
    console.error(`${kind} run ${label} failed; tail of its log (${logFile}):\n${text.slice(-4000)}`);
    throw err;
  } finally {
    stopWatch();
    sampler.stop();
    proc.kill("SIGTERM");
    if (!(await waitExit(proc, 15_000))) {
      proc.kill("SIGKILL");
      await waitExit(proc, 5_000);
    }
    child = undefined;
    if (kind === "tskubelet" && ctx.settings.cpuProf && cpuWindow.ready > 0) console.log(await summarizeCpuProfile(join(dir, "cpuprof"), cpuWindow));
    // Not measured: the Node and namespace go, leftovers in the runtime and on the host too.
    await api.request("DELETE", `/api/v1/nodes/${node}`).catch(() => undefined);
    await api.request("DELETE", `/api/v1/namespaces/${namespace}`).catch(() => undefined);
    await forceClean(ctx.cri, namespace);
    unmountUnder(dir);
    removeLogLinks(ctx.workDir);
    if (kind === "upstream") {
      const changed = restoreSysctls(ctx.sysctls);
      if (changed.length > 0 && ctx.seq <= 2) console.log(`  (restored sysctls the upstream kubelet changed: ${changed.join(", ")})`);
    }
    await rm(dirname(kubeconfig), { recursive: true, force: true });
    if (!ctx.settings.keep) await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// --profile: where the time went, from the kubelet's log and the apiserver's request log (-v 3)

interface ApiLogLine {
  atWall: number;
  verb: string;
  uri: string;
  latencyMs: number;
  userAgent: string;
  status: number;
  srcIP: string;
}

/** klog header "I1128 15:55:09.143318 ..." -> epoch ms (local time, this year). */
function klogTime(line: string): number {
  const m = /^[IWEF](\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})/.exec(line);
  if (!m) return NaN;
  const y = new Date().getFullYear();
  return new Date(y, Number(m[1]) - 1, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]) / 1000).getTime();
}

function goDurationMs(s: string): number {
  const m = /^([\d.]+)(ns|µs|us|ms|s|m)$/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  const unit = m[2];
  return unit === "ns" ? v / 1e6 : unit === "µs" || unit === "us" ? v / 1e3 : unit === "ms" ? v : unit === "s" ? v * 1e3 : v * 60e3;
}

function apiserverRequests(text: string, namespace: string): ApiLogLine[] {
  const out: ApiLogLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.includes('"HTTP"') || !line.includes(namespace)) continue;
    const get = (k: string): string => new RegExp(`${k}="((?:[^"\\\\]|\\\\.)*)"`).exec(line)?.[1] ?? "";
    out.push({ atWall: klogTime(line), verb: get("verb"), uri: get("URI"), latencyMs: goDurationMs(get("latency")), userAgent: get("userAgent"), status: Number(/resp=(\d+)/.exec(line)?.[1] ?? NaN), srcIP: get("srcIP") });
  }
  return out;
}

function statsLine(label: string, values: number[]): string {
  if (values.length === 0) return `${label}: none`;
  return `${label}: n ${values.length}, p50 ${ms(median(values))}, max ${ms(Math.max(...values))}, sum ${ms(values.reduce((a, b) => a + b, 0))}`;
}

interface ProfileInput {
  kind: Kind;
  logFile: string;
  namespace: string;
  byName: Map<string, PodTimes>;
  /** Wall-clock ms (Date.now()) of the first pod's creation... */
  firstWall: number;
  /** ...and the same instant on performance.now(). */
  firstCreated: number;
}

async function profileRun(ctx: Ctx, input: ProfileInput): Promise<string> {
  const { kind, logFile, namespace, byName, firstWall, firstCreated } = input;
  const pods = [...byName.values()];
  /** Per pod: the kubelet logged its container Started at `at` (ms after the first creation) -> Ready seen by the watch. */
  const startedToReady = (started: Map<string, number>): string => {
    const d: number[] = [];
    for (const [name, at] of started) {
      const t = byName.get(name);
      if (t?.ready !== undefined) d.push(t.ready - firstCreated - at);
    }
    const created = pods.map((t) => t.created - firstCreated);
    const startedRel = [...started.entries()].map(([name, at]) => at - ((byName.get(name)?.created ?? NaN) - firstCreated));
    return d.length ? `per pod, created -> container Started (kubelet log): p50 ${ms(median(startedRel))}, max ${ms(Math.max(...startedRel))}; Started -> Ready seen by the watch: p50 ${ms(median(d))}, max ${ms(Math.max(...d))} (n ${d.length}; creations spread over ${ms(Math.max(...created))})` : "no Started events matched";
  };
  const lines: string[] = [`  profile (${kind}; wall-clock ms after the first pod's creation; apiserver log at -v 3):`];
  const apiLog = await readFile(join(ctx.cluster.dataDir, "logs", "kube-apiserver.log"), "utf8").catch(() => "");
  const reqs = apiserverRequests(apiLog, namespace).filter((r) => r.atWall >= firstWall - 2000);
  const isKubelet = (r: ApiLogLine): boolean => (kind === "tskubelet" ? /tskubelet/i.test(r.userAgent) : /^kubelet\//.test(r.userAgent));
  const patches = reqs.filter((r) => isKubelet(r) && r.verb === "PATCH" && /\/pods\/[^/]+\/status$/.test(r.uri));
  const lastReady = Math.max(...pods.map((p) => p.ready ?? NaN)) - firstCreated;
  const beforeReady = patches.filter((r) => r.atWall - firstWall <= lastReady + 50);
  const perPod = new Map<string, number[]>();
  for (const r of beforeReady) {
    const name = /\/pods\/([^/]+)\/status$/.exec(r.uri)?.[1] ?? "?";
    perPod.set(name, [...(perPod.get(name) ?? []), r.atWall - firstWall]);
  }
  lines.push(`    status PATCHes until the last pod was Ready: ${statsLine("latency", beforeReady.map((r) => r.latencyMs))}; per pod ${median([...perPod.values()].map((v) => v.length))} (median); first done at ${ms(Math.min(...beforeReady.map((r) => r.atWall - firstWall)))}, last at ${ms(Math.max(...beforeReady.map((r) => r.atWall - firstWall)))}`);
  const tokens = reqs.filter((r) => isKubelet(r) && r.verb === "POST" && r.uri.includes("/serviceaccounts/") && r.uri.includes("/token"));
  const arrived = tokens.map((r) => r.atWall - r.latencyMs - firstWall);
  const done = tokens.map((r) => r.atWall - firstWall);
  const spreadOf = (l: number[]): string => (l.length ? `first ${ms(Math.min(...l))} / p50 ${ms(median(l))} / last ${ms(Math.max(...l))}` : "-");
  lines.push(`    TokenRequests: ${statsLine("latency", tokens.map((r) => r.latencyMs))}; received by the apiserver ${spreadOf(arrived)}; answered ${spreadOf(done)}`);
  const conns = new Set(reqs.filter((r) => isKubelet(r) && r.atWall - firstWall <= lastReady).map((r) => r.srcIP));
  lines.push(`    client connections (distinct srcIP:port) the kubelet's namespace requests came over, creation -> last Ready: ${conns.size}`);
  const events = reqs.filter((r) => isKubelet(r) && r.uri.includes("/events"));
  const eventsInWindow = events.filter((r) => r.atWall - firstWall <= lastReady).length;
  lines.push(`    event writes: ${statsLine("latency", events.map((r) => r.latencyMs))}; ${eventsInWindow} before the last pod was Ready; first done at ${ms(Math.min(...events.map((r) => r.atWall - firstWall)))}, last at ${ms(Math.max(...events.map((r) => r.atWall - firstWall)))}`);
  const other = reqs.filter((r) => isKubelet(r) && !patches.includes(r) && !tokens.includes(r) && !events.includes(r) && r.atWall - firstWall <= lastReady);
  const byVerb = new Map<string, number[]>();
  for (const r of other) {
    const k = `${r.verb} ${r.uri.replace(/\?.*$/, "").replace(/bench-\d+/g, "*")}`;
    byVerb.set(k, [...(byVerb.get(k) ?? []), r.latencyMs]);
  }
  for (const [k, v] of byVerb) lines.push(`    other kubelet request ${k}: n ${v.length}, p50 ${ms(median(v))}`);

  const text = await readFile(logFile, "utf8").catch(() => "");
  if (kind === "tskubelet") {
    // I2026-11-28T15:56:01.737Z "msg" k=v ...
    const parsed = text.split("\n").map((l) => {
      const m = /^[IWE](\S+) ("(?:[^"\\]|\\.)*")(.*)$/.exec(l);
      if (!m) return undefined;
      let msg = "";
      try {
        msg = JSON.parse(m[2] ?? '""') as string;
      } catch {
        return undefined;
      }
      return { at: Date.parse(m[1] ?? "") - firstWall, msg, fields: m[3] ?? "" };
    }).filter((x): x is { at: number; msg: string; fields: string } => x !== undefined && x.at >= -2000 && x.at <= lastReady + 50);
    const field = (f: string, key: string): string | undefined => new RegExp(`(?:^| )${key}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`).exec(f)?.[1]?.replace(/^"|"$/g, "");
    const ev = (reason: string): number[] => parsed.filter((l) => l.msg === "event" && field(l.fields, "reason") === reason && (field(l.fields, "pod") ?? "").startsWith(`${namespace}/`)).map((l) => l.at);
    const evLine = (reason: string): string => {
      const e = ev(reason);
      return e.length ? `${reason} first ${ms(Math.min(...e))} / p50 ${ms(median(e))} / last ${ms(Math.max(...e))}` : `${reason} -`;
    };
    lines.push(`    tskubelet events: ${evLine("Pulled")}; ${evLine("Created")}; ${evLine("Started")}`);
    const started = new Map<string, number>();
    for (const l of parsed) {
      if (l.msg !== "event" || field(l.fields, "reason") !== "Started") continue;
      const pod = field(l.fields, "pod") ?? "";
      if (pod.startsWith(`${namespace}/`) && !started.has(pod.slice(namespace.length + 1))) started.set(pod.slice(namespace.length + 1), l.at);
    }
    lines.push(`    ${startedToReady(started)}`);
    const ops = new Map<string, { start: number; ms: number }[]>();
    for (const l of parsed) {
      if (l.msg !== "CRI call" || l.at < 0) continue;
      const op = field(l.fields, "op") ?? "?";
      const d = Number(field(l.fields, "ms") ?? "NaN");
      ops.set(op, [...(ops.get(op) ?? []), { start: l.at - d, ms: d }]);
    }
    const firstOf = (op: string): string => {
      const l = ops.get(op);
      return l && l.length ? ms(Math.min(...l.map((x) => x.start))) : "-";
    };
    const spread = (op: string, end: boolean): string => {
      const l = (ops.get(op) ?? []).map((x) => (end ? x.start + x.ms : x.start));
      return l.length ? `first ${ms(Math.min(...l))} / p50 ${ms(median(l))} / last ${ms(Math.max(...l))}` : "-";
    };
    lines.push(`    run_podsandbox sent: ${spread("run_podsandbox", false)}; returned: ${spread("run_podsandbox", true)}; start_container returned: ${spread("start_container", true)}`);
    lines.push(`    first run_podsandbox sent at ${firstOf("run_podsandbox")}; CRI calls from creation to the last Ready:`);
    for (const [op, v] of [...ops.entries()].sort((a, b) => b[1].length - a[1].length)) {
      lines.push(`      ${op.padEnd(22)} n ${pad(v.length, 4)}  p50 ${pad(Math.round(median(v.map((x) => x.ms))), 5)} ms  max ${pad(Math.round(Math.max(...v.map((x) => x.ms))), 5)} ms`);
    }
  } else {
    // klog: "Observed pod startup duration" (the kubelet's own view) and PLEG ContainerStarted.
    const obs = text.split("\n").filter((l) => l.includes("Observed pod startup duration") && l.includes(`pod="${namespace}/`));
    const e2e = obs.map((l) => goDurationMs(/podStartE2EDuration="([^"]+)"/.exec(l)?.[1] ?? "")).filter((x) => Number.isFinite(x));
    if (e2e.length) lines.push(`    upstream's own podStartE2EDuration (creationTimestamp, 1 s resolution -> watch observed running): p50 ${ms(median(e2e))}, max ${ms(Math.max(...e2e))}`);
    const pleg = text.split("\n").filter((l) => l.includes("SyncLoop (PLEG)") && l.includes("ContainerStarted") && l.includes(`pod="${namespace}/`)).map((l) => klogTime(l) - firstWall);
    if (pleg.length) lines.push(`    PLEG ContainerStarted events: n ${pleg.length}, first ${ms(Math.min(...pleg))} / p50 ${ms(median(pleg))} / last ${ms(Math.max(...pleg))}`);
    // -v 4: "Creating PodSandbox for pod" / "Created PodSandbox for pod" (kuberuntime_manager).
    const sbLines = (needle: string): number[] => text.split("\n").filter((l) => l.includes(needle) && l.includes(`pod="${namespace}/`)).map((l) => klogTime(l) - firstWall);
    const spread = (l: number[]): string => (l.length ? `first ${ms(Math.min(...l))} / p50 ${ms(median(l))} / last ${ms(Math.max(...l))} (n ${l.length})` : "-");
    lines.push(`    RunPodSandbox sent ("Creating PodSandbox for pod"): ${spread(sbLines('"Creating PodSandbox for pod"'))}; returned ("Created PodSandbox for pod"): ${spread(sbLines('"Created PodSandbox for pod"'))}`);
    // The event broadcaster logs every event at -v 3: "Event occurred" object="ns/pod" ... reason="Started".
    const started = new Map<string, number>();
    for (const l of text.split("\n")) {
      if (!l.includes('"Event occurred"') || !l.includes('reason="Started"')) continue;
      const obj = /object="([^"]+)"/.exec(l)?.[1] ?? "";
      if (obj.startsWith(`${namespace}/`) && !started.has(obj.slice(namespace.length + 1))) started.set(obj.slice(namespace.length + 1), klogTime(l) - firstWall);
    }
    lines.push(`    ${startedToReady(started)}`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// --cpu-prof: where tskubelet's CPU went between the first POST and the last pod Ready

/** CLOCK_MONOTONIC in microseconds: the clock V8's profiler stamps its samples with on Linux. */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

function cpuCategory(url: string, fn: string): string {
  if (url === "") return fn.startsWith("(") ? fn : "(native/builtin)";
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/").slice(0, 2).join("/")}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] ?? url;
  const src = /\/src\/(.*)$/.exec(url);
  return src ? `src/${src[1] ?? ""}` : url;
}

async function summarizeCpuProfile(dir: string, win: { start: number; ready: number }): Promise<string> {
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  } catch {
    return `  cpu profile: none written in ${dir}`;
  }
  const file = files[0];
  if (!file) return `  cpu profile: none written in ${dir}`;
  const prof = JSON.parse(await readFile(join(dir, file), "utf8")) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** Inclusive time of tskubelet's own functions (each counted once per sample). */
  const incl = new Map<string, number>();
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let t = prof.startTime;
  let inWindow = 0;
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    total += dt;
    if (t < win.start || t > win.ready) continue;
    const node = byId.get(prof.samples[i] ?? -1);
    if (!node) continue;
    const cf = node.callFrame;
    inWindow += dt;
    const cat = cpuCategory(cf.url, cf.functionName);
    cats.set(cat, (cats.get(cat) ?? 0) + dt);
    const key = `${cf.functionName || "(anonymous)"} ${cat}:${cf.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + dt);
    if (cat === "(idle)") continue;
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)?.callFrame;
      if (!f || !/\/(src|bench|test)\//.test(f.url) || /node_modules/.test(f.url)) continue;
      const k = `${f.functionName || "(anonymous)"} ${cpuCategory(f.url, f.functionName)}:${f.lineNumber + 1}`;
      if (!seen.has(k)) {
        seen.add(k);
        incl.set(k, (incl.get(k) ?? 0) + dt);
      }
    }
  }
  const busy = inWindow - (cats.get("(idle)") ?? 0);
  const top = (m: Map<string, number>, n: number): string[] =>
    [...m.entries()]
      .filter(([k]) => !k.startsWith("(idle)"))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `      ${pad(Math.round(us / 1000), 6)} ms ${pad(((100 * us) / Math.max(1, busy)).toFixed(1), 5)} %  ${k}`);
  return [
    `  tskubelet cpu profile (node --cpu-prof, self time of the main thread, first POST -> last pod Ready: ${Math.round(inWindow / 1000)} ms wall, ${Math.round(busy / 1000)} ms not idle; whole profile ${Math.round(total / 1000)} ms):`,
    "    by package / file:",
    ...top(cats, 14),
    "    by function:",
    ...top(fns, 16),
    "    tskubelet functions, inclusive:",
    ...top(incl, 40),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// reporting

function describe(r: RunResult): string {
  const p = r.phases;
  return [
    `${r.label} ${r.kind.padEnd(9)} pods ${r.perPod.length}  p50 ${pad(Math.round(r.p50), 5)} ms  p99 ${pad(Math.round(r.p99), 5)} ms  total ${pad(Math.round(r.total), 5)} ms  | delete p50 ${pad(Math.round(r.deleteP50), 5)} ms total ${pad(Math.round(r.deleteTotal), 5)} ms  | rss ready ${r1(r.rssReadyMiB)} / +5s ${r1(r.rssSteadyMiB)} / peak ${r1(r.rssPeakMiB)} MiB  cpu ${r2(r.cpuS)} s (startup ${r2(r.cpuStartupS)} s, children ${r2(r.childCpuS)} s, lifetime ${r2(r.cpuLifetimeS)} s)  load ${load()}`,
    `    medians after creation: first status ${ms(p.ack)}, pod IP ${ms(p.ip)}, running ${ms(p.running)}, Ready ${ms(p.ready)}; status updates seen before Ready ${p.updatesToReady}; POST p50 ${ms(r.createP50)} max ${ms(r.createMax)}; node Ready ${ms(r.startToReadyNodeMs)} after start`,
    `    startup CPU: kubelet ${r2(r.cpuStartupS)} s, containerd ${r2(r.containerdCpuStartupS)} s, shims ${r2(r.shimCpuStartupS)} s, whole machine ${r2(r.machineCpuStartupS)} s`,
  ].join("\n");
}

interface Summary {
  p50_ms: number;
  p99_ms: number;
  total_ms: number;
  p50_ms_rounds: number[];
  p99_ms_rounds: number[];
  total_ms_rounds: number[];
  pooled_p50_ms: number;
  pooled_p99_ms: number;
  phases_ms: { first_status: number; pod_ip: number; running: number; ready: number };
  delete_p50_ms: number;
  delete_total_ms: number;
  rss_mib_all_ready: number;
  rss_mib_5s_after: number;
  rss_mib_peak: number;
  cpu_s: number;
  cpu_s_rounds: number[];
  cpu_s_startup: number;
  cpu_s_children: number;
  cpu_s_lifetime: number;
  cpu_s_startup_containerd: number;
  cpu_s_startup_shims: number;
  cpu_s_startup_machine: number;
  node_ready_after_start_ms: number;
  load_1m_rounds: number[];
}

function summarize(list: RunResult[]): Summary {
  const pooled = list.flatMap((r) => r.perPod);
  return {
    p50_ms: r1(median(list.map((r) => r.p50))),
    p99_ms: r1(median(list.map((r) => r.p99))),
    total_ms: r1(median(list.map((r) => r.total))),
    p50_ms_rounds: list.map((r) => r1(r.p50)),
    p99_ms_rounds: list.map((r) => r1(r.p99)),
    total_ms_rounds: list.map((r) => r1(r.total)),
    pooled_p50_ms: r1(percentile(pooled, 0.5)),
    pooled_p99_ms: r1(percentile(pooled, 0.99)),
    phases_ms: {
      first_status: r1(median(list.map((r) => r.phases.ack))),
      pod_ip: r1(median(list.map((r) => r.phases.ip))),
      running: r1(median(list.map((r) => r.phases.running))),
      ready: r1(median(list.map((r) => r.phases.ready))),
    },
    delete_p50_ms: r1(median(list.map((r) => r.deleteP50))),
    delete_total_ms: r1(median(list.map((r) => r.deleteTotal))),
    rss_mib_all_ready: r1(median(list.map((r) => r.rssReadyMiB))),
    rss_mib_5s_after: r1(median(list.map((r) => r.rssSteadyMiB))),
    rss_mib_peak: r1(Math.max(...list.map((r) => r.rssPeakMiB))),
    cpu_s: r2(median(list.map((r) => r.cpuS))),
    cpu_s_rounds: list.map((r) => r2(r.cpuS)),
    cpu_s_startup: r2(median(list.map((r) => r.cpuStartupS))),
    cpu_s_children: r2(median(list.map((r) => r.childCpuS))),
    cpu_s_lifetime: r2(median(list.map((r) => r.cpuLifetimeS))),
    cpu_s_startup_containerd: r2(median(list.map((r) => r.containerdCpuStartupS))),
    cpu_s_startup_shims: r2(median(list.map((r) => r.shimCpuStartupS))),
    cpu_s_startup_machine: r2(median(list.map((r) => r.machineCpuStartupS))),
    node_ready_after_start_ms: r1(median(list.map((r) => r.startToReadyNodeMs))),
    load_1m_rounds: list.map((r) => r1(r.load1m)),
  };
}

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("the benchmark needs root (a private containerd, kubelets)");
  if (!existsSync(KTP_BIN)) throw new Error(`${KTP_BIN} is missing: run test/cluster/build.sh`);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(sig, killChildNow);
  process.on("exit", killChildNow);

  console.log(`cluster pod-startup benchmark: ${settings.pods} pods, ${settings.rounds} rounds, tskubelet vs upstream kubelet${settings.profile ? ", profile" : ""}`);
  const loadStart = loadavg()[0] ?? NaN;
  const version = sourceVersion();
  const snapshot = await snapshotTskubelet("cluster-bench");
  process.on("exit", () => rmSync(snapshot.dir, { recursive: true, force: true }));
  const upstreamVersion = spawnSync(KTP_BIN, ["kubelet", "--version"], { encoding: "utf8" }).stdout.trim();
  console.log(`tskubelet: ${version ? `commit ${version.commit}${version.src_dirty ? " with uncommitted src/ changes" : ""}` : "not a git tree"}; running a copy of dist/src in ${snapshot.dir}`);
  console.log(`upstream: ${KTP_BIN} kubelet (${upstreamVersion})`);

  const host = saveHostState();
  const cgroupRoot = `tskbench-${process.pid}`;
  const workDir = await mkdtemp("/tmp/tskubelet-cbench-");
  const hostRestore = (): void => restoreHostFiles(host, workDir);
  process.on("exit", hostRestore);

  const started = await Promise.allSettled([startCluster(settings.profile ? { extraEnv: { KTP_APISERVER_VERBOSITY: "3" } } : {}), startContainerd({ cni: true })]);
  if (started[0].status === "rejected" || started[1].status === "rejected") {
    if (started[0].status === "fulfilled") await started[0].value.stop();
    if (started[1].status === "fulfilled") await started[1].value.stop();
    await rm(snapshot.dir, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
    throw started[0].status === "rejected" ? started[0].reason : started[1].status === "rejected" ? started[1].reason : new Error("start failed");
  }
  const cluster = started[0].value;
  const rt = started[1].value;
  const cri = createRuntimeService(rt.endpoint, { timeoutMs: 120_000 });
  const api = new Api(readKubeconfig(cluster.adminKubeconfig));
  try {
    await makeCgroupRoot(cgroupRoot);
    const machine = await machineInfo(cri);
    console.log(`machine: ${String(machine.cpu_model)}, ${machine.cores} cores, ${machine.memory_gib} GiB, kernel ${machine.kernel}, containerd ${machine.containerd_version}, node ${machine.node}`);
    console.log(`control plane: ${cluster.server} (${cluster.dataDir}); containerd: ${rt.endpoint} (CNI bridge ${rt.bridge}, ${rt.subnet}); cgroup root /${cgroupRoot}`);
    const ctx: Ctx = { settings, cluster, api, rt, cri, workDir, mainJs: snapshot.mainJs, cgroupRoot, sysctls: host.sysctls, seq: 0 };

    // Warm-up, not counted: image snapshots, CNI bridge, page cache, apiserver caches.
    for (const kind of ["upstream", "tskubelet"] as const) {
      const w = await runOnce(ctx, kind, "warm-up");
      console.log(describe(w));
      await sleep(BETWEEN_RUNS_MS);
    }

    const runs: Record<Kind, RunResult[]> = { tskubelet: [], upstream: [] };
    for (let round = 1; round <= settings.rounds; round++) {
      const order: Kind[] = round % 2 === 1 ? ["tskubelet", "upstream"] : ["upstream", "tskubelet"];
      for (const kind of order) {
        const r = await runOnce(ctx, kind, `round ${round}`);
        console.log(describe(r));
        if (r.profile) console.log(r.profile);
        runs[kind].push(r);
        await sleep(BETWEEN_RUNS_MS);
      }
    }

    const tsk = summarize(runs.tskubelet);
    const up = summarize(runs.upstream);
    const ratioP50 = r3(tsk.p50_ms / up.p50_ms);
    const ratioP99 = r3(tsk.p99_ms / up.p99_ms);
    const perRound = (f: (r: RunResult) => number): number[] => runs.tskubelet.map((r, i) => r3(f(r) / f(runs.upstream[i] ?? r)));
    // Decided on the unrounded medians.
    const met = tsk.p50_ms <= 0.8 * up.p50_ms && tsk.p99_ms <= 0.8 * up.p99_ms && tsk.p99_ms <= 5000;

    console.log("");
    console.log(`summary (${settings.pods} pods, median of ${settings.rounds} rounds; created -> Ready seen by a watch):`);
    console.log("  kubelet   |   p50 ms |   p99 ms | total ms | pooled p50 / p99 ms | RSS all Ready / peak MiB | CPU s (create -> gone) | CPU s startup");
    for (const [name, s] of [["tskubelet", tsk], ["upstream", up]] as const) {
      console.log(`  ${name.padEnd(9)} | ${pad(s.p50_ms, 8)} | ${pad(s.p99_ms, 8)} | ${pad(s.total_ms, 8)} | ${pad(s.pooled_p50_ms, 8)} / ${pad(s.pooled_p99_ms, 8)} | ${pad(s.rss_mib_all_ready, 8)} / ${pad(s.rss_mib_peak, 8)}     | ${pad(s.cpu_s, 10)}             | ${pad(s.cpu_s_startup, 8)}`);
    }
    console.log(`  ratio tskubelet/upstream: p50 ${ratioP50} (rounds ${perRound((r) => r.p50).join(", ")}), p99 ${ratioP99} (rounds ${perRound((r) => r.p99).join(", ")})`);
    console.log(`  target: p50 and p99 <= 0.8 x upstream and p99 <= 5000 ms: ${met ? "met" : "MISSED"}`);

    const out = {
      benchmark: "cluster-pod-startup",
      date: new Date().toISOString(),
      machine,
      tskubelet_source: version,
      upstream_kubelet: `${upstreamVersion} (test/cluster/bin/kube-test-plane kubelet)`,
      pods: settings.pods,
      rounds: settings.rounds,
      binding: "spec.nodeName set at creation (no scheduler)",
      load_avg_1m: { start: r1(loadStart), end: r1(loadavg()[0] ?? NaN) },
      tskubelet: tsk,
      upstream: up,
      ratio_p50: ratioP50,
      ratio_p99: ratioP99,
      ratio_p50_rounds: perRound((r) => r.p50),
      ratio_p99_rounds: perRound((r) => r.p99),
      target: "tskubelet p50 <= 0.8 x upstream p50 and p99 <= 0.8 x upstream p99, and tskubelet p99 <= 5000 ms",
      met,
    };
    console.log(JSON.stringify(out));
  } finally {
    killChildNow();
    cri.close();
    api.close();
    const removed = removeNewChains(host.chains);
    if (removed.length > 0) console.error(`removed iptables chains the upstream kubelet created: ${removed.join(", ")}`);
    hostRestore();
    await Promise.all([cluster.stop(), rt.stop()]);
    removeCgroupRoot(cgroupRoot);
    await rm(snapshot.dir, { recursive: true, force: true });
    if (!settings.keep) await rm(workDir, { recursive: true, force: true });
    else console.error(`kept ${workDir}`);
  }
}

main().catch((err: unknown) => {
  console.error(`cluster-pod-startup benchmark failed: ${errText(err)}`);
  process.exitCode = 1;
});
