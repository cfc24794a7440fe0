/**
 * Probes on a real containerd through the real tskubelet command, standalone (static pods): a
 * failing exec liveness probe restarts its container, an httpGet readiness probe follows a file
 * busybox httpd serves, a startup probe holds back liveness, probes against a closed port, a
 * missing named port, a missing binary and a slow command fail with clear messages without disturbing the other
 * pods, and /metrics/probes counts the results.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { containerStatus, staticPodYaml } from "../support/pods.js";
import { fetchText, startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

const IMAGE = "tskubelet.local/busybox:1.35";
const WAIT = { timeoutMs: 60_000, intervalMs: 250 };

interface Event {
  pod: string;
  type: string;
  reason: string;
  message: string;
}

/** The events tskubelet logged (at -v=2 every event is a log line "event"). */
function eventsOf(output: string, pod: string): Event[] {
  const out: Event[] = [];
  for (const line of output.split("\n")) {
    const m = /"event" pod="([^"]*)" type="(\w+)" reason="(\w+)" message=(".*")$/.exec(line);
    if (!m || m[1] !== `default/${pod}`) continue;
    out.push({ pod: m[1], type: m[2] ?? "", reason: m[3] ?? "", message: JSON.parse(m[4] ?? '""') as string });
  }
  return out;
}

function manifest(name: string, body: string): string {
  return staticPodYaml(name, `  restartPolicy: Always
${body}`);
}

describe("probes on containerd (standalone)", () => {
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let www: string;
  const full = (name: string): string => `${name}-${k.nodeName}`;

  before(async () => {
    rt = await startContainerd({ cni: true });
    k = await startTskubelet(rt);
    www = join(k.dir, "www");
    await mkdir(www, { recursive: true });
    await Promise.all([
      k.writeManifest(
        "liveness.yaml",
        manifest(
          "liveness",
          `  containers:
  - name: main
    image: ${IMAGE}
    command: ["sleep", "3600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 2
`,
        ),
      ),
      k.writeManifest(
        "ready.yaml",
        manifest(
          "ready",
          `  containers:
  - name: main
    image: ${IMAGE}
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
      httpGet: {path: /ready.txt, port: http, httpHeaders: [{name: X-Check, value: probe}]}
      periodSeconds: 1
      failureThreshold: 1
    volumeMounts:
    - name: www
      mountPath: /www
  volumes:
  - name: www
    hostPath:
      path: ${www}
      type: Directory
`,
        ),
      ),
      k.writeManifest(
        "startup.yaml",
        manifest(
          "startup",
          `  containers:
  - name: main
    image: ${IMAGE}
    command: ["sh", "-c", "sleep 4; touch /tmp/started; exec sleep 3600"]
    startupProbe:
      exec: {command: ["cat", "/tmp/started"]}
      periodSeconds: 1
      failureThreshold: 60
    livenessProbe:
      exec: {command: ["cat", "/tmp/started"]}
      periodSeconds: 1
      failureThreshold: 1
`,
        ),
      ),
      k.writeManifest(
        "broken.yaml",
        manifest(
          "broken",
          `  containers:
  - name: closed
    image: ${IMAGE}
    command: ["sleep", "3600"]
    readinessProbe:
      tcpSocket: {port: 9999}
      periodSeconds: 1
  - name: noport
    image: ${IMAGE}
    command: ["sleep", "3600"]
    readinessProbe:
      httpGet: {port: admin}
      periodSeconds: 1
  - name: nobinary
    image: ${IMAGE}
    command: ["sleep", "3600"]
    readinessProbe:
      exec: {command: ["/no/such/binary"]}
      periodSeconds: 1
  - name: slow
    image: ${IMAGE}
    command: ["sleep", "3600"]
    readinessProbe:
      exec: {command: ["sleep", "5"]}
      timeoutSeconds: 1
      periodSeconds: 2
`,
        ),
      ),
    ]);
  });
  after(async () => {
    await k?.cleanup();
    await rt?.stop();
  });

  it("a failing exec liveness probe restarts the container (restartCount grows, Unhealthy and Killing events)", async () => {
    const p = await waitFor(async () => {
      const pod = await k.pod("liveness");
      return (containerStatus(pod)?.restartCount ?? 0) >= 1 ? pod : undefined;
    }, { ...WAIT, what: () => "the liveness pod to restart its container" });
    assert.ok(containerStatus(p)?.lastState?.terminated, "the killed container is the last state");
    const events = eventsOf(k.output(), full("liveness"));
    assert.ok(
      events.some((e) => e.type === "Warning" && e.reason === "Unhealthy" && /^Liveness probe failed: cat: can't open '\/tmp\/healthy'/.test(e.message)),
      JSON.stringify(events),
    );
    assert.ok(events.some((e) => e.reason === "Killing" && e.message === "Container main failed liveness probe, will be restarted"), JSON.stringify(events));
  });

  it("an httpGet readiness probe makes the container ready only while the file it serves exists", async () => {
    const notReady = await waitFor(async () => {
      const pod = await k.pod("ready");
      return containerStatus(pod)?.state?.running && eventsOf(k.output(), full("ready")).some((e) => e.reason === "Unhealthy") ? pod : undefined;
    }, { ...WAIT, what: () => "the ready pod to run and fail its readiness probe" });
    assert.equal(containerStatus(notReady)?.ready, false);
    assert.equal(notReady.status?.conditions?.find((c) => c.type === "Ready")?.status, "False");
    assert.match(eventsOf(k.output(), full("ready")).find((e) => e.reason === "Unhealthy")?.message ?? "", /^Readiness probe failed: HTTP probe failed with statuscode: 404$/);

    await writeFile(join(www, "ready.txt"), "yes\n");
    const ready = await waitFor(async () => {
      const pod = await k.pod("ready");
      return containerStatus(pod)?.ready === true ? pod : undefined;
    }, { ...WAIT, what: () => "the ready pod to turn ready" });
    assert.equal(ready.status?.conditions?.find((c) => c.type === "Ready")?.status, "True");

    await rm(join(www, "ready.txt"));
    await waitFor(async () => containerStatus(await k.pod("ready"))?.ready === false, { ...WAIT, what: () => "the ready pod to turn unready again" });
    assert.equal(containerStatus(await k.pod("ready"))?.restartCount, 0, "readiness never restarts");
  });

  it("a startup probe holds back liveness until it succeeds", async () => {
    const p = await waitFor(async () => {
      const pod = await k.pod("startup");
      return containerStatus(pod)?.started === true && containerStatus(pod)?.ready === true ? pod : undefined;
    }, { ...WAIT, what: () => "the startup pod to start" });
    const events = eventsOf(k.output(), full("startup"));
    assert.ok(events.some((e) => e.reason === "Unhealthy" && e.message.startsWith("Startup probe failed: ")), JSON.stringify(events));
    assert.ok(!events.some((e) => e.message.startsWith("Liveness probe failed")), "liveness never ran before the file existed");
    assert.equal(containerStatus(p)?.restartCount, 0);
  });

  it("probes against a closed port, a missing named port, a missing binary and a command past its timeout fail clearly", async () => {
    const messages = await waitFor(() => {
      const m = eventsOf(k.output(), full("broken")).filter((e) => e.reason === "Unhealthy").map((e) => e.message);
      const want = [/^Readiness probe failed: dial tcp [\d.]+:9999: connect: connection refused$/, /^Readiness probe failed: couldn't find port "admin" in container noport$/, /^Readiness probe failed: .*\/no\/such\/binary/, /^Readiness probe failed: command "sleep 5" timed out$/];
      return want.every((re) => m.some((x) => re.test(x))) ? m : undefined;
    }, { ...WAIT, what: () => `Unhealthy events of the broken pod; so far: ${JSON.stringify(eventsOf(k.output(), full("broken")))}` });
    assert.ok(messages.length >= 4);
    const p = await k.pod("broken");
    for (const c of ["closed", "noport", "nobinary", "slow"]) {
      assert.ok(containerStatus(p, c)?.state?.running, `${c} keeps running`);
      assert.equal(containerStatus(p, c)?.ready, false, `${c} is not ready`);
      assert.equal(containerStatus(p, c)?.restartCount, 0);
    }
  });

  it("/metrics/probes counts successes and failures", async () => {
    const text = await waitFor(async () => {
      const t = await fetchText(`http://127.0.0.1:${k.readOnlyPort}/metrics/probes`);
      return /prober_probe_total\{[^}]*probe_type="Startup"[^}]*result="successful"/.test(t) ? t : undefined;
    }, { ...WAIT, what: () => "a successful startup probe in /metrics/probes" });
    const count = (type: string, result: string, pod: string, container = "main"): number => {
      const line = text.split("\n").find((l) => l.startsWith("prober_probe_total{") && l.includes(`probe_type="${type}"`) && l.includes(`result="${result}"`) && l.includes(`pod="${full(pod)}"`) && l.includes(`container="${container}"`));
      return Number(line?.split(" ").pop() ?? 0);
    };
    assert.ok(count("Liveness", "failed", "liveness") >= 2, text);
    assert.ok(count("Readiness", "successful", "ready") >= 1, text);
    assert.ok(count("Readiness", "failed", "ready") >= 1, text);
    assert.ok(count("Startup", "failed", "startup") >= 1, text);
    assert.ok(count("Readiness", "failed", "broken", "closed") >= 1, text);
    assert.match(text, /prober_probe_duration_seconds_bucket\{[^}]*probe_type="Readiness"/);
  });
});
