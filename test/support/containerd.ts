// A private containerd per test: its own root, state, socket and CNI bridge under a temporary
// directory, driven by hack/containerd.sh. Tests get a CRI endpoint that no other test (or the
// system) shares, and a full cleanup (containers, shims, netns, iptables, bridge, mounts).
//
//   const rt = await startContainerd();            // CNI bridge on a /24 of its own
//   ... talk CRI to rt.endpoint ...
//   await rt.kill(); await rt.startAgain();        // simulate a runtime crash and recovery
//   await rt.stop();                               // everything gone, dir removed
//
// Needs root and the packages of hack/install-deps.sh; see containerdUnavailableReason().
import { execFile, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The images hack/build-images.sh makes and hack/containerd.sh imports into namespace k8s.io. */
export const TEST_IMAGES = {
  pause: "tskubelet.local/pause:3.9",
  busybox: "tskubelet.local/busybox:1.35",
} as const;

export interface PrivateContainerd {
  /** CRI endpoint, `unix://<dir>/containerd.sock`. */
  readonly endpoint: string;
  /** The instance directory (config, root, state, socket, log); removed by stop(). */
  readonly dir: string;
  readonly socketPath: string;
  /** Linux bridge of the CNI network (created by the bridge plugin with the first pod). */
  readonly bridge: string;
  /** IPv4 /24 of the CNI network. */
  readonly subnet: string;
  /** Whether a CNI network is configured (NetworkReady) or only hostNetwork pods can run. */
  readonly cni: boolean;
  /** containerd's own log, useful in assertion messages. */
  readonly logFile: string;
  /** Full cleanup: containerd, containers, shims, CNI state, mounts, bridge, dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGTERM containerd and start it again on the same dir; containers keep running. */
  restart(): Promise<void>;
  /** SIGKILL containerd only: containers and shims keep running (a runtime crash). */
  kill(): Promise<void>;
  /** Start containerd again on the same dir after kill(). */
  startAgain(): Promise<void>;
}

export interface StartContainerdOptions {
  /** Configure a CNI bridge network (default true). */
  cni?: boolean;
  /** Bridge name (default: a unique one per call). */
  bridge?: string;
  /** IPv4 CIDR (default: a unique /24 per call, in 10.100.0.0-10.199.255.0). */
  subnet?: string;
}

const SCRIPT_TIMEOUT_MS = 120_000;

let cachedRoot: string | undefined;

/** The repository root: the nearest ancestor of this module holding package.json and hack/. */
export function repoRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "hack", "containerd.sh"))) {
      cachedRoot = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no repository root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** True when running as root (a private containerd needs it). */
export function requireRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

function onPath(binary: string): boolean {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin", "/sbin", "/bin"]);
  return dirs.some((d) => {
    if (d === "") return false;
    try {
      accessSync(join(d, binary), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Why a private containerd cannot run here, or undefined when it can. Meant for
 * `test(name, { skip: containerdUnavailableReason() ?? false }, ...)`.
 */
export function containerdUnavailableReason(): string | undefined {
  if (process.platform !== "linux") return "private containerd needs Linux";
  if (!requireRoot()) return "private containerd needs root";
  const missing = ["containerd", "ctr", "runc", "umoci", "skopeo"].filter((b) => !onPath(b));
  if (!existsSync("/bin/busybox")) missing.push("busybox (busybox-static)");
  if (missing.length > 0) return `missing ${missing.join(", ")} (run hack/install-deps.sh)`;
  return undefined;
}

interface ExecFailure {
  code?: number | string;
  stdout?: string;
  stderr?: string;
  killed?: boolean;
}

function isExecFailure(err: unknown): err is Error & ExecFailure {
  return err instanceof Error;
}

/** Run a hack/ script with bash; resolves to its trimmed stdout, rejects with its stderr. */
function runHack(script: string, args: readonly string[], timeoutMs = SCRIPT_TIMEOUT_MS): Promise<string> {
  const path = join(repoRoot(), "hack", script);
  return new Promise((resolvePromise, reject) => {
    execFile(
      "bash",
      [path, ...args],
      { cwd: repoRoot(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err === null) {
          resolvePromise(stdout.trim());
          return;
        }
        const detail = isExecFailure(err) && err.killed === true ? ` (timed out after ${timeoutMs} ms)` : "";
        reject(new Error(`hack/${script} ${args.join(" ")} failed${detail}:\n${stderr.trim() || err.message}`));
      },
    );
  });
}

let imagesDir: Promise<string> | undefined;

/**
 * Make sure the image tarballs exist (hack/build-images.sh, once per process; the script itself
 * is cached on disk and serialised with a lock). Resolves to the directory holding them.
 */
export function ensureTestImages(): Promise<string> {
  if (imagesDir === undefined) {
    const dir = process.env.TSKUBELET_IMAGES_DIR ?? join(repoRoot(), ".run", "images");
    imagesDir = runHack("build-images.sh", [dir]).then(
      () => dir,
      (err: unknown) => {
        imagesDir = undefined; // let a later call try again
        throw err;
      },
    );
  }
  return imagesDir;
}

/** Run `ctr --address <socket> -n k8s.io ARGS...` and resolve to its stdout. */
export function ctr(rt: Pick<PrivateContainerd, "socketPath">, ...args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      "ctr",
      ["--address", rt.socketPath, "-n", "k8s.io", ...args],
      { timeout: 30_000, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err === null) resolvePromise(stdout);
        else reject(new Error(`ctr ${args.join(" ")} failed: ${stderr.trim() || err.message}`));
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Unique networks. Each process owns the slots pid*8 .. pid*8+7 (mod the 25,600 /24s of
// 10.100.0.0-10.199.255.0), so parallel test files do not collide; names and routes already on
// the host are skipped too.

const SLOTS = 100 * 256;
const SLOTS_PER_PROCESS = 8;
let nextSlot = 0;
const taken = new Set<number>();

function hostHas(args: string[], needle: string): boolean {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  return r.status === 0 && r.stdout.split(/\s+/).includes(needle);
}

function allocateNetwork(): { bridge: string; subnet: string } {
  for (let attempt = 0; attempt < SLOTS; attempt++) {
    const n = nextSlot++;
    const slot = ((process.pid % (SLOTS / SLOTS_PER_PROCESS)) * SLOTS_PER_PROCESS + n) % SLOTS;
    if (taken.has(slot)) continue;
    const bridge = `tskit${slot.toString(36)}`;
    const net = `10.${100 + Math.floor(slot / 256)}.${slot % 256}.0`;
    if (hostHas(["-o", "link", "show"], `${bridge}:`) || hostHas(["-4", "route", "show"], `${net}/24`)) continue;
    taken.add(slot);
    return { bridge, subnet: `${net}/24` };
  }
  throw new Error("no free bridge/subnet for a private containerd");
}

// ---------------------------------------------------------------------------------------------

const live = new Set<Handle>();
let exitHookInstalled = false;

function stopAllSync(): void {
  for (const h of live) {
    spawnSync("bash", [join(repoRoot(), "hack", "containerd.sh"), "stop", h.dir], {
      stdio: "ignore",
      timeout: 60_000,
    });
  }
  live.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort for a test that forgot stop() or threw before it: clean up synchronously.
  process.on("exit", stopAllSync);
  // The test runner ends a file that overruns with a signal: clean up, then die of it.
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.once(signal, () => {
      stopAllSync();
      process.kill(process.pid, signal);
    });
  }
}

class Handle implements PrivateContainerd {
  readonly socketPath: string;
  readonly logFile: string;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly endpoint: string,
    readonly network: { bridge: string; subnet: string; cni: boolean },
  ) {
    this.socketPath = join(dir, "containerd.sock");
    this.logFile = join(dir, "containerd.log");
  }

  get bridge(): string {
    return this.network.bridge;
  }

  get subnet(): string {
    return this.network.subnet;
  }

  get cni(): boolean {
    return this.network.cni;
  }

  stop(): Promise<void> {
    this.stopping ??= runHack("containerd.sh", ["stop", this.dir]).then(() => {
      live.delete(this);
    });
    return this.stopping;
  }

  async restart(): Promise<void> {
    this.assertNotStopped();
    await runHack("containerd.sh", ["restart", this.dir]);
  }

  async kill(): Promise<void> {
    this.assertNotStopped();
    await runHack("containerd.sh", ["kill", this.dir]);
  }

  async startAgain(): Promise<void> {
    this.assertNotStopped();
    await runHack("containerd.sh", ["resume", this.dir]);
  }

  private assertNotStopped(): void {
    if (this.stopping !== undefined) throw new Error(`private containerd in ${this.dir} was stopped`);
  }
}

/**
 * Start a private containerd in a fresh /tmp/tskubelet-it-* directory, with the test images
 * imported into namespace k8s.io. Always pair with `await rt.stop()` (e.g. in `after`).
 */
export async function startContainerd(opts: StartContainerdOptions = {}): Promise<PrivateContainerd> {
  const reason = containerdUnavailableReason();
  if (reason !== undefined) throw new Error(`cannot start a private containerd: ${reason}`);
  const images = await ensureTestImages();
  const cni = opts.cni ?? true;
  const auto = opts.bridge === undefined || opts.subnet === undefined ? allocateNetwork() : undefined;
  const bridge = opts.bridge ?? auto?.bridge ?? "tskbr0";
  const subnet = opts.subnet ?? auto?.subnet ?? "10.244.0.0/24";
  const dir = resolve(await mkdtemp("/tmp/tskubelet-it-"));
  installExitHook();
  const args = ["start", dir, "--bridge", bridge, "--subnet", subnet, "--images", images];
  if (!cni) args.push("--no-cni");
  let endpoint: string;
  try {
    endpoint = await runHack("containerd.sh", args);
  } catch (err) {
    // A half-started instance: stop cleans whatever exists, then report the start failure.
    await runHack("containerd.sh", ["stop", dir]).catch(() => undefined);
    throw err;
  }
  const handle = new Handle(dir, endpoint, { bridge, subnet, cni });
  live.add(handle);
  return handle;
}
