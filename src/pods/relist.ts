/**
 * The pod lifecycle event generator: relists sandboxes and containers through CRI every interval
 * (containerd 1.6 has no event stream) and reports the pods whose runtime state changed.
 */
import type { Container, PodSandbox, RuntimeService } from "../cri/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { LABEL_POD_UID } from "../api/labels.js";
import { runtimeFingerprint, type RuntimeObservation } from "./runtime-state.js";

export interface RelistSnapshot {
  /** When the lists were asked for: anything made before is in them. */
  listStartedAtMs: number;
  atMs: number;
  sandboxes: PodSandbox[];
  containers: Container[];
}

export interface RelisterOptions {
  rs: RuntimeService;
  clock: Clock;
  logger: Logger;
  intervalMs: number;
  onPodChanged: (uid: string, seen: RuntimeObservation) => void;
  onRelist?: (snap: RelistSnapshot) => void;
  onDuration?: (ms: number) => void;
}

export interface Relister {
  run(signal: AbortSignal): Promise<void>;
  /** Time of the last successful relist (0 if none yet). */
  lastSuccessMs(): number;
  lastError(): string | undefined;
  latest(): RelistSnapshot | undefined;
}

export function createRelister(opts: RelisterOptions): Relister {
  let previous = new Map<string, string>();
  let lastOk = 0;
  let lastErr: string | undefined;
  let snapshot: RelistSnapshot | undefined;
  let failures = 0;

  const relist = async (): Promise<void> => {
    const t0 = opts.clock.now();
    const [sandboxes, containers] = await Promise.all([opts.rs.listPodSandbox(), opts.rs.listContainers()]);
    const listedAtMs = opts.clock.now();
    const current = new Map<string, { sandboxes: PodSandbox[]; containers: Container[] }>();
    const entry = (uid: string): { sandboxes: PodSandbox[]; containers: Container[] } => {
      let e = current.get(uid);
      if (!e) current.set(uid, (e = { sandboxes: [], containers: [] }));
      return e;
    };
    for (const s of sandboxes) if (s.labels[LABEL_POD_UID]) entry(s.labels[LABEL_POD_UID]).sandboxes.push(s);
    for (const c of containers) if (c.labels[LABEL_POD_UID]) entry(c.labels[LABEL_POD_UID]).containers.push(c);
    const next = new Map<string, string>();
    for (const [uid, e] of current) next.set(uid, runtimeFingerprint(e.sandboxes, e.containers));
    for (const [uid, fp] of next) if (previous.get(uid) !== fp) opts.onPodChanged(uid, { fingerprint: fp, listedAtMs });
    for (const uid of previous.keys()) if (!next.has(uid)) opts.onPodChanged(uid, { fingerprint: undefined, listedAtMs });
    previous = next;
    lastOk = opts.clock.now();
    lastErr = undefined;
    snapshot = { listStartedAtMs: t0, atMs: lastOk, sandboxes, containers };
    opts.onDuration?.(lastOk - t0);
    opts.onRelist?.(snapshot);
  };

  return {
    async run(signal) {
      while (!signal.aborted) {
        try {
          await relist();
          if (failures > 0) opts.logger.info("container runtime answers again; relist resumed");
          failures = 0;
        } catch (err) {
          lastErr = errorMessage(err);
          if (failures === 0 || failures % 30 === 0) opts.logger.error("relist through CRI failed", { err: lastErr, failures });
          failures++;
        }
        const delay = failures === 0 ? opts.intervalMs : Math.min(opts.intervalMs * 2 ** Math.min(failures, 5), 10_000);
        await opts.clock.sleep(delay, signal).catch(() => undefined);
      }
    },
    lastSuccessMs: () => lastOk,
    lastError: () => lastErr,
    latest: () => snapshot,
  };
}
