/**
 * Pod sysctls as upstream decides them: names normalized to dots, the safe set every pod may use,
 * and the namespace each sysctl lives in (only namespaced sysctls can be allowed at all).
 */

/** Sysctls every pod may set (upstream's safe set). */
export const SAFE_SYSCTLS: readonly string[] = [
  "kernel.shm_rmid_forced",
  "net.ipv4.ip_local_port_range",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.ping_group_range",
  "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.ip_local_reserved_ports",
  "net.ipv4.tcp_keepalive_time",
  "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes",
];

export type SysctlNamespace = "ipc" | "net" | "unknown";

const IPC_SYSCTLS = new Set(["kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni"]);
const PREFIX_NAMESPACES: [string, SysctlNamespace][] = [
  ["kernel.shm", "ipc"],
  ["kernel.msg", "ipc"],
  ["fs.mqueue.", "ipc"],
  ["net.", "net"],
];

/** `a/b.c/d` (slash-separated) becomes `a.b/c.d`; dot-separated names are kept. */
export function normalizeSysctlName(name: string): string {
  const slash = name.indexOf("/");
  const dot = name.indexOf(".");
  if (slash === -1 || (dot !== -1 && dot < slash)) return name;
  return name.replace(/[./]/g, (ch) => (ch === "/" ? "." : "/"));
}

/** The kernel namespace of a sysctl name or pattern (a `prefix*` pattern counts by its prefix). */
export function sysctlNamespace(name: string): SysctlNamespace {
  const n = name.endsWith("*") ? name.slice(0, -1) : name;
  if (IPC_SYSCTLS.has(n)) return "ipc";
  for (const [prefix, ns] of PREFIX_NAMESPACES) if (n.startsWith(prefix)) return ns;
  return "unknown";
}

const PATTERN = /^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]$/;

/** Why a --allowed-unsafe-sysctls entry is unusable, or undefined when it is fine. */
export function checkSysctlPattern(raw: string): string | undefined {
  const p = normalizeSysctlName(raw.trim());
  if (!PATTERN.test(p)) return `a sysctl name or a prefix followed by "*"`;
  if (sysctlNamespace(p) === "unknown") return "a namespaced sysctl (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*)";
  return undefined;
}

/** Which sysctls may be set: exact names, and prefixes from `prefix*` patterns. */
export interface SysctlAllowlist {
  /** undefined when allowed; otherwise why not (upstream's wording after "forbidden sysctl: "). */
  check(name: string, hostNetwork: boolean, hostIPC: boolean): string | undefined;
}

/**
 * The safe set plus `allowedUnsafe` (--allowed-unsafe-sysctls: names or `prefix*` patterns). Throws
 * on a pattern that is malformed or not namespaced, as upstream refuses to start.
 */
export function sysctlAllowlist(allowedUnsafe: readonly string[]): SysctlAllowlist {
  const exact = new Map<string, SysctlNamespace>();
  const prefixes = new Map<string, SysctlNamespace>();
  for (const raw of [...SAFE_SYSCTLS, ...allowedUnsafe]) {
    const p = normalizeSysctlName(raw.trim());
    const bad = checkSysctlPattern(p);
    if (bad !== undefined) throw new Error(`allowedUnsafeSysctls: ${JSON.stringify(raw)} must be ${bad}`);
    const ns = sysctlNamespace(p);
    if (p.endsWith("*")) prefixes.set(p.slice(0, -1), ns);
    else exact.set(p, ns);
  }
  const hostConflict = (name: string, ns: SysctlNamespace, hostNetwork: boolean, hostIPC: boolean): string | undefined => {
    if (ns === "ipc" && hostIPC) return `${JSON.stringify(name)} not allowed with host ipc enabled`;
    if (ns === "net" && hostNetwork) return `${JSON.stringify(name)} not allowed with host net enabled`;
    return undefined;
  };
  return {
    check(raw, hostNetwork, hostIPC) {
      const name = normalizeSysctlName(raw);
      const ns = exact.get(name);
      if (ns !== undefined) return hostConflict(name, ns, hostNetwork, hostIPC);
      for (const [prefix, pns] of prefixes) if (name.startsWith(prefix)) return hostConflict(name, pns, hostNetwork, hostIPC);
      return `${JSON.stringify(name)} not allowlisted`;
    },
  };
}
