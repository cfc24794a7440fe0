/**
 * The kubelet API (10250) of the real tskubelet on a private containerd: TLS with the self-signed
 * certificate, x509 client certificates, 401s, container logs (tail, follow, previous), /run,
 * exec and port-forward proxied over websockets to containerd's streaming server, /logs/ refusals,
 * debugging handlers off, and 200 concurrent requests without leaks.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readdir, readFile, readlink, rm, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { containerdUnavailableReason, startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { podManifest, sleep, startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";
import { kubeletApi, type ApiReply, type ClientCert } from "../support/kubelet-api.js";
import { isRefusal, openWebSocket, type WsMessage } from "../support/websocket.js";

function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, encoding: "utf8", timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

/** A client CA and a client certificate it signed, made with openssl. */
async function opensslClientPKI(dir: string, cn: string, org: string): Promise<{ caFile: string; client: ClientCert; foreign: ClientCert }> {
  const o = (...a: string[]): Promise<string> => run("openssl", a, dir);
  await o("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=it-client-ca");
  await o("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "1", "-subj", "/CN=it-other-ca");
  await writeFile(join(dir, "client.ext"), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n");
  for (const [name, ca] of [["client", "ca"], ["foreign", "other-ca"]] as const) {
    await o("req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/O=${org}/CN=${cn}`);
    await o("x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "1", "-extfile", "client.ext");
  }
  const pair = async (n: string): Promise<ClientCert> => ({ cert: await readFile(join(dir, `${n}.crt`)), key: await readFile(join(dir, `${n}.key`)) });
  return { caFile: join(dir, "ca.crt"), client: await pair("client"), foreign: await pair("foreign") };
}

function running(p: V1Pod | undefined): boolean {
  return p?.status?.containerStatuses?.[0]?.state?.running !== undefined;
}

/** Concatenated data per channel of a channel.k8s.io stream (first byte of each message). */
function byChannel(msgs: WsMessage[]): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const m of msgs) {
    const ch = m.data[0];
    if (ch === undefined) continue;
    out.set(ch, Buffer.concat([out.get(ch) ?? Buffer.alloc(0), m.data.subarray(1)]));
  }
  return out;
}

/** The inotify watches a process holds (fs.watch uses them), from /proc/<pid>/fdinfo. */
async function inotifyWatches(pid: number): Promise<number> {
  let n = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    if (target !== "anon_inode:inotify") continue;
    const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, "utf8").catch(() => "");
    n += info.split("\n").filter((l) => l.startsWith("inotify wd:")).length;
  }
  return n;
}

const skip = containerdUnavailableReason() ?? false;

describe("kubelet API (10250) on containerd", { skip }, () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let pki: Awaited<ReturnType<typeof opensslClientPKI>>;
  let pkiDir: string;
  const escape = `/var/log/tskubelet-it-escape-${process.pid}`;
  const api = (path: string, o: { method?: string; cert?: ClientCert | null; headers?: Record<string, string> } = {}): Promise<ApiReply> =>
    kubeletApi({ port: k.port, path, method: o.method ?? "GET", cert: o.cert === null ? undefined : (o.cert ?? pki.client), ...(o.headers ? { headers: o.headers } : {}) });
  const podName = (n: string): string => `${n}-${k.nodeName}`;

  before(async () => {
    pkiDir = await mkdtemp(join(tmpdir(), "tskubelet-it-pki-"));
    [rt, pki] = await Promise.all([startContainerd({ cni: true }), opensslClientPKI(pkiDir, "it-admin", "system:masters")]);
    k = await startTskubelet(rt, { extraArgs: [`--client-ca-file=${pki.caFile}`, "--anonymous-auth=false", "--authorization-mode=AlwaysAllow"] });
    await k.writeManifest("ticker.yaml", podManifest("ticker", { command: ["sh", "-c", "echo start; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.3; done"] }));
    await k.writeManifest("web.yaml", podManifest("web", { command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"], ports: [8080] }));
    await k.writeManifest("crasher.yaml", podManifest("crasher", { command: ["sh", "-c", "echo instance-$(cat /proc/sys/kernel/random/uuid); sleep 1; exit 1"] }));
    await waitFor(async () => running(await k.pod("ticker")) && running(await k.pod("web")), { timeoutMs: 30_000, what: () => "ticker and web to run" });
  });
  after(async () => {
    await unlink(escape).catch(() => undefined);
    await k?.cleanup();
    await rt?.stop();
    await rm(pkiDir, { recursive: true, force: true });
  });

  it("serves HTTPS with the self-signed kubelet.crt / kubelet.key it generated in --cert-dir", async () => {
    const crt = join(k.certDir, "kubelet.crt");
    const key = join(k.certDir, "kubelet.key");
    assert.equal((await stat(crt)).mode & 0o777, 0o600);
    assert.equal((await stat(key)).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(k.certDir)).sort(), ["kubelet.crt", "kubelet.key"]);
    const text = await run("openssl", ["x509", "-in", crt, "-noout", "-subject", "-issuer", "-ext", "subjectAltName,extendedKeyUsage,basicConstraints", "-startdate", "-enddate"]);
    const ts = /subject=CN = it-node@(\d+)/.exec(text)?.[1];
    assert.ok(ts, text);
    assert.match(text, new RegExp(`issuer=CN = it-node-ca@${ts}`));
    assert.match(text, /DNS:it-node/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, /CA:FALSE/);
    const start = new Date(/notBefore=(.*)/.exec(text)?.[1] ?? "").getTime();
    const end = new Date(/notAfter=(.*)/.exec(text)?.[1] ?? "").getTime();
    assert.equal(start, Number(ts) * 1000 - 3600_000);
    assert.equal(end - start, 365 * 86400_000 + 3600_000);
    const pem = await readFile(crt, "utf8");
    assert.equal(pem.match(/BEGIN CERTIFICATE/g)?.length, 2, "leaf + CA");
    assert.match(await readFile(key, "utf8"), /^-----BEGIN RSA PRIVATE KEY-----/);
    assert.match(await run("openssl", ["rsa", "-in", key, "-noout", "-text"]), /Private-Key: \(2048 bit/);
    const served = (await api("/healthz")).peer;
    const leaf = new X509Certificate(pem);
    assert.equal(served?.fingerprint256, leaf.fingerprint256, "the served certificate is the file's leaf");
    // The process title: ss -p (and netstat -p, ps) name the owner of the port.
    const ss = await run("ss", ["-ltnpH", `sport = :${k.port}`]);
    assert.match(ss, new RegExp(`users:\\(\\("tskubelet",pid=${k.pid},`));
  });

  it("lets in an x509 client certificate from --client-ca-file; 401 without one or with a foreign one", async () => {
    assert.deepEqual([(await api("/healthz")).status, (await api("/healthz")).body], [200, "ok"]);
    const pods = JSON.parse((await api("/pods")).body) as { items: V1Pod[] };
    assert.ok(pods.items.some((p) => p.metadata?.name === podName("ticker")));
    for (const cert of [null, pki.foreign]) {
      const r = await api("/pods", { cert });
      assert.deepEqual([r.status, r.body], [401, "Unauthorized\n"]);
    }
    assert.match((await api("/configz")).body, /^\{"kubeletconfig":\{.*"authentication":\{/);
    assert.match((await api("/metrics")).body, /kubelet_node_name\{node="it-node"\} 1/);
    assert.match((await api("/metrics/probes")).body, /# TYPE prober_probe_total counter/);
    const rp = JSON.parse((await api("/runningpods/")).body) as { items: V1Pod[] };
    assert.ok(rp.items.some((p) => p.metadata?.name === podName("web") && p.spec?.containers[0]?.name === "main"));
  });

  it("containerLogs: tail, limitBytes, timestamps, and the 4xx answers", async () => {
    const base = `/containerLogs/default/${podName("ticker")}/main`;
    await waitFor(async () => (await api(`${base}?tailLines=3`)).body.split("\n").length >= 4, { timeoutMs: 10_000, what: () => "three ticks" });
    const tail = (await api(`${base}?tailLines=2`)).body;
    assert.match(tail, /^tick-\d+\ntick-\d+\n$/);
    assert.equal((await api(`${base}?tail=all&limitBytes=6`)).body, "start\n");
    assert.match((await api(`${base}?tailLines=1&timestamps=true`)).body, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z tick-\d+\n$/);
    assert.deepEqual(Object.values(await api(`/containerLogs/default/nope/main`)).slice(0, 2), [404, 'pod "nope" does not exist\n']);
    assert.equal((await api(`${base}?tailLines=-2`)).status, 422);
    assert.equal((await api(`/containerLogs/default/${podName("ticker")}`)).body, '{"message": "Missing container name."}\n');
  });

  it("containerLogs?follow=true sees new lines as they are written, and frees its watch when the client goes", async () => {
    const watches0 = await inotifyWatches(k.pid);
    let watchesDuring = -1;
    const seen = await new Promise<string>((resolve, reject) => {
      let text = "";
      const req = request({ host: "127.0.0.1", port: k.port, path: `/containerLogs/default/${podName("ticker")}/main?follow=true&tailLines=1`, rejectUnauthorized: false, agent: false, cert: pki.client.cert, key: pki.client.key }, (res) => {
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
          if (text.split("\n").length >= 4) {
            void inotifyWatches(k.pid).then((n) => {
              watchesDuring = n;
              req.destroy();
              resolve(text);
            });
          }
        });
      });
      req.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" ? undefined : reject(err)));
      req.setTimeout(10_000, () => req.destroy(new Error(`only ${JSON.stringify(text)} after 10 s`)));
      req.end();
    });
    const ticks = seen.trim().split("\n").map((l) => Number(/^tick-(\d+)$/.exec(l)?.[1]));
    assert.equal(ticks.length, 3);
    assert.ok(ticks[1] === (ticks[0] ?? 0) + 1 && ticks[2] === (ticks[1] ?? 0) + 1, `consecutive: ${seen}`);
    assert.equal(watchesDuring, watches0 + 1, "one directory watch while following");
    await waitFor(async () => (await inotifyWatches(k.pid)) === watches0, { timeoutMs: 5_000, what: () => "the follower's watch to be released" });
  });

  it("containerLogs?previous=true reads the instance before a restart", async () => {
    const pod = await waitFor(async () => {
      const p = await k.pod("crasher");
      return (p?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && p?.status?.containerStatuses?.[0]?.lastState?.terminated ? p : undefined;
    }, { timeoutMs: 40_000, what: () => "crasher to restart" });
    const cs = pod.status?.containerStatuses?.[0];
    const base = `/containerLogs/default/${podName("crasher")}/main`;
    const prev = await api(`${base}?previous=true`);
    assert.equal(prev.status, 200, prev.body);
    assert.match(prev.body, /^instance-[0-9a-f-]{36}\n$/);
    const cur = await waitFor(async () => {
      const r = await api(base);
      return r.status === 200 && /^instance-/.test(r.body) ? r.body : undefined;
    }, { timeoutMs: 20_000, what: () => `current crasher logs (restarts ${cs?.restartCount})` });
    assert.notEqual(cur, prev.body, "two different instances");
  });

  it("/run executes a command in the container (ExecSync)", async () => {
    const r = await api(`/run/default/${podName("ticker")}/main?cmd=echo%20hello%20from%20run`, { method: "POST" });
    assert.deepEqual([r.status, r.body], [200, "hello from run\n"]);
    const bad = await api(`/run/default/${podName("ticker")}/main?cmd=ls%20/nonexistent`, { method: "POST" });
    assert.equal(bad.status, 500);
    assert.match(bad.body, /^command 'ls \/nonexistent' exited with 1: ls: \/nonexistent: No such file or directory/);
  });

  it("exec over a v4.channel.k8s.io websocket, proxied to containerd: stdout, stderr and the exit status", async () => {
    const cmd = ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"].map((c) => `command=${encodeURIComponent(c)}`).join("&");
    const ws = await openWebSocket({ url: `wss://127.0.0.1:${k.port}/exec/default/${podName("ticker")}/main?${cmd}&output=1&error=1`, protocols: ["v4.channel.k8s.io"], tls: { rejectUnauthorized: false, cert: pki.client.cert, key: pki.client.key } });
    assert.ok(!isRefusal(ws), JSON.stringify(ws));
    assert.equal(ws.protocol, "v4.channel.k8s.io");
    const ch = byChannel(await ws.all());
    assert.equal(ch.get(1)?.toString(), "to-out\n");
    assert.equal(ch.get(2)?.toString(), "to-err\n");
    const status = JSON.parse(ch.get(3)?.toString() ?? "{}") as { status: string; reason: string; details: { causes: { reason: string; message: string }[] } };
    assert.equal(status.status, "Failure");
    assert.equal(status.reason, "NonZeroExitCode");
    assert.deepEqual(status.details.causes, [{ reason: "ExitCode", message: "3" }]);

    const ok = await openWebSocket({ url: `wss://127.0.0.1:${k.port}/exec/default/${podName("ticker")}/main?command=hostname&output=1`, protocols: ["v4.channel.k8s.io"], tls: { rejectUnauthorized: false, cert: pki.client.cert, key: pki.client.key } });
    assert.ok(!isRefusal(ok));
    const okCh = byChannel(await ok.all());
    assert.equal(okCh.get(1)?.toString(), `${podName("ticker")}\n`);
    assert.deepEqual(JSON.parse(okCh.get(3)?.toString() ?? "{}"), { metadata: {}, status: "Success" });

    const anon = await openWebSocket({ url: `wss://127.0.0.1:${k.port}/exec/default/${podName("ticker")}/main?command=id&output=1`, tls: { rejectUnauthorized: false } });
    assert.ok(isRefusal(anon) && anon.status === 401);
  });

  it("port-forward over a websocket reaches busybox httpd in the pod", async () => {
    const ws = await openWebSocket({ url: `wss://127.0.0.1:${k.port}/portForward/default/${podName("web")}?port=8080`, protocols: ["v4.channel.k8s.io"], tls: { rejectUnauthorized: false, cert: pki.client.cert, key: pki.client.key } });
    assert.ok(!isRefusal(ws), JSON.stringify(ws));
    ws.sendBinary(Buffer.concat([Buffer.from([0]), Buffer.from("GET / HTTP/1.0\r\nHost: x\r\n\r\n")]));
    let data = Buffer.alloc(0);
    const deadline = Date.now() + 10_000;
    while (!data.toString("latin1").includes("tskubelet test image") && Date.now() < deadline) {
      const m = await ws.next(10_000);
      if (!m) break;
      if (m.data[0] === 0) data = Buffer.concat([data, m.data.subarray(1)]);
    }
    ws.close();
    assert.deepEqual([...data.subarray(0, 2)], [0x90, 0x1f], "the data channel starts with the port, little-endian");
    const text = data.subarray(2).toString("latin1");
    assert.match(text, /^HTTP\/1\.[01] 200 OK\r\n/);
    assert.match(text, /tskubelet test image/);
  });

  it("/logs/ lists /var/log and refuses .., encoded .. and symlinks out of it", async () => {
    const list = await api("/logs/");
    assert.equal(list.status, 200);
    assert.match(list.body, /^<!doctype html>/);
    for (const p of ["/logs/..%2f..%2fetc%2fpasswd", "/logs/%2e%2e%2fetc/passwd", "/logs/x%00"]) assert.equal((await api(p)).status, 400, p);
    assert.equal((await api("/logs/../etc/passwd")).status, 404);
    await symlink("/etc", escape);
    const out = await api(`/logs/${escape.slice("/var/log/".length)}/passwd`);
    assert.equal(out.status, 403);
    assert.ok(!out.body.includes("root:"));
  });

  it("200 concurrent requests leave open files and heap back near their baseline", async () => {
    const fds = async (): Promise<number> => (await readdir(`/proc/${k.pid}/fd`)).length;
    const heapUsed = async (): Promise<number> => {
      // A heap snapshot runs a full GC first; then the process metrics show the live heap.
      await kubeletApi({ port: k.port, path: "/debug/pprof/heap", cert: pki.client, timeoutMs: 60_000 });
      const m = (await api("/metrics")).body;
      return Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(m)?.[1]);
    };
    const paths = ["/healthz", "/pods", "/metrics", `/containerLogs/default/${podName("ticker")}/main?tailLines=5`, "/runningpods/", "/healthz/syncloop", "/nope"];
    const burst = (): Promise<ApiReply[]> => Promise.all(Array.from({ length: 200 }, (_, i) => api(paths[i % paths.length] ?? "/healthz")));
    await burst(); // warm up: code paths compiled, pools filled
    await sleep(500);
    const fd0 = await fds();
    const heap0 = await heapUsed();
    const t0 = Date.now();
    const replies = await burst();
    const ms = Date.now() - t0;
    assert.equal(replies.filter((r) => r.status !== 200 && r.status !== 404).length, 0, replies.map((r) => r.status).join(","));
    const fd1 = await waitFor(async () => {
      const n = await fds();
      return n <= fd0 + 2 ? n : undefined;
    }, { timeoutMs: 10_000, what: () => `open fds back to ${fd0}` });
    const heap1 = await heapUsed();
    console.log(`200 concurrent HTTPS requests in ${ms} ms; fds ${fd0} -> ${fd1}; heap ${(heap0 / 1e6).toFixed(1)} MB -> ${(heap1 / 1e6).toFixed(1)} MB`);
    assert.ok(heap1 < heap0 + 8e6, `heap grew from ${heap0} to ${heap1}`);
  });

  it("with --enable-debugging-handlers=false the debugging paths answer 405", async () => {
    await k.stop();
    const k2 = await startTskubelet(rt, { nodeName: "it-node2", extraArgs: ["--enable-debugging-handlers=false"] });
    try {
      for (const [p, m] of [["/exec/default/x/main", "POST"], ["/containerLogs/default/x/main", "GET"], ["/logs/", "GET"], ["/run/default/x/main", "POST"], ["/portForward/default/x", "POST"], ["/runningpods/", "GET"], ["/debug/pprof/heap", "GET"]] as const) {
        const r = await kubeletApi({ port: k2.port, path: p, method: m });
        assert.deepEqual([r.status, r.body], [405, "Debug endpoints are disabled.\n"], p);
      }
      assert.equal((await kubeletApi({ port: k2.port, path: "/healthz" })).status, 200, "flags only: anonymous and AlwaysAllow");
    } finally {
      await k2.cleanup();
    }
  });
});
