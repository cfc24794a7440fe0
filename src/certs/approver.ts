/**
 * An approver for kubelet serving certificates (signer kubernetes.io/kubelet-serving), which no
 * built-in controller approves. It approves a CSR only when a node asks for itself:
 *
 *   - spec.username is system:node:<name> and spec.groups contains system:nodes;
 *   - the request's CN equals spec.username and its O is exactly [system:nodes];
 *   - spec.usages is exactly {digital signature, server auth} or {digital signature, key encipherment, server auth};
 *   - no email, URI or other SANs, at least one DNS or IP SAN, and every one of them is among
 *     Node <name>'s status.addresses (IPs: InternalIP, ExternalIP, Hostname; names: Hostname,
 *     InternalDNS, ExternalDNS);
 *   - spec.expirationSeconds, when set, is at most the cap.
 *
 * Anything else is Denied with a reason and a message saying what failed (or, approve-only, left
 * pending). Decisions go through the /approval subresource.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";
import { isIP } from "node:net";
import type { ApiClient } from "../api/client.js";
import { isApiStatus } from "../api/client.js";
import { systemClock, type Clock } from "../util/clock.js";
import { errorMessage } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { collectSans } from "./inspect.js";

x509.cryptoProvider.set(webcrypto);

export const KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving";
const CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

export interface CsrCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

export interface CsrObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; uid?: string; resourceVersion?: string; [k: string]: unknown };
  spec: { request: string; signerName: string; usages?: string[]; username?: string; groups?: string[]; expirationSeconds?: number; [k: string]: unknown };
  status?: { conditions?: CsrCondition[]; certificate?: string };
}

export interface NodeObject {
  metadata: { name: string };
  status?: { addresses?: { type: string; address: string }[] };
}

export type Decision = { verdict: "approve"; message: string } | { verdict: "deny"; reason: string; message: string } | { verdict: "skip"; why: string };

export interface DecideOptions {
  /** The largest spec.expirationSeconds approved (default 8760h). */
  maxExpirationSeconds: number;
}

export const DEFAULT_MAX_EXPIRATION_SECONDS = 8760 * 3600;

const ALLOWED_USAGES = [
  ["digital signature", "server auth"],
  ["digital signature", "key encipherment", "server auth"],
];

export interface ParsedRequest {
  cn: string[];
  orgs: string[];
  dns: string[];
  ips: string[];
  emails: string[];
  uris: string[];
  otherSans: string[];
  signatureValid: boolean;
}

/** Decodes spec.request (base64 of a PEM CERTIFICATE REQUEST) and checks its self-signature. */
export async function parseCsrRequest(requestB64: string): Promise<ParsedRequest> {
  const pem = Buffer.from(requestB64, "base64").toString("utf8");
  const req = new x509.Pkcs10CertificateRequest(pem.includes("-----BEGIN") ? pem : Buffer.from(requestB64, "base64"));
  const cn: string[] = [];
  const orgs: string[] = [];
  for (const rdn of req.subjectName.toJSON()) {
    for (const [type, values] of Object.entries(rdn)) {
      if (type === "CN") cn.push(...values);
      if (type === "O") orgs.push(...values);
    }
  }
  const ext = req.getExtension("2.5.29.17");
  const sanExt = ext ? new x509.SubjectAlternativeNameExtension(ext.rawData) : null;
  const sans = collectSans(sanExt);
  const otherSans = sanExt ? sanExt.names.items.filter((g) => !["dns", "ip", "email", "url"].includes(g.type)).map((g) => `${g.type}:${g.value}`) : [];
  let signatureValid = false;
  try {
    signatureValid = await req.verify();
  } catch {
    signatureValid = false;
  }
  return { cn, orgs, dns: sans.dns, ips: sans.ip, emails: sans.email, uris: sans.uri, otherSans, signatureValid };
}

function canonicalIp(ip: string): string {
  if (isIP(ip) === 6) {
    try {
      return new URL(`http://[${ip}]/`).hostname.replace(/^\[|\]$/g, "");
    } catch {
      return ip.toLowerCase();
    }
  }
  return ip;
}

/** Whether the CSR already has a decision or a certificate. */
export function csrDecided(csr: CsrObject): string | undefined {
  if (csr.status?.certificate) return "already issued";
  const c = csr.status?.conditions?.find((x) => (x.type === "Approved" || x.type === "Denied" || x.type === "Failed") && x.status !== "False");
  return c ? `already ${c.type}` : undefined;
}

/** The node a CSR's requester claims to be, or undefined when the requester is not a node. */
export function requesterNode(csr: CsrObject): string | undefined {
  return /^system:node:(.+)$/.exec(csr.spec.username ?? "")?.[1];
}

/**
 * The decision for one CSR, given its parsed request and the requesting Node (undefined when the
 * Node does not exist). Pure: the caller fetches the Node.
 */
export function decideServingCsr(csr: CsrObject, req: ParsedRequest | Error, node: NodeObject | undefined, opts: DecideOptions): Decision {
  if (csr.spec.signerName !== KUBELET_SERVING_SIGNER) return { verdict: "skip", why: `signer ${csr.spec.signerName}` };
  const decided = csrDecided(csr);
  if (decided) return { verdict: "skip", why: decided };
  const problem = requesterProblem(csr) ?? requestProblem(csr, req, opts) ?? addressProblem(csr, req as ParsedRequest, node);
  if (problem) return { verdict: "deny", reason: problem[0], message: problem[1] };
  const r = req as ParsedRequest;
  return { verdict: "approve", message: `tskubelet serving CSR approver: ${csr.spec.username ?? ""} asked for ${[...r.dns, ...r.ips].join(", ")}, all addresses of Node ${requesterNode(csr) ?? ""}` };
}

type Problem = [reason: string, message: string];

function requesterProblem(csr: CsrObject): Problem | undefined {
  const username = csr.spec.username ?? "";
  if (!requesterNode(csr)) return ["RequesterNotANode", `requester ${JSON.stringify(username)} is not system:node:<name>`];
  const groups = csr.spec.groups ?? [];
  if (!groups.includes("system:nodes")) return ["RequesterNotInSystemNodes", `requester ${username} is not in group system:nodes (groups: ${groups.join(", ") || "none"})`];
  return undefined;
}

function requestProblem(csr: CsrObject, req: ParsedRequest | Error, opts: DecideOptions): Problem | undefined {
  const username = csr.spec.username ?? "";
  if (req instanceof Error) return ["InvalidRequest", `spec.request is not a valid PEM certificate request: ${req.message}`];
  if (!req.signatureValid) return ["InvalidSignature", "the certificate request's signature does not verify"];
  if (req.cn.length !== 1 || req.cn[0] !== username) return ["CommonNameMismatch", `CN ${JSON.stringify(req.cn.join(","))} does not equal the requester ${username}`];
  if (req.orgs.length !== 1 || req.orgs[0] !== "system:nodes") return ["OrganizationMismatch", `O must be exactly [system:nodes], got [${req.orgs.join(", ")}]`];
  const usages = [...new Set(csr.spec.usages ?? [])].sort();
  if (!ALLOWED_USAGES.some((a) => a.length === usages.length && a.every((u, i) => usages[i] === u))) {
    return ["UsagesNotAllowed", `usages [${(csr.spec.usages ?? []).join(", ")}] are not {digital signature, server auth} or {digital signature, key encipherment, server auth}`];
  }
  const forbidden = [...req.emails.map((e) => `email:${e}`), ...req.uris.map((u) => `URI:${u}`), ...req.otherSans];
  if (forbidden.length > 0) return ["ForbiddenSANs", `email, URI and other SANs are not allowed: ${forbidden.join(", ")}`];
  if (req.dns.length === 0 && req.ips.length === 0) return ["NoSANs", "the request has no DNS or IP SAN"];
  const exp = csr.spec.expirationSeconds;
  if (exp !== undefined && exp > opts.maxExpirationSeconds) return ["ExpirationTooLong", `expirationSeconds ${exp} is over the cap of ${opts.maxExpirationSeconds}`];
  return undefined;
}

function addressProblem(csr: CsrObject, req: ParsedRequest, node: NodeObject | undefined): Problem | undefined {
  const nodeName = requesterNode(csr) ?? "";
  if (!node) return ["NodeNotFound", `Node ${nodeName} does not exist, so its addresses cannot be checked`];
  const addrs = node.status?.addresses ?? [];
  const nodeIps = new Set(addrs.filter((a) => ["InternalIP", "ExternalIP", "Hostname"].includes(a.type) && isIP(a.address)).map((a) => canonicalIp(a.address)));
  const nodeDns = new Set(addrs.filter((a) => ["Hostname", "InternalDNS", "ExternalDNS"].includes(a.type) && !isIP(a.address)).map((a) => a.address.toLowerCase()));
  const foreign = [...req.ips.filter((ip) => !nodeIps.has(canonicalIp(ip))).map((ip) => `IP ${ip}`), ...req.dns.filter((d) => !nodeDns.has(d.toLowerCase())).map((d) => `DNS ${d}`)];
  if (foreign.length === 0) return undefined;
  return ["SANNotInNodeAddresses", `${foreign.join(", ")} not among Node ${nodeName}'s status.addresses (${addrs.map((a) => `${a.type}=${a.address}`).join(", ") || "none"})`];
}

export interface ApproverOptions extends DecideOptions {
  /** Leave CSRs that fail the checks pending instead of denying them. */
  approveOnly: boolean;
  logger?: Logger;
  clock?: Clock;
}

export interface ApproverOutcome {
  name: string;
  verdict: "approved" | "denied" | "pending" | "skipped" | "error";
  reason?: string;
  message: string;
}

export interface ServingCsrApprover {
  /** Lists CSRs once and decides every undecided kubelet-serving one. */
  syncOnce(): Promise<ApproverOutcome[]>;
  /** Lists, then watches, until the signal aborts. */
  run(signal: AbortSignal, onOutcome?: (o: ApproverOutcome) => void): Promise<void>;
}

export function createServingCsrApprover(api: ApiClient, opts: ApproverOptions): ServingCsrApprover {
  const clock = opts.clock ?? systemClock;
  const log = opts.logger;
  const leftPending = new Set<string>();

  const getNode = async (name: string): Promise<NodeObject | undefined> => {
    try {
      return await api.request<NodeObject>({ method: "GET", path: `/api/v1/nodes/${encodeURIComponent(name)}` });
    } catch (err) {
      if (isApiStatus(err, 404)) return undefined;
      throw err;
    }
  };

  const putCondition = async (csr: CsrObject, cond: CsrCondition): Promise<void> => {
    let cur = csr;
    for (let attempt = 0; ; attempt++) {
      const body: CsrObject = { ...cur, status: { ...cur.status, conditions: [...(cur.status?.conditions ?? []), cond] } };
      try {
        await api.request({ method: "PUT", path: `${CSR_PATH}/${encodeURIComponent(csr.metadata.name)}/approval`, body });
        return;
      } catch (err) {
        if (!isApiStatus(err, 409) || attempt >= 3) throw err;
        cur = await api.request<CsrObject>({ method: "GET", path: `${CSR_PATH}/${encodeURIComponent(csr.metadata.name)}` });
        if (csrDecided(cur)) return;
      }
    }
  };

  const handle = async (csr: CsrObject): Promise<ApproverOutcome> => {
    const name = csr.metadata.name;
    if (csr.spec.signerName !== KUBELET_SERVING_SIGNER || csrDecided(csr)) return { name, verdict: "skipped", message: csrDecided(csr) ?? `signer ${csr.spec.signerName}` };
    let req: ParsedRequest | Error;
    try {
      req = await parseCsrRequest(csr.spec.request);
    } catch (err) {
      req = err instanceof Error ? err : new Error(String(err));
    }
    const nodeName = requesterNode(csr);
    let node: NodeObject | undefined;
    try {
      node = nodeName ? await getNode(nodeName) : undefined;
    } catch (err) {
      return { name, verdict: "error", message: `reading Node ${nodeName ?? ""}: ${errorMessage(err)}` };
    }
    const d = decideServingCsr(csr, req, node, opts);
    const now = new Date(clock.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
    try {
      if (d.verdict === "approve") {
        await putCondition(csr, { type: "Approved", status: "True", reason: "AutoApproved", message: d.message, lastUpdateTime: now });
        log?.info("Approved kubelet serving CSR", { csr: name, requester: csr.spec.username });
        return { name, verdict: "approved", message: d.message };
      }
      if (d.verdict === "deny") {
        if (opts.approveOnly) {
          const key = `${csr.metadata.uid ?? name}`;
          if (!leftPending.has(key)) log?.warn("Leaving kubelet serving CSR pending (approve-only)", { csr: name, reason: d.reason, message: d.message });
          leftPending.add(key);
          return { name, verdict: "pending", reason: d.reason, message: d.message };
        }
        await putCondition(csr, { type: "Denied", status: "True", reason: d.reason, message: d.message, lastUpdateTime: now });
        log?.warn("Denied kubelet serving CSR", { csr: name, requester: csr.spec.username, reason: d.reason, message: d.message });
        return { name, verdict: "denied", reason: d.reason, message: d.message };
      }
      return { name, verdict: "skipped", message: d.why };
    } catch (err) {
      log?.error("Could not record the decision on a CSR", { csr: name, err });
      return { name, verdict: "error", message: errorMessage(err) };
    }
  };

  const list = async (): Promise<{ items: CsrObject[]; resourceVersion: string }> => {
    const l = await api.request<{ items?: CsrObject[]; metadata?: { resourceVersion?: string } }>({ method: "GET", path: CSR_PATH });
    return { items: l.items ?? [], resourceVersion: l.metadata?.resourceVersion ?? "" };
  };

  return {
    async syncOnce() {
      const { items } = await list();
      const out: ApproverOutcome[] = [];
      for (const csr of items) {
        if (csr.spec.signerName !== KUBELET_SERVING_SIGNER || csrDecided(csr)) continue;
        out.push(await handle(csr));
      }
      return out;
    },
    async run(signal, onOutcome) {
      let backoff = 1000;
      while (!signal.aborted) {
        try {
          const { items, resourceVersion } = await list();
          for (const csr of items) {
            if (csr.spec.signerName !== KUBELET_SERVING_SIGNER || csrDecided(csr)) continue;
            onOutcome?.(await handle(csr));
          }
          backoff = 1000;
          const queue: CsrObject[] = [];
          let draining: Promise<void> = Promise.resolve();
          await api.watch<CsrObject>({ path: CSR_PATH, query: { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 }, signal }, (e) => {
            if ((e.type === "ADDED" || e.type === "MODIFIED") && e.object.spec.signerName === KUBELET_SERVING_SIGNER && !csrDecided(e.object)) {
              queue.push(e.object);
              draining = draining.then(async () => {
                const next = queue.shift();
                if (next) onOutcome?.(await handle(next));
              });
            }
          });
          await draining;
        } catch (err) {
          if (signal.aborted) return;
          log?.warn("CSR watch failed; retrying", { err, retryInMs: backoff });
          await clock.sleep(backoff, signal).catch(() => undefined);
          backoff = Math.min(backoff * 2, 30_000);
        }
      }
    },
  };
}
