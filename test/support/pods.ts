/**
 * Readers and builders for the static pods of the integration tests: container statuses and
 * states, the containers' CRI log files, and the common head of a static pod manifest.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
import { waitFor, type TskubeletProcess } from "./tskubelet.js";

export function findStatus(list: V1ContainerStatus[] | undefined, name: string): V1ContainerStatus | undefined {
  return list?.find((c) => c.name === name);
}

/** The status of one (app) container of a pod. */
export function containerStatus(p: V1Pod | undefined, name = "main"): V1ContainerStatus | undefined {
  return findStatus(p?.status?.containerStatuses, name);
}

/** "running", "terminated:<exit code>" or "waiting:<reason>" ("waiting:?" without a status). */
export function stateOf(s: V1ContainerStatus | undefined): string {
  if (s?.state?.running) return "running";
  if (s?.state?.terminated) return `terminated:${s.state.terminated.exitCode}`;
  return `waiting:${s?.state?.waiting?.reason ?? "?"}`;
}

export function containerState(p: V1Pod | undefined, name: string): string {
  return stateOf(containerStatus(p, name));
}

/** The start of a static pod manifest with a grace period of 1 s; `spec` holds the further spec lines (two-space indent). */
export function staticPodYaml(name: string, spec: string): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  terminationGracePeriodSeconds: 1
${spec}`;
}

/** The CRI log file of a static pod's container (first run); "" while there is none. */
export async function readContainerLog(k: TskubeletProcess, pod: string, container: string): Promise<string> {
  const p = await k.pod(pod);
  const uid = p?.metadata?.uid ?? "";
  return readFile(join(k.logsDir, `default_${pod}-${k.nodeName}_${uid}`, container, "0.log"), "utf8").catch(() => "");
}

/** The text of CRI log lines ("<time> <stream> <tag> <text>"). */
export function logText(raw: string): string {
  return raw
    .split("\n")
    .map((l) => l.split(" ").slice(3).join(" "))
    .join("\n");
}

/** Waits until a container whose script ends with `echo END` has printed END; resolves with its output. */
export function scriptOutput(k: TskubeletProcess, pod: string, container: string): Promise<string> {
  return waitFor(async () => {
    const t = logText(await readContainerLog(k, pod, container));
    return /^END$/m.test(t) ? t : undefined;
  }, { timeoutMs: 60_000, what: () => `${pod}/${container} to finish its script` });
}

/**
 * Waits until the kubelet reports a container in `want` (e.g. "running"). A container's output can
 * show before the status that says it runs, so tests that read output first wait here.
 */
export async function waitForState(k: TskubeletProcess, pod: string, container: string, want: string): Promise<void> {
  let last = "";
  await waitFor(async () => (last = containerState(await k.pod(pod), container)) === want, { timeoutMs: 30_000, what: () => `${pod}/${container} ${want} (last: ${last})` });
}
