/**
 * A pod worker environment (WorkerEnv) on the fake CRI for unit tests of the pod worker and the
 * pod manager: real image manager and crash-loop backoff on the given clock, no volumes, no
 * metrics, no probe verdicts, a network that is ready. Any field can be replaced.
 */
import { join } from "node:path";
import { createBackoff, CRASHLOOP_BACKOFF, IMAGE_PULL_BACKOFF } from "../../src/pods/backoff.js";
import { createHandlerRunner } from "../../src/pods/handlers.js";
import { createImageManager } from "../../src/pods/images.js";
import { noProbeVerdicts } from "../../src/pods/probe-verdicts.js";
import type { WorkerEnv } from "../../src/pods/worker.js";
import type { Clock } from "../../src/util/clock.js";
import type { Logger } from "../../src/util/log.js";
import type { FakeCri } from "./fake-cri.js";

export interface FakeWorkerEnvOptions {
  cri: FakeCri;
  clock: Clock;
  logger: Logger;
  /** The kubelet's root dir; pod logs go to <rootDir>/logs. */
  rootDir: string;
  events: WorkerEnv["events"];
  setStatus: WorkerEnv["setStatus"];
  getStatus: WorkerEnv["getStatus"];
}

export function fakeWorkerEnv(o: FakeWorkerEnvOptions, over: Partial<WorkerEnv> = {}): WorkerEnv {
  const { cri, clock, logger } = o;
  return {
    rs: cri,
    images: createImageManager({ images: cri, backoff: createBackoff({ ...IMAGE_PULL_BACKOFF, clock }), serialize: false, logger, clock }),
    crashBackoff: createBackoff({ ...CRASHLOOP_BACKOFF, clock }),
    clock,
    logger,
    metrics: undefined,
    events: o.events,
    sandbox: { podLogsDir: join(o.rootDir, "logs"), resolvConf: "", clusterDNS: [], clusterDomain: "cluster.local", cgroupsPerQOS: false, cgroupRoot: "" },
    memoryCapacity: 8 * 2 ** 30,
    hostIPs: () => ["192.168.1.10"],
    runtimeName: () => "containerd",
    networkReady: () => true,
    resyncMs: 60_000,
    volumes: { setUp: () => Promise.resolve([]), mountsFor: () => Promise.resolve([]), tearDown: () => Promise.resolve(), envLookup: undefined },
    allocatable: () => ({}),
    setStatus: o.setStatus,
    getStatus: o.getStatus,
    probes: noProbeVerdicts,
    handlers: createHandlerRunner({ rs: cri, clock }),
    rootDir: o.rootDir,
    ...over,
  };
}
