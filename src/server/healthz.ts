/** Health checks and the /healthz handlers: "ok", or 500 naming each failing check and why. */
import type { Handler } from "./http.js";
import { HttpError, sendText } from "./http.js";

export interface HealthCheck {
  name: string;
  /** undefined when healthy, else why not. */
  check(): string | undefined;
}

/**
 * As upstream, the body names each failing check but withholds the reason (these endpoints answer
 * without credentials); the reason goes to the log.
 */
export function healthzHandler(checks: HealthCheck[], log?: (name: string, reason: string) => void): Handler {
  return (_req, res, ctx) => {
    const verbose = ctx.url.searchParams.has("verbose");
    const results = checks.map((c) => ({ name: c.name, err: c.check() }));
    const failed = results.filter((r) => r.err !== undefined);
    if (failed.length === 0) {
      sendText(res, verbose ? results.map((r) => `[+]${r.name} ok`).join("\n") + "\nhealthz check passed\n" : "ok");
      return;
    }
    for (const r of failed) log?.(r.name, r.err ?? "");
    const body = results.map((r) => (r.err === undefined ? `[+]${r.name} ok` : `[-]${r.name} failed: reason withheld`)).join("\n") + "\nhealthz check failed\n";
    sendText(res, body, 500);
  };
}

/** /healthz/<name>: one check alone. */
export function singleCheckHandler(checks: HealthCheck[], log?: (name: string, reason: string) => void): Handler {
  return (_req, res, ctx) => {
    const c = checks.find((x) => x.name === ctx.params.name);
    if (!c) throw new HttpError(404, `no health check named ${JSON.stringify(ctx.params.name)}`);
    const err = c.check();
    if (err === undefined) sendText(res, "ok");
    else {
      log?.(c.name, err);
      sendText(res, `[-]${c.name} failed: reason withheld\nhealthz check failed\n`, 500);
    }
  };
}
