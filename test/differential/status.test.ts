/**
 * The differential suite: every row of rows.ts runs as a pod on tskubelet and on the upstream
 * kubelet (test/cluster/bin/kube-test-plane kubelet), both nodes of one real control plane; the
 * normalized status sequences each kubelet writes are compared. A row fails when the final states
 * differ, unless it is listed in KNOWN below (and, with the same reason, in docs/differences.md).
 * Writes test-artifacts/differential.md and .json, and both kubelets' logs next to them.
 *
 * Run as root after the build: node --test dist/test/differential/status.test.js
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { before, describe, it } from "node:test";
import { repoRoot } from "../support/containerd.js";
import { KTP_BIN } from "../support/kubelets.js";
import { runSuite, type SuiteResult } from "./harness.js";
import { explain, json, markdown, verdicts, type RowVerdict } from "./report.js";
import { ROWS } from "./rows.js";

/**
 * Rows whose final states are known to differ, with the reason. Keep in step with the table
 * "Known differences" of docs/differences.md (a test below checks it).
 */
export const KNOWN: Readonly<Record<string, string>> = {};

const DOC = join(repoRoot(), "docs", "differences.md");

/** TSK_DIFF_ROWS=id,id,... runs only those rows (the report then covers only them). */
const SELECTED = (process.env.TSK_DIFF_ROWS ?? "").split(",").filter((x) => x !== "");
for (const id of SELECTED) if (!ROWS.some((r) => r.id === id)) throw new Error(`TSK_DIFF_ROWS: no row ${id} (rows: ${ROWS.map((r) => r.id).join(", ")})`);
const RUN = SELECTED.length > 0 ? ROWS.filter((r) => SELECTED.includes(r.id)) : ROWS;

/** The known-differences table of docs/differences.md: row id -> reason. */
function documentedDifferences(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const start = text.indexOf("## Known differences");
  if (start < 0) return out;
  const end = text.indexOf("\n## ", start + 1);
  for (const line of text.slice(start, end < 0 ? undefined : end).split("\n")) {
    const m = /^\|\s*`?([a-z][a-z0-9-]*)`?\s*\|\s*(.*?)\s*\|\s*$/.exec(line);
    if (m?.[1] && m[1] !== "row") out.set(m[1], m[2] ?? "");
  }
  return out;
}

function commit(): string {
  const r = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot(), encoding: "utf8" });
  const dirty = spawnSync("git", ["status", "--porcelain", "--", "src"], { cwd: repoRoot(), encoding: "utf8" });
  return r.status === 0 ? `${r.stdout.trim()}${dirty.stdout.trim() !== "" ? " (uncommitted src/ changes)" : ""}` : "unknown";
}

describe("differential: pod statuses written by tskubelet and by the upstream kubelet", { timeout: 16 * 60_000 }, () => {
  let results: SuiteResult | undefined;
  let byRow = new Map<string, RowVerdict>();

  before(async () => {
    if (!existsSync(KTP_BIN)) throw new Error(`${KTP_BIN} is missing: build it with test/cluster/build.sh`);
    const upstreamVersion = spawnSync(KTP_BIN, ["kubelet", "--version"], { encoding: "utf8" }).stdout.trim();
    const t0 = performance.now();
    results = await runSuite(RUN, upstreamVersion);
    const vs = verdicts(RUN, results, KNOWN);
    byRow = new Map(vs.map((v) => [v.id, v]));
    const meta = { date: new Date().toISOString(), commit: commit(), upstreamVersion, durationS: (performance.now() - t0) / 1000 };
    const dir = join(repoRoot(), "test-artifacts");
    await writeFile(join(dir, "differential.md"), markdown(vs, meta, KNOWN));
    await writeFile(join(dir, "differential.json"), json(vs, meta));
  });

  for (const row of RUN) {
    it(`${row.id}: ${row.title}`, (t) => {
      const v = byRow.get(row.id);
      assert.ok(v, `no result for ${row.id}`);
      if (v.finalEqual) {
        // A known difference that went away must leave the list, so the list stays true.
        if (v.known !== undefined) assert.fail(`${row.id} is listed as a known difference but the final states are now equal: remove it from KNOWN and docs/differences.md`);
        if (v.sequence !== "equal") t.diagnostic(`sequences: ${v.sequence} (final states equal):\n${explain(v)}`);
        return;
      }
      if (v.known !== undefined) {
        t.diagnostic(`known difference (${v.known}):\n${explain(v)}`);
        return;
      }
      assert.fail(`final states differ and ${row.id} is not a known difference:\n${explain(v)}`);
    });
  }

  it("every known difference is documented in docs/differences.md with its reason", async () => {
    const doc = documentedDifferences(await readFile(DOC, "utf8"));
    for (const [id, reason] of Object.entries(KNOWN)) {
      assert.ok(ROWS.some((r) => r.id === id), `KNOWN lists ${id}, which is not a row`);
      assert.equal(doc.get(id), reason, `docs/differences.md, table "Known differences": row ${id}`);
    }
    for (const id of doc.keys()) assert.ok(id in KNOWN, `docs/differences.md lists ${id}, which KNOWN does not`);
  });
});
