import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import {
  CredentialsError,
  createKeyring,
  dockerConfigFromSecret,
  isDefaultRegistryImage,
  keyMatchesImage,
  parseDockerCfg,
  parseDockerConfigJSON,
  readNodeDockerConfig,
  repositoryOf,
} from "../../src/images/credentials.js";
import { createPodCredentials } from "../../src/images/pull-secrets.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

describe("docker config parsing", () => {
  it("reads .dockerconfigjson with username/password and with auth", () => {
    const cfg = parseDockerConfigJSON(
      JSON.stringify({ auths: { "reg.example.com": { username: "u", password: "p", email: "e@x" }, "other.io:5000": { auth: b64("alice:se:cret") } } }),
    );
    assert.deepEqual(cfg["reg.example.com"], { username: "u", password: "p", email: "e@x" });
    // The password may itself hold colons: only the first one splits.
    assert.deepEqual(cfg["other.io:5000"], { username: "alice", password: "se:cret", auth: b64("alice:se:cret") });
  });

  it("reads the legacy .dockercfg map", () => {
    const cfg = parseDockerCfg(JSON.stringify({ "https://index.docker.io/v1/": { auth: b64("bob:pw"), email: "b@x" } }));
    assert.equal(cfg["https://index.docker.io/v1/"]?.username, "bob");
    assert.equal(cfg["https://index.docker.io/v1/"]?.password, "pw");
  });

  it("reads identity and registry tokens", () => {
    const cfg = parseDockerConfigJSON(JSON.stringify({ auths: { r: { identitytoken: "id-tok", registrytoken: "reg-tok" } } }));
    assert.deepEqual(cfg.r, { identityToken: "id-tok", registryToken: "reg-tok" });
  });

  it("names what is wrong and where", () => {
    assert.throws(() => parseDockerConfigJSON("{nope", "secret ns/s: .dockerconfigjson"), (e: unknown) => e instanceof CredentialsError && /secret ns\/s: \.dockerconfigjson: not valid JSON/.test(e.message));
    assert.throws(() => parseDockerConfigJSON(JSON.stringify({ auths: [] })), /auths: expected an object/);
    assert.throws(() => parseDockerConfigJSON(JSON.stringify({ auths: { r: { auth: b64("no-colon") } } })), /\["r"\]\.auth: expected base64 of "username:password"/);
    assert.throws(() => parseDockerCfg(JSON.stringify({ r: "x" })), /\.dockercfg\["r"\]: expected an object/);
    assert.deepEqual(parseDockerConfigJSON("{}"), {});
  });

  it("picks the format by the secret's key", () => {
    const json = dockerConfigFromSecret({ ".dockerconfigjson": Buffer.from(JSON.stringify({ auths: { a: { username: "x", password: "y" } } })) }, "s");
    assert.equal(json?.a?.username, "x");
    const cfg = dockerConfigFromSecret({ ".dockercfg": Buffer.from(JSON.stringify({ b: { username: "x2", password: "y2" } })) }, "s");
    assert.equal(cfg?.b?.password, "y2");
    assert.equal(dockerConfigFromSecret({ token: Buffer.from("t") }, "s"), undefined);
  });
});

describe("registry key matching", () => {
  it("matches host, port and path prefix as upstream", () => {
    assert.equal(keyMatchesImage("reg.example.com", "reg.example.com/team/app"), true);
    assert.equal(keyMatchesImage("reg.example.com/team", "reg.example.com/team/app"), true);
    assert.equal(keyMatchesImage("reg.example.com/other", "reg.example.com/team/app"), false);
    assert.equal(keyMatchesImage("reg.example.com", "reg.example.com:5000/app"), false);
    assert.equal(keyMatchesImage("reg.example.com:5000", "reg.example.com:5000/app"), true);
    assert.equal(keyMatchesImage("https://reg.example.com:5000", "reg.example.com:5000/app"), true);
    assert.equal(keyMatchesImage("*.example.com", "reg.example.com/app"), true);
    assert.equal(keyMatchesImage("*.example.com", "a.reg.example.com/app"), false);
    assert.equal(keyMatchesImage("*.example.com", "example.com/app"), false);
    assert.equal(keyMatchesImage("127.0.0.1:5000", "127.0.0.1:5000/library/busybox"), true);
  });

  it("knows Docker Hub images and repositories", () => {
    assert.equal(isDefaultRegistryImage("busybox"), true);
    assert.equal(isDefaultRegistryImage("library/busybox"), true);
    assert.equal(isDefaultRegistryImage("docker.io/library/busybox"), true);
    assert.equal(isDefaultRegistryImage("localhost/busybox"), false);
    assert.equal(isDefaultRegistryImage("reg.io/busybox"), false);
    assert.equal(isDefaultRegistryImage("reg:5000/busybox"), false);
    assert.equal(repositoryOf("reg:5000/a/b:1.0"), "reg:5000/a/b");
    assert.equal(repositoryOf("reg:5000/a/b@sha256:abc"), "reg:5000/a/b");
    assert.equal(repositoryOf("reg:5000/a/b"), "reg:5000/a/b");
  });

  it("orders the most specific key first and puts pod secrets before the node's", () => {
    const ring = createKeyring([
      { "reg.io": { username: "host", password: "1" }, "reg.io/team": { username: "team", password: "2" } },
      { "reg.io": { username: "node", password: "3" } },
    ]);
    assert.deepEqual(
      ring.lookup("reg.io/team/app:1").map((a) => a.username),
      ["team", "host", "node"],
    );
    assert.deepEqual(
      ring.lookup("reg.io/else/app:1").map((a) => a.username),
      ["host", "node"],
    );
    assert.deepEqual(ring.lookup("other.io/app"), []);
    // No server address: containerd would parse "host:port/path" as a URL and fail.
    assert.equal(ring.lookup("reg.io/team/app:1")[0]?.serverAddress, undefined);
  });

  it("uses Docker Hub's key for unqualified images", () => {
    const ring = createKeyring([{ "https://index.docker.io/v1/": { username: "hub", password: "pw" } }]);
    assert.equal(ring.lookup("busybox:1.35")[0]?.username, "hub");
    assert.equal(ring.lookup("docker.io/library/busybox")[0]?.username, "hub");
    assert.deepEqual(ring.lookup("quay.io/x/y"), []);
  });
});

describe("credentials of a pod", () => {
  const pod = (secrets: string[]): V1Pod => ({ metadata: { name: "p", namespace: "ns", uid: "u1" }, spec: { containers: [], imagePullSecrets: secrets.map((name) => ({ name })) } });

  it("reads the pod's secrets of both types, then the node's config, and reports missing ones", async () => {
    const events: string[] = [];
    const secrets: Record<string, Record<string, Buffer>> = {
      "ns/json": { ".dockerconfigjson": Buffer.from(JSON.stringify({ auths: { "reg.io": { username: "from-json", password: "a" } } })) },
      "ns/cfg": { ".dockercfg": Buffer.from(JSON.stringify({ "reg.io/team": { auth: b64("from-cfg:b") } })) },
    };
    const creds = createPodCredentials({
      secret: (ns, name) => Promise.resolve(secrets[`${ns}/${name}`]),
      nodeConfig: () => Promise.resolve({ "reg.io": { username: "node", password: "c" } }),
      rootDir: "/nonexistent",
      clock: new FakeClock(),
      logger: memoryLogger().logger,
      events: (_p, type, reason, message) => events.push(`${type} ${reason} ${message}`),
    });
    const ring = await creds(pod(["json", "gone", "cfg"]));
    assert.deepEqual(
      ring.lookup("reg.io/team/app:1").map((a) => a.username),
      ["from-json", "from-cfg", "node"],
    );
    assert.deepEqual(events, ["Warning FailedToRetrieveImagePullSecret Unable to retrieve some image pull secrets (gone); attempting to pull the image may not succeed."]);
  });

  it("reports the secrets it cannot read without an apiserver and still uses the node's config", async () => {
    const events: string[] = [];
    const creds = createPodCredentials({
      nodeConfig: () => Promise.resolve({ "reg.io": { username: "node", password: "c" } }),
      rootDir: "/nonexistent",
      clock: new FakeClock(),
      logger: memoryLogger().logger,
      events: (_p, _type, reason, message) => events.push(`${reason} ${message}`),
    });
    const ring = await creds(pod(["a", "b"]));
    assert.deepEqual(ring.lookup("reg.io/x").map((a) => a.username), ["node"]);
    assert.deepEqual(events, ["FailedToRetrieveImagePullSecret Unable to retrieve some image pull secrets (a, b); attempting to pull the image may not succeed."]);
    assert.deepEqual(await creds(pod([])).then(() => events.length), 1);
  });

  it("reads the node's docker config from the root dir first, then the legacy file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tsk-creds-"));
    try {
      const root = join(dir, "root");
      const home = join(dir, "home");
      await mkdir(join(home, ".docker"), { recursive: true });
      await mkdir(root);
      await writeFile(join(home, ".docker", "config.json"), JSON.stringify({ auths: { "h.io": { username: "home", password: "x" } } }));
      assert.equal((await readNodeDockerConfig(root, dir, home)).config["h.io"]?.username, "home");
      await writeFile(join(root, "config.json"), JSON.stringify({ auths: { "r.io": { username: "root", password: "x" } } }));
      const got = await readNodeDockerConfig(root, dir, home);
      assert.equal(got.path, join(root, "config.json"));
      assert.equal(got.config["r.io"]?.username, "root");
      await rm(join(root, "config.json"));
      await rm(join(home, ".docker", "config.json"));
      await writeFile(join(home, ".dockercfg"), JSON.stringify({ "l.io": { username: "legacy", password: "x" } }));
      assert.equal((await readNodeDockerConfig(root, dir, home)).config["l.io"]?.username, "legacy");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
