/**
 * Prometheus text exposition (format 0.0.4) for metric families built per scrape: samples with
 * optional timestamps, families sorted by name and labels by label name, as client_golang writes them.
 */
export const PROM_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type MetricType = "counter" | "gauge";

export type Labels = Record<string, string>;

interface Sample {
  labels: string;
  value: number;
  timestampMs: number | undefined;
}

interface Family {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

const NEEDS_ESCAPE = /[\\\n"]/;

export function escapeLabelValue(v: string): string {
  if (!NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export function renderLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return "";
  return "{" + keys.map((k) => `${k}="${escapeLabelValue(labels[k] ?? "")}"`).join(",") + "}";
}

/** Collects families during one scrape and renders them. */
export class Exposition {
  private readonly families = new Map<string, Family>();

  /** Declares a family (so it prints its HELP/TYPE even with no samples) and returns an adder. */
  family(name: string, type: MetricType, help: string): (labels: Labels, value: number, timestampMs?: number) => void {
    let f = this.families.get(name);
    if (!f) {
      f = { name, help, type, samples: [] };
      this.families.set(name, f);
    }
    const fam = f;
    return (labels, value, timestampMs) => {
      fam.samples.push({ labels: renderLabels(labels), value, timestampMs });
    };
  }

  render(opts: { omitEmpty?: boolean } = {}): string {
    const out: string[] = [];
    for (const f of [...this.families.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (opts.omitEmpty && f.samples.length === 0) continue;
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
      for (const s of f.samples) out.push(`${f.name}${s.labels} ${formatValue(s.value)}${s.timestampMs !== undefined ? ` ${Math.round(s.timestampMs)}` : ""}`);
    }
    return out.length > 0 ? out.join("\n") + "\n" : "";
  }
}
