/**
 * What the runtime holds for one pod, read through CRI by the pod's labels:
 * its sandboxes and containers, newest first, with the details status needs.
 */
import type { ContainerState, PodSandboxState, RuntimeService } from "../cri/types.js";
import {
  ANN_CONTAINER_HASH,
  ANN_HOST_NETWORK,
  ANN_CONTAINER_RESTART_COUNT,
  ANN_POD_TERMINATION_GRACE,
  LABEL_CONTAINER_NAME,
  LABEL_POD_NAME,
  LABEL_POD_NAMESPACE,
  LABEL_POD_UID,
} from "../api/labels.js";
import { createTerminationMessages } from "./termination-message.js";

const terminationMessages = createTerminationMessages();

export interface SandboxInfo {
  id: string;
  attempt: number;
  state: PodSandboxState;
  createdAtMs: number;
  ip: string;
  ips: string[];
  /** True when the sandbox shares the node's network namespace. */
  hostNetwork: boolean;
}

export interface ContainerInfo {
  id: string;
  sandboxId: string;
  name: string;
  attempt: number;
  restartCount: number;
  state: ContainerState;
  createdAtMs: number;
  startedAtMs: number;
  finishedAtMs: number;
  exitCode: number;
  reason: string;
  message: string;
  hash: string;
  image: string;
  imageRef: string;
  logPath: string;
  graceSeconds: number | undefined;
}

export interface RuntimePod {
  uid: string;
  name: string;
  namespace: string;
  sandboxes: SandboxInfo[];
  containers: ContainerInfo[];
  /** The listed sandboxes' and containers' ids and states, as `runtimeFingerprint` makes it. */
  fingerprint: string;
}

/**
 * What a relist saw of one pod: its fingerprint (undefined when nothing of the pod was left) and
 * when the list answers had arrived. A worker that read the runtime later, or saw the same
 * fingerprint, has nothing new to learn from it.
 */
export interface RuntimeObservation {
  fingerprint: string | undefined;
  listedAtMs: number;
}

/** Ids and states of a pod's sandboxes and containers, order-independent. */
export function runtimeFingerprint(sandboxes: readonly { id: string; state: string }[], containers: readonly { id: string; state: string }[]): string {
  return [...sandboxes.map((s) => `s:${s.id}:${s.state}`), ...containers.map((c) => `c:${c.id}:${c.state}`)].sort().join(",");
}

/** Converts CRI nanoseconds (bigint) to milliseconds. */
export function nsToMs(ns: bigint): number {
  return Number(ns / 1_000_000n);
}

/**
 * What does not change while a runtime object stays in its state: a ready sandbox's IPs and a
 * running container's status. One per pod worker; entries go when the lists no longer show the
 * object in that state.
 */
export interface RuntimeReadCache {
  sandboxIPs: Map<string, string[]>;
  running: Map<string, ContainerInfo>;
}

export function createRuntimeReadCache(): RuntimeReadCache {
  return { sandboxIPs: new Map(), running: new Map() };
}

/**
 * Reads the full runtime state of one pod: sandbox statuses and container statuses. With a cache,
 * a ready sandbox's IPs and a running container's status are asked for once.
 */
export async function getRuntimePod(rs: RuntimeService, pod: { uid: string; name: string; namespace: string }, cache?: RuntimeReadCache): Promise<RuntimePod> {
  const selector = { [LABEL_POD_UID]: pod.uid };
  const [sandboxes, containers] = await Promise.all([
    rs.listPodSandbox({ labelSelector: selector }),
    rs.listContainers({ labelSelector: selector }),
  ]);
  if (cache) {
    const ready = new Set(sandboxes.filter((s) => s.state === "SANDBOX_READY").map((s) => s.id));
    for (const id of cache.sandboxIPs.keys()) if (!ready.has(id)) cache.sandboxIPs.delete(id);
    const running = new Set(containers.filter((c) => c.state === "CONTAINER_RUNNING").map((c) => c.id));
    for (const id of cache.running.keys()) if (!running.has(id)) cache.running.delete(id);
  }
  const sbInfos = await Promise.all(
    sandboxes.map(async (sb): Promise<SandboxInfo> => {
      let ip = "";
      let ips: string[] = [];
      const hostNetwork = sb.annotations[ANN_HOST_NETWORK] === "true";
      const known = cache?.sandboxIPs.get(sb.id);
      if (sb.state === "SANDBOX_READY" && !hostNetwork && known) {
        ips = [...known];
        ip = ips[0] ?? "";
      } else if (sb.state === "SANDBOX_READY" && !hostNetwork) {
        try {
          const st = await rs.podSandboxStatus(sb.id);
          ip = st.status.network?.ip ?? "";
          ips = [ip, ...(st.status.network?.additionalIps ?? []).map((x) => x.ip)].filter((x) => x !== "");
          if (ips.length > 0) cache?.sandboxIPs.set(sb.id, ips);
        } catch {
          // Gone between list and status: the next relist sees the truth.
        }
      }
      return { id: sb.id, attempt: sb.metadata.attempt, state: sb.state, createdAtMs: nsToMs(sb.createdAt), ip, ips, hostNetwork };
    }),
  );
  const ctInfos: ContainerInfo[] = [];
  await Promise.all(
    containers.map(async (c) => {
      const known = c.state === "CONTAINER_RUNNING" ? cache?.running.get(c.id) : undefined;
      if (known) {
        ctInfos.push({ ...known });
        return;
      }
      const info = await readContainer(rs, c.id, c.podSandboxId);
      if (!info) return; // removed between list and status: the next relist sees the truth
      ctInfos.push(info);
      if (info.state === "CONTAINER_RUNNING" && c.state === "CONTAINER_RUNNING") cache?.running.set(c.id, { ...info });
    }),
  );
  sbInfos.sort((a, b) => b.createdAtMs - a.createdAtMs || b.attempt - a.attempt);
  ctInfos.sort((a, b) => b.createdAtMs - a.createdAtMs || b.attempt - a.attempt);
  return { uid: pod.uid, name: pod.name, namespace: pod.namespace, sandboxes: sbInfos, containers: ctInfos, fingerprint: runtimeFingerprint(sandboxes, containers) };
}

/** One container's status as ContainerInfo (with its termination message once it exited); undefined when it is gone. */
async function readContainer(rs: RuntimeService, id: string, sandboxId: string): Promise<ContainerInfo | undefined> {
  let s;
  try {
    s = (await rs.containerStatus(id)).status;
  } catch {
    return undefined;
  }
  let message = s.message;
  if (s.state === "CONTAINER_EXITED") {
    const t = await terminationMessages.read({ id, exitCode: s.exitCode, logPath: s.logPath, mounts: s.mounts, annotations: s.annotations });
    if (t !== "") message = message !== "" ? `${message}: ${t}` : t;
  }
  return {
    id,
    sandboxId,
    name: s.labels[LABEL_CONTAINER_NAME] ?? s.metadata.name,
    attempt: s.metadata.attempt,
    restartCount: Number(s.annotations[ANN_CONTAINER_RESTART_COUNT] ?? s.metadata.attempt),
    state: s.state,
    createdAtMs: nsToMs(s.createdAt),
    startedAtMs: nsToMs(s.startedAt),
    finishedAtMs: nsToMs(s.finishedAt),
    exitCode: s.exitCode,
    reason: s.reason,
    message,
    hash: s.annotations[ANN_CONTAINER_HASH] ?? "",
    image: s.image.image,
    imageRef: s.imageRef,
    logPath: s.logPath,
    graceSeconds: parseGrace(s.annotations[ANN_POD_TERMINATION_GRACE]),
  };
}

/**
 * What the runtime holds for a pod whose every sandbox and container is known by ID (a pod the
 * worker has just created from nothing): their statuses, without listing. The sandboxes are taken
 * as given (their status was read when they were made). Undefined when a container is gone.
 */
export async function getKnownRuntimePod(
  rs: RuntimeService,
  pod: { uid: string; name: string; namespace: string },
  known: { sandboxes: SandboxInfo[]; containers: { id: string; sandboxId: string }[] },
  cache?: RuntimeReadCache,
): Promise<RuntimePod | undefined> {
  const infos = await Promise.all(known.containers.map((c) => readContainer(rs, c.id, c.sandboxId)));
  const containers: ContainerInfo[] = [];
  for (const info of infos) {
    if (!info) return undefined;
    containers.push(info);
    if (info.state === "CONTAINER_RUNNING") cache?.running.set(info.id, { ...info });
  }
  for (const sb of known.sandboxes) if (sb.state === "SANDBOX_READY" && sb.ips.length > 0) cache?.sandboxIPs.set(sb.id, [...sb.ips]);
  const sandboxes = known.sandboxes.map((sb) => ({ ...sb, ips: [...sb.ips] }));
  sandboxes.sort((a, b) => b.createdAtMs - a.createdAtMs || b.attempt - a.attempt);
  containers.sort((a, b) => b.createdAtMs - a.createdAtMs || b.attempt - a.attempt);
  return { uid: pod.uid, name: pod.name, namespace: pod.namespace, sandboxes, containers, fingerprint: runtimeFingerprint(sandboxes, containers) };
}

/** A pod the runtime holds nothing of. */
export function emptyRuntimePod(pod: { uid: string; name: string; namespace: string }): RuntimePod {
  return { uid: pod.uid, name: pod.name, namespace: pod.namespace, sandboxes: [], containers: [], fingerprint: runtimeFingerprint([], []) };
}

function parseGrace(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Identity of a runtime object's pod, from its CRI labels. */
export function podIdentityFromLabels(labels: Record<string, string>): { uid: string; name: string; namespace: string } | undefined {
  const uid = labels[LABEL_POD_UID];
  if (!uid) return undefined;
  return { uid, name: labels[LABEL_POD_NAME] ?? "", namespace: labels[LABEL_POD_NAMESPACE] ?? "" };
}
