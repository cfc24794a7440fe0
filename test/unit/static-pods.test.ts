import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import type { V1Pod } from "@kubernetes/client-node";
import { applyApiDefaults, applyStaticPodDefaults, defaultPullPolicy, staticPodUID } from "../../src/pods/defaults.js";
import { createFileSource, parseManifest } from "../../src/pods/sources/file.js";
import { validatePod } from "../../src/pods/validation.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

const POD_YAML = (name: string, image = "nginx:1.25"): string =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers:\n  - name: main\n    image: ${image}\n`;

function basePod(): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", labels: { app: "web" } },
    spec: { containers: [{ name: "main", image: "nginx:1.25", ports: [{ containerPort: 80 }] }] },
  };
}

function fieldsOf(pod: V1Pod): string[] {
  return validatePod(pod).map((p) => p.field);
}

function problemAt(pod: V1Pod, field: string): string {
  const p = validatePod(pod).find((x) => x.field === field);
  assert.ok(p, `expected a problem at ${field}, got ${JSON.stringify(validatePod(pod))}`);
  return p.reason;
}

describe("parseManifest", () => {
  it("a single YAML Pod", () => {
    const r = parseManifest(POD_YAML("web"));
    assert.equal(r.length, 1);
    const first = r[0];
    assert.ok(first && "pod" in first);
    assert.equal(first.pod.metadata?.name, "web");
    assert.equal(first.pod.spec?.containers[0]?.image, "nginx:1.25");
  });

  it("multi-document YAML gives one entry per document, skipping empty ones", () => {
    const r = parseManifest(`---\n${POD_YAML("a")}---\n---\n${POD_YAML("b")}---\n`);
    assert.deepEqual(
      r.map((x) => ("pod" in x ? x.pod.metadata?.name : x.problem.field)),
      ["a", "b"],
    );
  });

  it("JSON", () => {
    const r = parseManifest(JSON.stringify(basePod()));
    assert.equal(r.length, 1);
    assert.ok(r[0] && "pod" in r[0]);
    assert.equal(r[0].pod.metadata?.name, "web");
  });

  it("wrong kind names the kind field", () => {
    const r = parseManifest("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n");
    assert.equal(r.length, 1);
    assert.ok(r[0] && "problem" in r[0]);
    assert.equal(r[0].problem.field, "kind");
    assert.match(r[0].problem.reason, /"Deployment"/);
  });

  it("wrong or missing apiVersion names the apiVersion field", () => {
    for (const text of ["apiVersion: v2\nkind: Pod\n", "kind: Pod\nmetadata: {name: x}\n"]) {
      const r = parseManifest(text);
      assert.equal(r.length, 1);
      assert.ok(r[0] && "problem" in r[0], text);
      assert.equal(r[0].problem.field, "apiVersion");
    }
  });

  it("a YAML syntax error is a problem, not an exception", () => {
    for (const text of ["apiVersion: v1\nkind: Pod\nmetadata: {name: [x\n", "a: b\n c: : d\n\t- x"]) {
      const r = parseManifest(text);
      assert.ok(r.length >= 1, text);
      assert.ok(r.every((x) => "problem" in x), text);
      const first = r[0];
      assert.ok(first && "problem" in first);
      assert.match(first.problem.reason, /cannot parse/);
    }
  });

  it("empty, whitespace-only and comment-only files have no documents", () => {
    for (const text of ["", "\n\n", "# nothing here\n", "---\n---\n"]) assert.deepEqual(parseManifest(text), [], JSON.stringify(text));
  });

  it("a scalar or list document is a problem; in a multi-doc file the problem says which document", () => {
    const r = parseManifest(`${POD_YAML("a")}---\n- 1\n- 2\n`);
    assert.equal(r.length, 2);
    assert.ok(r[0] && "pod" in r[0]);
    assert.ok(r[1] && "problem" in r[1]);
    assert.match(r[1].problem.reason, /document 2/);
    assert.match(r[1].problem.reason, /Pod object/);
  });
});

describe("validatePod", () => {
  it("a good pod has no problems", () => {
    assert.deepEqual(validatePod(basePod()), []);
  });

  it("no name", () => {
    const p = basePod();
    delete p.metadata?.name;
    assert.match(problemAt(p, "metadata.name"), /Required value/);
  });

  it("bad name and namespace", () => {
    const p = basePod();
    p.metadata = { name: "Web_1", namespace: "Bad.NS" };
    assert.match(problemAt(p, "metadata.name"), /"Web_1"/);
    assert.match(problemAt(p, "metadata.namespace"), /"Bad\.NS"/);
  });

  it("no spec, no containers, empty containers", () => {
    const p = basePod();
    delete p.spec;
    assert.deepEqual(fieldsOf(p), ["spec"]);
    const q = basePod();
    q.spec = { containers: [] };
    assert.match(problemAt(q, "spec.containers"), /Required value/);
    const r = basePod();
    r.spec = {} as NonNullable<V1Pod["spec"]>;
    assert.match(problemAt(r, "spec.containers"), /Required value/);
  });

  it("duplicate container names, across init and regular containers", () => {
    const p = basePod();
    p.spec = {
      initContainers: [{ name: "setup", image: "busybox:1.36" }],
      containers: [
        { name: "setup", image: "nginx:1.25" },
        { name: "main", image: "nginx:1.25" },
        { name: "main", image: "nginx:1.25" },
      ],
    };
    assert.match(problemAt(p, "spec.containers[0].name"), /Duplicate value: "setup"/);
    assert.match(problemAt(p, "spec.containers[2].name"), /Duplicate value: "main"/);
    assert.deepEqual(fieldsOf(p), ["spec.containers[0].name", "spec.containers[2].name"]);
  });

  it("container name missing or not a DNS label", () => {
    const p = basePod();
    p.spec = { containers: [{ name: "", image: "nginx" }, { name: "Main_1", image: "nginx" }] };
    assert.match(problemAt(p, "spec.containers[0].name"), /Required value/);
    assert.match(problemAt(p, "spec.containers[1].name"), /"Main_1"/);
  });

  it("image missing or not a valid reference", () => {
    const p = basePod();
    p.spec = {
      containers: [
        { name: "a", image: "" },
        { name: "b", image: "Nginx:1.25" },
        { name: "c", image: "nginx:" },
        { name: "d", image: "nginx latest" },
      ],
    };
    assert.match(problemAt(p, "spec.containers[0].image"), /Required value/);
    for (const i of [1, 2, 3]) assert.match(problemAt(p, `spec.containers[${i}].image`), /not a valid image reference/);
  });

  it("valid image references", () => {
    const digest = "sha256:" + "a".repeat(64);
    for (const image of ["nginx", "nginx:1.25", "library/nginx:latest", "registry.k8s.io/pause:3.9", "localhost:5000/a/b:v1", `busybox@${digest}`, `busybox:1.36@${digest}`, "ghcr.io/org/my_app-x.y:1.0-rc.1"]) {
      const p = basePod();
      p.spec = { containers: [{ name: "c", image }] };
      assert.deepEqual(validatePod(p), [], image);
    }
  });

  it("bad restartPolicy and imagePullPolicy", () => {
    const p = basePod();
    if (p.spec) p.spec.restartPolicy = "Sometimes";
    const c = p.spec?.containers[0];
    if (c) c.imagePullPolicy = "Maybe";
    assert.match(problemAt(p, "spec.restartPolicy"), /Unsupported value: "Sometimes"/);
    assert.match(problemAt(p, "spec.containers[0].imagePullPolicy"), /Unsupported value: "Maybe"/);
  });

  it("bad ports", () => {
    const p = basePod();
    const c = p.spec?.containers[0];
    assert.ok(c);
    c.ports = [{ containerPort: 0 }, { containerPort: 70000 }, { containerPort: 80, hostPort: 70000 }, { containerPort: 81, protocol: "ICMP" }];
    assert.match(problemAt(p, "spec.containers[0].ports[0].containerPort"), /between 1 and 65535/);
    assert.match(problemAt(p, "spec.containers[0].ports[1].containerPort"), /70000/);
    assert.match(problemAt(p, "spec.containers[0].ports[2].hostPort"), /between 1 and 65535/);
    assert.match(problemAt(p, "spec.containers[0].ports[3].protocol"), /"ICMP"/);
  });

  it("hostNetwork: hostPort must equal containerPort (unset or equal is fine)", () => {
    const p = basePod();
    if (p.spec) p.spec.hostNetwork = true;
    const c = p.spec?.containers[0];
    assert.ok(c);
    c.ports = [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81, hostPort: 81 }, { containerPort: 82 }];
    assert.deepEqual(fieldsOf(p), ["spec.containers[0].ports[0].hostPort"]);
    assert.match(problemAt(p, "spec.containers[0].ports[0].hostPort"), /containerPort/);
    // without hostNetwork the mismatch is allowed
    if (p.spec) p.spec.hostNetwork = false;
    assert.deepEqual(validatePod(p), []);
  });

  it("negative terminationGracePeriodSeconds, bad env name", () => {
    const p = basePod();
    if (p.spec) p.spec.terminationGracePeriodSeconds = -1;
    const c = p.spec?.containers[0];
    assert.ok(c);
    c.env = [{ name: "GOOD_1", value: "x" }, { name: "1=bad", value: "y" }, { name: "" }];
    assert.match(problemAt(p, "spec.terminationGracePeriodSeconds"), /non-negative/);
    assert.match(problemAt(p, "spec.containers[0].env[1].name"), /"1=bad"/);
    assert.match(problemAt(p, "spec.containers[0].env[2].name"), /Required value/);
  });

  it("reports every problem at once, each with its own path", () => {
    const p = basePod();
    p.metadata = {};
    p.spec = { restartPolicy: "Sometimes", containers: [{ name: "x", image: "" }] };
    assert.deepEqual(fieldsOf(p).sort(), ["metadata.name", "spec.containers[0].image", "spec.restartPolicy"]);
  });
});

describe("applyApiDefaults", () => {
  it("pod-level defaults", () => {
    const p = basePod();
    applyApiDefaults(p);
    assert.equal(p.spec?.restartPolicy, "Always");
    assert.equal(p.spec?.terminationGracePeriodSeconds, 30);
    assert.equal(p.spec?.dnsPolicy, "ClusterFirst");
    assert.equal(p.spec?.schedulerName, "default-scheduler");
    assert.equal(p.spec?.enableServiceLinks, true);
    assert.equal(p.metadata?.namespace, "default");
  });

  it("keeps values that are set", () => {
    const p = basePod();
    if (p.spec) {
      p.spec.restartPolicy = "Never";
      p.spec.terminationGracePeriodSeconds = 0;
    }
    if (p.metadata) p.metadata.namespace = "kube-system";
    applyApiDefaults(p);
    assert.equal(p.spec?.restartPolicy, "Never");
    assert.equal(p.spec?.terminationGracePeriodSeconds, 0, "0 is a value, not unset");
    assert.equal(p.metadata?.namespace, "kube-system");
  });

  it("container defaults, init containers included", () => {
    const p = basePod();
    if (p.spec) p.spec.initContainers = [{ name: "init", image: "busybox:1.36" }];
    applyApiDefaults(p);
    for (const c of [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])]) {
      assert.equal(c.terminationMessagePath, "/dev/termination-log", c.name);
      assert.equal(c.terminationMessagePolicy, "File", c.name);
      assert.equal(c.imagePullPolicy, "IfNotPresent", c.name);
    }
    assert.equal(p.spec?.containers[0]?.ports?.[0]?.protocol, "TCP");
  });

  it("imagePullPolicy: Always for :latest or untagged, IfNotPresent otherwise", () => {
    const digest = "sha256:" + "b".repeat(64);
    const cases: [string, string][] = [
      ["nginx", "Always"],
      ["nginx:latest", "Always"],
      ["registry.k8s.io/pause", "Always"],
      ["localhost:5000/app", "Always"],
      ["localhost:5000/app:latest", "Always"],
      ["nginx:1.25", "IfNotPresent"],
      ["localhost:5000/app:v2", "IfNotPresent"],
      ["nginx:latest-alpine", "IfNotPresent"],
      [`nginx@${digest}`, "IfNotPresent"],
    ];
    for (const [image, policy] of cases) {
      assert.equal(defaultPullPolicy(image), policy, image);
      const p = basePod();
      const c = p.spec?.containers[0];
      assert.ok(c);
      c.image = image;
      applyApiDefaults(p);
      assert.equal(c.imagePullPolicy, policy, image);
    }
  });

  it("imagePullPolicy for tag+digest follows the tag, as upstream's ParseImageName does (latest → Always)", () => {
    // SetDefaults_Container: tag == "latest" → Always. ParseImageName("busybox:latest@sha256:…") returns tag "latest".
    assert.equal(defaultPullPolicy(`busybox:latest@sha256:${"c".repeat(64)}`), "Always");
    assert.equal(defaultPullPolicy(`busybox:1.36@sha256:${"c".repeat(64)}`), "IfNotPresent");
  });

  it("an explicit imagePullPolicy is kept", () => {
    const p = basePod();
    const c = p.spec?.containers[0];
    assert.ok(c);
    c.image = "nginx";
    c.imagePullPolicy = "Never";
    applyApiDefaults(p);
    assert.equal(c.imagePullPolicy, "Never");
  });

  it("probe defaults", () => {
    const p = basePod();
    const c = p.spec?.containers[0];
    assert.ok(c);
    c.livenessProbe = { httpGet: { port: 80 } };
    c.readinessProbe = { tcpSocket: { port: 80 }, periodSeconds: 3 };
    c.startupProbe = { exec: { command: ["true"] } };
    applyApiDefaults(p);
    for (const probe of [c.livenessProbe, c.startupProbe]) {
      assert.equal(probe.periodSeconds, 10);
      assert.equal(probe.timeoutSeconds, 1);
      assert.equal(probe.successThreshold, 1);
      assert.equal(probe.failureThreshold, 3);
      assert.equal(probe.initialDelaySeconds, 0);
    }
    assert.equal(c.readinessProbe.periodSeconds, 3, "explicit value kept");
    assert.equal(c.livenessProbe.httpGet?.path, "/");
    assert.equal(c.livenessProbe.httpGet?.scheme, "HTTP");
  });

  it("limits without requests are copied into requests", () => {
    const p = basePod();
    const c = p.spec?.containers[0];
    assert.ok(c);
    c.resources = { limits: { cpu: "500m", memory: "128Mi" }, requests: { cpu: "100m" } };
    applyApiDefaults(p);
    assert.deepEqual(c.resources.requests, { cpu: "100m", memory: "128Mi" });
  });
});

describe("applyStaticPodDefaults", () => {
  const opts = { nodeName: "node1", file: "/etc/kubernetes/manifests/web.yaml", seenMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678) };

  function defaulted(pod = basePod(), o = opts): V1Pod {
    applyApiDefaults(pod);
    applyStaticPodDefaults(pod, o);
    return pod;
  }

  it("identity: name-node, namespace default, nodeName, UID, config annotations, phase Pending", () => {
    const p = defaulted();
    const m = p.metadata ?? {};
    assert.equal(m.name, "web-node1");
    assert.equal(m.namespace, "default");
    assert.equal(p.spec?.nodeName, "node1");
    assert.match(m.uid ?? "", /^[0-9a-f]{32}$/);
    assert.equal(m.annotations?.["kubernetes.io/config.hash"], m.uid);
    assert.equal(m.annotations?.["kubernetes.io/config.source"], "file");
    const seen = m.annotations?.["kubernetes.io/config.seen"] ?? "";
    assert.match(seen, /^2026-01-02T03:04:05\.678\d*Z$/);
    assert.equal(new Date(seen).getTime(), opts.seenMs);
    assert.deepEqual(p.status, { phase: "Pending" });
    assert.equal(m.labels?.app, "web", "labels kept");
  });

  it("keeps an explicit namespace and existing annotations", () => {
    const pod = basePod();
    pod.metadata = { name: "etcd", namespace: "kube-system", annotations: { a: "b" } };
    const p = defaulted(pod);
    assert.equal(p.metadata?.name, "etcd-node1");
    assert.equal(p.metadata?.namespace, "kube-system");
    assert.equal(p.metadata?.annotations?.a, "b");
  });

  it("adds the NoExecute toleration once, next to existing tolerations", () => {
    const p = defaulted();
    assert.deepEqual(p.spec?.tolerations, [{ operator: "Exists", effect: "NoExecute" }]);
    const pod = basePod();
    if (pod.spec) pod.spec.tolerations = [{ key: "k", operator: "Equal", value: "v", effect: "NoSchedule" }, { operator: "Exists", effect: "NoExecute" }];
    const q = defaulted(pod);
    assert.equal(q.spec?.tolerations?.length, 2);
  });

  it("UID is stable across key order and seen time, and differs by node, file and content", () => {
    const a = defaulted();
    const reordered: V1Pod = {
      spec: { containers: [{ ports: [{ containerPort: 80 }], image: "nginx:1.25", name: "main" }] },
      metadata: { labels: { app: "web" }, name: "web" },
      kind: "Pod",
      apiVersion: "v1",
    };
    const b = defaulted(reordered, { ...opts, seenMs: opts.seenMs + 60_000 });
    assert.equal(b.metadata?.uid, a.metadata?.uid);

    const uids = new Set([
      a.metadata?.uid,
      defaulted(basePod(), { ...opts, nodeName: "node2" }).metadata?.uid,
      defaulted(basePod(), { ...opts, file: "/etc/kubernetes/manifests/web2.yaml" }).metadata?.uid,
      (() => {
        const pod = basePod();
        const c = pod.spec?.containers[0];
        if (c) c.image = "nginx:1.26";
        return defaulted(pod).metadata?.uid;
      })(),
    ]);
    assert.equal(uids.size, 4, "node, file and content each change the UID");
  });

  it("staticPodUID matches the UID applyStaticPodDefaults sets", () => {
    const pod = basePod();
    applyApiDefaults(pod);
    const uid = staticPodUID(pod, opts.nodeName, opts.file);
    applyStaticPodDefaults(pod, opts);
    assert.equal(pod.metadata?.uid, uid);
  });
});

// ---- the file source, over a real temporary directory ----

interface Harness {
  dir: string;
  clock: FakeClock;
  lines: string[];
  updates: V1Pod[][];
  source: ReturnType<typeof createFileSource>;
}

let root = "";
let counter = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "tskubelet-static-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function harness(opts: { create?: boolean; path?: string } = {}): Promise<Harness> {
  counter += 1;
  const dir = join(root, `m${counter}`);
  if (opts.create !== false) await mkdir(dir);
  const clock = new FakeClock();
  const { logger, lines } = memoryLogger();
  const updates: V1Pod[][] = [];
  const source = createFileSource({
    path: opts.path ?? dir,
    nodeName: "node1",
    checkFrequencyMs: 20_000,
    clock,
    logger,
    onUpdate: (pods) => updates.push(pods),
  });
  return { dir, clock, lines, updates, source };
}

const errors = (h: Harness): string[] => h.lines.filter((l) => l.startsWith("E"));
const warnings = (h: Harness): string[] => h.lines.filter((l) => l.startsWith("W"));
const names = (pods: V1Pod[] | undefined): string[] => (pods ?? []).map((p) => p.metadata?.name ?? "");
const last = (h: Harness): V1Pod[] | undefined => h.updates[h.updates.length - 1];

describe("createFileSource", () => {
  it("one good and one bad manifest: only the good pod, one error line naming file, field and reason", async () => {
    const h = await harness();
    await writeFile(join(h.dir, "good.yaml"), POD_YAML("web"));
    await writeFile(join(h.dir, "bad.yaml"), `apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\nspec:\n  containers:\n  - name: main\n`);
    await h.source.rescan();
    assert.equal(h.updates.length, 1);
    assert.deepEqual(names(last(h)), ["web-node1"]);
    const errs = errors(h);
    assert.equal(errs.length, 1, errs.join(""));
    const line = errs[0] ?? "";
    assert.ok(line.includes(`file=${JSON.stringify(join(h.dir, "bad.yaml"))}`), line);
    assert.ok(line.includes("spec.containers[0].image"), line);
    assert.ok(line.includes("Required value"), line);

    // unchanged files: nothing new emitted or logged
    await h.source.rescan();
    assert.equal(h.updates.length, 1);
    assert.equal(errors(h).length, 1, "a bad manifest is logged once, not on every scan");

    // fixing the bad file makes it appear on the next scan
    await writeFile(join(h.dir, "bad.yaml"), POD_YAML("broken", "busybox:1.36"));
    await h.source.rescan();
    assert.equal(h.updates.length, 2);
    assert.deepEqual(names(last(h)).sort(), ["broken-node1", "web-node1"]);
    assert.equal(errors(h).length, 1);
  });

  it("emitted pods are fully defaulted static pods", async () => {
    const h = await harness();
    await writeFile(join(h.dir, "web.yaml"), POD_YAML("web"));
    await h.source.rescan();
    const pod = last(h)?.[0];
    assert.ok(pod);
    assert.equal(pod.metadata?.namespace, "default");
    assert.equal(pod.spec?.nodeName, "node1");
    assert.equal(pod.spec?.restartPolicy, "Always");
    assert.equal(pod.spec?.containers[0]?.imagePullPolicy, "IfNotPresent");
    assert.equal(pod.metadata?.annotations?.["kubernetes.io/config.source"], "file");
    assert.equal(pod.metadata?.annotations?.["kubernetes.io/config.hash"], pod.metadata?.uid);
    assert.equal(new Date(pod.metadata?.annotations?.["kubernetes.io/config.seen"] ?? "").getTime(), h.clock.now());
    assert.equal(pod.status?.phase, "Pending");
  });

  it("a parse error and a wrong kind are each logged with the file and field", async () => {
    const h = await harness();
    await writeFile(join(h.dir, "a-syntax.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: [x\n");
    await writeFile(join(h.dir, "b-kind.yaml"), "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n");
    await writeFile(join(h.dir, "c-good.json"), JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name: "j" }, spec: { containers: [{ name: "c", image: "nginx:1" }] } }));
    await h.source.rescan();
    assert.deepEqual(names(last(h)), ["j-node1"]);
    const errs = errors(h);
    assert.equal(errs.length, 2, errs.join(""));
    assert.ok(errs.some((l) => l.includes("a-syntax.yaml") && l.includes("cannot parse")), errs.join(""));
    assert.ok(errs.some((l) => l.includes("b-kind.yaml") && l.includes('field="kind"') && l.includes("Deployment")), errs.join(""));
  });

  it("one bad document in a multi-document file does not hide the good one", async () => {
    const h = await harness();
    await writeFile(join(h.dir, "multi.yaml"), `${POD_YAML("one")}---\n${POD_YAML("two", "")}---\n${POD_YAML("three")}`);
    await h.source.rescan();
    assert.deepEqual(names(last(h)), ["one-node1", "three-node1"]);
    assert.equal(errors(h).length, 1);
  });

  it("two files with the same pod name: the second (by sorted file name) is rejected, naming both files", async () => {
    const h = await harness();
    await writeFile(join(h.dir, "b.yaml"), POD_YAML("web", "nginx:2"));
    await writeFile(join(h.dir, "a.yaml"), POD_YAML("web", "nginx:1"));
    await h.source.rescan();
    const pods = last(h) ?? [];
    assert.equal(pods.length, 1);
    assert.equal(pods[0]?.spec?.containers[0]?.image, "nginx:1", "a.yaml wins");
    const errs = errors(h);
    assert.equal(errs.length, 1, errs.join(""));
    const line = errs[0] ?? "";
    assert.ok(line.includes(`file=${JSON.stringify(join(h.dir, "b.yaml"))}`), line);
    assert.ok(line.includes(join(h.dir, "a.yaml")), line);
    assert.ok(line.includes("Duplicate"), line);
    // the rejection is not repeated on every scan
    await h.source.rescan();
    assert.equal(errors(h).length, 1);
    // once a.yaml goes away, b.yaml's pod takes the name
    await rm(join(h.dir, "a.yaml"));
    await h.source.rescan();
    assert.equal(last(h)?.[0]?.spec?.containers[0]?.image, "nginx:2");
  });

  it("an empty metadata.namespace is defaulted to \"default\", not rejected (upstream applyDefaults runs before validation)", async () => {
    // pkg/kubelet/config/common.go: `if pod.Namespace == "" { pod.Namespace = metav1.NamespaceDefault }`.
    const h = await harness();
    await writeFile(join(h.dir, "web.yaml"), POD_YAML("web").replace("  name: web\n", '  name: web\n  namespace: ""\n'));
    await h.source.rescan();
    assert.deepEqual(errors(h), []);
    assert.deepEqual(names(last(h)), ["web-node1"]);
    assert.equal(last(h)?.[0]?.metadata?.namespace, "default");
  });

  it("dot-files and subdirectories are ignored", async () => {
    const h = await harness();
    await writeFile(join(h.dir, ".hidden.yaml"), POD_YAML("hidden"));
    await writeFile(join(h.dir, ".web.yaml.swp"), "\u0000\u0001garbage: [");
    await mkdir(join(h.dir, "sub"));
    await writeFile(join(h.dir, "sub", "nested.yaml"), POD_YAML("nested"));
    await writeFile(join(h.dir, "web.yaml"), POD_YAML("web"));
    await h.source.rescan();
    assert.deepEqual(names(last(h)), ["web-node1"]);
    assert.deepEqual(errors(h), []);
  });

  it("a missing directory is one warning and an empty set, not a crash; it is picked up once created", async () => {
    const h = await harness({ create: false });
    await h.source.rescan();
    await h.source.rescan();
    assert.deepEqual(h.updates, [[]], "the first scan reports the empty set once");
    const warns = warnings(h);
    assert.equal(warns.length, 1, warns.join(""));
    assert.ok(warns[0]?.includes(h.dir));
    assert.deepEqual(errors(h), []);
    await mkdir(h.dir);
    await writeFile(join(h.dir, "web.yaml"), POD_YAML("web"));
    await h.source.rescan();
    assert.deepEqual(names(last(h)), ["web-node1"]);
  });

  it("the path may be a single file", async () => {
    const h0 = await harness();
    const file = join(h0.dir, "only.yaml");
    await writeFile(file, POD_YAML("only"));
    const h = await harness({ path: file });
    await h.source.rescan();
    assert.deepEqual(names(last(h)), ["only-node1"]);
  });

  it("UID and config.seen are stable across rescans and cosmetic edits; a real change gets new ones", async () => {
    const h = await harness();
    const web = join(h.dir, "web.yaml");
    await writeFile(web, POD_YAML("web"));
    await h.source.rescan();
    const first = last(h)?.[0];
    assert.ok(first);
    const uid = first.metadata?.uid;
    const seen = first.metadata?.annotations?.["kubernetes.io/config.seen"];

    await h.clock.advance(60_000);
    await writeFile(web, `# a comment\n${POD_YAML("web")}`);
    await writeFile(join(h.dir, "zz.yaml"), POD_YAML("other"));
    await h.source.rescan();
    const second = last(h) ?? [];
    assert.equal(second.length, 2);
    const again = second.find((p) => p.metadata?.name === "web-node1");
    assert.equal(again?.metadata?.uid, uid);
    assert.equal(again?.metadata?.annotations?.["kubernetes.io/config.seen"], seen);
    const other = second.find((p) => p.metadata?.name === "other-node1");
    assert.equal(new Date(other?.metadata?.annotations?.["kubernetes.io/config.seen"] ?? "").getTime(), h.clock.now());

    await h.clock.advance(60_000);
    await writeFile(web, POD_YAML("web", "nginx:1.26"));
    await h.source.rescan();
    const changed = (last(h) ?? []).find((p) => p.metadata?.name === "web-node1");
    assert.ok(changed);
    assert.notEqual(changed.metadata?.uid, uid);
    assert.equal(new Date(changed.metadata?.annotations?.["kubernetes.io/config.seen"] ?? "").getTime(), h.clock.now());
  });

  it("a deleted file's pod disappears", async () => {
    const h = await harness();
    await writeFile(join(h.dir, "a.yaml"), POD_YAML("a"));
    await writeFile(join(h.dir, "b.yaml"), POD_YAML("b"));
    await h.source.rescan();
    assert.deepEqual(names(last(h)), ["a-node1", "b-node1"]);
    await rm(join(h.dir, "a.yaml"));
    await h.source.rescan();
    assert.deepEqual(names(last(h)), ["b-node1"]);
  });

  it("run() scans at start and again every fileCheckFrequency; abort stops it", async () => {
    const h = await harness();
    await writeFile(join(h.dir, "a.yaml"), POD_YAML("a"));
    const ac = new AbortController();
    const done = h.source.run(ac.signal);
    await waitFor(() => h.updates.length === 1);
    assert.deepEqual(names(last(h)), ["a-node1"]);
    await writeFile(join(h.dir, "b.yaml"), POD_YAML("b"));
    // poll the fake clock forward until the periodic (or watch-triggered) scan has seen b.yaml
    await waitFor(async () => {
      await h.clock.advance(20_000);
      return names(last(h)).length === 2;
    });
    assert.deepEqual(names(last(h)), ["a-node1", "b-node1"]);
    ac.abort();
    await done;
  });
});

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) assert.fail("condition not met in time");
    await delay(5);
  }
}
