/**
 * Volumes on a real containerd through the real tskubelet command, standalone (static pods):
 * emptyDir shared between containers, emptyDir on tmpfs, hostPath type checks, downward API files,
 * subPath, readOnly, clear failures for API-backed volumes and env without an apiserver, and
 * cleanup when the pod goes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { containerState, readContainerLog, waitForState } from "../support/pods.js";
import { startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";
import { readMountPoints } from "../../src/volumes/mounter.js";

const IMAGE = "tskubelet.local/busybox:1.35";

/** A static pod manifest: `containers` and `volumes` are YAML blocks indented by two spaces. */
function manifest(name: string, containers: string, volumes: string, extra = ""): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels:
    app: ${name}
    tier: backend
  annotations:
    note: volumes-test
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Always
${extra}  containers:
${containers}  volumes:
${volumes}`;
}

function container(name: string, script: string, mounts: string): string {
  return `  - name: ${name}
    image: ${IMAGE}
    command: ["sh", "-c", ${JSON.stringify(script)}]
    volumeMounts:
${mounts}`;
}

describe("volumes on containerd (standalone)", () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let hostDir: string;

  const logOf = (pod: string, c: string): Promise<string> => readContainerLog(k, pod, c);
  const waitLog = (pod: string, c: string, re: RegExp): Promise<string> =>
    waitFor(async () => {
      const t = await logOf(pod, c);
      return re.test(t) ? t : undefined;
    }, { timeoutMs: 40_000, what: () => `${pod}/${c} to log ${re.source}` });

  before(async () => {
    rt = await startContainerd({ cni: true });
    k = await startTskubelet(rt);
    hostDir = join(k.dir, "host");
    await mkdir(join(hostDir, "shared/sub"), { recursive: true });
    await writeFile(join(hostDir, "shared/sub/greeting"), "hello from the host\n");
    const done = "; sleep 3600";
    await Promise.all([
      k.writeManifest(
        "shared.yaml",
        manifest(
          "shared",
          container("writer", `echo written-by-writer > /scratch/msg${done}`, "    - name: scratch\n      mountPath: /scratch\n") +
            container("reader", `until [ -f /data/msg ]; do sleep 0.2; done; echo "reader saw: $(cat /data/msg)"${done}`, "    - name: scratch\n      mountPath: /data\n"),
          "  - name: scratch\n    emptyDir: {}\n",
        ),
      ),
      k.writeManifest(
        "memory.yaml",
        manifest("memory", container("main", `grep ' /cache ' /proc/mounts${done}`, "    - name: cache\n      mountPath: /cache\n"), "  - name: cache\n    emptyDir:\n      medium: Memory\n      sizeLimit: 16Mi\n"),
      ),
      k.writeManifest(
        "downward.yaml",
        manifest(
          "downward",
          container("main", `for f in name ns labels tier cpu; do echo "$f=$(cat /info/$f)"; done${done}`, "    - name: info\n      mountPath: /info\n"),
          `  - name: info
    downwardAPI:
      defaultMode: 0400 # YAML 1.1 octal, as upstream reads manifests
      items:
      - path: name
        fieldRef: {fieldPath: metadata.name}
      - path: ns
        fieldRef: {fieldPath: metadata.namespace}
      - path: labels
        fieldRef: {fieldPath: metadata.labels}
      - path: tier
        fieldRef: {fieldPath: "metadata.labels['tier']"}
      - path: cpu
        resourceFieldRef: {containerName: main, resource: limits.cpu, divisor: 1m}
`,
        ).replace("    volumeMounts:", "    resources:\n      limits: {cpu: 250m, memory: 64Mi}\n    volumeMounts:"),
      ),
      k.writeManifest(
        "paths.yaml",
        manifest(
          "paths",
          container(
            "main",
            `cat /greet/greeting; ls -d /mnt/all/nested/dir && echo subpath-dir-ok; touch /ro/x 2>/dev/null && echo WRITE-OK || echo WRITE-FAILED; touch /rw/x && echo RW-OK${done}`,
            "    - name: host\n      mountPath: /greet\n      subPath: sub\n    - name: work\n      mountPath: /mnt/nested\n      subPath: nested/dir\n    - name: work\n      mountPath: /mnt/all\n    - name: work\n      mountPath: /ro\n      readOnly: true\n    - name: work\n      mountPath: /rw\n",
          ),
          `  - name: host\n    hostPath:\n      path: ${join(hostDir, "shared")}\n      type: Directory\n  - name: work\n    emptyDir: {}\n`,
        ),
      ),
      k.writeManifest(
        "nodir.yaml",
        manifest("nodir", container("main", "sleep 3600", "    - name: missing\n      mountPath: /m\n"), `  - name: missing\n    hostPath:\n      path: ${join(hostDir, "does-not-exist")}\n      type: Directory\n`),
      ),
      k.writeManifest(
        "needs-api.yaml",
        manifest("needs-api", container("main", "sleep 3600", "    - name: cfg\n      mountPath: /cfg\n"), "  - name: cfg\n    configMap:\n      name: settings\n"),
      ),
      k.writeManifest(
        "env-api.yaml",
        manifest("env-api", container("main", "sleep 3600", "    - name: e\n      mountPath: /e\n").replace("    volumeMounts:", "    env:\n    - name: LEVEL\n      valueFrom:\n        configMapKeyRef: {name: settings, key: level}\n    volumeMounts:"), "  - name: e\n    emptyDir: {}\n"),
      ),
    ]);
  });
  after(async () => {
    await k?.cleanup();
    await rt?.stop();
  });

  it("an emptyDir is shared by two containers of the pod", async () => {
    const log = await waitLog("shared", "reader", /reader saw: written-by-writer/);
    assert.match(log, /stdout F reader saw: written-by-writer$/m);
    const p = await k.pod("shared");
    const dir = join(k.dir, "pods", p?.metadata?.uid ?? "", "volumes/kubernetes.io~empty-dir/scratch");
    assert.equal(await readFile(join(dir, "msg"), "utf8"), "written-by-writer\n", `the volume lives in ${dir}`);
  });

  it("an emptyDir with medium Memory is a tmpfs (inside the container and on the node)", async () => {
    const log = await waitLog("memory", "main", / \/cache tmpfs /);
    assert.match(log, /tmpfs \/cache tmpfs rw/);
    assert.match(log, /size=16384k/);
    const p = await k.pod("memory");
    const dir = join(k.dir, "pods", p?.metadata?.uid ?? "", "volumes/kubernetes.io~empty-dir/cache");
    assert.ok((await readMountPoints()).includes(dir), `${dir} is a mount point on the node`);
  });

  it("downwardAPI volume files hold the pod's fields, labels and resources, with defaultMode", async () => {
    const log = await waitLog("downward", "main", /cpu=/);
    assert.match(log, new RegExp(`name=downward-${k.nodeName}$`, "m"));
    assert.match(log, /ns=default$/m);
    assert.match(log, /labels=app="downward"$/m);
    assert.match(log, /^.* stdout F tier="backend"$/m, "labels are one key=\"value\" per line");
    assert.match(log, /tier=backend$/m);
    assert.match(log, /cpu=250$/m);
    const p = await k.pod("downward");
    const dir = join(k.dir, "pods", p?.metadata?.uid ?? "", "volumes/kubernetes.io~downward-api/info");
    assert.ok((await lstat(join(dir, "name"))).isSymbolicLink(), "files are ..data symlinks");
    const st = await import("node:fs/promises").then((fs) => fs.stat(join(dir, "name")));
    assert.equal(st.mode & 0o777, 0o400);
  });

  it("subPath (hostPath and emptyDir, created when missing) and readOnly (writes fail)", async () => {
    const log = await waitLog("paths", "main", /RW-OK/);
    assert.match(log, /stdout F hello from the host$/m);
    assert.match(log, /subpath-dir-ok$/m);
    assert.match(log, /WRITE-FAILED$/m);
    assert.doesNotMatch(log, /WRITE-OK/);
  });

  it("a hostPath Directory that does not exist: FailedMount and ContainerCreating, while other pods run", async () => {
    const p = await waitFor(async () => {
      const x = await k.pod("nodir");
      return containerState(x, "main") === "waiting:ContainerCreating" ? x : undefined;
    }, { timeoutMs: 30_000, what: () => "nodir waiting in ContainerCreating" });
    assert.equal(p.status?.phase, "Pending");
    const want = `MountVolume.SetUp failed for volume \\"missing\\" : hostPath type check failed: ${join(hostDir, "does-not-exist")} is not a directory`;
    await waitFor(() => k.output().includes(want), { timeoutMs: 20_000, what: () => `the FailedMount event in the log:\n${k.output().slice(-3000)}` });
    assert.match(k.output(), /"event".*reason="FailedMount"/);
    await waitForState(k, "shared", "reader", "running"); // other pods unaffected
    // Once the directory exists, the pod starts (the worker retries).
    await mkdir(join(hostDir, "does-not-exist"));
    await waitFor(async () => containerState(await k.pod("nodir"), "main") === "running", { timeoutMs: 40_000, what: () => "nodir running once its directory exists" });
  });

  it("standalone: a configMap volume fails with a clear FailedMount; configMapKeyRef env with CreateContainerConfigError", async () => {
    await waitFor(async () => containerState(await k.pod("needs-api"), "main") === "waiting:ContainerCreating", { timeoutMs: 30_000, what: () => "needs-api waiting" });
    await waitFor(() => k.output().includes('MountVolume.SetUp failed for volume \\"cfg\\" : cannot setup configMap volume cfg because kube client is not configured'), {
      timeoutMs: 20_000,
      what: () => "the standalone FailedMount message",
    });
    const p = await waitFor(async () => {
      const x = await k.pod("env-api");
      return containerState(x, "main") === "waiting:CreateContainerConfigError" ? x : undefined;
    }, { timeoutMs: 30_000, what: () => "env-api in CreateContainerConfigError" });
    assert.match(p.status?.containerStatuses?.[0]?.state?.waiting?.message ?? "", /^couldn't get configMap default\/settings, no kubeClient defined/);
  });

  it("a pod's volumes are unmounted and removed when the pod goes", async () => {
    const p = await k.pod("memory");
    const podDir = join(k.dir, "pods", p?.metadata?.uid ?? "");
    await lstat(podDir);
    await k.removeManifest("memory.yaml");
    await waitFor(async () => (await lstat(podDir).then(() => false, () => true)), { timeoutMs: 30_000, what: () => `${podDir} to be removed` });
    assert.ok(!(await readMountPoints()).some((m) => m.startsWith(podDir)), "no mount left under the pod's dir");
  });
});
