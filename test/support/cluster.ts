/**
 * The real control plane (test/cluster/) for end-to-end tests: started on free loopback ports in a
 * temp data dir, driven with the real kubectl, stopped and removed afterwards.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./containerd.js";
import { freePort } from "./tskubelet.js";

const run = promisify(execFile);

export interface TestCluster {
  dataDir: string;
  env: Record<string, string>;
  adminKubeconfig: string;
  server: string;
  caCert: string;
  caKey: string;
  /** Runs kubectl as admin (or with another kubeconfig); resolves to stdout, rejects with stderr. */
  kubectl(args: string[], opts?: { kubeconfig?: string; input?: string; timeoutMs?: number }): Promise<string>;
  /** A kubeconfig with a client certificate for system:node:<name>, issued with openssl from the cluster CA. */
  nodeKubeconfig(nodeName: string, opts?: { days?: number }): Promise<string>;
  pid(component: "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "etcd"): Promise<number>;
  stop(): Promise<void>;
}

export async function startCluster(opts: { autoApprove?: boolean; extraEnv?: Record<string, string> } = {}): Promise<TestCluster> {
  const root = repoRoot();
  const dataDir = await mkdtemp(join(tmpdir(), "tskubelet-e2e-cp-"));
  await rm(dataDir, { recursive: true, force: true });
  const ports = {
    KTP_APISERVER_PORT: String(await freePort()),
    KTP_ETCD_CLIENT_PORT: String(await freePort()),
    KTP_ETCD_PEER_PORT: String(await freePort()),
    KTP_KCM_PORT: String(await freePort()),
    KTP_SCHEDULER_PORT: String(await freePort()),
  };
  const env = { ...process.env, ...ports, ...opts.extraEnv, KTP_BIN: join(root, "test/cluster/bin/kube-test-plane") };
  const args = [join(root, "test/cluster/up.sh"), "--data-dir", dataDir, ...(opts.autoApprove === false ? ["--no-auto-approve"] : [])];
  try {
    await run("bash", args, { env, timeout: 240_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string };
    throw new Error(`test/cluster/up.sh failed:\n${e.stderr ?? String(err)}`);
  }
  const envText = await readFile(join(dataDir, "env"), "utf8");
  const vars: Record<string, string> = {};
  for (const m of envText.matchAll(/^export (\w+)=(.*)$/gm)) vars[m[1] ?? ""] = (m[2] ?? "").replace(/^'(.*)'$/, "$1");
  const admin = vars.KTP_ADMIN_KUBECONFIG ?? join(dataDir, "admin.kubeconfig");
  const kubectl: TestCluster["kubectl"] = async (kargs, o = {}) => {
    const child = run("kubectl", ["--kubeconfig", o.kubeconfig ?? admin, ...kargs], { timeout: o.timeoutMs ?? 60_000, maxBuffer: 16 << 20 });
    if (o.input !== undefined) {
      child.child.stdin?.end(o.input);
    }
    try {
      return (await child).stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      throw new Error(`kubectl ${kargs.join(" ")}: ${e.stderr ?? ""}${e.stdout ?? ""}`);
    }
  };
  const caCert = vars.KTP_CA_CERT ?? join(dataDir, "ca.crt");
  const caKey = vars.KTP_CA_KEY ?? join(dataDir, "ca.key");
  const server = vars.KTP_APISERVER_URL ?? "";
  const scratch: string[] = [];
  return {
    dataDir,
    env: vars,
    adminKubeconfig: admin,
    server,
    caCert,
    caKey,
    kubectl,
    async nodeKubeconfig(nodeName, o = {}) {
      const dir = await mkdtemp(join(tmpdir(), `tskubelet-e2e-node-`));
      scratch.push(dir);
      const key = join(dir, "node.key");
      const csr = join(dir, "node.csr");
      const crt = join(dir, "node.crt");
      await run("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-subj", `/O=system:nodes/CN=system:node:${nodeName}`, "-out", csr]);
      await run("openssl", ["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-CAserial", join(dir, "ca.srl"), "-days", String(o.days ?? 1), "-out", crt]);
      const kc = join(dir, "kubeconfig");
      const b64 = async (p: string): Promise<string> => (await readFile(p)).toString("base64");
      await writeFile(
        kc,
        [
          "apiVersion: v1",
          "kind: Config",
          "clusters:",
          "- name: test",
          "  cluster:",
          `    server: ${server}`,
          `    certificate-authority-data: ${await b64(caCert)}`,
          "users:",
          `- name: system:node:${nodeName}`,
          "  user:",
          `    client-certificate-data: ${await b64(crt)}`,
          `    client-key-data: ${await b64(key)}`,
          "contexts:",
          "- name: test",
          "  context:",
          "    cluster: test",
          `    user: system:node:${nodeName}`,
          "current-context: test",
          "",
        ].join("\n"),
        { mode: 0o600 },
      );
      return kc;
    },
    async pid(component) {
      return Number((await readFile(join(dataDir, "pids", `${component}.pid`), "utf8")).trim());
    },
    async stop() {
      await run("bash", [join(root, "test/cluster/down.sh"), "--data-dir", dataDir], { env, timeout: 120_000 }).catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
      for (const d of scratch) await rm(d, { recursive: true, force: true });
    },
  };
}
