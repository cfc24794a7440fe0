/**
 * The kubelet API (10250) as users reach it: through the real apiserver with kubectl —
 * logs, exec (with and without a TTY), attach, port-forward, and node proxy paths.
 * The apiserver authenticates with its kubelet client certificate (cluster CA) and tskubelet
 * authorizes it with SubjectAccessReview.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { fetchText, freePort, sleep, startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

describe("kubectl through the apiserver to tskubelet's 10250", () => {
  let cp: TestCluster;
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  const node = "api-node";

  const podYaml = (name: string, command: string[], extra = ""): string =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  nodeName: ${node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: tskubelet.local/busybox:1.35\n    command: ${JSON.stringify(command)}\n${extra}`;
  const ready = (name: string): Promise<string> => cp.kubectl(["wait", "--for=condition=Ready", `pod/${name}`, "--timeout=60s"], { timeoutMs: 70_000 });

  before(async () => {
    [cp, rt] = await Promise.all([startCluster(), startContainerd({ cni: true })]);
    const kc = await cp.nodeKubeconfig(node);
    k = await startTskubelet(rt, {
      nodeName: node,
      extraArgs: [`--kubeconfig=${kc}`, `--client-ca-file=${cp.caCert}`, "--anonymous-auth=false", "--authentication-token-webhook=true", "--authorization-mode=Webhook"],
    });
    await waitFor(async () => ((await cp.kubectl(["get", "nodes", "--no-headers"])).includes(" Ready") ? true : undefined), { timeoutMs: 30_000, what: () => "node Ready" });
  });
  after(async () => {
    await k?.cleanup();
    await Promise.all([cp?.stop(), rt?.stop()]);
  });

  it("kubectl logs: --tail, --timestamps, -f and --previous", async () => {
    await cp.kubectl(["apply", "-f", "-"], { input: podYaml("talker", ["sh", "-c", "for i in 1 2 3 4 5; do echo line-$i; done; i=6; while true; do echo line-$i; i=$((i+1)); sleep 0.5; done"]) });
    await ready("talker");
    await waitFor(async () => ((await cp.kubectl(["logs", "talker"])).includes("line-7") ? true : undefined), { timeoutMs: 20_000, what: () => "line-7 in the logs" });
    const all = await cp.kubectl(["logs", "talker"]);
    assert.match(all, /^line-1\nline-2\nline-3\n/);
    const tail = (await cp.kubectl(["logs", "talker", "--tail=2"])).trim().split("\n");
    assert.equal(tail.length, 2);
    assert.match(tail[1] ?? "", /^line-\d+$/);
    const ts = (await cp.kubectl(["logs", "talker", "--tail=1", "--timestamps"])).trim();
    assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z line-\d+$/);
    // -f keeps streaming new lines.
    const follow = spawn("kubectl", ["--kubeconfig", cp.adminKubeconfig, "logs", "-f", "talker", "--tail=1"]);
    let followed = "";
    follow.stdout.on("data", (d: Buffer) => (followed += d.toString()));
    try {
      await waitFor(() => (followed.trim().split("\n").length >= 4 ? true : undefined), { timeoutMs: 15_000, what: () => `4 followed lines, got ${JSON.stringify(followed)}` });
    } finally {
      follow.kill();
    }
    const nums = followed.trim().split("\n").map((l) => Number(l.replace("line-", "")));
    for (let i = 1; i < nums.length; i++) assert.equal(nums[i], (nums[i - 1] ?? 0) + 1, "follow delivers consecutive lines");

    await cp.kubectl(["apply", "-f", "-"], { input: podYaml("crasher", ["sh", "-c", "echo run-$(date +%s%N); sleep 1; exit 3"]) });
    await waitFor(async () => {
      const p = JSON.parse(await cp.kubectl(["get", "pod", "crasher", "-o", "json"])) as { status: { containerStatuses?: { restartCount: number }[] } };
      return (p.status.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? true : undefined;
    }, { timeoutMs: 30_000, what: () => "crasher to restart" });
    const previous = await cp.kubectl(["logs", "crasher", "--previous"]);
    assert.match(previous, /^run-\S+\n$/);
    const current = await cp.kubectl(["logs", "crasher"]).catch(() => "");
    assert.notEqual(current, previous, "--previous shows the earlier instance");
  });

  it("kubectl exec runs a command and returns its exit code; -t gives a TTY", async () => {
    await cp.kubectl(["apply", "-f", "-"], { input: podYaml("shell", ["sleep", "3600"]) });
    await ready("shell");
    assert.equal(await cp.kubectl(["exec", "shell", "--", "sh", "-c", "echo out; echo err >&2"]), "out\n");
    await assert.rejects(cp.kubectl(["exec", "shell", "--", "sh", "-c", "exit 7"]), /exit code 7/);
    // -it needs a terminal on kubectl's side: util-linux `script` gives it one.
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const cmd = `kubectl --kubeconfig ${cp.adminKubeconfig} exec -it shell -- sh -c 'test -t 0 && test -t 1 && echo tty-yes'`;
    const { stdout } = await promisify(execFile)("script", ["-qec", cmd, "/dev/null"], { timeout: 30_000 });
    assert.match(stdout, /tty-yes\r\n/, "a TTY turns \\n into \\r\\n");
    const stdin = await cp.kubectl(["exec", "-i", "shell", "--", "sh", "-c", "read x; echo got-$x"], { input: "hello\n" });
    assert.equal(stdin, "got-hello\n");
  });

  it("kubectl attach streams a running container's output", async () => {
    await cp.kubectl(["apply", "-f", "-"], { input: podYaml("ticker", ["sh", "-c", "while true; do echo tick; sleep 0.3; done"]) });
    await ready("ticker");
    const child = spawn("kubectl", ["--kubeconfig", cp.adminKubeconfig, "attach", "ticker"]);
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => ((out.match(/tick/g) ?? []).length >= 3 ? true : undefined), { timeoutMs: 15_000, what: () => `ticks from attach, got ${JSON.stringify(out)}` });
    } finally {
      child.kill();
    }
  });

  it("kubectl port-forward reaches a port inside the pod", async () => {
    await cp.kubectl(["apply", "-f", "-"], { input: podYaml("webpf", ["httpd", "-f", "-p", "8080", "-h", "/var/www"]) });
    await ready("webpf");
    const local = await freePort();
    const child = spawn("kubectl", ["--kubeconfig", cp.adminKubeconfig, "port-forward", "pod/webpf", `${local}:8080`]);
    try {
      const body = await waitFor(() => fetchText(`http://127.0.0.1:${local}/`, 2000), { timeoutMs: 20_000, what: () => "the forwarded port to answer" });
      assert.match(body, /tskubelet test image/);
      // A second connection over the same forward.
      assert.match(await fetchText(`http://127.0.0.1:${local}/`, 2000), /tskubelet test image/);
    } finally {
      child.kill();
    }
    await sleep(200);
  });

  it("kubectl get --raw through the node proxy: healthz, pods, stats/summary, metrics/resource", async () => {
    const base = `/api/v1/nodes/${node}/proxy`;
    assert.equal(await cp.kubectl(["get", "--raw", `${base}/healthz`]), "ok");
    const pods = JSON.parse(await cp.kubectl(["get", "--raw", `${base}/pods`])) as { kind: string; items: { metadata: { name: string } }[] };
    assert.equal(pods.kind, "PodList");
    assert.ok(pods.items.some((p) => p.metadata.name === "shell"));
    // Stats come from a background sample refreshed every 10 s: wait for the newest pod to appear.
    const summary = await waitFor(async () => {
      const x = JSON.parse(await cp.kubectl(["get", "--raw", `${base}/stats/summary`])) as { node: { nodeName: string; cpu?: object; memory?: object }; pods: { podRef: { name: string } }[] };
      return x.pods.some((p) => p.podRef.name === "shell") ? x : undefined;
    }, { timeoutMs: 40_000, intervalMs: 1000, what: () => "the shell pod in /stats/summary" });
    assert.equal(summary.node.nodeName, node);
    assert.ok(summary.node.cpu && summary.node.memory);
    const resource = await waitFor(async () => {
      const r = await cp.kubectl(["get", "--raw", `${base}/metrics/resource`]);
      return /^container_memory_working_set_bytes\{container="main",namespace="default",pod="shell"\} \d/m.test(r) ? r : undefined;
    }, { timeoutMs: 40_000, intervalMs: 1000, what: () => "the shell pod in /metrics/resource" });
    assert.match(resource, /^node_cpu_usage_seconds_total \d/m);
    const metrics = await cp.kubectl(["get", "--raw", `${base}/metrics`]);
    assert.match(metrics, new RegExp(`^kubelet_node_name\\{node="${node}"\\} 1$`, "m"));
    assert.match(metrics, /^kubelet_running_pods \d+$/m);
  });

  it("refuses an identity that may not use the node API (403 naming user, verb and subresource)", async () => {
    const kc = await cp.nodeKubeconfig("someone-else");
    await assert.rejects(cp.kubectl(["get", "--raw", `/api/v1/nodes/${node}/proxy/pods`], { kubeconfig: kc }), /forbidden|Forbidden/);
    // Straight to 10250 with a client certificate the kubelet trusts but RBAC does not allow.
    const { readFile } = await import("node:fs/promises");
    const { request } = await import("node:https");
    const yaml = await readFile(kc, "utf8");
    const cert = Buffer.from(/client-certificate-data: (\S+)/.exec(yaml)?.[1] ?? "", "base64");
    const key = Buffer.from(/client-key-data: (\S+)/.exec(yaml)?.[1] ?? "", "base64");
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const r = request({ host: "127.0.0.1", port: k.port, path: "/pods", cert, key, rejectUnauthorized: false }, (x) => {
        let body = "";
        x.on("data", (d: Buffer) => (body += d.toString()));
        x.on("end", () => resolve({ status: x.statusCode ?? 0, body }));
      });
      r.on("error", reject);
      r.end();
    });
    assert.equal(res.status, 403);
    assert.match(res.body, /^Forbidden \(user=system:node:someone-else, verb=get, resource=nodes, subresource\(s\)=\[pods proxy\]\)/);
  });
});
