/**
 * Helpers of the end-to-end tests through kubectl against the test control plane: objects as
 * JSON, a pod's events, and waiting for a tskubelet node to be Ready for pods.
 */
import type { TestCluster } from "./cluster.js";
import { waitFor } from "./tskubelet.js";

export interface EventJSON {
  type: string;
  reason: string;
  message: string;
}

/** `kubectl <args> -o json`, parsed. */
export async function kubectlJSON<T>(cp: TestCluster, args: string[]): Promise<T> {
  return JSON.parse(await cp.kubectl([...args, "-o", "json"])) as T;
}

/** The events of an object of the default namespace, by its name. */
export async function eventsOf(cp: TestCluster, name: string): Promise<EventJSON[]> {
  return (await kubectlJSON<{ items: EventJSON[] }>(cp, ["get", "events", "--field-selector", `involvedObject.name=${name}`])).items;
}

/** Waits until the node is Ready and the default ServiceAccount exists (its admission needs it before pods can be created). */
export async function waitNodeReadyForPods(cp: TestCluster, node: string): Promise<void> {
  await waitFor(async () => {
    const n = await kubectlJSON<{ status: { conditions?: { type: string; status: string }[] } }>(cp, ["get", "node", node]).catch(() => undefined);
    return n?.status.conditions?.find((c) => c.type === "Ready")?.status === "True";
  }, { timeoutMs: 60_000, what: () => "the node Ready" });
  await waitFor(async () => (await cp.kubectl(["get", "serviceaccount", "default", "-o", "name"]).catch(() => "")).includes("default"), { timeoutMs: 60_000, what: () => "the default ServiceAccount" });
}
