/**
 * Kubelets as nodes of the test control plane (test/cluster): tskubelet or the upstream kubelet
 * (the `kubelet` sub-command of test/cluster/bin/kube-test-plane), each started with a node
 * kubeconfig on a private containerd and a private cgroup root; an HTTP/2 client of the apiserver
 * (requests and watches); and the host state the upstream kubelet touches (sysctls, iptables
 * chains, /var/log/containers links, mounts, cgroups), saved and restored.
 *
 * Shared by the benchmarks of bench/ and test/differential/.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, unlinkSync, writeFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { connect as h2connect, type ClientHttp2Session } from "node:http2";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parse as parseYaml } from "yaml";
import type { CriRuntimeService } from "../../src/cri/index.js";
import { LABEL_POD_NAMESPACE } from "../../src/api/labels.js";
import { repoRoot } from "./containerd.js";
import { freePort } from "./tskubelet.js";

/** The upstream kubelet: the multi-call control-plane binary's `kubelet` sub-command. */

export const KTP_BIN = join(repoRoot(), "test/cluster/bin/kube-test-plane");

export const CLUSTER_DNS = "10.96.0.10";

export const CLUSTER_DOMAIN = "cluster.local";

/** Kernel settings the upstream kubelet changes at start (protectKernelDefaults false); restored after each of its runs. */
const SYSCTLS = ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"];

/** iptables chains the upstream kubelet creates; removed at the end unless they were there before. */
const KUBELET_CHAINS: { table: string; chain: string }[] = [
  { table: "filter", chain: "KUBE-FIREWALL" },
  { table: "filter", chain: "KUBE-KUBELET-CANARY" },
  { table: "nat", chain: "KUBE-KUBELET-CANARY" },
  { table: "mangle", chain: "KUBE-KUBELET-CANARY" },
  { table: "mangle", chain: "KUBE-IPTABLES-HINT" },
];

export type Kind = "tskubelet" | "upstream";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function errText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

// ---------------------------------------------------------------------------------------------
// the apiserver, as admin, over one HTTP/2 connection (no per-request TLS handshakes)

export interface Kubeconfig {
  server: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export function readKubeconfig(path: string): Kubeconfig {
  const doc = parseYaml(readFileSync(path, "utf8")) as {
    clusters: { cluster: { server: string; "certificate-authority-data"?: string; "certificate-authority"?: string } }[];
    users: { user: { "client-certificate-data"?: string; "client-key-data"?: string; "client-certificate"?: string; "client-key"?: string } }[];
  };
  const c = doc.clusters[0]?.cluster;
  const u = doc.users[0]?.user;
  if (!c || !u) throw new Error(`${path}: no cluster or user`);
  const data = (inline: string | undefined, file: string | undefined): Buffer => {
    if (inline) return Buffer.from(inline, "base64");
    if (file) return readFileSync(file);
    throw new Error(`${path}: missing credential data`);
  };
  return { server: c.server, ca: data(c["certificate-authority-data"], c["certificate-authority"]), cert: data(u["client-certificate-data"], u["client-certificate"]), key: data(u["client-key-data"], u["client-key"]) };
}

export interface ApiResponse {
  status: number;
  body: unknown;
  text: string;
}

export interface WatchEvent<T> {
  type: string;
  object: T;
}

export class Api {
  private session: ClientHttp2Session | undefined;
  constructor(private readonly kc: Kubeconfig) {}

  private conn(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const s = h2connect(this.kc.server, { ca: this.kc.ca, cert: this.kc.cert, key: this.kc.key });
    s.on("error", () => undefined);
    s.on("goaway", () => undefined);
    this.session = s;
    return s;
  }

  request(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ":method": method, ":path": path, accept: "application/json" };
      if (body !== undefined) headers["content-type"] = contentType;
      const req = this.conn().request(headers);
      let status = 0;
      let text = "";
      req.setEncoding("utf8");
      req.setTimeout(60_000, () => req.close());
      req.on("response", (h) => (status = Number(h[":status"] ?? 0)));
      req.on("data", (d: string) => (text += d));
      req.on("error", reject);
      req.on("end", () => {
        let parsed: unknown;
        try {
          parsed = text === "" ? undefined : JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        resolve({ status, body: parsed, text });
      });
      if (body !== undefined) req.end(JSON.stringify(body));
      else req.end();
    });
  }

  async ok(method: string, path: string, body?: unknown, want: number[] = [200, 201, 202]): Promise<unknown> {
    const r = await this.request(method, path, body);
    if (!want.includes(r.status)) throw new Error(`${method} ${path}: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
    return r.body;
  }

  /** A watch stream; `onEvent` gets every event with the time it arrived. */
  watch<T>(path: string, onEvent: (e: WatchEvent<T>, at: number) => void, onEnd: (err?: unknown) => void): { close(): void } {
    const req = this.conn().request({ ":method": "GET", ":path": path, accept: "application/json" });
    let buf = "";
    let closed = false;
    req.setEncoding("utf8");
    req.on("response", (h) => {
      const st = Number(h[":status"] ?? 0);
      if (st !== 200) onEnd(new Error(`watch ${path}: HTTP ${st}`));
    });
    req.on("data", (d: string) => {
      const at = performance.now();
      buf += d;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === "") continue;
        try {
          onEvent(JSON.parse(line) as WatchEvent<T>, at);
        } catch {
          // not an event
        }
      }
    });
    req.on("error", (err) => {
      if (!closed) onEnd(err);
    });
    req.on("end", () => {
      if (!closed) onEnd(new Error(`watch ${path} ended`));
    });
    req.end();
    return {
      close() {
        closed = true;
        req.close();
      },
    };
  }

  close(): void {
    this.session?.close();
  }
}

export function waitExit(proc: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    proc.once("exit", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// host state the upstream kubelet touches: sysctls, iptables chains, /var/log/containers, cgroups

export function saveSysctls(): Map<string, string> {
  const m = new Map<string, string>();
  for (const k of SYSCTLS) {
    try {
      m.set(k, readFileSync(`/proc/sys/${k}`, "utf8").trim());
    } catch {
      // not on this kernel
    }
  }
  return m;
}

export function restoreSysctls(saved: Map<string, string>): string[] {
  const changed: string[] = [];
  for (const [k, v] of saved) {
    try {
      const now = readFileSync(`/proc/sys/${k}`, "utf8").trim();
      if (now !== v) {
        writeFileSync(`/proc/sys/${k}`, v);
        changed.push(`${k.replace(/\//g, ".")} ${now} -> ${v}`);
      }
    } catch {
      // ignore
    }
  }
  return changed;
}

function chainExists(bin: string, table: string, chain: string): boolean {
  const r = spawnSync(bin, ["-w", "5", "-t", table, "-S", chain], { stdio: "ignore" });
  return r.status === 0;
}

export function existingChains(): Set<string> {
  const s = new Set<string>();
  for (const bin of ["iptables", "ip6tables"]) for (const { table, chain } of KUBELET_CHAINS) if (chainExists(bin, table, chain)) s.add(`${bin}/${table}/${chain}`);
  return s;
}

/** Removes the kubelet's chains that were not there before the benchmark. */
export function removeNewChains(before: Set<string>): string[] {
  const removed: string[] = [];
  for (const bin of ["iptables", "ip6tables"]) {
    for (const { table, chain } of KUBELET_CHAINS) {
      const key = `${bin}/${table}/${chain}`;
      if (before.has(key) || !chainExists(bin, table, chain)) continue;
      if (chain === "KUBE-FIREWALL") {
        for (const parent of ["INPUT", "OUTPUT"]) while (spawnSync(bin, ["-w", "5", "-t", table, "-D", parent, "-j", chain], { stdio: "ignore" }).status === 0);
      }
      spawnSync(bin, ["-w", "5", "-t", table, "-F", chain], { stdio: "ignore" });
      if (spawnSync(bin, ["-w", "5", "-t", table, "-X", chain], { stdio: "ignore" }).status === 0) removed.push(key);
    }
  }
  return removed;
}

export const CONTAINER_LOGS = "/var/log/containers";

/** Removes the /var/log/containers symlinks that point into `prefix` (the upstream kubelet makes them). */
export function removeLogLinks(prefix: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(CONTAINER_LOGS);
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(CONTAINER_LOGS, n);
    try {
      if (readlinkSync(p).startsWith(prefix)) unlinkSync(p);
    } catch {
      // not a link
    }
  }
}

/** Mount points at or under `dir`, deepest first (the kubelet's root bind mount, token tmpfs). */
function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mp = line.split(" ")[4];
    if (!mp) continue;
    const path = mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (path === dir || path.startsWith(`${dir}/`)) out.push(path);
  }
  return out.sort((a, b) => b.length - a.length);
}

export function unmountUnder(dir: string): void {
  for (let pass = 0; pass < 3; pass++) {
    const list = mountsUnder(dir);
    if (list.length === 0) return;
    for (const mp of list) if (spawnSync("umount", [mp], { stdio: "ignore" }).status !== 0) spawnSync("umount", ["-l", mp], { stdio: "ignore" });
  }
}

/** Cgroup mount points (v1 hierarchies and the v2 one). */
function cgroupMounts(): string[] {
  const out: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const parts = line.split(" ");
    const sep = parts.indexOf("-");
    const fstype = sep >= 0 ? parts[sep + 1] : undefined;
    if ((fstype === "cgroup" || fstype === "cgroup2") && parts[4]) out.push(parts[4]);
  }
  return out;
}

/**
 * The cgroup root both kubelets get (--cgroup-root / cgroupRoot): a private one, so neither
 * kubelet's pod cgroup cleanup can touch the /kubepods of other kubelets on this shared machine
 * (the upstream kubelet kills the processes of pod cgroups it does not know). The upstream kubelet
 * refuses a cgroup root that does not exist, so it is made in every hierarchy.
 */
export async function makeCgroupRoot(name: string): Promise<void> {
  for (const mp of cgroupMounts()) {
    const dir = join(mp, name);
    await mkdir(dir, { recursive: true });
    if (existsSync(join(mp, "cpuset.cpus")) && existsSync(join(dir, "cpuset.cpus"))) {
      for (const f of ["cpuset.cpus", "cpuset.mems"]) {
        if ((await readFile(join(dir, f), "utf8")).trim() === "") await writeFile(join(dir, f), await readFile(join(mp, f), "utf8"));
      }
    }
  }
}

export function removeCgroupRoot(name: string): void {
  spawnSync("bash", [join(repoRoot(), "hack/containerd.sh"), "clean-cgroups", name], { stdio: "ignore", timeout: 60_000 });
}

/** The host state a run of the upstream kubelet changes, as it was before: see restoreHostFiles and removeNewChains. */
export interface HostState {
  sysctls: Map<string, string>;
  chains: Set<string>;
  logDirExisted: boolean;
}

export function saveHostState(): HostState {
  return { sysctls: saveSysctls(), chains: existingChains(), logDirExisted: existsSync(CONTAINER_LOGS) };
}

/**
 * Restores the saved sysctls and removes the /var/log/containers links into `workDir`, and the
 * directory itself when it was not there before (the iptables chains: removeNewChains).
 */
export function restoreHostFiles(saved: HostState, workDir: string): void {
  restoreSysctls(saved.sysctls);
  removeLogLinks(workDir);
  if (!saved.logDirExisted) {
    try {
      rmdirSync(CONTAINER_LOGS);
    } catch {
      // not empty (someone else's links) or gone
    }
  }
}

// ---------------------------------------------------------------------------------------------
// waiting, starting a kubelet as a node

export interface WaitOptions {
  what: string;
  timeoutMs: number;
  /** Runs before every attempt; throws to stop waiting at once. */
  check?: () => void;
  intervalMs?: number;
}

export async function waitUntil<T>(o: WaitOptions, fn: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const { what, timeoutMs, check, intervalMs = 100 } = o;
  const start = performance.now();
  let last: unknown;
  for (;;) {
    check?.();
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${errText(last)}` : ""}`);
    await sleep(intervalMs);
  }
}

export function nodeReady(body: unknown): boolean {
  const n = body as { status?: { conditions?: { type: string; status: string }[] } };
  return n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

export async function forceClean(rs: CriRuntimeService, namespace: string): Promise<void> {
  const sandboxes = await rs.listPodSandbox({ labelSelector: { [LABEL_POD_NAMESPACE]: namespace } }).catch(() => []);
  await Promise.all(
    sandboxes.map(async (sb) => {
      await rs.stopPodSandbox(sb.id).catch(() => undefined);
      await rs.removePodSandbox(sb.id).catch(() => undefined);
    }),
  );
}

/** Where and how one kubelet runs as a node of the test control plane. */
export interface NodeKubeletOptions {
  kind: Kind;
  node: string;
  /** A node kubeconfig (TestCluster.nodeKubeconfig). */
  kubeconfig: string;
  /** The kubelet's own directory: root dir, pod logs and (upstream) its config file go under it. */
  dir: string;
  /** stdout and stderr of the kubelet are appended here. */
  logFile: string;
  /** CRI endpoint, unix://... */
  endpoint: string;
  /** A cgroup made with makeCgroupRoot, without the leading slash. */
  cgroupRoot: string;
  /** The cluster CA (client CA of the kubelet's server). */
  caCert: string;
  /** tskubelet's main.js (dist/src/cli/main.js or a copy of it). */
  mainJs: string;
  verbosity: number;
  /** Node.js options before main.js (tskubelet only). */
  nodeOptions?: string[];
  /** More KubeletConfiguration lines (upstream) ... */
  extraConfig?: string[];
  /** ... and more flags (tskubelet). */
  extraArgs?: string[];
}

function kubeletConfig(o: NodeKubeletOptions, p: { port: number; healthzPort: number; logsDir: string }): string {
  return [
    "apiVersion: kubelet.config.k8s.io/v1beta1",
    "kind: KubeletConfiguration",
    "cgroupDriver: cgroupfs",
    "cgroupsPerQOS: true",
    `cgroupRoot: /${o.cgroupRoot}`,
    "failSwapOn: false",
    `containerRuntimeEndpoint: ${o.endpoint}`,
    "authentication:",
    "  anonymous: {enabled: false}",
    "  webhook: {enabled: true}",
    `  x509: {clientCAFile: ${o.caCert}}`,
    "authorization: {mode: Webhook}",
    "readOnlyPort: 0",
    `port: ${p.port}`,
    `healthzPort: ${p.healthzPort}`,
    "healthzBindAddress: 127.0.0.1",
    'staticPodPath: ""',
    "resolvConf: /etc/resolv.conf",
    `clusterDNS: [${CLUSTER_DNS}]`,
    `clusterDomain: ${CLUSTER_DOMAIN}`,
    `podLogsDir: ${p.logsDir}`,
    ...(o.extraConfig ?? []),
    "",
  ].join("\n");
}

/**
 * Starts a kubelet of either kind with the same settings (cgroupfs, a private cgroup root, webhook
 * authn/authz with the cluster CA, free ports, DNS settings); resolves once the process is spawned.
 */
export async function startNodeKubelet(o: NodeKubeletOptions): Promise<ChildProcess> {
  const root = join(o.dir, "root");
  const logsDir = join(o.dir, "pod-logs");
  await Promise.all([mkdir(root, { recursive: true }), mkdir(logsDir, { recursive: true })]);
  const port = await freePort();
  const healthzPort = await freePort();
  let cmd: string;
  let args: string[];
  if (o.kind === "upstream") {
    const cfg = join(o.dir, "kubelet-config.yaml");
    await writeFile(cfg, kubeletConfig(o, { port, healthzPort, logsDir }));
    cmd = KTP_BIN;
    args = ["kubelet", `--config=${cfg}`, `--kubeconfig=${o.kubeconfig}`, `--root-dir=${root}`, `--cert-dir=${join(root, "pki")}`, `--hostname-override=${o.node}`, `--v=${o.verbosity}`];
  } else {
    cmd = process.execPath;
    args = [
      ...(o.nodeOptions ?? []),
      o.mainJs,
      `--kubeconfig=${o.kubeconfig}`,
      `--container-runtime-endpoint=${o.endpoint}`,
      `--root-dir=${root}`,
      `--pod-logs-dir=${logsDir}`,
      `--port=${port}`,
      "--read-only-port=0",
      `--healthz-port=${healthzPort}`,
      "--cadvisor-port=0",
      `--hostname-override=${o.node}`,
      `--cgroup-root=/${o.cgroupRoot}`,
      "--cgroup-driver=cgroupfs",
      "--cgroups-per-qos=true",
      "--fail-swap-on=false",
      "--resolv-conf=/etc/resolv.conf",
      `--cluster-dns=${CLUSTER_DNS}`,
      `--cluster-domain=${CLUSTER_DOMAIN}`,
      "--anonymous-auth=false",
      "--authentication-token-webhook=true",
      "--authorization-mode=Webhook",
      `--client-ca-file=${o.caCert}`,
      `--v=${o.verbosity}`,
      ...(o.extraArgs ?? []),
    ];
  }
  const fd = openSync(o.logFile, "a");
  const proc = spawn(cmd, args, { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  if (proc.pid === undefined) throw new Error(`could not start ${o.kind}`);
  return proc;
}
