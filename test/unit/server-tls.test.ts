import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureSelfSignedCertKey, generateSelfSignedCertKey, loadServingTLS, writeFileAtomic } from "../../src/server/tls.js";
import { FakeClock } from "../../src/util/clock.js";
import { ConfigError } from "../../src/util/errors.js";
import { memoryLogger } from "../../src/util/log.js";

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

describe("the self-signed serving certificate (upstream's fallback)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tskubelet-tls-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is a leaf followed by its CA, named <host>@<ts> and <host>-ca@<ts>, serverAuth, valid from now-1h for a year", async () => {
    const now = Date.UTC(2026, 4, 6, 7, 8, 9);
    const ts = now / 1000;
    const { certPem, keyPem } = await generateSelfSignedCertKey("node-a", now);
    const [leafPem, caPem, ...rest] = splitPem(certPem);
    assert.ok(leafPem && caPem);
    assert.equal(rest.length, 0);
    const leaf = new X509Certificate(leafPem);
    const ca = new X509Certificate(caPem);
    assert.equal(leaf.subject, `CN=node-a@${ts}`);
    assert.equal(leaf.issuer, `CN=node-a-ca@${ts}`);
    assert.equal(ca.subject, `CN=node-a-ca@${ts}`);
    assert.equal(ca.ca, true);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkIssued(ca));
    assert.ok(leaf.verify(ca.publicKey));
    assert.equal(leaf.subjectAltName, "DNS:node-a");
    assert.deepEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
    assert.equal(new Date(leaf.validFrom).getTime(), now - 3600_000);
    assert.equal(new Date(leaf.validTo).getTime(), now + 365 * 86400_000);
    assert.match(keyPem, /^-----BEGIN RSA PRIVATE KEY-----\n/);
    const key = createPrivateKey(keyPem);
    assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    assert.ok(leaf.checkPrivateKey(key));
  });
  it("puts an IP hostname in an IP SAN", async () => {
    const { certPem } = await generateSelfSignedCertKey("10.1.2.3", Date.now());
    assert.equal(new X509Certificate(splitPem(certPem)[0] ?? "").subjectAltName, "IP Address:10.1.2.3");
  });
  it("is written 0600 when unreadable, kept when readable", async () => {
    const certFile = join(dir, "pki", "kubelet.crt");
    const keyFile = join(dir, "pki", "kubelet.key");
    assert.equal(await ensureSelfSignedCertKey({ certFile, keyFile, hostname: "h", nowMs: Date.now() }), true);
    assert.equal((await stat(certFile)).mode & 0o777, 0o600);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const first = await readFile(certFile, "utf8");
    assert.equal(await ensureSelfSignedCertKey({ certFile, keyFile, hostname: "h", nowMs: Date.now() }), false);
    assert.equal(await readFile(certFile, "utf8"), first);
    await unlink(keyFile);
    assert.equal(await ensureSelfSignedCertKey({ certFile, keyFile, hostname: "h", nowMs: Date.now() }), true);
    assert.notEqual(await readFile(certFile, "utf8"), first);
  });
  it("writes atomically: no temporary files left behind", async () => {
    const p = join(dir, "atomic.txt");
    await writeFileAtomic(p, "one");
    await writeFileAtomic(p, "two");
    assert.equal(await readFile(p, "utf8"), "two");
    const { readdir } = await import("node:fs/promises");
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith("atomic")), ["atomic.txt"]);
  });
  it("loads given files, refuses a mismatched pair naming the files, and swaps certificates", async () => {
    const { logger } = memoryLogger();
    const a = await generateSelfSignedCertKey("a", Date.now());
    const b = await generateSelfSignedCertKey("b", Date.now());
    await writeFile(join(dir, "a.crt"), a.certPem);
    await writeFile(join(dir, "b.key"), b.keyPem);
    await writeFile(join(dir, "a.key"), a.keyPem);
    const base = { certDir: dir, hostname: "x", clientCAFile: "", clock: new FakeClock(), logger };
    await assert.rejects(loadServingTLS({ ...base, tlsCertFile: join(dir, "a.crt"), tlsPrivateKeyFile: join(dir, "b.key") }), (err: unknown) => err instanceof ConfigError && err.message.includes("a.crt"));
    await assert.rejects(loadServingTLS({ ...base, tlsCertFile: join(dir, "a.crt"), tlsPrivateKeyFile: join(dir, "b.key"), clientCAFile: join(dir, "nope.pem") }), ConfigError);
    const tls = await loadServingTLS({ ...base, tlsCertFile: join(dir, "a.crt"), tlsPrivateKeyFile: join(dir, "a.key") });
    assert.equal(tls.requestsClientCert, false);
    const pushed: unknown[] = [];
    tls.attach({ setSecureContext: (o) => pushed.push(o) });
    assert.throws(() => tls.setCertificate({ cert: a.certPem, key: b.keyPem }), ConfigError);
    tls.setCertificate({ cert: b.certPem, key: b.keyPem });
    assert.equal(pushed.length, 1);
    assert.equal(tls.serverOptions().cert, b.certPem);
  });
});
