#!/usr/bin/env node
/**
 * Static-pod startup benchmark: tskubelet against raw CRI, side by side in the same run, on one
 * private containerd with a CNI bridge.
 *
 * For each pod count (1 and 30 by default) and each round, it measures:
 *  - tskubelet: `node dist/src/cli/main.js` is started and left to settle; then N manifests (one
 *    busybox container each, pod network) are written into its static pod directory at once (t0),
 *    and the runtime is polled through CRI every ~20 ms until every pod's container is RUNNING.
 *  - raw CRI: the same N pods are started directly through the project's CRI client, all in
 *    parallel (per pod: RunPodSandbox, CreateContainer, StartContainer) with configs built by the
 *    same buildSandboxConfig/buildContainerConfig; t0 is just before the first call, and the same
 *    poller decides when each container is RUNNING.
 * Per pod: t0 -> its container first seen RUNNING. Per run: p50, p99 (nearest rank) and total
 * (t0 -> last pod RUNNING). Each figure in the result is the median across rounds; rounds alternate
 * which side goes first. tskubelet's RSS (VmRSS) is read a few seconds after 30 pods run.
 *
 * Run as root after `npm run build`:
 *   node dist/bench/static-pods.js [--rounds 5] [--pods 1,30] [--profile] [--keep]
 * --profile runs tskubelet at -v 5 and prints where its time went (CRI calls by operation, the
 * pod timeline from its events); it slows tskubelet a little (its log is written synchronously).
 * The last line printed is one JSON object with the result.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { V1Pod } from "@kubernetes/client-node";
import { createImageService, createRuntimeService, type CriRuntimeService } from "../src/cri/index.js";
import { buildSandboxConfig, type SandboxOptions } from "../src/containers/sandbox.js";
import { buildContainerConfig } from "../src/containers/container.js";
import { podCgroupParent } from "../src/containers/resources.js";
import { removeCgroup } from "../src/containers/cgroups.js";
import { applyApiDefaults, applyStaticPodDefaults } from "../src/pods/defaults.js";
import { parseManifest } from "../src/pods/sources/file.js";
import { detectNodeIPs } from "../src/node/machine.js";
import { LABEL_POD_NAME, LABEL_POD_NAMESPACE } from "../src/api/labels.js";
import { startContainerd, TEST_IMAGES, type PrivateContainerd } from "../test/support/containerd.js";
import { forceClean, sleep, waitExit } from "../test/support/kubelets.js";
import { load, machineInfo, median, pad, percentile, r1, r3, snapshotTskubelet, sourceVersion } from "./common.js";

// ---------------------------------------------------------------------------------------------
// settings

interface Settings {
  rounds: number;
  counts: number[];
  profile: boolean;
  keep: boolean;
}

function parseArgs(argv: string[]): Settings {
  const s: Settings = { rounds: 5, counts: [1, 30], profile: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--rounds") s.rounds = Math.max(1, Number(argv[++i] ?? "5") || 5);
    else if (a === "--pods") s.counts = (argv[++i] ?? "").split(",").map(Number).filter((n) => Number.isInteger(n) && n > 0);
    else if (a === "--profile") s.profile = true;
    else if (a === "--keep") s.keep = true;
    else if (a === "--help" || a === "-h") {
      console.log("usage: node dist/bench/static-pods.js [--rounds N] [--pods 1,30] [--profile] [--keep]");
      process.exit(0);
    } else throw new Error(`unknown argument ${a ?? ""}`);
  }
  if (s.counts.length === 0) throw new Error("--pods needs a comma-separated list of positive integers");
  return s;
}

const POLL_MS = 20;
const RUNNING_TIMEOUT_MS = 180_000;
const CLEANUP_TIMEOUT_MS = 120_000;
/** Time tskubelet is given between "container runtime connected" and the manifests (first relist, first scan). */
const TSK_SETTLE_MS = 1_500;
/** Time RSS is read after the last pod runs. */
const RSS_STEADY_MS = 5_000;
/** Pause between runs so shims and CNI teardown of the previous run are done. */
const BETWEEN_RUNS_MS = 2_000;
const CRI_TIMEOUT_MS = 120_000;
const NODE_NAME = "bench";

// ---------------------------------------------------------------------------------------------
// pods

/** The manifest every benchmark pod uses: one busybox container, pod network, grace 1 s. */
function manifest(i: number, namespace: string): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `bench-${i}`, namespace },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "sleep", image: TEST_IMAGES.busybox, command: ["sleep", "3600"] }],
    },
  };
}

/** The pod tskubelet would run for a manifest: parsed, defaulted and given its static-pod identity. */
function staticPod(text: string, nodeName: string, file: string): V1Pod {
  const parsed = parseManifest(text)[0];
  if (!parsed || !("pod" in parsed)) throw new Error(`bad benchmark manifest ${file}`);
  const pod = parsed.pod;
  applyApiDefaults(pod);
  applyStaticPodDefaults(pod, { nodeName, file, seenMs: Date.now() });
  return pod;
}

// ---------------------------------------------------------------------------------------------
// polling

interface RunResult {
  pods: number;
  /** Per pod, ms from t0 to its container first seen RUNNING, in pod order. */
  perPodMs: number[];
  p50: number;
  p99: number;
  total: number;
  polls: number;
  rssMiB?: number;
  hwmMiB?: number;
  extra?: string;
}

/**
 * Polls ListContainers(state RUNNING, namespace label) every POLL_MS until every expected pod name
 * has a running container; resolves to each pod's first-seen time in ms after t0.
 */
async function waitRunning(rs: CriRuntimeService, namespace: string, names: string[], t0: number): Promise<{ seen: Map<string, number>; polls: number }> {
  const want = new Set(names);
  const seen = new Map<string, number>();
  let polls = 0;
  while (seen.size < want.size) {
    const tick = performance.now();
    if (tick - t0 > RUNNING_TIMEOUT_MS) {
      const missing = names.filter((n) => !seen.has(n));
      throw new Error(`timed out after ${RUNNING_TIMEOUT_MS} ms: ${missing.length} pods not running (${missing.slice(0, 5).join(", ")} ...)`);
    }
    const list = await rs.listContainers({ state: { state: "CONTAINER_RUNNING" }, labelSelector: { [LABEL_POD_NAMESPACE]: namespace } });
    const at = performance.now();
    polls++;
    for (const c of list) {
      const name = c.labels[LABEL_POD_NAME] ?? "";
      if (want.has(name) && !seen.has(name)) seen.set(name, at - t0);
    }
    const next = tick + POLL_MS - performance.now();
    if (seen.size < want.size && next > 0) await sleep(next);
  }
  return { seen, polls };
}

function summarize(pods: number, names: string[], seen: Map<string, number>, polls: number): RunResult {
  const perPodMs = names.map((n) => seen.get(n) ?? NaN);
  return { pods, perPodMs, p50: percentile(perPodMs, 0.5), p99: percentile(perPodMs, 0.99), total: Math.max(...perPodMs), polls };
}

/** Waits until no sandbox of the namespace is left. */
async function waitNoSandboxes(rs: CriRuntimeService, namespace: string): Promise<void> {
  const start = performance.now();
  for (;;) {
    const left = await rs.listPodSandbox({ labelSelector: { [LABEL_POD_NAMESPACE]: namespace } });
    if (left.length === 0) return;
    if (performance.now() - start > CLEANUP_TIMEOUT_MS) throw new Error(`${left.length} sandboxes of ${namespace} still there after ${CLEANUP_TIMEOUT_MS} ms`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// the benchmark context

interface Ctx {
  settings: Settings;
  /** main.js of the tskubelet snapshot every run starts. */
  mainJs: string;
  rt: PrivateContainerd;
  /** The poller's client (both sides). */
  poll: CriRuntimeService;
  /** The raw side's client. */
  raw: CriRuntimeService;
  workDir: string;
  imageRef: string;
  sandboxOpts: Omit<SandboxOptions, "attempt">;
  hostIPs: string[];
  memoryCapacity: number;
  seq: number;
}

// ---------------------------------------------------------------------------------------------
// tskubelet

let child: ChildProcess | undefined;

function killChildNow(): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

async function waitForLog(file: string, needle: string, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const start = performance.now();
  for (;;) {
    const text = await readFile(file, "utf8").catch(() => "");
    if (text.includes(needle)) return;
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`tskubelet exited (${proc.exitCode ?? proc.signalCode}) before "${needle}":\n${text.slice(-3000)}`);
    if (performance.now() - start > timeoutMs) throw new Error(`tskubelet did not log "${needle}" within ${timeoutMs} ms:\n${text.slice(-3000)}`);
    await sleep(25);
  }
}

async function readRss(pid: number): Promise<{ rss: number; hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s*(\\d+)\\s*kB`, "m").exec(text)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

async function runTskubelet(ctx: Ctx, n: number, label: string): Promise<RunResult> {
  const id = ++ctx.seq;
  const dir = join(ctx.workDir, `tsk-${id}`);
  const manifests = join(dir, "manifests");
  const logs = join(dir, "pod-logs");
  const root = join(dir, "root");
  await Promise.all([mkdir(manifests, { recursive: true }), mkdir(logs, { recursive: true }), mkdir(root, { recursive: true })]);
  const namespace = `bench-tsk-${id}-n${n}`;
  const logFile = join(dir, "tskubelet.log");
  const fd = openSync(logFile, "a");
  const args = [
    ctx.mainJs,
    "--container-runtime-endpoint", ctx.rt.endpoint,
    "--pod-manifest-path", manifests,
    "--pod-logs-dir", logs,
    "--root-dir", root,
    "--read-only-port", "0",
    "--healthz-port", "0",
    "--cadvisor-port", "0",
    "--hostname-override", NODE_NAME,
    "--file-check-frequency", "20s",
    ...(ctx.settings.profile ? ["-v", "5"] : []),
    // Experiments only (the figures use the defaults): more tskubelet flags.
    ...(process.env.TSK_BENCH_TSKUBELET_ARGS ?? "").split(" ").filter((a) => a !== ""),
  ];
  const proc = spawn(process.execPath, args, { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  child = proc;
  const pid = proc.pid;
  if (pid === undefined) throw new Error("could not start tskubelet");
  let result: RunResult | undefined;
  try {
    await waitForLog(logFile, "container runtime connected", proc, 30_000);
    await sleep(TSK_SETTLE_MS);

    // Write each manifest under a dot-name (ignored by the file source), then rename all at once.
    const names: string[] = [];
    const files: string[] = [];
    for (let i = 0; i < n; i++) {
      const tmp = join(manifests, `.bench-${i}.json`);
      await writeFile(tmp, JSON.stringify(manifest(i, namespace)));
      files.push(join(manifests, `bench-${i}.json`));
      names.push(`bench-${i}-${NODE_NAME}`);
    }
    await Promise.all(files.map((f, i) => rename(join(manifests, `.bench-${i}.json`), f)));
    const t0 = performance.now();
    const t0Wall = Date.now();
    const { seen, polls } = await waitRunning(ctx.poll, namespace, names, t0);
    result = summarize(n, names, seen, polls);
    if (n >= 30 || ctx.settings.counts.length === 1) {
      await sleep(RSS_STEADY_MS);
      const m = await readRss(pid);
      result.rssMiB = m.rss;
      result.hwmMiB = m.hwm;
    }
    if (ctx.settings.profile) result.extra = profileTskubelet(await readFile(logFile, "utf8"), t0Wall, result);

    // Clean up: the manifests go, tskubelet kills and removes the pods, then tskubelet is stopped.
    await Promise.all(files.map((f) => unlink(f)));
    await waitNoSandboxes(ctx.poll, namespace);
    return result;
  } catch (err) {
    const text = await readFile(logFile, "utf8").catch(() => "");
    console.error(`tskubelet run ${label} failed; tail of its log (${logFile}):\n${text.slice(-4000)}`);
    throw err;
  } finally {
    proc.kill("SIGTERM");
    if (!(await waitExit(proc, 10_000))) {
      proc.kill("SIGKILL");
      await waitExit(proc, 5_000);
    }
    child = undefined;
    await forceClean(ctx.poll, namespace);
    if (!ctx.settings.keep) await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// raw CRI

interface RawPod {
  pod: V1Pod;
  sandboxId?: string;
  containerId?: string;
  ms: { run: number; create: number; start: number };
}

async function runRaw(ctx: Ctx, n: number, label: string): Promise<RunResult> {
  const id = ++ctx.seq;
  const namespace = `bench-raw-${id}-n${n}`;
  const nodeName = "raw";
  const pods: RawPod[] = [];
  for (let i = 0; i < n; i++) {
    const file = join(ctx.workDir, `raw-${id}`, `bench-${i}.json`);
    pods.push({ pod: staticPod(JSON.stringify(manifest(i, namespace)), nodeName, file), ms: { run: 0, create: 0, start: 0 } });
  }
  const names = pods.map((p) => p.pod.metadata?.name ?? "");
  const rs = ctx.raw;
  try {
    const t0 = performance.now();
    const polling = waitRunning(ctx.poll, namespace, names, t0);
    const starting = Promise.all(
      pods.map(async (p) => {
        const pod = p.pod;
        const container = pod.spec?.containers[0];
        if (!container) throw new Error("benchmark pod without a container");
        const sbConfig = buildSandboxConfig(pod, { ...ctx.sandboxOpts, attempt: 0 });
        // The CRI runtime writes the container log into this directory: it must exist (tskubelet makes it too).
        if (sbConfig.logDirectory) await mkdir(sbConfig.logDirectory, { recursive: true, mode: 0o755 });
        let t = performance.now();
        p.sandboxId = await rs.runPodSandbox(sbConfig);
        p.ms.run = performance.now() - t;
        const config = buildContainerConfig(pod, container, { restartCount: 0, imageRef: ctx.imageRef, memoryCapacity: ctx.memoryCapacity, podIPs: [], hostIPs: ctx.hostIPs });
        t = performance.now();
        p.containerId = await rs.createContainer(p.sandboxId, config, sbConfig);
        p.ms.create = performance.now() - t;
        t = performance.now();
        await rs.startContainer(p.containerId);
        p.ms.start = performance.now() - t;
      }),
    );
    // A failed start would leave the poller waiting: race it.
    const [{ seen, polls }] = await Promise.all([polling, starting]);
    const result = summarize(n, names, seen, polls);
    const calls = (k: keyof RawPod["ms"]): string => `${k} p50 ${Math.round(median(pods.map((p) => p.ms[k])))} ms max ${Math.round(Math.max(...pods.map((p) => p.ms[k])))} ms`;
    result.extra = `raw CRI call latencies under this concurrency: ${calls("run")}; ${calls("create")}; ${calls("start")}`;
    return result;
  } catch (err) {
    console.error(`raw CRI run ${label} failed`);
    throw err;
  } finally {
    // Not measured: stop at once (no grace), remove, drop log dirs and pod cgroups as tskubelet does.
    await Promise.all(
      pods.map(async (p) => {
        if (p.containerId) await rs.stopContainer(p.containerId, 0).catch(() => undefined);
        if (p.sandboxId) {
          await rs.stopPodSandbox(p.sandboxId).catch(() => undefined);
          await rs.removePodSandbox(p.sandboxId).catch(() => undefined);
        }
        const dir = buildSandboxConfig(p.pod, { ...ctx.sandboxOpts, attempt: 0 }).logDirectory;
        if (dir) await rm(dir, { recursive: true, force: true });
        await removeCgroup(podCgroupParent(p.pod, ctx.sandboxOpts.cgroupRoot)).catch(() => undefined);
      }),
    );
    await forceClean(rs, namespace);
    await waitNoSandboxes(ctx.poll, namespace);
  }
}

// ---------------------------------------------------------------------------------------------
// profile (--profile): where tskubelet's time went, from its -v 5 log

interface LogLine {
  atMs: number;
  msg: string;
  fields: string;
}

function parseLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split("\n")) {
    const m = /^[IWE](\S+) ("(?:[^"\\]|\\.)*")(.*)$/.exec(line);
    if (!m) continue;
    const atMs = Date.parse(m[1] ?? "");
    let msg = "";
    try {
      msg = JSON.parse(m[2] ?? '""') as string;
    } catch {
      continue;
    }
    out.push({ atMs, msg, fields: m[3] ?? "" });
  }
  return out;
}

const field = (fields: string, key: string): string | undefined => new RegExp(`(?:^| )${key}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`).exec(fields)?.[1]?.replace(/^"|"$/g, "");

function profileTskubelet(text: string, t0Wall: number, res: RunResult): string {
  const lines = parseLog(text).filter((l) => l.atMs >= t0Wall - 5 && l.atMs <= t0Wall + res.total + 5);
  const ops = new Map<string, number[]>();
  for (const l of lines) {
    if (l.msg !== "CRI call") continue;
    const op = field(l.fields, "op") ?? "?";
    const ms = Number(field(l.fields, "ms") ?? "NaN");
    const list = ops.get(op) ?? [];
    list.push(ms);
    ops.set(op, list);
  }
  const rows = [...ops.entries()]
    .sort((a, b) => b[1].reduce((x, y) => x + y, 0) - a[1].reduce((x, y) => x + y, 0))
    .map(([op, ms]) => `    ${op.padEnd(22)} calls ${pad(ms.length, 4)}  p50 ${pad(Math.round(median(ms)), 5)} ms  max ${pad(Math.round(Math.max(...ms)), 5)} ms  sum ${pad(Math.round(ms.reduce((x, y) => x + y, 0)), 6)} ms`);
  // The first CRI call that only a pod worker makes, and the event timeline.
  const first = (pred: (l: LogLine) => boolean): string => {
    const l = lines.find(pred);
    return l ? `${Math.round(l.atMs - t0Wall)} ms` : "-";
  };
  const firstStart = (op: string): string => {
    let best = Infinity;
    for (const l of lines) {
      if (l.msg === "CRI call" && field(l.fields, "op") === op) best = Math.min(best, l.atMs - Number(field(l.fields, "ms") ?? "0"));
    }
    return Number.isFinite(best) ? `${Math.round(best - t0Wall)} ms` : "-";
  };
  const events = (reason: string): number[] => lines.filter((l) => l.msg === "event" && field(l.fields, "reason") === reason).map((l) => l.atMs - t0Wall);
  const ev = (reason: string): string => {
    const e = events(reason);
    return e.length ? `${reason} first ${Math.round(Math.min(...e))} / p50 ${Math.round(median(e))} / last ${Math.round(Math.max(...e))} ms` : `${reason} -`;
  };
  return [
    `  tskubelet profile (-v 5 log, wall clock ms after t0; log lines have 1 ms resolution):`,
    `    first run_podsandbox sent at ${firstStart("run_podsandbox")}, first image_status done ${first((l) => l.msg === "CRI call" && field(l.fields, "op") === "image_status")}`,
    `    events: ${ev("Pulled")}; ${ev("Created")}; ${ev("Started")}`,
    `    CRI calls completed between t0 and the last pod RUNNING:`,
    ...rows,
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// main

type Side = "tskubelet" | "raw_cri";

function describe(side: Side, label: string, r: RunResult): string {
  const rss = r.rssMiB !== undefined ? `  rss ${r1(r.rssMiB)} MiB (peak ${r1(r.hwmMiB ?? NaN)})` : "";
  return `${label} ${side.padEnd(9)} pods ${pad(r.pods, 3)}  p50 ${pad(Math.round(r.p50), 6)} ms  p99 ${pad(Math.round(r.p99), 6)} ms  total ${pad(Math.round(r.total), 6)} ms  polls ${pad(r.polls, 4)}  load ${load()}${rss}`;
}

type Runs = Map<string, RunResult[]>;
const runKey = (side: Side, n: number): string => `${side}/${n}`;

/** Medians across rounds per pod count, printed as a table; the RSS with 30 pods; whether the target is met. */
function summarizeRounds(counts: number[], runs: Runs): { results: object[]; rss: number | null; met: boolean | null } {
  const sideSummary = (list: RunResult[]): { p50_ms: number; p99_ms: number; total_ms: number; total_ms_rounds: number[] } => ({
    p50_ms: r1(median(list.map((r) => r.p50))),
    p99_ms: r1(median(list.map((r) => r.p99))),
    total_ms: r1(median(list.map((r) => r.total))),
    total_ms_rounds: list.map((r) => r1(r.total)),
  });
  const results = counts.map((n) => {
    const tsk = runs.get(runKey("tskubelet", n)) ?? [];
    const rw = runs.get(runKey("raw_cri", n)) ?? [];
    const ratio = median(tsk.map((r) => r.total)) / median(rw.map((r) => r.total));
    const perRound = tsk.map((r, i) => r3(r.total / (rw[i]?.total ?? NaN)));
    // ratio_total: median tskubelet total / median raw total. The per-round ratios pair runs made
    // seconds apart, so their median is less sensitive to load changing during the run.
    return { pods: n, tskubelet: sideSummary(tsk), raw_cri: sideSummary(rw), ratio_total: r3(ratio), ratio_total_rounds: perRound, ratio_total_rounds_median: r3(median(perRound)) };
  });
  const rssList = (runs.get(runKey("tskubelet", 30)) ?? []).map((r) => r.rssMiB ?? NaN).filter((x) => Number.isFinite(x));
  const rss = rssList.length > 0 ? r1(median(rssList)) : null;
  const r30 = results.find((r) => r.pods === 30);
  const met = r30 === undefined ? null : r30.ratio_total <= 1.25;

  console.log("");
  console.log("summary (median of rounds):");
  console.log("  pods | tskubelet p50 / p99 / total ms | raw CRI p50 / p99 / total ms | ratio total");
  for (const r of results) {
    const t = r.tskubelet;
    const w = r.raw_cri;
    console.log(
      `  ${pad(r.pods, 4)} | ${pad(t.p50_ms, 7)} / ${pad(t.p99_ms, 7)} / ${pad(t.total_ms, 7)} | ${pad(w.p50_ms, 7)} / ${pad(w.p99_ms, 7)} / ${pad(w.total_ms, 7)} | ${r.ratio_total} (rounds ${r.ratio_total_rounds.join(", ")}; their median ${r.ratio_total_rounds_median})`,
    );
  }
  if (rss !== null) console.log(`  tskubelet RSS with 30 pods running: ${rss} MiB (rounds: ${rssList.map(r1).join(", ")})`);
  console.log(`  target ratio_total(30) <= 1.25: ${r30 === undefined ? "not measured" : met ? "met" : "MISSED"}`);
  return { results, rss, met };
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("the benchmark needs root (a private containerd)");
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(sig, killChildNow);
  process.on("exit", killChildNow);

  console.log(`static-pod startup benchmark: pods ${settings.counts.join(",")}, ${settings.rounds} rounds${settings.profile ? ", profile" : ""}`);
  const loadStart = loadavg()[0] ?? NaN;
  const version = sourceVersion();
  const snapshot = await snapshotTskubelet("tskubelet");
  process.on("exit", () => rmSync(snapshot.dir, { recursive: true, force: true }));
  console.log(`tskubelet: ${version ? `commit ${version.commit}${version.src_dirty ? " with uncommitted src/ changes" : ""}` : "not a git tree"}; running a copy of dist/src in ${snapshot.dir}`);
  const rt = await startContainerd({ cni: true });
  const workDir = await mkdtemp("/tmp/tskubelet-bench-");
  const poll = createRuntimeService(rt.endpoint, { timeoutMs: CRI_TIMEOUT_MS });
  const raw = createRuntimeService(rt.endpoint, { timeoutMs: CRI_TIMEOUT_MS });
  const images = createImageService(rt.endpoint, { timeoutMs: CRI_TIMEOUT_MS });
  try {
    const machine = await machineInfo(poll);
    console.log(`machine: ${machine.cpu_model}, ${machine.cores} cores, ${machine.memory_gib} GiB, kernel ${machine.kernel}, containerd ${machine.containerd_version}, node ${machine.node}`);
    console.log(`containerd: ${rt.endpoint} (CNI bridge ${rt.bridge}, ${rt.subnet})`);
    const img = await images.imageStatus({ image: TEST_IMAGES.busybox });
    if (!img) throw new Error(`${TEST_IMAGES.busybox} is not in the private containerd`);
    const ctx: Ctx = {
      settings,
      mainJs: snapshot.mainJs,
      rt,
      poll,
      raw,
      workDir,
      imageRef: img.id,
      // What tskubelet's defaults give (no cluster DNS, cgroups per QoS under the root).
      sandboxOpts: {
        podLogsDir: join(workDir, "raw-pod-logs"),
        resolvConf: await readFile("/etc/resolv.conf", "utf8").catch(() => ""),
        clusterDNS: [],
        clusterDomain: "",
        cgroupsPerQOS: true,
        cgroupRoot: "",
      },
      hostIPs: await detectNodeIPs(""),
      memoryCapacity: totalmem(),
      seq: 0,
    };

    // Warm-up: image unpacked into snapshots, CNI bridge created, shims and node code warm.
    const warmN = Math.max(...settings.counts);
    const w1 = await runRaw(ctx, warmN, "warm-up");
    await sleep(BETWEEN_RUNS_MS);
    const w2 = await runTskubelet(ctx, warmN, "warm-up");
    await sleep(BETWEEN_RUNS_MS);
    console.log(`warm-up (not counted): raw_cri ${warmN} pods total ${Math.round(w1.total)} ms, tskubelet ${Math.round(w2.total)} ms`);

    const runs: Runs = new Map();
    for (let round = 1; round <= settings.rounds; round++) {
      for (const n of settings.counts) {
        const order: Side[] = round % 2 === 1 ? ["tskubelet", "raw_cri"] : ["raw_cri", "tskubelet"];
        for (const side of order) {
          const label = `round ${round}`;
          const r = side === "tskubelet" ? await runTskubelet(ctx, n, label) : await runRaw(ctx, n, label);
          console.log(describe(side, label, r));
          if (r.extra) console.log(r.extra.startsWith("  ") ? r.extra : `  ${r.extra}`);
          const list = runs.get(runKey(side, n)) ?? [];
          list.push(r);
          runs.set(runKey(side, n), list);
          await sleep(BETWEEN_RUNS_MS);
        }
      }
    }

    const { results, rss, met } = summarizeRounds(settings.counts, runs);
    const out = {
      benchmark: "static-pod-startup",
      date: new Date().toISOString(),
      machine,
      tskubelet_source: version,
      rounds: settings.rounds,
      load_avg_1m: { start: r1(loadStart), end: r1(loadavg()[0] ?? NaN) },
      results,
      tskubelet_rss_mib_30_pods: rss,
      target: "ratio_total(30) <= 1.25",
      met,
    };
    console.log(JSON.stringify(out));
  } finally {
    killChildNow();
    poll.close();
    raw.close();
    images.close();
    await rt.stop();
    await rm(snapshot.dir, { recursive: true, force: true });
    if (!settings.keep) await rm(workDir, { recursive: true, force: true });
    else console.error(`kept ${workDir}`);
  }
}

main().catch((err: unknown) => {
  console.error(`static-pods benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
