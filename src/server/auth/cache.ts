/** A small TTL cache on the injected Clock, bounded in entries (oldest entries go first). */
import type { Clock } from "../../util/clock.js";

export interface TtlCache<V> {
  get(key: string): V | undefined;
  set(key: string, value: V, ttlMs: number): void;
  size(): number;
}

export function createTtlCache<V>(clock: Clock, maxEntries = 4096): TtlCache<V> {
  const entries = new Map<string, { value: V; expiresAt: number }>();
  return {
    get(key) {
      const e = entries.get(key);
      if (!e) return undefined;
      if (clock.now() >= e.expiresAt) {
        entries.delete(key);
        return undefined;
      }
      return e.value;
    },
    set(key, value, ttlMs) {
      if (ttlMs <= 0) return;
      entries.delete(key);
      if (entries.size >= maxEntries) {
        const now = clock.now();
        for (const [k, e] of entries) if (e.expiresAt <= now) entries.delete(k);
        while (entries.size >= maxEntries) {
          const oldest = entries.keys().next();
          if (oldest.done === true) break;
          entries.delete(oldest.value);
        }
      }
      entries.set(key, { value, expiresAt: clock.now() + ttlMs });
    },
    size: () => entries.size,
  };
}
