/**
 * A table of every KubeletConfiguration field: its kind, its default and its checks.
 * Loading, defaulting, validation and /configz output are all driven by this one table.
 */
import { isIP } from "node:net";
import { parseQuantity } from "./quantity.js";
import { checkSysctlPattern } from "../containers/sysctls.js";

export type FieldSpec =
  | { kind: "string"; default: string; check?: (v: string) => string | undefined }
  | { kind: "enum"; default: string; values: readonly string[] }
  | { kind: "int"; default: number; min?: number; max?: number }
  | { kind: "number"; default: number; min?: number }
  | { kind: "bool"; default: boolean }
  | { kind: "duration"; default: number }
  | { kind: "stringList"; default: string[]; check?: (v: string) => string | undefined }
  | { kind: "quantityMap"; default: Record<string, string>; keys?: readonly string[] }
  | { kind: "evictionMap"; default: Record<string, string>; /** Flag syntax: signal<value (default) or signal=value. */ flagSep?: "<" | "=" }
  | { kind: "taints"; default: [] }
  | { kind: "object"; fields: Schema };

export type Schema = Record<string, FieldSpec>;

const port = (d: number): FieldSpec => ({ kind: "int", default: d, min: 0, max: 65535 });
const ipCheck = (v: string): string | undefined => (isIP(v) ? undefined : "a valid IP address");
const endpointCheck = (v: string): string | undefined =>
  v === "" || v.startsWith("unix://") || v.startsWith("/") ? undefined : "a unix socket endpoint such as unix:///run/containerd/containerd.sock";

export const EVICTION_SIGNALS = [
  "memory.available",
  "nodefs.available",
  "nodefs.inodesFree",
  "imagefs.available",
  "imagefs.inodesFree",
  "pid.available",
] as const;

export const RESERVED_KEYS = ["cpu", "memory", "ephemeral-storage", "pid"] as const;

export const kubeletConfigSchema: Schema = {
  staticPodPath: { kind: "string", default: "" },
  syncFrequency: { kind: "duration", default: 60_000 },
  fileCheckFrequency: { kind: "duration", default: 20_000 },
  address: { kind: "string", default: "0.0.0.0", check: ipCheck },
  port: port(10250),
  readOnlyPort: port(0),
  cadvisorPort: port(0),
  healthzPort: port(10248),
  healthzBindAddress: { kind: "string", default: "127.0.0.1", check: ipCheck },
  tlsCertFile: { kind: "string", default: "" },
  tlsPrivateKeyFile: { kind: "string", default: "" },
  rotateCertificates: { kind: "bool", default: false },
  serverTLSBootstrap: { kind: "bool", default: false },
  authentication: {
    kind: "object",
    fields: {
      x509: { kind: "object", fields: { clientCAFile: { kind: "string", default: "" } } },
      webhook: {
        kind: "object",
        fields: { enabled: { kind: "bool", default: true }, cacheTTL: { kind: "duration", default: 120_000 } },
      },
      anonymous: { kind: "object", fields: { enabled: { kind: "bool", default: false } } },
    },
  },
  authorization: {
    kind: "object",
    fields: {
      mode: { kind: "enum", default: "Webhook", values: ["AlwaysAllow", "Webhook"] },
      webhook: {
        kind: "object",
        fields: {
          cacheAuthorizedTTL: { kind: "duration", default: 300_000 },
          cacheUnauthorizedTTL: { kind: "duration", default: 30_000 },
        },
      },
    },
  },
  enableServer: { kind: "bool", default: true },
  enableDebuggingHandlers: { kind: "bool", default: true },
  enableProfilingHandler: { kind: "bool", default: true },
  enableSystemLogHandler: { kind: "bool", default: true },
  clusterDomain: { kind: "string", default: "" },
  clusterDNS: { kind: "stringList", default: [], check: ipCheck },
  nodeStatusUpdateFrequency: { kind: "duration", default: 10_000 },
  nodeStatusReportFrequency: { kind: "duration", default: 300_000 },
  nodeLeaseDurationSeconds: { kind: "int", default: 40, min: 1 },
  imageMinimumGCAge: { kind: "duration", default: 120_000 },
  // 0: images are removed for disk usage only.
  imageMaximumGCAge: { kind: "duration", default: 0 },
  imageGCHighThresholdPercent: { kind: "int", default: 85, min: 0, max: 100 },
  imageGCLowThresholdPercent: { kind: "int", default: 80, min: 0, max: 100 },
  runtimeRequestTimeout: { kind: "duration", default: 120_000 },
  maxPods: { kind: "int", default: 110, min: 0 },
  podPidsLimit: { kind: "int", default: -1, min: -1 },
  podLogsDir: { kind: "string", default: "/var/log/pods", check: (v) => (v.startsWith("/") ? undefined : "an absolute path") },
  containerRuntimeEndpoint: { kind: "string", default: "unix:///run/containerd/containerd.sock", check: endpointCheck },
  imageServiceEndpoint: { kind: "string", default: "", check: endpointCheck },
  cgroupDriver: { kind: "enum", default: "cgroupfs", values: ["cgroupfs", "systemd"] },
  cgroupsPerQOS: { kind: "bool", default: true },
  cgroupRoot: { kind: "string", default: "" },
  allowedUnsafeSysctls: { kind: "stringList", default: [], check: checkSysctlPattern },
  seccompDefault: { kind: "bool", default: false },
  serializeImagePulls: { kind: "bool", default: true },
  // Upstream leaves it unset (no limit); 0 stands for unset here.
  maxParallelImagePulls: { kind: "int", default: 0, min: 0 },
  registryPullQPS: { kind: "number", default: 5, min: 0 },
  registryBurst: { kind: "int", default: 10, min: 0 },
  evictionHard: {
    kind: "evictionMap",
    default: { "memory.available": "100Mi", "nodefs.available": "10%", "nodefs.inodesFree": "5%", "imagefs.available": "15%" },
  },
  evictionPressureTransitionPeriod: { kind: "duration", default: 300_000 },
  evictionMinimumReclaim: { kind: "evictionMap", default: {}, flagSep: "=" },
  kubeReserved: { kind: "quantityMap", default: {}, keys: RESERVED_KEYS },
  systemReserved: { kind: "quantityMap", default: {}, keys: RESERVED_KEYS },
  registerNode: { kind: "bool", default: true },
  registerWithTaints: { kind: "taints", default: [] },
  containerLogMaxSize: {
    kind: "string",
    default: "10Mi",
    check: (v) => ((parseQuantity(v) ?? 0) > 0 ? undefined : "a positive quantity such as 10Mi"),
  },
  containerLogMaxFiles: { kind: "int", default: 5, min: 2 },
  resolvConf: { kind: "string", default: "/etc/resolv.conf" },
  failSwapOn: { kind: "bool", default: true },
  eventRecordQPS: { kind: "number", default: 50, min: 0 },
  eventBurst: { kind: "int", default: 100, min: 0 },
  kubeAPIQPS: { kind: "number", default: 50, min: 0 },
  kubeAPIBurst: { kind: "int", default: 100, min: 0 },
  providerID: { kind: "string", default: "" },
  logging: { kind: "object", fields: { verbosity: { kind: "int", default: 0, min: 0 } } },
};

/** Fields of the upstream type that tskubelet accepts but does not act on yet: no "unknown field" warning. */
export const KNOWN_BUT_IGNORED = new Set([
  "apiVersion",
  "kind",
  "staticPodURL",
  "staticPodURLHeader",
  "httpCheckFrequency",
  "tlsCipherSuites",
  "tlsMinVersion",
  "enableContentionProfiling",
  "enableDebugFlagsHandler",
  "healthzPort",
  "oomScoreAdj",
  "hairpinMode",
  "maxOpenFiles",
  "streamingConnectionIdleTimeout",
  "volumeStatsAggPeriod",
  "volumePluginDir",
  "evictionSoft",
  "evictionSoftGracePeriod",
  "evictionMaxPodGracePeriod",
  "podsPerCore",
  "enableControllerAttachDetach",
  "makeIPTablesUtilChains",
  "cpuManagerPolicy",
  "memoryManagerPolicy",
  "topologyManagerPolicy",
  "shutdownGracePeriod",
  "shutdownGracePeriodCriticalPods",
  "featureGates",
  "systemReservedCgroup",
  "kubeReservedCgroup",
  "enforceNodeAllocatable",
  "kubeletCgroups",
  "systemCgroups",
  "localStorageCapacityIsolation",
  "containerLogMaxWorkers",
  "containerLogMonitorInterval",
  "memorySwap",
  "contentType",
  "configMapAndSecretChangeDetectionStrategy",
]);
