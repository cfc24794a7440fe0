/** Where a pod's volumes live on the node, laid out as upstream lays them out. */
import { join } from "node:path";

/** Volume plugins, named as upstream names their directories (`kubernetes.io~<plugin>`). */
export type VolumePlugin = "empty-dir" | "configmap" | "secret" | "downward-api" | "projected";

export function podDir(rootDir: string, uid: string): string {
  return join(rootDir, "pods", uid);
}

/** `<rootDir>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>` */
export function volumeDir(rootDir: string, uid: string, plugin: VolumePlugin, name: string): string {
  return join(podDir(rootDir, uid), "volumes", `kubernetes.io~${plugin}`, name);
}
