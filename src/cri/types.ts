/**
 * Typed view of the part of CRI runtime.v1 that tskubelet uses.
 * Names are the proto's, in camelCase (as @grpc/proto-loader presents them).
 * Every int64/uint64 field is a `bigint`, so nanosecond timestamps and byte counts never lose precision.
 * Optional fields are absent when the runtime did not send them.
 */

export interface KeyValue {
  key: string;
  value: string;
}

export type Labels = Record<string, string>;

export interface VersionResponse {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface RuntimeStatus {
  conditions: RuntimeCondition[];
}

export interface StatusResponse {
  status: RuntimeStatus;
  info: Record<string, string>;
}

// ---- sandboxes ----

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

export interface DNSConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

export type Protocol = "TCP" | "UDP" | "SCTP";

export interface PortMapping {
  protocol: Protocol;
  containerPort: number;
  hostPort: number;
  hostIp: string;
}

/** NamespaceMode: POD=0, CONTAINER=1, NODE=2, TARGET=3 */
export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET";

export interface NamespaceOption {
  network: NamespaceMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
  targetId?: string;
}

export interface Int64Value {
  value: bigint;
}

export interface SecurityProfile {
  profileType: "RuntimeDefault" | "Unconfined" | "Localhost";
  localhostRef: string;
}

export interface LinuxSandboxSecurityContext {
  namespaceOptions?: NamespaceOption;
  runAsUser?: Int64Value;
  runAsGroup?: Int64Value;
  readonlyRootfs?: boolean;
  supplementalGroups?: bigint[];
  privileged?: boolean;
  seccomp?: SecurityProfile;
}

export interface LinuxContainerResources {
  cpuPeriod?: bigint;
  cpuQuota?: bigint;
  cpuShares?: bigint;
  memoryLimitInBytes?: bigint;
  oomScoreAdj?: bigint;
  cpusetCpus?: string;
  cpusetMems?: string;
  unified?: Record<string, string>;
  memorySwapLimitInBytes?: bigint;
}

export interface LinuxPodSandboxConfig {
  cgroupParent?: string;
  securityContext?: LinuxSandboxSecurityContext;
  sysctls?: Record<string, string>;
  overhead?: LinuxContainerResources;
  resources?: LinuxContainerResources;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  dnsConfig?: DNSConfig;
  portMappings?: PortMapping[];
  labels?: Labels;
  annotations?: Labels;
  linux?: LinuxPodSandboxConfig;
}

export type PodSandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: bigint;
  labels: Labels;
  annotations: Labels;
  runtimeHandler: string;
}

export interface PodIP {
  ip: string;
}

export interface PodSandboxNetworkStatus {
  ip: string;
  additionalIps: PodIP[];
}

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: bigint;
  network?: PodSandboxNetworkStatus;
  labels: Labels;
  annotations: Labels;
  runtimeHandler: string;
}

export interface PodSandboxStatusResponse {
  status: PodSandboxStatus;
  info: Record<string, string>;
}

export interface PodSandboxFilter {
  id?: string;
  state?: { state: PodSandboxState };
  labelSelector?: Labels;
}

// ---- containers ----

export interface ContainerMetadata {
  name: string;
  attempt: number;
}

export interface ImageSpec {
  image: string;
  annotations?: Labels;
  userSpecifiedImage?: string;
  runtimeHandler?: string;
}

/** MountPropagation: PROPAGATION_PRIVATE=0, HOST_TO_CONTAINER=1, BIDIRECTIONAL=2 */
export type MountPropagation = "PROPAGATION_PRIVATE" | "PROPAGATION_HOST_TO_CONTAINER" | "PROPAGATION_BIDIRECTIONAL";

export interface Mount {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
  selinuxRelabel?: boolean;
  propagation?: MountPropagation;
}

export interface Capability {
  addCapabilities: string[];
  dropCapabilities: string[];
  addAmbientCapabilities?: string[];
}

export interface LinuxContainerSecurityContext {
  capabilities?: Capability;
  privileged?: boolean;
  namespaceOptions?: NamespaceOption;
  runAsUser?: Int64Value;
  runAsGroup?: Int64Value;
  runAsUsername?: string;
  readonlyRootfs?: boolean;
  supplementalGroups?: bigint[];
  noNewPrivs?: boolean;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  seccomp?: SecurityProfile;
}

export interface LinuxContainerConfig {
  resources?: LinuxContainerResources;
  securityContext?: LinuxContainerSecurityContext;
}

export interface ContainerConfig {
  metadata: ContainerMetadata;
  image: ImageSpec;
  command?: string[];
  args?: string[];
  workingDir?: string;
  envs?: KeyValue[];
  mounts?: Mount[];
  labels?: Labels;
  annotations?: Labels;
  logPath?: string;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  linux?: LinuxContainerConfig;
}

export type ContainerState = "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";

export interface Container {
  id: string;
  podSandboxId: string;
  metadata: ContainerMetadata;
  image: ImageSpec;
  imageRef: string;
  state: ContainerState;
  createdAt: bigint;
  labels: Labels;
  annotations: Labels;
}

export interface ContainerStatus {
  id: string;
  metadata: ContainerMetadata;
  state: ContainerState;
  createdAt: bigint;
  startedAt: bigint;
  finishedAt: bigint;
  exitCode: number;
  image: ImageSpec;
  imageRef: string;
  reason: string;
  message: string;
  labels: Labels;
  annotations: Labels;
  mounts: Mount[];
  logPath: string;
}

export interface ContainerStatusResponse {
  status: ContainerStatus;
  info: Record<string, string>;
}

export interface ContainerFilter {
  id?: string;
  state?: { state: ContainerState };
  podSandboxId?: string;
  labelSelector?: Labels;
}

export interface ExecSyncResponse {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

export interface ExecRequest {
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface AttachRequest {
  containerId: string;
  stdin: boolean;
  tty: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface PortForwardRequest {
  podSandboxId: string;
  port: number[];
}

// ---- stats ----

export interface UInt64Value {
  value: bigint;
}

export interface CpuUsage {
  timestamp: bigint;
  usageCoreNanoSeconds?: UInt64Value;
  usageNanoCores?: UInt64Value;
}

export interface MemoryUsage {
  timestamp: bigint;
  workingSetBytes?: UInt64Value;
  availableBytes?: UInt64Value;
  usageBytes?: UInt64Value;
  rssBytes?: UInt64Value;
  pageFaults?: UInt64Value;
  majorPageFaults?: UInt64Value;
}

export interface FilesystemIdentifier {
  mountpoint: string;
}

export interface FilesystemUsage {
  timestamp: bigint;
  fsId?: FilesystemIdentifier;
  usedBytes?: UInt64Value;
  inodesUsed?: UInt64Value;
}

export interface ContainerAttributes {
  id: string;
  metadata: ContainerMetadata;
  labels: Labels;
  annotations: Labels;
}

export interface ContainerStats {
  attributes?: ContainerAttributes;
  cpu?: CpuUsage;
  memory?: MemoryUsage;
  writableLayer?: FilesystemUsage;
}

export interface ContainerStatsFilter {
  id?: string;
  podSandboxId?: string;
  labelSelector?: Labels;
}

// ---- images ----

export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface Image {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: bigint;
  uid?: Int64Value;
  username: string;
  spec?: ImageSpec;
  pinned: boolean;
}

export interface ImageFsInfo {
  timestamp: bigint;
  fsId?: FilesystemIdentifier;
  usedBytes?: UInt64Value;
  inodesUsed?: UInt64Value;
}

export interface ImageFsInfoResponse {
  imageFilesystems: ImageFsInfo[];
  containerFilesystems: ImageFsInfo[];
}

// ---- the services ----

export interface CallOptions {
  /** Overrides the client's default deadline (runtimeRequestTimeout) for this call, in ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface RuntimeService {
  version(opts?: CallOptions): Promise<VersionResponse>;
  status(verbose?: boolean, opts?: CallOptions): Promise<StatusResponse>;

  runPodSandbox(config: PodSandboxConfig, runtimeHandler?: string, opts?: CallOptions): Promise<string>;
  stopPodSandbox(podSandboxId: string, opts?: CallOptions): Promise<void>;
  removePodSandbox(podSandboxId: string, opts?: CallOptions): Promise<void>;
  podSandboxStatus(podSandboxId: string, opts?: CallOptions): Promise<PodSandboxStatusResponse>;
  listPodSandbox(filter?: PodSandboxFilter, opts?: CallOptions): Promise<PodSandbox[]>;

  createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig, opts?: CallOptions): Promise<string>;
  startContainer(containerId: string, opts?: CallOptions): Promise<void>;
  /** `timeoutSeconds` is the grace period the runtime gives before SIGKILL. */
  stopContainer(containerId: string, timeoutSeconds: number, opts?: CallOptions): Promise<void>;
  removeContainer(containerId: string, opts?: CallOptions): Promise<void>;
  listContainers(filter?: ContainerFilter, opts?: CallOptions): Promise<Container[]>;
  containerStatus(containerId: string, opts?: CallOptions): Promise<ContainerStatusResponse>;
  reopenContainerLog(containerId: string, opts?: CallOptions): Promise<void>;

  execSync(containerId: string, cmd: string[], timeoutSeconds: number, opts?: CallOptions): Promise<ExecSyncResponse>;
  exec(req: ExecRequest, opts?: CallOptions): Promise<string>;
  attach(req: AttachRequest, opts?: CallOptions): Promise<string>;
  portForward(req: PortForwardRequest, opts?: CallOptions): Promise<string>;

  containerStats(containerId: string, opts?: CallOptions): Promise<ContainerStats>;
  listContainerStats(filter?: ContainerStatsFilter, opts?: CallOptions): Promise<ContainerStats[]>;

  /**
   * Server-streaming container events. Runtimes that do not implement it (containerd 1.6)
   * make this resolve to `"unimplemented"` rather than throw.
   */
  supportsContainerEvents(opts?: CallOptions): Promise<boolean>;

  close(): void;
}

export interface ImageService {
  listImages(filter?: { image?: ImageSpec }, opts?: CallOptions): Promise<Image[]>;
  /** Resolves to undefined when the image is not present. */
  imageStatus(image: ImageSpec, opts?: CallOptions): Promise<Image | undefined>;
  /** Returns the image reference (digest) the runtime pulled. */
  pullImage(image: ImageSpec, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig, opts?: CallOptions): Promise<string>;
  removeImage(image: ImageSpec, opts?: CallOptions): Promise<void>;
  imageFsInfo(opts?: CallOptions): Promise<ImageFsInfoResponse>;
  close(): void;
}

/** Error codes the client maps gRPC failures to. */
export type CriErrorCode =
  | "Unavailable" // socket missing / runtime down
  | "DeadlineExceeded"
  | "NotFound"
  | "Unimplemented"
  | "InvalidArgument"
  | "Unknown";

// ---- additions by the CRI client (new types only; nothing above is changed) ----

export interface NetworkInterfaceUsage {
  name: string;
  rxBytes?: UInt64Value;
  rxErrors?: UInt64Value;
  txBytes?: UInt64Value;
  txErrors?: UInt64Value;
}

export interface NetworkUsage {
  timestamp: bigint;
  defaultInterface?: NetworkInterfaceUsage;
  interfaces: NetworkInterfaceUsage[];
}

export interface ProcessUsage {
  timestamp: bigint;
  processCount?: UInt64Value;
}

export interface LinuxPodSandboxStats {
  cpu?: CpuUsage;
  memory?: MemoryUsage;
  network?: NetworkUsage;
  process?: ProcessUsage;
  containers: ContainerStats[];
}

export interface PodSandboxAttributes {
  id: string;
  metadata: PodSandboxMetadata;
  labels: Labels;
  annotations: Labels;
}

export interface PodSandboxStats {
  attributes?: PodSandboxAttributes;
  linux?: LinuxPodSandboxStats;
}

export interface PodSandboxStatsFilter {
  id?: string;
  labelSelector?: Labels;
}

/** Pod-level stats (PodSandboxStats / ListPodSandboxStats); containerd 1.6 implements both on Linux. */
export interface PodSandboxStatsService {
  podSandboxStats(podSandboxId: string, opts?: CallOptions): Promise<PodSandboxStats>;
  listPodSandboxStats(filter?: PodSandboxStatsFilter, opts?: CallOptions): Promise<PodSandboxStats[]>;
}

export type ContainerEventType =
  | "CONTAINER_CREATED_EVENT"
  | "CONTAINER_STARTED_EVENT"
  | "CONTAINER_STOPPED_EVENT"
  | "CONTAINER_DELETED_EVENT";

export interface ContainerEvent {
  containerId: string;
  containerEventType: ContainerEventType;
  createdAt: bigint;
  podSandboxStatus?: PodSandboxStatus;
  containersStatuses: ContainerStatus[];
}

/**
 * The GetContainerEvents stream. It has no deadline: it lives until `signal` aborts (the iterator
 * then ends quietly) or the runtime fails (the iterator throws a CriError; "Unimplemented" on
 * runtimes without it, such as containerd 1.6).
 */
export interface ContainerEventsService {
  containerEvents(opts: { signal: AbortSignal }): AsyncIterable<ContainerEvent>;
}
