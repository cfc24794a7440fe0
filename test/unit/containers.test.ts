import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { buildContainerConfig, containerHash, containerLogPath, type ContainerOptions } from "../../src/containers/container.js";
import { expandVars, fieldRefValue, resolveEnv } from "../../src/containers/env.js";
import { buildSandboxConfig, parseResolvConf, podLogDirectory, type SandboxOptions } from "../../src/containers/sandbox.js";

const GiB = 2 ** 30;
const HOST_RESOLV = "# generated\nnameserver 192.168.1.1\nnameserver 192.168.1.2 # second\nsearch corp.example.com example.com\noptions edns0 timeout:2\n";

function mkPod(over: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod {
  return {
    metadata: { name: "web-node1", namespace: "prod", uid: "uid-1", labels: { app: "web", tier: "front" }, annotations: { "kubernetes.io/config.source": "file", note: "hi" } },
    spec: { containers: [{ name: "main", image: "nginx:1.25" }], ...over },
  };
}

function sandboxOpts(over: Partial<SandboxOptions> = {}): SandboxOptions {
  return {
    podLogsDir: "/var/log/pods",
    attempt: 0,
    resolvConf: HOST_RESOLV,
    clusterDNS: ["10.96.0.10"],
    clusterDomain: "cluster.local",
    cgroupsPerQOS: true,
    cgroupRoot: "",
    ...over,
  };
}

function containerOpts(over: Partial<ContainerOptions> = {}): ContainerOptions {
  return { restartCount: 0, imageRef: "sha256:0123", memoryCapacity: 8 * GiB, podIPs: ["10.244.1.7"], hostIPs: ["192.168.1.10"], ...over };
}

describe("buildSandboxConfig", () => {
  it("metadata, io.kubernetes.pod.* labels (pod labels kept), annotations", () => {
    const cfg = buildSandboxConfig(mkPod(), sandboxOpts({ attempt: 2 }));
    assert.deepEqual(cfg.metadata, { name: "web-node1", namespace: "prod", uid: "uid-1", attempt: 2 });
    assert.equal(cfg.labels?.["io.kubernetes.pod.name"], "web-node1");
    assert.equal(cfg.labels?.["io.kubernetes.pod.namespace"], "prod");
    assert.equal(cfg.labels?.["io.kubernetes.pod.uid"], "uid-1");
    assert.equal(cfg.labels?.app, "web");
    assert.equal(cfg.labels?.tier, "front");
    assert.equal(cfg.annotations?.note, "hi");
  });

  it("a pod label cannot overwrite the kubelet's own io.kubernetes.pod.* labels", () => {
    const pod = mkPod();
    if (pod.metadata) pod.metadata.labels = { "io.kubernetes.pod.uid": "spoofed" };
    assert.equal(buildSandboxConfig(pod, sandboxOpts()).labels?.["io.kubernetes.pod.uid"], "uid-1");
  });

  it("log directory is <podLogsDir>/<namespace>_<name>_<uid>", () => {
    assert.equal(buildSandboxConfig(mkPod(), sandboxOpts({ podLogsDir: "/data/logs" })).logDirectory, "/data/logs/prod_web-node1_uid-1");
    assert.equal(podLogDirectory("/var/log/pods", mkPod()), "/var/log/pods/prod_web-node1_uid-1");
  });

  it("pod network: hostname is the pod name (or spec.hostname), network namespace POD", () => {
    const cfg = buildSandboxConfig(mkPod(), sandboxOpts());
    assert.equal(cfg.hostname, "web-node1");
    assert.deepEqual(cfg.linux?.securityContext?.namespaceOptions, { network: "POD", pid: "CONTAINER", ipc: "POD" });
    assert.equal(buildSandboxConfig(mkPod({ hostname: "custom" }), sandboxOpts()).hostname, "custom");
  });

  it("a hostname longer than 63 characters is truncated without a trailing '-' or '.'", () => {
    const pod = mkPod();
    if (pod.metadata) pod.metadata.name = `${"a".repeat(62)}-bcd`;
    assert.equal(buildSandboxConfig(pod, sandboxOpts()).hostname, "a".repeat(62));
  });

  it("hostNetwork: empty hostname, network namespace NODE, hostPID/hostIPC too", () => {
    const cfg = buildSandboxConfig(mkPod({ hostNetwork: true, hostPID: true, hostIPC: true }), sandboxOpts());
    assert.equal(cfg.hostname, "");
    assert.deepEqual(cfg.linux?.securityContext?.namespaceOptions, { network: "NODE", pid: "NODE", ipc: "NODE" });
  });

  it("port mappings only for ports with a hostPort", () => {
    const pod = mkPod({
      containers: [
        { name: "main", image: "nginx", ports: [{ containerPort: 80 }, { containerPort: 443, hostPort: 8443, protocol: "TCP" }] },
        { name: "dns", image: "coredns", ports: [{ containerPort: 53, hostPort: 53, protocol: "UDP", hostIP: "127.0.0.1" }, { containerPort: 9153, hostPort: 0 }] },
      ],
    });
    assert.deepEqual(buildSandboxConfig(pod, sandboxOpts()).portMappings, [
      { protocol: "TCP", containerPort: 443, hostPort: 8443, hostIp: "" },
      { protocol: "UDP", containerPort: 53, hostPort: 53, hostIp: "127.0.0.1" },
    ]);
  });

  it("cgroup parent by QoS when cgroupsPerQOS, none otherwise", () => {
    assert.equal(buildSandboxConfig(mkPod(), sandboxOpts()).linux?.cgroupParent, "/kubepods/besteffort/poduid-1");
    assert.equal(buildSandboxConfig(mkPod(), sandboxOpts({ cgroupsPerQOS: false })).linux?.cgroupParent, undefined);
  });

  it("sysctls from the pod security context", () => {
    const pod = mkPod({ securityContext: { sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] } });
    assert.deepEqual(buildSandboxConfig(pod, sandboxOpts()).linux?.sysctls, { "net.ipv4.ip_unprivileged_port_start": "0" });
  });
});

describe("pod DNS", () => {
  it("ClusterFirst with clusterDNS: cluster servers, namespace search path then the host's searches, ndots:5", () => {
    const cfg = buildSandboxConfig(mkPod({ dnsPolicy: "ClusterFirst" }), sandboxOpts());
    assert.deepEqual(cfg.dnsConfig, {
      servers: ["10.96.0.10"],
      searches: ["prod.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example.com", "example.com"],
      options: ["ndots:5"],
    });
  });

  it("ClusterFirst is the default policy", () => {
    assert.deepEqual(buildSandboxConfig(mkPod(), sandboxOpts()).dnsConfig?.servers, ["10.96.0.10"]);
  });

  it("ClusterFirst without clusterDNS falls back to the host's resolv.conf", () => {
    const cfg = buildSandboxConfig(mkPod({ dnsPolicy: "ClusterFirst" }), sandboxOpts({ clusterDNS: [] }));
    assert.deepEqual(cfg.dnsConfig?.servers, ["192.168.1.1", "192.168.1.2"]);
  });

  it("Default: the host's resolv.conf as is", () => {
    const cfg = buildSandboxConfig(mkPod({ dnsPolicy: "Default" }), sandboxOpts());
    assert.deepEqual(cfg.dnsConfig, { servers: ["192.168.1.1", "192.168.1.2"], searches: ["corp.example.com", "example.com"], options: ["edns0", "timeout:2"] });
  });

  it("hostNetwork with ClusterFirst uses the host; ClusterFirstWithHostNet uses the cluster", () => {
    assert.deepEqual(buildSandboxConfig(mkPod({ hostNetwork: true }), sandboxOpts()).dnsConfig?.servers, ["192.168.1.1", "192.168.1.2"]);
    assert.deepEqual(buildSandboxConfig(mkPod({ hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" }), sandboxOpts()).dnsConfig?.servers, ["10.96.0.10"]);
  });

  it("None: only the pod's dnsConfig", () => {
    const cfg = buildSandboxConfig(
      mkPod({
        dnsPolicy: "None",
        dnsConfig: { nameservers: ["1.1.1.1"], searches: ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"], options: [{ name: "ndots", value: "2" }, { name: "edns0" }] },
      }),
      sandboxOpts(),
    );
    assert.deepEqual(cfg.dnsConfig, { servers: ["1.1.1.1"], searches: ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"], options: ["ndots:2", "edns0"] });
  });

  it("dnsConfig is appended to the policy's config, without duplicates", () => {
    const cfg = buildSandboxConfig(mkPod({ dnsPolicy: "ClusterFirst", dnsConfig: { nameservers: ["10.96.0.10", "1.1.1.1"], searches: ["cluster.local", "extra.example"] } }), sandboxOpts());
    assert.deepEqual(cfg.dnsConfig?.servers, ["10.96.0.10", "1.1.1.1"]);
    assert.deepEqual(cfg.dnsConfig?.searches, ["prod.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example.com", "example.com", "extra.example"]);
  });

  it("a dnsConfig option overrides the policy's option of the same name (upstream mergeDNSOptions)", () => {
    const cfg = buildSandboxConfig(mkPod({ dnsPolicy: "ClusterFirst", dnsConfig: { options: [{ name: "ndots", value: "2" }, { name: "single-request-reopen" }] } }), sandboxOpts());
    assert.deepEqual([...(cfg.dnsConfig?.options ?? [])].sort(), ["ndots:2", "single-request-reopen"]);
  });

  it("at most 3 nameservers are passed to the pod (upstream formDNSConfigFitsLimits)", () => {
    const resolv = "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n";
    const cfg = buildSandboxConfig(mkPod({ dnsPolicy: "Default" }), sandboxOpts({ resolvConf: resolv }));
    assert.deepEqual(cfg.dnsConfig?.servers, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
  });

  it("resolv.conf search entries: the last line wins, trailing dots are trimmed and '.' is dropped (upstream parseResolvConf)", () => {
    // systemd-resolved's stub resolv.conf says "search ." when there are no search domains.
    assert.deepEqual(parseResolvConf("search old.example\nsearch new.example\n").searches, ["new.example"]);
    assert.deepEqual(parseResolvConf("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n").searches, []);
    assert.deepEqual(parseResolvConf("search example.com. corp.example.com\n").searches, ["example.com", "corp.example.com"]);
  });

  it("resolv.conf parsing ignores comments and blank lines", () => {
    assert.deepEqual(parseResolvConf("; comment\n\n  nameserver   10.1.1.1  \n#nameserver 10.9.9.9\noptions ndots:1\n"), { servers: ["10.1.1.1"], searches: [], options: ["ndots:1"] });
  });
});

describe("buildContainerConfig", () => {
  it("metadata, image, log path <name>/<restartCount>.log, labels and annotations", () => {
    const pod = mkPod({ terminationGracePeriodSeconds: 45 });
    const c: V1Container = { name: "main", image: "nginx:1.25", ports: [{ containerPort: 80, protocol: "TCP" }], terminationMessagePath: "/tmp/term" };
    const cfg = buildContainerConfig(pod, c, containerOpts({ restartCount: 3 }));
    assert.deepEqual(cfg.metadata, { name: "main", attempt: 3 });
    assert.deepEqual(cfg.image, { image: "sha256:0123", userSpecifiedImage: "nginx:1.25" });
    assert.equal(cfg.logPath, "main/3.log");
    assert.equal(containerLogPath("side", 0), "side/0.log");
    assert.equal(cfg.labels?.["io.kubernetes.pod.name"], "web-node1");
    assert.equal(cfg.labels?.["io.kubernetes.pod.namespace"], "prod");
    assert.equal(cfg.labels?.["io.kubernetes.pod.uid"], "uid-1");
    assert.equal(cfg.labels?.["io.kubernetes.container.name"], "main");
    assert.equal(cfg.annotations?.["io.kubernetes.container.hash"], containerHash(c));
    assert.equal(cfg.annotations?.["io.kubernetes.container.restartCount"], "3");
    assert.equal(cfg.annotations?.["io.kubernetes.container.terminationMessagePath"], "/tmp/term");
    assert.equal(cfg.annotations?.["io.kubernetes.container.terminationMessagePolicy"], "File");
    assert.equal(cfg.annotations?.["io.kubernetes.pod.terminationGracePeriod"], "45");
    assert.deepEqual(JSON.parse(cfg.annotations?.["io.kubernetes.container.ports"] ?? "null"), [{ containerPort: 80, protocol: "TCP" }]);
  });

  it("without a resolved image ref the spec's image is used; no ports annotation without ports", () => {
    const cfg = buildContainerConfig(mkPod(), { name: "main", image: "nginx:1.25" }, containerOpts({ imageRef: "" }));
    assert.equal(cfg.image.image, "nginx:1.25");
    assert.equal(cfg.annotations?.["io.kubernetes.container.ports"], undefined);
  });

  it("resources reach linux.resources", () => {
    const pod = mkPod({ containers: [{ name: "main", image: "nginx", resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "500m", memory: "1Gi" } } }] });
    const c = pod.spec?.containers[0];
    assert.ok(c);
    const r = buildContainerConfig(pod, c, containerOpts()).linux?.resources;
    assert.equal(r?.cpuShares, 512n);
    assert.equal(r?.cpuQuota, 50_000n);
    assert.equal(r?.memoryLimitInBytes, BigInt(GiB));
    assert.equal(r?.oomScoreAdj, -997n);
  });

  it("env: literals, fieldRefs, $(VAR) expansion in env, command and args; $$ escapes; unknown stays", () => {
    const pod = mkPod();
    const c: V1Container = {
      name: "main",
      image: "busybox",
      command: ["sh", "-c", "echo $(GREETING) from $(POD_NAME) $$(GREETING) $(NOPE)"],
      args: ["--ip=$(POD_IP)", "--cost=$5", "$$$(POD_NS)"],
      env: [
        { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
        { name: "POD_NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        { name: "POD_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } },
        { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: "NOTE", valueFrom: { fieldRef: { fieldPath: "metadata.annotations['note']" } } },
        { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
        { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
        { name: "GREETING", value: "hello" },
        { name: "MSG", value: "$(GREETING) $(POD_NAME) in $(POD_NS)" },
        { name: "ESCAPED", value: "$$(GREETING)" },
        { name: "UNKNOWN", value: "$(NOT_DEFINED) and $(LATER)" },
        { name: "LATER", value: "late" },
        { name: "EMPTY" },
      ],
    };
    const cfg = buildContainerConfig(pod, c, containerOpts());
    const env = Object.fromEntries((cfg.envs ?? []).map((e) => [e.key, e.value]));
    assert.deepEqual(env, {
      POD_NAME: "web-node1",
      POD_NS: "prod",
      POD_UID: "uid-1",
      APP: "web",
      NOTE: "hi",
      POD_IP: "10.244.1.7",
      HOST_IP: "192.168.1.10",
      GREETING: "hello",
      MSG: "hello web-node1 in prod",
      ESCAPED: "$(GREETING)",
      UNKNOWN: "$(NOT_DEFINED) and $(LATER)",
      LATER: "late",
      EMPTY: "",
    });
    assert.deepEqual(
      (cfg.envs ?? []).map((e) => e.key),
      c.env?.map((e) => e.name),
      "order kept",
    );
    assert.deepEqual(cfg.command, ["sh", "-c", "echo hello from web-node1 $(GREETING) $(NOPE)"]);
    assert.deepEqual(cfg.args, ["--ip=10.244.1.7", "--cost=$5", "$prod"]);
  });

  it("a missing label fieldRef gives an empty value", () => {
    const env = resolveEnv(mkPod(), { name: "c", env: [{ name: "X", valueFrom: { fieldRef: { fieldPath: "metadata.labels['missing']" } } }] }, { podIPs: [], hostIPs: [] });
    assert.deepEqual(env, [{ key: "X", value: "" }]);
  });
});

describe("expandVars", () => {
  const vars = { A: "alpha", B: "beta", EMPTY: "" };
  it("upstream expansion rules", () => {
    const cases: [string, string][] = [
      ["$(A)", "alpha"],
      ["x$(A)y$(B)z", "xalphaybetaz"],
      ["$(EMPTY)", ""],
      ["$$(A)", "$(A)"],
      ["$$$(A)", "$alpha"],
      ["$$", "$"],
      ["$$$$", "$$"],
      ["$(MISSING)", "$(MISSING)"],
      ["$A", "$A"],
      ["$", "$"],
      ["a$", "a$"],
      ["$(A", "$(A"],
      ["$()", "$()"],
      ["no vars", "no vars"],
    ];
    for (const [input, want] of cases) assert.equal(expandVars(input, vars), want, input);
  });
});

describe("fieldRefValue", () => {
  it("downward API paths", () => {
    const pod = mkPod({ nodeName: "node1", serviceAccountName: "sa" });
    const ctx = { podIPs: ["10.244.1.7", "fd00::7"], hostIPs: ["192.168.1.10"] };
    assert.equal(fieldRefValue(pod, "spec.nodeName", ctx), "node1");
    assert.equal(fieldRefValue(pod, "spec.serviceAccountName", ctx), "sa");
    assert.equal(fieldRefValue(pod, "status.podIPs", ctx), "10.244.1.7,fd00::7");
    assert.equal(fieldRefValue(pod, "metadata.labels", ctx), 'app="web"\ntier="front"');
    assert.equal(fieldRefValue(pod, "spec.unknownField", ctx), undefined);
  });
});

describe("containerHash", () => {
  it("is stable across key order, ignores resources, changes with the spec", () => {
    const a: V1Container = { name: "main", image: "nginx:1.25", command: ["nginx"], env: [{ name: "A", value: "1" }] };
    const b: V1Container = { env: [{ value: "1", name: "A" }], command: ["nginx"], image: "nginx:1.25", name: "main" };
    assert.equal(containerHash(a), containerHash(b));
    assert.equal(containerHash({ ...a, resources: { limits: { cpu: "1" } } }), containerHash(a));
    assert.notEqual(containerHash({ ...a, image: "nginx:1.26" }), containerHash(a));
    assert.notEqual(containerHash({ ...a, command: ["nginx", "-g"] }), containerHash(a));
  });
});
