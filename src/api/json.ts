/** JSON output of Kubernetes objects: timestamps as RFC 3339 seconds, as the API server writes them. */
export function toKubeJSON(value: unknown, space?: number): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, key: string, v: unknown): unknown {
      const original = this[key];
      if (original instanceof Date) return rfc3339(original);
      if (typeof v === "bigint") return v.toString();
      return v;
    },
    space,
  );
}

export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** RFC 3339 with nanoseconds, as config.seen and CRI logs use. */
export function rfc3339Nano(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
}
