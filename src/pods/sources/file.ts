/**
 * The static-pod file source: a directory (or one file) of YAML/JSON Pod manifests,
 * rescanned every fileCheckFrequency and promptly on file-system events.
 * A bad manifest is logged once (file, field, reason) and never affects the others.
 */
import { watch, type FSWatcher } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { V1Pod } from "@kubernetes/client-node";
import type { Clock } from "../../util/clock.js";
import type { Logger } from "../../util/log.js";
import { errorMessage } from "../../util/errors.js";
import { applyApiDefaults, applyStaticPodDefaults, staticPodUID } from "../defaults.js";
import { validatePod, type FieldProblem } from "../validation.js";

export interface FileSourceOptions {
  path: string;
  nodeName: string;
  checkFrequencyMs: number;
  clock: Clock;
  logger: Logger;
  /** Called with the complete set of valid static pods whenever it changes (and once after the first scan). */
  onUpdate: (pods: V1Pod[]) => void;
}

export interface FileSource {
  run(signal: AbortSignal): Promise<void>;
  /** Rescans now; resolves when the scan is done. */
  rescan(): Promise<void>;
}

interface FileResult {
  key: string;
  pods: V1Pod[];
}

export function createFileSource(opts: FileSourceOptions): FileSource {
  const log = opts.logger.with({ source: "file" });
  const cache = new Map<string, FileResult>();
  const firstSeen = new Map<string, number>();
  let lastEmitted: string | undefined;
  let missingLogged = false;
  let scanning: Promise<void> | undefined;
  let again = false;

  const scanOnce = async (): Promise<void> => {
    const files = await listManifestFiles(opts.path);
    if (files === undefined) {
      if (!missingLogged) log.warn("static pod path does not exist yet; will keep checking", { path: opts.path });
      missingLogged = true;
    } else {
      missingLogged = false;
    }
    const pods: V1Pod[] = [];
    const names = new Map<string, string>();
    for (const file of files ?? []) {
      const result = await loadFile(file);
      for (const pod of result.pods) {
        const full = `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
        const other = names.get(full);
        if (other !== undefined) {
          logOnce(`dup:${result.key}:${full}`, () =>
            log.error("static pod manifest rejected", { file, field: "metadata.name", reason: `Duplicate value: pod ${full} is already defined in ${other}` }),
          );
          continue;
        }
        names.set(full, file);
        pods.push(pod);
      }
    }
    for (const f of [...cache.keys()]) if (!(files ?? []).includes(f)) cache.delete(f);
    const fingerprint = pods.map((p) => p.metadata?.uid ?? "").join(",");
    if (fingerprint !== lastEmitted) {
      lastEmitted = fingerprint;
      opts.onUpdate(pods);
    }
  };

  const logged = new Set<string>();
  const logOnce = (key: string, fn: () => void): void => {
    if (logged.has(key)) return;
    logged.add(key);
    fn();
  };

  const loadFile = async (file: string): Promise<FileResult> => {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      return { key: `unreadable:${file}`, pods: [] };
    }
    const key = `${file}\0${text}`;
    const cached = cache.get(file);
    if (cached && cached.key === key) return cached;
    const result: FileResult = { key, pods: [] };
    for (const parsed of parseManifest(text)) {
      if ("problem" in parsed) {
        log.error("static pod manifest rejected", { file, field: parsed.problem.field, reason: parsed.problem.reason });
        continue;
      }
      const pod = parsed.pod;
      const problems = validatePod(pod);
      if (problems.length > 0) {
        log.error("static pod manifest rejected", {
          file,
          field: problems.map((p) => p.field).join(", "),
          reason: problems.map((p) => `${p.field}: ${p.reason}`).join("; "),
        });
        continue;
      }
      applyApiDefaults(pod);
      const uid = staticPodUID(pod, opts.nodeName, file);
      const seen = firstSeen.get(uid) ?? opts.clock.now();
      firstSeen.set(uid, seen);
      applyStaticPodDefaults(pod, { nodeName: opts.nodeName, file, seenMs: seen });
      result.pods.push(pod);
    }
    cache.set(file, result);
    return result;
  };

  const rescan = async (): Promise<void> => {
    if (scanning) {
      again = true;
      return scanning;
    }
    scanning = (async () => {
      do {
        again = false;
        try {
          await scanOnce();
        } catch (err) {
          log.error("static pod scan failed", { path: opts.path, err: errorMessage(err) });
        }
      } while (again);
    })().finally(() => {
      scanning = undefined;
    });
    return scanning;
  };

  return {
    rescan,
    async run(signal) {
      let watcher: FSWatcher | undefined;
      let cancelDebounce: (() => void) | undefined;
      // Scan at once on the first event (a new manifest starts without delay), and once more
      // when the burst of events settles (a file written in several steps is read complete).
      const onEvent = (): void => {
        if (!cancelDebounce) void rescan();
        cancelDebounce?.();
        cancelDebounce = opts.clock.setTimer(100, () => {
          cancelDebounce = undefined;
          void rescan();
        });
      };
      const startWatch = (): void => {
        if (watcher) return;
        try {
          watcher = watch(opts.path, { persistent: false }, onEvent);
          watcher.on("error", () => {
            watcher?.close();
            watcher = undefined;
          });
        } catch {
          watcher = undefined;
        }
      };
      try {
        while (!signal.aborted) {
          startWatch();
          await rescan();
          await opts.clock.sleep(opts.checkFrequencyMs, signal).catch(() => undefined);
        }
      } finally {
        cancelDebounce?.();
        watcher?.close();
      }
    },
  };
}

async function listManifestFiles(path: string): Promise<string[] | undefined> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return undefined;
  }
  if (st.isFile()) return [path];
  const entries = await readdir(path, { withFileTypes: true });
  const files: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const full = join(path, e.name);
    if (e.isFile() || (e.isSymbolicLink() && (await stat(full).catch(() => undefined))?.isFile())) files.push(full);
  }
  return files.sort();
}

type Parsed = { pod: V1Pod } | { problem: FieldProblem };

/** Splits a file into Pod documents; anything that is not a v1 Pod is a problem naming the field. */
export function parseManifest(text: string): Parsed[] {
  const out: Parsed[] = [];
  let docs;
  try {
    // YAML 1.1, as upstream reads manifests: 0644 is an octal file mode, yes/no are booleans.
    docs = parseAllDocuments(text, { version: "1.1" });
  } catch (err) {
    return [{ problem: { field: "(file)", reason: `cannot parse YAML/JSON: ${errorMessage(err)}` } }];
  }
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const where = list.length > 1 ? `document ${i + 1}: ` : "";
    if (doc.errors.length > 0) {
      out.push({ problem: { field: "(file)", reason: `${where}cannot parse YAML/JSON: ${doc.errors[0]?.message ?? "syntax error"}` } });
      return;
    }
    const v: unknown = doc.toJS();
    if (v === null || v === undefined) return;
    if (typeof v !== "object" || Array.isArray(v)) {
      out.push({ problem: { field: "(file)", reason: `${where}expected a Pod object` } });
      return;
    }
    const o = v as Record<string, unknown>;
    if (o.kind !== "Pod") out.push({ problem: { field: "kind", reason: `${where}Unsupported value: ${JSON.stringify(o.kind)}: expected "Pod"` } });
    else if (o.apiVersion !== "v1") out.push({ problem: { field: "apiVersion", reason: `${where}Unsupported value: ${JSON.stringify(o.apiVersion)}: expected "v1"` } });
    else out.push({ pod: o });
  });
  return out;
}
