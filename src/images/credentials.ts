/**
 * Registry credentials for image pulls: the docker config formats that imagePullSecrets carry
 * (`kubernetes.io/dockerconfigjson`: `{"auths": {...}}`; `kubernetes.io/dockercfg`: the bare map)
 * and the node's own docker config file, turned into a keyring that answers "which credentials
 * for this image", matching registry keys as upstream does: the host (with `*` globs per label)
 * and port must match, and the key's path must be a prefix of the image's repository path; more
 * specific keys come first. Images of the default registry (Docker Hub) also match the
 * `index.docker.io` key.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { AuthConfig } from "../cri/types.js";

/** One entry of a docker config: what the CRI AuthConfig carries. */
export interface DockerConfigEntry {
  username?: string;
  password?: string;
  auth?: string;
  email?: string;
  identityToken?: string;
  registryToken?: string;
}

/** Registry key (as written in the config) → credentials. */
export type DockerConfig = Record<string, DockerConfigEntry>;

export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CredentialsError";
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

function entryFrom(raw: unknown, where: string): DockerConfigEntry {
  if (!isRecord(raw)) throw new CredentialsError(`${where}: expected an object`);
  const e: DockerConfigEntry = {};
  const username = str(raw.username);
  const password = str(raw.password);
  const auth = str(raw.auth);
  const email = str(raw.email);
  const identityToken = str(raw.identitytoken) ?? str(raw.identityToken);
  const registryToken = str(raw.registrytoken) ?? str(raw.registryToken);
  if (username !== undefined) e.username = username;
  if (password !== undefined) e.password = password;
  if (email !== undefined) e.email = email;
  if (identityToken !== undefined) e.identityToken = identityToken;
  if (registryToken !== undefined) e.registryToken = registryToken;
  if (auth !== undefined) {
    // "auth" is base64("user:password"); it fills in what username/password leave out.
    const decoded = Buffer.from(auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new CredentialsError(`${where}.auth: expected base64 of "username:password"`);
    e.username ??= decoded.slice(0, colon);
    e.password ??= decoded.slice(colon + 1);
    e.auth = auth;
  }
  return e;
}

function mapFrom(raw: unknown, where: string): DockerConfig {
  if (!isRecord(raw)) throw new CredentialsError(`${where}: expected an object of registry → credentials`);
  const out: DockerConfig = {};
  for (const [key, value] of Object.entries(raw)) out[key] = entryFrom(value, `${where}[${JSON.stringify(key)}]`);
  return out;
}

function parseJSON(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CredentialsError(`${where}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** `.dockerconfigjson` (and ~/.docker/config.json): `{"auths": {"registry": {...}}}`. */
export function parseDockerConfigJSON(text: string, where = ".dockerconfigjson"): DockerConfig {
  const doc = parseJSON(text, where);
  if (!isRecord(doc)) throw new CredentialsError(`${where}: expected a JSON object`);
  if (doc.auths === undefined) return {};
  return mapFrom(doc.auths, `${where}: auths`);
}

/** `.dockercfg` (the legacy format): `{"registry": {...}}`. */
export function parseDockerCfg(text: string, where = ".dockercfg"): DockerConfig {
  return mapFrom(parseJSON(text, where), where);
}

/** The docker config of an imagePullSecret's data, by its key (as upstream reads the two secret types). */
export function dockerConfigFromSecret(data: Record<string, Buffer>, where: string): DockerConfig | undefined {
  const json = data[".dockerconfigjson"];
  if (json) return parseDockerConfigJSON(json.toString("utf8"), `${where}: .dockerconfigjson`);
  const cfg = data[".dockercfg"];
  if (cfg) return parseDockerCfg(cfg.toString("utf8"), `${where}: .dockercfg`);
  return undefined;
}

// ---- matching ----

interface ParsedRef {
  scheme: string | undefined;
  host: string;
  port: string;
  path: string;
}

const DEFAULT_REGISTRY_HOST = "index.docker.io";

/** Splits "scheme://host:port/path" (scheme optional). */
function parseRef(value: string): ParsedRef {
  let rest = value;
  let scheme: string | undefined;
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (m) {
    scheme = (m[1] ?? "").toLowerCase();
    rest = rest.slice(m[0].length);
  }
  const slash = rest.indexOf("/");
  const hostPort = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  let host = hostPort;
  let port = "";
  const bracket = /^\[([^\]]*)\](?::(\d+))?$/.exec(hostPort);
  if (bracket) {
    host = bracket[1] ?? "";
    port = bracket[2] ?? "";
  } else {
    const colon = hostPort.lastIndexOf(":");
    if (colon >= 0) {
      host = hostPort.slice(0, colon);
      port = hostPort.slice(colon + 1);
    }
  }
  return { scheme, host: host.toLowerCase(), port, path };
}

/** One label against one glob label: `*` any run of characters, `?` one, anything else literal. */
function globMatch(glob: string, s: string): boolean {
  const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^.]*").replace(/\?/g, "[^.]")}$`);
  return re.test(s);
}

/** Whether a registry key (host globs, port, path prefix) applies to an image's repository. */
export function keyMatchesImage(key: string, image: string): boolean {
  const k = parseRef(key);
  const t = parseRef(`${k.scheme ? `${k.scheme}://` : ""}${image}`);
  const kl = k.host.split(".");
  const tl = t.host.split(".");
  if (kl.length !== tl.length) return false;
  for (let i = 0; i < kl.length; i++) if (!globMatch(kl[i] ?? "", tl[i] ?? "")) return false;
  if (k.port !== t.port) return false;
  return t.path.startsWith(k.path);
}

/** True when `image` is pulled from Docker Hub (no registry host in the name). */
export function isDefaultRegistryImage(image: string): boolean {
  const parts = image.split("/");
  const first = parts[0] ?? "";
  if (first === "") return false;
  if (parts.length === 1) return true;
  if (first === "docker.io" || first === DEFAULT_REGISTRY_HOST) return true;
  return !/[.:]/.test(first) && first !== "localhost";
}

/** The registry key as upstream stores it: no scheme, no trailing slash; Docker Hub's v1 URL is its host. */
function normalizeKey(key: string): string {
  let k = key.trim().replace(/^https?:\/\//i, "");
  k = k.replace(/\/+$/, "");
  if (k === `${DEFAULT_REGISTRY_HOST}/v1` || k === "docker.io") return DEFAULT_REGISTRY_HOST;
  return k;
}

/** The repository part of an image reference (tag and digest dropped). */
export function repositoryOf(image: string): string {
  let repo = image;
  const at = repo.indexOf("@");
  if (at >= 0) repo = repo.slice(0, at);
  const slash = repo.lastIndexOf("/");
  const colon = repo.lastIndexOf(":");
  if (colon > slash) repo = repo.slice(0, colon);
  return repo;
}

export interface Keyring {
  /** Credentials to try for `image`, most specific first; [] when none apply. */
  lookup(image: string): AuthConfig[];
}

/**
 * No serverAddress, as upstream: containerd parses it as a URL and would refuse a key with a port
 * and a path ("host:port/path"); the runtime already knows the host it pulls from.
 */
function toAuthConfig(e: DockerConfigEntry): AuthConfig {
  const a: AuthConfig = {};
  if (e.username !== undefined) a.username = e.username;
  if (e.password !== undefined) a.password = e.password;
  if (e.auth !== undefined) a.auth = e.auth;
  if (e.identityToken !== undefined) a.identityToken = e.identityToken;
  if (e.registryToken !== undefined) a.registryToken = e.registryToken;
  return a;
}

/** A keyring over docker configs; earlier configs' matches come before later ones' (pod secrets, then the node's). */
export function createKeyring(configs: readonly DockerConfig[]): Keyring {
  const layers = configs.map((cfg) => {
    const byKey = new Map<string, DockerConfigEntry>();
    for (const [key, entry] of Object.entries(cfg)) {
      const k = normalizeKey(key);
      if (k !== "" && !byKey.has(k)) byKey.set(k, entry);
    }
    // Reverse lexical order puts longer (more specific) keys of the same registry first, as upstream.
    return [...byKey.entries()].sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0));
  });
  return {
    lookup(image) {
      const repo = repositoryOf(image);
      const out: AuthConfig[] = [];
      const seen = new Set<string>();
      const add = (e: DockerConfigEntry): void => {
        const id = JSON.stringify([e.username, e.password, e.identityToken, e.registryToken]);
        if (seen.has(id)) return;
        seen.add(id);
        out.push(toAuthConfig(e));
      };
      for (const entries of layers) {
        let matched = false;
        for (const [key, e] of entries) {
          if (keyMatchesImage(key, repo)) {
            add(e);
            matched = true;
          }
        }
        if (!matched && isDefaultRegistryImage(repo)) {
          const hub = entries.find(([k]) => k === DEFAULT_REGISTRY_HOST);
          if (hub) add(hub[1]);
        }
      }
      return out;
    },
  };
}

/**
 * The node's docker config, as upstream looks for it: `config.json` in the root dir, the working
 * directory, ~/.docker and /.docker, then the legacy `.dockercfg` in the root dir, the working
 * directory, ~ and /. The first file found wins; none found is an empty config.
 */
export async function readNodeDockerConfig(rootDir: string, cwd = process.cwd(), home = homedir()): Promise<{ config: DockerConfig; path?: string }> {
  const jsonPaths = [join(rootDir, "config.json"), join(cwd, "config.json"), join(home, ".docker", "config.json"), "/.docker/config.json"];
  for (const path of jsonPaths) {
    const text = await readFile(path, "utf8").catch(() => undefined);
    if (text !== undefined) return { config: parseDockerConfigJSON(text, path), path };
  }
  const cfgPaths = [join(rootDir, ".dockercfg"), join(cwd, ".dockercfg"), join(home, ".dockercfg"), "/.dockercfg"];
  for (const path of cfgPaths) {
    const text = await readFile(path, "utf8").catch(() => undefined);
    if (text !== undefined) return { config: parseDockerCfg(text, path), path };
  }
  return { config: {} };
}
