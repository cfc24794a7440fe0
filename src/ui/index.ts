/**
 * The cAdvisor-style web UI on 4194: a single page (static HTML, CSS and JS under ./static, copied
 * next to the compiled code by the build) served at / and /containers/..., fed by the cAdvisor API.
 */
import { readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpError, type Handler, type Route } from "../server/http.js";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
};

export function staticDir(): string {
  return fileURLToPath(new URL("./static/", import.meta.url));
}

interface Asset {
  body: Buffer;
  type: string;
}

/** Loads the page's files once; only these names are ever served (no paths from the request reach the filesystem). */
async function loadAssets(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    assets.set(name, { body: await readFile(join(dir, name)), type });
  }
  return assets;
}

function send(asset: Asset | undefined, what: string): Handler {
  return (_req, res) => {
    if (!asset) throw new HttpError(404, `${what} not found (is the build's copy of src/ui/static missing?)`);
    res.writeHead(200, {
      "Content-Type": asset.type,
      "Content-Length": asset.body.length,
      "Cache-Control": "no-cache",
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'",
    });
    res.end(asset.body);
  };
}

/** Routes of the UI: the page at / and /containers/<name>, its files at /static/<file>. */
export async function uiRoutes(dir = staticDir()): Promise<Route[]> {
  const assets = await loadAssets(dir);
  const page = send(assets.get("index.html"), "index.html");
  const file: Handler = (req, res, ctx) => send(assets.get(ctx.params.file ?? ""), `static/${ctx.params.file ?? ""}`)(req, res, ctx);
  return [
    { pattern: "/", methods: ["GET", "HEAD"], handler: page },
    { pattern: "/containers", methods: ["GET", "HEAD"], handler: page },
    { pattern: "/containers/*", methods: ["GET", "HEAD"], handler: page },
    { pattern: "/static/:file", methods: ["GET", "HEAD"], handler: file },
  ];
}
