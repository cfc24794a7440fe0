/**
 * CRI runtime.v1 clients over gRPC: RuntimeService and ImageService as typed in src/cri/types.ts.
 */
import { CriError } from "./errors.js";
import { CriTransport, type CriClientOptions } from "./transport.js";
import type {
  AttachRequest,
  AuthConfig,
  CallOptions,
  Container,
  ContainerConfig,
  ContainerEvent,
  ContainerEventsService,
  ContainerFilter,
  ContainerStats,
  ContainerStatsFilter,
  ContainerStatusResponse,
  ExecRequest,
  ExecSyncResponse,
  Image,
  ImageFsInfoResponse,
  ImageService,
  ImageSpec,
  PodSandbox,
  PodSandboxConfig,
  PodSandboxFilter,
  PodSandboxStats,
  PodSandboxStatsFilter,
  PodSandboxStatsService,
  PodSandboxStatusResponse,
  PortForwardRequest,
  RuntimeService,
  StatusResponse,
  VersionResponse,
} from "./types.js";

export type { CriClientOptions } from "./transport.js";

/** The version string the kubelet sends in VersionRequest (upstream's kubeRuntimeAPIVersion). */
export const KUBELET_CRI_VERSION = "0.1.0";

/** How long supportsContainerEvents() waits for a runtime that accepts the stream but stays silent. */
const EVENTS_PROBE_MS = 2000;

export interface CriRuntimeService extends RuntimeService, PodSandboxStatsService, ContainerEventsService {
  /** The endpoint in canonical form, `unix:///path`. */
  readonly endpoint: string;
}

export interface CriImageService extends ImageService {
  readonly endpoint: string;
}

type R = "RuntimeService";
const RS: R = "RuntimeService";

/** A RuntimeService client for `endpoint` (`unix:///path`, `unix:/path` or `/path`). No I/O until the first call. */
export function createRuntimeService(endpoint: string, opts: CriClientOptions): CriRuntimeService {
  const t = new CriTransport(endpoint, opts);
  const call = <T>(rpc: string, op: string, request: object, o: CallOptions | undefined): Promise<T> =>
    t.unary<T>({ service: RS, rpc, op, request, opts: o });

  return {
    endpoint: t.endpoint.url,

    version: (o) => call<VersionResponse>("Version", "version", { version: KUBELET_CRI_VERSION }, o),

    status: (verbose = false, o) => call<StatusResponse>("Status", "status", { verbose }, o),

    runPodSandbox: async (config, runtimeHandler = "", o) => {
      const res = await call<{ podSandboxId: string }>("RunPodSandbox", "run_podsandbox", { config, runtimeHandler }, o);
      return res.podSandboxId;
    },

    stopPodSandbox: async (podSandboxId, o) => {
      await call("StopPodSandbox", "stop_podsandbox", { podSandboxId }, o);
    },

    removePodSandbox: async (podSandboxId, o) => {
      await call("RemovePodSandbox", "remove_podsandbox", { podSandboxId }, o);
    },

    podSandboxStatus: (podSandboxId, o) =>
      call<PodSandboxStatusResponse>("PodSandboxStatus", "podsandbox_status", { podSandboxId, verbose: false }, o),

    listPodSandbox: async (filter?: PodSandboxFilter, o?: CallOptions) => {
      const res = await call<{ items?: PodSandbox[] }>("ListPodSandbox", "list_podsandbox", filter ? { filter } : {}, o);
      return res.items ?? [];
    },

    createContainer: async (podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig, o?: CallOptions) => {
      const res = await call<{ containerId: string }>("CreateContainer", "create_container", { podSandboxId, config, sandboxConfig }, o);
      return res.containerId;
    },

    startContainer: async (containerId, o) => {
      await call("StartContainer", "start_container", { containerId }, o);
    },

    stopContainer: async (containerId, timeoutSeconds, o) => {
      // The runtime waits up to `timeout` before SIGKILL, so the deadline must cover it.
      await t.unary({
        service: RS,
        rpc: "StopContainer",
        op: "stop_container",
        request: { containerId, timeout: BigInt(Math.max(0, Math.trunc(timeoutSeconds))) },
        opts: o,
        extraMs: Math.max(0, timeoutSeconds) * 1000,
      });
    },

    removeContainer: async (containerId, o) => {
      await call("RemoveContainer", "remove_container", { containerId }, o);
    },

    listContainers: async (filter?: ContainerFilter, o?: CallOptions) => {
      const res = await call<{ containers?: Container[] }>("ListContainers", "list_containers", filter ? { filter } : {}, o);
      return res.containers ?? [];
    },

    containerStatus: (containerId, o) =>
      call<ContainerStatusResponse>("ContainerStatus", "container_status", { containerId, verbose: false }, o),

    reopenContainerLog: async (containerId, o) => {
      await call("ReopenContainerLog", "reopen_container_log", { containerId }, o);
    },

    execSync: (containerId: string, cmd: string[], timeoutSeconds: number, o?: CallOptions) =>
      // The command's own timeout goes to the runtime, and the deadline is extended by it so the
      // runtime (not the client) is the one that reports a command timing out.
      t.unary<ExecSyncResponse>({
        service: RS,
        rpc: "ExecSync",
        op: "exec_sync",
        request: { containerId, cmd, timeout: BigInt(Math.max(0, Math.ceil(timeoutSeconds))) },
        opts: o,
        extraMs: Math.max(0, timeoutSeconds) * 1000,
      }),

    exec: async (req: ExecRequest, o?: CallOptions) => (await call<{ url: string }>("Exec", "exec", req, o)).url,

    attach: async (req: AttachRequest, o?: CallOptions) => (await call<{ url: string }>("Attach", "attach", req, o)).url,

    portForward: async (req: PortForwardRequest, o?: CallOptions) =>
      (await call<{ url: string }>("PortForward", "port_forward", req, o)).url,

    containerStats: async (containerId, o) => {
      const res = await call<{ stats?: ContainerStats }>("ContainerStats", "container_stats", { containerId }, o);
      return res.stats ?? {};
    },

    listContainerStats: async (filter?: ContainerStatsFilter, o?: CallOptions) => {
      const res = await call<{ stats?: ContainerStats[] }>("ListContainerStats", "list_container_stats", filter ? { filter } : {}, o);
      return res.stats ?? [];
    },

    podSandboxStats: async (podSandboxId, o) => {
      const res = await call<{ stats?: PodSandboxStats }>("PodSandboxStats", "podsandbox_stats", { podSandboxId }, o);
      return res.stats ?? {};
    },

    listPodSandboxStats: async (filter?: PodSandboxStatsFilter, o?: CallOptions) => {
      const res = await call<{ stats?: PodSandboxStats[] }>("ListPodSandboxStats", "list_podsandbox_stats", filter ? { filter } : {}, o);
      return res.stats ?? [];
    },

    supportsContainerEvents: (o) =>
      t.probeStream({
        service: RS,
        rpc: "GetContainerEvents",
        op: "get_container_events",
        request: {},
        timeoutMs: o?.timeoutMs ?? Math.min(opts.timeoutMs, EVENTS_PROBE_MS),
      }),

    containerEvents: ({ signal }) =>
      t.serverStream<ContainerEvent>({ service: RS, rpc: "GetContainerEvents", op: "get_container_events", request: {}, signal }),

    close: () => t.close(),
  };
}

/** An ImageService client for `endpoint`. No I/O until the first call. */
export function createImageService(endpoint: string, opts: CriClientOptions): CriImageService {
  const t = new CriTransport(endpoint, opts);
  const call = <T>(rpc: string, op: string, request: object, o: CallOptions | undefined): Promise<T> =>
    t.unary<T>({ service: "ImageService", rpc, op, request, opts: o });

  return {
    endpoint: t.endpoint.url,

    listImages: async (filter?: { image?: ImageSpec }, o?: CallOptions) => {
      const res = await call<{ images?: Image[] }>("ListImages", "list_images", filter ? { filter } : {}, o);
      return res.images ?? [];
    },

    imageStatus: async (image: ImageSpec, o?: CallOptions) => {
      const res = await call<{ image?: Image }>("ImageStatus", "image_status", { image, verbose: false }, o);
      // An absent image comes back as an empty response, or (some runtimes) an image with no id.
      return res.image && res.image.id !== "" ? res.image : undefined;
    },

    pullImage: async (image: ImageSpec, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig, o?: CallOptions) => {
      const request: Record<string, unknown> = { image };
      if (auth) request.auth = auth;
      if (sandboxConfig) request.sandboxConfig = sandboxConfig;
      const res = await call<{ imageRef: string }>("PullImage", "pull_image", request, o);
      return res.imageRef;
    },

    removeImage: async (image, o) => {
      await call("RemoveImage", "remove_image", { image }, o);
    },

    imageFsInfo: async (o) => {
      const res = await call<Partial<ImageFsInfoResponse>>("ImageFsInfo", "image_fs_info", {}, o);
      return { imageFilesystems: res.imageFilesystems ?? [], containerFilesystems: res.containerFilesystems ?? [] };
    },

    close: () => t.close(),
  };
}

/**
 * Calls Version and fails clearly unless the runtime speaks CRI v1. Returns the version so the
 * caller can report runtimeName/runtimeVersion (the node's containerRuntimeVersion).
 */
export async function checkVersion(rs: RuntimeService, opts?: CallOptions): Promise<VersionResponse> {
  const v = await rs.version(opts);
  if (v.runtimeApiVersion !== "v1") {
    const endpoint = "endpoint" in rs && typeof rs.endpoint === "string" ? rs.endpoint : "the configured endpoint";
    throw new CriError(
      "Unimplemented",
      `CRI Version on ${endpoint}: runtime ${v.runtimeName} ${v.runtimeVersion} speaks CRI API ${JSON.stringify(v.runtimeApiVersion)}, ` +
        `but tskubelet needs runtime.v1 (containerd >= 1.6 or CRI-O >= 1.23)`,
      { rpc: "Version", endpoint, details: v.runtimeApiVersion },
    );
  }
  return v;
}
