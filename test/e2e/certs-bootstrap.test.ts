/**
 * Certificate lifecycle end to end: the real control plane (test/cluster, bootstrap token and
 * kubeadm-style RBAC), a private containerd and the real tskubelet command, driven with kubectl.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { podManifest, sleep, startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

interface CsrJSON {
  metadata: { name: string; creationTimestamp: string };
  spec: { signerName: string; username: string; usages: string[]; request: string; expirationSeconds?: number };
  status: { conditions?: { type: string; reason?: string }[]; certificate?: string };
}
interface NodeJSON {
  metadata: { name: string };
  status: { conditions?: { type: string; status: string }[]; addresses?: { type: string; address: string }[] };
}

const csrs = async (cp: TestCluster): Promise<CsrJSON[]> => (JSON.parse(await cp.kubectl(["get", "csr", "-o", "json"])) as { items: CsrJSON[] }).items;
const nodeReady = async (cp: TestCluster, name: string): Promise<NodeJSON | undefined> => {
  const out = await cp.kubectl(["get", "node", name, "-o", "json"]).catch(() => "");
  if (!out) return undefined;
  const n = JSON.parse(out) as NodeJSON;
  return n.status.conditions?.find((c) => c.type === "Ready")?.status === "True" ? n : undefined;
};
const currentTarget = (k: TskubeletProcess): Promise<string> => readlink(join(k.certDir, "kubelet-client-current.pem"));

/** The certificate 10250 presents, verified against the cluster CA. */
function servedCert(port: number, ca: Buffer): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, ca, rejectUnauthorized: false }, () => {
      const raw = s.getPeerX509Certificate();
      s.destroy();
      if (raw) resolve(raw);
      else reject(new Error("no peer certificate"));
    });
    s.once("error", reject);
  });
}

describe("certificate bootstrap approved by hand, and the serving certificate", () => {
  let cp: TestCluster;
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  const node = "e2e-certs-manual";

  before(async () => {
    [cp, rt] = await Promise.all([startCluster({ autoApprove: false }), startContainerd()]);
    k = await startTskubelet(rt, {
      nodeName: node,
      extraArgs: [`--kubeconfig=${join(cp.dataDir, `${node}.kubeconfig`)}`, `--bootstrap-kubeconfig=${join(cp.dataDir, "bootstrap-kubeconfig")}`, "--rotate-certificates", "--rotate-server-certificates"],
    });
  });
  after(async () => {
    await k?.cleanup();
    await Promise.all([cp?.stop(), rt?.stop()]);
  });

  it("shows the node-csr Pending in kubectl get csr, logs the kubectl command, and goes Ready once approved with kubectl", async () => {
    const csr = await waitFor(async () => (await csrs(cp)).find((c) => c.metadata.name.startsWith("node-csr-")), { timeoutMs: 30_000, what: () => `a node-csr CSR; output:\n${k.output()}` });
    assert.equal(csr.spec.signerName, "kubernetes.io/kube-apiserver-client-kubelet");
    assert.match(csr.spec.username, /^system:bootstrap:/);
    assert.deepEqual(csr.spec.usages, ["digital signature", "key encipherment", "client auth"]);
    const table = await cp.kubectl(["get", "csr"]);
    assert.match(table, new RegExp(`^${csr.metadata.name}\\s.*\\sPending\\s*$`, "m"));
    await waitFor(() => k.output().includes(`kubectl certificate approve ${csr.metadata.name}`), { timeoutMs: 10_000, what: () => "the approve command in the log" });
    await sleep(3000);
    assert.equal(await nodeReady(cp, node), undefined, "not Ready before approval");
    await cp.kubectl(["certificate", "approve", csr.metadata.name]);
    await waitFor(() => nodeReady(cp, node), { timeoutMs: 60_000, what: () => `node ${node} Ready; output:\n${k.output()}` });
    const kc = await readFile(join(cp.dataDir, `${node}.kubeconfig`), "utf8");
    assert.match(kc, /client-certificate: .*kubelet-client-current\.pem/);
    assert.match(await currentTarget(k), /^kubelet-client-\d{4}(-\d\d){5}\.pem$/);
  });

  it("sends a kubelet-serving CSR with the node's addresses; once approved, 10250 presents the issued certificate", async () => {
    const n = await waitFor(() => nodeReady(cp, node), { timeoutMs: 30_000, what: () => "the node" });
    const ips = (n.status.addresses ?? []).filter((a) => a.type === "InternalIP").map((a) => a.address);
    assert.ok(ips.length > 0);
    const csr = await waitFor(async () => (await csrs(cp)).find((c) => c.spec.signerName === "kubernetes.io/kubelet-serving"), { timeoutMs: 30_000, what: () => `a kubelet-serving CSR; output:\n${k.output()}` });
    assert.equal(csr.spec.username, `system:node:${node}`);
    assert.deepEqual(csr.spec.usages, ["digital signature", "server auth"]);
    await waitFor(() => k.output().includes(`kubectl certificate approve ${csr.metadata.name}`), { timeoutMs: 10_000, what: () => "the approve command for the serving CSR" });
    // A connection opened before the swap, kept open across it.
    const ca = await readFile(cp.caCert);
    const early = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port: k.port, rejectUnauthorized: false }, () => resolve(s));
      s.once("error", reject);
    });
    const earlyCert = early.getPeerX509Certificate();
    assert.ok(earlyCert && !earlyCert.checkIssued(new X509Certificate(ca)), "the self-signed fallback before approval");
    await cp.kubectl(["certificate", "approve", csr.metadata.name]);
    const cert = await waitFor(async () => {
      const c = await servedCert(k.port, ca);
      return c.checkIssued(new X509Certificate(ca)) ? c : undefined;
    }, { timeoutMs: 30_000, what: () => `10250 to present the CA-issued certificate; output:\n${k.output()}` });
    assert.match(cert.subject, new RegExp(`CN=system:node:${node}`));
    for (const ip of ips) assert.ok(cert.subjectAltName?.includes(`IP Address:${ip}`), `${cert.subjectAltName ?? ""} has ${ip}`);
    assert.ok(cert.subjectAltName?.includes(`DNS:${node}`));
    const reply = await new Promise<string>((resolve, reject) => {
      let buf = "";
      early.setEncoding("utf8");
      early.on("data", (d: string) => {
        buf += d;
        if (buf.includes("\r\n\r\n")) resolve(buf);
      });
      early.once("error", reject);
      early.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    });
    early.destroy();
    assert.match(reply, /^HTTP\/1\.1 \d{3} /, "the connection from before the swap still gets answers");
  });

  it("a denied bootstrap CSR is reported as denied and retried under a new name", async () => {
    const seen = new Set((await csrs(cp)).map((c) => c.metadata.name));
    const k3 = await startTskubelet(rt, {
      nodeName: "e2e-certs-denied",
      extraArgs: [`--kubeconfig=${join(cp.dataDir, "denied.kubeconfig")}`, `--bootstrap-kubeconfig=${join(cp.dataDir, "bootstrap-kubeconfig")}`],
    });
    try {
      const first = await waitFor(async () => (await csrs(cp)).find((c) => !seen.has(c.metadata.name) && c.metadata.name.startsWith("node-csr-")), { timeoutMs: 30_000, what: () => "the new node's CSR" });
      seen.add(first.metadata.name);
      await cp.kubectl(["certificate", "deny", first.metadata.name]);
      await waitFor(() => k3.output().includes(`certificate signing request ${first.metadata.name} was denied`), { timeoutMs: 30_000, what: () => `the denial in the log; output:\n${k3.output()}` });
      const second = await waitFor(async () => (await csrs(cp)).find((c) => !seen.has(c.metadata.name) && c.metadata.name.startsWith("node-csr-")), { timeoutMs: 30_000, what: () => "a retry under a new name" });
      await cp.kubectl(["certificate", "approve", second.metadata.name]);
      await waitFor(() => k3.output().includes("client certificate issued and stored"), { timeoutMs: 30_000, what: () => `the retried CSR's certificate; output:\n${k3.output()}` });
    } finally {
      await k3.cleanup();
    }
  });
});

describe("certificate bootstrap auto-approved, rotation and recovery", () => {
  let cp: TestCluster;
  let rt: PrivateContainerd;
  let k: TskubeletProcess | undefined;
  let k2: TskubeletProcess | undefined;
  const node = "e2e-certs-auto";

  before(async () => {
    // Test-only settings: CSRs ask for 10-minute certificates (spec.expirationSeconds 600, the API's
    // minimum), and rotation happens at 37% of the lifetime. The signer backdates NotBefore by 5 min,
    // so that is about 30 s after issuance.
    process.env.TSKUBELET_TEST_ROTATION_FRACTION = "0.37";
    process.env.TSKUBELET_TEST_CSR_EXPIRATION_SECONDS = "600";
    [cp, rt] = await Promise.all([startCluster(), startContainerd()]);
  });
  after(async () => {
    delete process.env.TSKUBELET_TEST_ROTATION_FRACTION;
    delete process.env.TSKUBELET_TEST_CSR_EXPIRATION_SECONDS;
    await k?.cleanup();
    await k2?.cleanup();
    await Promise.all([cp?.stop(), rt?.stop()]);
  });

  it("joins with no manual step, then rotates the short-lived client certificate while the node stays Ready and its Lease keeps renewing", async () => {
    k = await startTskubelet(rt, {
      nodeName: node,
      extraArgs: [
        `--kubeconfig=${join(cp.dataDir, `${node}.kubeconfig`)}`,
        `--bootstrap-kubeconfig=${join(cp.dataDir, "bootstrap-kubeconfig")}`,
        "--rotate-certificates",
        `--client-ca-file=${cp.caCert}`,
        "--authorization-mode=AlwaysAllow",
      ],
    });
    const proc = k;
    await waitFor(() => nodeReady(cp, node), { timeoutMs: 60_000, what: () => `node ${node} Ready; output:\n${proc.output()}` });
    await proc.writeManifest("ticker.yaml", podManifest("ticker", { command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done"], hostNetwork: true }));
    const logs = (): Promise<string> => cp.kubectl(["logs", `ticker-${node}`, "--tail=3"]);
    await waitFor(async () => /tick \d+/.test(await logs()), { timeoutMs: 60_000, intervalMs: 1000, what: () => `kubectl logs of the static pod; output:\n${proc.output()}` });
    const boot = (await csrs(cp)).find((c) => c.metadata.name.startsWith("node-csr-"));
    assert.equal(boot?.status.conditions?.find((c) => c.type === "Approved")?.reason, "AutoApproved");
    const first = await currentTarget(proc);
    const firstCert = new X509Certificate(await readFile(join(proc.certDir, first)));
    const left = Date.parse(firstCert.validTo) - Date.now();
    assert.ok(left <= 600_000 && left > 450_000, `a 10-minute certificate (${left} ms left)`);
    assert.equal(boot?.spec.expirationSeconds, 600);
    // Rotation: a csr-* CSR for system:node:<node>, auto-approved, a new -current.pem.
    await waitFor(async () => (await currentTarget(proc)) !== first, { timeoutMs: 90_000, intervalMs: 1000, what: () => `a rotated certificate; output:\n${proc.output()}` });
    const rot = (await csrs(cp)).find((c) => c.metadata.name.startsWith("csr-") && c.spec.username === `system:node:${node}`);
    assert.ok(rot, "a rotation CSR with generateName csr-");
    assert.deepEqual(rot.spec.usages, ["digital signature", "client auth"]);
    assert.ok(proc.output().includes("the API client now uses the new client certificate"));
    // The API client switched without a restart: the Lease keeps being renewed after the swap.
    const renew = async (): Promise<string> => (JSON.parse(await cp.kubectl(["get", "lease", "-n", "kube-node-lease", node, "-o", "json"])) as { spec: { renewTime: string } }).spec.renewTime;
    const before = await renew();
    await waitFor(async () => ((await renew()) !== before ? true : undefined), { timeoutMs: 30_000, intervalMs: 1000, what: () => "a Lease renewal after the rotation" });
    assert.ok(await nodeReady(cp, node));
    // kubectl logs (apiserver -> 10250) keeps working, and the mirror pod is still there.
    assert.match(await logs(), /tick \d+/);
    const metrics = await fetch(`http://127.0.0.1:${proc.readOnlyPort}/metrics`).then((r) => r.text());
    assert.match(metrics, /^kubelet_certificate_manager_client_ttl_seconds \d+/m);
  });

  it("recovers from an expired client certificate by bootstrapping again, with no manual step", async () => {
    const node2 = "e2e-certs-expired";
    const expired = await cp.nodeKubeconfig(node2, { days: 0 });
    await sleep(1100);
    k2 = await startTskubelet(rt, { nodeName: node2, extraArgs: [`--kubeconfig=${expired}`, `--bootstrap-kubeconfig=${join(cp.dataDir, "bootstrap-kubeconfig")}`] });
    const proc = k2;
    await waitFor(() => nodeReady(cp, node2), { timeoutMs: 60_000, what: () => `node ${node2} Ready; output:\n${proc.output()}` });
    assert.match(proc.output(), /the kubeconfig cannot be used; bootstrapping a client certificate/);
    assert.match(proc.output(), /expired at/);
    assert.match(await readFile(expired, "utf8"), /kubelet-client-current\.pem/);
  });
  it("runs the serving-CSR approver inside tskubelet: its own serving CSR is approved and 10250 presents the issued certificate", async () => {
    const node3 = "e2e-certs-approver";
    const kc = await cp.nodeKubeconfig(node3);
    const k3 = await startTskubelet(rt, {
      nodeName: node3,
      extraArgs: [`--kubeconfig=${kc}`, "--rotate-server-certificates", `--csr-approver-kubeconfig=${cp.adminKubeconfig}`],
    });
    try {
      const csr = await waitFor(
        async () => (await csrs(cp)).find((c) => c.spec.signerName === "kubernetes.io/kubelet-serving" && c.spec.username === `system:node:${node3}` && c.status.certificate),
        { timeoutMs: 60_000, intervalMs: 500, what: () => `an approved and issued serving CSR; output:\n${k3.output()}` },
      );
      assert.ok(csr.status.conditions?.some((c) => c.type === "Approved"));
      assert.match(k3.output(), /"kubelet-serving CSR decided".*verdict="approved"/);
      const ca = await readFile(cp.caCert);
      const served = await waitFor(async () => {
        const c = await servedCert(k3.port, ca);
        return c.checkIssued(new X509Certificate(ca)) ? c : undefined;
      }, { timeoutMs: 30_000, intervalMs: 500, what: () => "10250 to present the CA-issued certificate" });
      assert.match(served.subject, new RegExp(`CN=system:node:${node3}`));
    } finally {
      await k3.cleanup();
    }
  });
});
