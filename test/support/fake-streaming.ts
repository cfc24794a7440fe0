/** Fakes behind the kubelet API in unit tests: a small CRI runtime and a runtime streaming server. */
import { createHash } from "node:crypto";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { Container, ContainerFilter, ContainerStatusResponse, ExecRequest, PodSandbox, PodSandboxFilter, PortForwardRequest } from "../../src/cri/types.js";
import type { ApiRuntime } from "../../src/server/api.js";

export const LABELS = (uid: string, name: string, container?: string): Record<string, string> => ({
  "io.kubernetes.pod.uid": uid,
  "io.kubernetes.pod.name": name,
  "io.kubernetes.pod.namespace": "default",
  ...(container ? { "io.kubernetes.container.name": container } : {}),
});

/** A runtime's streaming server: answers every upgrade with 101, says hello in a websocket frame, echoes, and records what it was sent. */
export class FakeStreamingServer {
  server: NetServer;
  port = 0;
  received: string[] = [];
  constructor() {
    this.server = createNetServer((sock: Socket) => {
      let buf = Buffer.alloc(0);
      let upgraded = false;
      sock.on("error", () => undefined);
      sock.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (upgraded) {
          sock.write(d); // echo
          return;
        }
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        upgraded = true;
        const head = buf.subarray(0, end).toString("latin1");
        const rest = buf.subarray(end + 4);
        this.received.push(head + "\r\n\r\n" + rest.toString("latin1"));
        const key = /\r\nsec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? "";
        const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
        sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n`);
        sock.write(Buffer.from([0x82, 7, 1, ...Buffer.from("hello\n")]));
        if (rest.length > 0) sock.write(rest);
      });
    });
  }
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    const a = this.server.address();
    this.port = typeof a === "object" && a ? a.port : 0;
  }
}

export class FakeRuntime implements ApiRuntime {
  calls: string[] = [];
  constructor(
    private readonly streamPort: () => number,
    readonly logPath: string,
  ) {}
  containers: Container[] = [
    { id: "c-web", podSandboxId: "sb-web", metadata: { name: "main", attempt: 0 }, image: { image: "busybox" }, imageRef: "", state: "CONTAINER_RUNNING", createdAt: 1n, labels: LABELS("uid-web", "web", "main"), annotations: {} },
  ];
  sandboxes: PodSandbox[] = [{ id: "sb-web", metadata: { name: "web", uid: "uid-web", namespace: "default", attempt: 0 }, state: "SANDBOX_READY", createdAt: 1n, labels: LABELS("uid-web", "web"), annotations: {}, runtimeHandler: "" }];
  listContainers(filter?: ContainerFilter): Promise<Container[]> {
    return Promise.resolve(this.containers.filter((c) => (!filter?.state || c.state === filter.state.state) && Object.entries(filter?.labelSelector ?? {}).every(([k, v]) => c.labels[k] === v)));
  }
  listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    return Promise.resolve(this.sandboxes.filter((s) => (!filter?.state || s.state === filter.state.state) && Object.entries(filter?.labelSelector ?? {}).every(([k, v]) => s.labels[k] === v)));
  }
  containerStatus(id: string): Promise<ContainerStatusResponse> {
    return Promise.resolve({
      status: { id, metadata: { name: "main", attempt: 0 }, state: "CONTAINER_RUNNING", createdAt: 0n, startedAt: 0n, finishedAt: 0n, exitCode: 0, image: { image: "" }, imageRef: "", reason: "", message: "", labels: {}, annotations: {}, mounts: [], logPath: this.logPath },
      info: {},
    });
  }
  execSync(id: string, cmd: string[]) {
    this.calls.push(`execSync ${id} ${JSON.stringify(cmd)}`);
    if (cmd[0] === "false") return Promise.resolve({ stdout: Buffer.from(""), stderr: Buffer.from("it failed\n"), exitCode: 1 });
    return Promise.resolve({ stdout: Buffer.from(cmd.slice(1).join(" ") + "\n"), stderr: Buffer.from("to stderr\n"), exitCode: 0 });
  }
  exec(req: ExecRequest): Promise<string> {
    this.calls.push(`exec ${JSON.stringify(req)}`);
    return Promise.resolve(`http://127.0.0.1:${this.streamPort()}/exec/tok3n`);
  }
  attach(req: ExecRequest): Promise<string> {
    this.calls.push(`attach ${req.containerId}`);
    return Promise.resolve(`http://127.0.0.1:${this.streamPort()}/attach/tok3n`);
  }
  portForward(req: PortForwardRequest): Promise<string> {
    this.calls.push(`portForward ${req.podSandboxId} ${JSON.stringify(req.port)}`);
    return Promise.resolve(`http://127.0.0.1:${this.streamPort()}/portforward/tok3n`);
  }
}

