/**
 * Output for `tskubelet certs`: text in the layout of `openssl x509 -noout -text`, cfssl-certinfo's
 * JSON, and the `certs check` table in the spirit of `kubeadm certs check-expiration`.
 */
import { stringify as toYamlText } from "yaml";
import { shortHumanDuration, type CertInfo, type CheckRow } from "./inspect.js";

export type OutputFormat = "table" | "json" | "yaml" | "text";

export function parseOutputFormat(v: string, allowed: OutputFormat[]): OutputFormat {
  const f = v.toLowerCase() as OutputFormat;
  if (!allowed.includes(f)) throw new Error(`unknown output format ${JSON.stringify(v)} (want ${allowed.join(", ")})`);
  return f;
}

const EXT_NAMES: Record<string, string> = {
  "2.5.29.15": "X509v3 Key Usage",
  "2.5.29.37": "X509v3 Extended Key Usage",
  "2.5.29.19": "X509v3 Basic Constraints",
  "2.5.29.14": "X509v3 Subject Key Identifier",
  "2.5.29.35": "X509v3 Authority Key Identifier",
  "2.5.29.17": "X509v3 Subject Alternative Name",
};

/** The serial as openssl -text prints it: "4660 (0x1234)" when it fits 64 bits, colon hex otherwise. */
export function opensslSerial(info: CertInfo): { inline: boolean; text: string } {
  const hex = info.serialHex.length % 2 === 1 ? `0${info.serialHex}` : info.serialHex;
  const v = BigInt(`0x${hex || "0"}`);
  if (hex.length <= 16 && v < 1n << 63n) return { inline: true, text: `${v.toString(10)} (0x${v.toString(16)})` };
  return { inline: false, text: hex.toLowerCase().replace(/(..)(?=.)/g, "$1:") };
}

export function sanText(info: CertInfo): string {
  return [...info.sans.dns.map((d) => `DNS:${d}`), ...info.sans.ip.map((i) => `IP Address:${i}`), ...info.sans.email.map((e) => `email:${e}`), ...info.sans.uri.map((u) => `URI:${u}`)].join(", ");
}

/** `openssl x509 -noout -text`, for the fields tskubelet decodes, plus a short tskubelet footer. */
export function certText(info: CertInfo, now: number): string {
  const l: string[] = [];
  l.push("Certificate:", "    Data:", `        Version: ${info.version} (0x${(info.version - 1).toString(16)})`);
  const serial = opensslSerial(info);
  if (serial.inline) l.push(`        Serial Number: ${serial.text}`);
  else l.push("        Serial Number:", `            ${serial.text}`);
  l.push(`        Signature Algorithm: ${info.signatureAlgorithm}`);
  l.push(`        Issuer: ${info.issuer.text}`);
  l.push("        Validity", `            Not Before: ${info.notBeforeText}`, `            Not After : ${info.notAfterText}`);
  l.push(`        Subject: ${info.subject.text}`);
  l.push("        Subject Public Key Info:", `            Public Key Algorithm: ${info.publicKey.algorithm}`);
  const pk = info.publicKey;
  if (pk.algorithm === "ED25519") l.push(`                ED25519 Public-Key:`);
  else l.push(`                Public-Key: (${pk.bits} bit)`);
  if (pk.curve) l.push(`                ASN1 OID: ${pk.curve}`);
  if (pk.nistCurve) l.push(`                NIST CURVE: ${pk.nistCurve}`);
  if (info.extensions.length > 0) {
    l.push("        X509v3 extensions:");
    for (const ext of info.extensions) {
      const name = EXT_NAMES[ext.oid] ?? ext.oid;
      l.push(`            ${name}: ${ext.critical ? "critical" : ""}`);
      let body: string;
      switch (ext.oid) {
        case "2.5.29.15":
          body = info.keyUsage.join(", ");
          break;
        case "2.5.29.37":
          body = info.extKeyUsage.join(", ");
          break;
        case "2.5.29.19":
          body = `CA:${info.isCA ? "TRUE" : "FALSE"}${info.pathLen !== undefined ? `, pathlen:${info.pathLen}` : ""}`;
          break;
        case "2.5.29.14":
          body = info.subjectKeyId ?? "";
          break;
        case "2.5.29.35":
          body = info.authorityKeyId ?? "";
          break;
        case "2.5.29.17":
          body = sanText(info);
          break;
        default:
          body = "(not decoded)";
      }
      l.push(`                ${body}`);
    }
  }
  l.push(`    Signature Algorithm: ${info.signatureAlgorithm}`);
  l.push(`    SHA256 Fingerprint: ${info.fingerprint256}`);
  const left = info.notAfter.getTime() - now;
  l.push(`    Expires in: ${left > 0 ? shortHumanDuration(left) : `expired ${shortHumanDuration(-left)} ago`}`);
  return l.join("\n") + "\n";
}

const CFSSL_NAME_FIELDS: Record<string, string> = {
  CN: "common_name",
  "2.5.4.5": "serial_number",
  serialNumber: "serial_number",
  C: "country",
  O: "organization",
  OU: "organizational_unit",
  L: "locality",
  ST: "province",
  street: "street_address",
  "2.5.4.9": "street_address",
  postalCode: "postal_code",
  "2.5.4.17": "postal_code",
};

/** cfssl's certinfo Name: fixed fields (multi-valued ones joined with ","), then every value in order. */
export function cfsslName(attrs: { type: string; value: string }[]): Record<string, unknown> {
  const joined: Record<string, string[]> = {};
  for (const a of attrs) {
    const f = CFSSL_NAME_FIELDS[a.type];
    if (!f) continue;
    if (f === "common_name" || f === "serial_number") joined[f] = [a.value];
    else (joined[f] ??= []).push(a.value);
  }
  const out: Record<string, unknown> = {};
  for (const f of ["common_name", "serial_number", "country", "organization", "organizational_unit", "locality", "province", "street_address", "postal_code"]) {
    const v = joined[f];
    if (v && v.join(",") !== "") out[f] = v.join(",");
  }
  if (attrs.length > 0) out.names = attrs.map((a) => a.value);
  return out;
}

/** Go's "%X" per byte, joined with ":" (cfssl does not zero-pad: 0x0C prints as "C"). */
function cfsslKeyId(colonHex: string | undefined): string {
  if (!colonHex) return "";
  return colonHex
    .split(":")
    .map((b) => Number.parseInt(b, 16).toString(16).toUpperCase())
    .join(":");
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The JSON `cfssl-certinfo -cert FILE` prints, field for field. */
export function certinfoJson(info: CertInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {
    subject: cfsslName(info.subject.attributes),
    issuer: cfsslName(info.issuer.attributes),
    serial_number: info.serialDecimal,
  };
  const sans = [...info.sans.dns, ...info.sans.ip];
  if (sans.length > 0) out.sans = sans;
  out.not_before = rfc3339(info.notBefore);
  out.not_after = rfc3339(info.notAfter);
  out.sigalg = info.cfsslSigAlg;
  out.authority_key_id = cfsslKeyId(info.authorityKeyId);
  out.subject_key_id = cfsslKeyId(info.subjectKeyId);
  out.pem = info.pem;
  return out;
}

export function toJson(v: unknown): string {
  return JSON.stringify(v, null, 2) + "\n";
}

export function toYaml(v: unknown): string {
  return toYamlText(v, { lineWidth: 0 });
}

/** kubeadm's EXPIRES column: "Jan 02, 2006 15:04 UTC". */
export function kubeadmDate(d: Date): string {
  const mon = d.toLocaleString("en-US", { month: "short", timeZone: "UTC" });
  const day = String(d.getUTCDate()).padStart(2, "0");
  const hh = String(d.getUTCHours()).padStart(2, "0");
  const mm = String(d.getUTCMinutes()).padStart(2, "0");
  return `${mon} ${day}, ${d.getUTCFullYear()} ${hh}:${mm} UTC`;
}

/** Left-aligned columns separated by three spaces, like kubectl's tables. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

export function checkTable(rows: CheckRow[]): string {
  if (rows.length === 0) return "no certificates found (give --cert-dir, --kubeconfig, --config or --endpoint)\n";
  return table(
    ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "ISSUER/CA", "ROTATES", "SOURCE", "NOTE"],
    rows.map((r) => [
      r.name,
      r.notAfter ? kubeadmDate(r.notAfter) : "-",
      r.residualMs === undefined ? "-" : shortHumanDuration(r.residualMs),
      r.issuer ?? "-",
      r.rotates === undefined ? "-" : r.rotates ? "yes" : "no",
      r.source,
      r.notes.join("; "),
    ]),
  );
}

export function checkDocument(rows: CheckRow[], opts: { now: number; warnWithinMs: number; exitCode: number }): Record<string, unknown> {
  return {
    kind: "CertificateCheck",
    checkedAt: new Date(opts.now).toISOString(),
    warnWithinSeconds: Math.floor(opts.warnWithinMs / 1000),
    ok: opts.exitCode === 0,
    certificates: rows.map((r) => {
      const o: Record<string, unknown> = { name: r.name, source: r.source, kind: r.kind, status: r.status };
      if (r.subject !== undefined) o.subject = r.subject;
      if (r.issuer !== undefined) o.issuer = r.issuer;
      if (r.notBefore) o.notBefore = rfc3339(r.notBefore);
      if (r.notAfter) o.notAfter = rfc3339(r.notAfter);
      if (r.residualMs !== undefined) o.residualSeconds = Math.floor(r.residualMs / 1000);
      if (r.rotates !== undefined) o.rotates = r.rotates;
      o.notes = r.notes;
      return o;
    }),
  };
}

/** `certs show -o json` for a whole bundle: one object for one certificate, a list for several. */
export function showJson(infos: CertInfo[]): unknown {
  const docs = infos.map(certinfoJson);
  return docs.length === 1 ? docs[0] : docs;
}
