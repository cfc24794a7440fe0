/** Builds the CRI PodSandboxConfig for a pod. */
import type { V1Pod } from "@kubernetes/client-node";
import type { DNSConfig, PodSandboxConfig, PortMapping, Protocol } from "../cri/types.js";
import { ANN_HOST_NETWORK, ANN_POD_TERMINATION_GRACE, LABEL_MANAGED_BY, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID } from "../api/labels.js";
import { podCgroupParent } from "./resources.js";
import { sandboxSecurityContext, securityOptions } from "./security.js";
import { normalizeSysctlName } from "./sysctls.js";

export interface SandboxOptions {
  podLogsDir: string;
  attempt: number;
  /** Contents of the node's resolv.conf (resolvConf), for dnsPolicy Default and fallbacks. */
  resolvConf: string;
  clusterDNS: string[];
  clusterDomain: string;
  cgroupsPerQOS: boolean;
  cgroupRoot: string;
  /** Where Localhost seccomp profiles live (default /var/lib/kubelet/seccomp). */
  seccompProfileRoot?: string;
  /** KubeletConfiguration seccompDefault. */
  seccompDefault?: boolean;
}

export function podLogDirectory(podLogsDir: string, pod: V1Pod): string {
  const m = pod.metadata ?? {};
  return `${podLogsDir}/${m.namespace ?? "default"}_${m.name ?? ""}_${m.uid ?? ""}`;
}

export function isHostNetwork(pod: V1Pod): boolean {
  return pod.spec?.hostNetwork === true;
}

export function buildSandboxConfig(pod: V1Pod, opts: SandboxOptions): PodSandboxConfig {
  const meta = pod.metadata ?? {};
  const hostNetwork = isHostNetwork(pod);
  const labels: Record<string, string> = {
    ...(meta.labels ?? {}),
    [LABEL_POD_NAME]: meta.name ?? "",
    [LABEL_POD_NAMESPACE]: meta.namespace ?? "default",
    [LABEL_POD_UID]: meta.uid ?? "",
    [LABEL_MANAGED_BY]: "true",
  };
  const annotations: Record<string, string> = { ...(meta.annotations ?? {}) };
  if (hostNetwork) annotations[ANN_HOST_NETWORK] = "true";
  annotations[ANN_POD_TERMINATION_GRACE] = String(pod.spec?.terminationGracePeriodSeconds ?? 30);
  const config: PodSandboxConfig = {
    metadata: { name: meta.name ?? "", namespace: meta.namespace ?? "default", uid: meta.uid ?? "", attempt: opts.attempt },
    // runc refuses to set a hostname without a private UTS namespace.
    hostname: hostNetwork ? "" : podHostname(pod),
    logDirectory: podLogDirectory(opts.podLogsDir, pod),
    dnsConfig: dnsConfig(pod, opts),
    portMappings: portMappings(pod),
    labels,
    annotations,
    linux: {
      ...(opts.cgroupsPerQOS ? { cgroupParent: podCgroupParent(pod, opts.cgroupRoot) } : {}),
      securityContext: sandboxSecurityContext(pod, securityOptions(opts)),
      sysctls: Object.fromEntries((pod.spec?.securityContext?.sysctls ?? []).map((s) => [normalizeSysctlName(s.name), s.value])),
    },
  };
  return config;
}

function podHostname(pod: V1Pod): string {
  const h = pod.spec?.hostname ?? pod.metadata?.name ?? "";
  return h.length > 63 ? h.slice(0, 63).replace(/[-.]+$/, "") : h;
}

function portMappings(pod: V1Pod): PortMapping[] {
  const out: PortMapping[] = [];
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      out.push({ protocol: (p.protocol ?? "TCP") as Protocol, containerPort: p.containerPort, hostPort: p.hostPort, hostIp: p.hostIP ?? "" });
    }
  }
  return out;
}

export function parseResolvConf(text: string): DNSConfig {
  const servers: string[] = [];
  const searches: string[] = [];
  const options: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const [key, ...rest] = line.split(/\s+/);
    if (key === "nameserver" && rest[0]) servers.push(rest[0]);
    else if (key === "search") searches.splice(0, searches.length, ...rest.map((d) => d.replace(/\.+$/, "")).filter((d) => d !== ""));
    else if (key === "options") options.push(...rest);
  }
  return { servers, searches, options };
}

function dnsConfig(pod: V1Pod, opts: SandboxOptions): DNSConfig {
  const policy = pod.spec?.dnsPolicy ?? "ClusterFirst";
  const host = parseResolvConf(opts.resolvConf);
  const ns = pod.metadata?.namespace ?? "default";
  let cfg: DNSConfig;
  const clusterFirst = policy === "ClusterFirstWithHostNet" || (policy === "ClusterFirst" && !isHostNetwork(pod));
  if (policy === "None") {
    cfg = { servers: [], searches: [], options: [] };
  } else if (clusterFirst && opts.clusterDNS.length > 0) {
    const d = opts.clusterDomain;
    const searches = d ? [`${ns}.svc.${d}`, `svc.${d}`, d, ...host.searches] : host.searches;
    cfg = { servers: [...opts.clusterDNS], searches: dedupe(searches).slice(0, 32), options: ["ndots:5"] };
  } else {
    cfg = host;
  }
  const extra = pod.spec?.dnsConfig;
  if (extra) {
    cfg = {
      servers: dedupe([...cfg.servers, ...(extra.nameservers ?? [])]),
      searches: dedupe([...cfg.searches, ...(extra.searches ?? [])]),
      options: mergeOptions(cfg.options, (extra.options ?? []).map((o) => (o.value !== undefined ? `${o.name ?? ""}:${o.value}` : (o.name ?? "")))),
    };
  }
  // The resolver reads at most 3 nameservers and 32 search domains.
  return { servers: cfg.servers.slice(0, 3), searches: cfg.searches.slice(0, 32), options: cfg.options };
}

/** Options by name: a pod's option replaces the policy's option of the same name. */
function mergeOptions(base: string[], overrides: string[]): string[] {
  const byName = new Map<string, string>();
  for (const o of [...base, ...overrides]) if (o !== "") byName.set(o.split(":")[0] ?? o, o);
  return [...byName.values()];
}

function dedupe(list: string[]): string[] {
  return [...new Set(list.filter((s) => s !== ""))];
}
