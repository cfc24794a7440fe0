/** Go-style durations ("1m30s", "500ms", "2h") as the KubeletConfiguration file and flags spell them. */

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration into milliseconds; returns undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let sign = 1;
  let body = s;
  if (body.startsWith("-")) {
    sign = -1;
    body = body.slice(1);
  }
  if (body === "") return undefined;
  re.lastIndex = 0;
  for (;;) {
    const m = re.exec(body);
    if (!m) break;
    total += Number(m[1]) * (UNITS[m[2] ?? ""] ?? NaN);
    consumed = re.lastIndex;
  }
  if (consumed !== body.length || Number.isNaN(total)) return undefined;
  return sign * total;
}

/** Formats milliseconds the way Go's time.Duration.String() does (e.g. 120000 → "2m0s"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const neg = ms < 0;
  let rest = Math.abs(ms);
  if (rest < 1) return `${neg ? "-" : ""}${trimNumber(rest * 1000)}µs`;
  if (rest < 1000) return `${neg ? "-" : ""}${trimNumber(rest)}ms`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = trimNumber(rest / 1000);
  let out = "";
  if (h > 0) out += `${h}h`;
  if (h > 0 || m > 0) out += `${m}m`;
  out += `${s}s`;
  return (neg ? "-" : "") + out;
}

function trimNumber(n: number): string {
  return String(Math.round(n * 1e6) / 1e6);
}
