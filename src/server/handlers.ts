/** Handlers shared by 10250 and 10255, built over small capabilities. */
import type { V1Pod } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import { toKubeJSON } from "../api/json.js";
import { HttpError, sendJSON, sendText, type Handler, type Route } from "./http.js";

export interface PodLister {
  /** Desired pods with their latest status. */
  pods(): V1Pod[];
  /** The PodList JSON, when the lister can serve it from a cache. */
  json?(): string;
}

export function podsHandler(lister: PodLister): Handler {
  return (_req, res) => {
    if (lister.json) {
      sendJSON(res, lister.json());
      return;
    }
    const list = { kind: "PodList", apiVersion: "v1", metadata: {}, items: lister.pods() };
    sendJSON(res, toKubeJSON(list));
  };
}

export function metricsHandler(registry: Registry): Handler {
  return async (_req, res) => {
    sendText(res, await registry.metrics(), 200, registry.contentType);
  };
}

/** Paths that exist on 10250 only with debugging handlers on; elsewhere they answer 405 as upstream. */
export const DEBUG_PATH_PREFIXES = ["run", "exec", "attach", "portForward", "containerLogs", "runningpods", "debug", "logs"];

export function debugDisabledRoutes(): Route[] {
  const all = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
  const handler: Handler = () => {
    throw new HttpError(405, "Debug endpoints are disabled.");
  };
  return DEBUG_PATH_PREFIXES.flatMap((p) => [
    { pattern: `/${p}`, methods: all, handler },
    { pattern: `/${p}/*`, methods: all, handler },
  ]);
}
