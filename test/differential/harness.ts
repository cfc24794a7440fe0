/**
 * Runs the rows of the differential suite on both kubelets, side by side: one real control plane,
 * one private containerd and one private cgroup root per kubelet, each kubelet its own node and
 * namespace. Every row is a pod pinned to the node (spec.nodeName); a watch on the namespace
 * records the pod's normalized statuses until the row's condition holds, its hold time passes, it
 * is gone after a deletion, or its timeout passes.
 */
import type { ChildProcess } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createRuntimeService } from "../../src/cri/index.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { repoRoot, startContainerd, type PrivateContainerd } from "../support/containerd.js";
import {
  Api,
  errText,
  forceClean,
  makeCgroupRoot,
  nodeReady,
  readKubeconfig,
  removeCgroupRoot,
  removeLogLinks,
  removeNewChains,
  restoreHostFiles,
  saveHostState,
  sleep,
  startNodeKubelet,
  unmountUnder,
  waitExit,
  waitUntil,
  type Kind,
  type WatchEvent,
} from "../support/kubelets.js";
import { collapse, DELETED, normalize, render, type PodLike } from "./normalize.js";
import { ROW_TIMEOUT_MS, type Row } from "./rows.js";

export interface SideResult {
  /** Rendered normalized statuses, consecutive duplicates collapsed; DELETED last when the pod went. */
  states: string[];
  /** How observation ended. */
  end: "reached" | "held" | "gone" | "timeout" | "error";
  /** Details of a timeout or an error. */
  note: string;
}

export interface SuiteResult {
  upstream: Map<string, SideResult>;
  tskubelet: Map<string, SideResult>;
  upstreamVersion: string;
  /** Where the kubelets' logs were copied. */
  logs: Record<Kind, string>;
}

const NODE_READY_TIMEOUT_MS = 120_000;
const LABELS = { suite: "differential" };

interface Env {
  cluster: TestCluster;
  api: Api;
  workDir: string;
  artifacts: string;
}

interface Tracked {
  row: Row;
  created: number;
  firstStatus: number | undefined;
  seq: string[];
  phase: "observing" | "deleting" | "done";
  result: SideResult | undefined;
}

function hasKubeletStatus(p: PodLike): boolean {
  return (p.status?.conditions?.length ?? 0) > 0 || (p.status?.containerStatuses?.length ?? 0) > 0;
}

function finish(t: Tracked, end: SideResult["end"], note = ""): void {
  if (t.phase === "done") return;
  t.phase = "done";
  t.result = { states: collapse(t.seq), end, note };
}

const isOpen = (t: Tracked): boolean => t.phase !== "done";

/** Until every row is done: hold times, timeouts and failures are checked here, the rest by the watch. */
async function waitRows(tracked: Map<string, Tracked>, failure: () => string | undefined): Promise<void> {
  for (;;) {
    const now = performance.now();
    let open = 0;
    for (const t of tracked.values()) {
      if (!isOpen(t)) continue;
      const failed = failure();
      if (failed !== undefined) finish(t, "error", failed);
      else if (t.row.holdMs !== undefined && t.firstStatus !== undefined && now - t.firstStatus >= t.row.holdMs) finish(t, "held");
      else if (now - t.created > (t.row.timeoutMs ?? ROW_TIMEOUT_MS)) finish(t, "timeout", `${t.phase === "deleting" ? "not gone" : "condition not reached"} after ${Math.round((now - t.created) / 1000)} s`);
      if (isOpen(t)) open++;
    }
    if (open === 0) return;
    await sleep(250);
  }
}

/** One kubelet: its node, namespace and pods; resolves with every row's observation. */
async function runSide(env: Env, kind: Kind, rows: Row[], rt: PrivateContainerd): Promise<Map<string, SideResult>> {
  const { cluster, api } = env;
  const tag = kind === "tskubelet" ? "tsk" : "up";
  const node = `diff-${tag}-${process.pid}`;
  const namespace = `diff-${tag}-${process.pid}`;
  const dir = join(env.workDir, kind);
  const cgroupRoot = `tskdiff-${process.pid}-${tag}`;
  const logFile = join(dir, `${kind}.log`);
  const cri = createRuntimeService(rt.endpoint, { timeoutMs: 60_000 });
  let proc: ChildProcess | undefined;
  let watch: { close(): void } | undefined;
  let watchClosed = false;
  const tracked = new Map<string, Tracked>();
  // Nothing below throws out of this function: a failure ends every row of this side as an error.
  try {
    await mkdir(dir, { recursive: true });
    await makeCgroupRoot(cgroupRoot);
    const kubeconfig = await cluster.nodeKubeconfig(node);
    await api.ok("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    proc = await startNodeKubelet({
      kind,
      node,
      kubeconfig,
      dir,
      logFile,
      endpoint: rt.endpoint,
      cgroupRoot,
      caCert: cluster.caCert,
      mainJs: join(repoRoot(), "dist/src/cli/main.js"),
      verbosity: 2,
    });
    const p = proc;
    const alive = (): void => {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`${kind} exited (${p.exitCode ?? p.signalCode ?? "?"}); its log: ${logFile}`);
    };
    await waitUntil({ what: `node ${node} Ready`, timeoutMs: NODE_READY_TIMEOUT_MS, check: alive, intervalMs: 250 }, async () => {
      const r = await api.request("GET", `/api/v1/nodes/${node}`);
      return r.status === 200 && nodeReady(r.body) ? true : undefined;
    });
    // Pods get a projected service-account token: the namespace needs its ServiceAccount and root CA.
    await waitUntil({ what: `ServiceAccount and kube-root-ca.crt in ${namespace}`, timeoutMs: 60_000, check: alive, intervalMs: 250 }, async () => {
      const [sa, cm] = await Promise.all([api.request("GET", `/api/v1/namespaces/${namespace}/serviceaccounts/default`), api.request("GET", `/api/v1/namespaces/${namespace}/configmaps/kube-root-ca.crt`)]);
      return sa.status === 200 && cm.status === 200 ? true : undefined;
    });

    const list = (await api.ok("GET", `/api/v1/namespaces/${namespace}/pods`)) as { metadata?: { resourceVersion?: string } };
    let lastRv = list.metadata?.resourceVersion ?? "0";
    let watchErr: Error | undefined;
    let reconnects = 0;

    const onEvent = (e: WatchEvent<PodLike>, at: number): void => {
      if (e.type === "ERROR") {
        // 410 Gone and the like: resume from the last resourceVersion seen.
        return;
      }
      if (e.object.metadata?.resourceVersion) lastRv = e.object.metadata.resourceVersion;
      if (e.type === "BOOKMARK") return;
      const t = tracked.get(e.object.metadata?.name ?? "");
      if (!t || t.phase === "done") return;
      if (e.type === "DELETED") {
        t.seq.push(DELETED);
        finish(t, t.phase === "deleting" ? "gone" : "error", t.phase === "deleting" ? "" : "deleted while observed");
        return;
      }
      if (t.firstStatus === undefined && hasKubeletStatus(e.object)) t.firstStatus = at;
      const norm = normalize(e.object);
      t.seq.push(render(norm));
      if (t.phase === "observing" && t.row.until?.(norm) === true) {
        if (t.row.thenDelete === true) {
          t.phase = "deleting";
          api.ok("DELETE", `/api/v1/namespaces/${namespace}/pods/${t.row.id}`, undefined, [200, 202]).catch((err: unknown) => finish(t, "error", `delete: ${errText(err)}`));
        } else finish(t, "reached");
      }
    };
    const openWatch = (): void => {
      watch = api.watch<PodLike>(`/api/v1/namespaces/${namespace}/pods?watch=1&allowWatchBookmarks=true&resourceVersion=${lastRv}`, onEvent, (err) => {
        if (watchClosed) return;
        if (++reconnects > 20) {
          watchErr = err instanceof Error ? err : new Error(`watch ended: ${String(err)}`);
          return;
        }
        setTimeout(() => {
          if (!watchClosed) openWatch();
        }, 200);
      });
    };
    openWatch();
    await sleep(300);

    for (const row of rows) tracked.set(row.id, { row, created: performance.now(), firstStatus: undefined, seq: [], phase: "observing", result: undefined });
    await Promise.all(
      rows.map(async (row) => {
        const t = tracked.get(row.id);
        if (!t) return;
        const body = { apiVersion: "v1", kind: "Pod", metadata: { name: row.id, namespace, labels: LABELS }, spec: { ...row.spec, nodeName: node } };
        try {
          await api.ok("POST", `/api/v1/namespaces/${namespace}/pods`, body, [201]);
          t.created = performance.now();
        } catch (err) {
          finish(t, "error", `create: ${errText(err)}`);
        }
      }),
    );

    await waitRows(tracked, () => (watchErr ? `watch: ${watchErr.message}` : p.exitCode !== null || p.signalCode !== null ? `${kind} exited (${p.exitCode ?? p.signalCode ?? "?"})` : undefined));
  } catch (err) {
    for (const t of tracked.values()) if (t.phase !== "done") t.result = { states: collapse(t.seq), end: "error", note: errText(err).split("\n")[0] ?? "" };
    for (const row of rows) if (!tracked.has(row.id)) tracked.set(row.id, { row, created: 0, firstStatus: undefined, seq: [], phase: "done", result: { states: [], end: "error", note: errText(err).split("\n")[0] ?? "" } });
  } finally {
    watchClosed = true;
    watch?.close();
    if (proc) {
      proc.kill("SIGTERM");
      if (!(await waitExit(proc, 15_000))) {
        proc.kill("SIGKILL");
        await waitExit(proc, 5_000);
      }
    }
    await copyFile(logFile, join(env.artifacts, `differential-${kind}.log`)).catch(() => undefined);
    await api.request("DELETE", `/api/v1/namespaces/${namespace}`).catch(() => undefined);
    await api.request("DELETE", `/api/v1/nodes/${node}`).catch(() => undefined);
    await forceClean(cri, namespace).catch(() => undefined);
    cri.close();
    unmountUnder(dir);
    removeLogLinks(env.workDir);
    removeCgroupRoot(cgroupRoot);
  }
  const out = new Map<string, SideResult>();
  for (const row of rows) out.set(row.id, tracked.get(row.id)?.result ?? { states: [], end: "error", note: "not run" });
  return out;
}

/**
 * The whole suite: control plane and two containerds up, both kubelets run every row side by
 * side, everything torn down (host state the upstream kubelet changed restored).
 */
export async function runSuite(rows: Row[], upstreamVersion: string): Promise<SuiteResult> {
  const artifacts = join(repoRoot(), "test-artifacts");
  await mkdir(artifacts, { recursive: true });
  const host = saveHostState();
  const workDir = await mkdtemp("/tmp/tskubelet-diff-");
  const started = await Promise.allSettled([startCluster(), startContainerd({ cni: true }), startContainerd({ cni: true })]);
  const [c, a, b] = started;
  try {
    if (c.status === "rejected") throw c.reason;
    if (a.status === "rejected") throw a.reason;
    if (b.status === "rejected") throw b.reason;
    const env: Env = { cluster: c.value, api: new Api(readKubeconfig(c.value.adminKubeconfig)), workDir, artifacts };
    try {
      const [upstream, tskubelet] = await Promise.all([runSide(env, "upstream", rows, a.value), runSide(env, "tskubelet", rows, b.value)]);
      return { upstream, tskubelet, upstreamVersion, logs: { upstream: join(artifacts, "differential-upstream.log"), tskubelet: join(artifacts, "differential-tskubelet.log") } };
    } finally {
      env.api.close();
    }
  } finally {
    await Promise.all([c, a, b].map((s) => (s.status === "fulfilled" ? s.value.stop().catch(() => undefined) : Promise.resolve())));
    removeNewChains(host.chains);
    restoreHostFiles(host, workDir);
    await rm(workDir, { recursive: true, force: true });
  }
}
