/**
 * `tskubelet certs` against the real control plane (test/cluster):
 *  - `certs issue` with the cluster CA lets a node join, Ready, with no bootstrap token left in the cluster;
 *  - `certs approver` approves a node's kubelet-serving CSR for its own addresses (then
 *    kube-controller-manager issues it) and denies one with a foreign SAN, saying why;
 *  - `certs show` / `certs check` on the control plane's own certificates agree with openssl and
 *    cfssl-certinfo, and `certs check --endpoint` verifies the apiserver against the issued kubeconfig's CA.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startContainerd, repoRoot, type PrivateContainerd } from "../support/containerd.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

const run = promisify(execFile);
const MAIN = join(repoRoot(), "dist/src/cli/main.js");

async function tsk(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [MAIN, ...args], { maxBuffer: 16 << 20, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

interface NodeJSON {
  metadata: { name: string };
  status: { conditions?: { type: string; status: string }[]; addresses?: { type: string; address: string }[] };
}

interface CsrJSON {
  metadata: { name: string };
  spec: { username: string; signerName: string };
  status: { conditions?: { type: string; status: string; reason?: string; message?: string }[]; certificate?: string };
}

describe("certs issue and the serving CSR approver against a real control plane", () => {
  let cp: TestCluster;
  let rt: PrivateContainerd;
  let k: TskubeletProcess | undefined;
  let work: string;
  const node = "e2e-issued";

  before(async () => {
    [cp, rt] = await Promise.all([startCluster(), startContainerd({ cni: true })]);
    work = await mkdtemp(join(tmpdir(), "tsk-e2e-certs-"));
  });
  after(async () => {
    await k?.cleanup();
    await Promise.all([cp?.stop(), rt?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("certs issue → tskubelet joins and is Ready with no bootstrap token in the cluster", async () => {
    // No bootstrap token anywhere: delete the one up.sh made.
    await cp.kubectl(["-n", "kube-system", "delete", "secret", "--field-selector", "type=bootstrap.kubernetes.io/token"]);
    assert.equal((await cp.kubectl(["-n", "kube-system", "get", "secret", "--field-selector", "type=bootstrap.kubernetes.io/token", "-o", "name"])).trim(), "");
    const pki = join(work, "pki");
    const t0 = Date.now();
    const r = await tsk(["certs", "issue", "--ca-cert", cp.caCert, "--ca-key", cp.caKey, "--node", node, "--server", cp.server, "--out-dir", pki, "--days", "7"]);
    assert.equal(r.code, 0, r.stderr);
    const issueMs = Date.now() - t0;
    k = await startTskubelet(rt, { nodeName: node, extraArgs: [`--kubeconfig=${join(pki, "kubelet.conf")}`, `--cert-dir=${pki}`] });
    const ready = await waitFor(async () => {
      const n = JSON.parse(await cp.kubectl(["get", "node", node, "-o", "json"]).catch(() => "{}")) as Partial<NodeJSON>;
      return n.status?.conditions?.find((c) => c.type === "Ready")?.status === "True" ? n : undefined;
    }, { timeoutMs: 60_000, what: () => `node ${node} Ready; tskubelet output:\n${k?.output() ?? ""}` });
    assert.ok(ready);
    assert.match(await cp.kubectl(["get", "nodes"]), new RegExp(`^${node}\\s+Ready\\s`, "m"));
    // It never asked for a certificate: no CSR at all.
    assert.equal((await cp.kubectl(["get", "csr", "-o", "name"])).trim(), "");
    process.stderr.write(`# certs issue took ${issueMs} ms\n`);
  });

  it("certs approver --once approves the node's own-address serving CSR and denies a foreign SAN", async () => {
    const n = JSON.parse(await cp.kubectl(["get", "node", node, "-o", "json"])) as NodeJSON;
    const ip = n.status.addresses?.find((a) => a.type === "InternalIP")?.address;
    const host = n.status.addresses?.find((a) => a.type === "Hostname")?.address;
    assert.ok(ip && host, JSON.stringify(n.status.addresses));
    const nodeKc = join(work, "pki", "kubelet.conf");
    const mkCsr = async (name: string, san: string): Promise<void> => {
      const key = join(work, `${name}.key`);
      const csr = join(work, `${name}.csr`);
      await run("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-subj", `/O=system:nodes/CN=system:node:${node}`, "-addext", `subjectAltName=${san}`, "-out", csr]);
      const request = (await readFile(csr)).toString("base64");
      const manifest = JSON.stringify({
        apiVersion: "certificates.k8s.io/v1",
        kind: "CertificateSigningRequest",
        metadata: { name },
        spec: { request, signerName: "kubernetes.io/kubelet-serving", usages: ["digital signature", "server auth"] },
      });
      await cp.kubectl(["create", "-f", "-"], { kubeconfig: nodeKc, input: manifest });
    };
    await mkCsr("serving-good", `IP:${ip},DNS:${host}`);
    await mkCsr("serving-foreign", `IP:${ip},IP:203.0.113.9`);
    const pending = await cp.kubectl(["get", "csr"]);
    assert.match(pending, new RegExp(`^serving-good\\s+\\S+\\s+kubernetes.io/kubelet-serving\\s+system:node:${node}\\s+.*Pending`, "m"));

    const t0 = Date.now();
    const r = await tsk(["certs", "approver", "--once", "--kubeconfig", cp.adminKubeconfig, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const approverMs = Date.now() - t0;
    const outcomes = (JSON.parse(r.stdout) as { outcomes: { name: string; verdict: string; reason?: string }[] }).outcomes;
    assert.deepEqual(outcomes.map((o) => [o.name, o.verdict, o.reason]).sort(), [
      ["serving-foreign", "denied", "SANNotInNodeAddresses"],
      ["serving-good", "approved", undefined],
    ]);

    const table = await waitFor(async () => {
      const t = await cp.kubectl(["get", "csr"]);
      return /^serving-good\s.*Approved,Issued/m.test(t) ? t : undefined;
    }, { timeoutMs: 30_000, what: () => "serving-good Approved,Issued" });
    assert.match(table, /^serving-foreign\s.*\sDenied\s*$/m);
    const foreign = JSON.parse(await cp.kubectl(["get", "csr", "serving-foreign", "-o", "json"])) as CsrJSON;
    const denied = foreign.status.conditions?.find((c) => c.type === "Denied");
    assert.equal(denied?.reason, "SANNotInNodeAddresses");
    assert.match(denied?.message ?? "", /IP 203\.0\.113\.9 not among Node e2e-issued's status\.addresses/);
    // The issued serving certificate is what was asked for, signed by the cluster CA.
    const good = JSON.parse(await cp.kubectl(["get", "csr", "serving-good", "-o", "json"])) as CsrJSON;
    const certFile = join(work, "serving-good.crt");
    await import("node:fs/promises").then((fs) => fs.writeFile(certFile, Buffer.from(good.status.certificate ?? "", "base64")));
    assert.equal(execFileSync("openssl", ["verify", "-CAfile", cp.caCert, "-purpose", "sslserver", certFile], { encoding: "utf8" }).trim(), `${certFile}: OK`);
    const show = JSON.parse((await tsk(["certs", "show", certFile, "-o", "json"])).stdout) as { sans: string[]; subject: { common_name: string } };
    assert.deepEqual([...show.sans].sort(), [host, ip].sort());
    assert.equal(show.subject.common_name, `system:node:${node}`);
    process.stderr.write(`# certs approver --once took ${approverMs} ms\n`);
  });

  it("certs show on the control plane's certificates equals cfssl-certinfo and openssl", async () => {
    const pki = join(cp.dataDir, "pki");
    for (const f of [cp.caCert, join(pki, "apiserver.crt"), join(pki, "apiserver-kubelet-client.crt"), join(pki, "front-proxy-ca.crt")]) {
      const ours = JSON.parse((await tsk(["certs", "show", f, "-o", "json"])).stdout) as Record<string, unknown>;
      const theirs = JSON.parse(execFileSync("cfssl-certinfo", ["-cert", f], { encoding: "utf8" })) as Record<string, unknown>;
      assert.deepEqual(ours, theirs, f);
      const text = (await tsk(["certs", "show", f])).stdout;
      const openssl = execFileSync("openssl", ["x509", "-in", f, "-noout", "-text"], { encoding: "utf8" });
      for (const line of text.split("\n").filter((l) => /^\s+(Version|Signature Algorithm|Issuer|Subject|Not Before|Not After|Public Key Algorithm|Public-Key|X509v3 )/.test(l))) {
        assert.ok(openssl.split("\n").includes(line), `${f}: ${JSON.stringify(line)} not in openssl -text`);
      }
    }
  });

  it("certs check: the issued node's files and the live apiserver, chain verified against the kubeconfig CA", async () => {
    const pki = join(work, "pki");
    const endpoint = new URL(cp.server).host;
    const r = await tsk(["certs", "check", "--cert-dir", pki, "--kubeconfig", join(pki, "kubelet.conf"), "--endpoint", endpoint, "--warn-within", "24h", "-o", "json"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout) as { certificates: { name: string; status: string; subject?: string; notes: string[] }[] };
    assert.deepEqual(doc.certificates.map((c) => [c.name, c.status]), [
      ["client (cert dir)", "ok"],
      ["serving self-signed (cert dir)", "ok"],
      ["kubeconfig certificate-authority", "ok"],
      ["endpoint", "ok"],
    ]);
    assert.match(doc.certificates[0]?.notes.join(";") ?? "", /also kubeconfig client-certificate/);
    // Under a 30-day threshold the 7-day certificate is flagged: exit 1.
    const warn = await tsk(["certs", "check", "--cert-dir", pki, "--kubeconfig", join(pki, "kubelet.conf")]);
    assert.equal(warn.code, 1);
    assert.match(warn.stdout, /client \(cert dir\)\s.*\s6d\s+kube-test-plane-ca\s+no\s+.*expires within 30d/);
  });
});
