/**
 * The CRI folder's public surface: typed CRI v1 clients for the runtime and image services, the
 * error type they throw, and the message types (src/cri/types.ts).
 */
export {
  checkVersion,
  createImageService,
  createRuntimeService,
  KUBELET_CRI_VERSION,
  type CriClientOptions,
  type CriImageService,
  type CriRuntimeService,
} from "./client.js";
export { CriError, isCriError, isNotFound, isUnimplemented } from "./errors.js";
export { parseEndpoint, type CriEndpoint } from "./endpoint.js";
export type * from "./types.js";
