/**
 * Cluster mode end to end: the real kube-apiserver, kube-controller-manager and kube-scheduler
 * (test/cluster), a real containerd, the real tskubelet command, driven with kubectl.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startContainerd, ctr, type PrivateContainerd } from "../support/containerd.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { eventsOf } from "../support/e2e.js";
import { podManifest, sleep, startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

interface PodJSON {
  metadata: { name: string; uid: string; annotations?: Record<string, string>; ownerReferences?: { kind: string; name: string }[]; deletionTimestamp?: string };
  status: { phase?: string; podIP?: string; containerStatuses?: { containerID?: string; restartCount: number; state: { running?: object } }[]; conditions?: { type: string; status: string }[] };
}

describe("cluster mode against a real control plane", () => {
  let cp: TestCluster;
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  const node = "e2e-node";

  const getJSON = async <T>(args: string[]): Promise<T> => JSON.parse(await cp.kubectl([...args, "-o", "json"])) as T;
  const pods = async (selector: string): Promise<PodJSON[]> => (await getJSON<{ items: PodJSON[] }>(["get", "pods", "-l", selector])).items;
  const containersOf = async (podName: string): Promise<string[]> =>
    (await ctr(rt, "-n", "k8s.io", "containers", "ls", "-q", `labels."io.kubernetes.pod.name"==${podName},labels."io.cri-containerd.kind"==container`))
      .split("\n")
      .filter((l) => l.trim() !== "");

  before(async () => {
    [cp, rt] = await Promise.all([startCluster(), startContainerd({ cni: true })]);
    const kc = await cp.nodeKubeconfig(node);
    k = await startTskubelet(rt, { nodeName: node, extraArgs: [`--kubeconfig=${kc}`, "--node-labels=tier=e2e"] });
  });
  after(async () => {
    await k?.cleanup();
    await Promise.all([cp?.stop(), rt?.stop()]);
  });

  it("registers a Ready node with the machine's capacity (kubectl get nodes)", async () => {
    const n = await waitFor(async () => {
      const nodes = await getJSON<{ items: { metadata: { name: string; labels: Record<string, string> }; status: { conditions: { type: string; status: string; reason: string }[]; capacity: Record<string, string>; allocatable: Record<string, string>; nodeInfo: Record<string, string>; daemonEndpoints: { kubeletEndpoint: { Port: number } }; addresses: { type: string; address: string }[] } }[] }>(["get", "nodes"]);
      const found = nodes.items.find((x) => x.metadata.name === node);
      return found?.status.conditions.find((c) => c.type === "Ready")?.status === "True" ? found : undefined;
    }, { timeoutMs: 30_000, what: () => "the node to be Ready" });
    assert.equal(n.status.capacity.cpu, String(cpus().length));
    assert.equal(n.status.capacity.pods, "110");
    assert.equal(n.status.capacity.memory, `${Math.floor(totalmem() / 1024)}Ki`);
    assert.ok(Number(n.status.capacity["ephemeral-storage"]?.replace("Ki", "")) > 0);
    // allocatable = capacity - the default hard eviction threshold memory.available<100Mi
    assert.equal(n.status.allocatable.memory, `${Math.floor((totalmem() - 100 * 1024 * 1024) / 1024)}Ki`);
    assert.equal(n.metadata.labels["kubernetes.io/hostname"], node);
    assert.equal(n.metadata.labels["kubernetes.io/os"], "linux");
    assert.equal(n.metadata.labels.tier, "e2e");
    assert.match(n.status.nodeInfo.containerRuntimeVersion ?? "", /^containerd:\/\/1\.6\./);
    assert.equal(n.status.daemonEndpoints.kubeletEndpoint.Port, k.port);
    assert.deepEqual(n.status.conditions.map((c) => `${c.type}=${c.status}:${c.reason}`), [
      "MemoryPressure=False:KubeletHasSufficientMemory",
      "DiskPressure=False:KubeletHasNoDiskPressure",
      "PIDPressure=False:KubeletHasSufficientPID",
      "Ready=True:KubeletReady",
    ]);
    const table = await cp.kubectl(["get", "nodes"]);
    assert.match(table, new RegExp(`^${node}\\s+Ready\\s`, "m"));
    const lease = JSON.parse(await cp.kubectl(["get", "lease", "-n", "kube-node-lease", node, "-o", "json"])) as { spec: { holderIdentity: string; leaseDurationSeconds: number }; metadata: { ownerReferences: { kind: string; name: string }[] } };
    assert.equal(lease.spec.holderIdentity, node);
    assert.equal(lease.spec.leaseDurationSeconds, 40);
    assert.equal(lease.metadata.ownerReferences[0]?.kind, "Node");
  });

  it("puts Ready back to True when someone else marks it Unknown in the API (as the node controller does after missed heartbeats)", async () => {
    await cp.kubectl([
      "patch", "node", node, "--subresource=status", "--type=strategic",
      "-p", JSON.stringify({ status: { conditions: [{ type: "Ready", status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status." }] } }),
    ]);
    const marked = await getJSON<{ status: { conditions: { type: string; status: string }[] } }>(["get", "node", node]);
    assert.equal(marked.status.conditions.find((c) => c.type === "Ready")?.status, "Unknown", "the patch took");
    await waitFor(async () => {
      const n = await getJSON<{ status: { conditions: { type: string; status: string; reason: string }[] } }>(["get", "node", node]);
      const r = n.status.conditions.find((c) => c.type === "Ready");
      return r?.status === "True" && r.reason === "KubeletReady" ? true : undefined;
    }, { timeoutMs: 30_000, what: () => "tskubelet to set Ready=True again (it reads the node every nodeStatusUpdateFrequency)" });
    assert.match(k.output(), /node conditions in the API differ from ours; updating them.*Ready=Unknown/);
  });

  it("runs a Deployment of 3 replicas scheduled by kube-scheduler, each Running with its pod IP", async () => {
    await cp.kubectl(["create", "deployment", "web", "--image=tskubelet.local/busybox:1.35", "--replicas=3", "--", "sh", "-c", "trap 'exit 0' TERM; httpd -p 8080 -h /var/www; while true; do sleep 1; done"]);
    const list = await waitFor(async () => {
      const l = await pods("app=web");
      return l.length === 3 && l.every((p) => p.status.phase === "Running" && p.status.podIP && p.status.conditions?.find((c) => c.type === "Ready")?.status === "True") ? l : undefined;
    }, { timeoutMs: 60_000, what: () => "3 web pods Running and Ready" });
    const ips = new Set(list.map((p) => p.status.podIP));
    assert.equal(ips.size, 3);
    for (const ip of ips) assert.ok(ip?.startsWith(rt.subnet.split(".").slice(0, 3).join(".")));
    const wide = await cp.kubectl(["get", "pods", "-l", "app=web", "-o", "wide"]);
    assert.equal(wide.split("\n").filter((l) => l.includes(node) && l.includes("Running")).length, 3);
    // Events are held while pods start (10 s at most, docs/architecture.md), so they may trail the Running status.
    const first = list[0]?.metadata.name ?? "";
    const reasons = await waitFor(async () => {
      const r = (await eventsOf(cp, first)).map((e) => e.reason);
      return r.includes("Started") ? r : undefined;
    }, { timeoutMs: 15_000, what: () => `the Started event of ${first}` });
    for (const r of ["Scheduled", "Created", "Started"]) assert.ok(reasons.includes(r), `${r} in ${reasons.join(",")}`);
    const table = await cp.kubectl(["get", "events", "--field-selector", `involvedObject.name=${first}`]);
    assert.match(table, new RegExp(`Normal\\s+Started\\s+pod/${first}\\s+Started container \\S+`));
  });

  it("kubectl delete stops the containers within the grace period, then the pod object goes", async () => {
    const [victim] = await pods("app=web");
    assert.ok(victim);
    const t0 = Date.now();
    await cp.kubectl(["delete", "pod", victim.metadata.name, "--grace-period=5", "--wait=true"], { timeoutMs: 60_000 });
    const took = Date.now() - t0;
    assert.ok(took < 5000 + 5000, `deleted within the grace period plus a margin (${took} ms)`);
    assert.deepEqual(await containersOf(victim.metadata.name), []);
    // The ReplicaSet replaces it.
    await waitFor(async () => {
      const l = await pods("app=web");
      return l.length === 3 && l.every((p) => p.status.phase === "Running") ? l : undefined;
    }, { timeoutMs: 60_000, what: () => "the replacement pod" });
    await cp.kubectl(["delete", "deployment", "web", "--wait=true"]);
    await waitFor(async () => ((await pods("app=web")).length === 0 ? true : undefined), { timeoutMs: 60_000, what: () => "all web pods gone" });
  });

  it("shows a static pod as a mirror pod, recreated when deleted", async () => {
    await k.writeManifest("static-web.yaml", podManifest("static-web", { command: ["sleep", "3600"] }));
    const name = `static-web-${node}`;
    const mirror = await waitFor(async () => {
      const p = await getJSON<PodJSON>(["get", "pod", name]).catch(() => undefined);
      return p?.status.phase === "Running" ? p : undefined;
    }, { timeoutMs: 30_000, what: () => "the mirror pod Running" });
    assert.ok(mirror.metadata.annotations?.["kubernetes.io/config.mirror"]);
    assert.equal(mirror.metadata.annotations?.["kubernetes.io/config.source"], "file");
    assert.equal(mirror.metadata.ownerReferences?.[0]?.kind, "Node");
    assert.equal(mirror.metadata.ownerReferences?.[0]?.name, node);
    const cid = mirror.status.containerStatuses?.[0]?.containerID;
    await cp.kubectl(["delete", "pod", name, "--wait=false"]);
    const again = await waitFor(async () => {
      const p = await getJSON<PodJSON>(["get", "pod", name]).catch(() => undefined);
      return p && p.metadata.uid !== mirror.metadata.uid && p.status.phase === "Running" ? p : undefined;
    }, { timeoutMs: 30_000, what: () => "the mirror pod to be recreated" });
    assert.equal(again.status.containerStatuses?.[0]?.containerID, cid, "deleting the mirror does not restart the static pod");
    await k.removeManifest("static-web.yaml");
    await waitFor(async () => ((await cp.kubectl(["get", "pods", "--no-headers"])).includes(name) ? undefined : true), { timeoutMs: 30_000, what: () => "the mirror pod to go with its manifest" });
  });

  it("rejects a pod whose nodeSelector does not match (NodeAffinity)", async () => {
    await cp.kubectl(["apply", "-f", "-"], {
      input: `apiVersion: v1\nkind: Pod\nmetadata:\n  name: picky\nspec:\n  nodeName: ${node}\n  nodeSelector:\n    disk: ssd\n  containers:\n  - name: c\n    image: tskubelet.local/busybox:1.35\n    command: [sleep, "3600"]\n`,
    });
    const p = await waitFor(async () => {
      const x = await getJSON<{ status: { phase?: string; reason?: string; message?: string } }>(["get", "pod", "picky"]);
      return x.status.phase === "Failed" ? x : undefined;
    }, { timeoutMs: 30_000, what: () => "picky to be rejected" });
    assert.equal(p.status.reason, "NodeAffinity");
    assert.deepEqual(await containersOf("picky"), []);
    await cp.kubectl(["delete", "pod", "picky", "--wait=true"]);
  });

  it("reports a pod whose RuntimeClass has a handler the runtime lacks (reason and Event), the node stays Ready", async () => {
    // RuntimeClass admission refuses unknown classes at creation; an unknown handler reaches the node.
    await cp.kubectl(["apply", "-f", "-"], { input: "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: nope\nhandler: nope-handler\n" });
    await cp.kubectl(["apply", "-f", "-"], {
      input: `apiVersion: v1\nkind: Pod\nmetadata:\n  name: exotic\nspec:\n  nodeName: ${node}\n  runtimeClassName: nope\n  containers:\n  - name: c\n    image: tskubelet.local/busybox:1.35\n    command: [sleep, "3600"]\n`,
    });
    const events = await waitFor(async () => {
      const e = await cp.kubectl(["get", "events", "--field-selector", "involvedObject.name=exotic", "-o", "json"]);
      const items = (JSON.parse(e) as { items: { reason: string; message: string }[] }).items;
      return items.find((x) => x.reason === "FailedCreatePodSandBox") ? items : undefined;
    }, { timeoutMs: 30_000, what: () => "a FailedCreatePodSandBox event" });
    assert.match(events.find((x) => x.reason === "FailedCreatePodSandBox")?.message ?? "", /^Failed to create pod sandbox: .*nope-handler/);
    const p = await getJSON<{ status: { phase?: string; containerStatuses?: { state: { waiting?: { reason?: string } } }[] } }>(["get", "pod", "exotic"]);
    assert.equal(p.status.phase, "Pending");
    assert.equal(p.status.containerStatuses?.[0]?.state.waiting?.reason, "ContainerCreating");
    assert.equal((await getJSON<{ status: { conditions: { type: string; status: string }[] } }>(["get", "node", node])).status.conditions.find((c) => c.type === "Ready")?.status, "True");
    await cp.kubectl(["delete", "pod", "exotic", "--wait=true"]);
    await cp.kubectl(["delete", "runtimeclass", "nope"]);
  });

  it("says which identity was refused when its credentials are rejected", async () => {
    const sh = promisify(execFile);
    const dir = await mkdtemp(join(tmpdir(), "tskubelet-e2e-rogue-"));
    await sh("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(dir, "ca.key"), "-subj", "/CN=rogue-ca", "-days", "1", "-out", join(dir, "ca.crt")]);
    await sh("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(dir, "n.key"), "-subj", "/O=system:nodes/CN=system:node:intruder", "-out", join(dir, "n.csr")]);
    await sh("openssl", ["x509", "-req", "-in", join(dir, "n.csr"), "-CA", join(dir, "ca.crt"), "-CAkey", join(dir, "ca.key"), "-CAcreateserial", "-days", "1", "-out", join(dir, "n.crt")]);
    const b64 = async (f: string): Promise<string> => (await readFile(join(dir, f))).toString("base64");
    const kc = join(dir, "kubeconfig");
    await writeFile(kc, `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${cp.server}\n    certificate-authority-data: ${(await readFile(cp.caCert)).toString("base64")}\nusers:\n- name: u\n  user:\n    client-certificate-data: ${await b64("n.crt")}\n    client-key-data: ${await b64("n.key")}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n`);
    const rogue = await startTskubelet(rt, { nodeName: "intruder", extraArgs: [`--kubeconfig=${kc}`] });
    try {
      const line = await waitFor(() => rogue.output().split("\n").find((l) => l.includes("rejected the credentials") && l.includes("POST /api/v1/nodes")), { timeoutMs: 30_000, what: () => "a 401 log line" });
      assert.match(line, /rejected the credentials of system:node:intruder \(401 Unauthorized\) for POST \/api\/v1\/nodes/);
      assert.equal((await cp.kubectl(["get", "nodes", "--no-headers"])).includes("intruder"), false);
    } finally {
      await rogue.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("works under NodeRestriction: its identity may not touch another node", async () => {
    await cp.kubectl(["apply", "-f", "-"], { input: "apiVersion: v1\nkind: Node\nmetadata:\n  name: other-node\n" });
    const kc = await cp.nodeKubeconfig(node);
    await assert.rejects(cp.kubectl(["label", "node", "other-node", "stolen=yes"], { kubeconfig: kc }), /forbidden|Forbidden/);
    await assert.rejects(cp.kubectl(["label", "node", node, "node-role.kubernetes.io/control-plane=yes"], { kubeconfig: kc }), /forbidden|Forbidden|not allowed/);
    await cp.kubectl(["delete", "node", "other-node"]);
  });

  it("keeps pods running through a one-minute apiserver outage and catches up", async () => {
    await cp.kubectl(["create", "deployment", "steady", "--image=tskubelet.local/busybox:1.35", "--replicas=2", "--", "sleep", "3600"]);
    const before = await waitFor(async () => {
      const l = await pods("app=steady");
      return l.length === 2 && l.every((p) => p.status.phase === "Running") ? l : undefined;
    }, { timeoutMs: 60_000, what: () => "2 steady pods" });
    const ids = before.map((p) => p.status.containerStatuses?.[0]?.containerID).sort();
    const apiserver = await cp.pid("kube-apiserver");
    process.kill(apiserver, "SIGSTOP");
    try {
      await sleep(60_000);
      // Pods kept running on the node while the apiserver was away.
      for (const p of before) assert.equal((await containersOf(p.metadata.name)).length, 1);
    } finally {
      process.kill(apiserver, "SIGCONT");
    }
    await waitFor(async () => {
      const n = await getJSON<{ status: { conditions: { type: string; status: string }[] } }>(["get", "node", node]);
      return n.status.conditions.find((c) => c.type === "Ready")?.status === "True" ? true : undefined;
    }, { timeoutMs: 90_000, what: () => "the node Ready again" });
    const after = await waitFor(async () => {
      const l = await pods("app=steady");
      return l.length === 2 && l.every((p) => p.status.phase === "Running") ? l : undefined;
    }, { timeoutMs: 60_000, what: () => "the steady pods Running" });
    assert.deepEqual(after.map((p) => p.status.containerStatuses?.[0]?.containerID).sort(), ids, "nothing was started twice");
    for (const p of after) assert.equal(p.status.containerStatuses?.[0]?.restartCount, 0);
    await cp.kubectl(["delete", "deployment", "steady", "--wait=true"]);
  });
});
