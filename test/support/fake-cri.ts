/**
 * A stateful, in-memory CRI runtime + image service for unit tests, modelled on what containerd
 * 1.6.20 does through CRI (measured against the real thing; see test/support/cri-contract.ts,
 * which runs the same assertions against this fake and against containerd).
 *
 * What it models:
 * - ids are 64 hex chars; list filters and lookups accept unique id prefixes, as containerd's do;
 * - sandbox and container names are reserved (`name_namespace_uid_attempt`), and a duplicate is
 *   refused with containerd's "failed to reserve ... name" (code Unknown);
 * - hostNetwork sandboxes with a hostname fail and leave nothing behind; pod-network sandboxes while
 *   the network is not ready fail and leave a SANDBOX_NOTREADY record (with containerd's negative
 *   createdAt) that must be stopped and removed;
 * - CreateContainer needs a READY sandbox and a present image (NotFound otherwise);
 * - StopContainer on a running container makes it exit 143 (the process took SIGTERM) or, for a
 *   program that ignores SIGTERM, 137 after the grace period; StopPodSandbox kills containers (137);
 * - RemoveContainer / RemovePodSandbox of a running thing force-stops it first, and removing
 *   something that does not exist succeeds; Status/Stop/Start of a missing id is NotFound;
 * - a started container whose program exits right away is seen EXITED by the next call;
 * - GetContainerEvents is unimplemented, ListImages ignores its filter, PodSandboxStats needs a
 *   cgroup parent.
 *
 * What the test controls: `exitContainer`, `setExitReason`, `setProgram`, `setExecHandler`, `setStats`, images
 * (`addImage`, `addRegistryImage`), `setNetworkReady`, `failNext(op, code)`, and `setDown`.
 */
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { CriError } from "../../src/cri/errors.js";
import type {
  AttachRequest,
  AuthConfig,
  CallOptions,
  Container,
  ContainerConfig,
  ContainerEvent,
  ContainerEventsService,
  ContainerFilter,
  ContainerState,
  ContainerStats,
  ContainerStatsFilter,
  ContainerStatusResponse,
  CpuUsage,
  CriErrorCode,
  ExecRequest,
  ExecSyncResponse,
  Image,
  ImageFsInfoResponse,
  ImageService,
  ImageSpec,
  Labels,
  MemoryUsage,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxState,
  PodSandboxStats,
  PodSandboxStatsFilter,
  PodSandboxStatsService,
  PodSandboxStatusResponse,
  PortForwardRequest,
  RuntimeService,
  StatusResponse,
  VersionResponse,
} from "../../src/cri/types.js";
import { systemClock, type Clock } from "../../src/util/clock.js";

export const FAKE_ENDPOINT = "unix:///run/fake-containerd/containerd.sock";
const GO_ZERO_TIME_NS = -6795364578871345152n; // what containerd reports as createdAt of a half-made sandbox
const SNAPSHOTTER_MOUNT = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs";

/** How a fake container's main process behaves. */
export interface FakeProgram {
  /** Exit code the process ends with right after it starts; undefined = it keeps running. */
  exitOnStart?: number;
  /** Exit code when it gets SIGTERM (default 143), or "ignore": it is SIGKILLed after the grace period (137). */
  onTerm?: number | "ignore";
}

export type FakeExecResult = { stdout?: string; stderr?: string; exitCode?: number } | "timeout";
export type FakeExecHandler = (containerId: string, cmd: string[], timeoutSeconds: number) => FakeExecResult | undefined;

export interface FakeCriOptions {
  clock?: Clock;
  /** Images present at start (references). Default: the pause and busybox test images. */
  images?: string[];
  /** References a PullImage can fetch. */
  registry?: string[];
  /** The runtime's sandbox (pause) image; RunPodSandbox fails unless it is present. */
  sandboxImage?: string;
  /** NetworkReady; when false, pod-network sandboxes fail as with containerd without CNI. Default true. */
  networkReady?: boolean;
}

/** A CRI method of the fake, by its name ("runPodSandbox", "listContainers", ...). */
export type FakeCriOp = Exclude<keyof RuntimeService | keyof PodSandboxStatsService | keyof ContainerEventsService | keyof ImageService, "close">;
type Op = FakeCriOp;

interface FakeSandbox {
  id: string;
  config: PodSandboxConfig;
  runtimeHandler: string;
  state: PodSandboxState;
  createdAt: bigint;
  ip: string;
  reservedName: string;
}

interface FakeContainer {
  id: string;
  sandboxId: string;
  config: ContainerConfig;
  imageId: string;
  imageName: string;
  state: ContainerState;
  createdAt: bigint;
  startedAt: bigint;
  finishedAt: bigint;
  exitCode: number;
  reason: string;
  message: string;
  logPath: string;
  program: FakeProgram;
  reservedName: string;
  stopTimeouts: number[];
  pendingExit?: number;
}

interface FakeImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: bigint;
}

/** Normalizes an image reference as containerd does for docker-style names. */
export function normalizeImageRef(ref: string): string {
  if (ref.startsWith("sha256:")) return ref;
  let name = ref;
  const at = name.indexOf("@");
  const lastSlash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  if (at < 0 && !(colon > lastSlash)) name = `${name}:latest`;
  const first = name.split("/")[0] ?? "";
  const hasRegistry = name.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  if (!hasRegistry) name = name.includes("/") ? `docker.io/${name}` : `docker.io/library/${name}`;
  return name;
}

function randomId(): string {
  return randomBytes(32).toString("hex");
}

function matchLabels(labels: Labels | undefined, selector: Labels | undefined): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function rpcName(op: string): string {
  if (op === "supportsContainerEvents" || op === "containerEvents") return "GetContainerEvents";
  return op.charAt(0).toUpperCase() + op.slice(1);
}

export class FakeCri implements RuntimeService, PodSandboxStatsService, ContainerEventsService, ImageService {
  readonly endpoint = FAKE_ENDPOINT;
  /** Every call, in order (op is the method name). */
  readonly calls: { op: string; args: unknown[] }[] = [];

  private readonly clock: Clock;
  private readonly sandboxImage: string;
  private networkReady: boolean;
  private down = false;
  private seq = 0n;
  private ipSeq = 1;
  private readonly sandboxesById = new Map<string, FakeSandbox>();
  private readonly containersById = new Map<string, FakeContainer>();
  private readonly names = new Map<string, string>();
  private readonly images = new Map<string, FakeImage>();
  private readonly registry = new Set<string>();
  private readonly failures = new Map<string, { code: CriErrorCode; message: string }[]>();
  private readonly stats = new Map<string, { cpu?: Partial<CpuUsage>; memory?: Partial<MemoryUsage> }>();
  private program: (config: ContainerConfig) => FakeProgram = defaultProgram;
  private execHandler: FakeExecHandler = defaultExec;
  private readonly pulls: { image: string; auth?: AuthConfig }[] = [];

  constructor(opts: FakeCriOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.sandboxImage = opts.sandboxImage ?? "tskubelet.local/pause:3.9";
    this.networkReady = opts.networkReady ?? true;
    for (const ref of opts.images ?? [this.sandboxImage, "tskubelet.local/busybox:1.35"]) this.addImage(ref);
    for (const ref of opts.registry ?? []) this.addRegistryImage(ref);
  }

  // ------------------------------------------------------------------ test controls

  /** Makes the next call of `op` fail with `code` (queued: call it twice to fail two calls). */
  failNext(op: Op, code: CriErrorCode, message = "injected failure"): void {
    const q = this.failures.get(op) ?? [];
    q.push({ code, message });
    this.failures.set(op, q);
  }

  /** While down, every call rejects with code Unavailable (state is kept, as a restarted containerd would). */
  setDown(down: boolean): void {
    this.down = down;
  }

  setNetworkReady(ready: boolean): void {
    this.networkReady = ready;
  }

  /** Decides how containers created from now on behave. */
  setProgram(fn: (config: ContainerConfig) => FakeProgram): void {
    this.program = fn;
  }

  setExecHandler(fn: FakeExecHandler): void {
    this.execHandler = fn;
  }

  /** Ends a running container's process with `code` (reason defaults to Completed/Error; pass "OOMKilled"). */
  exitContainer(id: string, code: number, opts: { reason?: string; message?: string } = {}): void {
    const c = this.containersById.get(id);
    if (!c) throw new Error(`fake CRI: no container ${id}`);
    if (c.state !== "CONTAINER_RUNNING") throw new Error(`fake CRI: container ${id} is ${c.state}, not running`);
    this.finish(c, code, opts.reason, opts.message);
  }

  /** Changes an exited container's reason later, as containerd does when it handles an OOM event after the exit. */
  setExitReason(id: string, reason: string): void {
    const c = this.containersById.get(id);
    if (!c || c.state !== "CONTAINER_EXITED") throw new Error(`fake CRI: no exited container ${id}`);
    c.reason = reason;
  }

  /** Sets what ContainerStats reports for a container. */
  setStats(id: string, stats: { cpu?: Partial<CpuUsage>; memory?: Partial<MemoryUsage> }): void {
    this.stats.set(id, stats);
  }

  /** Adds a local image; returns its id. */
  addImage(ref: string, opts: { size?: bigint } = {}): string {
    const name = normalizeImageRef(ref);
    const id = `sha256:${createHash("sha256").update(name).digest("hex")}`;
    const existing = this.images.get(id);
    if (existing) return id;
    this.images.set(id, { id, repoTags: [name], repoDigests: [], size: opts.size ?? 1_992_523n });
    return id;
  }

  /** Makes `ref` pullable. */
  addRegistryImage(ref: string): void {
    this.registry.add(normalizeImageRef(ref));
  }

  /** The grace periods StopContainer was called with for this container. */
  getStopTimeouts(id: string): number[] {
    return [...(this.containersById.get(id)?.stopTimeouts ?? [])];
  }

  getPulls(): { image: string; auth?: AuthConfig }[] {
    return [...this.pulls];
  }

  /** Number of calls of `op` so far. */
  getCallCount(op: Op): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  // ------------------------------------------------------------------ plumbing

  private now(): bigint {
    this.seq += 1n;
    return BigInt(Math.trunc(this.clock.now())) * 1_000_000n + (this.seq % 1_000_000n);
  }

  private err(op: string, code: CriErrorCode, text: string): CriError {
    const rpc = rpcName(op);
    return new CriError(code, `CRI ${rpc} on ${FAKE_ENDPOINT}: ${text}`, { rpc, endpoint: FAKE_ENDPOINT, details: text });
  }

  /** Records the call, applies down/injected failures, settles containers whose program exited. */
  private async enter(op: Op, args: unknown[], opts?: CallOptions): Promise<void> {
    this.calls.push({ op, args });
    await Promise.resolve();
    if (opts?.signal?.aborted) throw this.err(op, "Unknown", "cancelled by caller");
    if (this.down) {
      throw this.err(op, "Unavailable", "runtime unavailable (is containerd running? socket /run/fake-containerd/containerd.sock does not exist)");
    }
    const injected = this.failures.get(op)?.shift();
    if (injected) throw this.err(op, injected.code, injected.message);
    for (const c of this.containersById.values()) {
      if (c.pendingExit !== undefined && c.state === "CONTAINER_RUNNING") this.finish(c, c.pendingExit);
    }
  }

  private finish(c: FakeContainer, code: number, reason?: string, message?: string): void {
    c.state = "CONTAINER_EXITED";
    c.exitCode = code;
    c.finishedAt = this.now();
    c.reason = reason ?? (code === 0 ? "Completed" : "Error");
    c.message = message ?? "";
    delete c.pendingExit;
  }

  private findSandbox(idOrPrefix: string): FakeSandbox | undefined {
    if (idOrPrefix === "") return undefined;
    const exact = this.sandboxesById.get(idOrPrefix);
    if (exact) return exact;
    const hits = [...this.sandboxesById.values()].filter((s) => s.id.startsWith(idOrPrefix));
    return hits.length === 1 ? hits[0] : undefined;
  }

  private findContainer(idOrPrefix: string): FakeContainer | undefined {
    if (idOrPrefix === "") return undefined;
    const exact = this.containersById.get(idOrPrefix);
    if (exact) return exact;
    const hits = [...this.containersById.values()].filter((c) => c.id.startsWith(idOrPrefix));
    return hits.length === 1 ? hits[0] : undefined;
  }

  private mustContainer(op: Op, id: string, what = `an error occurred when try to find container "${id}"`): FakeContainer {
    const c = this.findContainer(id);
    if (!c) throw this.err(op, "NotFound", `${what}: not found`);
    return c;
  }

  private findImage(ref: string): FakeImage | undefined {
    if (ref === "") return undefined;
    const byId = this.images.get(ref) ?? this.images.get(`sha256:${ref}`);
    if (byId) return byId;
    const norm = normalizeImageRef(ref);
    for (const img of this.images.values()) {
      if (img.repoTags.some((t) => t === ref || normalizeImageRef(t) === norm) || img.repoDigests.includes(ref)) return img;
    }
    if (/^[0-9a-f]{6,64}$/.test(ref)) {
      const hits = [...this.images.values()].filter((i) => i.id.slice("sha256:".length).startsWith(ref));
      if (hits.length === 1) return hits[0];
    }
    return undefined;
  }

  private kill(c: FakeContainer, code: number): void {
    if (c.state === "CONTAINER_RUNNING") this.finish(c, code);
  }

  private deleteContainer(c: FakeContainer): void {
    this.kill(c, 137);
    this.containersById.delete(c.id);
    this.names.delete(c.reservedName);
    this.stats.delete(c.id);
  }

  // ------------------------------------------------------------------ RuntimeService

  async version(opts?: CallOptions): Promise<VersionResponse> {
    await this.enter("version", [], opts);
    return { version: "0.1.0", runtimeName: "containerd", runtimeVersion: "1.6.20~ds1", runtimeApiVersion: "v1" };
  }

  async status(verbose = false, opts?: CallOptions): Promise<StatusResponse> {
    await this.enter("status", [verbose], opts);
    return {
      status: {
        conditions: [
          { type: "RuntimeReady", status: true, reason: "", message: "" },
          this.networkReady
            ? { type: "NetworkReady", status: true, reason: "", message: "" }
            : {
                type: "NetworkReady",
                status: false,
                reason: "NetworkPluginNotReady",
                message: "Network plugin returns error: cni plugin not initialized",
              },
        ],
      },
      info: {},
    };
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = "", opts?: CallOptions): Promise<string> {
    await this.enter("runPodSandbox", [config, runtimeHandler], opts);
    const md = config.metadata as PodSandboxConfig["metadata"] | undefined;
    if (!md) throw this.err("runPodSandbox", "Unknown", "sandbox config must include metadata");
    if (runtimeHandler !== "" && runtimeHandler !== "runc") {
      throw this.err("runPodSandbox", "Unknown", `failed to get sandbox runtime: no runtime for "${runtimeHandler}" is configured`);
    }
    const name = `${md.name}_${md.namespace}_${md.uid}_${md.attempt}`;
    const holder = this.names.get(name);
    if (holder) throw this.err("runPodSandbox", "Unknown", `failed to reserve sandbox name "${name}": name "${name}" is reserved for "${holder}"`);
    if (!this.findImage(this.sandboxImage)) {
      throw this.err("runPodSandbox", "Unknown", `failed to get sandbox image "${this.sandboxImage}": failed to pull image "${this.sandboxImage}"`);
    }
    const hostNetwork = config.linux?.securityContext?.namespaceOptions?.network === "NODE";
    if (hostNetwork && (config.hostname ?? "") !== "") {
      throw this.err(
        "runPodSandbox",
        "Unknown",
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to set hostname without a private UTS namespace: unknown",
      );
    }
    const id = randomId();
    const sb: FakeSandbox = { id, config, runtimeHandler, state: "SANDBOX_READY", createdAt: this.now(), ip: "", reservedName: name };
    if (!hostNetwork && !this.networkReady) {
      // containerd keeps a half-made record (and its name) that the kubelet must stop and remove.
      this.sandboxesById.set(id, { ...sb, state: "SANDBOX_NOTREADY", createdAt: GO_ZERO_TIME_NS });
      this.names.set(name, id);
      throw this.err("runPodSandbox", "Unknown", `failed to setup network for sandbox "${id}": cni plugin not initialized`);
    }
    if (!hostNetwork) {
      sb.ip = `10.88.${Math.floor(this.ipSeq / 250)}.${(this.ipSeq % 250) + 2}`;
      this.ipSeq += 1;
    }
    this.sandboxesById.set(id, sb);
    this.names.set(name, id);
    return id;
  }

  async stopPodSandbox(podSandboxId: string, opts?: CallOptions): Promise<void> {
    await this.enter("stopPodSandbox", [podSandboxId], opts);
    const sb = this.findSandbox(podSandboxId);
    if (!sb) throw this.err("stopPodSandbox", "NotFound", `an error occurred when try to find sandbox "${podSandboxId}": not found`);
    for (const c of this.containersById.values()) if (c.sandboxId === sb.id) this.kill(c, 137);
    sb.state = "SANDBOX_NOTREADY";
    sb.ip = "";
  }

  async removePodSandbox(podSandboxId: string, opts?: CallOptions): Promise<void> {
    await this.enter("removePodSandbox", [podSandboxId], opts);
    const sb = this.findSandbox(podSandboxId);
    if (!sb) return; // containerd: removing a missing sandbox succeeds
    for (const c of [...this.containersById.values()]) if (c.sandboxId === sb.id) this.deleteContainer(c);
    this.sandboxesById.delete(sb.id);
    this.names.delete(sb.reservedName);
  }

  async podSandboxStatus(podSandboxId: string, opts?: CallOptions): Promise<PodSandboxStatusResponse> {
    await this.enter("podSandboxStatus", [podSandboxId], opts);
    const sb = this.findSandbox(podSandboxId);
    if (!sb) throw this.err("podSandboxStatus", "NotFound", "an error occurred when try to find sandbox: not found");
    return {
      status: {
        id: sb.id,
        metadata: { ...sb.config.metadata },
        state: sb.state,
        createdAt: sb.createdAt,
        network: { ip: sb.ip, additionalIps: [] },
        labels: { ...sb.config.labels },
        annotations: { ...sb.config.annotations },
        runtimeHandler: sb.runtimeHandler,
      },
      info: {},
    };
  }

  async listPodSandbox(filter?: PodSandboxFilter, opts?: CallOptions): Promise<PodSandbox[]> {
    await this.enter("listPodSandbox", [filter], opts);
    const idMatch = filter?.id ? this.findSandbox(filter.id)?.id ?? "\u0000" : undefined;
    return [...this.sandboxesById.values()]
      .filter((s) => idMatch === undefined || s.id === idMatch)
      .filter((s) => !filter?.state || s.state === filter.state.state)
      .filter((s) => matchLabels(s.config.labels, filter?.labelSelector))
      .map((s) => ({
        id: s.id,
        metadata: { ...s.config.metadata },
        state: s.state,
        createdAt: s.createdAt,
        labels: { ...s.config.labels },
        annotations: { ...s.config.annotations },
        runtimeHandler: s.runtimeHandler,
      }));
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig, opts?: CallOptions): Promise<string> {
    await this.enter("createContainer", [podSandboxId, config, sandboxConfig], opts);
    const sb = this.findSandbox(podSandboxId);
    if (!sb) throw this.err("createContainer", "NotFound", `failed to find sandbox id "${podSandboxId}": not found`);
    const md = config.metadata as ContainerConfig["metadata"] | undefined;
    if (!md) throw this.err("createContainer", "Unknown", "container config must include metadata");
    if (sb.state !== "SANDBOX_READY") {
      throw this.err("createContainer", "NotFound", `failed to get sandbox container task: no running task found: task ${sb.id} not found: not found`);
    }
    const image = this.findImage(config.image.image);
    if (!image) throw this.err("createContainer", "NotFound", `failed to resolve image "${config.image.image}": not found`);
    const smd = sb.config.metadata;
    const name = `${md.name}_${smd.name}_${smd.namespace}_${smd.uid}_${md.attempt}`;
    const holder = this.names.get(name);
    if (holder) throw this.err("createContainer", "Unknown", `failed to reserve container name "${name}": name "${name}" is reserved for "${holder}"`);
    const id = randomId();
    const logDir = sandboxConfig.logDirectory ?? ""; // containerd joins the directory of the config passed here
    const c: FakeContainer = {
      id,
      sandboxId: sb.id,
      config,
      imageId: image.id,
      imageName: image.repoTags[0] ?? config.image.image,
      state: "CONTAINER_CREATED",
      createdAt: this.now(),
      startedAt: 0n,
      finishedAt: 0n,
      exitCode: 0,
      reason: "",
      message: "",
      logPath: logDir !== "" && (config.logPath ?? "") !== "" ? join(logDir, config.logPath ?? "") : "",
      program: this.program(config),
      reservedName: name,
      stopTimeouts: [],
    };
    this.containersById.set(id, c);
    this.names.set(name, id);
    return id;
  }

  async startContainer(containerId: string, opts?: CallOptions): Promise<void> {
    await this.enter("startContainer", [containerId], opts);
    const c = this.mustContainer("startContainer", containerId);
    if (c.state !== "CONTAINER_CREATED") {
      throw this.err("startContainer", "Unknown", `failed to set starting state for container "${c.id}": container is in ${c.state} state`);
    }
    const sb = this.sandboxesById.get(c.sandboxId);
    if (sb?.state !== "SANDBOX_READY") throw this.err("startContainer", "Unknown", `sandbox container "${c.sandboxId}" is not running`);
    c.state = "CONTAINER_RUNNING";
    c.startedAt = this.now();
    if (c.program.exitOnStart !== undefined) c.pendingExit = c.program.exitOnStart;
  }

  async stopContainer(containerId: string, timeoutSeconds: number, opts?: CallOptions): Promise<void> {
    await this.enter("stopContainer", [containerId, timeoutSeconds], opts);
    const c = this.mustContainer("stopContainer", containerId);
    c.stopTimeouts.push(timeoutSeconds);
    if (c.state !== "CONTAINER_RUNNING") return;
    const onTerm = c.program.onTerm ?? 143;
    this.kill(c, onTerm === "ignore" ? 137 : onTerm);
  }

  async removeContainer(containerId: string, opts?: CallOptions): Promise<void> {
    await this.enter("removeContainer", [containerId], opts);
    const c = this.findContainer(containerId);
    if (c) this.deleteContainer(c); // containerd force-stops a running container; a missing one is fine
  }

  async listContainers(filter?: ContainerFilter, opts?: CallOptions): Promise<Container[]> {
    await this.enter("listContainers", [filter], opts);
    return this.filterContainers(filter).map((c) => ({
      id: c.id,
      podSandboxId: c.sandboxId,
      metadata: { ...c.config.metadata },
      image: { ...c.config.image },
      imageRef: c.imageId,
      state: c.state,
      createdAt: c.createdAt,
      labels: { ...c.config.labels },
      annotations: { ...c.config.annotations },
    }));
  }

  private filterContainers(filter?: ContainerFilter): FakeContainer[] {
    const idMatch = filter?.id ? this.findContainer(filter.id)?.id ?? "\u0000" : undefined;
    const sbMatch = filter?.podSandboxId ? this.findSandbox(filter.podSandboxId)?.id ?? "\u0000" : undefined;
    return [...this.containersById.values()]
      .filter((c) => idMatch === undefined || c.id === idMatch)
      .filter((c) => sbMatch === undefined || c.sandboxId === sbMatch)
      .filter((c) => !filter?.state || c.state === filter.state.state)
      .filter((c) => matchLabels(c.config.labels, filter?.labelSelector));
  }

  async containerStatus(containerId: string, opts?: CallOptions): Promise<ContainerStatusResponse> {
    await this.enter("containerStatus", [containerId], opts);
    const c = this.mustContainer("containerStatus", containerId);
    return {
      status: {
        id: c.id,
        metadata: { ...c.config.metadata },
        state: c.state,
        createdAt: c.createdAt,
        startedAt: c.startedAt,
        finishedAt: c.finishedAt,
        exitCode: c.exitCode,
        image: { image: c.imageName },
        imageRef: c.imageId,
        reason: c.reason,
        message: c.message,
        labels: { ...c.config.labels },
        annotations: { ...c.config.annotations },
        mounts: (c.config.mounts ?? []).map((m) => ({ ...m })),
        logPath: c.logPath,
      },
      info: {},
    };
  }

  async reopenContainerLog(containerId: string, opts?: CallOptions): Promise<void> {
    await this.enter("reopenContainerLog", [containerId], opts);
    const c = this.mustContainer("reopenContainerLog", containerId);
    if (c.state !== "CONTAINER_RUNNING") throw this.err("reopenContainerLog", "Unknown", "container is not running");
  }

  async execSync(containerId: string, cmd: string[], timeoutSeconds: number, opts?: CallOptions): Promise<ExecSyncResponse> {
    await this.enter("execSync", [containerId, cmd, timeoutSeconds], opts);
    const c = this.mustContainer("execSync", containerId, `failed to exec in container: failed to find container "${containerId}" in store`);
    if (c.state !== "CONTAINER_RUNNING") throw this.err("execSync", "Unknown", `failed to exec in container: container is in ${c.state} state`);
    const r = this.execHandler(c.id, cmd, timeoutSeconds) ?? defaultExec(c.id, cmd);
    if (r === "timeout") {
      throw this.err("execSync", "DeadlineExceeded", `deadline exceeded: timeout ${timeoutSeconds}s exceeded: context deadline exceeded`);
    }
    return { stdout: Buffer.from(r.stdout ?? ""), stderr: Buffer.from(r.stderr ?? ""), exitCode: r.exitCode ?? 0 };
  }

  async exec(req: ExecRequest, opts?: CallOptions): Promise<string> {
    await this.enter("exec", [req], opts);
    const c = this.mustContainer("exec", req.containerId, `failed to find container "${req.containerId}" in store`);
    return `http://127.0.0.1:10010/exec/${c.id.slice(0, 8)}`;
  }

  async attach(req: AttachRequest, opts?: CallOptions): Promise<string> {
    await this.enter("attach", [req], opts);
    const c = this.mustContainer("attach", req.containerId, "failed to find container in store");
    return `http://127.0.0.1:10010/attach/${c.id.slice(0, 8)}`;
  }

  async portForward(req: PortForwardRequest, opts?: CallOptions): Promise<string> {
    await this.enter("portForward", [req], opts);
    const sb = this.findSandbox(req.podSandboxId);
    if (!sb) throw this.err("portForward", "NotFound", `failed to find sandbox "${req.podSandboxId}": not found`);
    if (sb.state !== "SANDBOX_READY") throw this.err("portForward", "Unknown", "sandbox container is not running");
    return `http://127.0.0.1:10010/portforward/${sb.id.slice(0, 8)}`;
  }

  private statsOf(c: FakeContainer): ContainerStats {
    const ts = this.now();
    const s = this.stats.get(c.id) ?? {};
    const running = c.state === "CONTAINER_RUNNING";
    return {
      attributes: { id: c.id, metadata: { ...c.config.metadata }, labels: { ...c.config.labels }, annotations: { ...c.config.annotations } },
      cpu: { timestamp: ts, usageCoreNanoSeconds: { value: running ? 17_568_963n : 0n }, usageNanoCores: { value: 0n }, ...s.cpu },
      memory: {
        timestamp: ts,
        workingSetBytes: { value: running ? 368_640n : 0n },
        availableBytes: { value: 0n },
        usageBytes: { value: running ? 368_640n : 0n },
        rssBytes: { value: running ? 106_496n : 0n },
        pageFaults: { value: 0n },
        majorPageFaults: { value: 0n },
        ...s.memory,
      },
      writableLayer: { timestamp: 0n, fsId: { mountpoint: SNAPSHOTTER_MOUNT }, usedBytes: { value: 0n }, inodesUsed: { value: 0n } },
    };
  }

  async containerStats(containerId: string, opts?: CallOptions): Promise<ContainerStats> {
    await this.enter("containerStats", [containerId], opts);
    return this.statsOf(this.mustContainer("containerStats", containerId, "failed to find container"));
  }

  async listContainerStats(filter?: ContainerStatsFilter, opts?: CallOptions): Promise<ContainerStats[]> {
    await this.enter("listContainerStats", [filter], opts);
    const f: ContainerFilter = {};
    if (filter?.id !== undefined) f.id = filter.id;
    if (filter?.podSandboxId !== undefined) f.podSandboxId = filter.podSandboxId;
    if (filter?.labelSelector !== undefined) f.labelSelector = filter.labelSelector;
    return this.filterContainers(f).map((c) => this.statsOf(c));
  }

  private sandboxStats(op: Op, sb: FakeSandbox): PodSandboxStats {
    if (sb.state !== "SANDBOX_READY") {
      throw this.err(op, "Unknown", `failed to decode pod sandbox metrics ${sb.id}: failed to get pod sandbox stats since sandbox container "${sb.id}" is not in ready state`);
    }
    if ((sb.config.linux?.cgroupParent ?? "") === "") {
      throw this.err(op, "Unknown", `failed getting metrics for sandbox ${sb.id}: failed to get cgroup metrics for sandbox ${sb.id} because cgroupPath is empty`);
    }
    const ts = this.now();
    const containers = [...this.containersById.values()].filter((c) => c.sandboxId === sb.id).map((c) => this.statsOf(c));
    return {
      attributes: { id: sb.id, metadata: { ...sb.config.metadata }, labels: { ...sb.config.labels }, annotations: { ...sb.config.annotations } },
      linux: {
        cpu: { timestamp: ts, usageCoreNanoSeconds: { value: 0n }, usageNanoCores: { value: 0n } },
        memory: { timestamp: ts, workingSetBytes: { value: 0n }, usageBytes: { value: 0n } },
        network: { timestamp: ts, defaultInterface: { name: "eth0", rxBytes: { value: 0n }, rxErrors: { value: 0n }, txBytes: { value: 0n }, txErrors: { value: 0n } }, interfaces: [] },
        containers,
      },
    };
  }

  async podSandboxStats(podSandboxId: string, opts?: CallOptions): Promise<PodSandboxStats> {
    await this.enter("podSandboxStats", [podSandboxId], opts);
    const sb = this.findSandbox(podSandboxId);
    if (!sb) throw this.err("podSandboxStats", "NotFound", `an error occurred when trying to find sandbox ${podSandboxId}: not found`);
    return this.sandboxStats("podSandboxStats", sb);
  }

  async listPodSandboxStats(filter?: PodSandboxStatsFilter, opts?: CallOptions): Promise<PodSandboxStats[]> {
    await this.enter("listPodSandboxStats", [filter], opts);
    const idMatch = filter?.id ? this.findSandbox(filter.id)?.id ?? "\u0000" : undefined;
    return [...this.sandboxesById.values()]
      .filter((s) => s.state === "SANDBOX_READY")
      .filter((s) => idMatch === undefined || s.id === idMatch)
      .filter((s) => matchLabels(s.config.labels, filter?.labelSelector))
      .map((s) => this.sandboxStats("listPodSandboxStats", s));
  }

  async supportsContainerEvents(opts?: CallOptions): Promise<boolean> {
    await this.enter("supportsContainerEvents", [], opts);
    return false;
  }

  async *containerEvents(opts: { signal: AbortSignal }): AsyncIterable<ContainerEvent> {
    await this.enter("containerEvents", [], opts);
    yield* [];
    throw this.err("containerEvents", "Unimplemented", "not implemented by this runtime (unknown method GetContainerEvents for service runtime.v1.RuntimeService)");
  }

  close(): void {
    // nothing to release
  }

  // ------------------------------------------------------------------ ImageService

  private toImage(img: FakeImage): Image {
    return { id: img.id, repoTags: [...img.repoTags], repoDigests: [...img.repoDigests], size: img.size, username: "", pinned: false };
  }

  async listImages(filter?: { image?: ImageSpec }, opts?: CallOptions): Promise<Image[]> {
    await this.enter("listImages", [filter], opts);
    return [...this.images.values()].map((i) => this.toImage(i)); // containerd 1.6 ignores the filter
  }

  async imageStatus(image: ImageSpec, opts?: CallOptions): Promise<Image | undefined> {
    await this.enter("imageStatus", [image], opts);
    const img = this.findImage(image.image);
    return img ? this.toImage(img) : undefined;
  }

  async pullImage(image: ImageSpec, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig, opts?: CallOptions): Promise<string> {
    await this.enter("pullImage", [image, auth, sandboxConfig], opts);
    this.pulls.push(auth ? { image: image.image, auth } : { image: image.image });
    const norm = normalizeImageRef(image.image);
    if (!this.registry.has(norm)) {
      const host = norm.split("/")[0] ?? "";
      throw this.err(
        "pullImage",
        "Unknown",
        `failed to pull and unpack image "${norm}": failed to resolve reference "${norm}": failed to do request: Head "https://${host}/v2/": dial tcp: lookup ${host}: no such host`,
      );
    }
    return this.addImage(image.image);
  }

  async removeImage(image: ImageSpec, opts?: CallOptions): Promise<void> {
    await this.enter("removeImage", [image], opts);
    const img = this.findImage(image.image);
    if (img) this.images.delete(img.id); // all of its tags go with it; a missing image is fine
  }

  async imageFsInfo(opts?: CallOptions): Promise<ImageFsInfoResponse> {
    await this.enter("imageFsInfo", [], opts);
    const used = [...this.images.values()].reduce((n, i) => n + i.size, 0n);
    return {
      imageFilesystems: [
        { timestamp: this.now(), fsId: { mountpoint: SNAPSHOTTER_MOUNT }, usedBytes: { value: used }, inodesUsed: { value: BigInt(this.images.size * 40) } },
      ],
      containerFilesystems: [],
    };
  }
}

/**
 * Guesses how a container behaves from its command line: `exit N` exits with N, anything that
 * sleeps, loops or runs the image default keeps running, other one-shot commands exit 0
 * (`false`: 1). Tests that need more call setProgram or exitContainer.
 */
export function defaultProgram(config: ContainerConfig): FakeProgram {
  const line = [...(config.command ?? []), ...(config.args ?? [])].join(" ").trim();
  if (line === "" || /\b(sleep|while|tail -f|wait|nc -l|httpd)\b/.test(line)) {
    return /trap\b/.test(line) ? { onTerm: 0 } : {};
  }
  const exit = /\bexit\s+(\d+)\s*['"]?$/.exec(line);
  if (exit) return { exitOnStart: Number(exit[1]) };
  if (/(^|\s|;)false\s*$/.test(line)) return { exitOnStart: 1 };
  return { exitOnStart: 0 };
}

/**
 * ExecSync without a handler runs a tiny shell: `;`-separated `echo X` (`>&2` for stderr),
 * `true`, `false` and `exit N`; anything else succeeds silently.
 */
export function defaultExec(_id: string, cmd: string[]): FakeExecResult {
  const script = cmd[0] === "sh" && cmd[1] === "-c" ? (cmd[2] ?? "") : cmd.join(" ");
  let stdout = "";
  let stderr = "";
  let exitCode = 0;
  for (const part of script.split(";").map((p) => p.trim())) {
    const exit = /^exit\s+(\d+)$/.exec(part);
    if (exit) return { stdout, stderr, exitCode: Number(exit[1]) };
    const echo = /^echo\s*(.*?)\s*(>&2)?$/.exec(part);
    if (echo) {
      if (echo[2]) stderr += `${echo[1] ?? ""}\n`;
      else stdout += `${echo[1] ?? ""}\n`;
      exitCode = 0;
    } else {
      exitCode = part === "false" ? 1 : 0;
    }
  }
  return { stdout, stderr, exitCode };
}
