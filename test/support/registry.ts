// A real OCI registry for image pull tests: Debian's docker-registry (distribution) on a random
// loopback port, plain HTTP, with htpasswd (bcrypt) basic authentication, its storage under a
// temporary directory. Images are pushed into it with skopeo from the archives hack/build-images.sh
// makes, and a private containerd is told to reach it through a hosts.toml under its certs.d.
//
//   const reg = await startRegistry();                          // user "tsk", a random password
//   await reg.push("busybox.tar", "library/busybox:1.35");      // → 127.0.0.1:PORT/library/busybox:1.35
//   await reg.trust(rt);                                        // containerd may pull from it
//   await reg.stop();                                           // process gone, dir removed
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureTestImages, type PrivateContainerd } from "./containerd.js";
import { freePort } from "./tskubelet.js";

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry part of image references. */
  readonly host: string;
  readonly username: string;
  readonly password: string;
  readonly dir: string;
  /** Everything the registry logged so far. */
  output(): string;
  /** Pushes `<images dir>/<archive>` (a docker archive) as `<host>/<repoTag>`; returns the full reference. */
  push(archive: string, repoTag: string): Promise<string>;
  /**
   * Pushes a copy of the archive whose config carries one more label, so that it is a different
   * image (another id) with the same layers; returns the full reference.
   */
  pushVariant(archive: string, repoTag: string, label: string): Promise<string>;
  /** Writes `<rt.dir>/certs.d/<host>/hosts.toml` so that containerd pulls from it over plain HTTP. */
  trust(rt: Pick<PrivateContainerd, "dir">): Promise<void>;
  /** Ends the registry (by its PID) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

const onPath = (bin: string): boolean => ["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"].some((d) => existsSync(join(d, bin)));

/** Why the registry cannot run here, or undefined. */
export function registryUnavailableReason(): string | undefined {
  const missing = ["docker-registry", "htpasswd", "skopeo", "umoci"].filter((b) => !onPath(b));
  return missing.length > 0 ? `missing ${missing.join(", ")} (run hack/install-deps.sh)` : undefined;
}

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: "utf8", maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(" ")} failed: ${stderr.trim() || err.message}`));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function answers(host: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 401 || res.status === 200;
  } catch {
    return false;
  }
}

const live = new Set<ChildProcess>();
let hookInstalled = false;
function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on("exit", () => {
    for (const c of live) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, "SIGKILL");
  });
}

export async function startRegistry(opts: { username?: string; password?: string } = {}): Promise<TestRegistry> {
  const reason = registryUnavailableReason();
  if (reason !== undefined) throw new Error(`cannot start a test registry: ${reason}`);
  const username = opts.username ?? "tsk";
  const password = opts.password ?? randomBytes(9).toString("base64url");
  const dir = await mkdtemp("/tmp/tskubelet-registry-");
  const htpasswd = join(dir, "htpasswd");
  // -B: bcrypt, the only scheme distribution's htpasswd accepts.
  await writeFile(htpasswd, await run("htpasswd", ["-Bbn", username, password]));
  await mkdir(join(dir, "data"));
  let out = "";
  let child: ChildProcess | undefined;
  let host = "";
  for (let attempt = 0; attempt < 5 && child === undefined; attempt++) {
    const port = await freePort();
    host = `127.0.0.1:${port}`;
    const config = [
      "version: 0.1",
      "log:",
      "  level: info",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "data")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: ${host}`,
      `  secret: ${randomBytes(12).toString("hex")}`,
      "auth:",
      "  htpasswd:",
      "    realm: tskubelet-test",
      `    path: ${htpasswd}`,
      "",
    ].join("\n");
    const configPath = join(dir, "config.yml");
    await writeFile(configPath, config);
    const c = spawn("docker-registry", ["serve", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    installExitHook();
    live.add(c);
    c.stdout?.setEncoding("utf8");
    c.stderr?.setEncoding("utf8");
    c.stdout?.on("data", (d: string) => (out += d));
    c.stderr?.on("data", (d: string) => (out += d));
    c.on("exit", () => live.delete(c));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null) break;
      if (await answers(host)) {
        child = c;
        break;
      }
      await sleep(50);
    }
    if (child === undefined && c.exitCode === null && c.pid !== undefined) process.kill(c.pid, "SIGKILL");
  }
  if (child === undefined) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`docker-registry did not start:\n${out}`);
  }
  const proc = child;
  let stopped: Promise<void> | undefined;
  const creds = `${username}:${password}`;

  return {
    host,
    username,
    password,
    dir,
    output: () => out,
    async push(archive, repoTag) {
      const images = await ensureTestImages();
      const ref = `${host}/${repoTag}`;
      await run("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", creds, `docker-archive:${join(images, archive)}`, `docker://${ref}`]);
      return ref;
    },
    async pushVariant(archive, repoTag, label) {
      const images = await ensureTestImages();
      const layout = await mkdtemp(join(dir, "oci-"));
      try {
        await run("skopeo", ["copy", "--quiet", `docker-archive:${join(images, archive)}`, `oci:${layout}:base`]);
        await run("umoci", ["config", "--image", `${layout}:base`, "--tag", "variant", "--config.label", label]);
        const ref = `${host}/${repoTag}`;
        await run("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", creds, `oci:${layout}:variant`, `docker://${ref}`]);
        return ref;
      } finally {
        await rm(layout, { recursive: true, force: true });
      }
    },
    async trust(rt) {
      const d = join(rt.dir, "certs.d", host);
      await mkdir(d, { recursive: true });
      await writeFile(join(d, "hosts.toml"), `server = "http://${host}"\n\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n`);
    },
    stop() {
      stopped ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = new Promise<void>((r) => proc.once("exit", () => r()));
          if (proc.pid !== undefined) process.kill(proc.pid, "SIGTERM");
          await Promise.race([exited, sleep(5_000).then(() => proc.pid !== undefined && proc.exitCode === null && process.kill(proc.pid, "SIGKILL"))]);
          await exited;
        }
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
