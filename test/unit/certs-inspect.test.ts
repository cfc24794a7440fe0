/** Certificate parsing and formatting helpers behind `tskubelet certs`. */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatIp, keyMatchesCert, parseCertificate, parseCertificates, parsePrivateKey, readKubeconfig, shortHumanDuration, splitPem, verifyChain } from "../../src/certs/inspect.js";
import { certinfoJson, cfsslName, checkTable, kubeadmDate, opensslSerial, table } from "../../src/certs/format.js";
import { generateNodeKey, kubeconfigText, loadSigningCA, signLeaf, storeTimestamp } from "../../src/certs/issue.js";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";

x509.cryptoProvider.set(webcrypto);

async function selfSignedCA(cn: string): Promise<{ certPem: string; keyPem: string }> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: [{ CN: [cn] }],
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 10 * 86400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)],
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${der.toString("base64")}\n-----END PRIVATE KEY-----\n`;
  return { certPem: cert.toString("pem") + "\n", keyPem };
}

describe("certs helpers", () => {
  let ca: { certPem: string; keyPem: string };
  let other: { certPem: string; keyPem: string };
  let leafPem: string;
  let leafKey: string;
  let dir: string;

  before(async () => {
    ca = await selfSignedCA("unit-ca");
    other = await selfSignedCA("other-ca");
    const signing = await loadSigningCA(ca.certPem, ca.keyPem);
    const k = await generateNodeKey();
    leafKey = k.pem;
    const cert = await signLeaf(signing, k.keys.publicKey, { cn: "system:node:u1", orgs: ["system:nodes"], eku: "serverAuth", dns: ["u1"], ips: ["10.0.0.1", "2001:db8::1"], notBefore: new Date(Date.now() - 1000), notAfter: new Date(Date.now() + 86400_000) });
    leafPem = cert.toString("pem") + "\n";
    dir = await mkdtemp(join(tmpdir(), "tsk-certs-unit-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("parses a leaf: subject, issuer, SANs, usages, key ids, public key", () => {
    const i = parseCertificate(leafPem);
    assert.equal(i.version, 3);
    assert.equal(i.subject.text, "O = system:nodes, CN = system:node:u1");
    assert.equal(i.issuer.text, "CN = unit-ca");
    assert.deepEqual(i.sans, { dns: ["u1"], ip: ["10.0.0.1", "2001:db8::1"], email: [], uri: [] });
    assert.deepEqual(i.keyUsage, ["Digital Signature", "Key Encipherment"]);
    assert.deepEqual(i.extKeyUsage, ["TLS Web Server Authentication"]);
    assert.equal(i.isCA, false);
    assert.equal(i.selfSigned, false);
    assert.deepEqual(i.publicKey, { algorithm: "id-ecPublicKey", bits: 256, curve: "prime256v1", nistCurve: "P-256" });
    assert.equal(i.signatureAlgorithm, "ecdsa-with-SHA256");
    assert.equal(i.cfsslSigAlg, "ECDSAWithSHA256");
    assert.equal(i.authorityKeyId, parseCertificate(ca.certPem).subjectKeyId);
    assert.equal(parseCertificate(ca.certPem).pathLen, 0);
  });

  it("splits PEM bundles and rejects garbage with the file name", () => {
    assert.equal(splitPem(leafPem + leafKey + ca.certPem).length, 3);
    assert.equal(parseCertificates(leafPem + ca.certPem).length, 2);
    assert.throws(() => parseCertificates("hello", "x.pem"), /x\.pem: no PEM CERTIFICATE block found/);
    assert.throws(() => parseCertificates("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "y.pem"), /y\.pem: not a valid X\.509 certificate/);
  });

  it("matches keys to certificates and verifies chains", () => {
    const k = parsePrivateKey(leafKey);
    assert.ok(k);
    assert.equal(keyMatchesCert(k, leafPem), true);
    const ok = parsePrivateKey(other.keyPem);
    assert.ok(ok);
    assert.equal(keyMatchesCert(ok, leafPem), false);
    assert.equal(verifyChain([leafPem], [ca.certPem]), undefined);
    assert.equal(verifyChain([leafPem], [other.certPem, ca.certPem]), undefined);
    assert.match(verifyChain([leafPem], [other.certPem]) ?? "", /not signed by the CA \(issuer "CN=unit-ca"; CA bundle: "CN=other-ca"\)/);
  });

  it("reads kubeconfigs: embedded data, files relative to the kubeconfig, missing files", async () => {
    await writeFile(join(dir, "leaf.pem"), leafPem + leafKey);
    const kc = join(dir, "kc.yaml");
    await writeFile(kc, kubeconfigText({ server: "https://a:6443", caPem: ca.certPem, clientCertFile: "leaf.pem", clientKeyFile: "missing.key" }));
    const info = readKubeconfig(kc);
    assert.equal(info.server, "https://a:6443");
    assert.equal(info.context, "default-context");
    assert.equal(info.ca?.pem?.trim(), ca.certPem.trim());
    assert.equal(info.clientCert?.file, join(dir, "leaf.pem"));
    assert.equal(info.clientCert?.pem, leafPem + leafKey);
    assert.deepEqual(info.clientKey, { file: join(dir, "missing.key"), error: "file does not exist" });
  });

  it("formats like the tools operators know", () => {
    assert.equal(shortHumanDuration(59_000), "59s");
    assert.equal(shortHumanDuration(3599_000), "59m");
    assert.equal(shortHumanDuration(47 * 3600_000), "47h");
    assert.equal(shortHumanDuration(364 * 86400_000), "364d");
    assert.equal(shortHumanDuration(3 * 365 * 86400_000), "3y");
    assert.equal(shortHumanDuration(-5000), "<invalid>");
    assert.equal(kubeadmDate(new Date(Date.UTC(2027, 0, 2, 3, 4))), "Jan 02, 2027 03:04 UTC");
    assert.equal(formatIp(new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12])), "fd00::12");
    assert.equal(formatIp(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1])), "10.0.0.1");
    assert.equal(formatIp(new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1])), "2001:db8:1:0:1::1");
    assert.deepEqual(cfsslName([{ type: "O", value: "a" }, { type: "O", value: "b" }, { type: "CN", value: "c" }]), { common_name: "c", organization: "a,b", names: ["a", "b", "c"] });
    assert.deepEqual(opensslSerial({ ...parseCertificate(ca.certPem), serialHex: "1234" }), { inline: true, text: "4660 (0x1234)" });
    assert.equal(opensslSerial({ ...parseCertificate(ca.certPem), serialHex: "8000000000000000" }).inline, false);
    const j = certinfoJson(parseCertificate(leafPem));
    assert.deepEqual(j.sans, ["u1", "10.0.0.1", "2001:db8::1"]);
    assert.match(String(j.not_after), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(table(["A", "BB"], [["xxx", "y"]]), "A     BB\nxxx   y\n");
    assert.match(checkTable([]), /no certificates found/);
    assert.equal(storeTimestamp(Date.UTC(2026, 0, 2, 3, 4, 5)), "2026-01-02-03-04-05");
  });
});
