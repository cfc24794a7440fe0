/** The kubelet-serving CSR approver: the decision function on CSRs made here, and the /approval calls. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";
import type { ApiClient, ApiRequest } from "../../src/api/client.js";
import { ApiError } from "../../src/api/client.js";
import { FakeClock } from "../../src/util/clock.js";
import { createServingCsrApprover, decideServingCsr, parseCsrRequest, type CsrObject, type NodeObject } from "../../src/certs/approver.js";

x509.cryptoProvider.set(webcrypto);

interface CsrSpec {
  cn?: string;
  orgs?: string[];
  dns?: string[];
  ips?: string[];
  emails?: string[];
  uris?: string[];
  rsa?: boolean;
}

async function csrPem(s: CsrSpec): Promise<string> {
  const alg = s.rsa ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } : { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const names: { type: "dns" | "ip" | "email" | "url"; value: string }[] = [
    ...(s.dns ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(s.ips ?? []).map((value) => ({ type: "ip" as const, value })),
    ...(s.emails ?? []).map((value) => ({ type: "email" as const, value })),
    ...(s.uris ?? []).map((value) => ({ type: "url" as const, value })),
  ];
  const name: Record<string, string[]>[] = [...(s.orgs ?? ["system:nodes"]).map((o) => ({ O: [o] })), { CN: [s.cn ?? "system:node:n1"] }];
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys,
    signingAlgorithm: alg,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return req.toString("pem");
}

async function csr(s: CsrSpec, over: Partial<CsrObject["spec"]> = {}, name = "csr-1"): Promise<CsrObject> {
  return {
    metadata: { name, uid: `uid-${name}`, resourceVersion: "1" },
    spec: {
      request: Buffer.from(await csrPem(s)).toString("base64"),
      signerName: "kubernetes.io/kubelet-serving",
      usages: ["digital signature", "server auth"],
      username: "system:node:n1",
      groups: ["system:nodes", "system:authenticated"],
      ...over,
    },
    status: {},
  };
}

const node: NodeObject = {
  metadata: { name: "n1" },
  status: {
    addresses: [
      { type: "InternalIP", address: "10.0.0.5" },
      { type: "InternalIP", address: "fd00::5" },
      { type: "Hostname", address: "n1" },
      { type: "InternalDNS", address: "n1.cluster.internal" },
    ],
  },
};
const opts = { maxExpirationSeconds: 8760 * 3600 };

async function decide(c: CsrObject, n: NodeObject | null = node): Promise<ReturnType<typeof decideServingCsr>> {
  let req;
  try {
    req = await parseCsrRequest(c.spec.request);
  } catch (err) {
    req = err as Error;
  }
  return decideServingCsr(c, req, n ?? undefined, opts);
}

describe("decideServingCsr", () => {
  it("approves a node asking for its own addresses (EC, and RSA with key encipherment)", async () => {
    const d = await decide(await csr({ dns: ["n1", "N1.cluster.internal"], ips: ["10.0.0.5", "fd00:0:0::5"] }));
    assert.equal(d.verdict, "approve");
    const r = await decide(await csr({ rsa: true, ips: ["10.0.0.5"] }, { usages: ["key encipherment", "digital signature", "server auth"] }));
    assert.equal(r.verdict, "approve");
  });

  const denials: [string, CsrSpec, Partial<CsrObject["spec"]>, string, RegExp][] = [
    ["a foreign IP", { ips: ["10.0.0.5", "10.9.9.9"] }, {}, "SANNotInNodeAddresses", /IP 10\.9\.9\.9 not among Node n1's status\.addresses \(InternalIP=10\.0\.0\.5/],
    ["a foreign DNS name", { dns: ["kubernetes.default"] }, {}, "SANNotInNodeAddresses", /DNS kubernetes\.default/],
    ["a requester that is not a node", { ips: ["10.0.0.5"] }, { username: "alice" }, "RequesterNotANode", /"alice"/],
    ["a node outside system:nodes", { ips: ["10.0.0.5"] }, { groups: ["system:authenticated"] }, "RequesterNotInSystemNodes", /not in group system:nodes/],
    ["a CN for another node", { cn: "system:node:n2", ips: ["10.0.0.5"] }, {}, "CommonNameMismatch", /system:node:n2/],
    ["extra organizations", { orgs: ["system:nodes", "system:masters"], ips: ["10.0.0.5"] }, {}, "OrganizationMismatch", /system:masters/],
    ["no organization", { orgs: [], ips: ["10.0.0.5"] }, {}, "OrganizationMismatch", /got \[\]/],
    ["client auth usage", { ips: ["10.0.0.5"] }, { usages: ["digital signature", "server auth", "client auth"] }, "UsagesNotAllowed", /client auth/],
    ["missing digital signature", { ips: ["10.0.0.5"] }, { usages: ["server auth"] }, "UsagesNotAllowed", /server auth/],
    ["an email SAN", { ips: ["10.0.0.5"], emails: ["a@b.c"] }, {}, "ForbiddenSANs", /email:a@b\.c/],
    ["a URI SAN", { ips: ["10.0.0.5"], uris: ["spiffe://x"] }, {}, "ForbiddenSANs", /URI:spiffe:\/\/x/],
    ["no SAN", {}, {}, "NoSANs", /no DNS or IP SAN/],
    ["too long an expiration", { ips: ["10.0.0.5"] }, { expirationSeconds: 8760 * 3600 + 1 }, "ExpirationTooLong", /31536001 is over the cap of 31536000/],
  ];
  for (const [what, spec, over, reason, msg] of denials) {
    it(`denies ${what} (${reason})`, async () => {
      const d = await decide(await csr(spec, over));
      assert.equal(d.verdict, "deny");
      if (d.verdict !== "deny") return;
      assert.equal(d.reason, reason);
      assert.match(d.message, msg);
    });
  }

  it("denies when the Node does not exist, or the request is garbage or badly signed", async () => {
    const c = await csr({ ips: ["10.0.0.5"] });
    const n = await decide(c, null);
    assert.equal(n.verdict === "deny" && n.reason, "NodeNotFound");
    const g = await decide({ ...c, spec: { ...c.spec, request: Buffer.from("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n").toString("base64") } });
    assert.equal(g.verdict === "deny" && g.reason, "InvalidRequest");
    // flip a byte of the signature
    const pem = Buffer.from(c.spec.request, "base64").toString();
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0xff;
    const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    const s = await decide({ ...c, spec: { ...c.spec, request: Buffer.from(bad).toString("base64") } });
    assert.equal(s.verdict === "deny" && s.reason, "InvalidSignature");
  });

  it("skips other signers and CSRs already decided or issued", async () => {
    const c = await csr({ ips: ["10.0.0.5"] });
    assert.equal((await decide({ ...c, spec: { ...c.spec, signerName: "kubernetes.io/kube-apiserver-client-kubelet" } })).verdict, "skip");
    assert.equal((await decide({ ...c, status: { conditions: [{ type: "Denied", status: "True" }] } })).verdict, "skip");
    assert.equal((await decide({ ...c, status: { certificate: "xx" } })).verdict, "skip");
  });
});

function fakeApi(csrs: CsrObject[], nodes: NodeObject[], watched: CsrObject[] = []): { api: ApiClient; puts: ApiRequest[] } {
  const puts: ApiRequest[] = [];
  const api: ApiClient = {
    server: "https://fake",
    identity: () => "admin",
    request: <T>(req: ApiRequest): Promise<T> => {
      if (req.method === "GET" && req.path === "/apis/certificates.k8s.io/v1/certificatesigningrequests") return Promise.resolve({ items: csrs, metadata: { resourceVersion: "9" } } as T);
      const nm = /^\/api\/v1\/nodes\/(.+)$/.exec(req.path);
      if (req.method === "GET" && nm) {
        const n = nodes.find((x) => x.metadata.name === nm[1]);
        return n ? Promise.resolve(n as T) : Promise.reject(new ApiError(404, "NotFound", "not found"));
      }
      if (req.method === "PUT" && req.path.endsWith("/approval")) {
        puts.push(req);
        return Promise.resolve(req.body as T);
      }
      return Promise.reject(new Error(`unexpected ${req.method} ${req.path}`));
    },
    watch: <T>(_req: Omit<ApiRequest, "method" | "body">, onEvent: (e: { type: "ADDED"; object: T }) => void): Promise<void> => {
      for (const c of watched.splice(0)) onEvent({ type: "ADDED", object: c as T });
      return Promise.resolve();
    },
    reload: () => Promise.resolve(),
    close: () => undefined,
  };
  return { api, puts };
}

describe("createServingCsrApprover", () => {
  it("approves the good CSR and denies the foreign SAN through /approval, with reason and message", async () => {
    const good = await csr({ ips: ["10.0.0.5"], dns: ["n1"] }, {}, "good");
    const bad = await csr({ ips: ["192.0.2.1"] }, {}, "bad");
    const client = await csr({}, { signerName: "kubernetes.io/kube-apiserver-client-kubelet" }, "client");
    const { api, puts } = fakeApi([good, bad, client], [node]);
    const clock = new FakeClock(Date.UTC(2026, 5, 1));
    const out = await createServingCsrApprover(api, { approveOnly: false, maxExpirationSeconds: 3600 * 8760, clock }).syncOnce();
    assert.deepEqual(out.map((o) => [o.name, o.verdict, o.reason]), [
      ["good", "approved", undefined],
      ["bad", "denied", "SANNotInNodeAddresses"],
    ]);
    assert.deepEqual(puts.map((p) => p.path), ["/apis/certificates.k8s.io/v1/certificatesigningrequests/good/approval", "/apis/certificates.k8s.io/v1/certificatesigningrequests/bad/approval"]);
    const conds = puts.map((p) => (p.body as CsrObject).status?.conditions?.[0]);
    assert.deepEqual(conds[0] && { ...conds[0], message: "" }, { type: "Approved", status: "True", reason: "AutoApproved", message: "", lastUpdateTime: "2026-06-01T00:00:00Z" });
    assert.equal(conds[1]?.type, "Denied");
    assert.equal(conds[1]?.reason, "SANNotInNodeAddresses");
    assert.match(conds[1]?.message ?? "", /IP 192\.0\.2\.1 not among Node n1's status\.addresses/);
    assert.equal((puts[0]?.body as CsrObject).spec.request, good.spec.request, "the whole CSR goes back");
  });

  it("leaves failing CSRs pending with --approve-only", async () => {
    const bad = await csr({ ips: ["192.0.2.1"] }, {}, "bad");
    const { api, puts } = fakeApi([bad], [node]);
    const out = await createServingCsrApprover(api, { approveOnly: true, maxExpirationSeconds: 3600 }).syncOnce();
    assert.deepEqual(out.map((o) => [o.name, o.verdict, o.reason]), [["bad", "pending", "SANNotInNodeAddresses"]]);
    assert.equal(puts.length, 0);
  });

  it("run: decides what the list returns, then what the watch delivers, until aborted", async () => {
    const listed = await csr({ ips: ["10.0.0.5"] }, {}, "listed");
    const later = await csr({ dns: ["evil.example.com"] }, {}, "later");
    const { api, puts } = fakeApi([listed], [node], [later]);
    const ac = new AbortController();
    const seen: string[] = [];
    await createServingCsrApprover(api, { approveOnly: false, maxExpirationSeconds: 3600 }).run(ac.signal, (o) => {
      seen.push(`${o.name}:${o.verdict}`);
      if (seen.length === 2) ac.abort();
    });
    assert.deepEqual(seen, ["listed:approved", "later:denied"]);
    assert.equal(puts.length, 2);
  });
});
