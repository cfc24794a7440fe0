/**
 * Runs the real `tskubelet` command (dist/src/cli/main.js) as a child process against a private
 * containerd, with its own manifest and log directories, for integration tests.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile, unlink } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod, V1PodList } from "@kubernetes/client-node";
import { repoRoot, startContainerd, type PrivateContainerd } from "./containerd.js";

export interface TskubeletProcess {
  pid: number;
  dir: string;
  manifests: string;
  logsDir: string;
  readOnlyPort: number;
  healthzPort: number;
  /** The kubelet API (HTTPS) port: a free one unless extraArgs gave --port. */
  port: number;
  /** --cert-dir: <dir>/pki unless extraArgs gave one. */
  certDir: string;
  nodeName: string;
  /** Everything the process wrote to stderr so far. */
  output(): string;
  writeManifest(file: string, text: string): Promise<void>;
  removeManifest(file: string): Promise<void>;
  pods(): Promise<V1Pod[]>;
  pod(name: string): Promise<V1Pod | undefined>;
  healthz(): Promise<{ status: number; body: string }>;
  /** SIGTERM and wait for exit (pods keep running). */
  stop(): Promise<void>;
  /** Starts the same kubelet again (same dirs and ports) after stop(). */
  restart(): Promise<void>;
  /** Stops the process and removes its directories (not its pods: the test's containerd.stop() does that). */
  cleanup(): Promise<void>;
}

/** A private containerd with a CNI bridge and a tskubelet on it (a test file's node). */
export interface TestNode {
  rt: PrivateContainerd;
  k: TskubeletProcess;
}

/** Starts a TestNode; stop it with stopNode. */
export async function startNode(opts: Parameters<typeof startTskubelet>[1] = {}): Promise<TestNode> {
  const rt = await startContainerd({ cni: true });
  try {
    return { rt, k: await startTskubelet(rt, opts) };
  } catch (err) {
    await rt.stop();
    throw err;
  }
}

/** Stops what startNode started (tolerates a node that never started). */
export async function stopNode(n: Partial<TestNode>): Promise<void> {
  await n.k?.cleanup();
  await n.rt?.stop();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function startTskubelet(rt: PrivateContainerd, opts: { extraArgs?: string[]; nodeName?: string } = {}): Promise<TskubeletProcess> {
  const dir = await mkdtemp(join(tmpdir(), "tskubelet-proc-"));
  const manifests = join(dir, "manifests");
  const logsDir = join(dir, "logs");
  await import("node:fs/promises").then((fs) => Promise.all([fs.mkdir(manifests), fs.mkdir(logsDir)]));
  const readOnlyPort = await freePort();
  const healthzPort = await freePort();
  // Never the shared default 10250: tests run side by side on one machine.
  const portArg = opts.extraArgs?.find((a) => a.startsWith("--port="));
  const port = portArg !== undefined ? Number(portArg.slice("--port=".length)) : await freePort();
  const certDirArg = opts.extraArgs?.find((a) => a.startsWith("--cert-dir="));
  const certDir = certDirArg !== undefined ? certDirArg.slice("--cert-dir=".length) : join(dir, "pki");
  const nodeName = opts.nodeName ?? "it-node";
  let child: ChildProcess | undefined;
  let out = "";

  const launch = async (): Promise<void> => {
    const args = [
      join(repoRoot(), "dist/src/cli/main.js"),
      `--container-runtime-endpoint=${rt.endpoint}`,
      `--pod-manifest-path=${manifests}`,
      `--pod-logs-dir=${logsDir}`,
      `--root-dir=${dir}`,
      `--read-only-port=${readOnlyPort}`,
      `--healthz-port=${healthzPort}`,
      "--cadvisor-port=0",
      ...(portArg === undefined ? [`--port=${port}`] : []),
      `--hostname-override=${nodeName}`,
      "--file-check-frequency=20s",
      "-v=2",
      ...(opts.extraArgs ?? []),
    ];
    const c = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    child = c;
    stopping = false;
    c.stderr?.setEncoding("utf8");
    c.stderr?.on("data", (d: string) => {
      out += d;
    });
    await waitFor(async () => {
      if (c.exitCode !== null) throw new FatalWait(`tskubelet exited with ${c.exitCode}:\n${out}`);
      return (await fetchText(`http://127.0.0.1:${healthzPort}/healthz`).catch(() => undefined)) !== undefined;
    }, {
      timeoutMs: 20_000,
      what: () => `tskubelet to listen on ${healthzPort}; output:\n${out}`,
    });
    if (port > 0 && !(opts.extraArgs ?? []).includes("--enable-server=false")) {
      await waitFor(async () => {
        if (c.exitCode !== null) throw new FatalWait(`tskubelet exited with ${c.exitCode}:\n${out}`);
        return tcpAccepts(port);
      }, { timeoutMs: 20_000, what: () => `tskubelet's API to listen on ${port}; output:\n${out}` });
    }
  };

  let stopping = false;
  const stop = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    stopping = true;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGTERM");
    await Promise.race([exited, sleep(10_000).then(() => c.kill("SIGKILL"))]);
    await exited;
  };

  await launch();
  /** A dead child fails every wait at once, with its exit status and the tail of its output. */
  const assertAlive = (): void => {
    const c = child;
    if (c && c.exitCode === null && c.signalCode === null) return;
    if (c && (c.exitCode !== null || c.signalCode !== null) && !stopping) {
      throw new FatalWait(`tskubelet (pid ${c.pid ?? "?"}) died: exit ${c.exitCode ?? "-"} signal ${c.signalCode ?? "-"}; last output:\n${out.slice(-6000)}`);
    }
  };
  const pods = async (): Promise<V1Pod[]> => {
    assertAlive();
    const list = JSON.parse(await fetchText(`http://127.0.0.1:${readOnlyPort}/pods`)) as V1PodList;
    return list.items;
  };
  return {
    get pid() {
      return child?.pid ?? 0;
    },
    dir,
    manifests,
    logsDir,
    readOnlyPort,
    healthzPort,
    port,
    certDir,
    nodeName,
    output: () => out,
    writeManifest: (file, text) => writeFile(join(manifests, file), text),
    removeManifest: (file) => unlink(join(manifests, file)),
    pods,
    pod: async (name) => (await pods()).find((p) => p.metadata?.name === `${name}-${nodeName}`),
    healthz: async () => {
      const res = await fetch(`http://127.0.0.1:${healthzPort}/healthz`);
      return { status: res.status, body: await res.text() };
    },
    stop,
    restart: launch,
    cleanup: async () => {
      await stop();
      if (process.env.TSK_TEST_DEBUG) process.stderr.write(`--- tskubelet output (${dir}) ---\n${out}\n`);
      await unmountUnder(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Detaches (umount -l) every mount below `dir`: the tmpfs of memory-backed volumes of pods that
 * still run (pods outlive the kubelet), so the directory can be removed.
 */
export async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  const points = info
    .split("\n")
    .map((l) => (l.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    try {
      execFileSync("umount", ["-l", p], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function fetchText(url: string, timeoutMs = 5_000): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return res.text();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Thrown inside a waitFor condition to stop waiting at once. */
export class FatalWait extends Error {}

/** Polls until `cond` is truthy; fails naming what it waited for. */
export async function waitFor<T>(cond: () => Promise<T | undefined | false> | T | undefined | false, opts: { timeoutMs: number; intervalMs?: number; what: () => string }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      if (err instanceof FatalWait) throw err;
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what()}${lastErr ? ` (last error: ${lastErr instanceof Error ? lastErr.message : JSON.stringify(lastErr)})` : ""}`);
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/** A one-container busybox pod manifest. */
export function podManifest(name: string, opts: { command: string[]; restartPolicy?: string; hostNetwork?: boolean; grace?: number; ports?: number[]; extra?: string } ): string {
  const lines = [
    "apiVersion: v1",
    "kind: Pod",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    `  restartPolicy: ${opts.restartPolicy ?? "Always"}`,
    `  terminationGracePeriodSeconds: ${opts.grace ?? 2}`,
    ...(opts.hostNetwork ? ["  hostNetwork: true"] : []),
    "  containers:",
    "  - name: main",
    "    image: tskubelet.local/busybox:1.35",
    `    command: ${JSON.stringify(opts.command)}`,
    ...(opts.ports?.length ? ["    ports:", ...opts.ports.map((p) => `    - containerPort: ${p}`)] : []),
  ];
  return lines.join("\n") + "\n" + (opts.extra ?? "");
}
