/**
 * `kubectl top` end to end: the real control plane, the upstream metrics-server (test/cluster/
 * metrics-server.sh, a host process registered as the v1beta1.metrics.k8s.io APIService) scraping
 * tskubelet's /metrics/resource with its client certificate, and kubectl reading the result
 * through the aggregator.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot, startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { freePort, startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

const run = promisify(execFile);

/** "250m" → 0.25, "2" → 2 (cores). */
function cores(q: string): number {
  return q.endsWith("m") ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

/** "12Mi", "300k", "4096" → bytes. */
function bytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G)?$/.exec(q);
  if (!m) return NaN;
  const mult: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9 };
  return Number(m[1]) * (m[2] ? (mult[m[2]] ?? 1) : 1);
}

describe("kubectl top through metrics-server scraping tskubelet", () => {
  let cp: TestCluster;
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  let msStarted = false;
  const node = "top-node";
  const script = join(repoRoot(), "test/cluster/metrics-server.sh");

  const metricsServer = async (action: "start" | "stop", extra: string[] = []): Promise<string> => {
    const env = { ...process.env, KTP_METRICS_SERVER_BIN: join(repoRoot(), "test/cluster/bin/metrics-server") };
    try {
      const { stdout } = await run("bash", [script, action, "--data-dir", cp.dataDir, ...extra], { env, timeout: 120_000 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      throw new Error(`metrics-server.sh ${action} failed:\n${e.stdout ?? ""}${e.stderr ?? String(err)}`);
    }
  };

  before(async () => {
    [cp, rt] = await Promise.all([startCluster(), startContainerd({ cni: true })]);
    const kc = await cp.nodeKubeconfig(node);
    k = await startTskubelet(rt, {
      nodeName: node,
      extraArgs: [`--kubeconfig=${kc}`, `--client-ca-file=${cp.caCert}`, "--anonymous-auth=false", "--authentication-token-webhook=true", "--authorization-mode=Webhook"],
    });
    await waitFor(async () => ((await cp.kubectl(["get", "nodes", "--no-headers"])).includes(" Ready") ? true : undefined), { timeoutMs: 30_000, what: () => "node Ready" });
    msStarted = true;
    await metricsServer("start", ["--port", String(await freePort())]);
  });
  after(async () => {
    if (msStarted) await metricsServer("stop").catch((e: unknown) => process.stderr.write(`${String(e)}\n`));
    await k?.cleanup();
    await Promise.all([cp?.stop(), rt?.stop()]);
  });

  it("registers v1beta1.metrics.k8s.io and it becomes Available", async () => {
    await waitFor(async () => {
      const svc = JSON.parse(await cp.kubectl(["get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json"])) as { status?: { conditions?: { type: string; status: string; message?: string }[] } };
      const c = svc.status?.conditions?.find((x) => x.type === "Available");
      return c?.status === "True" ? true : undefined;
    }, { timeoutMs: 60_000, what: () => "APIService v1beta1.metrics.k8s.io Available" });
  });

  it("kubectl top node and kubectl top pod show a busy pod's usage", async () => {
    await cp.kubectl(["apply", "-f", "-"], {
      input: `apiVersion: v1\nkind: Pod\nmetadata:\n  name: busy\nspec:\n  nodeName: ${node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: spin\n    image: tskubelet.local/busybox:1.35\n    command: ["sh", "-c", "while true; do :; done"]\n`,
    });
    await cp.kubectl(["wait", "--for=condition=Ready", "pod/busy", "--timeout=60s"], { timeoutMs: 70_000 });

    // metrics-server needs two scrapes (10 s apart) before it reports a rate.
    let last = "";
    const nodeRow = await waitFor(async () => {
      last = await cp.kubectl(["top", "node", "--no-headers"]).catch((e: unknown) => String(e));
      const row = last.split("\n").map((l) => l.trim().split(/\s+/)).find((f) => f[0] === node);
      if (!row || row.length < 5) return undefined;
      const [, cpu = "", cpuPct = "", mem = "", memPct = ""] = row;
      return cores(cpu) > 0 && bytes(mem) > 0 ? { cpu, cpuPct, mem, memPct } : undefined;
    }, { timeoutMs: 120_000, intervalMs: 2_000, what: () => `kubectl top node to show ${node} with usage; last output: ${last}` });
    assert.match(nodeRow.cpuPct, /^\d+%$/);
    assert.match(nodeRow.memPct, /^\d+%$/);

    const podRow = await waitFor(async () => {
      last = await cp.kubectl(["top", "pod", "busy", "--no-headers"]).catch((e: unknown) => String(e));
      const f = last.trim().split(/\s+/);
      if (f[0] !== "busy" || f.length < 3) return undefined;
      const [, cpu = "", mem = ""] = f;
      return cores(cpu) > 0 ? { cpu, mem } : undefined;
    }, { timeoutMs: 90_000, intervalMs: 2_000, what: () => `kubectl top pod busy to show CPU; last output: ${last}` });
    // A shell spinning on one core of a two-core machine: well above idle.
    assert.ok(cores(podRow.cpu) >= 0.05, `busy pod CPU ${podRow.cpu}`);
    // kubectl rounds memory to Mi: a spinning shell's working set may show as 0Mi.
    assert.ok(bytes(podRow.mem) >= 0, `busy pod memory ${podRow.mem}`);
    assert.ok(cores(nodeRow.cpu) > 0);

    const containers = await cp.kubectl(["top", "pod", "busy", "--containers", "--no-headers"]);
    assert.match(containers, /^busy\s+spin\s+\d+m?\s+\d+(\.\d+)?(Ki|Mi|Gi)?\s*$/m);

    // The same through the API: NodeMetrics and PodMetrics objects.
    const nm = JSON.parse(await cp.kubectl(["get", "--raw", `/apis/metrics.k8s.io/v1beta1/nodes/${node}`])) as { kind: string; metadata: { name: string }; window: string; usage: { cpu: string; memory: string } };
    assert.equal(nm.kind, "NodeMetrics");
    assert.equal(nm.metadata.name, node);
    assert.ok(nm.usage.cpu && nm.usage.memory);
    assert.ok(bytes(nm.usage.memory) > 0, `node memory ${nm.usage.memory}`);
    const pm = JSON.parse(await cp.kubectl(["get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy"])) as { kind: string; containers: { name: string; usage: { cpu: string; memory: string } }[] };
    assert.equal(pm.kind, "PodMetrics");
    assert.deepEqual(pm.containers.map((c) => c.name), ["spin"]);
    // Unrounded here: the container's working set is not zero.
    assert.ok(bytes(pm.containers[0]?.usage.memory ?? "") > 0, `busy container memory ${pm.containers[0]?.usage.memory}`);
  });
});
