import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { availableParallelism } from "node:os";
import {
  configz,
  cpuMillis,
  formatBytes,
  formatDuration,
  loadConfiguration,
  parseDuration,
  parseQuantity,
  type LoadedConfiguration,
} from "../../src/config/index.js";
import { ConfigError } from "../../src/util/errors.js";

const CONFIG_PATH = "/etc/kubernetes/kubelet-config.yaml";
const HEADER = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

interface LoadArgs {
  /** Contents of the --config file; when absent no --config flag is given (flags-only mode). */
  file?: string;
  flags?: Record<string, string>;
  hostname?: string;
}

function load(args: LoadArgs): LoadedConfiguration {
  const files = new Map<string, string>();
  const flags: Record<string, string> = {};
  if (args.file !== undefined) {
    files.set(CONFIG_PATH, args.file);
    flags.config = CONFIG_PATH;
  }
  Object.assign(flags, args.flags ?? {});
  return loadConfiguration({
    flags,
    readFile: (p) => {
      const text = files.get(p);
      if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      return text;
    },
    hostname: () => args.hostname ?? "Test-Node",
  });
}

/** Loads and expects a ConfigError; returns its message. */
function loadError(args: LoadArgs): string {
  try {
    load(args);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("expected loadConfiguration to throw a ConfigError");
}

describe("config: defaults from an empty config file match upstream v1beta1", () => {
  const { config, flags, nodeName, warnings } = load({ file: HEADER });

  it("ports and listeners", () => {
    assert.equal(config.readOnlyPort, 0);
    assert.equal(config.port, 10250);
    assert.equal(config.address, "0.0.0.0");
    assert.equal(config.healthzPort, 10248);
    assert.equal(config.healthzBindAddress, "127.0.0.1");
    assert.equal(config.cadvisorPort, 0);
    assert.equal(config.enableServer, true);
    assert.equal(config.enableDebuggingHandlers, true);
  });

  it("authentication and authorization are secure", () => {
    assert.equal(config.authentication.anonymous.enabled, false);
    assert.equal(config.authentication.webhook.enabled, true);
    assert.equal(config.authentication.webhook.cacheTTL, 120_000);
    assert.equal(config.authentication.x509.clientCAFile, "");
    assert.equal(config.authorization.mode, "Webhook");
    assert.equal(config.authorization.webhook.cacheAuthorizedTTL, 300_000);
    assert.equal(config.authorization.webhook.cacheUnauthorizedTTL, 30_000);
  });

  it("timings", () => {
    assert.equal(config.fileCheckFrequency, 20_000);
    assert.equal(config.syncFrequency, 60_000);
    assert.equal(config.runtimeRequestTimeout, 120_000);
    assert.equal(config.nodeStatusUpdateFrequency, 10_000);
    assert.equal(config.nodeStatusReportFrequency, 300_000);
    assert.equal(config.nodeLeaseDurationSeconds, 40);
    assert.equal(config.imageMinimumGCAge, 120_000);
  });

  it("node-level defaults (section 4.5)", () => {
    assert.equal(config.maxPods, 110);
    assert.equal(config.podPidsLimit, -1);
    assert.equal(config.podLogsDir, "/var/log/pods");
    assert.equal(config.imageGCHighThresholdPercent, 85);
    assert.equal(config.imageGCLowThresholdPercent, 80);
    assert.deepEqual(config.evictionHard, {
      "memory.available": "100Mi",
      "nodefs.available": "10%",
      "nodefs.inodesFree": "5%",
      "imagefs.available": "15%",
    });
    assert.equal(config.cgroupDriver, "cgroupfs");
    assert.equal(config.cgroupsPerQOS, true);
    assert.equal(config.serializeImagePulls, true);
    assert.equal(config.eventRecordQPS, 50);
    assert.equal(config.eventBurst, 100);
    assert.equal(config.kubeAPIQPS, 50);
    assert.equal(config.kubeAPIBurst, 100);
    assert.equal(config.failSwapOn, true);
    assert.equal(config.resolvConf, "/etc/resolv.conf");
    assert.equal(config.containerRuntimeEndpoint, "unix:///run/containerd/containerd.sock");
    assert.equal(config.containerLogMaxSize, "10Mi");
    assert.equal(config.containerLogMaxFiles, 5);
    assert.equal(config.registerNode, true);
    assert.deepEqual(config.registerWithTaints, []);
    assert.deepEqual(config.kubeReserved, {});
    assert.deepEqual(config.clusterDNS, []);
    assert.equal(config.rotateCertificates, false);
    assert.equal(config.serverTLSBootstrap, false);
    assert.equal(config.staticPodPath, "");
  });

  it("flag-only settings, node name and no warnings", () => {
    assert.equal(flags.rootDir, "/var/lib/kubelet");
    assert.equal(flags.certDir, "/var/lib/kubelet/pki");
    assert.deepEqual(flags.nodeLabels, {});
    assert.equal(nodeName, "test-node", "the OS hostname, lowercased");
    assert.deepEqual(warnings, []);
  });

  it("defaults are fresh copies (mutating one load does not leak into the next)", () => {
    const a = load({ file: HEADER });
    a.config.evictionHard["memory.available"] = "1Gi";
    a.config.clusterDNS.push("10.0.0.10");
    const b = load({ file: HEADER });
    assert.equal(b.config.evictionHard["memory.available"], "100Mi");
    assert.deepEqual(b.config.clusterDNS, []);
  });

  it("a file holding only apiVersion/kind and comments, or with null values, is defaults", () => {
    const c = load({ file: `# kubelet\n${HEADER}maxPods: null\n` }).config;
    assert.equal(c.maxPods, 110);
  });

  it("nodeStatusReportFrequency defaults to an explicitly set nodeStatusUpdateFrequency (upstream backward compatibility)", () => {
    // k8s.io/kubelet v1beta1 defaults: when nodeStatusUpdateFrequency is set and nodeStatusReportFrequency is not,
    // the report frequency takes the update frequency's value (reference 4.2).
    const c = load({ file: `${HEADER}nodeStatusUpdateFrequency: 20s\n` }).config;
    assert.equal(c.nodeStatusUpdateFrequency, 20_000);
    assert.equal(c.nodeStatusReportFrequency, 20_000);
  });
});

describe("config: flags only (no --config) uses upstream's legacy defaults", () => {
  it("read-only port 10255, cadvisor 4194, anonymous auth, no webhook, AlwaysAllow", () => {
    const { config, warnings } = load({});
    assert.equal(config.readOnlyPort, 10255);
    assert.equal(config.cadvisorPort, 4194);
    assert.equal(config.authentication.anonymous.enabled, true);
    assert.equal(config.authentication.webhook.enabled, false);
    assert.equal(config.authorization.mode, "AlwaysAllow");
    // everything else is still the v1beta1 default
    assert.equal(config.healthzPort, 10248);
    assert.equal(config.maxPods, 110);
    assert.deepEqual(warnings, []);
  });

  it("explicit flags still override the legacy defaults", () => {
    const { config } = load({ flags: { "read-only-port": "0", "anonymous-auth": "false", "authorization-mode": "Webhook", "cadvisor-port": "0" } });
    assert.equal(config.readOnlyPort, 0);
    assert.equal(config.cadvisorPort, 0);
    assert.equal(config.authentication.anonymous.enabled, false);
    assert.equal(config.authorization.mode, "Webhook");
  });

  it("a config file never gets the legacy defaults", () => {
    const { config } = load({ file: HEADER, flags: { "pod-manifest-path": "/etc/kubernetes/manifests" } });
    assert.equal(config.readOnlyPort, 0);
    assert.equal(config.authorization.mode, "Webhook");
    assert.equal(config.staticPodPath, "/etc/kubernetes/manifests");
  });
});

describe("config: flags override the file", () => {
  const file = `${HEADER}maxPods: 50\nreadOnlyPort: 10255\nfileCheckFrequency: 30s\nstaticPodPath: /from/file\nauthentication:\n  anonymous:\n    enabled: false\n`;

  it("scalar, duration and string flags win; unflagged file values stay", () => {
    const { config } = load({ file, flags: { "max-pods": "20", "file-check-frequency": "1m", "pod-manifest-path": "/from/flag" } });
    assert.equal(config.maxPods, 20);
    assert.equal(config.fileCheckFrequency, 60_000);
    assert.equal(config.staticPodPath, "/from/flag");
    assert.equal(config.readOnlyPort, 10255, "from the file");
  });

  it("image GC flags have upstream's names", () => {
    const { config } = load({ file, flags: { "minimum-image-ttl-duration": "5m", "image-gc-high-threshold": "90", "image-gc-low-threshold": "70" } });
    assert.equal(config.imageMinimumGCAge, 300_000);
    assert.equal(config.imageGCHighThresholdPercent, 90);
    assert.equal(config.imageGCLowThresholdPercent, 70);
  });

  it("a bare boolean flag (value \"\") means true; nested paths are set", () => {
    const { config } = load({ file, flags: { "anonymous-auth": "", "client-ca-file": "/etc/ca.crt" } });
    assert.equal(config.authentication.anonymous.enabled, true);
    assert.equal(config.authentication.x509.clientCAFile, "/etc/ca.crt");
    assert.equal(config.authentication.webhook.enabled, true, "siblings keep their defaults");
  });

  it("--hostname-override is lowercased and wins over the OS hostname; --cert-dir follows --root-dir", () => {
    const r = load({ file: HEADER, flags: { "hostname-override": " Node-A ", "root-dir": "/srv/kubelet" }, hostname: "os-host" });
    assert.equal(r.nodeName, "node-a");
    assert.equal(r.flags.rootDir, "/srv/kubelet");
    assert.equal(r.flags.certDir, "/srv/kubelet/pki");
  });

  it("a bad flag value names the flag and what was expected", () => {
    const msg = loadError({ file, flags: { "max-pods": "lots" } });
    assert.match(msg, /--max-pods/);
    assert.match(msg, /integer/);
    assert.match(msg, /"lots"/);
  });

  it("a relative --root-dir and a bad --node-ip are errors", () => {
    assert.match(loadError({ file: HEADER, flags: { "root-dir": "var/lib/kubelet" } }), /--root-dir.*absolute/);
    assert.match(loadError({ file: HEADER, flags: { "node-ip": "10.0.0.300" } }), /--node-ip/);
    assert.equal(load({ file: HEADER, flags: { "node-ip": "10.0.0.3,fd00::3" } }).flags.nodeIP, "10.0.0.3,fd00::3");
  });

  it("--max-parallel-pod-starts: a whole number, 0 for no limit, 3 per core by default", () => {
    assert.equal(load({ file: HEADER, flags: {} }).flags.maxParallelPodStarts, 3 * availableParallelism());
    assert.equal(load({ file: HEADER, flags: { "max-parallel-pod-starts": "0" } }).flags.maxParallelPodStarts, 0);
    assert.equal(load({ file: HEADER, flags: { "max-parallel-pod-starts": "12" } }).flags.maxParallelPodStarts, 12);
    assert.match(loadError({ file: HEADER, flags: { "max-parallel-pod-starts": "-1" } }), /--max-parallel-pod-starts: expected a whole number.*"-1"/);
    assert.match(loadError({ file: HEADER, flags: { "max-parallel-pod-starts": "many" } }), /--max-parallel-pod-starts/);
  });
});

describe("config: unknown fields are warnings naming them", () => {
  it("top-level and nested unknown fields are all named; the config still loads", () => {
    const { config, warnings } = load({
      file: `${HEADER}maxPods: 12\nbogusField: 1\nauthentication:\n  foo: true\n  webhook:\n    bar: 1\nauthorization:\n  webhook:\n    baz: x\n`,
    });
    assert.equal(config.maxPods, 12);
    assert.equal(warnings.length, 1);
    const w = warnings[0] ?? "";
    for (const name of ["bogusField", "authentication.foo", "authentication.webhook.bar", "authorization.webhook.baz"]) {
      assert.ok(w.includes(name), `warning ${JSON.stringify(w)} should name ${name}`);
    }
    assert.ok(w.includes(CONFIG_PATH), "the warning names the file");
  });

  it("upstream fields tskubelet does not implement yet are not warned about", () => {
    const { warnings } = load({ file: `${HEADER}featureGates:\n  Foo: true\noomScoreAdj: -999\nhairpinMode: promiscuous-bridge\n` });
    assert.deepEqual(warnings, []);
  });
});

describe("config: wrong types are errors naming the field path and the expected kind", () => {
  it("each kind of mistake", () => {
    const cases: { yaml: string; field: RegExp; expected: RegExp }[] = [
      { yaml: 'maxPods: "lots"', field: /maxPods/, expected: /integer/ },
      { yaml: "maxPods: 1.5", field: /maxPods/, expected: /integer/ },
      { yaml: "maxPods: -1", field: /maxPods/, expected: /integer >= 0/ },
      { yaml: "fileCheckFrequency: 5", field: /fileCheckFrequency/, expected: /duration/ },
      { yaml: "fileCheckFrequency: 5x", field: /fileCheckFrequency/, expected: /duration/ },
      { yaml: "healthzBindAddress: not-an-ip", field: /healthzBindAddress/, expected: /IP/ },
      { yaml: "port: 70000", field: /\bport\b/, expected: /between 0 and 65535/ },
      { yaml: "readOnlyPort: -5", field: /readOnlyPort/, expected: /between 0 and 65535/ },
      { yaml: "failSwapOn: maybe", field: /failSwapOn/, expected: /true or false/ },
      { yaml: "cgroupDriver: cgroupv3", field: /cgroupDriver/, expected: /one of cgroupfs, systemd/ },
      { yaml: "clusterDNS: [10.0.0.10, nope]", field: /clusterDNS/, expected: /IP/ },
      { yaml: "clusterDNS: {a: 1}", field: /clusterDNS/, expected: /list/ },
      { yaml: "podLogsDir: var/log/pods", field: /podLogsDir/, expected: /absolute path/ },
      { yaml: "containerRuntimeEndpoint: tcp://1.2.3.4:1234", field: /containerRuntimeEndpoint/, expected: /unix/ },
      { yaml: "authentication:\n  anonymous:\n    enabled: yes-please", field: /authentication\.anonymous\.enabled/, expected: /true or false/ },
      { yaml: "authorization:\n  mode: RBAC", field: /authorization\.mode/, expected: /AlwaysAllow, Webhook/ },
      { yaml: "authentication: 7", field: /authentication/, expected: /object/ },
      { yaml: "authentication:\n  webhook:\n    cacheTTL: 2", field: /authentication\.webhook\.cacheTTL/, expected: /duration/ },
      { yaml: "containerLogMaxFiles: 1", field: /containerLogMaxFiles/, expected: />= 2/ },
      { yaml: "imageGCHighThresholdPercent: 101", field: /imageGCHighThresholdPercent/, expected: /between 0 and 100/ },
    ];
    for (const c of cases) {
      const msg = loadError({ file: `${HEADER}${c.yaml}\n` });
      assert.match(msg, c.field, `${c.yaml}: ${msg}`);
      assert.match(msg, c.expected, `${c.yaml}: ${msg}`);
      assert.ok(msg.includes(CONFIG_PATH), `${c.yaml}: the error names the file: ${msg}`);
    }
  });

  it("the error says what was given", () => {
    const msg = loadError({ file: `${HEADER}maxPods: "lots"\n` });
    assert.match(msg, /got string "lots"/);
  });

  it("several errors are all reported at once", () => {
    const msg = loadError({
      file: `${HEADER}maxPods: "lots"\nfileCheckFrequency: 5\nhealthzBindAddress: not-an-ip\nport: 70000\nauthentication:\n  anonymous:\n    enabled: 3\n`,
    });
    for (const f of ["maxPods", "fileCheckFrequency", "healthzBindAddress", "port:", "authentication.anonymous.enabled"]) {
      assert.ok(msg.includes(f), `missing ${f} in ${msg}`);
    }
    assert.ok(msg.split("\n").length >= 6, "one line per problem");
  });

  it("file errors and flag errors are reported together", () => {
    const msg = loadError({ file: `${HEADER}maxPods: "lots"\n`, flags: { port: "99999" } });
    assert.match(msg, /maxPods/);
    assert.match(msg, /--port/);
  });

  it("file values are typed strictly: no flag-style coercion of strings (upstream decoding rejects them)", () => {
    // Upstream json-decodes the file into typed Go fields: "110" into an int32, "false" into a bool, a scalar into
    // a []string or a map all fail ("cannot unmarshal string into Go struct field ... of type ...").
    // Only command-line flags are strings that get parsed.
    const cases: [string, RegExp][] = [
      ['maxPods: "110"', /maxPods/],
      ['failSwapOn: "false"', /failSwapOn/],
      ["clusterDNS: 10.96.0.10", /clusterDNS/],
      ['evictionHard: "memory.available<1Gi"', /evictionHard/],
      ['registerWithTaints: "a=b:NoSchedule"', /registerWithTaints/],
    ];
    const accepted: string[] = [];
    for (const [yaml, field] of cases) {
      try {
        load({ file: `${HEADER}${yaml}\n` });
        accepted.push(yaml);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, field);
      }
    }
    assert.deepEqual(accepted, [], "these file values should have been rejected");
  });
});

describe("config: the file itself", () => {
  it("wrong apiVersion or kind, or none, is an error naming what was expected and got", () => {
    const v1 = loadError({ file: "apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n" });
    assert.match(v1, /kubelet\.config\.k8s\.io\/v1beta1/);
    assert.match(v1, /"kubelet\.config\.k8s\.io\/v1"/);
    const kind = loadError({ file: "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: Pod\n" });
    assert.match(kind, /KubeletConfiguration/);
    assert.match(kind, /"Pod"/);
    assert.match(loadError({ file: "maxPods: 3\n" }), /apiVersion/);
    assert.match(loadError({ file: "" }), /apiVersion/);
  });

  it("not an object, bad YAML, or unreadable is an error naming the file", () => {
    assert.match(loadError({ file: "- a\n- b\n" }), /KubeletConfiguration object/);
    const bad = loadError({ file: `${HEADER}maxPods: [1,\n` });
    assert.match(bad, /not valid YAML or JSON/);
    assert.ok(bad.includes(CONFIG_PATH));
    const missing = loadError({ flags: { config: "/nope.yaml" } });
    assert.match(missing, /cannot read config file \/nope\.yaml/);
  });

  it("YAML and JSON files give the same result", () => {
    const yaml = load({ file: `${HEADER}maxPods: 42\nfileCheckFrequency: 1m30s\nevictionHard:\n  memory.available: 1Gi\n` }).config;
    const json = load({
      file: JSON.stringify({
        apiVersion: "kubelet.config.k8s.io/v1beta1",
        kind: "KubeletConfiguration",
        maxPods: 42,
        fileCheckFrequency: "1m30s",
        evictionHard: { "memory.available": "1Gi" },
      }),
    }).config;
    assert.deepEqual(json, yaml);
    assert.equal(json.maxPods, 42);
    assert.equal(json.fileCheckFrequency, 90_000);
    assert.deepEqual(json.evictionHard, { "memory.available": "1Gi" });
  });

  it("registerWithTaints, kubeReserved and clusterDNS from the file", () => {
    const c = load({
      file: `${HEADER}registerWithTaints:\n- key: dedicated\n  value: infra\n  effect: NoSchedule\nkubeReserved:\n  cpu: 100m\n  memory: 256Mi\nclusterDNS: [10.96.0.10]\n`,
    }).config;
    assert.deepEqual(c.registerWithTaints, [{ key: "dedicated", value: "infra", effect: "NoSchedule" }]);
    assert.deepEqual(c.kubeReserved, { cpu: "100m", memory: "256Mi" });
    assert.deepEqual(c.clusterDNS, ["10.96.0.10"]);
    assert.match(loadError({ file: `${HEADER}registerWithTaints:\n- key: a\n  effect: Sometimes\n` }), /registerWithTaints.*NoSchedule/);
  });
});

describe("config: map and list flags", () => {
  it("--node-labels key=value pairs", () => {
    const { flags } = load({ file: HEADER, flags: { "node-labels": "tier=web,example.com/role=worker, node.kubernetes.io/pool=a ,empty=" } });
    assert.deepEqual(flags.nodeLabels, { tier: "web", "example.com/role": "worker", "node.kubernetes.io/pool": "a", empty: "" });
  });

  it("--node-labels without '=' is an error naming the flag", () => {
    assert.match(loadError({ file: HEADER, flags: { "node-labels": "a=b,novalue" } }), /--node-labels/);
    assert.match(loadError({ file: HEADER, flags: { "node-labels": "=b" } }), /--node-labels/);
  });

  it("--node-labels in kubernetes.io/k8s.io outside the allowed set are rejected (upstream ValidateKubeletFlags)", () => {
    // Allowed: kubelet.kubernetes.io/*, node.kubernetes.io/*, and the fixed well-known set (reference 4.1).
    const ok = load({ file: HEADER, flags: { "node-labels": "kubelet.kubernetes.io/x=1,topology.kubernetes.io/zone=z1,kubernetes.io/arch=amd64" } });
    assert.equal(ok.flags.nodeLabels["topology.kubernetes.io/zone"], "z1");
    assert.match(loadError({ file: HEADER, flags: { "node-labels": "node-role.kubernetes.io/master=" } }), /node-role\.kubernetes\.io\/master/);
    assert.match(loadError({ file: HEADER, flags: { "node-labels": "kubernetes.io/custom=1" } }), /kubernetes\.io\/custom/);
  });

  it("--eviction-hard replaces the whole default map (unset signals are not inherited)", () => {
    const { config } = load({ file: HEADER, flags: { "eviction-hard": "memory.available<200Mi,nodefs.available<5%" } });
    assert.deepEqual(config.evictionHard, { "memory.available": "200Mi", "nodefs.available": "5%" });
  });

  it("--eviction-hard with an unknown signal, a bad quantity or a percentage above 100 is an error", () => {
    assert.match(loadError({ file: HEADER, flags: { "eviction-hard": "foo.available<1Gi" } }), /--eviction-hard.*foo\.available/);
    assert.match(loadError({ file: HEADER, flags: { "eviction-hard": "memory.available<lots" } }), /--eviction-hard.*lots/);
    assert.match(loadError({ file: HEADER, flags: { "eviction-hard": "nodefs.available<150%" } }), /--eviction-hard/);
    assert.match(loadError({ file: HEADER, flags: { "eviction-hard": "memory.available=100Mi" } }), /--eviction-hard/);
  });

  it("--kube-reserved and --system-reserved", () => {
    const { config } = load({ file: HEADER, flags: { "kube-reserved": "cpu=100m,memory=256Mi,ephemeral-storage=1Gi", "system-reserved": "pid=1000" } });
    assert.deepEqual(config.kubeReserved, { cpu: "100m", memory: "256Mi", "ephemeral-storage": "1Gi" });
    assert.deepEqual(config.systemReserved, { pid: "1000" });
    assert.match(loadError({ file: HEADER, flags: { "kube-reserved": "gpu=1" } }), /--kube-reserved.*gpu/);
    assert.match(loadError({ file: HEADER, flags: { "kube-reserved": "cpu=abc" } }), /--kube-reserved.*cpu/);
  });

  it("--register-with-taints key[=value]:Effect", () => {
    const { config } = load({ file: HEADER, flags: { "register-with-taints": "dedicated=infra:NoSchedule,gpu:NoExecute,soft=:PreferNoSchedule" } });
    assert.deepEqual(config.registerWithTaints, [
      { key: "dedicated", value: "infra", effect: "NoSchedule" },
      { key: "gpu", effect: "NoExecute" },
      { key: "soft", value: "", effect: "PreferNoSchedule" },
    ]);
    assert.match(loadError({ file: HEADER, flags: { "register-with-taints": "x=y:Sometimes" } }), /--register-with-taints/);
    assert.match(loadError({ file: HEADER, flags: { "register-with-taints": "noeffect" } }), /--register-with-taints/);
  });

  it("--cluster-dns list", () => {
    assert.deepEqual(load({ file: HEADER, flags: { "cluster-dns": "10.96.0.10,fd00::a" } }).config.clusterDNS, ["10.96.0.10", "fd00::a"]);
    assert.match(loadError({ file: HEADER, flags: { "cluster-dns": "10.96.0.10,dns" } }), /--cluster-dns.*"dns"/);
  });
});

describe("config: cross-field checks", () => {
  it("imageGCLowThresholdPercent > imageGCHighThresholdPercent is an error naming both", () => {
    const msg = loadError({ file: `${HEADER}imageGCHighThresholdPercent: 70\nimageGCLowThresholdPercent: 90\n` });
    assert.match(msg, /imageGCLowThresholdPercent \(90\)/);
    assert.match(msg, /imageGCHighThresholdPercent \(70\)/);
    assert.match(loadError({ file: HEADER, flags: { "image-gc-low-threshold": "90" } }), /imageGCLowThresholdPercent/);
    // equal is fine
    assert.equal(load({ file: `${HEADER}imageGCHighThresholdPercent: 80\n` }).config.imageGCHighThresholdPercent, 80);
  });

  it("tlsCertFile without tlsPrivateKeyFile is an error", () => {
    assert.match(loadError({ file: `${HEADER}tlsCertFile: /a.crt\n` }), /tlsCertFile and tlsPrivateKeyFile/);
    const ok = load({ file: `${HEADER}tlsCertFile: /a.crt\ntlsPrivateKeyFile: /a.key\n` }).config;
    assert.equal(ok.tlsPrivateKeyFile, "/a.key");
  });
});

describe("config: configz", () => {
  it("turns durations back into Go strings and leaves the rest as is", () => {
    const { config } = load({ file: HEADER });
    const z = configz(config).kubeletconfig;
    assert.equal(z.fileCheckFrequency, "20s");
    assert.equal(z.runtimeRequestTimeout, "2m0s");
    assert.equal(z.syncFrequency, "1m0s");
    assert.equal(z.nodeStatusUpdateFrequency, "10s");
    assert.equal(z.nodeStatusReportFrequency, "5m0s");
    assert.equal(z.imageMinimumGCAge, "2m0s");
    assert.equal(z.maxPods, 110);
    assert.equal(z.readOnlyPort, 0);
    assert.deepEqual(z.evictionHard, config.evictionHard);
    const authn = z.authentication as { webhook: { cacheTTL: unknown; enabled: unknown } };
    assert.equal(authn.webhook.cacheTTL, "2m0s");
    assert.equal(authn.webhook.enabled, true);
    const authz = z.authorization as { mode: unknown; webhook: { cacheAuthorizedTTL: unknown; cacheUnauthorizedTTL: unknown } };
    assert.equal(authz.mode, "Webhook");
    assert.equal(authz.webhook.cacheAuthorizedTTL, "5m0s");
    assert.equal(authz.webhook.cacheUnauthorizedTTL, "30s");
    // configz does not mutate the live config
    assert.equal(config.fileCheckFrequency, 20_000);
  });

  it("round-trips a loaded value", () => {
    const { config } = load({ file: `${HEADER}fileCheckFrequency: 90s\nsyncFrequency: 1h\n` });
    const z = configz(config).kubeletconfig;
    assert.equal(z.fileCheckFrequency, "1m30s");
    assert.equal(z.syncFrequency, "1h0m0s");
    // what configz prints loads back (YAML is a superset of JSON) to the same config
    const again = load({ file: JSON.stringify({ apiVersion: "kubelet.config.k8s.io/v1beta1", kind: "KubeletConfiguration", ...z }) });
    assert.deepEqual(again.config, config);
    assert.deepEqual(again.warnings, []);
  });
});

describe("durations (Go time.Duration syntax)", () => {
  it("parses", () => {
    const cases: [string, number][] = [
      ["1m30s", 90_000],
      ["500ms", 500],
      ["1h0m0s", 3_600_000],
      ["2h45m", 9_900_000],
      ["1.5s", 1500],
      ["1.5h", 5_400_000],
      ["20s", 20_000],
      ["0", 0],
      ["0s", 0],
      ["-1m", -60_000],
      ["1500us", 1.5],
      ["1500µs", 1.5],
      ["2000000ns", 2],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  it("rejects what Go rejects", () => {
    for (const bad of ["", "5", "1x", "s", "1m 30s", "m1", "1d", "--1s", "1s-"]) {
      assert.equal(parseDuration(bad), undefined, JSON.stringify(bad));
    }
  });

  it("formats like time.Duration.String()", () => {
    const cases: [number, string][] = [
      [90_000, "1m30s"],
      [500, "500ms"],
      [3_600_000, "1h0m0s"],
      [0, "0s"],
      [1500, "1.5s"],
      [120_000, "2m0s"],
      [20_000, "20s"],
      [300_000, "5m0s"],
      [86_400_000, "24h0m0s"],
      [3_661_000, "1h1m1s"],
      [-60_000, "-1m0s"],
      [1.5, "1.5ms"],
    ];
    for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
  });

  it("formats sub-millisecond durations in µs, as Go does", () => {
    assert.equal(formatDuration(0.5), "500µs");
  });

  it("round-trips", () => {
    for (const s of ["1m30s", "500ms", "1h0m0s", "20s", "2m0s", "1.5s", "5m0s", "24h0m0s", "1h1m1s"]) {
      const ms = parseDuration(s);
      assert.ok(ms !== undefined, s);
      assert.equal(formatDuration(ms), s);
    }
  });
});

describe("quantities", () => {
  it("parses binary, decimal and exponent forms", () => {
    const cases: [string | number, number][] = [
      ["100Mi", 100 * 2 ** 20],
      ["1.5Gi", 1.5 * 2 ** 30],
      ["250m", 0.25],
      ["1e3", 1000],
      ["1E3", 1000],
      ["2", 2],
      ["1k", 1000],
      ["1Ki", 1024],
      ["1M", 1e6],
      [".5", 0.5],
      ["0", 0],
      [3, 3],
    ];
    for (const [text, v] of cases) assert.equal(parseQuantity(text), v, String(text));
  });

  it("rejects non-quantities", () => {
    for (const bad of ["", "abc", "1.5.5", "10MB", "Mi", "1 Mi", "1ki"]) assert.equal(parseQuantity(bad), undefined, bad);
    assert.equal(parseQuantity(Number.NaN), undefined);
  });

  it("cpu millicores round up; bytes print as exact binary quantities", () => {
    assert.equal(cpuMillis("250m"), 250);
    assert.equal(cpuMillis("1.5"), 1500);
    assert.equal(cpuMillis("0.0001"), 1);
    assert.equal(cpuMillis("2"), 2000);
    assert.equal(formatBytes(512 * 2 ** 20), "512Mi");
    assert.equal(formatBytes(2 ** 30), "1Gi");
    assert.equal(formatBytes(1000), "1000");
  });
});
