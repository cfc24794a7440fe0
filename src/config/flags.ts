/**
 * The command-line flags, with the upstream kubelet's names. A flag either sets a
 * KubeletConfiguration field (and then overrides the file) or is a flag-only setting.
 */
export interface ConfigFlag {
  flag: string;
  /** Dotted KubeletConfiguration path this flag sets. */
  path: string;
  help: string;
  bool?: boolean;
}

export interface FlagOnly {
  flag: string;
  key: "config" | "kubeconfig" | "bootstrapKubeconfig" | "certDir" | "rootDir" | "hostnameOverride" | "nodeIP" | "nodeLabels" | "csrApproverKubeconfig" | "maxParallelPodStarts";
  help: string;
  default: string;
}

export const CONFIG_FLAGS: ConfigFlag[] = [
  { flag: "pod-manifest-path", path: "staticPodPath", help: "Directory (or file) of static pod manifests" },
  { flag: "file-check-frequency", path: "fileCheckFrequency", help: "How often to rescan the static pod path (default 20s)" },
  { flag: "sync-frequency", path: "syncFrequency", help: "Maximum period between pod syncs (default 1m0s)" },
  { flag: "container-runtime-endpoint", path: "containerRuntimeEndpoint", help: "CRI runtime socket (default unix:///run/containerd/containerd.sock)" },
  { flag: "image-service-endpoint", path: "imageServiceEndpoint", help: "CRI image service socket (default: the runtime endpoint)" },
  { flag: "runtime-request-timeout", path: "runtimeRequestTimeout", help: "Deadline of every non-streaming CRI call (default 2m0s)" },
  { flag: "max-pods", path: "maxPods", help: "Number of pods that can run on this node (default 110)" },
  { flag: "pod-logs-dir", path: "podLogsDir", help: "Where container logs are written (default /var/log/pods)" },
  { flag: "address", path: "address", help: "IP address the secure port (10250) listens on (default 0.0.0.0)" },
  { flag: "port", path: "port", help: "The kubelet API's HTTPS port (default 10250)" },
  { flag: "read-only-port", path: "readOnlyPort", help: "Read-only HTTP port, no auth; 0 disables (default 10255 with flags only, 0 with --config)" },
  { flag: "cadvisor-port", path: "cadvisorPort", help: "cAdvisor-style metrics and web UI port; 0 disables (default 4194 with flags only, 0 with --config)" },
  { flag: "healthz-port", path: "healthzPort", help: "Port of the localhost healthz endpoint; 0 disables (default 10248)" },
  { flag: "healthz-bind-address", path: "healthzBindAddress", help: "IP address for the healthz server (default 127.0.0.1)" },
  { flag: "tls-cert-file", path: "tlsCertFile", help: "x509 serving certificate for 10250" },
  { flag: "tls-private-key-file", path: "tlsPrivateKeyFile", help: "Private key matching --tls-cert-file" },
  { flag: "client-ca-file", path: "authentication.x509.clientCAFile", help: "CA bundle that client certificates on 10250 are verified against" },
  { flag: "anonymous-auth", path: "authentication.anonymous.enabled", help: "Allow anonymous requests on 10250", bool: true },
  { flag: "authentication-token-webhook", path: "authentication.webhook.enabled", help: "Authenticate bearer tokens with TokenReview", bool: true },
  { flag: "authentication-token-webhook-cache-ttl", path: "authentication.webhook.cacheTTL", help: "TokenReview cache duration (default 2m0s)" },
  { flag: "authorization-mode", path: "authorization.mode", help: "AlwaysAllow or Webhook" },
  { flag: "authorization-webhook-cache-authorized-ttl", path: "authorization.webhook.cacheAuthorizedTTL", help: "Cache for allowed SubjectAccessReviews (default 5m0s)" },
  { flag: "authorization-webhook-cache-unauthorized-ttl", path: "authorization.webhook.cacheUnauthorizedTTL", help: "Cache for denied SubjectAccessReviews (default 30s)" },
  { flag: "rotate-certificates", path: "rotateCertificates", help: "Rotate the client certificate through CSRs", bool: true },
  { flag: "rotate-server-certificates", path: "serverTLSBootstrap", help: "Request and rotate the serving certificate through CSRs", bool: true },
  { flag: "enable-server", path: "enableServer", help: "Serve the kubelet API (default true)", bool: true },
  { flag: "enable-debugging-handlers", path: "enableDebuggingHandlers", help: "Serve logs, exec, attach, port-forward (default true)", bool: true },
  { flag: "cluster-domain", path: "clusterDomain", help: "The cluster's DNS domain" },
  { flag: "cluster-dns", path: "clusterDNS", help: "Comma-separated DNS server IPs for pods" },
  { flag: "node-status-update-frequency", path: "nodeStatusUpdateFrequency", help: "How often node status is computed (default 10s)" },
  { flag: "image-gc-high-threshold", path: "imageGCHighThresholdPercent", help: "Disk usage percent that triggers image GC (default 85)" },
  { flag: "image-gc-low-threshold", path: "imageGCLowThresholdPercent", help: "Disk usage percent image GC frees down to (default 80)" },
  { flag: "minimum-image-ttl-duration", path: "imageMinimumGCAge", help: "Minimum age of an unused image before it is garbage collected (default 2m0s)" },
  { flag: "pod-max-pids", path: "podPidsLimit", help: "Maximum processes per pod; -1 is unlimited" },
  { flag: "cgroup-driver", path: "cgroupDriver", help: "cgroupfs or systemd (default cgroupfs)" },
  { flag: "cgroups-per-qos", path: "cgroupsPerQOS", help: "Create QoS and pod cgroups (default true)", bool: true },
  { flag: "cgroup-root", path: "cgroupRoot", help: "Root cgroup for pods" },
  { flag: "allowed-unsafe-sysctls", path: "allowedUnsafeSysctls", help: "Comma-separated unsafe sysctls or patterns (ending in *) pods may set" },
  { flag: "seccomp-default", path: "seccompDefault", help: "Use RuntimeDefault as the default seccomp profile", bool: true },
  { flag: "serialize-image-pulls", path: "serializeImagePulls", help: "Pull one image at a time (default true)", bool: true },
  { flag: "registry-qps", path: "registryPullQPS", help: "Image pulls per second; 0 is unlimited (default 5)" },
  { flag: "registry-burst", path: "registryBurst", help: "Image pull burst above registry-qps (default 10)" },
  { flag: "eviction-hard", path: "evictionHard", help: "Hard eviction thresholds, e.g. memory.available<100Mi" },
  { flag: "eviction-minimum-reclaim", path: "evictionMinimumReclaim", help: "Minimum reclaim per signal once a threshold is met, e.g. memory.available=0Mi,nodefs.available=500Mi" },
  { flag: "eviction-pressure-transition-period", path: "evictionPressureTransitionPeriod", help: "How long a node pressure condition is held after its signal clears (default 5m0s)" },
  { flag: "kube-reserved", path: "kubeReserved", help: "Resources reserved for Kubernetes components, e.g. cpu=100m,memory=256Mi" },
  { flag: "system-reserved", path: "systemReserved", help: "Resources reserved for the system, e.g. cpu=100m,memory=256Mi" },
  { flag: "register-node", path: "registerNode", help: "Register the node with the apiserver (default true)", bool: true },
  { flag: "register-with-taints", path: "registerWithTaints", help: "Taints to register the node with: key=value:Effect,..." },
  { flag: "container-log-max-size", path: "containerLogMaxSize", help: "Rotate a container log at this size (default 10Mi)" },
  { flag: "container-log-max-files", path: "containerLogMaxFiles", help: "Log files kept per container (default 5)" },
  { flag: "resolv-conf", path: "resolvConf", help: "resolv.conf used as the base of pod DNS (default /etc/resolv.conf)" },
  { flag: "fail-swap-on", path: "failSwapOn", help: "Refuse to start when swap is on (default true)", bool: true },
  { flag: "event-qps", path: "eventRecordQPS", help: "Events per second (default 50)" },
  { flag: "event-burst", path: "eventBurst", help: "Event burst (default 100)" },
  { flag: "kube-api-qps", path: "kubeAPIQPS", help: "QPS to the apiserver (default 50)" },
  { flag: "kube-api-burst", path: "kubeAPIBurst", help: "Burst to the apiserver (default 100)" },
  { flag: "provider-id", path: "providerID", help: "The node's provider ID" },
  { flag: "v", path: "logging.verbosity", help: "Log verbosity (also -v)" },
];

export const FLAG_ONLY: FlagOnly[] = [
  { flag: "config", key: "config", help: "KubeletConfiguration file (kubelet.config.k8s.io/v1beta1); flags override it", default: "" },
  { flag: "kubeconfig", key: "kubeconfig", help: "kubeconfig of the apiserver; empty runs standalone", default: "" },
  { flag: "bootstrap-kubeconfig", key: "bootstrapKubeconfig", help: "kubeconfig used to get a client certificate", default: "" },
  { flag: "cert-dir", key: "certDir", help: "Directory of the kubelet's certificates (default /var/lib/kubelet/pki)", default: "" },
  { flag: "root-dir", key: "rootDir", help: "The kubelet's state directory (default /var/lib/kubelet)", default: "/var/lib/kubelet" },
  { flag: "hostname-override", key: "hostnameOverride", help: "Node name instead of the hostname", default: "" },
  { flag: "node-ip", key: "nodeIP", help: "IP address of the node", default: "" },
  { flag: "node-labels", key: "nodeLabels", help: "Labels added at registration: key=value,...", default: "" },
  {
    flag: "csr-approver-kubeconfig",
    key: "csrApproverKubeconfig",
    help: "tskubelet's own: also run the kubelet-serving CSR approver (tskubelet certs approver) with this kubeconfig, which must be allowed to approve CSRs",
    default: "",
  },
  {
    flag: "max-parallel-pod-starts",
    key: "maxParallelPodStarts",
    help: "tskubelet's own: at most this many new pods create their sandbox and start their containers at once, the others wait in arrival order (a pod keeps its turn at most 10s); 0 for no limit (default: 3 per CPU core)",
    default: "",
  },
];
