/**
 * Node-pressure eviction, unit level: threshold parsing, signal observations and comparison,
 * ranking, upstream's messages, local storage limits, the manager's pressure conditions and their
 * transition period, one eviction per pass, admission under pressure, and the node conditions.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1Pod, V1Volume } from "@kubernetes/client-node";
import {
  createEvictionManager,
  evictionMessage,
  localStorageViolation,
  observeSignals,
  parseThresholds,
  rankForSignal,
  thresholdQuantity,
  thresholdsMet,
  type EvictionManager,
} from "../../src/eviction/index.js";
import type { StatsSnapshot, PodEntry, CgroupEntry } from "../../src/stats/index.js";
import type { CgroupStats } from "../../src/stats/cgroup.js";
import type { FinalReason } from "../../src/pods/worker.js";
import { conditions as nodeConditions } from "../../src/node/status.js";
import { loadConfiguration, type LoadedConfiguration } from "../../src/config/index.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

const Mi = 2 ** 20;
const Gi = 2 ** 30;

function cgroup(workingSet: number, name = "/x"): CgroupEntry {
  const stats = { procs: [1, 2], spec: {}, memory: { usage: workingSet, maxUsage: workingSet, workingSet, rss: workingSet, cache: 0, swap: 0, mappedFile: 0, kernel: 0 } } as unknown as CgroupStats;
  return { name, kind: "pod", time: 0, createdAt: 0, stats };
}

interface PodSpecOpts {
  name: string;
  requests?: Record<string, string>;
  limits?: Record<string, string>;
  priority?: number;
  static?: boolean;
  volumes?: V1Volume[];
}

function pod(o: PodSpecOpts): V1Pod {
  const c: V1Container = { name: "main", image: "busybox" };
  if (o.requests || o.limits) c.resources = { ...(o.requests ? { requests: o.requests } : {}), ...(o.limits ? { limits: o.limits } : {}) };
  return {
    metadata: { name: o.name, namespace: "default", uid: `uid-${o.name}`, annotations: { "kubernetes.io/config.source": o.static ? "file" : "api" } },
    spec: { containers: [c], ...(o.priority !== undefined ? { priority: o.priority } : {}), ...(o.volumes ? { volumes: o.volumes } : {}) },
  };
}

interface Usage {
  memory?: number;
  disk?: number;
  emptyDirs?: Record<string, number>;
}

function podEntry(p: V1Pod, u: Usage): PodEntry {
  const cg = cgroup(u.memory ?? 0, `/kubepods/pod${p.metadata?.uid ?? ""}`);
  const name = p.spec?.containers[0]?.name ?? "main";
  const volumes = Object.entries(u.emptyDirs ?? {}).map(([vn, used]) => ({ time: 0, name: vn, plugin: "kubernetes.io~empty-dir", memoryBacked: false, used }));
  const emptyDirBytes = volumes.reduce((s, v) => s + v.used, 0);
  return {
    ref: { name: p.metadata?.name ?? "", namespace: "default", uid: p.metadata?.uid ?? "" },
    sandboxId: "sb",
    startTime: 0,
    hostNetwork: false,
    cgroup: cg,
    containers: [{ name, id: "c", image: "busybox", state: "CONTAINER_RUNNING", startTime: 0, cgroup: cgroup(u.memory ?? 0), rootfs: { time: 0, used: u.disk ?? 0 }, logs: { time: 0, used: 0 } }],
    volumes,
    ephemeral: { time: 0, used: (u.disk ?? 0) + emptyDirBytes, inodesUsed: 1 },
  };
}

interface Node {
  memCapacity?: number;
  memWorkingSet?: number;
  fsCapacity?: number;
  fsAvailable?: number;
  inodes?: number;
  inodesFree?: number;
}

function snapshot(n: Node, pods: PodEntry[] = [], time = 0): StatsSnapshot {
  const capacity = n.fsCapacity ?? 100 * Gi;
  const fs = { time, capacity, available: n.fsAvailable ?? 50 * Gi, used: 0, inodes: n.inodes ?? 1_000_000, inodesFree: n.inodesFree ?? 900_000 };
  return {
    time,
    nodeName: "n",
    bootTime: 0,
    memoryCapacity: n.memCapacity ?? 8 * Gi,
    swapCapacity: 0,
    root: cgroup(n.memWorkingSet ?? 1 * Gi, "/"),
    cgroups: [],
    pods,
    systemContainers: [],
    nodeFs: fs,
    imageFs: { ...fs },
    rlimit: { maxPid: 4_194_304, curProc: 300 },
    blockDevices: {},
    errors: [],
    podsUnavailable: false,
  };
}

describe("eviction thresholds", () => {
  it("parses upstream's defaults into quantities and percentages", () => {
    const t = parseThresholds({ "memory.available": "100Mi", "nodefs.available": "10%", "nodefs.inodesFree": "5%", "imagefs.available": "15%" });
    assert.deepEqual(
      t.map((x) => [x.signal, x.value]),
      [
        ["memory.available", { quantity: 100 * Mi }],
        ["nodefs.available", { percentage: 0.1 }],
        ["nodefs.inodesFree", { percentage: 0.05 }],
        ["imagefs.available", { percentage: 0.15 }],
      ],
    );
    assert.ok(t.every((x) => x.gracePeriodMs === 0));
  });
  it("drops signals set to 0 or 0% (disabled), as upstream", () => {
    assert.deepEqual(parseThresholds({ "memory.available": "0", "nodefs.available": "0%", "pid.available": "1000" }).map((x) => x.signal), ["pid.available"]);
  });
  it("attaches the minimum reclaim of a signal to its threshold", () => {
    const t = parseThresholds({ "memory.available": "100Mi", "nodefs.available": "10%" }, { "nodefs.available": "5%" });
    assert.deepEqual(t.map((x) => [x.signal, x.minReclaim]), [["memory.available", undefined], ["nodefs.available", { percentage: 0.05 }]]);
    assert.throws(() => parseThresholds({}, { "memory.available": "x" }), /evictionMinimumReclaim: bad value "x" for memory\.available/);
  });
  it("names the field and the entry when a value is bad", () => {
    assert.throws(() => parseThresholds({ "memory.available": "lots" }), /evictionHard: bad value "lots" for memory\.available/);
    assert.throws(() => parseThresholds({ "memory.available": "120%" }), /evictionHard: .*between 0% and 100%/);
    assert.throws(() => parseThresholds({ "disk.free": "1Gi" }), /evictionHard: unknown eviction signal "disk\.free"/);
  });
  it("turns a percentage into a quantity of the capacity", () => {
    assert.equal(thresholdQuantity({ percentage: 0.1 }, 1000 * Mi), Math.trunc(1000 * Mi * Math.fround(0.1)));
    assert.equal(thresholdQuantity({ quantity: 100 * Mi }, 1), 100 * Mi);
  });
});

describe("eviction signals", () => {
  it("observes memory.available as capacity minus the root working set, and the filesystems and pids", () => {
    const o = observeSignals(snapshot({ memCapacity: 8 * Gi, memWorkingSet: 3 * Gi, fsCapacity: 100 * Gi, fsAvailable: 7 * Gi, inodes: 1000, inodesFree: 40 }));
    assert.deepEqual(o.get("memory.available"), { available: 5 * Gi, capacity: 8 * Gi, time: 0 });
    assert.deepEqual(o.get("nodefs.available"), { available: 7 * Gi, capacity: 100 * Gi, time: 0 });
    assert.deepEqual(o.get("nodefs.inodesFree"), { available: 40, capacity: 1000, time: 0 });
    assert.equal(o.get("imagefs.available")?.available, 7 * Gi);
    assert.equal(o.get("pid.available")?.available, 4_194_304 - 300);
  });
  it("a threshold is met only when available is strictly below it", () => {
    const t = parseThresholds({ "memory.available": "100Mi", "nodefs.available": "10%" });
    const at = (avail: number, fsAvail: number): string[] =>
      thresholdsMet(t, observeSignals(snapshot({ memCapacity: Gi, memWorkingSet: Gi - avail, fsCapacity: 100 * Gi, fsAvailable: fsAvail }))).map((x) => x.signal);
    assert.deepEqual(at(100 * Mi, 11 * Gi), []);
    assert.deepEqual(at(100 * Mi - 1, 11 * Gi), ["memory.available"]);
    assert.deepEqual(at(200 * Mi, 9 * Gi), ["nodefs.available"]);
  });
});

describe("eviction ranking and messages", () => {
  const be = pod({ name: "besteffort" });
  const burstOver = pod({ name: "burst-over", requests: { memory: "100Mi" } });
  const burstUnder = pod({ name: "burst-under", requests: { memory: "1Gi" } });
  const guaranteed = pod({ name: "guaranteed", requests: { memory: "2Gi", cpu: "1" }, limits: { memory: "2Gi", cpu: "1" } });
  const usage: Record<string, Usage> = {
    besteffort: { memory: 300 * Mi, disk: 10 * Mi },
    "burst-over": { memory: 500 * Mi, disk: 1 * Mi },
    "burst-under": { memory: 900 * Mi, disk: 500 * Mi },
    guaranteed: { memory: 1900 * Mi, disk: 0 },
  };
  const entries = new Map([be, burstOver, burstUnder, guaranteed].map((p) => [p.metadata?.uid ?? "", podEntry(p, usage[p.metadata?.name ?? ""] ?? {})]));
  const statsOf = (p: V1Pod): PodEntry | undefined => entries.get(p.metadata?.uid ?? "");
  const names = (ps: V1Pod[]): string[] => ps.map((p) => p.metadata?.name ?? "");

  it("memory: pods over their requests first, then by usage above requests", () => {
    assert.deepEqual(names(rankForSignal("memory.available", [guaranteed, burstUnder, be, burstOver], statsOf)), ["burst-over", "besteffort", "burst-under", "guaranteed"]);
  });
  it("memory: priority comes before usage among pods over their requests", () => {
    const low = pod({ name: "low", priority: -10 });
    const high = pod({ name: "high", priority: 1000 });
    entries.set("uid-low", podEntry(low, { memory: 10 * Mi }));
    entries.set("uid-high", podEntry(high, { memory: 900 * Mi }));
    assert.deepEqual(names(rankForSignal("memory.available", [high, low], statsOf)), ["low", "high"]);
  });
  it("disk: pods over their ephemeral-storage requests first, then by usage", () => {
    const withReq = pod({ name: "disk-req", requests: { "ephemeral-storage": "1Gi" } });
    entries.set("uid-disk-req", podEntry(withReq, { disk: 800 * Mi }));
    assert.deepEqual(names(rankForSignal("nodefs.available", [withReq, burstOver, be], statsOf)), ["besteffort", "burst-over", "disk-req"]);
  });
  it("disk with a dedicated imagefs: nodefs counts logs and volumes, imagefs the writable layers", () => {
    const layer = pod({ name: "layer" });
    const vol = pod({ name: "vol" });
    const local = new Map([
      ["uid-layer", podEntry(layer, { disk: 900 * Mi })],
      ["uid-vol", podEntry(vol, { disk: 1 * Mi, emptyDirs: { scratch: 100 * Mi } })],
    ]);
    const of = (p: V1Pod): PodEntry | undefined => local.get(p.metadata?.uid ?? "");
    assert.deepEqual(names(rankForSignal("nodefs.available", [layer, vol], of, false)), ["layer", "vol"], "shared filesystem: everything counts");
    assert.deepEqual(names(rankForSignal("nodefs.available", [layer, vol], of, true)), ["vol", "layer"]);
    assert.deepEqual(names(rankForSignal("imagefs.available", [vol, layer], of, true)), ["layer", "vol"]);
  });
  it("says what ran low, the threshold, what was available and which container used more than it requested", () => {
    const t = parseThresholds({ "memory.available": "100Mi" });
    const obs = observeSignals(snapshot({ memCapacity: 4 * Gi, memWorkingSet: 4 * Gi - 80 * Mi }));
    assert.equal(
      evictionMessage("memory.available", be, statsOf, { met: t, observations: obs }),
      "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. Container main was using 300Mi, request is 0, has larger consumption of memory. ",
    );
    assert.equal(
      evictionMessage("memory.available", burstUnder, statsOf, { met: t, observations: obs }),
      "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. ",
    );
  });
  it("a percentage threshold is printed as the quantity it stands for", () => {
    const t = parseThresholds({ "nodefs.available": "10%" });
    const obs = observeSignals(snapshot({ fsCapacity: 10 * Gi, fsAvailable: 512 * Mi }));
    assert.match(evictionMessage("nodefs.available", be, statsOf, { met: t, observations: obs }), /^The node was low on resource: ephemeral-storage\. Threshold quantity: 1073741\d+, available: 512Mi\. Container main was using 10Mi, request is 0, has larger consumption of ephemeral-storage\. $/);
  });
});

describe("local storage limits", () => {
  it("an emptyDir over its sizeLimit", () => {
    const p = pod({ name: "fill", volumes: [{ name: "scratch", emptyDir: { sizeLimit: "16Mi" } }, { name: "other", emptyDir: {} }] });
    assert.equal(localStorageViolation(p, podEntry(p, { emptyDirs: { scratch: 10 * Mi, other: 100 * Mi } })), undefined);
    assert.deepEqual(localStorageViolation(p, podEntry(p, { emptyDirs: { scratch: 17 * Mi } })), { signal: "emptydirfs.limit", message: 'Usage of EmptyDir volume "scratch" exceeds the limit "16Mi". ' });
  });
  it("a container over its ephemeral-storage limit (the pod's total first)", () => {
    const p = pod({ name: "w", limits: { "ephemeral-storage": "20Mi" } });
    assert.equal(localStorageViolation(p, podEntry(p, { disk: 19 * Mi })), undefined);
    assert.deepEqual(localStorageViolation(p, podEntry(p, { disk: 21 * Mi })), { signal: "ephemeralpodfs.limit", message: "Pod ephemeral local storage usage exceeds the total limit of containers 20Mi. " });
  });
});

interface Harness {
  clock: FakeClock;
  mgr: EvictionManager;
  evicted: { name: string; grace: number; final: FinalReason }[];
  events: string[];
  metrics: string[];
  changes: number;
  node: Node;
  pods: V1Pod[];
  usage: Map<string, Usage>;
  lines: string[];
  /** Which snapshots the passes read: "full" or "node". */
  reads: string[];
}

function harness(evictionHard: Record<string, string>, transitionMs = 300_000, minimumReclaim: Record<string, string> = {}): Harness {
  const clock = new FakeClock();
  const { logger, lines } = memoryLogger(2);
  const h: Partial<Harness> & { changes: number } = { clock, evicted: [], events: [], metrics: [], changes: 0, node: {}, pods: [], usage: new Map(), lines, reads: [] };
  const self = h as Harness;
  h.mgr = createEvictionManager(
    {
      clock,
      logger,
      snapshot: () => {
        self.reads.push("full");
        return Promise.resolve(snapshot(self.node, self.pods.map((p) => podEntry(p, self.usage.get(p.metadata?.name ?? "") ?? {})), clock.now()));
      },
      nodeSnapshot: () => {
        self.reads.push("node");
        return Promise.resolve({ ...snapshot(self.node, [], clock.now()), podsUnavailable: true });
      },
      activePods: () => self.pods,
      evictPod: (p, grace, final) => {
        self.evicted.push({ name: p.metadata?.name ?? "", grace, final });
        self.pods = self.pods.filter((x) => x !== p);
        return Promise.resolve(true);
      },
      events: (p, type, reason, message) => self.events.push(`${p.metadata?.name ?? ""} ${type} ${reason} ${message}`),
      onEviction: (s) => self.metrics.push(s),
      onConditionsChanged: () => self.changes++,
    },
    { thresholds: parseThresholds(evictionHard, minimumReclaim), pressureTransitionPeriodMs: transitionMs, intervalMs: 10_000 },
  );
  return self;
}

describe("eviction manager", () => {
  it("sets MemoryPressure and evicts one pod per pass, the best-effort one first, with upstream's status and event", async () => {
    const h = harness({ "memory.available": "100Mi" });
    h.pods = [pod({ name: "guaranteed", requests: { memory: "1Gi", cpu: "1" }, limits: { memory: "1Gi", cpu: "1" } }), pod({ name: "be" }), pod({ name: "burst", requests: { memory: "10Mi" } })];
    h.usage.set("be", { memory: 300 * Mi });
    h.usage.set("burst", { memory: 200 * Mi });
    h.usage.set("guaranteed", { memory: 900 * Mi });
    h.node = { memCapacity: 4 * Gi, memWorkingSet: 4 * Gi - 80 * Mi };
    const first = await h.mgr.synchronize();
    assert.deepEqual(first.map((p) => p.metadata?.name), ["be"]);
    assert.ok(h.mgr.isUnderMemoryPressure());
    assert.equal(h.mgr.isUnderDiskPressure(), false);
    assert.equal(h.changes, 1);
    const msg = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. Container main was using 300Mi, request is 0, has larger consumption of memory. ";
    assert.deepEqual(h.evicted, [{ name: "be", grace: 0, final: { reason: "Evicted", message: msg } }]);
    assert.deepEqual(h.events, [`be Warning Evicted ${msg}`]);
    assert.deepEqual(h.metrics, ["memory.available"]);
    await h.mgr.synchronize();
    assert.deepEqual(h.evicted.map((e) => e.name), ["be", "burst"]);
    assert.deepEqual(h.metrics, ["memory.available", "memory.available"]);
  });

  it("holds the condition for the pressure transition period after the signal clears", async () => {
    const h = harness({ "nodefs.available": "10%" }, 300_000);
    h.node = { fsCapacity: 100 * Gi, fsAvailable: 5 * Gi };
    await h.mgr.synchronize();
    assert.deepEqual(h.mgr.conditions(), ["DiskPressure"]);
    h.node = { fsCapacity: 100 * Gi, fsAvailable: 50 * Gi };
    await h.clock.advance(299_000);
    await h.mgr.synchronize();
    assert.deepEqual(h.mgr.conditions(), ["DiskPressure"], "still held within the period");
    await h.clock.advance(1_000);
    await h.mgr.synchronize();
    assert.deepEqual(h.mgr.conditions(), []);
    assert.equal(h.changes, 2);
    assert.deepEqual(h.evicted, [], "no pods to evict");
  });

  it("re-crossing restarts the period from the last observation", async () => {
    const h = harness({ "nodefs.available": "10%" }, 60_000);
    h.node = { fsCapacity: 100 * Gi, fsAvailable: 5 * Gi };
    await h.mgr.synchronize();
    await h.clock.advance(50_000);
    await h.mgr.synchronize();
    h.node = { fsCapacity: 100 * Gi, fsAvailable: 50 * Gi };
    await h.clock.advance(50_000);
    await h.mgr.synchronize();
    assert.ok(h.mgr.isUnderDiskPressure(), "60 s counts from the last time the signal was seen over");
    await h.clock.advance(10_000);
    await h.mgr.synchronize();
    assert.equal(h.mgr.isUnderDiskPressure(), false);
  });

  it("with a minimum reclaim, a met threshold holds until the signal recovers that much beyond it", async () => {
    // A short transition period, and passes 10 s apart: only the thresholds themselves hold the condition.
    const h = harness({ "memory.available": "100Mi" }, 5_000, { "memory.available": "200Mi" });
    h.pods = [pod({ name: "a" }), pod({ name: "b" }), pod({ name: "c" })];
    for (const n of ["a", "b", "c"]) h.usage.set(n, { memory: 50 * Mi });
    const pass = async (availableMi: number): Promise<void> => {
      h.node = { memCapacity: 4 * Gi, memWorkingSet: 4 * Gi - availableMi * Mi };
      await h.clock.advance(10_000);
      await h.mgr.synchronize();
    };
    await pass(80);
    await pass(250);
    assert.ok(h.mgr.isUnderMemoryPressure(), "250Mi is above 100Mi but not above 100Mi + 200Mi");
    assert.equal(h.evicted.length, 2);
    await pass(301);
    assert.equal(h.mgr.isUnderMemoryPressure(), false);
    assert.equal(h.evicted.length, 2);
    await pass(250);
    assert.equal(h.mgr.isUnderMemoryPressure(), false, "the minimum reclaim applies only to a threshold already met");
    assert.equal(h.evicted.length, 2);
  });

  it("never evicts static pods (critical, as upstream) and moves on to the next candidate", async () => {
    const h = harness({ "memory.available": "1Gi" });
    h.pods = [pod({ name: "static-be", static: true }), pod({ name: "api-be" })];
    h.usage.set("static-be", { memory: 900 * Mi });
    h.usage.set("api-be", { memory: 10 * Mi });
    h.node = { memCapacity: 4 * Gi, memWorkingSet: 4 * Gi - 100 * Mi };
    await h.mgr.synchronize();
    assert.deepEqual(h.evicted.map((e) => e.name), ["api-be"]);
    assert.ok(h.lines.some((l) => l.includes("cannot evict a critical static pod")));
  });

  it("evicts every pod over a local storage limit in one pass, without node pressure", async () => {
    const h = harness({ "memory.available": "100Mi" });
    h.pods = [pod({ name: "fill", volumes: [{ name: "scratch", emptyDir: { sizeLimit: "16Mi" } }] }), pod({ name: "calm", volumes: [{ name: "scratch", emptyDir: { sizeLimit: "16Mi" } }] })];
    h.usage.set("fill", { emptyDirs: { scratch: 40 * Mi } });
    h.usage.set("calm", { emptyDirs: { scratch: 1 * Mi } });
    const out = await h.mgr.synchronize();
    assert.deepEqual(out.map((p) => p.metadata?.name), ["fill"]);
    assert.deepEqual(h.evicted, [{ name: "fill", grace: 0, final: { reason: "Evicted", message: 'Usage of EmptyDir volume "scratch" exceeds the limit "16Mi". ' } }]);
    assert.deepEqual(h.metrics, ["emptydirfs.limit"]);
    assert.deepEqual(h.mgr.conditions(), []);
  });

  it("reads the pods' stats only to rank them or to check local storage limits", async () => {
    const h = harness({ "memory.available": "100Mi" });
    h.pods = [pod({ name: "be" })];
    h.usage.set("be", { memory: 300 * Mi });
    h.node = { memCapacity: 4 * Gi, memWorkingSet: 1 * Gi };
    assert.deepEqual(await h.mgr.synchronize(), []);
    assert.deepEqual(h.reads, ["node"], "no threshold met, no local storage limit: the node-level figures suffice");
    h.node = { memCapacity: 4 * Gi, memWorkingSet: 4 * Gi - 80 * Mi };
    const out = await h.mgr.synchronize();
    assert.deepEqual(out.map((p) => p.metadata?.name), ["be"], "ranked with the pods' usage");
    assert.deepEqual(h.reads, ["node", "node", "full"]);
    h.node = { memCapacity: 4 * Gi, memWorkingSet: 1 * Gi };
    h.pods = [pod({ name: "scratchy", volumes: [{ name: "scratch", emptyDir: { sizeLimit: "16Mi" } }] })];
    await h.mgr.synchronize();
    assert.deepEqual(h.reads.slice(3), ["full"], "a pod with a local storage limit needs its usage every pass");
  });

  it("admission: under MemoryPressure only BestEffort pods are refused; under DiskPressure all but critical ones", async () => {
    const h = harness({ "memory.available": "100Mi", "nodefs.available": "10%" });
    const be = pod({ name: "be" });
    const burst = pod({ name: "burst", requests: { memory: "10Mi" } });
    const tolerant = pod({ name: "tolerant" });
    tolerant.spec = { ...(tolerant.spec ?? { containers: [] }), tolerations: [{ key: "node.kubernetes.io/memory-pressure", operator: "Exists", effect: "NoSchedule" }] };
    const critical = pod({ name: "critical", priority: 2_000_001_000 });
    const stat = pod({ name: "static", static: true });
    assert.equal(h.mgr.admit(be), undefined, "no pressure: everything is admitted");

    h.node = { memCapacity: 4 * Gi, memWorkingSet: 4 * Gi - 80 * Mi };
    await h.mgr.synchronize();
    assert.deepEqual(h.mgr.admit(be), { reason: "Evicted", message: "The node had condition: [MemoryPressure]. " });
    assert.equal(h.mgr.admit(burst), undefined);
    assert.equal(h.mgr.admit(tolerant), undefined);
    assert.equal(h.mgr.admit(stat), undefined);

    h.node = { memCapacity: 4 * Gi, memWorkingSet: 4 * Gi - 80 * Mi, fsCapacity: 100 * Gi, fsAvailable: 5 * Gi };
    await h.mgr.synchronize();
    assert.deepEqual(h.mgr.admit(burst), { reason: "Evicted", message: "The node had condition: [MemoryPressure DiskPressure]. " });
    assert.deepEqual(h.mgr.admit(tolerant)?.reason, "Evicted");
    assert.equal(h.mgr.admit(critical), undefined);
    assert.equal(h.mgr.admit(stat), undefined);
  });

  it("waits for an evicted pod's cleanup at most 30 s, and leaves no timer behind when it is quick", async () => {
    const h = harness({ "memory.available": "100Mi" });
    h.pods = [pod({ name: "quick" })];
    h.node = { memCapacity: 4 * Gi, memWorkingSet: 4 * Gi - 80 * Mi };
    await h.mgr.synchronize();
    assert.equal(h.clock.pendingTimers(), 0);

    const clock = new FakeClock();
    let released = false;
    const mgr = createEvictionManager(
      {
        clock,
        logger: memoryLogger(0).logger,
        snapshot: () => Promise.resolve(snapshot({ memCapacity: 4 * Gi, memWorkingSet: 4 * Gi - 80 * Mi }, [podEntry(pod({ name: "stuck" }), {})])),
        activePods: () => [pod({ name: "stuck" })],
        evictPod: () => new Promise<boolean>(() => undefined),
        events: () => undefined,
        onEviction: () => (released = true),
      },
      { thresholds: parseThresholds({ "memory.available": "100Mi" }), pressureTransitionPeriodMs: 300_000 },
    );
    const out = mgr.synchronize();
    await clock.advance(29_000);
    assert.equal(released, false);
    await clock.advance(1_000);
    assert.deepEqual((await out).map((p) => p.metadata?.name), ["stuck"]);
  });

  it("run() monitors every interval on the clock", async () => {
    const h = harness({ "nodefs.available": "10%" });
    h.node = { fsCapacity: 100 * Gi, fsAvailable: 50 * Gi };
    const ac = new AbortController();
    const done = h.mgr.run(ac.signal);
    await h.clock.advance(0);
    assert.equal(h.mgr.isUnderDiskPressure(), false);
    h.node = { fsCapacity: 100 * Gi, fsAvailable: 1 * Gi };
    await h.clock.advance(9_000);
    assert.equal(h.mgr.isUnderDiskPressure(), false, "not before the next pass");
    await h.clock.advance(1_000);
    assert.equal(h.mgr.isUnderDiskPressure(), true);
    ac.abort();
    await done;
  });
});

describe("node pressure conditions", () => {
  it("use upstream's reasons and messages", () => {
    const now = new Date(Date.UTC(2026, 0, 1));
    const on = nodeConditions({ notReadyReasons: [], memoryPressure: true, diskPressure: true, pidPressure: false }, undefined, now);
    const pick = (t: string): (string | undefined)[] => {
      const c = on.find((x) => x.type === t);
      return [c?.status, c?.reason, c?.message];
    };
    assert.deepEqual(pick("MemoryPressure"), ["True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"]);
    assert.deepEqual(pick("DiskPressure"), ["True", "KubeletHasDiskPressure", "kubelet has disk pressure"]);
    assert.deepEqual(pick("PIDPressure"), ["False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"]);
  });
});

describe("eviction configuration", () => {
  const CONFIG_PATH = "/etc/kubernetes/kubelet-config.yaml";
  const load = (flags: Record<string, string>, file?: string): LoadedConfiguration =>
    loadConfiguration({
      flags: { ...flags, ...(file !== undefined ? { config: CONFIG_PATH } : {}) },
      readFile: () => `apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n${file ?? ""}`,
      hostname: () => "n",
    });
  it("evictionPressureTransitionPeriod defaults to 5m and is set by flag or config file", () => {
    assert.equal(load({}, "").config.evictionPressureTransitionPeriod, 300_000);
    assert.equal(load({ "eviction-pressure-transition-period": "30s" }).config.evictionPressureTransitionPeriod, 30_000);
    assert.equal(load({}, "evictionPressureTransitionPeriod: 1m30s\n").config.evictionPressureTransitionPeriod, 90_000);
  });
  it("evictionMinimumReclaim: signal=value flags, a map in the file", () => {
    assert.deepEqual(load({}, "").config.evictionMinimumReclaim, {});
    assert.deepEqual(load({ "eviction-minimum-reclaim": "memory.available=0Mi,nodefs.available=500Mi" }).config.evictionMinimumReclaim, { "memory.available": "0Mi", "nodefs.available": "500Mi" });
    assert.deepEqual(load({}, "evictionMinimumReclaim:\n  imagefs.available: 2Gi\n").config.evictionMinimumReclaim, { "imagefs.available": "2Gi" });
    assert.throws(() => load({}, "evictionMinimumReclaim:\n  disk: 2Gi\n"), /evictionMinimumReclaim: expected a map of eviction signals .*\(bad entry disk\)/);
  });
  it("a bad value names the field", () => {
    assert.throws(() => load({ "eviction-pressure-transition-period": "soon" }), /flag --eviction-pressure-transition-period: expected a duration/);
    assert.throws(() => load({}, "evictionPressureTransitionPeriod: 5\n"), /evictionPressureTransitionPeriod: expected a duration/);
    assert.throws(() => load({ "eviction-hard": "memory.available<lots" }), /eviction-hard: .*bad value lots for memory\.available/);
    assert.throws(() => load({ "eviction-hard": "memory.available<-1Mi" }), /eviction-hard: .*bad value -1Mi for memory\.available/);
  });
});
