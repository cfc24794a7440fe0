/**
 * Node-pressure eviction end to end (real control plane, real containerd, the tskubelet command,
 * kubectl): the node's DiskPressure condition with upstream's reasons, the BestEffort pod evicted
 * before the Burstable one when nodefs.available crosses its threshold (phase Failed, reason
 * Evicted, upstream's message, a Warning event, kubelet_evictions), new pods refused while the
 * condition holds, the condition cleared after evictionPressureTransitionPeriod, and a pod evicted
 * for an emptyDir over its sizeLimit while another keeps running; then, under MemoryPressure,
 * BestEffort pods refused and a Burstable pod over its memory request evicted.
 *
 * The threshold is an absolute nodefs.available computed from statfs just before tskubelet starts:
 * MARGIN below the free space. The pods then write into their emptyDirs (on nodefs) to cross it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { eventsOf, kubectlJSON, waitNodeReadyForPods, type EventJSON } from "../support/e2e.js";
import { startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

const IMAGE = "tskubelet.local/busybox:1.35";
const Mi = 2 ** 20;
/** How far below the free space the threshold sits; each of the two pods writes FILL_MI. */
const MARGIN_MI = 900;
const FILL_MI = 600;
const TRANSITION_SECONDS = 30;

interface PodJSON {
  metadata: { name: string; uid: string };
  status: { phase?: string; reason?: string; message?: string; conditions?: { type: string; status: string; reason?: string }[] };
}
interface NodeCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

describe("node-pressure eviction end to end", () => {
  let cp: TestCluster;
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let kubeconfig = "";
  const node = "e2e-eviction";

  const getJSON = <T>(args: string[]): Promise<T> => kubectlJSON<T>(cp, args);
  const podJSON = (name: string): Promise<PodJSON> => getJSON<PodJSON>(["get", "pod", name]);
  const nodeCondition = async (type: string): Promise<NodeCondition | undefined> =>
    (await getJSON<{ status: { conditions?: NodeCondition[] } }>(["get", "node", node]).catch(() => undefined))?.status.conditions?.find((c) => c.type === type);
  const diskPressure = (): Promise<NodeCondition | undefined> => nodeCondition("DiskPressure");
  const events = (name: string): Promise<EventJSON[]> => eventsOf(cp, name);
  const apply = (yaml: string): Promise<string> => cp.kubectl(["apply", "-f", "-"], { input: yaml });
  const pod = (name: string, script: string, extra = ""): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  nodeName: ${node}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: ${IMAGE}
    command: ["sh", "-c", ${JSON.stringify(script)}]
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
${extra}`;
  const scratch = (sizeLimit?: string): string => `  volumes:\n  - name: scratch\n    emptyDir: {${sizeLimit ? `sizeLimit: ${sizeLimit}` : ""}}\n`;
  const phaseOf = (name: string, phase: string): Promise<PodJSON> =>
    waitFor(async () => {
      const p = await podJSON(name).catch(() => undefined);
      return p?.status.phase === phase ? p : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500, what: () => `${name} ${phase}:\n${k.output().slice(-3000)}` });
  const conditionIs = (status: string, type = "DiskPressure"): Promise<NodeCondition> =>
    waitFor(async () => {
      const c = await nodeCondition(type);
      return c?.status === status ? c : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500, what: () => `${type} ${status}:\n${k.output().slice(-3000)}` });

  before(async () => {
    [cp, rt] = await Promise.all([startCluster(), startContainerd({ cni: true })]);
    kubeconfig = await cp.nodeKubeconfig(node);
    const s = await statfs(tmpdir());
    const thresholdMi = Math.floor((s.bavail * s.bsize) / Mi) - MARGIN_MI;
    k = await startTskubelet(rt, {
      nodeName: node,
      extraArgs: [`--kubeconfig=${kubeconfig}`, `--eviction-hard=nodefs.available<${thresholdMi}Mi`, `--eviction-pressure-transition-period=${TRANSITION_SECONDS}s`],
    });
    await waitNodeReadyForPods(cp, node);
  });
  after(async () => {
    await k?.cleanup();
    await Promise.all([cp?.stop(), rt?.stop()]);
  });

  it("reports DiskPressure False with upstream's reason while the disk has room", async () => {
    const c = await diskPressure();
    assert.deepEqual([c?.status, c?.reason, c?.message], ["False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"]);
  });

  it("evicts the BestEffort pod before the Burstable one when nodefs.available crosses its threshold", async () => {
    const fill = `dd if=/dev/zero of=/scratch/fill bs=1M count=${FILL_MI} && sync && echo filled && sleep 3600`;
    await apply(pod("keeper", fill, `    resources:\n      requests: {memory: 16Mi, ephemeral-storage: 4Gi}\n${scratch()}`));
    await phaseOf("keeper", "Running");
    await apply(pod("hog", fill, scratch()));

    const pressure = await conditionIs("True");
    assert.deepEqual([pressure.reason, pressure.message], ["KubeletHasDiskPressure", "kubelet has disk pressure"]);

    const hog = await phaseOf("hog", "Failed");
    assert.equal(hog.status.reason, "Evicted");
    assert.match(
      hog.status.message ?? "",
      /^The node was low on resource: ephemeral-storage\. Threshold quantity: \w+, available: \w+\. (Container main was using \w+, request is 0, has larger consumption of ephemeral-storage\. )?$/,
    );
    const dt = hog.status.conditions?.find((c) => c.type === "DisruptionTarget");
    assert.deepEqual([dt?.status, dt?.reason], ["True", "TerminationByKubelet"]);
    const ev = await waitFor(async () => (await events("hog")).find((e) => e.reason === "Evicted"), { timeoutMs: 30_000, what: () => "the Evicted event" });
    assert.equal(ev.type, "Warning");
    assert.equal(ev.message, hog.status.message);

    // Its emptyDir is gone with it: the node has room again and the Burstable pod keeps running.
    assert.equal((await podJSON("keeper")).status.phase, "Running");
    const metrics = await fetch(`http://127.0.0.1:${k.readOnlyPort}/metrics`).then((r) => r.text());
    assert.match(metrics, /^kubelet_evictions\{eviction_signal="nodefs\.available"\} 1$/m);
    assert.match(metrics, /^kubelet_eviction_stats_age_seconds_count\{eviction_signal="nodefs\.available"\} 1$/m);
  });

  it("refuses new pods while DiskPressure holds, then clears it after the transition period", async () => {
    await apply(pod("late", "sleep 3600", scratch()));
    const late = await phaseOf("late", "Failed");
    assert.deepEqual([late.status.reason, late.status.message], ["Evicted", "The node had condition: [DiskPressure]. "]);
    const cleared = await conditionIs("False");
    assert.deepEqual([cleared.reason, cleared.message], ["KubeletHasNoDiskPressure", "kubelet has no disk pressure"]);
    assert.equal((await podJSON("keeper")).status.phase, "Running", "the Burstable pod was never evicted");
  });

  it("evicts a pod whose emptyDir exceeds its sizeLimit while another keeps running", async () => {
    await cp.kubectl(["delete", "pod", "keeper", "--wait=false"]);
    await apply(pod("steady", "dd if=/dev/zero of=/scratch/f bs=1M count=1 && sleep 3600", scratch("16Mi")));
    await apply(pod("overflow", "dd if=/dev/zero of=/scratch/f bs=1M count=32 && sleep 3600", scratch("16Mi")));
    const p = await phaseOf("overflow", "Failed");
    assert.deepEqual([p.status.reason, p.status.message], ["Evicted", 'Usage of EmptyDir volume "scratch" exceeds the limit "16Mi". ']);
    assert.equal((await podJSON("steady")).status.phase, "Running");
    const metrics = await fetch(`http://127.0.0.1:${k.readOnlyPort}/metrics`).then((r) => r.text());
    assert.match(metrics, /^kubelet_evictions\{eviction_signal="emptydirfs\.limit"\} 1$/m);
  });

  it("under MemoryPressure refuses BestEffort pods and evicts a pod using more memory than it requests", async () => {
    // A new tskubelet for the same node whose memory threshold is above what this machine has free.
    for (const n of ["steady", "overflow", "hog", "late"]) await cp.kubectl(["delete", "pod", n, "--ignore-not-found", "--grace-period=0", "--force"]).catch(() => "");
    await k.cleanup();
    k = await startTskubelet(rt, { nodeName: node, extraArgs: [`--kubeconfig=${kubeconfig}`, "--eviction-hard=memory.available<99%", `--eviction-pressure-transition-period=${TRANSITION_SECONDS}s`] });
    const mp = await conditionIs("True", "MemoryPressure");
    assert.deepEqual([mp.reason, mp.message], ["KubeletHasInsufficientMemory", "kubelet has insufficient memory available"]);
    assert.equal((await diskPressure())?.status, "False");

    await apply(pod("be-mem", "sleep 3600", scratch()));
    const be = await phaseOf("be-mem", "Failed");
    assert.deepEqual([be.status.reason, be.status.message], ["Evicted", "The node had condition: [MemoryPressure]. "]);

    // Burstable pods are admitted under MemoryPressure; this one uses more than its 1k request and is the one evicted.
    await apply(pod("burst-mem", "sleep 3600", `    resources:\n      requests: {memory: 1k}\n${scratch()}`));
    const b = await phaseOf("burst-mem", "Failed");
    assert.equal(b.status.reason, "Evicted");
    assert.match(b.status.message ?? "", /^The node was low on resource: memory\. Threshold quantity: \w+, available: \w+\. Container main was using \w+, request is 1k, has larger consumption of memory\. $/);
    const metrics = await fetch(`http://127.0.0.1:${k.readOnlyPort}/metrics`).then((r) => r.text());
    assert.match(metrics, /^kubelet_evictions\{eviction_signal="memory\.available"\} 1$/m);
  });
});
