/**
 * Image pulls and image GC through the real tskubelet command, a private containerd and a real
 * registry (docker-registry with htpasswd on loopback): credentials from the node's docker config
 * (matched by host and path prefix), missing and wrong credentials, a missing tag, pull policies
 * Never and Always, the pull backoff, and image GC with thresholds forced low.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { ctr, startContainerd, TEST_IMAGES, type PrivateContainerd } from "../support/containerd.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { fetchText, startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

function manifest(name: string, image: string, opts: { policy?: string; command?: string[]; restartPolicy?: string } = {}): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      hostNetwork: true,
      restartPolicy: opts.restartPolicy ?? "Always",
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "main", image, command: opts.command ?? ["sleep", "3600"], ...(opts.policy ? { imagePullPolicy: opts.policy } : {}) }],
    },
  });
}

function state(p: V1Pod | undefined): { kind: string; reason: string; message: string } {
  const s = p?.status?.containerStatuses?.[0]?.state;
  if (s?.running) return { kind: "running", reason: "", message: "" };
  if (s?.terminated) return { kind: "terminated", reason: s.terminated.reason ?? "", message: s.terminated.message ?? "" };
  return { kind: "waiting", reason: s?.waiting?.reason ?? "", message: s?.waiting?.message ?? "" };
}

async function waitState(k: TskubeletProcess, name: string, want: (s: ReturnType<typeof state>) => boolean, what: string): Promise<ReturnType<typeof state>> {
  return waitFor(async () => {
    const s = state(await k.pod(name));
    return want(s) ? s : undefined;
  }, { timeoutMs: 60_000, what: () => `${name}: ${what}` });
}

/** The node's docker config: the library/ and wrongpw/ paths of the registry, the latter with a wrong password. */
async function writeNodeConfig(k: TskubeletProcess, reg: TestRegistry): Promise<void> {
  const auth = (u: string, p: string): string => Buffer.from(`${u}:${p}`).toString("base64");
  const cfg = {
    auths: {
      [`http://${reg.host}/library`]: { auth: auth(reg.username, reg.password) },
      [`${reg.host}/wrongpw`]: { username: reg.username, password: `${reg.password}-wrong` },
    },
  };
  await writeFile(join(k.dir, "config.json"), JSON.stringify(cfg));
}

async function imageNames(rt: PrivateContainerd): Promise<string[]> {
  return (await ctr(rt, "images", "ls", "-q")).split("\n").filter((l) => l !== "");
}

describe("image pulls from a registry with authentication", () => {
  let rt: PrivateContainerd;
  let reg: TestRegistry;
  let k: TskubeletProcess;
  let busybox: string;

  before(async () => {
    [rt, reg] = await Promise.all([startContainerd({ cni: false }), startRegistry()]);
    await reg.trust(rt);
    busybox = await reg.push("busybox.tar", "library/busybox:1.35");
    await Promise.all([reg.push("busybox.tar", "private/busybox:1.35"), reg.push("busybox.tar", "wrongpw/busybox:1.35")]);
    k = await startTskubelet(rt);
    await writeNodeConfig(k, reg);
  });
  after(async () => {
    await k?.cleanup();
    await rt?.stop();
    await reg?.stop();
  });

  it("pulls with the node's credentials for the matching path and runs the container", async () => {
    await k.writeManifest("good.json", manifest("good", busybox));
    await waitState(k, "good", (s) => s.kind === "running", "running");
    assert.ok((await imageNames(rt)).includes(busybox), `containerd has ${busybox}`);
    const metrics = await fetchText(`http://127.0.0.1:${k.readOnlyPort}/metrics`);
    assert.match(metrics, /^kubelet_image_pull_duration_seconds_count\{image_size_in_bytes="0-10MB"\} [1-9]/m);
    assert.match(k.output(), new RegExp(`Successfully pulled image \\\\"${busybox.replace(/[.]/g, "\\.")}\\\\" in [0-9.]+m?s \\([0-9.]+m?s including waiting\\)\\. Image size: \\d+ bytes\\.`));
  });

  it("fails without credentials with ErrImagePull naming the cause, then backs off with ImagePullBackOff", async () => {
    const image = `${reg.host}/private/busybox:1.35`;
    await k.writeManifest("nocreds.json", manifest("nocreds", image));
    const first = await waitState(k, "nocreds", (s) => s.reason === "ErrImagePull" || s.reason === "ImagePullBackOff", "a pull error");
    assert.match(first.message, /401 Unauthorized|unauthorized/i);
    const backoff = await waitState(k, "nocreds", (s) => s.reason === "ImagePullBackOff", "ImagePullBackOff");
    assert.match(backoff.message, new RegExp(`^Back-off pulling image "${image.replace(/[.]/g, "\\.")}": .*(401 Unauthorized|unauthorized)`, "i"));
    assert.ok(!(await imageNames(rt)).includes(image));
  });

  it("fails with a wrong password with ErrImagePull naming the cause", async () => {
    await k.writeManifest("wrongpw.json", manifest("wrongpw", `${reg.host}/wrongpw/busybox:1.35`));
    const s = await waitState(k, "wrongpw", (x) => x.reason === "ErrImagePull", "ErrImagePull");
    assert.match(s.message, /401 Unauthorized|unauthorized/i);
    // The node's credentials for that path were sent, and refused.
    assert.match(reg.output(), new RegExp(`error authenticating user \\\\"${reg.username}\\\\": authentication failure`));
  });

  it("fails on a missing tag with ErrImagePull saying not found", async () => {
    await k.writeManifest("notag.json", manifest("notag", `${reg.host}/library/busybox:no-such-tag`));
    const s = await waitState(k, "notag", (x) => x.reason === "ErrImagePull", "ErrImagePull");
    assert.match(s.message, /not found/);
  });

  it("does not pull under policy Never: ErrImageNeverPull with upstream's message", async () => {
    const image = `${reg.host}/library/busybox:never-here`;
    await k.writeManifest("never.json", manifest("never", image, { policy: "Never" }));
    const s = await waitState(k, "never", (x) => x.reason === "ErrImageNeverPull", "ErrImageNeverPull");
    assert.equal(s.message, `Container image "${image}" is not present with pull policy of Never`);
    assert.ok(!reg.output().includes("never-here"), "the registry was never asked");
  });

  it("pulls again under policy Always although the image is present", async () => {
    assert.ok((await imageNames(rt)).includes(busybox));
    const before = (reg.output().match(/\/v2\/library\/busybox\/manifests\/1\.35/g) ?? []).length;
    await k.writeManifest("always.json", manifest("always", busybox, { policy: "Always" }));
    await waitState(k, "always", (s) => s.kind === "running", "running");
    const afterCount = (reg.output().match(/\/v2\/library\/busybox\/manifests\/1\.35/g) ?? []).length;
    assert.ok(afterCount > before, `the registry served the manifest again (${before} → ${afterCount})`);
  });
});

describe("image garbage collection with thresholds forced low", () => {
  let rt: PrivateContainerd;
  let reg: TestRegistry;
  let k: TskubeletProcess;

  before(async () => {
    [rt, reg] = await Promise.all([startContainerd({ cni: false }), startRegistry()]);
    await reg.trust(rt);
  });
  after(async () => {
    await k?.cleanup();
    await rt?.stop();
    await reg?.stop();
  });

  it("removes an unused image and keeps the one in use and the pause image", async () => {
    const unused = await reg.pushVariant("busybox.tar", "test/gc:1", "tskubelet.test.variant=gc");
    const configPath = join(rt.dir, "kubelet-config.yaml");
    await writeFile(configPath, ["apiVersion: kubelet.config.k8s.io/v1beta1", "kind: KubeletConfiguration", "imageMinimumGCAge: 0s", "imageGCHighThresholdPercent: 1", "imageGCLowThresholdPercent: 0", ""].join("\n"));
    process.env.TSKUBELET_TEST_IMAGE_GC_PERIOD_MS = "2000";
    try {
      k = await startTskubelet(rt, { extraArgs: [`--config=${configPath}`] });
    } finally {
      delete process.env.TSKUBELET_TEST_IMAGE_GC_PERIOD_MS;
    }
    await writeFile(join(k.dir, "config.json"), JSON.stringify({ auths: { [reg.host]: { username: reg.username, password: reg.password } } }));
    await k.writeManifest("keeper.json", manifest("keeper", TEST_IMAGES.busybox));
    await waitState(k, "keeper", (s) => s.kind === "running", "running");
    // A pod that uses the other image once, then goes away with its containers.
    await k.writeManifest("once.json", manifest("once", unused, { command: ["true"], restartPolicy: "Never" }));
    await waitState(k, "once", (s) => s.kind === "terminated", "terminated");
    assert.ok((await imageNames(rt)).includes(unused));
    await k.removeManifest("once.json");
    await waitFor(async () => ((await k.pod("once")) === undefined ? true : undefined), { timeoutMs: 30_000, what: () => "pod once gone" });
    await waitFor(async () => (!(await imageNames(rt)).includes(unused) ? true : undefined), { timeoutMs: 30_000, what: () => `${unused} removed by image GC; output:\n${k.output().slice(-3000)}` });
    const left = await imageNames(rt);
    assert.ok(left.includes(TEST_IMAGES.busybox), "the image in use stays");
    assert.ok(left.includes(TEST_IMAGES.pause), "the pause image stays");
    assert.equal(state(await k.pod("keeper")).kind, "running");
    assert.match(k.output(), /Removing image to free bytes/);
    const metrics = await fetchText(`http://127.0.0.1:${k.readOnlyPort}/metrics`);
    assert.match(metrics, /^kubelet_image_garbage_collected_total\{reason="space"\} [1-9]/m);
  });
});
