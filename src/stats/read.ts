/**
 * Small readers for the kernel's text files (cgroupfs, procfs, sysfs): absent files read as undefined.
 * These files live in memory, so they are read synchronously: a read costs ~10 µs, while a
 * thread-pool round trip costs far more and queues behind every other read of a scrape. Callers
 * that read many cgroups yield to the event loop between them.
 */
import { readFileSync } from "node:fs";

/** The file's text, or undefined when it cannot be read (absent controller, gone cgroup). */
export function readTextSync(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export function readText(path: string): Promise<string | undefined> {
  return Promise.resolve(readTextSync(path));
}

/** Values at or above this are "no limit" (cgroup v1 writes PAGE_COUNTER_MAX * page size). */
export const UNLIMITED = 2 ** 62;

/** A single number file; "max" (v2) reads as Infinity, a missing or garbled file as undefined. */
export async function readNumber(path: string): Promise<number | undefined> {
  const t = await readText(path);
  return t === undefined ? undefined : parseNumber(t.trim());
}

export function parseNumber(s: string): number | undefined {
  if (s === "max") return Infinity;
  if (s === "") return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** "key value" lines (memory.stat, cpu.stat, cpuacct.stat, memory.events) as a map. */
export function parseFlatKeyed(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (text === undefined) return out;
  for (const line of text.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp <= 0) continue;
    const n = Number(line.slice(sp + 1).trim());
    if (Number.isFinite(n)) out.set(line.slice(0, sp), n);
  }
  return out;
}

/** "Key:   123 kB" lines (/proc/meminfo, node meminfo) in bytes when the unit is kB. */
export function parseMeminfo(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (text === undefined) return out;
  for (const line of text.split("\n")) {
    const m = /^(?:Node \d+ )?([^:]+):\s+(\d+)(?:\s+(kB))?/.exec(line);
    if (!m?.[1] || m[2] === undefined) continue;
    out.set(m[1], Number(m[2]) * (m[3] === "kB" ? 1024 : 1));
  }
  return out;
}

/** Limits above UNLIMITED (or Infinity) are no limit at all. */
export function finiteLimit(n: number | undefined): number | undefined {
  return n === undefined || !Number.isFinite(n) || n >= UNLIMITED ? undefined : n;
}

/** A cpulist such as "0-3,8,10-11" as cpu numbers. */
export function parseCpuList(text: string | undefined): number[] {
  const out: number[] = [];
  for (const part of (text ?? "").trim().split(",")) {
    if (part === "") continue;
    const [a, b] = part.split("-");
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) continue;
    for (let i = lo; i <= hi; i++) out.push(i);
  }
  return out;
}
