/**
 * The gRPC client against an in-process gRPC server on a temporary unix socket: error mapping,
 * deadlines, int64 <-> bigint conversion in both directions, streams.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { checkVersion, createImageService, createRuntimeService, CriError, parseEndpoint } from "../../src/cri/index.js";
import { protoPath } from "../../src/cri/transport.js";

type Impl = Record<string, grpc.UntypedHandleCall>;

interface TestServer {
  endpoint: string;
  socketPath: string;
  /** Requests as the server decoded them (int64 as decimal strings), by RPC name. */
  seen: Map<string, unknown[]>;
  stop(): Promise<void>;
}

let dir = "";
let serverSeq = 0;

async function startServer(runtime: Impl, image: Impl = {}): Promise<TestServer> {
  serverSeq += 1;
  const socketPath = join(dir, `s${serverSeq}.sock`);
  const def = protoLoader.loadSync(protoPath(), { longs: String, enums: String, defaults: true, oneofs: true, keepCase: false });
  const server = new grpc.Server();
  const seen = new Map<string, unknown[]>();
  const record = (impl: Impl): Impl =>
    Object.fromEntries(
      Object.entries(impl).map(([k, h]) => [
        k,
        ((call: { request: unknown }, cb: unknown) => {
          seen.set(k, [...(seen.get(k) ?? []), call.request]);
          (h as (c: unknown, cb: unknown) => void)(call, cb);
        }) as grpc.UntypedHandleCall,
      ]),
    );
  server.addService(def["runtime.v1.RuntimeService"] as grpc.ServiceDefinition, record(runtime));
  server.addService(def["runtime.v1.ImageService"] as grpc.ServiceDefinition, record(image));
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  return {
    endpoint: `unix://${socketPath}`,
    socketPath,
    seen,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

type Callback = (err: Partial<grpc.StatusObject> | null, value?: unknown) => void;
const unary = (fn: (req: Record<string, unknown>) => unknown): grpc.UntypedHandleCall =>
  ((call: { request: Record<string, unknown> }, cb: Callback) => {
    try {
      cb(null, fn(call.request));
    } catch (err) {
      cb(err as Partial<grpc.StatusObject>);
    }
  }) as grpc.UntypedHandleCall;
const failWith = (code: grpc.status, details: string): grpc.UntypedHandleCall =>
  ((_call: unknown, cb: Callback) => cb({ code, details })) as grpc.UntypedHandleCall;
const never: grpc.UntypedHandleCall = (() => undefined) as grpc.UntypedHandleCall;

async function criErr(p: Promise<unknown>): Promise<CriError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CriError, `not a CriError: ${String(err)}`);
    return err;
  }
  assert.fail("expected a CriError");
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsk-cri-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

void describe("parseEndpoint", () => {
  void it("accepts unix:///path, unix:/path and /path", () => {
    assert.deepEqual(parseEndpoint("unix:///run/containerd/containerd.sock"), {
      url: "unix:///run/containerd/containerd.sock",
      socketPath: "/run/containerd/containerd.sock",
    });
    assert.equal(parseEndpoint("unix:/run/x.sock").url, "unix:///run/x.sock");
    assert.equal(parseEndpoint("/run/x.sock").socketPath, "/run/x.sock");
  });
  void it("refuses other forms with the accepted one in the message", () => {
    for (const bad of ["tcp://127.0.0.1:1234", "unix://run/x.sock", "run/x.sock", "", "npipe:////./pipe/x"]) {
      assert.throws(() => parseEndpoint(bad), (err: unknown) => err instanceof CriError && err.code === "InvalidArgument" && /unix:\/\/\//.test(err.message), bad);
    }
  });
});

void describe("CRI client error mapping", () => {
  void it("a missing socket is Unavailable and says so", async () => {
    const socket = join(dir, "nope.sock");
    const rs = createRuntimeService(`unix://${socket}`, { timeoutMs: 2000 });
    const err = await criErr(rs.runPodSandbox({ metadata: { name: "a", uid: "b", namespace: "c", attempt: 0 } }));
    assert.equal(err.code, "Unavailable");
    assert.equal(err.rpc, "RunPodSandbox");
    assert.equal(
      err.message,
      `CRI RunPodSandbox on unix://${socket}: runtime unavailable (is containerd running? socket ${socket} does not exist)`,
    );
    rs.close();
  });

  void it("a path that is not a socket is Unavailable and says so", async () => {
    const file = join(dir, "regular-file");
    await writeFile(file, "");
    const rs = createRuntimeService(file, { timeoutMs: 2000 });
    const err = await criErr(rs.version());
    assert.equal(err.code, "Unavailable");
    assert.match(err.message, /exists but is not a socket/);
    rs.close();
  });

  void it("UNIMPLEMENTED is Unimplemented; supportsContainerEvents() is false", async () => {
    const srv = await startServer({});
    const calls: [string, boolean][] = [];
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 2000, onCall: (op, ms, e) => calls.push([op, e !== undefined && ms >= 0]) });
    const err = await criErr(rs.version());
    assert.equal(err.code, "Unimplemented");
    assert.equal(err.grpcCode, grpc.status.UNIMPLEMENTED);
    assert.match(err.message, new RegExp(`^CRI Version on ${srv.endpoint}: not implemented by this runtime`));
    assert.equal(await rs.supportsContainerEvents(), false);
    assert.deepEqual(calls, [["version", true], ["get_container_events", false]]);
    rs.close();
    await srv.stop();
  });

  void it("a call that hangs past the deadline is DeadlineExceeded; per-call timeouts override the default", async () => {
    const srv = await startServer({ ListContainers: never, ListPodSandbox: never });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 150 });
    const t0 = performance.now();
    const err = await criErr(rs.listContainers());
    const took = performance.now() - t0;
    assert.equal(err.code, "DeadlineExceeded");
    assert.match(err.message, /ListContainers .*: no answer within 150ms \(deadline exceeded\)/);
    assert.ok(took >= 140 && took < 2000, `took ${took}ms`);
    const rs2 = createRuntimeService(srv.endpoint, { timeoutMs: 60_000 });
    const err2 = await criErr(rs2.listPodSandbox(undefined, { timeoutMs: 100 }));
    assert.equal(err2.code, "DeadlineExceeded");
    assert.match(err2.message, /within 100ms/);
    rs.close();
    rs2.close();
    await srv.stop();
  });

  void it("maps NOT_FOUND, INVALID_ARGUMENT and others, keeping the runtime's text and the gRPC code", async () => {
    const srv = await startServer({
      ContainerStatus: failWith(grpc.status.NOT_FOUND, 'an error occurred when try to find container "x": not found'),
      StartContainer: failWith(grpc.status.INVALID_ARGUMENT, "bad"),
      StopContainer: failWith(grpc.status.FAILED_PRECONDITION, "nope"),
    });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 2000 });
    const nf = await criErr(rs.containerStatus("x"));
    assert.equal(nf.code, "NotFound");
    assert.equal(nf.message, `CRI ContainerStatus on ${srv.endpoint}: an error occurred when try to find container "x": not found`);
    assert.equal((await criErr(rs.startContainer("x"))).code, "InvalidArgument");
    const other = await criErr(rs.stopContainer("x", 0));
    assert.equal(other.code, "Unknown");
    assert.equal(other.grpcCode, grpc.status.FAILED_PRECONDITION);
    assert.equal(other.details, "nope");
    rs.close();
    await srv.stop();
  });

  void it("an aborted call rejects promptly as cancelled", async () => {
    const srv = await startServer({ ListContainers: never });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 10_000 });
    const ac = new AbortController();
    const p = rs.listContainers(undefined, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("pod deleted")), 50);
    const err = await criErr(p);
    assert.equal(err.grpcCode, grpc.status.CANCELLED);
    assert.match(err.message, /cancelled by caller \(pod deleted\)/);
    rs.close();
    await criErr(rs.version()).then((e) => assert.match(e.message, /client is closed/));
    await srv.stop();
  });

  void it("checkVersion accepts v1 and refuses anything else", async () => {
    let api = "v1";
    const srv = await startServer({
      Version: unary((req) => ({ version: req.version, runtimeName: "containerd", runtimeVersion: "1.6.20", runtimeApiVersion: api })),
    });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 2000 });
    assert.equal((await checkVersion(rs)).runtimeVersion, "1.6.20");
    assert.deepEqual(srv.seen.get("Version"), [{ version: "0.1.0" }]);
    api = "v1alpha2";
    const err = await criErr(checkVersion(rs));
    assert.match(err.message, /containerd 1\.6\.20 speaks CRI API "v1alpha2", but tskubelet needs runtime\.v1/);
    rs.close();
    await srv.stop();
  });
});

void describe("CRI client conversions", () => {
  const MAX_INT64 = 2n ** 63n - 1n;
  const MAX_UINT64 = 2n ** 64n - 1n;
  const GO_ZERO_TIME = -6795364578871345152n;

  void it("sends every int64 as an exact decimal string", async () => {
    const srv = await startServer({ CreateContainer: unary(() => ({ containerId: "c1" })) });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 2000 });
    const big = 2n ** 62n + 1n;
    const id = await rs.createContainer(
      "sb",
      {
        metadata: { name: "c", attempt: 1 },
        image: { image: "busybox" },
        labels: { a: "b" },
        linux: {
          resources: { memoryLimitInBytes: big, cpuQuota: -1n, cpuPeriod: 100_000n, unified: { "memory.high": "1" } },
          securityContext: { runAsUser: { value: 0n }, supplementalGroups: [MAX_INT64, 7n], namespaceOptions: { network: "NODE", pid: "CONTAINER", ipc: "POD" } },
        },
      },
      { metadata: { name: "p", uid: "u", namespace: "n", attempt: 0 }, linux: { overhead: { cpuShares: 2n } } },
    );
    assert.equal(id, "c1");
    const req = srv.seen.get("CreateContainer")?.[0] as {
      config: { linux: { resources: Record<string, unknown>; securityContext: Record<string, unknown> }; labels: unknown; metadata: unknown };
      sandboxConfig: { linux: { overhead: Record<string, unknown> } };
    };
    assert.equal(req.config.linux.resources.memoryLimitInBytes, big.toString());
    assert.equal(req.config.linux.resources.cpuQuota, "-1");
    assert.equal(req.config.linux.resources.cpuPeriod, "100000");
    assert.deepEqual(req.config.linux.resources.unified, { "memory.high": "1" });
    assert.deepEqual(req.config.linux.securityContext.supplementalGroups, [MAX_INT64.toString(), "7"]);
    assert.deepEqual(req.config.linux.securityContext.runAsUser, { value: "0" });
    assert.deepEqual(req.config.linux.securityContext.namespaceOptions, { network: "NODE", pid: "CONTAINER", ipc: "POD", targetId: "" });
    assert.deepEqual(req.config.labels, { a: "b" });
    assert.deepEqual(req.config.metadata, { name: "c", attempt: 1 });
    assert.equal(req.sandboxConfig.linux.overhead.cpuShares, "2");
    rs.close();
    await srv.stop();
  });

  void it("refuses an int64 out of range before sending anything", async () => {
    const srv = await startServer({ CreateContainer: unary(() => ({ containerId: "c1" })) });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 2000 });
    const err = await criErr(
      rs.createContainer("sb", { metadata: { name: "c", attempt: 0 }, image: { image: "x" }, linux: { resources: { memoryLimitInBytes: 2n ** 63n } } }, {
        metadata: { name: "p", uid: "u", namespace: "n", attempt: 0 },
      }),
    );
    assert.equal(err.code, "InvalidArgument");
    assert.match(err.message, /memoryLimitInBytes: 9223372036854775808 is out of range for int64/);
    assert.equal(srv.seen.get("CreateContainer"), undefined);
    rs.close();
    await srv.stop();
  });

  void it("receives every int64/uint64 as an exact bigint, and absent messages as absent", async () => {
    const srv = await startServer({
      ContainerStatus: unary(() => ({
        status: { id: "c", state: "CONTAINER_EXITED", createdAt: MAX_INT64.toString(), startedAt: GO_ZERO_TIME.toString(), finishedAt: "1795878926509151991", exitCode: 3 },
      })),
      ListContainerStats: unary(() => ({
        stats: [{ attributes: { id: "c" }, memory: { timestamp: "1", workingSetBytes: { value: MAX_UINT64.toString() } } }],
      })),
    });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 2000 });
    const st = (await rs.containerStatus("c")).status;
    assert.equal(st.createdAt, MAX_INT64);
    assert.equal(st.startedAt, GO_ZERO_TIME);
    assert.equal(st.finishedAt, 1795878926509151991n);
    assert.equal(st.exitCode, 3);
    assert.equal(st.state, "CONTAINER_EXITED");
    assert.deepEqual(st.labels, {});
    assert.deepEqual(st.mounts, []);
    assert.equal("metadata" in st, false, "an absent sub-message is an absent property, not null");
    const [stats] = await rs.listContainerStats();
    assert.equal(stats?.memory?.workingSetBytes?.value, MAX_UINT64);
    assert.equal(stats?.memory?.usageBytes, undefined);
    assert.equal(stats?.cpu, undefined);
    rs.close();
    await srv.stop();
  });

  void it("ExecSync passes its timeout to the runtime and extends the deadline by it", async () => {
    const srv = await startServer({
      ExecSync: ((call: { request: { cmd: string[] } }, cb: Callback) => {
        if (call.request.cmd[0] === "runtime-timeout") {
          cb({ code: grpc.status.DEADLINE_EXCEEDED, details: "timeout 1s exceeded: context deadline exceeded" });
          return;
        }
        setTimeout(() => cb(null, { stdout: Buffer.from("out"), stderr: Buffer.alloc(0), exitCode: 2 }), 300);
      }) as grpc.UntypedHandleCall,
    });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 100 });
    const r = await rs.execSync("c", ["sh", "-c", "sleep 0.3"], 1);
    assert.equal(r.exitCode, 2);
    assert.equal(r.stdout.toString(), "out");
    assert.ok(Buffer.isBuffer(r.stderr) && r.stderr.length === 0);
    assert.deepEqual(srv.seen.get("ExecSync")?.[0], { containerId: "c", cmd: ["sh", "-c", "sleep 0.3"], timeout: "1" });
    assert.equal((await criErr(rs.execSync("c", ["x"], 0))).code, "DeadlineExceeded");
    const rt = await criErr(rs.execSync("c", ["runtime-timeout"], 1));
    assert.equal(rt.code, "DeadlineExceeded");
    assert.match(rt.message, /deadline exceeded: timeout 1s exceeded/);
    rs.close();
    await srv.stop();
  });

  void it("filters go out with enums as names and label maps intact", async () => {
    const srv = await startServer({ ListContainers: unary(() => ({ containers: [{ id: "a", state: "CONTAINER_RUNNING", createdAt: "5" }] })) });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 2000 });
    const list = await rs.listContainers({ state: { state: "CONTAINER_RUNNING" }, labelSelector: { "io.kubernetes.pod.uid": "u" } });
    assert.deepEqual(list.map((c) => [c.id, c.state, c.createdAt]), [["a", "CONTAINER_RUNNING", 5n]]);
    assert.deepEqual(srv.seen.get("ListContainers")?.[0], {
      filter: { id: "", podSandboxId: "", state: { state: "CONTAINER_RUNNING" }, labelSelector: { "io.kubernetes.pod.uid": "u" } },
    });
    rs.close();
    await srv.stop();
  });

  void it("imageStatus is undefined for a missing image; sizes are bigints", async () => {
    const srv = await startServer(
      {},
      {
        ImageStatus: unary((req) =>
          (req.image as { image: string }).image === "present" ? { image: { id: "sha256:abc", repoTags: ["present"], size: "1992523" } } : {},
        ),
        PullImage: unary(() => ({ imageRef: "sha256:abc" })),
        ImageFsInfo: unary(() => ({ imageFilesystems: [{ timestamp: "1", fsId: { mountpoint: "/x" }, usedBytes: { value: "10" } }] })),
      },
    );
    const is = createImageService(srv.endpoint, { timeoutMs: 2000 });
    assert.equal(await is.imageStatus({ image: "absent" }), undefined);
    const img = await is.imageStatus({ image: "present" });
    assert.equal(img?.size, 1992523n);
    assert.equal(await is.pullImage({ image: "present" }, { username: "u", password: "p" }), "sha256:abc");
    const pull = srv.seen.get("PullImage")?.[0] as { auth: { username: string }; sandboxConfig: unknown };
    assert.equal(pull.auth.username, "u");
    assert.equal(pull.sandboxConfig, null);
    const fs = await is.imageFsInfo();
    assert.equal(fs.imageFilesystems[0]?.usedBytes?.value, 10n);
    assert.deepEqual(fs.containerFilesystems, []);
    is.close();
    await srv.stop();
  });

  void it("GetContainerEvents: supported when the runtime streams, events converted, abort ends quietly", async () => {
    const srv = await startServer({
      GetContainerEvents: ((call: grpc.ServerWritableStream<unknown, unknown>) => {
        call.write({ containerId: "a", containerEventType: "CONTAINER_STARTED_EVENT", createdAt: MAX_INT64.toString() });
        call.write({ containerId: "b", containerEventType: "CONTAINER_STOPPED_EVENT", createdAt: "7", containersStatuses: [{ id: "b", exitCode: 1 }] });
      }) as grpc.UntypedHandleCall,
    });
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 2000 });
    assert.equal(await rs.supportsContainerEvents(), true);
    const ac = new AbortController();
    const got: [string, string, bigint, number][] = [];
    for await (const ev of rs.containerEvents({ signal: ac.signal })) {
      got.push([ev.containerId, ev.containerEventType, ev.createdAt, ev.containersStatuses.length]);
      if (got.length === 2) ac.abort();
    }
    assert.deepEqual(got, [
      ["a", "CONTAINER_STARTED_EVENT", MAX_INT64, 0],
      ["b", "CONTAINER_STOPPED_EVENT", 7n, 1],
    ]);
    rs.close();
    await srv.stop();
  });

  void it("containerEvents throws Unimplemented on a runtime without it", async () => {
    const srv = await startServer({});
    const rs = createRuntimeService(srv.endpoint, { timeoutMs: 2000 });
    await assert.rejects(
      async () => {
        for await (const _ of rs.containerEvents({ signal: new AbortController().signal })) assert.fail("no events");
      },
      (err: unknown) => err instanceof CriError && err.code === "Unimplemented",
    );
    rs.close();
    await srv.stop();
  });
});
