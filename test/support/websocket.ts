/**
 * A minimal WebSocket client (RFC 6455) for tests, over TLS or TCP: the upgrade handshake, masked
 * client frames, unmasked server frames, fragmentation, ping/pong and close. Node 20 has no
 * built-in client, and this keeps the tests free of extra packages.
 */
import { createHash, randomBytes } from "node:crypto";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";

export interface WsMessage {
  opcode: number;
  data: Buffer;
}

export interface WebSocketClient {
  /** The subprotocol the server chose. */
  protocol: string;
  /** The next data message (text or binary); undefined once the connection closed. */
  next(timeoutMs?: number): Promise<WsMessage | undefined>;
  /** Every data message until the connection closes. */
  all(timeoutMs?: number): Promise<WsMessage[]>;
  sendBinary(data: Buffer): void;
  close(): void;
  socket: Socket;
}

export interface WsRefusal {
  status: number;
  headers: string;
  body: string;
}

export interface WsOptions {
  /** ws:// or wss:// */
  url: string;
  protocols?: string[];
  headers?: Record<string, string>;
  tls?: ConnectionOptions;
}

function frame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = 0x80 | opcode;
  if (len < 126) head[1] = 0x80 | len;
  else if (len < 65536) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0);
  return Buffer.concat([head, mask, body]);
}

/** Opens a WebSocket; resolves to the client, or to the HTTP answer when the server refused the upgrade. */
export function openWebSocket(opts: WsOptions): Promise<WebSocketClient | WsRefusal> {
  const url = new URL(opts.url);
  const secure = url.protocol === "wss:";
  const port = Number(url.port || (secure ? 443 : 80));
  const key = randomBytes(16).toString("base64");
  return new Promise((resolve, reject) => {
    const socket: Socket = secure ? tlsConnect({ host: url.hostname, port, servername: undefined, ...opts.tls }) : netConnect(port, url.hostname);
    socket.once(secure ? "secureConnect" : "connect", () => {
      const lines = [
        `GET ${url.pathname}${url.search} HTTP/1.1`,
        `Host: ${url.host}`,
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        `Sec-WebSocket-Key: ${key}`,
        ...(opts.protocols?.length ? [`Sec-WebSocket-Protocol: ${opts.protocols.join(", ")}`] : []),
        ...Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.write(lines.join("\r\n") + "\r\n\r\n");
    });
    let buf = Buffer.alloc(0);
    let handshaken = false;
    const queue: WsMessage[] = [];
    const waiters: ((m: WsMessage | undefined) => void)[] = [];
    let closed = false;
    let fragments: Buffer[] = [];
    let fragOpcode = 0;
    const deliver = (m: WsMessage | undefined): void => {
      const w = waiters.shift();
      if (w) w(m);
      else if (m) queue.push(m);
    };
    const onClose = (): void => {
      if (!handshaken) {
        const text = buf.toString("latin1");
        const cut = text.indexOf("\r\n\r\n");
        const head = cut < 0 ? text : text.slice(0, cut);
        const body = cut < 0 ? "" : text.slice(cut + 4);
        const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0);
        resolve({ status, headers: head, body: /\r\ntransfer-encoding:\s*chunked/i.test(head) ? dechunk(body) : body });
        return;
      }
      closed = true;
      while (waiters.length > 0) deliver(undefined);
    };
    const parseFrames = (): void => {
      for (;;) {
        if (buf.length < 2) return;
        const b0 = buf[0] ?? 0;
        const b1 = buf[1] ?? 0;
        let len = b1 & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        const masked = (b1 & 0x80) !== 0;
        const maskKey = masked ? buf.subarray(off, off + 4) : undefined;
        if (masked) off += 4;
        if (buf.length < off + len) return;
        let payload = Buffer.from(buf.subarray(off, off + len));
        if (maskKey) payload = Buffer.from(payload.map((x, i) => x ^ (maskKey[i % 4] ?? 0)));
        buf = buf.subarray(off + len);
        const fin = (b0 & 0x80) !== 0;
        const opcode = b0 & 0x0f;
        if (opcode === 0x8) {
          socket.end(frame(0x8, payload.subarray(0, 2)));
          continue;
        }
        if (opcode === 0x9) {
          socket.write(frame(0xa, payload));
          continue;
        }
        if (opcode === 0xa) continue;
        if (opcode !== 0) {
          fragOpcode = opcode;
          fragments = [];
        }
        fragments.push(payload);
        if (fin) {
          deliver({ opcode: fragOpcode, data: Buffer.concat(fragments) });
          fragments = [];
        }
      }
    };
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!handshaken) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1");
        if (!/^HTTP\/1\.1 101/.test(head)) return; // read the refusal until close
        const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
        const expected = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
        if (accept !== expected) {
          socket.destroy();
          reject(new Error(`bad Sec-WebSocket-Accept in ${head}`));
          return;
        }
        handshaken = true;
        buf = buf.subarray(end + 4);
        const protocol = /\r\nsec-websocket-protocol:\s*([^\r]*)/i.exec(head)?.[1]?.trim() ?? "";
        const client: WebSocketClient = {
          protocol,
          socket,
          next: (timeoutMs = 10_000) =>
            new Promise((res, rej) => {
              const m = queue.shift();
              if (m) return res(m);
              if (closed) return res(undefined);
              const t = setTimeout(() => rej(new Error(`no websocket message within ${timeoutMs} ms`)), timeoutMs);
              waiters.push((x) => {
                clearTimeout(t);
                res(x);
              });
            }),
          all: async (timeoutMs = 10_000) => {
            const out: WsMessage[] = [];
            for (;;) {
              const m = await client.next(timeoutMs);
              if (!m) return out;
              out.push(m);
            }
          },
          sendBinary: (data) => socket.write(frame(0x2, data)),
          close: () => {
            socket.end(frame(0x8, Buffer.from([0x03, 0xe8])));
          },
        };
        resolve(client);
      }
      parseFrames();
    });
    socket.on("error", (err) => {
      if (!handshaken) reject(err);
    });
    socket.on("close", onClose);
  });
}

function dechunk(text: string): string {
  let out = "";
  let rest = text;
  for (;;) {
    const nl = rest.indexOf("\r\n");
    if (nl < 0) return out;
    const size = parseInt(rest.slice(0, nl), 16);
    if (!(size > 0)) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}

export function isRefusal(x: WebSocketClient | WsRefusal): x is WsRefusal {
  return "status" in x;
}
