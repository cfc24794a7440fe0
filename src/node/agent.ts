/**
 * The node agent: registers the Node, keeps its status (computed every nodeStatusUpdateFrequency,
 * PATCHed on change or every nodeStatusReportFrequency) and renews its Lease in kube-node-lease.
 * The one writer of node status. Every loop retries with backoff and never throws.
 */
import type { V1Node, V1NodeStatus } from "@kubernetes/client-node";
import type { ApiClient } from "../api/client.js";
import { ApiError, isApiStatus } from "../api/client.js";
import type { KubeletConfiguration } from "../config/index.js";
import type { Image } from "../cri/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { toKubeJSON } from "../api/json.js";
import { initialNode, nodeLabels, nodeStatus, statusFingerprint, type HealthFacts, type NodeFacts } from "./status.js";

export interface NodeAgentDeps {
  api: ApiClient;
  clock: Clock;
  logger: Logger;
  config: KubeletConfiguration;
  facts: () => NodeFacts;
  health: () => HealthFacts;
  images: () => Promise<Image[]>;
}

export interface NodeAgent {
  run(signal: AbortSignal): Promise<void>;
  /** Resolves once the Node exists in the API (registered or found). */
  readonly registered: Promise<V1Node>;
  /** The Node as last read or written. */
  node(): V1Node | undefined;
  /** Forces a status computation soon (e.g. the runtime went down). */
  poke(): void;
}

const LEASE_NS = "kube-node-lease";

export function createNodeAgent(deps: NodeAgentDeps): NodeAgent {
  const { api, clock, config } = deps;
  const log = deps.logger.with({ component: "node" });
  let current: V1Node | undefined;
  let resolveRegistered!: (n: V1Node) => void;
  const registered = new Promise<V1Node>((r) => (resolveRegistered = r));
  let lastFingerprint = "";
  let lastReport = 0;
  let wake: (() => void) | undefined;
  /** A poke that came while no one was waiting (e.g. during a PATCH): the next wait returns at once. */
  let poked = false;

  const nodePath = (): string => `/api/v1/nodes/${deps.facts().nodeName}`;

  const register = async (signal: AbortSignal): Promise<void> => {
    let delay = 100;
    while (!signal.aborted) {
      const facts = deps.facts();
      try {
        const created = await api.request<V1Node>({ method: "POST", path: "/api/v1/nodes", body: initialNode(facts, config) });
        log.info("node registered", { node: facts.nodeName });
        current = created;
        resolveRegistered(created);
        return;
      } catch (err) {
        if (isApiStatus(err, 409)) {
          // Already registered: reconcile our labels, keep everything else.
          const patched = await api
            .request<V1Node>({ method: "PATCH", path: nodePath(), contentType: "application/strategic-merge-patch+json", body: { metadata: { labels: nodeLabels(facts) } } })
            .catch((e: unknown) => {
              log.warn("could not reconcile the labels of the existing node", { err: errorMessage(e) });
              return undefined;
            });
          current = patched ?? (await api.request<V1Node>({ method: "GET", path: nodePath() }).catch(() => undefined));
          if (current) {
            log.info("node already registered; reconciled", { node: facts.nodeName });
            resolveRegistered(current);
            return;
          }
        } else {
          log.error("unable to register the node with the API server; retrying", { node: facts.nodeName, err: errorMessage(err), retryInMs: delay });
        }
      }
      await clock.sleep(delay, signal).catch(() => undefined);
      delay = Math.min(delay * 2, 7_000);
    }
  };

  const updateStatus = async (): Promise<void> => {
    const status: V1NodeStatus = nodeStatus(deps.facts(), config, {
      health: deps.health(),
      images: await deps.images().catch(() => []),
      previous: current?.status,
      now: new Date(clock.now()),
    });
    const fp = statusFingerprint(status);
    const due = clock.now() - lastReport >= config.nodeStatusReportFrequency;
    if (fp === lastFingerprint && !due) {
      // Unchanged on our side; but the API's copy may have been changed by someone else (the node
      // lifecycle controller sets Ready=Unknown after missed heartbeats), so compare with it, as
      // upstream compares with the node it reads before each update.
      const live = await api.request<V1Node>({ method: "GET", path: `${nodePath()}?resourceVersion=0` }).catch(() => undefined);
      const drift = live ? conditionDrift(live.status, status) : [];
      if (drift.length === 0) return;
      log.info("node conditions in the API differ from ours; updating them", { conditions: drift });
    }
    const body = JSON.parse(toKubeJSON({ status })) as unknown;
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        current = await api.request<V1Node>({ method: "PATCH", path: `${nodePath()}/status`, contentType: "application/strategic-merge-patch+json", body });
        const wasReady = lastFingerprint === "" ? undefined : lastFingerprint.includes('"type":"Ready","status":"True"');
        const ready = status.conditions?.find((c) => c.type === "Ready");
        if (wasReady !== (ready?.status === "True")) log.info("node status", { ready: ready?.status, reason: ready?.reason, message: ready?.message });
        lastFingerprint = fp;
        lastReport = clock.now();
        return;
      } catch (err) {
        if (attempt === 5) throw err;
      }
    }
  };

  const statusLoop = async (signal: AbortSignal): Promise<void> => {
    let failures = 0;
    signal.addEventListener("abort", () => wake?.(), { once: true });
    while (!signal.aborted) {
      try {
        await updateStatus();
        if (failures > 0) log.info("node status updates resumed");
        failures = 0;
      } catch (err) {
        if (failures === 0 || failures % 10 === 0) log.error("error updating node status; will retry", { err: errorMessage(err) });
        failures++;
      }
      if (poked) {
        poked = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const cancel = clock.setTimer(config.nodeStatusUpdateFrequency, resolve);
        wake = () => {
          cancel();
          resolve();
        };
      });
      wake = undefined;
      poked = false;
    }
  };

  const leaseLoop = async (signal: AbortSignal): Promise<void> => {
    const name = deps.facts().nodeName;
    const path = `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NS}/leases/${name}`;
    const renewMs = (config.nodeLeaseDurationSeconds * 1000) / 4;
    let lease: Record<string, unknown> | undefined;
    let failures = 0;
    while (!signal.aborted) {
      const spec = { holderIdentity: name, leaseDurationSeconds: config.nodeLeaseDurationSeconds, renewTime: microTime(clock.now()) };
      try {
        if (!lease) {
          lease = await api.request<Record<string, unknown>>({ method: "GET", path }).catch(async (err: unknown) => {
            if (!isApiStatus(err, 404)) throw err;
            const node = current ?? (await registered);
            return api.request<Record<string, unknown>>({
              method: "POST",
              path: `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NS}/leases`,
              body: {
                apiVersion: "coordination.k8s.io/v1",
                kind: "Lease",
                metadata: { name, namespace: LEASE_NS, ownerReferences: [{ apiVersion: "v1", kind: "Node", name, uid: node.metadata?.uid ?? "" }] },
                spec,
              },
            });
          });
        }
        lease = await api.request<Record<string, unknown>>({ method: "PUT", path, body: { ...lease, spec: { ...(lease.spec as object), ...spec } } });
        if (failures > 0) log.info("node lease renewals resumed");
        failures = 0;
      } catch (err) {
        if (err instanceof ApiError && (err.status === 409 || err.status === 404)) lease = undefined;
        if (failures === 0 || failures % 10 === 0) log.error("failed to renew the node lease; will retry", { err: errorMessage(err) });
        failures++;
      }
      const jitter = 1 + Math.random() * 0.04;
      await clock.sleep(failures > 0 ? Math.min(200 * 2 ** Math.min(failures, 5), 7_000) : renewMs * jitter, signal).catch(() => undefined);
    }
  };

  return {
    registered,
    node: () => current,
    poke: () => {
      if (wake) wake();
      else poked = true;
    },
    async run(signal) {
      await register(signal);
      if (signal.aborted) return;
      await Promise.all([statusLoop(signal), leaseLoop(signal)]);
    },
  };
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** Conditions whose status in the API's node differs from ours ("Ready=Unknown", ...). */
export function conditionDrift(live: V1NodeStatus | undefined, ours: V1NodeStatus): string[] {
  const out: string[] = [];
  for (const c of ours.conditions ?? []) {
    const l = live?.conditions?.find((x) => x.type === c.type);
    if (l && l.status !== c.status) out.push(`${c.type}=${l.status}`);
  }
  return out;
}
