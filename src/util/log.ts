/**
 * Structured, levelled logging in the klog spirit: `-v` sets the verbosity,
 * errors and warnings always print. Loggers are passed in, never imported as singletons.
 */
export type Fields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** Logged only when the verbosity is at least `level`. */
  v(level: number): Pick<Logger, "info">;
  with(fields: Fields): Logger;
}

export interface LogSink {
  write(line: string): void;
}

export function createLogger(opts: { verbosity: number; sink?: LogSink; now?: () => Date; base?: Fields }): Logger {
  const sink = opts.sink ?? { write: (l: string) => process.stderr.write(l) };
  const now = opts.now ?? (() => new Date());
  const base = opts.base ?? {};
  const emit = (sev: "I" | "W" | "E", msg: string, fields?: Fields): void => {
    const all = { ...base, ...fields };
    const kv = Object.entries(all)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(" ");
    sink.write(`${sev}${now().toISOString()} ${JSON.stringify(msg)}${kv ? " " + kv : ""}\n`);
  };
  const logger: Logger = {
    info: (m, f) => emit("I", m, f),
    warn: (m, f) => emit("W", m, f),
    error: (m, f) => emit("E", m, f),
    v: (level) => (level <= opts.verbosity ? { info: (m, f) => emit("I", m, f) } : { info: () => undefined }),
    with: (fields) => createLogger({ ...opts, sink, now, base: { ...base, ...fields } }),
  };
  return logger;
}

function formatValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return v.toString();
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** A logger that remembers lines, for tests. */
export function memoryLogger(verbosity = 10): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ verbosity, sink: { write: (l) => lines.push(l) } }), lines };
}
