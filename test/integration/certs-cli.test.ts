/**
 * `tskubelet certs` as a command: `show` compared field by field with `openssl x509` and
 * `cfssl-certinfo` on the same files, `check` on cert dirs and kubeconfigs with every kind of
 * breakage and on a live TLS endpoint, and `issue` verified with `openssl verify`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse as parseYaml } from "yaml";
import { repoRoot } from "../support/containerd.js";
import { freePort } from "../support/tskubelet.js";
import { generateNodeKey, loadSigningCA, signLeaf } from "../../src/certs/issue.js";

const run = promisify(execFile);
const MAIN = join(repoRoot(), "dist/src/cli/main.js");

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function tsk(args: string[], input?: string): Promise<CliResult> {
  const p = run(process.execPath, [MAIN, ...args], { maxBuffer: 16 << 20 });
  if (input !== undefined) p.child.stdin?.end(input);
  try {
    const r = await p;
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

function openssl(...args: string[]): string {
  return execFileSync("openssl", args, { encoding: "utf8" });
}

let dir: string;

/** Makes a CA and leaves with openssl, the way operators do. */
function makeFixtures(d: string): void {
  const ext = join(d, "leaf.ext");
  execFileSync("sh", ["-c", `cat > ${ext} <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=DNS:node-a,DNS:node-a.example.com,IP:10.1.2.3,IP:192.168.7.9
EOF`]);
  // RSA CA (PKCS#8 key), with a PKCS#1 copy
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(d, "ca-rsa.key"), "-out", join(d, "ca-rsa.crt"), "-days", "3650", "-subj", "/C=DE/O=Example Org/OU=Platform/CN=example-ca");
  openssl("rsa", "-in", join(d, "ca-rsa.key"), "-traditional", "-out", join(d, "ca-rsa.pkcs1.key"));
  // EC CA (SEC1 key)
  openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", join(d, "ca-ec.key"));
  openssl("req", "-x509", "-new", "-key", join(d, "ca-ec.key"), "-out", join(d, "ca-ec.crt"), "-days", "3650", "-subj", "/O=Example/CN=example-ec-ca");
  // RSA leaf signed by the RSA CA
  openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", join(d, "leaf-rsa.key"), "-out", join(d, "leaf-rsa.csr"), "-subj", "/O=system:nodes/CN=system:node:node-a");
  openssl("x509", "-req", "-in", join(d, "leaf-rsa.csr"), "-CA", join(d, "ca-rsa.crt"), "-CAkey", join(d, "ca-rsa.key"), "-CAcreateserial", "-CAserial", join(d, "ca.srl"), "-days", "30", "-extfile", ext, "-out", join(d, "leaf-rsa.crt"));
  // EC leaf signed by the EC CA, IPv6 SAN too, small serial
  openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1", "-nodes", "-keyout", join(d, "leaf-ec.key"), "-out", join(d, "leaf-ec.csr"), "-subj", "/C=US/ST=CA/L=SF/O=system:nodes/CN=system:node:node-b");
  openssl("x509", "-req", "-in", join(d, "leaf-ec.csr"), "-CA", join(d, "ca-ec.crt"), "-CAkey", join(d, "ca-ec.key"), "-set_serial", "4660", "-days", "400", "-extfile", ext, "-out", join(d, "leaf-ec.crt"));
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(d, "v6.key"), "-out", join(d, "v6.crt"), "-days", "5", "-subj", "/CN=v6", "-addext", "subjectAltName=DNS:v6.local,IP:fd00::12,IP:::1,email:ops@example.com,URI:spiffe://cluster/ns/x");
}

function sortedJson(text: string): unknown {
  return JSON.parse(text) as unknown;
}

/** Our text lines, minus tskubelet's footer, must appear in order within openssl's -text output. */
function assertSubsequence(ours: string, theirs: string, file: string): void {
  const want = ours.split("\n").filter((l) => l.trim() !== "" && !/SHA256 Fingerprint|Expires in/.test(l));
  const have = theirs.split("\n").map((l) => l.trimEnd());
  let i = 0;
  for (const line of want) {
    const at = have.indexOf(line.trimEnd(), i);
    assert.ok(at >= 0, `${file}: line ${JSON.stringify(line)} not found (in order) in openssl -text output:\n${theirs}`);
    i = at + 1;
  }
}

describe("tskubelet certs show vs openssl and cfssl-certinfo", () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tsk-certs-cli-"));
    makeFixtures(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const f of ["ca-rsa.crt", "ca-ec.crt", "leaf-rsa.crt", "leaf-ec.crt", "v6.crt"]) {
    it(`${f}: -o json equals cfssl-certinfo -cert, field by field`, async () => {
      const ours = await tsk(["certs", "show", join(dir, f), "-o", "json"]);
      assert.equal(ours.code, 0, ours.stderr);
      const theirs = execFileSync("cfssl-certinfo", ["-cert", join(dir, f)], { encoding: "utf8" });
      const a = sortedJson(ours.stdout) as Record<string, unknown>;
      const b = sortedJson(theirs) as Record<string, unknown>;
      for (const k of Object.keys(b)) assert.deepEqual(a[k], b[k], `${f}: field ${k}`);
      assert.deepEqual(Object.keys(a), Object.keys(b), `${f}: same fields in the same order`);
    });

    it(`${f}: text matches openssl x509 -noout -text, -serial, -dates, -subject, -issuer, -ext subjectAltName`, async () => {
      const ours = await tsk(["certs", "show", join(dir, f)]);
      assert.equal(ours.code, 0, ours.stderr);
      const text = openssl("x509", "-in", join(dir, f), "-noout", "-text");
      // openssl 3.0 prints IPv6 SANs uncompressed; compare those separately below.
      assertSubsequence(ours.stdout.split("\n").filter((l) => !/IP Address:[0-9a-f]*:/.test(l)).join("\n"), text, f);
      const serial = openssl("x509", "-in", join(dir, f), "-noout", "-serial").trim().replace(/^serial=/, "");
      const json = JSON.parse((await tsk(["certs", "show", join(dir, f), "-o", "json"])).stdout) as { serial_number: string; not_before: string; not_after: string };
      assert.equal(BigInt(`0x${serial}`).toString(10), json.serial_number);
      const dates = openssl("x509", "-in", join(dir, f), "-noout", "-dates");
      const nb = /notBefore=(.*)/.exec(dates)?.[1] ?? "";
      const na = /notAfter=(.*)/.exec(dates)?.[1] ?? "";
      assert.match(ours.stdout, new RegExp(`Not Before: ${nb}\\n`));
      assert.match(ours.stdout, new RegExp(`Not After : ${na}\\n`));
      assert.equal(new Date(nb).toISOString().replace(".000", ""), json.not_before);
      assert.equal(new Date(na).toISOString().replace(".000", ""), json.not_after);
      const subject = openssl("x509", "-in", join(dir, f), "-noout", "-subject").trim().replace(/^subject=/, "");
      const issuer = openssl("x509", "-in", join(dir, f), "-noout", "-issuer").trim().replace(/^issuer=/, "");
      assert.ok(ours.stdout.includes(`        Subject: ${subject}\n`), `subject ${subject}`);
      assert.ok(ours.stdout.includes(`        Issuer: ${issuer}\n`), `issuer ${issuer}`);
      const sanOut = (() => {
        try {
          return openssl("x509", "-in", join(dir, f), "-noout", "-ext", "subjectAltName");
        } catch {
          return "";
        }
      })();
      const sanLine = sanOut.split("\n")[1]?.trim() ?? "";
      const ourSan = /X509v3 Subject Alternative Name: \n\s+(.*)\n/.exec(ours.stdout)?.[1] ?? "";
      const norm = (s: string): string[] =>
        s
          .split(", ")
          .filter((x) => x !== "")
          .map((x) => (x.startsWith("IP Address:") && x.includes(":", 11) ? `IP Address:${new URL(`http://[${x.slice(11)}]/`).hostname.replace(/[[\]]/g, "")}` : x));
      assert.deepEqual(norm(ourSan), norm(sanLine));
    });
  }

  it("reads stdin with -, takes a bundle, and prints -o yaml", async () => {
    const bundle = (await readFile(join(dir, "leaf-rsa.crt"), "utf8")) + (await readFile(join(dir, "ca-rsa.crt"), "utf8"));
    const r = await tsk(["certs", "show", "-", "-o", "json"], bundle);
    assert.equal(r.code, 0, r.stderr);
    const docs = JSON.parse(r.stdout) as { subject: { common_name: string } }[];
    assert.deepEqual(docs.map((d) => d.subject.common_name), ["system:node:node-a", "example-ca"]);
    const y = await tsk(["certs", "show", join(dir, "leaf-ec.crt"), "-o", "yaml"]);
    assert.equal((parseYaml(y.stdout) as { serial_number: string }).serial_number, "4660");
  });

  it("fails with exit 1 and a clear message on a corrupt or missing file, 2 on a bad -o", async () => {
    await writeFile(join(dir, "corrupt.pem"), "-----BEGIN CERTIFICATE-----\nAAAAbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n");
    const c = await tsk(["certs", "show", join(dir, "corrupt.pem")]);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /corrupt\.pem: not a valid X\.509 certificate/);
    const m = await tsk(["certs", "show", join(dir, "nope.pem")]);
    assert.equal(m.code, 1);
    assert.match(m.stderr, /nope\.pem: ENOENT/);
    const o = await tsk(["certs", "show", join(dir, "ca-ec.crt"), "-o", "xml"]);
    assert.equal(o.code, 2);
  });
});

describe("tskubelet certs check", () => {
  let d: string;
  let server: Server | undefined;
  const kubeconfig = (p: string, user: string[], caLine: string): Promise<void> =>
    writeFile(
      p,
      ["apiVersion: v1", "kind: Config", "clusters:", "- name: c", "  cluster:", "    server: https://127.0.0.1:6443", `    ${caLine}`, "users:", "- name: u", "  user:", ...user.map((l) => `    ${l}`), "contexts:", "- name: x", "  context: {cluster: c, user: u}", "current-context: x", ""].join("\n"),
    );

  before(async () => {
    d = await mkdtemp(join(tmpdir(), "tsk-certs-check-"));
    makeFixtures(d);
    await mkdir(join(d, "pki"));
    // client pair signed by the RSA CA, stored as upstream does
    const ca = await loadSigningCA(await readFile(join(d, "ca-rsa.crt"), "utf8"), await readFile(join(d, "ca-rsa.key"), "utf8"));
    const k = await generateNodeKey();
    const now = Date.now();
    const cert = await signLeaf(ca, k.keys.publicKey, { cn: "system:node:n1", orgs: ["system:nodes"], eku: "clientAuth", dns: [], ips: [], notBefore: new Date(now - 3600_000), notAfter: new Date(now + 200 * 86400_000) });
    await writeFile(join(d, "pki", "kubelet-client-2026-01-01-00-00-00.pem"), cert.toString("pem") + "\n" + k.pem, { mode: 0o600 });
    await symlink("kubelet-client-2026-01-01-00-00-00.pem", join(d, "pki", "kubelet-client-current.pem"));
    // expired certificate from the same CA
    const old = await signLeaf(ca, k.keys.publicKey, { cn: "system:node:n1", orgs: ["system:nodes"], eku: "clientAuth", dns: [], ips: [], notBefore: new Date(now - 10 * 86400_000), notAfter: new Date(now - 86400_000) });
    await writeFile(join(d, "expired.pem"), old.toString("pem") + "\n" + k.pem);
    await kubeconfig(join(d, "good.conf"), [`client-certificate: ${join(d, "pki", "kubelet-client-current.pem")}`, `client-key: ${join(d, "pki", "kubelet-client-current.pem")}`], `certificate-authority: ${join(d, "ca-rsa.crt")}`);
  });
  after(async () => {
    server?.close();
    await rm(d, { recursive: true, force: true });
  });

  it("lists the cert dir, the kubeconfig's certificates and the CA; exit 0 when all is well", async () => {
    const r = await tsk(["certs", "check", "--cert-dir", join(d, "pki"), "--kubeconfig", join(d, "good.conf"), "--rotate-certificates", "--warn-within", "720h"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^CERTIFICATE\s+EXPIRES\s+RESIDUAL TIME\s+ISSUER\/CA\s+ROTATES\s+SOURCE\s+NOTE$/);
    assert.match(r.stdout, /client \(cert dir\)\s+\w{3} \d\d, \d{4} \d\d:\d\d UTC\s+199d\s+example-ca\s+yes\s+\S+kubelet-client-current\.pem\s+also kubeconfig client-certificate/);
    assert.match(r.stdout, /kubeconfig certificate-authority\s+.*\s+9y\s+self-signed\s+-\s+\S+ca-rsa\.crt/);
    assert.equal(lines.length, 3);
    // show takes a kubeconfig too: its client certificate
    const show = await tsk(["certs", "show", join(d, "good.conf"), "-o", "json"]);
    assert.equal(show.code, 0, show.stderr);
    assert.equal((JSON.parse(show.stdout) as { subject: { common_name: string } }).subject.common_name, "system:node:n1");
  });

  it("exits 1 when something expires within --warn-within, and -o json says which", async () => {
    const r = await tsk(["certs", "check", "--cert-dir", join(d, "pki"), "--kubeconfig", join(d, "good.conf"), "--warn-within", "8760h", "-o", "json"]);
    assert.equal(r.code, 1);
    const doc = JSON.parse(r.stdout) as { ok: boolean; certificates: { name: string; status: string; residualSeconds: number; rotates?: boolean; notes: string[] }[] };
    assert.equal(doc.ok, false);
    const client = doc.certificates.find((c) => c.name === "client (cert dir)");
    assert.equal(client?.status, "expiring");
    assert.equal(client?.rotates, false);
    assert.ok((client?.residualSeconds ?? 0) > 199 * 86400 && (client?.residualSeconds ?? 0) <= 200 * 86400);
    assert.equal(doc.certificates.find((c) => c.name === "kubeconfig certificate-authority")?.status, "ok");
  });

  it("reports a missing file, a corrupt PEM, a key that does not match, another CA's certificate, an expired certificate", async () => {
    await kubeconfig(join(d, "missing.conf"), [`client-certificate: ${join(d, "gone.pem")}`, `client-key: ${join(d, "gone.pem")}`], `certificate-authority: ${join(d, "ca-rsa.crt")}`);
    let r = await tsk(["certs", "check", "--kubeconfig", join(d, "missing.conf")]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /kubeconfig client-certificate\s+-\s+-\s+-\s+no\s+\S+gone\.pem\s+referenced by \S+missing\.conf: file does not exist/);

    await writeFile(join(d, "corrupt.pem"), "-----BEGIN CERTIFICATE-----\nMIIBzzzz\n-----END CERTIFICATE-----\n");
    r = await tsk(["certs", "check", "--tls-cert-file", join(d, "corrupt.pem"), "--tls-private-key-file", join(d, "leaf-rsa.key"), "-o", "json"]);
    assert.equal(r.code, 1);
    let doc = JSON.parse(r.stdout) as { certificates: { name: string; status: string; notes: string[] }[] };
    assert.equal(doc.certificates[0]?.status, "error");
    assert.match(doc.certificates[0]?.notes.join(";") ?? "", /not a valid X\.509 certificate/);

    r = await tsk(["certs", "check", "--tls-cert-file", join(d, "leaf-rsa.crt"), "--tls-private-key-file", join(d, "leaf-ec.key"), "-o", "json"]);
    assert.equal(r.code, 1);
    doc = JSON.parse(r.stdout) as typeof doc;
    assert.deepEqual(doc.certificates[0]?.notes, ["reloaded when the file changes", "private key does not match the certificate"]);

    // another CA: the EC leaf against a kubeconfig whose CA is the RSA one
    await kubeconfig(join(d, "other-ca.conf"), [`client-certificate: ${join(d, "leaf-ec.crt")}`, `client-key: ${join(d, "leaf-ec.key")}`], `certificate-authority-data: ${(await readFile(join(d, "ca-rsa.crt"))).toString("base64")}`);
    r = await tsk(["certs", "check", "--kubeconfig", join(d, "other-ca.conf"), "-o", "json"]);
    assert.equal(r.code, 1);
    doc = JSON.parse(r.stdout) as typeof doc;
    const row = doc.certificates.find((c) => c.name === "kubeconfig client-certificate");
    assert.equal(row?.status, "error");
    assert.match(row?.notes.join(";") ?? "", /chain does not verify against the kubeconfig CA \(embedded in .*other-ca\.conf\): not signed by the CA \(issuer "O=Example, CN=example-ec-ca"/);

    await kubeconfig(join(d, "expired.conf"), [`client-certificate-data: ${(await readFile(join(d, "expired.pem"))).toString("base64")}`, `client-key-data: ${(await readFile(join(d, "expired.pem"))).toString("base64")}`], `certificate-authority: ${join(d, "ca-rsa.crt")}`);
    r = await tsk(["certs", "check", "--kubeconfig", join(d, "expired.conf")]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /kubeconfig client-certificate\s+\w{3} \d\d, \d{4} \d\d:\d\d UTC\s+<invalid>\s+example-ca\s+no\s+embedded in \S+expired\.conf\s+expired/);
  });

  it("reads tlsCertFile, clientCAFile and the rotation switches from --config", async () => {
    await writeFile(
      join(d, "config.yaml"),
      ["apiVersion: kubelet.config.k8s.io/v1beta1", "kind: KubeletConfiguration", `tlsCertFile: ${join(d, "leaf-ec.crt")}`, `tlsPrivateKeyFile: ${join(d, "leaf-ec.key")}`, "rotateCertificates: true", "authentication:", "  x509:", `    clientCAFile: ${join(d, "ca-ec.crt")}`, ""].join("\n"),
    );
    const r = await tsk(["certs", "check", "--config", join(d, "config.yaml"), "--cert-dir", join(d, "pki"), "-o", "yaml"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const doc = parseYaml(r.stdout) as { certificates: { name: string; rotates?: boolean; issuer: string }[] };
    assert.deepEqual(doc.certificates.map((c) => [c.name, c.rotates, c.issuer]), [
      ["client (cert dir)", true, "example-ca"],
      ["serving (tlsCertFile)", false, "example-ec-ca"],
      ["client CA (clientCAFile)", undefined, "self-signed"],
    ]);
  });

  it("checks a live endpoint: the peer's chain against the kubeconfig CA; a closed port is an error", async () => {
    const port = await freePort();
    server = createServer({ cert: await readFile(join(d, "leaf-rsa.crt")), key: await readFile(join(d, "leaf-rsa.key")) }, (_q, s) => s.end("ok"));
    await new Promise<void>((res) => server?.listen(port, "127.0.0.1", res));
    let r = await tsk(["certs", "check", "--kubeconfig", join(d, "good.conf"), "--endpoint", `127.0.0.1:${port}`, "--warn-within", "24h", "-o", "json"]);
    assert.equal(r.code, 0, r.stdout);
    const doc = JSON.parse(r.stdout) as { certificates: { name: string; source: string; subject: string; status: string; notes: string[] }[] };
    const ep = doc.certificates.find((c) => c.name === "endpoint");
    assert.equal(ep?.source, `tls://127.0.0.1:${port}`);
    assert.equal(ep?.subject, "O = system:nodes, CN = system:node:node-a");
    assert.deepEqual(ep?.notes, ["chain of 1"]);
    const closed = await freePort();
    r = await tsk(["certs", "check", "--endpoint", `127.0.0.1:${closed}`]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /endpoint .*TLS handshake failed: connect ECONNREFUSED/);
  });
});

describe("tskubelet certs issue", () => {
  let d: string;
  before(async () => {
    d = await mkdtemp(join(tmpdir(), "tsk-certs-issue-"));
    makeFixtures(d);
  });
  after(async () => {
    await rm(d, { recursive: true, force: true });
  });

  for (const [ca, key] of [
    ["ca-rsa.crt", "ca-rsa.key"],
    ["ca-rsa.crt", "ca-rsa.pkcs1.key"],
    ["ca-ec.crt", "ca-ec.key"],
  ] as const) {
    it(`issues client + serving + kubeconfig from ${ca} with ${key}; openssl verifies them`, async () => {
      const out = join(d, `out-${key}`);
      const r = await tsk(["certs", "issue", "--ca-cert", join(d, ca), "--ca-key", join(d, key), "--node", "worker-1", "--serving", "--address", "10.0.0.7", "--address", "worker-1,worker-1.example.com", "--server", "https://10.0.0.1:6443", "--out-dir", out, "--days", "30"]);
      assert.equal(r.code, 0, r.stderr);
      const current = join(out, "kubelet-client-current.pem");
      assert.ok((await lstat(current)).isSymbolicLink());
      assert.match(await readlink(current), /^kubelet-client-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.pem$/);
      assert.equal((await stat(current)).mode & 0o777, 0o600);
      const pair = await readFile(current, "utf8");
      assert.match(pair, /-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----/);
      assert.equal(openssl("verify", "-CAfile", join(d, ca), "-purpose", "sslclient", current).trim(), `${current}: OK`);
      assert.equal(openssl("x509", "-in", current, "-noout", "-subject").trim(), "subject=O = system:nodes, CN = system:node:worker-1");
      const text = openssl("x509", "-in", current, "-noout", "-text");
      assert.match(text, /X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication\n/);
      assert.match(text, /ASN1 OID: prime256v1/);
      const serving = join(out, "kubelet-server-current.pem");
      assert.equal(openssl("verify", "-CAfile", join(d, ca), "-purpose", "sslserver", serving).trim(), `${serving}: OK`);
      assert.equal(openssl("x509", "-in", serving, "-noout", "-ext", "subjectAltName").split("\n")[1]?.trim(), "DNS:worker-1, DNS:worker-1.example.com, IP Address:10.0.0.7");
      const days = (Date.parse(openssl("x509", "-in", current, "-noout", "-enddate").trim().replace("notAfter=", "")) - Date.now()) / 86400_000;
      assert.ok(days > 29.9 && days <= 30, `30 days (${days})`);
      const kc = parseYaml(await readFile(join(out, "kubelet.conf"), "utf8")) as { clusters: { name: string; cluster: { server: string; "certificate-authority-data": string } }[]; users: { name: string; user: Record<string, string> }[]; "current-context": string };
      assert.equal((await stat(join(out, "kubelet.conf"))).mode & 0o777, 0o600);
      assert.equal(kc["current-context"], "default-context");
      assert.equal(kc.clusters[0]?.cluster.server, "https://10.0.0.1:6443");
      assert.equal(Buffer.from(kc.clusters[0]?.cluster["certificate-authority-data"] ?? "", "base64").toString().trim(), (await readFile(join(d, ca), "utf8")).trim());
      assert.deepEqual(kc.users[0]?.user, { "client-certificate": current, "client-key": current });
      // and certs check is happy with the result
      const c = await tsk(["certs", "check", "--cert-dir", out, "--kubeconfig", join(out, "kubelet.conf"), "--warn-within", "24h"]);
      assert.equal(c.code, 0, c.stdout);
      assert.match(c.stdout, /client \(cert dir\)\s.*29d\s/);
      assert.match(c.stdout, /serving \(cert dir\)\s/);
    });
  }

  it("embeds the pair with --embed and refuses a key that is not the CA's", async () => {
    const out = join(d, "embed");
    const r = await tsk(["certs", "issue", "--ca-cert", join(d, "ca-ec.crt"), "--ca-key", join(d, "ca-ec.key"), "--node", "n2", "--server", "https://x:6443", "--out-dir", out, "--embed", "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const kc = parseYaml(await readFile(join(out, "kubelet.conf"), "utf8")) as { users: { user: Record<string, string> }[] };
    assert.ok(kc.users[0]?.user["client-certificate-data"]);
    assert.match(Buffer.from(kc.users[0]?.user["client-key-data"] ?? "", "base64").toString(), /BEGIN EC PRIVATE KEY/);
    const bad = await tsk(["certs", "issue", "--ca-cert", join(d, "ca-ec.crt"), "--ca-key", join(d, "ca-rsa.key"), "--node", "n2", "--out-dir", join(d, "bad")]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--ca-key does not belong to the --ca-cert certificate/);
    const badName = await tsk(["certs", "issue", "--ca-cert", join(d, "ca-ec.crt"), "--ca-key", join(d, "ca-ec.key"), "--node", "Bad_Name", "--out-dir", join(d, "bad")]);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /not a valid node name/);
    await chmod(join(d, "ca-ec.key"), 0o600);
  });
});
