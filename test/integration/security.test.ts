/**
 * Security contexts on a real containerd through the real tskubelet command, standalone (static
 * pods): users and groups, fsGroup volume ownership, runAsNonRoot against a root image, a read-only
 * root filesystem, capabilities, privileged, no_new_privs, seccomp, host namespaces, and sysctls
 * (safe, allowed unsafe, and forbidden at admission).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readlink } from "node:fs/promises";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { containerState, scriptOutput, staticPodYaml, waitForState } from "../support/pods.js";
import { startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";
import { removeCgroup } from "../../src/containers/cgroups.js";
import { podCgroupParent } from "../../src/containers/resources.js";

const IMAGE = "tskubelet.local/busybox:1.35";
const DONE = "; echo END; sleep 3600";

/** A static pod: `spec` holds extra spec lines (two-space indent), `containers` the container blocks. */
function manifest(name: string, containers: string, spec = ""): string {
  return staticPodYaml(name, `${spec}  containers:
${containers}`);
}

/** A container block; `extra` are further container lines (four-space indent). */
function container(name: string, script: string, extra = ""): string {
  return `  - name: ${name}
    image: ${IMAGE}
    command: ["sh", "-c", ${JSON.stringify(script + DONE)}]
${extra}`;
}

describe("security contexts on containerd (standalone)", () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;

  const output = (pod: string, c: string): Promise<string> => scriptOutput(k, pod, c);

  before(async () => {
    rt = await startContainerd({ cni: true });
    k = await startTskubelet(rt, { extraArgs: ["--allowed-unsafe-sysctls=kernel.msg*"] });
    await Promise.all([
      k.writeManifest(
        "ids.yaml",
        manifest(
          "ids",
          container("main", "id; ls -ldn /data | awk '{print \"data\", $1, $4}'; touch /data/new; ls -ln /data/new | awk '{print \"new\", $4}'; cat /info/name >/dev/null && echo INFO-READABLE; ls -ln /info/..data/name | awk '{print \"info\", $1, $4}'", "    volumeMounts:\n    - {name: data, mountPath: /data}\n    - {name: info, mountPath: /info}\n") +
            container("override", "id", "    securityContext: {runAsUser: 1001, runAsGroup: 3001}\n"),
          `  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
    supplementalGroups: [4000]
  volumes:
  - name: data
    emptyDir: {}
  - name: info
    downwardAPI:
      defaultMode: 0400
      items:
      - path: name
        fieldRef: {fieldPath: metadata.name}
`,
        ),
      ),
      k.writeManifest("nonroot.yaml", manifest("nonroot", container("main", "id"), "  securityContext: {runAsNonRoot: true}\n")),
      k.writeManifest("nonroot-ok.yaml", manifest("nonroot-ok", container("main", "id"), "  securityContext: {runAsNonRoot: true, runAsUser: 1234}\n")),
      k.writeManifest("rootfs.yaml", manifest("rootfs", container("main", "touch /x 2>/dev/null && echo ROOT-WRITE-OK || echo ROOT-WRITE-FAILED; touch /tmp/y 2>/dev/null && echo TMP-WRITE-OK || echo TMP-WRITE-FAILED", "    securityContext: {readOnlyRootFilesystem: true}\n"))),
      k.writeManifest(
        "caps.yaml",
        manifest(
          "caps",
          container("dropall", "chown 1 /tmp && echo CHOWN-OK || echo CHOWN-FAILED", "    securityContext:\n      capabilities: {drop: [ALL]}\n") +
            container("plain", "chown 1 /tmp && echo CHOWN-OK || echo CHOWN-FAILED; ip link set lo mtu 1500 && echo NETADMIN-OK || echo NETADMIN-FAILED") +
            container("netadmin", "ip link set lo mtu 1500 && echo NETADMIN-OK || echo NETADMIN-FAILED", "    securityContext:\n      capabilities: {add: [NET_ADMIN]}\n"),
        ),
      ),
      k.writeManifest(
        "priv.yaml",
        manifest(
          "priv",
          container("privileged", "echo loops=$(ls /dev | grep -c '^loop')", "    securityContext: {privileged: true}\n") + container("normal", "echo loops=$(ls /dev | grep -c '^loop')"),
        ),
      ),
      k.writeManifest(
        "nnp.yaml",
        manifest(
          "nnp",
          container("noescalation", "grep NoNewPrivs /proc/self/status", "    securityContext: {allowPrivilegeEscalation: false}\n") + container("default", "grep NoNewPrivs /proc/self/status"),
        ),
      ),
      k.writeManifest(
        "seccomp.yaml",
        manifest(
          "seccomp",
          container("runtimedefault", "grep '^Seccomp:' /proc/self/status") +
            container("unconfined", "grep '^Seccomp:' /proc/self/status", "    securityContext:\n      seccompProfile: {type: Unconfined}\n") +
            container("unset", "grep '^Seccomp:' /proc/self/status", "    securityContext: {}\n"),
          "  securityContext:\n    seccompProfile: {type: RuntimeDefault}\n",
        ),
      ),
      k.writeManifest("hostns.yaml", manifest("hostns", container("main", "echo pid1=$(cat /proc/1/comm); echo ipc=$(readlink /proc/self/ns/ipc)"), "  hostPID: true\n  hostIPC: true\n")),
      k.writeManifest("podns.yaml", manifest("podns", container("main", "echo pid1=$(cat /proc/1/comm); echo ipc=$(readlink /proc/self/ns/ipc)"))),
      k.writeManifest(
        "sysctl-safe.yaml",
        manifest(
          "sysctl-safe",
          container("main", "echo port_start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); echo shm=$(cat /proc/sys/kernel/shm_rmid_forced); echo msgmax=$(cat /proc/sys/kernel/msgmax)"),
          "  securityContext:\n    sysctls:\n    - {name: net.ipv4.ip_unprivileged_port_start, value: \"100\"}\n    - {name: kernel.shm_rmid_forced, value: \"1\"}\n    - {name: kernel/msgmax, value: \"12345\"}\n",
        ),
      ),
      k.writeManifest("sysctl-unsafe.yaml", manifest("sysctl-unsafe", container("main", "true"), "  securityContext:\n    sysctls:\n    - {name: net.core.somaxconn, value: \"1000\"}\n")),
    ]);
  });
  after(async () => {
    // Pod cgroups outlive their containers when containerd, not tskubelet, removes the pods.
    const cgroups = ((await k?.pods().catch(() => [])) ?? []).map((p) => podCgroupParent(p));
    await k?.cleanup();
    await rt?.stop();
    for (const c of cgroups) await removeCgroup(c);
  });

  it("runAsUser, runAsGroup, fsGroup and supplementalGroups; the container's fields win", async () => {
    const out = await output("ids", "main");
    assert.match(out, /^uid=1000 gid=3000 groups=.*\b2000\b/m, out);
    assert.match(out, /^uid=1000 gid=3000 groups=.*\b4000\b/m, out);
    assert.match(await output("ids", "override"), /^uid=1001 gid=3001 /m);
  });

  it("fsGroup: an emptyDir is group-owned and setgid, new files inherit the group; downwardAPI files are group-readable", async () => {
    const out = await output("ids", "main");
    assert.match(out, /^data drwxrwsrwx 2000$/m, out);
    assert.match(out, /^new 2000$/m, out);
    assert.match(out, /^INFO-READABLE$/m, "user 1000 reads a 0400 root-owned file through its group");
    assert.match(out, /^info -r--r----- 2000$/m, out);
  });

  it("runAsNonRoot with a root image: CreateContainerConfigError with upstream's message; other pods unaffected", async () => {
    const p = await waitFor(async () => {
      const x = await k.pod("nonroot");
      return containerState(x, "main") === "waiting:CreateContainerConfigError" ? x : undefined;
    }, { timeoutMs: 60_000, what: () => "nonroot in CreateContainerConfigError" });
    const want = `container has runAsNonRoot and image will run as root (pod: "nonroot-${k.nodeName}_default(${p.metadata?.uid ?? ""})", container: main)`;
    assert.equal(p.status?.containerStatuses?.[0]?.state?.waiting?.message, want);
    assert.match(await output("nonroot-ok", "main"), /^uid=1234 /m, "runAsNonRoot with a non-zero runAsUser runs");
    // The worker publishes once every container it starts in that sync has started.
    await waitForState(k, "ids", "main", "running");
  });

  it("readOnlyRootFilesystem: writing to the root filesystem fails", async () => {
    const out = await output("rootfs", "main");
    assert.match(out, /^ROOT-WRITE-FAILED$/m);
    assert.match(out, /^TMP-WRITE-FAILED$/m);
  });

  it("capabilities: drop ALL makes chown fail; add NET_ADMIN allows changing a link", async () => {
    assert.match(await output("caps", "dropall"), /^CHOWN-FAILED$/m);
    const plain = await output("caps", "plain");
    assert.match(plain, /^CHOWN-OK$/m, "the default set has CAP_CHOWN");
    assert.match(plain, /^NETADMIN-FAILED$/m, "the default set lacks CAP_NET_ADMIN");
    assert.match(await output("caps", "netadmin"), /^NETADMIN-OK$/m);
  });

  it("privileged: the container sees the node's devices", async () => {
    const priv = await output("priv", "privileged");
    const m = /^loops=(\d+)$/m.exec(priv);
    assert.ok(m && Number(m[1]) > 0, `privileged sees loop devices: ${priv}`);
    assert.match(await output("priv", "normal"), /^loops=0$/m);
  });

  it("allowPrivilegeEscalation false sets no_new_privs; unset leaves it off", async () => {
    assert.match(await output("nnp", "noescalation"), /^NoNewPrivs:\s+1$/m);
    assert.match(await output("nnp", "default"), /^NoNewPrivs:\s+0$/m);
  });

  it("seccomp: RuntimeDefault (from the pod) filters, Unconfined does not", async () => {
    assert.match(await output("seccomp", "runtimedefault"), /^Seccomp:\s+2$/m);
    assert.match(await output("seccomp", "unconfined"), /^Seccomp:\s+0$/m);
    assert.match(await output("seccomp", "unset"), /^Seccomp:\s+2$/m, "the pod's profile applies when the container sets none");
  });

  it("hostPID and hostIPC share the node's namespaces; without them the pod has its own", async () => {
    const nodeIpc = await readlink("/proc/self/ns/ipc");
    const host = await output("hostns", "main");
    assert.match(host, new RegExp(`^ipc=${nodeIpc.replace(/[[\]]/g, "\\$&")}$`, "m"));
    assert.doesNotMatch(host, /^pid1=sh$/m);
    const own = await output("podns", "main");
    assert.match(own, /^pid1=sh$/m);
    assert.doesNotMatch(own, new RegExp(`^ipc=${nodeIpc.replace(/[[\]]/g, "\\$&")}$`, "m"));
  });

  it("sysctls: safe ones and allowed unsafe ones (slash-separated too) are set in the pod's namespaces", async () => {
    const out = await output("sysctl-safe", "main");
    assert.match(out, /^port_start=100$/m);
    assert.match(out, /^shm=1$/m);
    assert.match(out, /^msgmax=12345$/m);
  });

  it("an unsafe sysctl not allowed is rejected at admission with SysctlForbidden", async () => {
    const p = await waitFor(async () => {
      const x = await k.pod("sysctl-unsafe");
      return x?.status?.phase === "Failed" ? x : undefined;
    }, { timeoutMs: 30_000, what: () => "sysctl-unsafe Failed" });
    assert.equal(p.status?.reason, "SysctlForbidden");
    assert.equal(p.status?.message, 'forbidden sysctl: "net.core.somaxconn" not allowlisted');
    await waitForState(k, "sysctl-safe", "main", "running");
  });
});
