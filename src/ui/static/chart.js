// A small canvas line chart: time on x, one or more series on y, hi-DPI aware, redrawn on resize.
// The canvas carries data-samples (points in the first series) and data-last (its newest value),
// which is what the browser test watches.

const GRID = "rgba(128,128,128,0.22)";

function niceStep(range, ticks) {
  const raw = range / Math.max(1, ticks);
  const mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

function clockLabel(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export class LineChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{series: {label: string, color: string}[], format: (v: number) => string, spark?: boolean, integer?: boolean}} opts
   */
  constructor(canvas, opts) {
    this.canvas = canvas;
    this.opts = opts;
    this.data = opts.series.map(() => []);
    this.canvas.dataset.samples = "0";
    if (typeof ResizeObserver !== "undefined") {
      this.observer = new ResizeObserver(() => this.draw());
      this.observer.observe(canvas);
    }
  }

  /** @param {[number, number][][]} points one array of [timeMs, value] per series */
  set(points) {
    this.data = points;
    const first = points[0] || [];
    this.canvas.dataset.samples = String(first.length);
    const last = first[first.length - 1];
    this.canvas.dataset.last = last ? String(last[1]) : "";
    this.canvas.setAttribute("aria-label", `${this.opts.series.map((s) => s.label).join(", ")}: ${last ? this.opts.format(last[1]) : "no data"}`);
    this.draw();
  }

  dispose() {
    if (this.observer) this.observer.disconnect();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (w === 0 || h === 0) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext("2d");
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const spark = this.opts.spark === true;
    const all = this.data.flat();
    const style = getComputedStyle(c);
    const ink = style.getPropertyValue("--chart-ink").trim() || "#555";
    g.font = "11px system-ui, sans-serif";
    const pad = spark ? { l: 1, r: 1, t: 2, b: 2 } : { l: 58, r: 10, t: 8, b: 22 };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    if (all.length === 0) {
      if (!spark) {
        g.fillStyle = ink;
        g.fillText("waiting for samples…", pad.l + 8, pad.t + ph / 2);
      }
      return;
    }
    let t0 = Infinity;
    let t1 = -Infinity;
    let vmax = 0;
    for (const [t, v] of all) {
      if (t < t0) t0 = t;
      if (t > t1) t1 = t;
      if (v > vmax) vmax = v;
    }
    if (t1 === t0) t0 = t1 - 1000;
    let step = niceStep(vmax || 1, spark ? 1 : 4);
    if (this.opts.integer) step = Math.max(1, step);
    const top = Math.max(step, Math.ceil((vmax || 1) / step) * step);
    const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * pw;
    const y = (v) => pad.t + ph - (v / top) * ph;
    if (!spark) {
      g.strokeStyle = GRID;
      g.lineWidth = 1;
      g.fillStyle = ink;
      g.textAlign = "right";
      g.textBaseline = "middle";
      for (let v = 0; v <= top + step / 2; v += step) {
        const yy = Math.round(y(v)) + 0.5;
        g.beginPath();
        g.moveTo(pad.l, yy);
        g.lineTo(pad.l + pw, yy);
        g.stroke();
        g.fillText(this.opts.format(v), pad.l - 6, yy);
      }
      g.textAlign = "center";
      g.textBaseline = "top";
      const labels = Math.max(2, Math.min(5, Math.floor(pw / 90)));
      for (let i = 0; i < labels; i++) {
        const t = t0 + ((t1 - t0) * i) / (labels - 1);
        g.fillText(clockLabel(t), Math.min(Math.max(x(t), pad.l + 24), pad.l + pw - 24), pad.t + ph + 5);
      }
    }
    this.data.forEach((pts, i) => {
      if (pts.length === 0) return;
      const color = this.opts.series[i]?.color || "#36c";
      g.strokeStyle = color;
      g.lineWidth = spark ? 1.25 : 1.75;
      g.lineJoin = "round";
      g.beginPath();
      pts.forEach(([t, v], j) => (j === 0 ? g.moveTo(x(t), y(v)) : g.lineTo(x(t), y(v))));
      g.stroke();
      if (this.data.length === 1) {
        g.globalAlpha = 0.12;
        g.fillStyle = color;
        g.lineTo(x(pts[pts.length - 1][0]), pad.t + ph);
        g.lineTo(x(pts[0][0]), pad.t + ph);
        g.closePath();
        g.fill();
        g.globalAlpha = 1;
      }
      if (pts.length === 1) {
        g.fillStyle = color;
        g.beginPath();
        g.arc(x(pts[0][0]), y(pts[0][1]), 2.5, 0, Math.PI * 2);
        g.fill();
      }
    });
  }
}

export function formatBytes(v) {
  if (!Number.isFinite(v)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let n = Math.abs(v);
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${v < 0 ? "-" : ""}${n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

export function formatRate(v) {
  return `${formatBytes(v)}/s`;
}

export function formatCores(v) {
  if (!Number.isFinite(v)) return "–";
  if (v === 0) return "0";
  if (v < 1) return `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)}m`;
  return v.toFixed(2);
}
