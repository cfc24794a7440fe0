/**
 * The comparison of the two kubelets, row by row, as a verdict per row and as a markdown report
 * (test-artifacts/differential.md, meant to be pasted into docs/differences.md) plus JSON.
 */
import { finalState, stateDiff } from "./normalize.js";
import type { Row } from "./rows.js";
import type { SideResult, SuiteResult } from "./harness.js";

export interface RowVerdict {
  id: string;
  title: string;
  upstream: SideResult;
  tskubelet: SideResult;
  finalEqual: boolean;
  /**
   * How the sequences compare: equal; one kubelet skipped states the other wrote (its sequence is
   * a subsequence of the other's: a status write that coalesced quick changes); or they differ
   * (a state only one kubelet wrote, or an order only one followed).
   */
  sequence: SeqRelation;
  /** The reason from the known-differences table, when the row is listed there. */
  known: string | undefined;
}

export type SeqRelation = "equal" | "upstream skips" | "tskubelet skips" | "differ";

/** Whether `short` is `long` with some elements left out. */
export function isSubsequence(short: readonly string[], long: readonly string[]): boolean {
  let i = 0;
  for (const s of long) if (i < short.length && s === short[i]) i++;
  return i === short.length;
}

export function seqRelation(up: readonly string[], tsk: readonly string[]): SeqRelation {
  if (up.join("\n") === tsk.join("\n")) return "equal";
  if (isSubsequence(tsk, up)) return "tskubelet skips";
  if (isSubsequence(up, tsk)) return "upstream skips";
  return "differ";
}

const missing: SideResult = { states: [], end: "error", note: "no result" };

export function verdicts(rows: readonly Row[], r: SuiteResult, known: Readonly<Record<string, string>>): RowVerdict[] {
  return rows.map((row) => {
    const up = r.upstream.get(row.id) ?? missing;
    const tsk = r.tskubelet.get(row.id) ?? missing;
    const upFinal = finalState(up.states);
    const finalEqual = up.end !== "error" && tsk.end !== "error" && upFinal !== "" && upFinal === finalState(tsk.states) && up.end === tsk.end;
    return { id: row.id, title: row.title, upstream: up, tskubelet: tsk, finalEqual, sequence: seqRelation(up.states, tsk.states), known: known[row.id] };
  });
}

function endText(s: SideResult): string {
  return s.note !== "" ? `${s.end}: ${s.note}` : s.end;
}

/** A readable explanation of one row's difference (for the failing test's message). */
export function explain(v: RowVerdict): string {
  const upFinal = finalState(v.upstream.states);
  const tskFinal = finalState(v.tskubelet.states);
  const d = stateDiff(upFinal, tskFinal);
  const lines = [
    `row ${v.id}: ${v.title}`,
    `  upstream  (${endText(v.upstream)}) final: ${upFinal || "(none)"}`,
    `  tskubelet (${endText(v.tskubelet)}) final: ${tskFinal || "(none)"}`,
    `  only upstream: ${d.onlyA.join(" ; ") || "-"}`,
    `  only tskubelet: ${d.onlyB.join(" ; ") || "-"}`,
    "  upstream sequence:",
    ...v.upstream.states.map((s) => `    ${s}`),
    "  tskubelet sequence:",
    ...v.tskubelet.states.map((s) => `    ${s}`),
  ];
  return lines.join("\n");
}

const cell = (s: string): string => s.replace(/\|/g, "\\|");
const seqCell = (s: SideResult): string => [...s.states.map(cell), `*${cell(endText(s))}*`].join("<br>");

function finalDiffCell(v: RowVerdict): string {
  const d = stateDiff(finalState(v.upstream.states), finalState(v.tskubelet.states));
  const ends = v.upstream.end !== v.tskubelet.end ? ` (ended: ${v.upstream.end} / ${v.tskubelet.end})` : "";
  return `${cell(d.onlyA.join(", ") || "-")} / ${cell(d.onlyB.join(", ") || "-")}${ends}`;
}

export interface ReportMeta {
  date: string;
  commit: string;
  upstreamVersion: string;
  durationS: number;
}

/** The known-differences table as docs/differences.md holds it (row, reason). */
export function knownTable(known: Readonly<Record<string, string>>): string[] {
  return ["| row | reason |", "|---|---|", ...Object.entries(known).map(([id, reason]) => `| ${id} | ${cell(reason)} |`)];
}

export function markdown(vs: readonly RowVerdict[], meta: ReportMeta, known: Readonly<Record<string, string>>): string {
  const equal = vs.filter((v) => v.finalEqual).length;
  const lines = [
    `Run ${meta.date}, tskubelet commit ${meta.commit}, upstream kubelet ${meta.upstreamVersion}, ${Math.round(meta.durationS)} s.`,
    `Final states equal on ${equal} of ${vs.length} rows; sequences equal on ${vs.filter((v) => v.sequence === "equal").length}, equal but for states one kubelet skipped on ${vs.filter((v) => v.sequence.endsWith("skips")).length}.`,
    "",
    "| row | final state equal | sequences | known difference | final state: only upstream / only tskubelet |",
    "|---|---|---|---|---|",
    ...vs.map((v) => `| ${v.id} | ${v.finalEqual ? "yes" : "**no**"} | ${v.sequence} | ${v.known !== undefined ? "yes" : "-"} | ${v.finalEqual ? "" : finalDiffCell(v)} |`),
    "",
    "Each status is `phase | conditions | container: state [last=lastState] ready|unready [started|not-started] r<restartCount>`;",
    "consecutive duplicates collapsed; the last line in italics is how observation ended.",
    "",
    "| row | upstream sequence | tskubelet sequence |",
    "|---|---|---|",
    ...vs.map((v) => `| **${v.id}**<br>${cell(v.title)} | ${seqCell(v.upstream)} | ${seqCell(v.tskubelet)} |`),
    "",
    "## Known differences",
    "",
    ...knownTable(known),
    "",
  ];
  return lines.join("\n");
}

export function json(vs: readonly RowVerdict[], meta: ReportMeta): string {
  return JSON.stringify({ ...meta, rows: vs }, null, 2);
}
