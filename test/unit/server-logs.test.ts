import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, open, rename, rm, symlink, writeFile } from "node:fs/promises";
import { request, type Server, type ServerResponse } from "node:http";
import { EventEmitter } from "node:events";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { HttpError, closeServer, createHttpServer, createRouter, listen } from "../../src/server/http.js";
import { containerLogsPath, logContainer, parseLogQuery, systemLogSegments, systemLogsHandler, writeWithBackpressure } from "../../src/server/logs.js";
import { LogWriter, fsDirWatch, parseCriLogLine, parseTimestamp, readContainerLog, tailStartOffset, type DirWatch, type LogMessage } from "../../src/server/logs-reader.js";
import { FakeClock, systemClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

const T0 = "2026-01-02T03:04:05.123456789Z";
const line = (ts: string, stream: string, tag: string, text: string): string => `${ts} ${stream} ${tag} ${text}\n`;

function msg(l: string, newline = true): LogMessage {
  const m = parseCriLogLine(Buffer.from(l), newline);
  assert.ok(m, `parses ${l}`);
  return m;
}

describe("CRI log lines", () => {
  it("parses full and partial lines, both streams, forward-compatible tags", () => {
    const f = msg("2026-01-02T03:04:05.1Z stdout F hello world");
    assert.equal(f.stream, "stdout");
    assert.equal(f.content.toString(), "hello world\n");
    assert.equal(f.timestamp, "2026-01-02T03:04:05.100000000Z");
    assert.equal(msg("2026-01-02T03:04:05Z stderr P part").content.toString(), "part");
    assert.equal(msg("2026-01-02T03:04:05Z stdout P:extra x").content.toString(), "x");
    assert.equal(msg("2026-01-02T03:04:05Z stdout F ").content.toString(), "\n");
    assert.equal(msg("2026-01-02T03:04:05Z stdout F  two  spaces ").content.toString(), " two  spaces \n");
    assert.equal(msg("2026-01-02T03:04:05Z stdout F no-newline", false).content.toString(), "no-newline");
  });
  it("rejects lines that are not CRI", () => {
    for (const l of ["", "garbage", "2026-01-02T03:04:05Z stdin F x", "notatime stdout F x", "2026-01-02T03:04:05Z stdout"]) {
      assert.equal(parseCriLogLine(Buffer.from(l), true), undefined, l);
    }
  });
  it("timestamps keep nanoseconds and their zone", () => {
    const a = parseTimestamp("2026-01-02T03:04:05.000000001Z");
    const b = parseTimestamp("2026-01-02T04:04:05.000000002+01:00");
    assert.ok(a && b);
    assert.equal(b.timeNs - a.timeNs, 1n);
    assert.equal(b.fixed, "2026-01-02T04:04:05.000000002+01:00");
    assert.equal(parseTimestamp("2026-01-02 03:04:05Z"), undefined);
  });
});

describe("LogWriter", () => {
  const run = (opts: ConstructorParameters<typeof LogWriter>[0], lines: string[]): string => {
    let out = "";
    const w = new LogWriter(opts, (c) => {
      out += c.toString();
      return Promise.resolve();
    });
    for (const l of lines) if (!w.write(msg(l))) break;
    void w.flush();
    return out;
  };
  const lines = [
    "2026-01-02T03:04:05.1Z stdout P par",
    "2026-01-02T03:04:05.2Z stdout F tial",
    "2026-01-02T03:04:06Z stderr F second",
  ];
  it("joins partial lines; timestamps only start logical lines", () => {
    assert.equal(run({ timestamps: false }, lines), "partial\nsecond\n");
    assert.equal(run({ timestamps: true }, lines), "2026-01-02T03:04:05.100000000Z partial\n2026-01-02T03:04:06.000000000Z second\n");
  });
  it("skips lines before since", () => {
    const since = parseTimestamp("2026-01-02T03:04:05.5Z")?.timeNs;
    assert.equal(run({ timestamps: false, sinceNs: since }, lines), "second\n");
  });
  it("stops at limitBytes, cutting the last line", () => {
    assert.equal(run({ timestamps: false, limitBytes: 10 }, lines), "partial\nse");
    assert.equal(run({ timestamps: true, limitBytes: 5 }, lines), "2026-");
  });
});

describe("reading log files", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tskubelet-logs-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const body = [line(T0, "stdout", "F", "one"), line(T0, "stderr", "F", "two"), line(T0, "stdout", "P", "thr"), line(T0, "stdout", "F", "ee"), line(T0, "stdout", "F", "four")].join("");

  async function read(path: string, o: Partial<Parameters<typeof readContainerLog>[0]> = {}): Promise<string> {
    let out = "";
    await readContainerLog({
      path,
      follow: false,
      timestamps: false,
      signal: new AbortController().signal,
      sink: (c) => {
        out += c.toString();
        return Promise.resolve();
      },
      isRunning: () => Promise.resolve(false),
      clock: systemClock,
      ...o,
    });
    return out;
  }

  it("finds where the last n lines start (file lines, as upstream counts them)", async () => {
    const p = join(dir, "tail.log");
    await writeFile(p, "a\nbb\nccc\n");
    const fh = await open(p, "r");
    try {
      assert.deepEqual(await Promise.all([0, 1, 2, 3, 10].map((n) => tailStartOffset(fh, n))), [9, 5, 2, 0, 0]);
    } finally {
      await fh.close();
    }
    await writeFile(p, "a\nbb\nccc");
    const fh2 = await open(p, "r");
    try {
      assert.deepEqual(await Promise.all([0, 1].map((n) => tailStartOffset(fh2, n))), [5, 2]);
    } finally {
      await fh2.close();
    }
  });
  it("reads everything, a tail, a byte limit, with timestamps, and an incomplete last line", async () => {
    const p = join(dir, "0.log");
    await writeFile(p, body + `${T0} stdout F unfinished`);
    assert.equal(await read(p), "one\ntwo\nthree\nfour\nunfinished");
    // Upstream counts newline-terminated file lines: an unfinished last line comes on top.
    assert.equal(await read(p, { tailLines: 1 }), "four\nunfinished");
    assert.equal(await read(p, { tailLines: 0 }), "unfinished");
    assert.equal(await read(p, { limitBytes: 6 }), "one\ntw");
    await writeFile(p, body);
    assert.equal(await read(p, { tailLines: 2 }), "ee\nfour\n", "a tail can start inside a partial line, as upstream's");
    assert.equal(await read(p, { tailLines: 3 }), "three\nfour\n");
    assert.equal(await read(p, { tailLines: 0 }), "");
    assert.equal(await read(p, { tailLines: 1, timestamps: true }), "2026-01-02T03:04:05.123456789Z four\n");
  });
  it("skips lines it cannot parse and tells", async () => {
    const p = join(dir, "bad.log");
    await writeFile(p, "junk\n" + line(T0, "stdout", "F", "ok"));
    const bad: string[] = [];
    assert.equal(await read(p, { onBadLine: (l) => bad.push(l.toString()) }), "ok\n");
    assert.deepEqual(bad, ["junk"]);
  });
  it("reads a big file in blocks, with backpressure", async () => {
    const p = join(dir, "big.log");
    const n = 20_000;
    await writeFile(p, Array.from({ length: n }, (_, i) => line(T0, "stdout", "F", `line ${i}`)).join(""));
    const out = await read(p);
    assert.equal(out.split("\n").length, n + 1);
    assert.ok(out.endsWith(`line ${n - 1}\n`));
  });

  it("follows new lines and log rotation, stops when the container stops, frees its watcher", async () => {
    const sub = join(dir, "follow");
    await mkdir(sub);
    const p = join(sub, "0.log");
    await writeFile(p, line(T0, "stdout", "F", "first"));
    let running = true;
    let watchers = 0;
    const watch: DirWatch = (d, cb) => {
      watchers++;
      const close = fsDirWatch(d, cb);
      return () => {
        watchers--;
        close();
      };
    };
    let out = "";
    const done = readContainerLog({
      path: p,
      follow: true,
      timestamps: false,
      signal: new AbortController().signal,
      sink: (c) => {
        out += c.toString();
        return Promise.resolve();
      },
      isRunning: () => Promise.resolve(running),
      clock: systemClock,
      watch,
      pollMs: 200,
    });
    const waitOut = async (want: string): Promise<void> => {
      for (let i = 0; i < 100 && !out.includes(want); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(out.includes(want), `saw ${JSON.stringify(want)} in ${JSON.stringify(out)}`);
    };
    await waitOut("first\n");
    await appendFile(p, line(T0, "stdout", "F", "second"));
    await waitOut("second\n");
    assert.equal(watchers, 1);
    // Rotation as containerd does it: rename, then a new file at the same path.
    await appendFile(p, line(T0, "stdout", "F", "last-before-rotate"));
    await rename(p, `${p}.20260102-030405`);
    await writeFile(p, line(T0, "stdout", "F", "after-rotate"));
    await waitOut("after-rotate\n");
    assert.ok(out.indexOf("last-before-rotate") < out.indexOf("after-rotate"), "the old file is drained first");
    await appendFile(p, line(T0, "stdout", "F", "final words"));
    running = false;
    await done;
    assert.equal(out, "first\nsecond\nlast-before-rotate\nafter-rotate\nfinal words\n");
    assert.equal(watchers, 0);
  });

  it("an aborted follow (client gone) ends at once and frees its watcher", async () => {
    const p = join(dir, "abort.log");
    await writeFile(p, line(T0, "stdout", "F", "x"));
    let watchers = 0;
    const ctl = new AbortController();
    const t0 = Date.now();
    const done = readContainerLog({
      path: p,
      follow: true,
      timestamps: false,
      signal: ctl.signal,
      sink: () => Promise.resolve(),
      isRunning: () => Promise.resolve(true),
      clock: systemClock,
      watch: () => {
        watchers++;
        return () => watchers--;
      },
      pollMs: 60_000,
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(watchers, 1);
    ctl.abort();
    await done;
    assert.equal(watchers, 0);
    assert.ok(Date.now() - t0 < 2000);
  });
});

describe("PodLogOptions from the query", () => {
  const now = Date.UTC(2026, 0, 2, 3, 4, 5);
  const q = (s: string) => parseLogQuery(new URLSearchParams(s), now);
  const status = (f: () => unknown): number => {
    try {
      f();
    } catch (err) {
      if (err instanceof HttpError) return err.status;
      throw err;
    }
    return 200;
  };
  it("decodes options as upstream does", () => {
    assert.deepEqual(q(""), { follow: false, previous: false, timestamps: false });
    assert.deepEqual(q("follow=true&previous=1&timestamps=True&tailLines=5&limitBytes=100"), { follow: true, previous: true, timestamps: true, tailLines: 5, limitBytes: 100 });
    assert.deepEqual(q("follow=false&previous=0&timestamps=f"), { follow: false, previous: false, timestamps: false });
    assert.equal(q("tail=7").tailLines, 7);
    assert.equal(q("tail=all&tailLines=3").tailLines, undefined);
    assert.equal(q("sinceSeconds=10").sinceNs, BigInt(now - 10_000) * 1_000_000n);
    assert.equal(q("sinceTime=2026-01-02T03:04:00Z").sinceNs, BigInt(now - 5_000) * 1_000_000n);
    assert.deepEqual(q("stream=All").follow, false);
  });
  it("400 for what does not decode, 422 for what is invalid", () => {
    for (const s of ["tailLines=x", "tail=ten", "limitBytes=1.5", "sinceTime=yesterday", "sinceSeconds=9999999999999999999"]) assert.equal(status(() => q(s)), 400, s);
    for (const s of ["tailLines=-1", "limitBytes=0", "sinceSeconds=0", "sinceSeconds=5&sinceTime=2026-01-02T03:04:00Z", "stream=Stdout"]) assert.equal(status(() => q(s)), 422, s);
  });
  it("names what is missing in the path", () => {
    const msgOf = (p: string): string => {
      try {
        containerLogsPath(p);
      } catch (err) {
        return err instanceof HttpError ? `${err.status} ${err.message}` : "?";
      }
      return "ok";
    };
    assert.deepEqual(containerLogsPath("/containerLogs/ns/pod/ctr"), { namespace: "ns", pod: "pod", container: "ctr" });
    assert.equal(msgOf("/containerLogs/ns"), '400 {"message": "Missing podID."}');
    assert.equal(msgOf("/containerLogs/ns/pod"), '400 {"message": "Missing container name."}');
    assert.equal(msgOf("/containerLogs/ns/pod/"), '400 {"message": "Missing container name."}');
    assert.equal(msgOf("/containerLogs//pod/c"), '400 {"message": "Missing podNamespace."}');
    assert.equal(msgOf("/containerLogs/ns/pod/c/extra"), "404 404 page not found");
  });
});

describe("which container instance to read", () => {
  const pod = (cs: object): V1Pod => ({ metadata: { name: "p" }, status: { containerStatuses: [{ name: "c", image: "i", imageID: "", ready: false, restartCount: 2, ...cs }] } });
  const pick = (p: V1Pod, previous = false): string => {
    try {
      const r = logContainer(p, "c", previous);
      return `${r.id}@${r.restartCount}`;
    } catch (err) {
      return err instanceof HttpError ? `${err.status} ${err.message}` : "?";
    }
  };
  it("follows upstream's rules", () => {
    const running = pod({ containerID: "containerd://cur", state: { running: {} }, lastState: { terminated: { exitCode: 1, containerID: "containerd://prev" } } });
    assert.equal(pick(running), "cur@2");
    assert.equal(pick(running, true), "prev@1");
    assert.equal(pick(pod({ state: { running: {} } }), true), '400 previous terminated container "c" in pod "p" not found');
    assert.equal(pick(pod({ state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { exitCode: 1, containerID: "containerd://prev" } } })), "prev@1");
    assert.equal(pick(pod({ state: { waiting: { reason: "ImagePullBackOff" } } })), '400 container "c" in pod "p" is waiting to start: trying and failing to pull image');
    assert.equal(pick(pod({ state: { waiting: { reason: "ContainerCreating" } } })), '400 container "c" in pod "p" is waiting to start: ContainerCreating');
    assert.equal(pick({ metadata: { name: "p" }, status: {} }), '400 container "c" in pod "p" is not available');
  });
});

describe("/logs/ (files under the log directory, and no way out)", () => {
  let root: string;
  let outside: string;
  let server: Server;
  let port = 0;
  before(async () => {
    const base = await mkdtemp(join(tmpdir(), "tskubelet-varlog-"));
    root = join(base, "log");
    outside = join(base, "secret");
    await mkdir(join(root, "sub"), { recursive: true });
    await mkdir(outside);
    await writeFile(join(root, "syslog"), "hello syslog\n");
    await writeFile(join(root, "sub", "a<b>.log"), "in sub\n");
    await writeFile(join(root, "bin.dat"), Buffer.from([0, 1, 2, 3]));
    await writeFile(join(outside, "passwd"), "root:x:0:0\n");
    await symlink(join(outside, "passwd"), join(root, "leak"));
    await symlink(outside, join(root, "leakdir"));
    await symlink("/etc", join(root, "etc"));
    await symlink(join(root, "syslog"), join(root, "sub", "inside-link"));
    const { logger } = memoryLogger();
    const handler = systemLogsHandler({ root });
    const router = createRouter([{ pattern: "/logs", methods: ["GET"], handler }, { pattern: "/logs/*", methods: ["GET"], handler }], { serverType: "test", logger });
    server = createHttpServer(router);
    await listen(server, 0, "127.0.0.1");
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await closeServer(server);
    await rm(join(root, ".."), { recursive: true, force: true });
  });
  const get = (path: string): Promise<{ status: number; body: string; type: string; location: string }> =>
    new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
        let body = "";
        res.setEncoding("latin1");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers["content-type"] ?? ""), location: String(res.headers.location ?? "") }));
      });
      req.on("error", reject);
      req.end();
    });

  it("lists directories and serves files", async () => {
    const list = await get("/logs/");
    assert.equal(list.status, 200);
    assert.match(list.type, /text\/html/);
    assert.match(list.body, /<a href="syslog">syslog<\/a>/);
    assert.match(list.body, /<a href="sub\/">sub\/<\/a>/);
    const f = await get("/logs/syslog");
    assert.deepEqual([f.status, f.body, f.type], [200, "hello syslog\n", "text/plain; charset=utf-8"]);
    assert.equal((await get("/logs/bin.dat")).type, "application/octet-stream");
    const sub = await get("/logs/sub");
    assert.deepEqual([sub.status, sub.location], [301, "/logs/sub/"]);
    assert.match((await get("/logs/sub/")).body, /a&#60;b&#62;\.log/);
    assert.equal((await get("/logs/sub/a%3Cb%3E.log")).body, "in sub\n");
    assert.equal((await get("/logs/sub/inside-link")).body, "hello syslog\n", "a symlink that stays inside is fine");
    assert.equal((await get("/logs/missing")).status, 404);
  });
  it("refuses .., encoded .., NUL and symlinks that lead out", async () => {
    for (const p of ["/logs/..%2fsecret%2fpasswd", "/logs/sub%2f..%2f..%2fsecret/passwd", "/logs/%2e%2e%2fsecret", "/logs/a%00b", "/logs/%zz"]) {
      const r = await get(p);
      assert.equal(r.status, 400, p);
      assert.ok(!r.body.includes("root:x"), p);
    }
    for (const p of ["/logs/leak", "/logs/leakdir/", "/logs/leakdir/passwd", "/logs/etc/passwd", "/logs/etc/"]) {
      const r = await get(p);
      assert.equal(r.status, 403, p);
      assert.ok(!r.body.includes("root:"), p);
    }
    // Dot segments are removed before routing: these never reach /logs/ at all.
    for (const p of ["/logs/../secret/passwd", "/logs/%2e%2e/secret/passwd", "/logs/.%2E/.%2e/etc/passwd"]) {
      const r = await get(p);
      assert.equal(r.status, 404, p);
    }
  });
  it("splits paths into safe segments", () => {
    assert.deepEqual(systemLogSegments("/logs/a/./b//c"), ["a", "b", "c"]);
    assert.deepEqual(systemLogSegments("/logs/"), []);
    assert.throws(() => systemLogSegments("/logs/a/..%2F..%2Fb"), HttpError);
  });
});

describe("a client that stops reading", () => {
  it("is waited for until drain, and dropped after the stall timeout", async () => {
    const clock = new FakeClock();
    class StuckResponse extends EventEmitter {
      destroyed = false;
      writes = 0;
      write(): boolean {
        this.writes++;
        return false;
      }
      destroy(): void {
        this.destroyed = true;
        this.emit("close");
      }
    }
    const res = new StuckResponse();
    const signal = new AbortController().signal;
    const asRes = res as unknown as ServerResponse;
    let settled = false;
    const first = writeWithBackpressure(asRes, Buffer.from("a"), { clock, timeoutMs: 5_000, signal }).then(() => (settled = true));
    await clock.advance(4_000);
    assert.equal(settled, false);
    res.emit("drain");
    await first;
    const second = writeWithBackpressure(asRes, Buffer.from("b"), { clock, timeoutMs: 5_000, signal });
    await clock.advance(5_000);
    await second;
    assert.equal(res.destroyed, true);
    assert.equal(clock.pendingTimers(), 0, "no timer left behind");
    assert.equal(res.listenerCount("drain") + res.listenerCount("close"), 0, "no listener left behind");
  });
});
