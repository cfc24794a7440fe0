// Samples of the cAdvisor v2.0 stats API and the series the charts draw from them:
// CPU in cores, memory in bytes, network in bytes per second, filesystem in bytes.

export const ts = (s) => Date.parse(s.timestamp);

/** Adds new samples (by timestamp) to a container's list in `store`, oldest first, at most `max`. */
export function merge(store, name, list, max) {
  const have = store.get(name) || [];
  const seen = new Set(have.map((s) => s.timestamp));
  let changed = false;
  for (const s of list) {
    if (seen.has(s.timestamp)) continue;
    have.push(s);
    changed = true;
  }
  if (changed) have.sort((a, b) => ts(a) - ts(b));
  if (have.length > max) have.splice(0, have.length - max);
  store.set(name, have);
}

export function derive(samples, fn) {
  const out = [];
  for (let i = 0; i < samples.length; i++) {
    const v = fn(samples[i], samples[i - 1]);
    if (v !== undefined && Number.isFinite(v)) out.push([ts(samples[i]), v]);
  }
  return out;
}

export const cpuCores = (c, p) => {
  if (c.cpu_inst) return c.cpu_inst.usage.total / 1e9;
  if (!p || !c.cpu || !p.cpu) return undefined;
  const dt = ts(c) - ts(p);
  return dt > 0 ? (c.cpu.usage.total - p.cpu.usage.total) / (dt * 1e6) : undefined;
};
export const memWs = (c) => c.memory?.working_set;
export const memUsage = (c) => c.memory?.usage;
export const netTotal = (s, key) => (s.network?.interfaces || []).reduce((n, i) => n + (i[key] || 0), 0);
export const netRate = (key) => (c, p) => {
  if (!p || !c.network || !p.network) return undefined;
  const dt = (ts(c) - ts(p)) / 1000;
  const d = netTotal(c, key) - netTotal(p, key);
  return dt > 0 && d >= 0 ? d / dt : undefined;
};
export const fsUsage = (c) => c.filesystem?.totalUsageBytes;

export const last = (pts) => (pts.length > 0 ? pts[pts.length - 1][1] : undefined);
