/** Kubernetes resource quantities ("100Mi", "250m", "1.5Gi", "2") as numbers of base units. */

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** Parses a quantity into base units (bytes, cores); undefined when it is not a quantity. */
export function parseQuantity(text: string | number): number | undefined {
  if (typeof text === "number") return Number.isFinite(text) ? text : undefined;
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E))?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  if (m[2]) return n * (BINARY[m[2]] ?? NaN);
  if (m[3]) return n * 10 ** Number(m[3].slice(1));
  return n * (DECIMAL[m[4] ?? ""] ?? NaN);
}

/** CPU quantity in millicores, rounded up as the API does. */
export function cpuMillis(text: string | number): number | undefined {
  const v = parseQuantity(text);
  return v === undefined ? undefined : Math.ceil(v * 1000 - 1e-9);
}

/** Formats a byte count as the API would print a binary quantity when it is exact (e.g. "512Mi"). */
export function formatBytes(n: number): string {
  for (const [suffix, factor] of [["Ei", 2 ** 60], ["Pi", 2 ** 50], ["Ti", 2 ** 40], ["Gi", 2 ** 30], ["Mi", 2 ** 20], ["Ki", 2 ** 10]] as const) {
    if (n >= factor && n % factor === 0) return `${n / factor}${suffix}`;
  }
  return String(n);
}
