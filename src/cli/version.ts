/** Version facts of this build. */
export const TSKUBELET_VERSION = "0.1.0";
/** The Kubernetes minor whose kubelet behaviour and API tskubelet follows; reported as kubeletVersion. */
export const KUBERNETES_VERSION = "v1.33.0";
