import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";
import { createKubeletMetrics } from "../../src/metrics/index.js";
import {
  BOOTSTRAP_USAGES,
  CLIENT_SIGNER,
  CLIENT_USAGES,
  SERVING_SIGNER,
  backoffDelayMs,
  createClientCertificates,
  createServingCertificates,
  watchServingFiles,
  rotationDeadline,
  satisfiesTemplate,
  testRotationFraction,
  type ClientCertificates,
} from "../../src/certs/index.js";
import { fakeCsrApi, issue, kubeconfigYaml, makeEcCA, until, type EcCA, type FakeCsrApi } from "../support/certs.js";

const DAY = 86_400_000;
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 15));

/** Moves the fake clock forward in steps, letting real I/O (keys, files) finish between them. */
async function drive(clock: FakeClock, totalMs: number, stepMs: number): Promise<void> {
  for (let t = 0; t < totalMs; t += stepMs) {
    await clock.advance(Math.min(stepMs, totalMs - t));
    await settle();
    // Wait until the code under test is parked on the clock again (its real I/O finished).
    await until(() => clock.pendingTimers() > 0, "the code under test to sleep on the clock", 2000).catch(() => undefined);
  }
}

describe("rotation policy", () => {
  it("puts the deadline at 70-90% of the lifetime from NotBefore", () => {
    const pair = { notBefore: 1_000_000, notAfter: 1_000_000 + 100 * DAY };
    assert.equal(rotationDeadline(pair, () => 0), 1_000_000 + 70 * DAY);
    assert.equal(rotationDeadline(pair, () => 0.5), 1_000_000 + 80 * DAY);
    assert.equal(rotationDeadline(pair, () => 0.999999), 1_000_000 + Math.floor((100 * DAY * (7 + 2 * 0.999999)) / 10));
    assert.equal(rotationDeadline(pair, () => 0.5, 0.1), 1_000_000 + 10 * DAY);
  });

  it("backs off 2, 4, 8, 16, 32 s (10% jitter), then every 32 s", () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffDelayMs(n, () => 0)), [2000, 4000, 8000, 16000, 32000, 32000, 32000, 32000]);
    assert.deepEqual([1, 2, 5].map((n) => backoffDelayMs(n, () => 1)), [2200, 4400, 35200]);
  });

  it("reads the test-only rotation fraction from TSKUBELET_TEST_ROTATION_FRACTION", () => {
    assert.equal(testRotationFraction({}), undefined);
    assert.equal(testRotationFraction({ TSKUBELET_TEST_ROTATION_FRACTION: "0.05" }), 0.05);
    assert.equal(testRotationFraction({ TSKUBELET_TEST_ROTATION_FRACTION: "2" }), undefined);
  });

  it("checks a certificate against its template: CN, orgs, DNS names, IPs; extra SANs are fine", async () => {
    const now = Date.UTC(2026, 0, 1);
    const ca = await makeEcCA(now);
    const { certPem } = await issue(ca, {
      cn: "system:node:n1",
      orgs: ["system:nodes"],
      notBefore: now,
      notAfter: now + DAY,
      sans: [
        { type: "dns", value: "n1" },
        { type: "ip", value: "10.0.0.1" },
        { type: "ip", value: "10.0.0.2" },
      ],
    });
    const c = new X509Certificate(certPem);
    assert.ok(satisfiesTemplate(c, { cn: "system:node:n1", orgs: ["system:nodes"], dnsNames: ["n1"], ips: ["10.0.0.1"] }));
    assert.ok(!satisfiesTemplate(c, { cn: "system:node:n2", orgs: ["system:nodes"] }));
    assert.ok(!satisfiesTemplate(c, { cn: "system:node:n1", orgs: ["system:masters"] }));
    assert.ok(!satisfiesTemplate(c, { cn: "system:node:n1", orgs: ["system:nodes"], ips: ["10.0.0.3"] }));
  });
});

describe("client certificate manager (fake apiserver, fake clock)", () => {
  let dir: string;
  let ca: EcCA;
  let n = 0;
  const running: { ctl: AbortController; done: Promise<void> }[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "certs-rot-"));
    ca = await makeEcCA(Date.UTC(2026, 0, 1));
  });
  after(async () => {
    for (const r of running) r.ctl.abort();
    await Promise.all(running.map((r) => r.done));
    await rm(dir, { recursive: true, force: true });
  });

  interface Setup {
    clock: FakeClock;
    api: FakeCsrApi;
    m: ClientCertificates;
    lines: string[];
    certDir: string;
    kubeconfig: string;
    metrics: ReturnType<typeof createKubeletMetrics>;
  }

  const setup = async (o: { rotate: boolean; bootstrap: boolean; kubeconfigCert?: { lifetimeMs: number; ageMs?: number }; random?: number; reuse?: Setup & { base: string } }): Promise<Setup & { base: string; stop: () => Promise<void> }> => {
    const clock = o.reuse?.clock ?? new FakeClock(Date.UTC(2026, 0, 1));
    const api = o.reuse?.api ?? fakeCsrApi(ca, () => clock.now());
    const base = o.reuse?.base ?? join(dir, `case-${n++}`);
    const certDir = join(base, "pki");
    const kubeconfig = join(base, "kubelet.conf");
    const boot = join(base, "bootstrap.conf");
    await import("node:fs/promises").then((fs) => fs.mkdir(base, { recursive: true }));
    if (o.bootstrap) await writeFile(boot, kubeconfigYaml({ server: "https://fake:6443", caPem: ca.certPem, token: "abcdef.0123456789abcdef" }));
    if (o.kubeconfigCert) {
      const nb = clock.now() - (o.kubeconfigCert.ageMs ?? 0);
      const pair = await issue(ca, { cn: "system:node:n1", orgs: ["system:nodes"], notBefore: nb, notAfter: nb + o.kubeconfigCert.lifetimeMs });
      await writeFile(kubeconfig, kubeconfigYaml({ server: "https://fake:6443", caPem: ca.certPem, ...pair }));
    }
    const { logger, lines } = memoryLogger(4);
    const metrics = createKubeletMetrics({ nodeName: "n1", processMetrics: false });
    const m = await createClientCertificates({
      kubeconfig,
      bootstrapKubeconfig: o.bootstrap ? boot : "",
      certDir,
      nodeName: "n1",
      rotate: o.rotate,
      clock,
      logger,
      metrics,
      createClient: () => Promise.resolve(api),
      random: () => o.random ?? 0.5,
      pollMs: 1000,
      recheckMs: 60_000,
    });
    const ctl = new AbortController();
    const done = m.run(ctl.signal);
    running.push({ ctl, done });
    const stop = async (): Promise<void> => {
      ctl.abort();
      await done;
    };
    return { clock, api, m, lines, certDir, kubeconfig, metrics, base, stop };
  };

  it("asks again under the same node-csr name after a restart (the key waits in kubelet-client.key.tmp)", async () => {
    const s1 = await setup({ rotate: true, bootstrap: true });
    await until(() => s1.api.csrs.size === 1, "the bootstrap CSR");
    const name = [...s1.api.csrs.keys()][0] ?? "";
    await s1.stop();
    const s2 = await setup({ rotate: true, bootstrap: true, reuse: s1 });
    await until(() => s2.api.posts.length === 2, "the second POST");
    assert.equal(s2.api.posts[1]?.name, name);
    assert.equal(s2.api.csrs.size, 1, "the existing CSR is reused");
    await s2.api.approve(name, DAY);
    await drive(s2.clock, 2000, 1000);
    await until(() => s2.m.current() !== undefined, "the certificate after the restart");
  });

  it("bootstraps when kubelet-client-current.pem is corrupt, saying why", async () => {
    const s1 = await setup({ rotate: true, bootstrap: true });
    s1.api.autoApproveLifetimeMs = DAY;
    await until(() => s1.m.current() !== undefined, "the first certificate");
    await s1.stop();
    const target = await readlink(join(s1.certDir, "kubelet-client-current.pem"));
    await writeFile(join(s1.certDir, target), "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
    const s2 = await setup({ rotate: true, bootstrap: true, reuse: s1 });
    await until(() => s2.m.current() !== undefined, "a new certificate");
    assert.ok(s2.lines.some((l) => l.includes("the kubeconfig cannot be used; bootstrapping") && l.includes("kubelet-client-current.pem")), s2.lines.join(""));
  });

  it("bootstraps: a node-csr-<hash> CSR, logs the exact kubectl command while pending, stores the certificate, writes the kubeconfig", async () => {
    const s = await setup({ rotate: true, bootstrap: true });
    await until(() => s.api.csrs.size === 1, "the bootstrap CSR");
    const [name, csr] = [...s.api.csrs.entries()][0] ?? [];
    assert.match(name ?? "", /^node-csr-/);
    assert.equal(csr?.spec.signerName, CLIENT_SIGNER);
    assert.deepEqual(csr?.spec.usages, BOOTSTRAP_USAGES);
    // Requests made while there is no certificate wait, then fail like an unreachable apiserver.
    const early = s.m.api.request({ method: "GET", path: "/api/v1/nodes/n1" }).catch((e: Error) => e);
    await drive(s.clock, 3000, 1000);
    assert.match(String(await early), /no client certificate yet/);
    assert.ok(s.lines.some((l) => l.includes(`kubectl certificate approve ${name ?? ""}`)), s.lines.join(""));
    assert.ok(s.lines.some((l) => l.includes(`is pending approval; to approve it run: kubectl certificate approve ${name ?? ""}`)));
    await s.api.approve(name ?? "", 100 * DAY);
    await drive(s.clock, 2000, 1000);
    await until(() => s.m.current() !== undefined, "the certificate to be installed");
    assert.match(await readlink(join(s.certDir, "kubelet-client-current.pem")), /^kubelet-client-\d{4}(-\d\d){5}\.pem$/);
    const kc = await readFile(s.kubeconfig, "utf8");
    assert.match(kc, /client-certificate: .*kubelet-client-current\.pem/);
    assert.match(kc, /server: https:\/\/fake:6443/);
    await assert.rejects(readFile(join(s.certDir, "kubelet-client.key.tmp")), /ENOENT/);
    const ttl = (await s.metrics.registry.getSingleMetricAsString("kubelet_certificate_manager_client_ttl_seconds")).trim().split("\n").pop();
    assert.match(ttl ?? "", / 86399\d{2}$/);
  });

  it("retries a denied bootstrap CSR with a new key (a new name) after backoff", async () => {
    const s = await setup({ rotate: false, bootstrap: true });
    await until(() => s.api.csrs.size === 1, "the bootstrap CSR");
    const first = [...s.api.csrs.keys()][0] ?? "";
    s.api.deny(first, "NotOnOurWatch");
    await drive(s.clock, 1000, 1000);
    await until(() => s.lines.some((l) => l.includes("was denied: NotOnOurWatch")), "the denial to be logged");
    await drive(s.clock, 3000, 1000);
    await until(() => s.api.csrs.size === 2, "a second CSR");
    const second = [...s.api.csrs.keys()][1] ?? "";
    assert.notEqual(second, first);
    assert.match(second, /^node-csr-/);
    assert.equal((await s.metrics.registry.getSingleMetricAsString("kubelet_certificate_manager_client_expiration_renew_errors")).trim().split("\n").pop(), "kubelet_certificate_manager_client_expiration_renew_errors 1");
  });

  it("rotates at the deadline (80% with random 0.5) with a new key and generateName csr-, and reloads the API client", async () => {
    const s = await setup({ rotate: true, bootstrap: false, kubeconfigCert: { lifetimeMs: 1000_000 } });
    s.api.autoApproveLifetimeMs = 1000_000;
    await settle();
    await drive(s.clock, 799_000, 100_000);
    assert.equal(s.api.posts.length, 0, "nothing before the deadline");
    await drive(s.clock, 2000, 1000);
    await until(() => s.api.reloads === 1, "the API client to reload");
    assert.equal(s.api.posts[0]?.generateName, "csr-");
    const csr = s.api.csrs.get(s.api.posts[0]?.name ?? "");
    assert.deepEqual(csr?.spec.usages, CLIENT_USAGES);
    const first = s.m.current();
    assert.equal(first?.notBefore, Date.UTC(2026, 0, 1) + 800_000);
    // The next one rotates at 80% of its own life, with another key.
    await drive(s.clock, 800_000, 100_000);
    await drive(s.clock, 2000, 1000);
    await until(() => s.api.reloads === 2, "the second rotation");
    assert.notEqual(s.m.current()?.cert.publicKey.export({ type: "spki", format: "der" }).toString("hex"), first?.cert.publicKey.export({ type: "spki", format: "der" }).toString("hex"));
    assert.match(await readFile(s.kubeconfig, "utf8"), /kubelet-client-current\.pem/);
  });

  it("survives an apiserver outage during rotation: backoff 2, 4, 8, 16, 32, 32 s, then rotates once it is back", async () => {
    const s = await setup({ rotate: true, bootstrap: false, kubeconfigCert: { lifetimeMs: 1000_000 }, random: 0 });
    s.api.autoApproveLifetimeMs = 1000_000;
    s.api.down = true;
    await settle();
    await drive(s.clock, 700_000, 100_000);
    await drive(s.clock, 100_000, 1000);
    const gaps = s.api.failed.slice(0, 7).map((t, i, a) => (i === 0 ? 0 : t - (a[i - 1] ?? 0)));
    assert.deepEqual(gaps, [0, 2000, 4000, 8000, 16000, 32000, 32000]);
    assert.ok(s.lines.some((l) => l.includes("client certificate rotation failed; retrying") && l.includes("ECONNREFUSED")));
    s.api.down = false;
    await drive(s.clock, 33_000, 1000);
    await until(() => s.api.reloads === 1, "rotation after the outage");
    const errs = Number((await s.metrics.registry.getSingleMetricAsString("kubelet_certificate_manager_client_expiration_renew_errors")).trim().split(" ").pop());
    assert.ok(errs >= 7, `renew errors ${errs}`);
  });

  it("bootstraps again by itself when the certificate has expired and a bootstrap kubeconfig exists", async () => {
    const s = await setup({ rotate: false, bootstrap: true, kubeconfigCert: { lifetimeMs: 60_000 } });
    s.api.autoApproveLifetimeMs = 3_600_000;
    await settle();
    assert.equal(s.api.posts.length, 0);
    await drive(s.clock, 62_000, 1000);
    await until(() => s.api.posts.length === 1 && s.m.current()?.notAfter === Date.UTC(2026, 0, 1) + 60_000 + 3_600_000 + (s.api.posts[0]?.atMs ?? 0) - Date.UTC(2026, 0, 1) - 60_000, "a new bootstrap certificate");
    assert.match(s.api.posts[0]?.name ?? "", /^node-csr-/);
    assert.ok(s.lines.some((l) => l.includes("the client certificate has expired; bootstrapping a new one")));
    assert.match(await readFile(s.kubeconfig, "utf8"), /kubelet-client-current\.pem/);
  });

  it("without a bootstrap kubeconfig, an expired certificate is reported with what to do", async () => {
    const s = await setup({ rotate: true, bootstrap: false, kubeconfigCert: { lifetimeMs: 1000, ageMs: 5000 } });
    await settle();
    assert.ok(s.lines.some((l) => l.includes("there is no --bootstrap-kubeconfig") && l.includes("tskubelet certs issue")), s.lines.join(""));
  });

  it("warns (log and Event) when the certificate is within 30 days of expiry and rotation is off", async () => {
    const s = await setup({ rotate: false, bootstrap: false, kubeconfigCert: { lifetimeMs: 20 * DAY } });
    await settle();
    await until(() => s.api.events.length === 1, "the expiry event");
    const ev = s.api.events[0] as { reason: string; type: string; involvedObject: { kind: string; name: string }; message: string };
    assert.equal(ev.reason, "CertificateExpiring");
    assert.equal(ev.type, "Warning");
    assert.deepEqual([ev.involvedObject.kind, ev.involvedObject.name], ["Node", "n1"]);
    assert.match(ev.message, /^the client certificate \(the client certificate embedded in .*kubelet\.conf\) expires at 2026-01-21T00:00:00\.000Z \(in 20 days\) and cannot rotate: rotateCertificates is off$/);
    assert.ok(s.lines.some((l) => l.startsWith("W") && l.includes("cannot rotate")));
  });
});

describe("serving certificate manager", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "certs-srv-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("waits for an IP, sends a kubelet-serving CSR with the node's addresses, serves the issued certificate, rotates it", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const ca = await makeEcCA(clock.now());
    const api = fakeCsrApi(ca, () => clock.now());
    const { logger, lines } = memoryLogger(4);
    const metrics = createKubeletMetrics({ nodeName: "n1", processMetrics: false });
    let addresses: { type: string; address: string }[] = [{ type: "Hostname", address: "n1" }];
    const served: string[] = [];
    const m = createServingCertificates({
      api,
      certDir: dir,
      nodeName: "n1",
      clock,
      logger,
      metrics,
      addresses: () => addresses,
      tls: () => ({ setCertificate: (p) => served.push(String(p.cert)) }),
      random: () => 0.5,
      pollMs: 1000,
      checkMs: 1000,
    });
    const ctl = new AbortController();
    const done = m.run(ctl.signal);
    await drive(clock, 5000, 1000);
    assert.equal(api.csrs.size, 0, "no CSR before the node has an IP");
    addresses = [{ type: "InternalIP", address: "10.1.2.3" }, { type: "Hostname", address: "n1" }];
    await drive(clock, 2000, 1000);
    await until(() => api.csrs.size === 1, "the serving CSR");
    const [name, csr] = [...api.csrs.entries()][0] ?? [];
    assert.equal(csr?.spec.signerName, SERVING_SIGNER);
    assert.deepEqual(csr?.spec.usages, ["digital signature", "server auth"]);
    assert.ok(lines.some((l) => l.includes(`kubectl certificate approve ${name ?? ""}`)));
    await api.approve(name ?? "", 1000_000);
    await drive(clock, 2000, 1000);
    await until(() => served.length === 1, "the certificate to be served");
    const cert = new X509Certificate(served[0] ?? "");
    assert.equal(cert.subjectAltName, "DNS:n1, IP Address:10.1.2.3");
    assert.match(cert.subject, /CN=system:node:n1/);
    // A new address makes the certificate unfit: a new CSR at once.
    api.autoApproveLifetimeMs = 1000_000;
    addresses = [...addresses, { type: "ExternalIP", address: "192.0.2.7" }];
    await drive(clock, 3000, 1000);
    await until(() => served.length === 2, "a certificate with the new address");
    assert.equal(new X509Certificate(served[1] ?? "").subjectAltName, "DNS:n1, IP Address:10.1.2.3, IP Address:192.0.2.7");
    const hist = await metrics.registry.getSingleMetricAsString("kubelet_certificate_manager_server_rotation_seconds");
    assert.match(hist, /kubelet_certificate_manager_server_rotation_seconds_count 1/);
    assert.match(hist, /le="60"/);
    ctl.abort();
    await done;
  });

  it("reloads tlsCertFile/tlsPrivateKeyFile when they change; a corrupt or mismatched pair is reported and the old one kept", async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const ca = await makeEcCA(clock.now());
    const a = await issue(ca, { cn: "a", notBefore: clock.now(), notAfter: clock.now() + 400 * DAY });
    const b = await issue(ca, { cn: "b", notBefore: clock.now(), notAfter: clock.now() + 400 * DAY });
    const certFile = join(dir, "tls.crt");
    const keyFile = join(dir, "tls.key");
    await writeFile(certFile, a.certPem);
    await writeFile(keyFile, a.keyPem);
    const { logger, lines } = memoryLogger(4);
    const served: string[] = [];
    const w = watchServingFiles({ certFile, keyFile, tls: () => ({ setCertificate: (p) => served.push(String(p.cert)) }), clock, logger, nodeName: "n1", intervalMs: 10_000 });
    const ctl = new AbortController();
    const done = w.run(ctl.signal);
    await drive(clock, 10_000, 10_000);
    assert.equal(served.length, 0, "the files the server started with are not pushed again");
    await writeFile(certFile, b.certPem);
    await drive(clock, 10_000, 10_000);
    assert.equal(served.length, 0, "a certificate without its key is not served");
    assert.ok(lines.some((l) => l.includes("keeping the previous certificate") && l.includes("does not match")), lines.join(""));
    await writeFile(keyFile, b.keyPem);
    await drive(clock, 10_000, 10_000);
    assert.equal(served.length, 1);
    assert.match(new X509Certificate(served[0] ?? "").subject, /CN=b/);
    await writeFile(certFile, "garbage");
    await drive(clock, 10_000, 10_000);
    assert.equal(served.length, 1);
    assert.ok(lines.some((l) => l.includes("no PEM")));
    ctl.abort();
    await done;
  });
});
