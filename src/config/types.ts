/**
 * The KubeletConfiguration (kubelet.config.k8s.io/v1beta1) fields tskubelet understands,
 * after defaulting. Durations are milliseconds here and Go duration strings on the wire.
 */
export interface Taint {
  key: string;
  value?: string;
  effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}

export interface KubeletConfiguration {
  staticPodPath: string;
  syncFrequency: number;
  fileCheckFrequency: number;
  address: string;
  port: number;
  readOnlyPort: number;
  /** tskubelet's extension: the cAdvisor-style listener (upstream removed its --cadvisor-port in 1.12). */
  cadvisorPort: number;
  healthzPort: number;
  healthzBindAddress: string;
  tlsCertFile: string;
  tlsPrivateKeyFile: string;
  rotateCertificates: boolean;
  serverTLSBootstrap: boolean;
  authentication: {
    x509: { clientCAFile: string };
    webhook: { enabled: boolean; cacheTTL: number };
    anonymous: { enabled: boolean };
  };
  authorization: {
    mode: "AlwaysAllow" | "Webhook";
    webhook: { cacheAuthorizedTTL: number; cacheUnauthorizedTTL: number };
  };
  enableServer: boolean;
  enableDebuggingHandlers: boolean;
  enableProfilingHandler: boolean;
  enableSystemLogHandler: boolean;
  clusterDomain: string;
  clusterDNS: string[];
  nodeStatusUpdateFrequency: number;
  nodeStatusReportFrequency: number;
  nodeLeaseDurationSeconds: number;
  imageMinimumGCAge: number;
  imageMaximumGCAge: number;
  imageGCHighThresholdPercent: number;
  imageGCLowThresholdPercent: number;
  runtimeRequestTimeout: number;
  maxPods: number;
  podPidsLimit: number;
  podLogsDir: string;
  containerRuntimeEndpoint: string;
  imageServiceEndpoint: string;
  cgroupDriver: "cgroupfs" | "systemd";
  cgroupsPerQOS: boolean;
  cgroupRoot: string;
  allowedUnsafeSysctls: string[];
  seccompDefault: boolean;
  serializeImagePulls: boolean;
  maxParallelImagePulls: number;
  registryPullQPS: number;
  registryBurst: number;
  evictionHard: Record<string, string>;
  /** How long a node pressure condition stays after its signal cleared (ms). */
  evictionPressureTransitionPeriod: number;
  /** How much more than its threshold a signal must recover before the threshold counts as resolved. */
  evictionMinimumReclaim: Record<string, string>;
  kubeReserved: Record<string, string>;
  systemReserved: Record<string, string>;
  registerNode: boolean;
  registerWithTaints: Taint[];
  containerLogMaxSize: string;
  containerLogMaxFiles: number;
  resolvConf: string;
  failSwapOn: boolean;
  eventRecordQPS: number;
  eventBurst: number;
  kubeAPIQPS: number;
  kubeAPIBurst: number;
  providerID: string;
  logging: { verbosity: number };
}

/** Settings that are flags only (upstream keeps them out of the config file). */
export interface KubeletFlags {
  config: string;
  kubeconfig: string;
  bootstrapKubeconfig: string;
  certDir: string;
  rootDir: string;
  hostnameOverride: string;
  nodeIP: string;
  nodeLabels: Record<string, string>;
  /** tskubelet's own: run the serving-CSR approver in-process with this (admin) kubeconfig. */
  csrApproverKubeconfig: string;
  /** tskubelet's own: how many new pods may start at once (0: no limit). */
  maxParallelPodStarts: number;
}

export interface LoadedConfiguration {
  config: KubeletConfiguration;
  flags: KubeletFlags;
  /** The node name: --hostname-override or the OS hostname, lowercased. */
  nodeName: string;
  warnings: string[];
}
