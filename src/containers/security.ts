/**
 * Security contexts: the pod's and the container's merged as upstream (the container's field wins),
 * turned into the CRI Linux security contexts of the sandbox and of each container, and the
 * runAsNonRoot check against the user the image runs as.
 */
import type { V1Container, V1PodSecurityContext, V1Pod, V1SeccompProfile, V1SecurityContext } from "@kubernetes/client-node";
import type { Capability, LinuxContainerSecurityContext, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, SecurityProfile } from "../cri/types.js";
import { ContainerConfigError } from "./env.js";

/** The user an image runs as, from the runtime's ImageStatus: a numeric uid, or else a user name. */
export interface ImageUser {
  uid?: bigint;
  username?: string;
}

export interface SecurityOptions {
  /** Where Localhost seccomp profiles live (upstream: `<root-dir>/seccomp`). */
  seccompProfileRoot: string;
  /** KubeletConfiguration seccompDefault: RuntimeDefault instead of Unconfined when nothing is set. */
  seccompDefault?: boolean;
}

export const DEFAULT_SECCOMP_PROFILE_ROOT = "/var/lib/kubelet/seccomp";

/** Paths the runtime masks and makes read-only under procMount Default (upstream's lists). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];
export const DEFAULT_READONLY_PATHS: readonly string[] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** The container's security context with the pod-level fields filled in where the container leaves them unset. */
export function effectiveSecurityContext(pod: V1Pod, c: V1Container): V1SecurityContext {
  const p: V1PodSecurityContext = pod.spec?.securityContext ?? {};
  const out: V1SecurityContext = { ...(c.securityContext ?? {}) };
  // null (from YAML or JSON) counts as unset.
  const runAsUser = out.runAsUser ?? p.runAsUser;
  const runAsGroup = out.runAsGroup ?? p.runAsGroup;
  const runAsNonRoot = out.runAsNonRoot ?? p.runAsNonRoot;
  const seccomp = out.seccompProfile ?? p.seccompProfile;
  const seLinux = out.seLinuxOptions ?? p.seLinuxOptions;
  delete out.runAsUser;
  delete out.runAsGroup;
  delete out.runAsNonRoot;
  delete out.seccompProfile;
  delete out.seLinuxOptions;
  if (runAsUser != null) out.runAsUser = runAsUser;
  if (runAsGroup != null) out.runAsGroup = runAsGroup;
  if (runAsNonRoot != null) out.runAsNonRoot = runAsNonRoot;
  if (seccomp != null) out.seccompProfile = seccomp;
  if (seLinux != null) out.seLinuxOptions = seLinux;
  return out;
}

/** `name_namespace(uid)`, how upstream names a pod in messages. */
export function formatPod(pod: V1Pod): string {
  const m = pod.metadata ?? {};
  return `${m.name ?? ""}_${m.namespace ?? "default"}(${m.uid ?? ""})`;
}

/**
 * Upstream's runAsNonRoot check. `image` is what the image runs as (no uid and no name: root).
 * Throws ContainerConfigError (CreateContainerConfigError) with upstream's messages.
 */
export function verifyRunAsNonRoot(pod: V1Pod, c: V1Container, image: ImageUser | undefined): void {
  const sc = effectiveSecurityContext(pod, c);
  if (sc.runAsNonRoot !== true) return;
  const where = `(pod: ${JSON.stringify(formatPod(pod))}, container: ${c.name})`;
  if (sc.runAsUser !== undefined) {
    if (sc.runAsUser === 0) throw new ContainerConfigError(`container's runAsUser breaks non-root policy ${where}`);
    return;
  }
  const uid = image?.uid;
  const username = image?.username ?? "";
  if (uid === undefined && username !== "") {
    throw new ContainerConfigError(`container has runAsNonRoot and image has non-numeric user (${username}), cannot verify user is non-root ${where}`);
  }
  if ((uid ?? 0n) === 0n) throw new ContainerConfigError(`container has runAsNonRoot and image will run as root ${where}`);
}

/** An id from the spec as a CRI int64; anything but a non-negative integer is a ContainerConfigError naming the field. */
function id(v: unknown, field: string): bigint | undefined {
  if (v == null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new ContainerConfigError(`invalid securityContext.${field} ${JSON.stringify(v)}: must be a non-negative integer`);
  return BigInt(v);
}

/** For the sandbox: a bad value is left out (the containers report it). */
function orUndefined<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

function mode(hostMode: boolean | undefined, otherwise: NamespaceMode): NamespaceMode {
  return hostMode === true ? "NODE" : otherwise;
}

export function namespaceOptions(pod: V1Pod): NamespaceOption {
  const s = pod.spec;
  return {
    network: mode(s?.hostNetwork, "POD"),
    // shareProcessNamespace puts every container of the pod in the sandbox's pid namespace.
    pid: s?.hostPID === true ? "NODE" : s?.shareProcessNamespace === true ? "POD" : "CONTAINER",
    ipc: mode(s?.hostIPC, "POD"),
  };
}

/** fsGroup first, then supplementalGroups, as upstream orders them. */
export function supplementalGroups(pod: V1Pod): bigint[] {
  const p = pod.spec?.securityContext;
  const out: bigint[] = [];
  const fsGroup = id(p?.fsGroup, "fsGroup");
  if (fsGroup !== undefined) out.push(fsGroup);
  for (const g of p?.supplementalGroups ?? []) {
    const v = id(g, "supplementalGroups");
    if (v !== undefined) out.push(v);
  }
  return out;
}

/** The CRI seccomp profile for a container (or, with no container, the sandbox). */
export function seccompProfile(profile: V1SeccompProfile | undefined, opts: SecurityOptions): SecurityProfile {
  switch (profile?.type) {
    case "RuntimeDefault":
      return { profileType: "RuntimeDefault", localhostRef: "" };
    case "Unconfined":
      return { profileType: "Unconfined", localhostRef: "" };
    case "Localhost": {
      const ref = profile.localhostProfile ?? "";
      if (ref === "" || ref.startsWith("/") || ref.split("/").includes("..")) {
        throw new ContainerConfigError(`invalid seccomp profile: localhostProfile ${JSON.stringify(ref)} must be a relative path under the seccomp profile root without '..'`);
      }
      return { profileType: "Localhost", localhostRef: `${opts.seccompProfileRoot.replace(/\/+$/, "")}/${ref}` };
    }
    case undefined:
      return { profileType: opts.seccompDefault === true ? "RuntimeDefault" : "Unconfined", localhostRef: "" };
    default:
      throw new ContainerConfigError(`invalid seccomp profile type ${JSON.stringify(profile?.type)}`);
  }
}

/** True when any container (init containers included) is privileged: the sandbox must be too. */
export function hasPrivilegedContainer(pod: V1Pod): boolean {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? []), ...(pod.spec?.ephemeralContainers ?? [])].some((c) => c.securityContext?.privileged === true);
}

export function sandboxSecurityContext(pod: V1Pod, opts: SecurityOptions): LinuxSandboxSecurityContext {
  const p = pod.spec?.securityContext;
  const out: LinuxSandboxSecurityContext = {
    namespaceOptions: namespaceOptions(pod),
    privileged: hasPrivilegedContainer(pod),
  };
  const user = orUndefined(() => id(p?.runAsUser, "runAsUser"));
  const group = orUndefined(() => id(p?.runAsGroup, "runAsGroup"));
  if (user !== undefined) out.runAsUser = { value: user };
  if (group !== undefined) out.runAsGroup = { value: group };
  const groups = orUndefined(() => supplementalGroups(pod)) ?? [];
  if (groups.length > 0) out.supplementalGroups = groups;
  // A pod-level profile the sandbox cannot use (a bad Localhost reference) is reported per container.
  try {
    out.seccomp = seccompProfile(p?.seccompProfile, opts);
  } catch {
    out.seccomp = seccompProfile(undefined, opts);
  }
  return out;
}

function hasCapability(list: string[] | undefined, name: string): boolean {
  return (list ?? []).some((c) => c === name || c === `CAP_${name}` || c === "ALL");
}

/**
 * The CRI security context of one container. `image` is the image's user: without runAsUser the
 * container runs as it (uid, or else user name), as upstream passes it on.
 */
export function containerSecurityContext(pod: V1Pod, c: V1Container, image: ImageUser | undefined, opts: SecurityOptions): LinuxContainerSecurityContext {
  const sc = effectiveSecurityContext(pod, c);
  const privileged = sc.privileged === true;
  const out: LinuxContainerSecurityContext = {
    privileged,
    namespaceOptions: namespaceOptions(pod),
    seccomp: seccompProfile(sc.seccompProfile, opts),
  };
  if (sc.capabilities) {
    const caps: Capability = { addCapabilities: [...(sc.capabilities.add ?? [])], dropCapabilities: [...(sc.capabilities.drop ?? [])] };
    out.capabilities = caps;
  }
  const user = id(sc.runAsUser, "runAsUser");
  const group = id(sc.runAsGroup, "runAsGroup");
  if (user !== undefined) out.runAsUser = { value: user };
  else if (image?.uid !== undefined) out.runAsUser = { value: image.uid };
  else if (image?.username) out.runAsUsername = image.username;
  if (group !== undefined) out.runAsGroup = { value: group };
  const groups = supplementalGroups(pod);
  if (groups.length > 0) out.supplementalGroups = groups;
  if (sc.readOnlyRootFilesystem === true) out.readonlyRootfs = true;
  // no_new_privs only when escalation is explicitly refused; privileged and CAP_SYS_ADMIN imply escalation.
  if (sc.allowPrivilegeEscalation === false && !privileged && !hasCapability(sc.capabilities?.add, "SYS_ADMIN")) out.noNewPrivs = true;
  if (sc.procMount === "Unmasked") {
    out.maskedPaths = [];
    out.readonlyPaths = [];
  } else {
    out.maskedPaths = [...DEFAULT_MASKED_PATHS];
    out.readonlyPaths = [...DEFAULT_READONLY_PATHS];
  }
  return out;
}

/** Security options from the sandbox options of the kubelet (absent fields: upstream defaults). */
export function securityOptions(o: { seccompProfileRoot?: string; seccompDefault?: boolean }): SecurityOptions {
  return { seccompProfileRoot: o.seccompProfileRoot ?? DEFAULT_SECCOMP_PROFILE_ROOT, ...(o.seccompDefault !== undefined ? { seccompDefault: o.seccompDefault } : {}) };
}
