/**
 * The one writer of pod status: keeps the latest computed status of every pod, versioned,
 * and tells subscribers (the API syncer in cluster mode) when one changes.
 */
import type { V1Pod, V1PodStatus } from "@kubernetes/client-node";
import { canonicalJSON } from "./defaults.js";

export interface PodStatusEntry {
  pod: V1Pod;
  status: V1PodStatus;
  version: number;
}

export interface StatusManager {
  setStatus(pod: V1Pod, status: V1PodStatus): void;
  getStatus(uid: string): V1PodStatus | undefined;
  entry(uid: string): PodStatusEntry | undefined;
  remove(uid: string): void;
  entries(): PodStatusEntry[];
  subscribe(fn: (e: PodStatusEntry) => void): () => void;
}

export function createStatusManager(): StatusManager {
  const byUid = new Map<string, PodStatusEntry>();
  const fingerprints = new Map<string, string>();
  const subs = new Set<(e: PodStatusEntry) => void>();
  return {
    setStatus(pod, status) {
      const uid = pod.metadata?.uid ?? "";
      const fp = canonicalJSON(JSON.parse(JSON.stringify(status)));
      const old = byUid.get(uid);
      if (old && fingerprints.get(uid) === fp) {
        old.pod = pod;
        return;
      }
      const e: PodStatusEntry = { pod, status, version: (old?.version ?? 0) + 1 };
      byUid.set(uid, e);
      fingerprints.set(uid, fp);
      for (const s of subs) s(e);
    },
    getStatus: (uid) => byUid.get(uid)?.status,
    entry: (uid) => byUid.get(uid),
    remove(uid) {
      byUid.delete(uid);
      fingerprints.delete(uid);
    },
    entries: () => [...byUid.values()],
    subscribe(fn) {
      subs.add(fn);
      return () => subs.delete(fn);
    },
  };
}
