/**
 * Pod statuses as the differential suite compares them: only what a kubelet decides (phase,
 * conditions, per container state, readiness and restarts), none of what differs between two runs
 * of the same kubelet (timestamps, container and image IDs, IPs, host names), rendered as one line
 * per status so that two sequences can be compared as strings and read side by side.
 */

export interface PodCondition {
  type?: string;
  status?: string;
  reason?: string;
}

export interface ContainerStateLike {
  running?: object;
  waiting?: { reason?: string };
  terminated?: { reason?: string; exitCode?: number; message?: string };
}

export interface ContainerStatusLike {
  name?: string;
  state?: ContainerStateLike;
  lastState?: ContainerStateLike;
  ready?: boolean;
  started?: boolean;
  restartCount?: number;
}

/** The parts of a v1 Pod the suite reads. */
export interface PodLike {
  metadata?: { name?: string; resourceVersion?: string; deletionTimestamp?: string };
  status?: {
    phase?: string;
    reason?: string;
    conditions?: PodCondition[];
    initContainerStatuses?: ContainerStatusLike[];
    containerStatuses?: ContainerStatusLike[];
  };
}

export interface NormContainer {
  /** "init/<name>" for init containers (sidecars included), the bare name for app containers. */
  name: string;
  /** running | waiting:<reason> | terminated:<reason>(<exit code>[,"message"]) | none */
  state: string;
  /** As state, or "none" when there is no last state. */
  last: string;
  ready: boolean;
  /** undefined when the kubelet does not report it. */
  started: boolean | undefined;
  restarts: number;
}

export interface NormStatus {
  phase: string;
  /** Pod-level status.reason (Evicted, ...), "" when absent. */
  reason: string;
  /** "<type>=<status>" or "<type>=<status>(<reason>)", sorted by type. */
  conditions: string[];
  containers: NormContainer[];
}

/** Longest termination message kept; longer ones are cut (they are compared, not stored). */
const MESSAGE_MAX = 60;

/**
 * A container state in one word. A terminated state keeps its message (a termination message or
 * the log tail of FallbackToLogsOnError: the pod's own output, the same on both kubelets); a
 * waiting state keeps its reason only (its message names image digests, IDs or timings).
 */
export function stateWord(s: ContainerStateLike | undefined): string {
  if (s?.running) return "running";
  if (s?.waiting) return `waiting:${s.waiting.reason ?? ""}`;
  if (s?.terminated) {
    const t = s.terminated;
    const msg = (t.message ?? "").trim();
    const shown = msg.length > MESSAGE_MAX ? `${msg.slice(0, MESSAGE_MAX)}...` : msg;
    return `terminated:${t.reason ?? ""}(${t.exitCode ?? "?"}${shown !== "" ? `,${JSON.stringify(shown)}` : ""})`;
  }
  return "none";
}

function normContainer(c: ContainerStatusLike, prefix: string): NormContainer {
  return {
    name: `${prefix}${c.name ?? "?"}`,
    state: stateWord(c.state),
    last: stateWord(c.lastState),
    ready: c.ready === true,
    started: c.started,
    restarts: c.restartCount ?? 0,
  };
}

const byName = (a: ContainerStatusLike, b: ContainerStatusLike): number => (a.name ?? "").localeCompare(b.name ?? "");

/** The comparable part of a pod's status. Order of conditions and of container statuses is ignored. */
export function normalize(pod: PodLike): NormStatus {
  const st = pod.status ?? {};
  const conditions = (st.conditions ?? [])
    .map((c) => `${c.type ?? "?"}=${c.status ?? "?"}${c.reason ? `(${c.reason})` : ""}`)
    .sort();
  const init = [...(st.initContainerStatuses ?? [])].sort(byName).map((c) => normContainer(c, "init/"));
  const app = [...(st.containerStatuses ?? [])].sort(byName).map((c) => normContainer(c, ""));
  return { phase: st.phase ?? "", reason: st.reason ?? "", conditions, containers: [...init, ...app] };
}

/** One line: `Phase | conditions | container: state ...; ...`. */
export function render(s: NormStatus): string {
  const containers = s.containers.map((c) => {
    const started = c.started === undefined ? "" : c.started ? " started" : " not-started";
    const last = c.last === "none" ? "" : ` last=${c.last}`;
    return `${c.name}: ${c.state}${last} ${c.ready ? "ready" : "unready"}${started} r${c.restarts}`;
  });
  const phase = s.reason !== "" ? `${s.phase || "-"}(${s.reason})` : s.phase || "-";
  return `${phase} | ${s.conditions.join(" ") || "-"} | ${containers.join("; ") || "-"}`;
}

/** The sequence with consecutive duplicates removed. */
export function collapse(seq: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of seq) if (out[out.length - 1] !== s) out.push(s);
  return out;
}

/** Marker appended to a sequence when the pod was deleted (the DELETED watch event). */
export const DELETED = "(deleted)";

/** The last status of a sequence, not counting the deletion marker. */
export function finalState(seq: readonly string[]): string {
  for (let i = seq.length - 1; i >= 0; i--) if (seq[i] !== DELETED) return seq[i] ?? "";
  return "";
}

/**
 * Field-by-field differences between two rendered states (for failure messages): the parts
 * separated by " | " and "; " that are not in both.
 */
export function stateDiff(a: string, b: string): { onlyA: string[]; onlyB: string[] } {
  const parts = (s: string): string[] =>
    s
      .split(" | ")
      .flatMap((p, i) => (i === 1 ? p.split(" ") : p.split("; ")))
      .filter((p) => p !== "");
  const pa = parts(a);
  const pb = parts(b);
  return { onlyA: pa.filter((p) => !pb.includes(p)), onlyB: pb.filter((p) => !pa.includes(p)) };
}
