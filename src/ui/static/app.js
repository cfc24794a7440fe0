// The tskubelet container UI: the machine, every pod and container with live charts, and a detail
// view per container at /containers/<cgroup path>. Data comes from the cAdvisor API on this port.
import { LineChart, formatBytes, formatCores, formatRate } from "./chart.js";
import { cpuCores, derive, fsUsage, last, memUsage, memWs, merge as mergeInto, netRate } from "./series.js";

const params = new URLSearchParams(location.search);
const INTERVAL_MS = Math.max(250, Number(params.get("interval")) || 1000);
const SPEC_EVERY_MS = 10_000;
const MACHINE_EVERY_MS = 60_000;
const MAX_SAMPLES = 120;
const POD_UID = "io.kubernetes.pod.uid";
const POD_NAME = "io.kubernetes.pod.name";
const POD_NS = "io.kubernetes.pod.namespace";
const CTR_NAME = "io.kubernetes.container.name";

const state = {
  spec: {},
  specAt: 0,
  samples: new Map(),
  machine: null,
  attributes: null,
  machineAt: 0,
  machineFs: [],
  nodeFs: [],
  structure: "",
  rows: new Map(),
  charts: [],
  detailName: null,
  detailLoaded: null,
  timer: 0,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

async function getJSON(path) {
  const res = await fetch(path, { cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

const merge = (name, list) => mergeInto(state.samples, name, list, MAX_SAMPLES);

// ---- the machine panel ----

function fact(dl, label, value, field, wide = false) {
  dl.append(el("div", { class: wide ? "fact wide" : "fact" }, el("dt", { text: label }), el("dd", { text: value, "data-field": field })));
}

function renderMachine() {
  const m = state.machine;
  if (!m) return;
  const a = state.attributes || {};
  const dl = $("machine-facts");
  dl.replaceChildren();
  fact(dl, "CPU cores", String(m.num_cores), "num_cores");
  fact(dl, "Physical cores", String(m.num_physical_cores), "num_physical_cores");
  fact(dl, "Sockets", String(m.num_sockets), "num_sockets");
  fact(dl, "CPU frequency", m.cpu_frequency_khz ? `${(m.cpu_frequency_khz / 1e6).toFixed(2)} GHz` : "unknown", "cpu_frequency_khz");
  fact(dl, "Memory", formatBytes(m.memory_capacity), "memory_capacity");
  fact(dl, "Swap", formatBytes(m.swap_capacity || 0), "swap_capacity");
  if (a.kernel_version) fact(dl, "Kernel", a.kernel_version, "kernel_version");
  if (a.container_os_version) fact(dl, "OS", a.container_os_version, "os");
  fact(dl, "Machine ID", m.machine_id || "–", "machine_id", true);
  fact(dl, "Boot ID", m.boot_id || "–", "boot_id", true);
  fact(dl, "Cloud", m.cloud_provider, "cloud_provider");
  $("node-name").textContent = m.machine_id ? `machine ${m.machine_id.slice(0, 12)}` : "";
  renderFilesystems();
  const net = $("machine-net");
  net.replaceChildren();
  for (const n of m.network_devices || []) {
    net.append(el("div", { class: "row nic", "data-nic": n.name }, el("span", { class: "name", text: n.name }), el("span", { class: "muted", text: n.mac_address }), el("span", { text: `MTU ${n.mtu}` }), el("span", { text: n.speed ? `${n.speed} Mb/s` : "speed n/a" })));
  }
  if (!net.firstChild) net.append(el("p", { class: "muted", text: "no physical network devices" }));
}

function renderFilesystems() {
  const m = state.machine;
  const box = $("machine-fs");
  box.replaceChildren();
  for (const f of m?.filesystems || []) {
    const used = state.machineFs.find((x) => x.device === f.device);
    const pct = used && used.capacity ? Math.min(100, (100 * used.usage) / used.capacity) : undefined;
    const bar = el("span", { class: "bar", role: "img", "aria-label": pct === undefined ? "usage unknown" : `${pct.toFixed(0)}% used` }, el("span", { class: "fill", style: undefined }));
    if (pct !== undefined) bar.firstChild.style.width = `${pct}%`;
    box.append(el("div", { class: "row fs", "data-device": f.device }, el("span", { class: "name", text: f.device }), el("span", { text: formatBytes(f.capacity) }), bar, el("span", { class: "muted", text: pct === undefined ? "" : `${pct.toFixed(0)}%` })));
  }
  if (!box.firstChild) box.append(el("p", { class: "muted", text: "no filesystems" }));
}

// ---- charts ----

function chartBox(id, title, series, format, integer = true) {
  const canvas = el("canvas", { id, class: "chart", role: "img" });
  const legend = el("div", { class: "legend" }, ...series.map((s) => el("span", { class: "key" }, el("i", { class: "swatch", style: undefined }), s.label)));
  legend.querySelectorAll(".swatch").forEach((sw, i) => (sw.style.background = series[i].color));
  const value = el("span", { class: "value", id: `${id}-value` });
  const box = el("figure", { class: "chartbox" }, el("figcaption", {}, el("span", { text: title }), value), canvas, legend);
  const chart = new LineChart(canvas, { series, format, integer });
  state.charts.push(chart);
  return { box, chart, value };
}

function usageCharts(container, idPrefix) {
  container.replaceChildren();
  const cpu = chartBox(`${idPrefix}cpu`, "CPU", [{ label: "cores", color: "#2f6fdf" }], formatCores, false);
  const mem = chartBox(`${idPrefix}memory`, "Memory", [{ label: "working set", color: "#b8336a" }, { label: "usage", color: "#e59c2e" }], formatBytes);
  const net = chartBox(`${idPrefix}network`, "Network", [{ label: "receive", color: "#1c9a6b" }, { label: "transmit", color: "#7a4fd1" }], formatRate);
  const fs = chartBox(`${idPrefix}fs`, "Filesystem", [{ label: "used", color: "#c2571a" }], formatBytes);
  for (const c of [cpu, mem, net, fs]) container.append(c.box);
  return { cpu, mem, net, fs };
}

function fillCharts(charts, samples, fsPoints) {
  const cpu = derive(samples, cpuCores);
  const ws = derive(samples, memWs);
  charts.cpu.chart.set([cpu]);
  charts.cpu.value.textContent = cpu.length ? `${formatCores(last(cpu))} cores` : "";
  charts.mem.chart.set([ws, derive(samples, memUsage)]);
  charts.mem.value.textContent = ws.length ? formatBytes(last(ws)) : "";
  const rx = derive(samples, netRate("rx_bytes"));
  const tx = derive(samples, netRate("tx_bytes"));
  charts.net.chart.set([rx, tx]);
  charts.net.value.textContent = rx.length ? `↓${formatRate(last(rx))} ↑${formatRate(last(tx) || 0)}` : "no network";
  const fs = fsPoints || derive(samples, fsUsage);
  charts.fs.chart.set([fs]);
  charts.fs.value.textContent = fs.length ? formatBytes(last(fs)) : "no filesystem";
}

// ---- pods ----

function podsFromSpec() {
  const pods = new Map();
  const other = [];
  for (const [name, spec] of Object.entries(state.spec)) {
    const uid = spec.labels?.[POD_UID];
    if (!uid || spec.kind === "sandbox") {
      if (!uid) other.push(name);
      continue;
    }
    let p = pods.get(uid);
    if (!p) {
      p = { uid, name: spec.labels[POD_NAME], namespace: spec.labels[POD_NS], cgroup: null, containers: [] };
      pods.set(uid, p);
    }
    if (spec.kind === "pod") p.cgroup = name;
    else if (spec.kind === "container") p.containers.push({ name, container: spec.labels[CTR_NAME] || spec.aliases?.[0] || name, image: spec.image || "", id: spec.aliases?.[0] || "" });
  }
  const list = [...pods.values()].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  for (const p of list) p.containers.sort((a, b) => a.container.localeCompare(b.container));
  return { list, other: other.sort() };
}

const containerHref = (name) => `/containers${name === "/" ? "/" : name}`;

function statCells(name) {
  const cpu = el("span", { class: "num", "data-stat": "cpu" });
  const mem = el("span", { class: "num", "data-stat": "memory" });
  const net = el("span", { class: "num", "data-stat": "network" });
  const fs = el("span", { class: "num", "data-stat": "fs" });
  const sparkCanvas = el("canvas", { class: "spark", "aria-hidden": "true" });
  const spark = new LineChart(sparkCanvas, { series: [{ label: "cpu", color: "#2f6fdf" }], format: formatCores, spark: true });
  state.charts.push(spark);
  state.rows.set(name, { cpu, mem, net, fs, spark });
  return [cpu, mem, net, fs, sparkCanvas];
}

function renderPods() {
  const { list, other } = podsFromSpec();
  const signature = JSON.stringify([list.map((p) => [p.uid, p.cgroup, p.containers.map((c) => c.name)]), other]);
  if (signature === state.structure) return;
  state.structure = signature;
  state.rows.clear();
  state.charts = state.charts.filter((c) => {
    if (c.opts.spark) c.dispose();
    return !c.opts.spark;
  });
  $("pod-count").textContent = `(${list.length})`;
  const box = $("pod-list");
  box.replaceChildren();
  if (list.length === 0) box.append(el("p", { class: "muted", text: "No pods are running." }));
  const head = () => el("div", { class: "row head" }, el("span", { text: "container" }), el("span", { text: "CPU" }), el("span", { text: "memory" }), el("span", { text: "network" }), el("span", { text: "disk" }), el("span", { text: "CPU trend" }));
  for (const p of list) {
    const card = el("article", { class: "pod", "data-pod": `${p.namespace}/${p.name}` });
    const title = el("h3", {}, el("span", { class: "ns", text: `${p.namespace}/` }), p.cgroup ? el("a", { href: containerHref(p.cgroup), "data-nav": "", text: p.name }) : el("span", { text: p.name }));
    card.append(title);
    const rows = el("div", { class: "rows ctrs" }, head());
    if (p.cgroup) rows.append(el("div", { class: "row podrow" }, el("span", { class: "name muted", text: "(whole pod)" }), ...statCells(p.cgroup)));
    for (const c of p.containers) {
      const link = el("a", { href: containerHref(c.name), "data-nav": "", class: "container-link", "data-name": c.name, "data-container": c.container, text: c.container });
      rows.append(el("div", { class: "row ctr" }, el("span", { class: "name" }, link, el("small", { class: "muted image", text: c.image })), ...statCells(c.name)));
    }
    card.append(rows);
    box.append(card);
  }
  const ob = $("other-list");
  ob.replaceChildren();
  for (const name of other) {
    ob.append(el("div", { class: "row ctr" }, el("span", { class: "name" }, el("a", { href: containerHref(name), "data-nav": "", text: name })), ...statCells(name)));
  }
}

function updateRows() {
  for (const [name, row] of state.rows) {
    const s = state.samples.get(name) || [];
    const cpu = derive(s, cpuCores);
    const latest = s[s.length - 1];
    row.cpu.textContent = cpu.length ? formatCores(last(cpu)) : "–";
    row.mem.textContent = latest?.memory ? formatBytes(latest.memory.working_set) : "–";
    const rx = derive(s, netRate("rx_bytes"));
    row.net.textContent = rx.length ? formatRate(last(rx)) : "–";
    row.fs.textContent = latest?.filesystem ? formatBytes(latest.filesystem.totalUsageBytes) : "–";
    row.spark.set([cpu.slice(-40)]);
  }
}

// ---- the detail view ----

function renderDetailHead(name) {
  const spec = state.spec[name];
  const labels = spec?.labels || {};
  const title = labels[CTR_NAME] || (spec?.kind === "pod" ? labels[POD_NAME] : "") || name;
  $("detail-title").textContent = title;
  document.title = `${title} · tskubelet`;
  const dl = $("detail-facts");
  dl.replaceChildren();
  if (labels[POD_NAME]) fact(dl, "Pod", `${labels[POD_NS]}/${labels[POD_NAME]}`, "pod");
  fact(dl, "Kind", spec?.kind || "unknown", "kind");
  if (spec?.image) fact(dl, "Image", spec.image, "image");
  if (spec?.aliases?.[0]) fact(dl, "ID", spec.aliases[0], "id", true);
  fact(dl, "Cgroup", name, "cgroup", true);
  if (spec?.creation_time) fact(dl, "Created", new Date(spec.creation_time).toLocaleString(), "created");
  if (spec?.cpu) fact(dl, "CPU", spec.cpu.quota && spec.cpu.period ? `limit ${formatCores(spec.cpu.quota / spec.cpu.period)} cores, ${spec.cpu.limit} shares` : `${spec.cpu.limit} shares, no limit`, "cpu-spec");
  if (spec?.memory) fact(dl, "Memory limit", spec.memory.limit ? formatBytes(spec.memory.limit) : "none", "memory-limit");
}

function renderDetailNow(name) {
  const s = state.samples.get(name) || [];
  const c = s[s.length - 1];
  const dl = $("detail-now");
  dl.replaceChildren();
  if (!c) return;
  if (c.memory) {
    fact(dl, "RSS", formatBytes(c.memory.rss), "rss");
    fact(dl, "Page cache", formatBytes(c.memory.cache), "cache");
    fact(dl, "Max usage", formatBytes(c.memory.max_usage), "max-usage");
    fact(dl, "Limit hits", String(c.memory.failcnt), "failcnt");
  }
  if (c.cpu) fact(dl, "CPU time", `${(c.cpu.usage.total / 1e9).toFixed(2)} s`, "cpu-total");
  if (c.processes) {
    fact(dl, "Processes", String(c.processes.process_count), "processes");
    fact(dl, "Threads", String(c.processes.threads_current), "threads");
  }
  for (const i of c.network?.interfaces || []) fact(dl, `Interface ${i.name}`, `↓${formatBytes(i.rx_bytes)} ↑${formatBytes(i.tx_bytes)}`, `if-${i.name}`);
  fact(dl, "Samples", String(s.length), "samples");
}

// ---- routing and polling ----

function currentRoute() {
  const path = decodeURIComponent(location.pathname);
  if (path.startsWith("/containers/") && path.length > "/containers/".length) return { view: "detail", name: path.slice("/containers".length).replace(/\/+$/, "") || "/" };
  return { view: "overview" };
}

let overviewCharts = null;
let detailCharts = null;

function show() {
  const r = currentRoute();
  $("overview").hidden = r.view !== "overview";
  $("detail").hidden = r.view !== "detail";
  state.charts.filter((c) => !c.opts.spark).forEach((c) => c.dispose());
  state.charts = state.charts.filter((c) => c.opts.spark);
  overviewCharts = null;
  detailCharts = null;
  if (r.view === "overview") {
    document.title = "tskubelet · containers";
    state.detailName = null;
    overviewCharts = usageCharts($("node-charts"), "node-");
    state.structure = "";
  } else {
    state.detailName = r.name;
    detailCharts = usageCharts($("detail-charts"), "chart-");
    renderDetailHead(r.name);
  }
  void tick();
}

function setStatus(stateName, text) {
  const s = $("status");
  s.dataset.state = stateName;
  s.textContent = text;
}

async function refreshSlow(now) {
  if (now - state.machineAt > MACHINE_EVERY_MS || !state.machine) {
    const [m, a] = await Promise.all([getJSON("/api/v1.3/machine"), getJSON("/api/v2.0/attributes").catch(() => null)]);
    state.machine = m;
    state.attributes = a;
    state.machineAt = now;
    renderMachine();
  }
  if (now - state.specAt > SPEC_EVERY_MS) {
    state.spec = await getJSON("/api/v2.0/spec?recursive=true");
    state.specAt = now;
  }
}

async function tick() {
  clearTimeout(state.timer);
  if (document.hidden) {
    // Nobody is looking: check back later instead of polling.
    state.timer = setTimeout(() => void tick(), INTERVAL_MS * 5);
    return;
  }
  const now = Date.now();
  try {
    await refreshSlow(now);
    const name = state.detailName;
    if (name && state.detailLoaded !== name) {
      const hist = await getJSON(`/api/v2.0/stats${name === "/" ? "" : encodeURI(name)}?count=60`);
      for (const [n, list] of Object.entries(hist)) merge(n, list);
      state.detailLoaded = name;
    }
    const [stats, ms] = await Promise.all([getJSON("/api/v2.0/stats?recursive=true&count=1"), getJSON("/api/v2.0/machinestats?count=1")]);
    for (const [n, list] of Object.entries(stats)) merge(n, list);
    if (Object.keys(stats).some((n) => !state.spec[n])) state.specAt = 0;
    const latestFs = ms[ms.length - 1]?.filesystem || [];
    state.machineFs = latestFs;
    if (latestFs[0]?.usage !== undefined && ms[0]) {
      const t = Date.parse(ms[ms.length - 1].timestamp);
      if (!state.nodeFs.length || state.nodeFs[state.nodeFs.length - 1][0] !== t) state.nodeFs.push([t, latestFs[0].usage]);
      if (state.nodeFs.length > MAX_SAMPLES) state.nodeFs.shift();
    }
    for (const n of state.samples.keys()) if (!(n in stats) && n !== name) state.samples.delete(n);
    if (overviewCharts) {
      renderFilesystems();
      fillCharts(overviewCharts, state.samples.get("/") || [], state.nodeFs);
      renderPods();
      updateRows();
    }
    if (detailCharts && name) {
      renderDetailHead(name);
      fillCharts(detailCharts, state.samples.get(name) || []);
      renderDetailNow(name);
    }
    setStatus("live", `live · ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    setStatus("error", `error: ${err instanceof Error ? err.message : String(err)}`);
  }
  state.timer = setTimeout(() => void tick(), INTERVAL_MS);
}

document.addEventListener("click", (ev) => {
  const a = ev.target instanceof Element ? ev.target.closest("a[data-nav]") : null;
  if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  history.pushState(null, "", a.getAttribute("href"));
  show();
  window.scrollTo(0, 0);
});
window.addEventListener("popstate", show);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) void tick();
});
show();
