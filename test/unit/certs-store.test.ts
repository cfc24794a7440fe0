import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { FakeClock } from "../../src/util/clock.js";
import {
  BOOTSTRAP_USAGES,
  CertError,
  CertStore,
  bootstrapCsrName,
  clientSubject,
  createRequest,
  generateKey,
  importKey,
  inspectKubeconfig,
  parsePair,
  servingSans,
  stamp,
  writeClientKubeconfig,
} from "../../src/certs/index.js";
import { issue, kubeconfigYaml, makeEcCA, type EcCA } from "../support/certs.js";

describe("certificate store", () => {
  let dir: string;
  let ca: EcCA;
  const clock = new FakeClock(Date.UTC(2026, 10, 28, 15, 4, 5));
  const t0 = clock.now();
  let a: { certPem: string; keyPem: string };
  let b: { certPem: string; keyPem: string };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "certs-store-"));
    ca = await makeEcCA(t0);
    a = await issue(ca, { cn: "system:node:n1", orgs: ["system:nodes"], notBefore: t0, notAfter: t0 + 3_600_000 });
    b = await issue(ca, { cn: "system:node:n1", orgs: ["system:nodes"], notBefore: t0, notAfter: t0 + 7_200_000 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("names pair files kubelet-client-YYYY-MM-DD-HH-MM-SS.pem", () => {
    assert.equal(stamp(Date.UTC(2026, 0, 2, 3, 4, 5)), "2026-01-02-03-04-05");
  });

  it("writes the pair 0600 and points -current.pem at it; a second update swaps the link", async () => {
    const d = join(dir, "swap");
    const store = new CertStore({ dir: d, prefix: "kubelet-client", clock });
    assert.equal(await store.load(), undefined);
    const p1 = await store.update(a.certPem, a.keyPem);
    assert.equal(p1.notAfter, t0 + 3_600_000);
    assert.equal(await readlink(store.currentPath), "kubelet-client-2026-11-28-15-04-05.pem");
    const st = await stat(join(d, "kubelet-client-2026-11-28-15-04-05.pem"));
    assert.equal(st.mode & 0o777, 0o600);
    const text = await readFile(store.currentPath, "utf8");
    assert.ok(text.indexOf("BEGIN CERTIFICATE") < text.indexOf("PRIVATE KEY"), "certificate first, then the key");
    await clock.advance(1000);
    await store.update(b.certPem, b.keyPem);
    assert.equal(await readlink(store.currentPath), "kubelet-client-2026-11-28-15-04-06.pem");
    assert.equal((await store.load())?.notAfter, t0 + 7_200_000);
    assert.equal((await lstat(store.updatedPath).catch(() => undefined)), undefined);
  });

  for (const step of ["pem-written", "updated-linked"] as const) {
    it(`a crash after "${step}" leaves a consistent -current.pem (old pair before recovery, a complete one after)`, async () => {
      const d = join(dir, `crash-${step}`);
      const ok = new CertStore({ dir: d, prefix: "kubelet-client", clock });
      await ok.update(a.certPem, a.keyPem);
      await clock.advance(1000);
      const crashing = new CertStore({
        dir: d,
        prefix: "kubelet-client",
        clock,
        afterStep: (s) => {
          if (s === step) throw new Error("kill -9");
        },
      });
      await assert.rejects(crashing.update(b.certPem, b.keyPem), /kill -9/);
      // The next start: -current.pem still loads (the old pair) ...
      const next = new CertStore({ dir: d, prefix: "kubelet-client", clock });
      assert.equal((await next.load())?.notAfter, t0 + 3_600_000);
      // ... and recovery finishes the interrupted swap when it got as far as the -updated link.
      const r = await next.recover();
      assert.equal(r, step === "updated-linked" ? "recovered" : "none");
      const loaded = await next.load();
      assert.equal(loaded?.notAfter, step === "updated-linked" ? t0 + 7_200_000 : t0 + 3_600_000);
      const files = await readdir(d);
      assert.ok(!files.some((f) => f.includes(".tmp-")), `no temporary files left: ${files.join(" ")}`);
    });
  }

  it("discards a leftover -updated link that points at nothing usable", async () => {
    const d = join(dir, "broken");
    const store = new CertStore({ dir: d, prefix: "kubelet-client", clock });
    await store.update(a.certPem, a.keyPem);
    await writeFile(join(d, "half.pem"), "-----BEGIN CERTIFICATE-----\nAAAA");
    await symlink("half.pem", store.updatedPath);
    assert.equal(await store.recover(), "discarded");
    assert.equal((await store.load())?.notAfter, t0 + 3_600_000);
  });

  it("falls back to the explicit files, then <prefix>.crt/.key", async () => {
    const d = join(dir, "fallback");
    const store = new CertStore({ dir: d, prefix: "kubelet-server", clock, certFile: join(d, "tls.crt"), keyFile: join(d, "tls.key") });
    await store.update(a.certPem, a.keyPem).then(() => rm(store.currentPath));
    await writeFile(join(d, "kubelet-server.crt"), b.certPem);
    await writeFile(join(d, "kubelet-server.key"), b.keyPem);
    assert.equal((await store.load())?.notAfter, t0 + 7_200_000);
    await writeFile(join(d, "tls.crt"), a.certPem);
    await writeFile(join(d, "tls.key"), a.keyPem);
    assert.equal((await store.load())?.notAfter, t0 + 3_600_000);
  });

  it("says clearly when a certificate file is corrupt or the key does not match, without printing the key", async () => {
    assert.throws(() => parsePair("garbage", a.keyPem, "/pki/x.pem"), (e: Error) => e instanceof CertError && /\/pki\/x\.pem: no PEM "CERTIFICATE" block/.test(e.message));
    const broken = a.certPem.replace(/\n[A-Za-z0-9+/]{20}/, "\nAAAAAAAAAAAAAAAAAAAA");
    assert.throws(() => parsePair(broken, a.keyPem, "/pki/y.pem"), /\/pki\/y\.pem: the (certificate cannot be parsed|private key does not match)/);
    assert.throws(() => parsePair(a.certPem, b.keyPem, "/pki/z.pem"), (e: Error) => /does not match the certificate/.test(e.message) && !e.message.includes("PRIVATE KEY"));
    const d = join(dir, "corrupt");
    const store = new CertStore({ dir: d, prefix: "kubelet-client", clock });
    await store.update(a.certPem, a.keyPem);
    const target = await store.currentTarget();
    await writeFile(target ?? "", "not a certificate");
    await assert.rejects(store.load(), /kubelet-client-current\.pem: no PEM "CERTIFICATE" block/);
  });
});

describe("CSRs and kubeconfigs", () => {
  let dir: string;
  let ca: EcCA;
  const now = Date.UTC(2026, 5, 1);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "certs-kc-"));
    ca = await makeEcCA(now);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("names the bootstrap CSR node-csr-<hash> from the key, subject and usages, the same after a restart", async () => {
    const key = await generateKey();
    assert.match(key.keyPem, /^-----BEGIN EC PRIVATE KEY-----/);
    const again = await importKey(key.keyPem);
    const s = clientSubject("n1");
    const n1 = bootstrapCsrName(key.spkiDer, s, BOOTSTRAP_USAGES);
    assert.match(n1, /^node-csr-[A-Za-z0-9_-]{43}$/);
    assert.equal(bootstrapCsrName(again.spkiDer, s, BOOTSTRAP_USAGES), n1);
    assert.notEqual(bootstrapCsrName((await generateKey()).spkiDer, s, BOOTSTRAP_USAGES), n1);
    assert.notEqual(bootstrapCsrName(key.spkiDer, clientSubject("n2"), BOOTSTRAP_USAGES), n1);
    const pem = await createRequest(key, s);
    assert.match(pem, /^-----BEGIN CERTIFICATE REQUEST-----/);
  });

  it("builds serving SANs from status.addresses, sorted and de-duplicated", () => {
    assert.deepEqual(
      servingSans([
        { type: "InternalIP", address: "10.0.0.2" },
        { type: "Hostname", address: "node-b" },
        { type: "ExternalIP", address: "1.2.3.4" },
        { type: "InternalIP", address: "10.0.0.2" },
        { type: "Hostname", address: "10.0.0.9" },
        { type: "InternalDNS", address: "a.internal" },
      ]),
      { dnsNames: ["a.internal", "node-b"], ips: ["1.2.3.4", "10.0.0.2", "10.0.0.9"] },
    );
  });

  it("tells usable, expired, missing-file and missing kubeconfigs apart", async () => {
    const good = await issue(ca, { cn: "system:node:n1", notBefore: now - 1000, notAfter: now + 3_600_000 });
    const old = await issue(ca, { cn: "system:node:n1", notBefore: now - 7_200_000, notAfter: now - 1000 });
    const kc = (name: string, text: string): Promise<string> => writeFile(join(dir, name), text).then(() => join(dir, name));
    const usable = await inspectKubeconfig(await kc("good", kubeconfigYaml({ server: "https://s", caPem: ca.certPem, ...good })), dir, now);
    assert.equal(usable.state, "usable");
    const expired = await inspectKubeconfig(await kc("old", kubeconfigYaml({ server: "https://s", caPem: ca.certPem, ...old })), dir, now);
    assert.equal(expired.state, "expired");
    assert.match(expired.problem ?? "", /expired at /);
    const missingRef = await kc("ref", "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://s'}\nusers:\n- name: u\n  user: {client-certificate: /nope/client.pem, client-key: /nope/client.pem}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n");
    const st = await inspectKubeconfig(missingRef, dir, now);
    assert.equal(st.state, "invalid");
    assert.match(st.problem ?? "", /points client-certificate at \/nope\/client\.pem, which cannot be read/);
    assert.equal((await inspectKubeconfig(join(dir, "absent"), dir, now)).state, "missing");
    assert.equal((await inspectKubeconfig(await kc("token", kubeconfigYaml({ server: "https://s", caPem: ca.certPem, token: "abc.def" })), dir, now)).state, "token");
  });

  it("writes the kubeconfig as upstream: default-cluster/default-auth/default-context, cert and key at kubelet-client-current.pem", async () => {
    const boot = join(dir, "bootstrap-kubeconfig");
    await writeFile(boot, kubeconfigYaml({ server: "https://10.0.0.1:6443", caPem: ca.certPem, token: "abcdef.0123456789abcdef" }));
    const target = join(dir, "kubelet.conf");
    await writeClientKubeconfig(target, boot, join(dir, "pki"));
    assert.equal((await stat(target)).mode & 0o777, 0o600);
    const doc = parseYaml(await readFile(target, "utf8")) as Record<string, unknown>;
    const pem = join(dir, "pki", "kubelet-client-current.pem");
    assert.deepEqual(doc.users, [{ name: "default-auth", user: { "client-certificate": pem, "client-key": pem } }]);
    assert.deepEqual(doc.contexts, [{ name: "default-context", context: { cluster: "default-cluster", user: "default-auth", namespace: "default" } }]);
    assert.equal(doc["current-context"], "default-context");
    const clusters = doc.clusters as { name: string; cluster: Record<string, unknown> }[];
    assert.equal(clusters[0]?.name, "default-cluster");
    assert.equal(clusters[0]?.cluster.server, "https://10.0.0.1:6443");
    assert.equal(clusters[0]?.cluster["certificate-authority-data"], Buffer.from(ca.certPem).toString("base64"));
    const st = await inspectKubeconfig(target, join(dir, "pki"), now);
    assert.equal(st.usesStore, true);
  });
});
