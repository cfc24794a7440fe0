/**
 * The kubelet's metrics, with upstream's names, in one registry passed to whoever records them.
 * Nothing here is a module singleton: tests make their own.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

const POD_START_BUCKETS = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600];
const CERT_ROTATION_BUCKETS = [60, 3600, 14400, 86400, 604800, 2592000, 7776000, 15552000, 31104000, 124416000];
const RUNTIME_OP_BUCKETS = Array.from({ length: 14 }, (_, i) => 0.005 * 2.5 ** i);

const IMAGE_PULL_BUCKETS = [1, 5, 10, 20, 30, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600];
const MB = 1024 * 1024;
const GB = 1024 * MB;
const IMAGE_SIZE_BUCKETS: [number, string][] = [
  [100 * GB, "GT100GB"],
  [60 * GB, "60GB-100GB"],
  [40 * GB, "40GB-60GB"],
  [30 * GB, "30GB-40GB"],
  [20 * GB, "20GB-30GB"],
  [10 * GB, "10GB-20GB"],
  [5 * GB, "5GB-10GB"],
  [1 * GB, "1GB-5GB"],
  [500 * MB, "500MB-1GB"],
  [100 * MB, "100MB-500MB"],
  [10 * MB, "10MB-100MB"],
];

/** The image_size_in_bytes label of kubelet_image_pull_duration_seconds: a size range, as upstream buckets it. */
export function imageSizeBucket(bytes: number): string {
  for (const [lower, label] of IMAGE_SIZE_BUCKETS) if (bytes >= lower) return label;
  return "0-10MB";
}

export interface KubeletMetrics {
  registry: Registry;
  nodeName: Gauge<"node">;
  runningPods: Gauge;
  runningContainers: Gauge<"container_state">;
  desiredPods: Gauge<"static">;
  podStartDuration: Histogram;
  podWorkerDuration: Histogram<"operation_type">;
  startedPods: Counter;
  startedPodsErrors: Counter;
  startedContainers: Counter<"container_type">;
  startedContainersErrors: Counter<"container_type" | "code">;
  runtimeOperations: Counter<"operation_type">;
  runtimeOperationsErrors: Counter<"operation_type">;
  runtimeOperationsDuration: Histogram<"operation_type">;
  plegRelistDuration: Histogram;
  plegLastSeen: Gauge;
  evictions: Counter<"eviction_signal">;
  evictionStatsAge: Histogram<"eviction_signal">;
  httpRequests: Counter<"method" | "path" | "server_type" | "long_running">;
  httpRequestsDuration: Histogram<"method" | "path" | "server_type" | "long_running">;
  httpInflight: Gauge<"method" | "path" | "server_type" | "long_running">;
  /** Sources of the certificate TTL gauges; the certificate managers replace them (+Inf with no certificate). */
  certificateTTL: { client: () => number; server: () => number };
  certClientTTL: Gauge;
  certClientRenewErrors: Counter;
  certServerTTL: Gauge;
  certServerRenewErrors: Counter;
  certServerRotationSeconds: Histogram;
  imagePullDuration: Histogram<"image_size_in_bytes">;
  imageGarbageCollected: Counter<"reason">;
  /** Records one CRI call (the CRI client's onCall hook). */
  recordRuntimeCall(op: string, ms: number, err?: unknown): void;
}

export function createKubeletMetrics(opts: { nodeName: string; processMetrics?: boolean }): KubeletMetrics {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const r = { registers: [registry] };
  const m: KubeletMetrics = {
    registry,
    nodeName: new Gauge({ name: "kubelet_node_name", help: "The node's name. The count is always 1.", labelNames: ["node"], ...r }),
    runningPods: new Gauge({ name: "kubelet_running_pods", help: "Number of pods that have a running pod sandbox", ...r }),
    runningContainers: new Gauge({ name: "kubelet_running_containers", help: "Number of containers currently running", labelNames: ["container_state"], ...r }),
    desiredPods: new Gauge({ name: "kubelet_desired_pods", help: "The number of pods the kubelet is being instructed to run.", labelNames: ["static"], ...r }),
    podStartDuration: new Histogram({ name: "kubelet_pod_start_duration_seconds", help: "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run", buckets: POD_START_BUCKETS, ...r }),
    podWorkerDuration: new Histogram({ name: "kubelet_pod_worker_duration_seconds", help: "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync", labelNames: ["operation_type"], ...r }),
    startedPods: new Counter({ name: "kubelet_started_pods_total", help: "Cumulative number of pods started", ...r }),
    startedPodsErrors: new Counter({ name: "kubelet_started_pods_errors_total", help: "Cumulative number of errors when starting pods", ...r }),
    startedContainers: new Counter({ name: "kubelet_started_containers_total", help: "Cumulative number of containers started", labelNames: ["container_type"], ...r }),
    startedContainersErrors: new Counter({ name: "kubelet_started_containers_errors_total", help: "Cumulative number of errors when starting containers", labelNames: ["container_type", "code"], ...r }),
    runtimeOperations: new Counter({ name: "kubelet_runtime_operations_total", help: "Cumulative number of runtime operations by operation type.", labelNames: ["operation_type"], ...r }),
    runtimeOperationsErrors: new Counter({ name: "kubelet_runtime_operations_errors_total", help: "Cumulative number of runtime operation errors by operation type.", labelNames: ["operation_type"], ...r }),
    runtimeOperationsDuration: new Histogram({ name: "kubelet_runtime_operations_duration_seconds", help: "Duration in seconds of runtime operations. Broken down by operation type.", labelNames: ["operation_type"], buckets: RUNTIME_OP_BUCKETS, ...r }),
    plegRelistDuration: new Histogram({ name: "kubelet_pleg_relist_duration_seconds", help: "Duration in seconds for relisting pods in PLEG.", ...r }),
    plegLastSeen: new Gauge({ name: "kubelet_pleg_last_seen_seconds", help: "Timestamp in seconds when PLEG was last seen active.", ...r }),
    evictions: new Counter({ name: "kubelet_evictions", help: "Cumulative number of pod evictions by eviction signal", labelNames: ["eviction_signal"], ...r }),
    evictionStatsAge: new Histogram({
      name: "kubelet_eviction_stats_age_seconds",
      help: "Time between when stats are collected, and when pod is evicted based on those stats by eviction signal",
      labelNames: ["eviction_signal"],
      ...r,
    }),
    httpRequests: new Counter({ name: "kubelet_http_requests_total", help: "Number of the http requests received since the server started", labelNames: ["method", "path", "server_type", "long_running"], ...r }),
    httpRequestsDuration: new Histogram({ name: "kubelet_http_requests_duration_seconds", help: "Duration in seconds to serve http requests", labelNames: ["method", "path", "server_type", "long_running"], ...r }),
    httpInflight: new Gauge({ name: "kubelet_http_inflight_requests", help: "Number of the inflight http requests", labelNames: ["method", "path", "server_type", "long_running"], ...r }),
    certificateTTL: { client: () => Number.POSITIVE_INFINITY, server: () => Number.POSITIVE_INFINITY },
    certClientTTL: new Gauge({
      name: "kubelet_certificate_manager_client_ttl_seconds",
      help: "Seconds until the kubelet's client certificate expires; +Inf when there is no usable client certificate.",
      collect() {
        this.set(m.certificateTTL.client());
      },
      ...r,
    }),
    certClientRenewErrors: new Counter({ name: "kubelet_certificate_manager_client_expiration_renew_errors", help: "Failed attempts to get or renew the client certificate.", ...r }),
    certServerTTL: new Gauge({
      name: "kubelet_certificate_manager_server_ttl_seconds",
      help: "Seconds until the kubelet's serving certificate expires; +Inf when there is no managed serving certificate.",
      collect() {
        this.set(m.certificateTTL.server());
      },
      ...r,
    }),
    certServerRenewErrors: new Counter({ name: "kubelet_server_expiration_renew_errors", help: "Failed attempts to get or renew the serving certificate.", ...r }),
    certServerRotationSeconds: new Histogram({ name: "kubelet_certificate_manager_server_rotation_seconds", help: "Age in seconds of the serving certificate when it was replaced.", buckets: CERT_ROTATION_BUCKETS, ...r }),
    imagePullDuration: new Histogram({
      name: "kubelet_image_pull_duration_seconds",
      help: "Duration in seconds to pull an image.",
      labelNames: ["image_size_in_bytes"],
      buckets: IMAGE_PULL_BUCKETS,
      ...r,
    }),
    imageGarbageCollected: new Counter({ name: "kubelet_image_garbage_collected_total", help: "Total number of images garbage collected by the kubelet, whether through disk usage or image age.", labelNames: ["reason"], ...r }),
    recordRuntimeCall(op, ms, err) {
      m.runtimeOperations.inc({ operation_type: op });
      m.runtimeOperationsDuration.observe({ operation_type: op }, ms / 1000);
      if (err !== undefined) m.runtimeOperationsErrors.inc({ operation_type: op });
    },
  };
  m.nodeName.set({ node: opts.nodeName }, 1);
  return m;
}
