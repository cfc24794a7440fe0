/**
 * `tskubelet certs`: check / show / issue / approver. Tables and text for people, `-o json|yaml`
 * for scripts.
 *
 * Exit codes:
 *   certs check     0 all certificates fine; 1 something expired, expires within --warn-within,
 *                   or is broken (missing file a kubeconfig references, corrupt PEM, key not
 *                   matching, chain not verifying, handshake failed); 2 bad usage
 *   certs show      0 shown; 1 not a certificate / unreadable; 2 bad usage
 *   certs issue     0 written; 1 failed (bad CA, key not matching the CA, …); 2 bad usage
 *   certs approver  0 done (--once) or stopped by a signal; 1 API errors; 2 bad usage
 */
import { Command, Option } from "commander";
import { readFileSync } from "node:fs";
import { loadConfiguration, parseDuration } from "../config/index.js";
import { createApiClient } from "../api/client.js";
import { systemClock } from "../util/clock.js";
import { createLogger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";
import { checkCertificates, parseCertificates, readKubeconfig, splitPem } from "../certs/inspect.js";
import { certText, checkDocument, checkTable, parseOutputFormat as parseFormat, showJson, toJson, toYaml, table, type OutputFormat } from "../certs/format.js";
import { issueNodeCredentials } from "../certs/issue.js";
import { createServingCsrApprover, DEFAULT_MAX_EXPIRATION_SECONDS } from "../certs/approver.js";

class UsageError extends Error {}

function parseOutputFormat(v: string, allowed: OutputFormat[]): OutputFormat {
  try {
    return parseFormat(v, allowed);
  } catch (err) {
    throw new UsageError(`-o: ${errorMessage(err)}`);
  }
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function out(text: string): void {
  process.stdout.write(text);
}

function fail(code: number, msg: string): number {
  process.stderr.write(`tskubelet certs: ${msg}\n`);
  return code;
}

function duration(flag: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined || ms < 0) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a duration like 720h`);
  return ms;
}

async function guarded(fn: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (err) {
    process.exitCode = fail(err instanceof UsageError ? 2 : 1, errorMessage(err));
  }
}

interface CheckFlags {
  certDir?: string;
  kubeconfig?: string;
  bootstrapKubeconfig?: string;
  config?: string;
  endpoint: string[];
  warnWithin: string;
  output: string;
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  clientCaFile?: string;
  rotateCertificates?: boolean;
  rotateServerCertificates?: boolean;
}

/** The KubeletConfiguration `certs check` reads: --config, overridden by the flags given here. */
function kubeletSettings(f: CheckFlags): ReturnType<typeof loadConfiguration> {
  const given: [string, string | boolean | undefined][] = [
    ["config", f.config],
    ["cert-dir", f.certDir],
    ["tls-cert-file", f.tlsCertFile],
    ["tls-private-key-file", f.tlsPrivateKeyFile],
    ["client-ca-file", f.clientCaFile],
    ["rotate-certificates", f.rotateCertificates],
    ["rotate-server-certificates", f.rotateServerCertificates],
  ];
  const flags: Record<string, string> = {};
  for (const [k, v] of given) if (v !== undefined && v !== "") flags[k] = String(v);
  try {
    return loadConfiguration({ flags });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

async function runCheck(f: CheckFlags): Promise<number> {
  const format = parseOutputFormat(f.output, ["table", "json", "yaml"]);
  const warnWithinMs = duration("--warn-within", f.warnWithin);
  const cfg = kubeletSettings(f);
  const anySource = f.config || f.certDir || f.kubeconfig || f.bootstrapKubeconfig || f.endpoint.length > 0 || f.tlsCertFile || f.clientCaFile;
  const certDir = f.certDir ?? (f.config ? cfg.flags.certDir : anySource ? undefined : "/var/lib/kubelet/pki");
  const kubeconfig = f.kubeconfig ?? (anySource ? undefined : "/etc/kubernetes/kubelet.conf");
  const now = systemClock.now();
  const report = await checkCertificates({
    ...(certDir ? { certDir } : {}),
    ...(kubeconfig ? { kubeconfig } : {}),
    ...(f.bootstrapKubeconfig ? { bootstrapKubeconfig: f.bootstrapKubeconfig } : {}),
    ...(cfg.config.tlsCertFile ? { tlsCertFile: cfg.config.tlsCertFile, tlsPrivateKeyFile: cfg.config.tlsPrivateKeyFile } : {}),
    ...(cfg.config.authentication.x509.clientCAFile ? { clientCAFile: cfg.config.authentication.x509.clientCAFile } : {}),
    rotateCertificates: cfg.config.rotateCertificates,
    serverTLSBootstrap: cfg.config.serverTLSBootstrap,
    endpoints: f.endpoint,
    warnWithinMs,
    now,
  });
  if (format === "table") out(checkTable(report.rows));
  else {
    const doc = checkDocument(report.rows, { now, warnWithinMs, exitCode: report.exitCode });
    out(format === "json" ? toJson(doc) : toYaml(doc));
  }
  return report.exitCode;
}

function runShow(file: string, output: string): number {
  const format = parseOutputFormat(output, ["text", "json", "yaml"]);
  let text: string;
  try {
    text = file === "-" ? readFileSync(0, "utf8") : readFileSync(file, "utf8");
  } catch (err) {
    return fail(1, `${file}: ${errorMessage(err)}`);
  }
  const where = file === "-" ? "stdin" : file;
  if (!splitPem(text).some((b) => b.type === "CERTIFICATE") && file !== "-" && /client-certificate|certificate-authority/.test(text)) {
    // A kubeconfig: show its client certificate (or its CA when it has none).
    const kc = readKubeconfig(file);
    const m = kc.clientCert ?? kc.ca;
    if (!m?.pem) return fail(1, `${file}: kubeconfig has no certificate${m?.error ? ` (${m.file ?? ""}: ${m.error})` : ""}`);
    text = m.pem;
  }
  let infos;
  try {
    infos = parseCertificates(text, where);
  } catch (err) {
    return fail(1, errorMessage(err));
  }
  if (format === "text") out(infos.map((i) => certText(i, systemClock.now())).join("\n"));
  else if (format === "json") out(toJson(showJson(infos)));
  else out(toYaml(showJson(infos)));
  return 0;
}

interface IssueFlags {
  caCert: string;
  caKey: string;
  node: string;
  address: string[];
  serving?: boolean;
  server?: string;
  outDir: string;
  days: string;
  kubeconfigOut?: string;
  embed?: boolean;
  output: string;
}

async function runIssue(f: IssueFlags): Promise<number> {
  const format = parseOutputFormat(f.output, ["text", "json", "yaml"]);
  const days = Number(f.days);
  if (!Number.isFinite(days) || days <= 0) throw new UsageError(`--days: ${JSON.stringify(f.days)} is not a positive number`);
  let caCertPem: string;
  let caKeyPem: string;
  try {
    caCertPem = readFileSync(f.caCert, "utf8");
    caKeyPem = readFileSync(f.caKey, "utf8");
  } catch (err) {
    return fail(1, errorMessage(err));
  }
  const r = await issueNodeCredentials({
    caCertPem,
    caKeyPem,
    nodeName: f.node,
    addresses: f.address,
    serving: f.serving === true,
    ...(f.server ? { server: f.server } : {}),
    outDir: f.outDir,
    days,
    ...(f.kubeconfigOut ? { kubeconfigOut: f.kubeconfigOut } : {}),
    embed: f.embed === true,
    now: systemClock.now(),
  });
  for (const w of r.warnings) process.stderr.write(`tskubelet certs issue: warning: ${w}\n`);
  if (format === "text") {
    out(table(["FILE", "CONTENTS"], r.files.map((x) => [x.path, x.what])));
    out(`valid until ${r.notAfter.toISOString()}\n`);
    if (r.kubeconfigPath) out(`run: tskubelet --kubeconfig=${r.kubeconfigPath} --cert-dir=${f.outDir}${r.servingCertPem ? ` --tls-cert-file=${f.outDir}/kubelet-server-current.pem --tls-private-key-file=${f.outDir}/kubelet-server-current.pem` : ""} ...\n`);
  } else {
    const doc = { node: f.node, notAfter: r.notAfter.toISOString(), files: r.files, kubeconfig: r.kubeconfigPath ?? null, warnings: r.warnings };
    out(format === "json" ? toJson(doc) : toYaml(doc));
  }
  return 0;
}

interface ApproverFlags {
  kubeconfig?: string;
  approveOnly?: boolean;
  maxExpiration: string;
  once?: boolean;
  output: string;
  v: string;
}

async function runApprover(f: ApproverFlags): Promise<number> {
  const format = parseOutputFormat(f.output, ["table", "json", "yaml"]);
  const maxMs = duration("--max-expiration", f.maxExpiration);
  const kubeconfig = f.kubeconfig ?? process.env.KUBECONFIG ?? `${process.env.HOME ?? ""}/.kube/config`;
  const logger = createLogger({ verbosity: Number(f.v) || 0 });
  const api = await createApiClient({ kubeconfigPath: kubeconfig, clock: systemClock, qps: 20, burst: 40, timeoutMs: 30_000 });
  const approver = createServingCsrApprover(api, { approveOnly: f.approveOnly === true, maxExpirationSeconds: Math.floor(maxMs / 1000), logger });
  try {
    if (f.once) {
      const outcomes = await approver.syncOnce();
      if (format === "table") out(outcomes.length === 0 ? "no pending kubelet-serving CSRs\n" : table(["NAME", "DECISION", "REASON", "MESSAGE"], outcomes.map((o) => [o.name, o.verdict, o.reason ?? "-", o.message])));
      else out(format === "json" ? toJson({ outcomes }) : toYaml({ outcomes }));
      return outcomes.some((o) => o.verdict === "error") ? 1 : 0;
    }
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    logger.info("Watching kubernetes.io/kubelet-serving CSRs", { server: api.server, approveOnly: f.approveOnly === true });
    await approver.run(ac.signal, (o) => {
      if (format !== "table") out(JSON.stringify(o) + "\n");
    });
    return 0;
  } finally {
    api.close();
  }
}

export function certsCommand(): Command {
  const certs = new Command("certs").description("inspect, issue and approve kubelet certificates");
  const outputOpt = (def: string, choices: string[]): Option => new Option("-o, --output <format>", `output format: ${choices.join(", ")}`).default(def);

  certs
    .command("check")
    .description("list every certificate tskubelet uses with its expiry; exit 1 if any expires within --warn-within or is broken")
    .option("--cert-dir <dir>", "the kubelet's --cert-dir")
    .option("--kubeconfig <file>", "the kubelet's --kubeconfig")
    .option("--bootstrap-kubeconfig <file>", "the kubelet's --bootstrap-kubeconfig")
    .option("--config <file>", "KubeletConfiguration (tlsCertFile, clientCAFile, rotateCertificates, serverTLSBootstrap)")
    .option("--tls-cert-file <file>", "serving certificate (overrides the config)")
    .option("--tls-private-key-file <file>", "serving key (overrides the config)")
    .option("--client-ca-file <file>", "client CA bundle (overrides the config)")
    .option("--rotate-certificates [bool]", "whether client rotation is on (overrides the config)", (v) => v !== "false")
    .option("--rotate-server-certificates [bool]", "whether serverTLSBootstrap is on (overrides the config)", (v) => v !== "false")
    .option("--endpoint <host:port>", "also check a live TLS endpoint (repeatable)", collect, [])
    .option("--warn-within <duration>", "threshold for the non-zero exit", "720h")
    .addOption(outputOpt("table", ["table", "json", "yaml"]))
    .addHelpText(
      "after",
      [
        "",
        "Looks at <cert-dir>/kubelet-client-current.pem, kubelet-server-current.pem and kubelet.crt, the",
        "kubeconfig's and bootstrap kubeconfig's client certificate and CA (embedded or files), tlsCertFile",
        "and clientCAFile (from --config or the flags), and each --endpoint's TLS chain.",
        "With no source given it looks at /var/lib/kubelet/pki and /etc/kubernetes/kubelet.conf.",
        "",
        "Exit status: 0 all fine; 1 something is expired, expires within --warn-within, or is broken",
        "(missing file, corrupt PEM, key not matching, chain not verifying against the kubeconfig CA,",
        "handshake failed); 2 bad usage.",
      ].join("\n"),
    )
    .action(async (f: CheckFlags) => guarded(() => runCheck(f)));

  certs
    .command("show")
    .description("print a certificate like `openssl x509 -noout -text`; -o json gives cfssl-certinfo's fields")
    .argument("<file>", "PEM file, kubeconfig, or - for stdin")
    .addOption(outputOpt("text", ["text", "json", "yaml"]))
    .action(async (file: string, f: { output: string }) => guarded(() => Promise.resolve(runShow(file, f.output))));

  certs
    .command("issue")
    .description("issue node credentials from the cluster CA (no bootstrap token needed)")
    .requiredOption("--ca-cert <file>", "cluster CA certificate")
    .requiredOption("--ca-key <file>", "cluster CA key (RSA or EC; PKCS#1, PKCS#8 or SEC1 PEM)")
    .requiredOption("--node <name>", "node name")
    .option("--address <ip|dns>", "serving certificate SAN (repeatable, or comma-separated)", collect, [])
    .option("--serving", "also issue a serving certificate")
    .option("--server <url>", "apiserver URL for the kubeconfig")
    .option("--out-dir <dir>", "where to write the files (the kubelet's --cert-dir)", ".")
    .option("--days <n>", "validity in days", "365")
    .option("--kubeconfig-out <file>", "kubeconfig path (default <out-dir>/kubelet.conf)")
    .option("--embed", "embed the client certificate and key in the kubeconfig")
    .addOption(outputOpt("text", ["text", "json", "yaml"]))
    .action(async (f: IssueFlags) => guarded(() => runIssue(f)));

  certs
    .command("approver")
    .description("approve kubelet-serving CSRs whose SANs are the requesting node's addresses; deny the rest")
    .option("--kubeconfig <file>", "kubeconfig with rights to approve CSRs (default $KUBECONFIG)")
    .option("--approve-only", "leave CSRs that fail the checks pending instead of denying them")
    .option("--max-expiration <duration>", "largest spec.expirationSeconds approved", `${DEFAULT_MAX_EXPIRATION_SECONDS / 3600}h`)
    .option("--once", "decide the pending CSRs and exit")
    .option("-v, --v <level>", "log verbosity", "0")
    .addOption(outputOpt("table", ["table", "json", "yaml"]))
    .action(async (f: ApproverFlags) => guarded(() => runApprover(f)));
  return certs;
}
