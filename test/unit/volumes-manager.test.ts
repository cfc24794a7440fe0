import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createServer } from "node:net";
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod, V1Volume } from "@kubernetes/client-node";
import { createVolumeManager, type VolumeManager } from "../../src/volumes/index.js";
import { checkHostPath } from "../../src/volumes/hostpath.js";
import { downwardPayload, keyPayload } from "../../src/volumes/payload.js";
import type { Mounter } from "../../src/volumes/mounter.js";
import type { ObjectData, ObjectSource } from "../../src/volumes/objects.js";
import type { TokenRequester } from "../../src/volumes/tokens.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";
import { ContainerConfigError } from "../../src/containers/env.js";

const b = (s: string): Buffer => Buffer.from(s);

function fakeMounter(): Mounter & { mounted: Set<string> } {
  const mounted = new Set<string>();
  return {
    mounted,
    mountTmpfs: (dir) => {
      mounted.add(dir);
      return Promise.resolve();
    },
    mountsUnder: (dir) => Promise.resolve([...mounted].filter((m) => m === dir || m.startsWith(`${dir}/`)).sort((x, y) => y.length - x.length)),
    unmount: (dir) => {
      mounted.delete(dir);
      return Promise.resolve();
    },
  };
}

describe("keyPayload and downwardPayload", () => {
  const data: ObjectData = { a: b("A"), b: b("B"), c: b("C") };
  it("all keys with defaultMode; items pick keys, paths and modes", () => {
    const all = keyPayload(data, { kind: "configmap", name: "cm", items: undefined, optional: false }, 0o640);
    assert.deepEqual([...all.entries()].map(([k, f]) => [k, f.data.toString(), f.mode]), [["a", "A", 0o640], ["b", "B", 0o640], ["c", "C", 0o640]]);
    const some = keyPayload(data, { kind: "configmap", name: "cm", items: [{ key: "b", path: "dir/bee" }, { key: "c", path: "see", mode: 0o400 }], optional: false }, 0o644);
    assert.deepEqual([...some.entries()].map(([k, f]) => [k, f.data.toString(), f.mode]), [["dir/bee", "B", 0o644], ["see", "C", 0o400]]);
  });
  it("missing objects and keys: upstream messages, or nothing when optional", () => {
    assert.throws(() => keyPayload(undefined, { kind: "configmap", name: "cm", items: undefined, optional: false }, 0o644), /^VolumeError: configmap "cm" not found$/);
    assert.throws(() => keyPayload(undefined, { kind: "secret", name: "s", items: undefined, optional: false }, 0o644), /secret "s" not found/);
    assert.throws(() => keyPayload(data, { kind: "configmap", name: "cm", items: [{ key: "zz", path: "z" }], optional: false }, 0o644), /configmap references non-existent config key: zz/);
    assert.throws(() => keyPayload(data, { kind: "secret", name: "s", items: [{ key: "zz", path: "z" }], optional: false }, 0o644), /references non-existent secret key: zz/);
    assert.equal(keyPayload(undefined, { kind: "configmap", name: "cm", items: undefined, optional: true }, 0o644).size, 0);
    assert.equal(keyPayload(data, { kind: "secret", name: "s", items: [{ key: "zz", path: "z" }, { key: "a", path: "a" }], optional: true }, 0o644).size, 1);
  });
  it("downward API files: fields, labels formatted as upstream, resources", () => {
    const pod: V1Pod = {
      metadata: { name: "p", namespace: "ns", uid: "u", labels: { b: "2", a: "1" }, annotations: { note: 'say "hi"' } },
      spec: { containers: [{ name: "c", resources: { limits: { memory: "256Mi" } } }] },
    };
    const p = downwardPayload(
      pod,
      [
        { path: "name", fieldRef: { fieldPath: "metadata.name" } },
        { path: "labels", fieldRef: { fieldPath: "metadata.labels" }, mode: 0o600 },
        { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
        { path: "one", fieldRef: { fieldPath: "metadata.labels['a']" } },
        { path: "mem", resourceFieldRef: { containerName: "c", resource: "limits.memory", divisor: "1Mi" } },
        { path: "cpu", resourceFieldRef: { containerName: "c", resource: "limits.cpu", divisor: "1m" } },
      ],
      { defaultMode: 0o644, allocatable: { cpu: 2 } },
    );
    const text = Object.fromEntries([...p.entries()].map(([k, f]) => [k, f.data.toString()]));
    assert.deepEqual(text, { name: "p", labels: 'a="1"\nb="2"', annotations: 'note="say \\"hi\\""', one: "1", mem: "256", cpu: "2000" });
    assert.equal(p.get("labels")?.mode, 0o600);
  });
});

describe("hostPath type checks", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tsk-hostpath-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("Directory / File / Socket / CharDevice / BlockDevice, with upstream's messages", async () => {
    await writeFile(join(dir, "f"), "x");
    await mkdir(join(dir, "d"));
    await checkHostPath(join(dir, "d"), "Directory");
    await checkHostPath(join(dir, "f"), "File");
    await checkHostPath("/dev/null", "CharDevice");
    await checkHostPath(join(dir, "whatever"), undefined);
    await checkHostPath(join(dir, "whatever"), "");
    await assert.rejects(checkHostPath(join(dir, "missing"), "Directory"), { message: `hostPath type check failed: ${join(dir, "missing")} is not a directory` });
    await assert.rejects(checkHostPath(join(dir, "f"), "Directory"), /is not a directory/);
    await assert.rejects(checkHostPath(join(dir, "d"), "File"), { message: `hostPath type check failed: ${join(dir, "d")} is not a file` });
    await assert.rejects(checkHostPath(join(dir, "f"), "Socket"), /is not a socket file/);
    await assert.rejects(checkHostPath(join(dir, "f"), "CharDevice"), /is not a character device/);
    await assert.rejects(checkHostPath("/dev/null", "BlockDevice"), /is not a block device/);
    await assert.rejects(checkHostPath(join(dir, "f"), "Weird"), /invalid HostPathType/);
    await assert.rejects(checkHostPath("relative/path", ""), /absolute/);
    await assert.rejects(checkHostPath(`${dir}/../etc`, ""), /must not contain '..'/);
  });

  it("a unix socket passes Socket", async () => {
    const sock = join(dir, "s.sock");
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(sock, r));
    try {
      await checkHostPath(sock, "Socket");
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it("DirectoryOrCreate creates (0755, with parents); FileOrCreate creates an empty 0644 file", async () => {
    const d = join(dir, "new/nested");
    await checkHostPath(d, "DirectoryOrCreate");
    assert.ok((await stat(d)).isDirectory());
    assert.equal((await stat(d)).mode & 0o777, 0o755);
    const f = join(dir, "new/file");
    await checkHostPath(f, "FileOrCreate");
    assert.equal((await stat(f)).size, 0);
    assert.equal((await stat(f)).mode & 0o777, 0o644);
    await assert.rejects(checkHostPath(f, "DirectoryOrCreate"), /is not a directory/);
  });
});

describe("volume manager", () => {
  let root: string;
  let host: string;
  const clock = new FakeClock();
  const objects: Record<string, ObjectData> = {};
  const source: ObjectSource = {
    configMap: (ns, name) => Promise.resolve(objects[`cm/${ns}/${name}`]),
    secret: (ns, name) => Promise.resolve(objects[`secret/${ns}/${name}`]),
  };
  const requests: { ns: string; sa: string; spec: unknown }[] = [];
  const requestToken: TokenRequester = (ns, sa, spec) => {
    requests.push({ ns, sa, spec });
    return Promise.resolve({ token: `token-${requests.length}`, expirationSeconds: spec.expirationSeconds });
  };
  const events: string[] = [];
  let mounter: ReturnType<typeof fakeMounter>;
  let vm: VolumeManager;
  let firstPod: V1Pod = {};

  const mkPod = (uid: string, volumes: V1Volume[], mounts: NonNullable<NonNullable<V1Pod["spec"]>["containers"][number]["volumeMounts"]> = []): V1Pod => ({
    metadata: { name: `pod-${uid}`, namespace: "ns", uid, labels: { app: "x" } },
    spec: { serviceAccountName: "robot", containers: [{ name: "c", image: "busybox", volumeMounts: mounts }], volumes },
  });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tsk-vm-"));
    host = await mkdtemp(join(tmpdir(), "tsk-vm-host-"));
    mounter = fakeMounter();
    vm = createVolumeManager(
      { api: undefined, clock, logger: memoryLogger().logger, events: (_p, type, reason, message) => events.push(`${type} ${reason} ${message}`), allocatable: () => ({ cpu: 2, memory: 2 ** 30 }), mounter, objects: source, requestToken },
      { rootDir: root, refreshMs: 60_000 },
    );
  });
  after(async () => {
    await Promise.all([rm(root, { recursive: true, force: true }), rm(host, { recursive: true, force: true })]);
  });

  it("sets up emptyDir (disk and Memory), configMap, secret, downwardAPI and projected under <root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>", async () => {
    objects["cm/ns/settings"] = { "app.conf": b("v=1"), other: b("o") };
    objects["secret/ns/creds"] = { password: b("hunter2") };
    objects["cm/ns/kube-root-ca.crt"] = { "ca.crt": b("-----CA-----") };
    const pod = (firstPod = mkPod("u1", [
      { name: "scratch", emptyDir: {} },
      { name: "ram", emptyDir: { medium: "Memory", sizeLimit: "64Mi" } },
      { name: "cfg", configMap: { name: "settings", defaultMode: 0o640 } },
      { name: "sec", secret: { secretName: "creds", items: [{ key: "password", path: "pw", mode: 0o400 }] } },
      { name: "info", downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] } },
      {
        name: "kube-api-access-abcde",
        projected: {
          defaultMode: 0o644,
          sources: [
            { serviceAccountToken: { path: "token", expirationSeconds: 3607 } },
            { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
            { downwardAPI: { items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }] } },
          ],
        },
      },
    ]));
    assert.deepEqual(await vm.setUp(pod), []);
    const v = (plugin: string, name: string, file = ""): string => join(root, "pods", "u1", "volumes", `kubernetes.io~${plugin}`, name, file);
    assert.ok((await stat(v("empty-dir", "scratch"))).isDirectory());
    assert.equal((await stat(v("empty-dir", "scratch"))).mode & 0o777, 0o777);
    assert.deepEqual([...mounter.mounted].sort(), [v("empty-dir", "ram"), v("projected", "kube-api-access-abcde"), v("secret", "sec")].map((p) => p.replace(/\/$/, "")).sort(), "tmpfs for Memory emptyDir, secret and projected");
    assert.equal(await readFile(v("configmap", "cfg", "app.conf"), "utf8"), "v=1");
    assert.equal((await stat(v("configmap", "cfg", "app.conf"))).mode & 0o777, 0o640);
    assert.equal(await readlink(v("configmap", "cfg", "app.conf")), "..data/app.conf");
    assert.equal(await readFile(v("secret", "sec", "pw"), "utf8"), "hunter2");
    assert.equal((await stat(v("secret", "sec", "pw"))).mode & 0o777, 0o400);
    assert.equal(await readFile(v("downward-api", "info", "labels"), "utf8"), 'app="x"');
    assert.equal(await readFile(v("projected", "kube-api-access-abcde", "token"), "utf8"), "token-1");
    assert.equal(await readFile(v("projected", "kube-api-access-abcde", "ca.crt"), "utf8"), "-----CA-----");
    assert.equal(await readFile(v("projected", "kube-api-access-abcde", "namespace"), "utf8"), "ns");
    assert.deepEqual(requests[0], {
      ns: "ns",
      sa: "robot",
      spec: { audiences: [], expirationSeconds: 3607, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "pod-u1", uid: "u1" } },
    });
    // Idempotent: a second setUp asks for nothing again.
    assert.deepEqual(await vm.setUp(pod), []);
    assert.equal(requests.length, 1);
  });

  it("refresh rewrites changed ConfigMaps atomically; label changes reach downward API files on the next setUp", async () => {
    objects["cm/ns/settings"] = { "app.conf": b("v=2") };
    await vm.refresh();
    const dir = join(root, "pods/u1/volumes/kubernetes.io~configmap/cfg");
    assert.equal(await readFile(join(dir, "app.conf"), "utf8"), "v=2");
    await assert.rejects(lstat(join(dir, "other")), "a removed key disappears");
    const pod: V1Pod = { ...firstPod, metadata: { ...firstPod.metadata, labels: { app: "y", tier: "web" } } };
    await vm.setUp(pod);
    assert.equal(await readFile(join(root, "pods/u1/volumes/kubernetes.io~downward-api/info/labels"), "utf8"), 'app="y"\ntier="web"');
  });

  it("a refresh that fails keeps the old contents and records FailedMount", async () => {
    delete objects["cm/ns/settings"];
    events.length = 0;
    await vm.refresh();
    assert.equal(await readFile(join(root, "pods/u1/volumes/kubernetes.io~configmap/cfg/app.conf"), "utf8"), "v=2");
    assert.ok(events.includes('Warning FailedMount MountVolume.SetUp failed for volume "cfg" : configmap "settings" not found'), events.join("\n"));
  });

  it("failures name the volume in upstream's words; other volumes still get set up", async () => {
    const pod = mkPod("u2", [
      { name: "missing-cm", configMap: { name: "absent" } },
      { name: "optional-cm", configMap: { name: "absent", optional: true } },
      { name: "bad-key", secret: { secretName: "creds", items: [{ key: "nope", path: "x" }] } },
      { name: "no-dir", hostPath: { path: join(host, "does-not-exist"), type: "Directory" } },
      { name: "pvc", persistentVolumeClaim: { claimName: "data" } },
      { name: "fine", emptyDir: {} },
    ]);
    const failures = await vm.setUp(pod);
    assert.deepEqual(
      failures.map((f) => f.message),
      [
        'MountVolume.SetUp failed for volume "missing-cm" : configmap "absent" not found',
        'MountVolume.SetUp failed for volume "bad-key" : references non-existent secret key: nope',
        `MountVolume.SetUp failed for volume "no-dir" : hostPath type check failed: ${join(host, "does-not-exist")} is not a directory`,
        'MountVolume.SetUp failed for volume "pvc" : volume type persistentVolumeClaim is not supported by tskubelet',
      ],
    );
    assert.ok((await stat(join(root, "pods/u2/volumes/kubernetes.io~empty-dir/fine"))).isDirectory());
    // Once the ConfigMap exists, the next setUp succeeds for it.
    objects["cm/ns/absent"] = { k: b("v") };
    const again = await vm.setUp(pod);
    assert.deepEqual(again.map((f) => f.volume), ["bad-key", "no-dir", "pvc"]);
  });

  it("mountsFor: host paths, readOnly (always for API volumes), propagation, subPath and subPathExpr", async () => {
    await mkdir(join(host, "data"));
    const pod = mkPod(
      "u3",
      [
        { name: "work", emptyDir: {} },
        { name: "cfg", configMap: { name: "absent" } },
        { name: "hp", hostPath: { path: join(host, "data"), type: "Directory" } },
      ],
      [
        { name: "work", mountPath: "/work" },
        { name: "work", mountPath: "/logs", subPath: "logs/app" },
        { name: "work", mountPath: "/per-pod", subPathExpr: "$(POD)" },
        { name: "cfg", mountPath: "/etc/cfg" },
        { name: "cfg", mountPath: "/etc/k", subPath: "k" },
        { name: "hp", mountPath: "/data", readOnly: true, mountPropagation: "HostToContainer" },
      ],
    );
    assert.deepEqual(await vm.setUp(pod), []);
    const c = pod.spec?.containers[0];
    assert.ok(c);
    const mounts = await vm.mountsFor(pod, c, { POD: "pod-u3" });
    const vol = (p: string, n: string): string => join(root, "pods/u3/volumes", `kubernetes.io~${p}`, n);
    const cfgData = await readlink(join(vol("configmap", "cfg"), "..data"));
    assert.deepEqual(mounts, [
      { containerPath: "/work", hostPath: vol("empty-dir", "work"), readonly: false, selinuxRelabel: false, propagation: "PROPAGATION_PRIVATE" },
      { containerPath: "/logs", hostPath: join(vol("empty-dir", "work"), "logs/app"), readonly: false, selinuxRelabel: false, propagation: "PROPAGATION_PRIVATE" },
      { containerPath: "/per-pod", hostPath: join(vol("empty-dir", "work"), "pod-u3"), readonly: false, selinuxRelabel: false, propagation: "PROPAGATION_PRIVATE" },
      { containerPath: "/etc/cfg", hostPath: vol("configmap", "cfg"), readonly: true, selinuxRelabel: false, propagation: "PROPAGATION_PRIVATE" },
      { containerPath: "/etc/k", hostPath: join(vol("configmap", "cfg"), cfgData, "k"), readonly: true, selinuxRelabel: false, propagation: "PROPAGATION_PRIVATE" },
      { containerPath: "/data", hostPath: join(host, "data"), readonly: true, selinuxRelabel: false, propagation: "PROPAGATION_HOST_TO_CONTAINER" },
    ]);
    assert.ok((await stat(join(vol("empty-dir", "work"), "logs/app"))).isDirectory(), "a missing subPath is created");
  });

  it("mountsFor refuses escapes and unknown volumes", async () => {
    const pod = mkPod("u4", [{ name: "work", emptyDir: {} }]);
    await vm.setUp(pod);
    await symlink("/etc", join(root, "pods/u4/volumes/kubernetes.io~empty-dir/work/escape"));
    const tryMount = (m: { name: string; mountPath: string; subPath?: string }): Promise<unknown> => vm.mountsFor(pod, { name: "c", volumeMounts: [m] }, {});
    await assert.rejects(tryMount({ name: "work", mountPath: "/x", subPath: "escape" }), (e: unknown) => e instanceof ContainerConfigError && e.message === 'failed to prepare subPath for volumeMount "work" of container "c"');
    await assert.rejects(tryMount({ name: "work", mountPath: "/x", subPath: "../../etc" }), /must not contain '..'/);
    await assert.rejects(tryMount({ name: "work", mountPath: "/x", subPath: "/etc" }), /must not be an absolute path/);
    await assert.rejects(tryMount({ name: "nope", mountPath: "/x" }), { message: 'cannot find volume "nope" to mount into container "c"' });
  });

  it("tearDown unmounts and removes the pod's directory, and forgets its tokens", async () => {
    const dir = join(root, "pods/u1");
    assert.ok([...mounter.mounted].some((m) => m.startsWith(dir)));
    await vm.tearDown("u1");
    assert.ok(![...mounter.mounted].some((m) => m.startsWith(dir)), "nothing left mounted");
    await assert.rejects(lstat(dir));
    await vm.tearDown("u1"); // idempotent
  });

  it("standalone: API-backed volumes fail clearly, the rest works", async () => {
    const standalone = createVolumeManager({ api: undefined, clock, logger: memoryLogger().logger, events: () => undefined, allocatable: () => ({}), mounter: fakeMounter() }, { rootDir: root, refreshMs: 60_000 });
    const failures = await standalone.setUp(
      mkPod("u5", [
        { name: "cfg", configMap: { name: "x" } },
        { name: "tok", projected: { sources: [{ serviceAccountToken: { path: "token" } }] } },
        { name: "d", downwardAPI: { items: [{ path: "n", fieldRef: { fieldPath: "metadata.name" } }] } },
        { name: "e", emptyDir: {} },
      ]),
    );
    assert.deepEqual(failures.map((f) => f.message), [
      'MountVolume.SetUp failed for volume "cfg" : cannot setup configMap volume cfg because kube client is not configured (tskubelet runs standalone, without --kubeconfig)',
      'MountVolume.SetUp failed for volume "tok" : cannot setup projected volume tok because kube client is not configured (tskubelet runs standalone, without --kubeconfig)',
    ]);
    assert.equal(await readFile(join(root, "pods/u5/volumes/kubernetes.io~downward-api/d/n"), "utf8"), "pod-u5");
    assert.equal(standalone.envLookup, undefined);
  });
});
