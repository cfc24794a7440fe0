/** Shared by the stats and UI integration tests: a busy pod and a small Prometheus text parser. */

/** Two containers: one busy (CPU, memory, a file in its rootfs and one in an emptyDir, log lines), one serving HTTP (network). */
export const BUSY_POD = `apiVersion: v1
kind: Pod
metadata:
  name: busy
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: busy
    image: tskubelet.local/busybox:1.35
    command: ["sh", "-c", "dd if=/dev/zero of=/filler bs=1024 count=2048 2>/dev/null; dd if=/dev/zero of=/scratch/data bs=1024 count=1024 2>/dev/null; echo started; while true; do head -c 400000 /dev/urandom | md5sum >/dev/null; echo tick; sleep 0.1; done"]
    volumeMounts:
    - name: scratch
      mountPath: /scratch
  - name: web
    image: tskubelet.local/busybox:1.35
    command: ["httpd", "-f", "-p", "8080", "-h", "/etc"]
  volumes:
  - name: scratch
    emptyDir: {}
`;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestamp?: number;
}

/** A small parser of the text exposition, enough to find samples by name and labels. */
export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)(?: (\d+))?$/.exec(line);
    if (!m?.[1] || m[4] === undefined) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1] ?? ""] = (lm[2] ?? "").replace(/\\"/g, '"').replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
    out.push({ name: m[1], labels, value: Number(m[4]), ...(m[5] ? { timestamp: Number(m[5]) } : {}) });
  }
  return out;
}
