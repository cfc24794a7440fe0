/** Well-known label, annotation and source names, spelled as upstream spells them. */
export const LABEL_POD_NAME = "io.kubernetes.pod.name";
export const LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace";
export const LABEL_POD_UID = "io.kubernetes.pod.uid";
export const LABEL_CONTAINER_NAME = "io.kubernetes.container.name";
export const LABEL_CONTAINER_TYPE = "io.kubernetes.container.type";
/** tskubelet marks what it creates, so it never adopts another kubelet's sandboxes. */
export const LABEL_MANAGED_BY = "io.tskubelet.managed";

export const ANN_CONTAINER_HASH = "io.kubernetes.container.hash";
export const ANN_CONTAINER_RESTART_COUNT = "io.kubernetes.container.restartCount";
export const ANN_TERMINATION_MESSAGE_PATH = "io.kubernetes.container.terminationMessagePath";
export const ANN_TERMINATION_MESSAGE_POLICY = "io.kubernetes.container.terminationMessagePolicy";
export const ANN_POD_TERMINATION_GRACE = "io.kubernetes.pod.terminationGracePeriod";
/** Set on sandboxes tskubelet creates for hostNetwork pods. */
export const ANN_HOST_NETWORK = "io.tskubelet.hostNetwork";
export const ANN_CONTAINER_PORTS = "io.kubernetes.container.ports";

export const ANN_CONFIG_HASH = "kubernetes.io/config.hash";
export const ANN_CONFIG_SOURCE = "kubernetes.io/config.source";
export const ANN_CONFIG_SEEN = "kubernetes.io/config.seen";
export const ANN_CONFIG_MIRROR = "kubernetes.io/config.mirror";

export const SOURCE_FILE = "file";
export const SOURCE_API = "api";
