import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1Pod, V1PodSecurityContext, V1SecurityContext } from "@kubernetes/client-node";
import { buildContainerConfig, makeContainerConfig } from "../../src/containers/container.js";
import { buildSandboxConfig } from "../../src/containers/sandbox.js";
import { ContainerConfigError } from "../../src/containers/env.js";
import {
  containerSecurityContext,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  effectiveSecurityContext,
  sandboxSecurityContext,
  seccompProfile,
  verifyRunAsNonRoot,
} from "../../src/containers/security.js";
import { checkSysctlPattern, normalizeSysctlName, sysctlAllowlist, sysctlNamespace } from "../../src/containers/sysctls.js";
import { admitSysctls } from "../../src/pods/admission.js";
import { createImageManager } from "../../src/pods/images.js";
import { createBackoff, IMAGE_PULL_BACKOFF } from "../../src/pods/backoff.js";
import { memoryLogger } from "../../src/util/log.js";
import { FakeClock } from "../../src/util/clock.js";
import type { Image, ImageService } from "../../src/cri/types.js";

const OPTS = { seccompProfileRoot: "/var/lib/kubelet/seccomp" };

function pod(psc: V1PodSecurityContext | undefined, csc?: V1SecurityContext, extra: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod {
  const c: V1Container = { name: "app", image: "busybox", ...(csc ? { securityContext: csc } : {}) };
  return { metadata: { name: "web", namespace: "prod", uid: "u-1" }, spec: { containers: [c], ...(psc ? { securityContext: psc } : {}), ...extra } };
}
const app = (p: V1Pod): V1Container => p.spec?.containers[0] as V1Container;
const csc = (p: V1Pod, image?: { uid?: bigint; username?: string }) => containerSecurityContext(p, app(p), image, OPTS);

describe("effective security context", () => {
  it("the container's fields win over the pod's; unset (or null) ones come from the pod", () => {
    const p = pod({ runAsUser: 1, runAsGroup: 2, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } }, { runAsUser: 10, runAsGroup: null as unknown as number });
    const e = effectiveSecurityContext(p, app(p));
    assert.equal(e.runAsUser, 10);
    assert.equal(e.runAsGroup, 2);
    assert.equal(e.runAsNonRoot, true);
    assert.deepEqual(e.seccompProfile, { type: "RuntimeDefault" });
  });
});

describe("containerSecurityContext", () => {
  it("no security context: not privileged, Unconfined seccomp, default masked and read-only paths, no user", () => {
    const sc = csc(pod(undefined));
    assert.equal(sc.privileged, false);
    assert.deepEqual(sc.seccomp, { profileType: "Unconfined", localhostRef: "" });
    assert.deepEqual(sc.maskedPaths, [...DEFAULT_MASKED_PATHS]);
    assert.deepEqual(sc.readonlyPaths, [...DEFAULT_READONLY_PATHS]);
    assert.equal(sc.runAsUser, undefined);
    assert.equal(sc.runAsUsername, undefined);
    assert.equal(sc.noNewPrivs, undefined);
    assert.equal(sc.readonlyRootfs, undefined);
    assert.equal(sc.capabilities, undefined);
    assert.deepEqual(sc.namespaceOptions, { network: "POD", pid: "CONTAINER", ipc: "POD" });
  });

  it("runAsUser / runAsGroup from the pod, overridden by the container", () => {
    assert.deepEqual(csc(pod({ runAsUser: 1000, runAsGroup: 3000 })).runAsUser, { value: 1000n });
    assert.deepEqual(csc(pod({ runAsUser: 1000, runAsGroup: 3000 })).runAsGroup, { value: 3000n });
    const sc = csc(pod({ runAsUser: 1000, runAsGroup: 3000 }, { runAsUser: 5, runAsGroup: 6 }));
    assert.deepEqual([sc.runAsUser, sc.runAsGroup], [{ value: 5n }, { value: 6n }]);
  });

  it("without runAsUser the image's uid, or else its user name, is passed on", () => {
    assert.deepEqual(csc(pod(undefined), { uid: 42n }).runAsUser, { value: 42n });
    const named = csc(pod(undefined), { username: "nginx" });
    assert.equal(named.runAsUsername, "nginx");
    assert.equal(named.runAsUser, undefined);
    assert.deepEqual(csc(pod({ runAsUser: 7 }), { username: "nginx" }).runAsUser, { value: 7n });
    assert.equal(csc(pod({ runAsUser: 7 }), { username: "nginx" }).runAsUsername, undefined);
  });

  it("fsGroup then supplementalGroups become the supplemental groups", () => {
    assert.deepEqual(csc(pod({ fsGroup: 2000, supplementalGroups: [4000, 5000] })).supplementalGroups, [2000n, 4000n, 5000n]);
    assert.equal(csc(pod({ runAsUser: 1 })).supplementalGroups, undefined);
  });

  it("readOnlyRootFilesystem, privileged, capabilities", () => {
    assert.equal(csc(pod(undefined, { readOnlyRootFilesystem: true })).readonlyRootfs, true);
    assert.equal(csc(pod(undefined, { privileged: true })).privileged, true);
    assert.deepEqual(csc(pod(undefined, { capabilities: { add: ["NET_ADMIN"], drop: ["ALL"] } })).capabilities, { addCapabilities: ["NET_ADMIN"], dropCapabilities: ["ALL"] });
  });

  it("no_new_privs only when allowPrivilegeEscalation is false (and never with privileged or CAP_SYS_ADMIN)", () => {
    assert.equal(csc(pod(undefined, { allowPrivilegeEscalation: false })).noNewPrivs, true);
    assert.equal(csc(pod(undefined, { allowPrivilegeEscalation: true })).noNewPrivs, undefined);
    assert.equal(csc(pod(undefined, { allowPrivilegeEscalation: false, privileged: true })).noNewPrivs, undefined);
    assert.equal(csc(pod(undefined, { allowPrivilegeEscalation: false, capabilities: { add: ["SYS_ADMIN"] } })).noNewPrivs, undefined);
    assert.equal(csc(pod(undefined, { allowPrivilegeEscalation: false, capabilities: { add: ["CAP_SYS_ADMIN"] } })).noNewPrivs, undefined);
  });

  it("seccomp: RuntimeDefault, Unconfined, Localhost under the profile root; the container's wins", () => {
    assert.deepEqual(csc(pod({ seccompProfile: { type: "RuntimeDefault" } })).seccomp, { profileType: "RuntimeDefault", localhostRef: "" });
    assert.deepEqual(csc(pod({ seccompProfile: { type: "RuntimeDefault" } }, { seccompProfile: { type: "Unconfined" } })).seccomp, { profileType: "Unconfined", localhostRef: "" });
    assert.deepEqual(csc(pod(undefined, { seccompProfile: { type: "Localhost", localhostProfile: "profiles/audit.json" } })).seccomp, {
      profileType: "Localhost",
      localhostRef: "/var/lib/kubelet/seccomp/profiles/audit.json",
    });
    assert.deepEqual(seccompProfile(undefined, { ...OPTS, seccompDefault: true }), { profileType: "RuntimeDefault", localhostRef: "" });
  });

  it("a Localhost profile escaping the root, or missing, is a CreateContainerConfigError", () => {
    assert.throws(() => seccompProfile({ type: "Localhost", localhostProfile: "../etc/x" }, OPTS), ContainerConfigError);
    assert.throws(() => seccompProfile({ type: "Localhost", localhostProfile: "/abs.json" }, OPTS), ContainerConfigError);
    assert.throws(() => seccompProfile({ type: "Localhost" }, OPTS), ContainerConfigError);
    assert.throws(() => seccompProfile({ type: "Bogus" }, OPTS), /invalid seccomp profile type "Bogus"/);
  });

  it("a user or group that is not a non-negative integer: CreateContainerConfigError naming the field; the sandbox leaves it out", () => {
    const bad = pod({ runAsUser: "root" as unknown as number, fsGroup: 1.5 });
    assert.throws(() => csc(bad), (e: unknown) => e instanceof ContainerConfigError && e.message === 'invalid securityContext.runAsUser "root": must be a non-negative integer');
    assert.throws(() => csc(pod({ supplementalGroups: [-1] })), { message: "invalid securityContext.supplementalGroups -1: must be a non-negative integer" });
    const sb = sandboxSecurityContext(bad, OPTS);
    assert.equal(sb.runAsUser, undefined);
    assert.equal(sb.supplementalGroups, undefined);
  });

  it("procMount Unmasked clears the masked and read-only paths", () => {
    const sc = csc(pod(undefined, { procMount: "Unmasked" }));
    assert.deepEqual([sc.maskedPaths, sc.readonlyPaths], [[], []]);
  });

  it("host namespaces and a shared process namespace", () => {
    assert.deepEqual(csc(pod(undefined, undefined, { hostPID: true, hostIPC: true, hostNetwork: true })).namespaceOptions, { network: "NODE", pid: "NODE", ipc: "NODE" });
    assert.equal(csc(pod(undefined, undefined, { shareProcessNamespace: true })).namespaceOptions?.pid, "POD");
  });

  it("buildContainerConfig carries the security context into linux.securityContext", () => {
    const p = pod({ runAsUser: 1000, fsGroup: 2000 }, { readOnlyRootFilesystem: true });
    const cfg = buildContainerConfig(p, app(p), { restartCount: 0, imageRef: "sha256:1", memoryCapacity: 2 ** 30, podIPs: [], hostIPs: [] });
    assert.deepEqual(cfg.linux?.securityContext?.runAsUser, { value: 1000n });
    assert.deepEqual(cfg.linux?.securityContext?.supplementalGroups, [2000n]);
    assert.equal(cfg.linux?.securityContext?.readonlyRootfs, true);
  });
});

describe("sandboxSecurityContext", () => {
  it("pod-level user, group, groups, seccomp; privileged when any container (init too) is", () => {
    const p = pod({ runAsUser: 1, runAsGroup: 2, fsGroup: 3, supplementalGroups: [4], seccompProfile: { type: "RuntimeDefault" } });
    const sc = sandboxSecurityContext(p, OPTS);
    assert.deepEqual(sc.runAsUser, { value: 1n });
    assert.deepEqual(sc.runAsGroup, { value: 2n });
    assert.deepEqual(sc.supplementalGroups, [3n, 4n]);
    assert.deepEqual(sc.seccomp, { profileType: "RuntimeDefault", localhostRef: "" });
    assert.equal(sc.privileged, false);
    const withInit = pod(undefined, undefined, { initContainers: [{ name: "init", image: "busybox", securityContext: { privileged: true } }] });
    assert.equal(sandboxSecurityContext(withInit, OPTS).privileged, true);
  });

  it("buildSandboxConfig: sysctls with slash-separated names normalized", () => {
    const p = pod({ sysctls: [{ name: "net/ipv4/ip_local_port_range", value: "1024 65000" }, { name: "kernel.shm_rmid_forced", value: "1" }] });
    const cfg = buildSandboxConfig(p, { podLogsDir: "/l", attempt: 0, resolvConf: "", clusterDNS: [], clusterDomain: "", cgroupsPerQOS: false, cgroupRoot: "" });
    assert.deepEqual(cfg.linux?.sysctls, { "net.ipv4.ip_local_port_range": "1024 65000", "kernel.shm_rmid_forced": "1" });
    assert.deepEqual(cfg.linux?.securityContext?.seccomp, { profileType: "Unconfined", localhostRef: "" });
  });
});

describe("runAsNonRoot", () => {
  const msg = (rest: string) => `${rest} (pod: "web_prod(u-1)", container: app)`;
  it("not set, or false: anything runs", () => {
    verifyRunAsNonRoot(pod(undefined), app(pod(undefined)), {});
    verifyRunAsNonRoot(pod({ runAsNonRoot: false }), app(pod({ runAsNonRoot: false })), { uid: 0n });
  });

  it("image runs as root (uid 0, or no user at all)", () => {
    const p = pod({ runAsNonRoot: true });
    assert.throws(() => verifyRunAsNonRoot(p, app(p), { uid: 0n }), (e: unknown) => e instanceof ContainerConfigError && e.message === msg("container has runAsNonRoot and image will run as root"));
    assert.throws(() => verifyRunAsNonRoot(p, app(p), {}), { message: msg("container has runAsNonRoot and image will run as root") });
    assert.throws(() => verifyRunAsNonRoot(p, app(p), undefined), { message: msg("container has runAsNonRoot and image will run as root") });
  });

  it("image with a non-numeric user cannot be verified", () => {
    const p = pod(undefined, { runAsNonRoot: true });
    assert.throws(() => verifyRunAsNonRoot(p, app(p), { username: "nginx" }), { message: msg("container has runAsNonRoot and image has non-numeric user (nginx), cannot verify user is non-root") });
  });

  it("non-root image uid, or a non-zero runAsUser, passes; runAsUser 0 breaks the policy", () => {
    const p = pod({ runAsNonRoot: true });
    verifyRunAsNonRoot(p, app(p), { uid: 101n });
    const q = pod({ runAsNonRoot: true, runAsUser: 5 });
    verifyRunAsNonRoot(q, app(q), { uid: 0n });
    const r = pod({ runAsNonRoot: true }, { runAsUser: 0 });
    assert.throws(() => verifyRunAsNonRoot(r, app(r), { uid: 101n }), { message: msg("container's runAsUser breaks non-root policy") });
  });

  it("makeContainerConfig asks the runtime for the image's user and fails before preparing mounts", async () => {
    const p = pod({ runAsNonRoot: true });
    const asked: string[] = [];
    let mounted = false;
    const inputs = {
      envLookup: undefined,
      allocatable: { cpuMilli: 1000, memory: 2 ** 30 },
      mountsFor: () => {
        mounted = true;
        return Promise.resolve([]);
      },
      imageUser: (ref: string) => {
        asked.push(ref);
        return Promise.resolve({ uid: 0n });
      },
    };
    const opts = { restartCount: 0, imageRef: "sha256:abc", memoryCapacity: 2 ** 30, podIPs: [], hostIPs: [] };
    await assert.rejects(makeContainerConfig(p, app(p), opts, inputs), ContainerConfigError);
    assert.deepEqual(asked, ["sha256:abc"]);
    assert.equal(mounted, false);
    const cfg = await makeContainerConfig(p, app(p), opts, { ...inputs, imageUser: () => Promise.resolve({ uid: 65534n }) });
    assert.deepEqual(cfg.linux?.securityContext?.runAsUser, { value: 65534n });
  });
});

describe("sysctls", () => {
  it("names: slash-separated become dot-separated; namespaces", () => {
    assert.equal(normalizeSysctlName("net/ipv4/conf/eth0.100/forwarding"), "net.ipv4.conf.eth0/100.forwarding");
    assert.equal(normalizeSysctlName("net.ipv4.ip_forward"), "net.ipv4.ip_forward");
    assert.equal(sysctlNamespace("kernel.msgmax"), "ipc");
    assert.equal(sysctlNamespace("fs.mqueue.*"), "ipc");
    assert.equal(sysctlNamespace("net.core.somaxconn"), "net");
    assert.equal(sysctlNamespace("vm.swappiness"), "unknown");
    assert.equal(checkSysctlPattern("kernel.msg*"), undefined);
    assert.match(checkSysctlPattern("vm.swappiness") ?? "", /namespaced/);
    assert.match(checkSysctlPattern("net.*.x") ?? "", /prefix followed by/);
    assert.throws(() => sysctlAllowlist(["vm.overcommit_memory"]), /allowedUnsafeSysctls: "vm.overcommit_memory" must be a namespaced sysctl/);
  });

  const admit = (sysctls: string[], allowed: string[] = [], extra: Partial<NonNullable<V1Pod["spec"]>> = {}) =>
    admitSysctls(pod({ sysctls: sysctls.map((name) => ({ name, value: "1" })) }, undefined, extra), sysctlAllowlist(allowed));

  it("the safe set is admitted; anything else is SysctlForbidden", () => {
    assert.equal(admit([]), undefined);
    assert.equal(admit(["kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_keepalive_probes", "net/ipv4/tcp_syncookies"]), undefined);
    assert.deepEqual(admit(["net.ipv4.tcp_syncookies", "net.core.somaxconn"]), { reason: "SysctlForbidden", message: 'forbidden sysctl: "net.core.somaxconn" not allowlisted' });
  });

  it("--allowed-unsafe-sysctls: exact names and prefix patterns", () => {
    assert.equal(admit(["net.core.somaxconn"], ["net.core.somaxconn"]), undefined);
    assert.equal(admit(["kernel.msgmax", "kernel.msgmnb"], ["kernel.msg*"]), undefined);
    assert.equal(admit(["kernel.sem"], ["kernel.msg*"])?.reason, "SysctlForbidden");
  });

  it("net sysctls need the pod's network namespace, ipc ones its IPC namespace", () => {
    assert.deepEqual(admit(["net.ipv4.tcp_syncookies"], [], { hostNetwork: true }), { reason: "SysctlForbidden", message: 'forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled' });
    assert.deepEqual(admit(["kernel.shm_rmid_forced"], [], { hostIPC: true }), { reason: "SysctlForbidden", message: 'forbidden sysctl: "kernel.shm_rmid_forced" not allowed with host ipc enabled' });
    assert.equal(admit(["kernel.shm_rmid_forced"], [], { hostNetwork: true }), undefined);
  });
});

describe("image user from ImageStatus", () => {
  const manager = (images: Record<string, Partial<Image>>) =>
    createImageManager({
      images: { imageStatus: (spec: { image: string }) => Promise.resolve(images[spec.image] as Image | undefined) } as unknown as ImageService,
      backoff: createBackoff({ ...IMAGE_PULL_BACKOFF, clock: new FakeClock() }),
      serialize: false,
      logger: memoryLogger().logger,
      clock: new FakeClock(),
    });

  it("uid when the runtime reports one, else the user name, else nothing (root); unknown image: undefined", async () => {
    const m = manager({ a: { uid: { value: 101n }, username: "" }, b: { username: "nginx" }, c: { username: "" } });
    assert.deepEqual(await m.imageUser("a"), { uid: 101n });
    assert.deepEqual(await m.imageUser("b"), { username: "nginx" });
    assert.deepEqual(await m.imageUser("c"), {});
    assert.equal(await m.imageUser("missing"), undefined);
  });

  it("the image check that finds an image present also reports its user, so no second ImageStatus is needed", async () => {
    const m = manager({ "tskubelet.local/app:1": { id: "sha256:1", uid: { value: 1000n }, username: "" } });
    const pod = { metadata: { name: "p", namespace: "default", uid: "u" }, spec: { containers: [] } };
    const r = await m.ensureImage(pod, { name: "c", image: "tskubelet.local/app:1", imagePullPolicy: "IfNotPresent" }, undefined);
    assert.ok(r.ok);
    assert.deepEqual(r.ok ? r.user : undefined, { uid: 1000n });
  });
});
