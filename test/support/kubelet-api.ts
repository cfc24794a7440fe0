/** An HTTPS client for the kubelet API in tests: client certificates, bearer tokens, raw replies. */
import { request } from "node:https";
import type { PeerCertificate, TLSSocket } from "node:tls";

export interface ClientCert {
  cert: string | Buffer;
  key: string | Buffer;
}

export interface ApiReply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  peer: PeerCertificate | undefined;
}

export interface ApiCall {
  port: number;
  path: string;
  method?: string;
  cert?: ClientCert | undefined;
  token?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export function kubeletApi(c: ApiCall): Promise<ApiReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: c.port,
        path: c.path,
        method: c.method ?? "GET",
        rejectUnauthorized: false,
        agent: false,
        ...(c.cert ? { cert: c.cert.cert, key: c.cert.key } : {}),
        headers: { ...(c.token ? { Authorization: `Bearer ${c.token}` } : {}), ...c.headers },
        timeout: c.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        const peer = (res.socket as TLSSocket).getPeerCertificate?.();
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers, peer }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${c.path}: no answer within ${c.timeoutMs ?? 15_000} ms`)));
    req.on("error", reject);
    req.end();
  });
}
