import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { ContainerConfigError, envReferences, loadEnvSources, resolveEnv, resourceFieldValue, type EnvObjectLookup } from "../../src/containers/env.js";
import { makeContainerConfig } from "../../src/containers/container.js";

const pod = (containers: V1Container[]): V1Pod => ({ metadata: { name: "p", namespace: "team", uid: "u1" }, spec: { containers } });

const objects: Record<string, Record<string, string>> = {
  "ConfigMap/team/settings": { LEVEL: "debug", COLOR: "blue", "dotted.key": "d" },
  "Secret/team/creds": { USER: "admin", PASS: "s3cret" },
};
const calls: string[] = [];
const lookup: EnvObjectLookup = (kind, ns, name) => {
  calls.push(`${kind}/${ns}/${name}`);
  return Promise.resolve(objects[`${kind}/${ns}/${name}`]);
};

/** `null` runs standalone (no lookup). */
async function env(c: V1Container, l: EnvObjectLookup | null = lookup): Promise<Record<string, string>> {
  const p = pod([c]);
  const sources = await loadEnvSources(p, c, l ?? undefined);
  return Object.fromEntries(resolveEnv(p, c, { podIPs: ["10.0.0.5"], hostIPs: ["192.168.0.2"], sources }).map((e) => [e.key, e.value]));
}

describe("env from ConfigMaps and Secrets", () => {
  it("configMapKeyRef and secretKeyRef, and $(VAR) referring to them", async () => {
    const got = await env({
      name: "c",
      env: [
        { name: "LOG", valueFrom: { configMapKeyRef: { name: "settings", key: "LEVEL" } } },
        { name: "PW", valueFrom: { secretKeyRef: { name: "creds", key: "PASS" } } },
        { name: "DSN", value: "user=$(PW) level=$(LOG)" },
      ],
    });
    assert.deepEqual(got, { LOG: "debug", PW: "s3cret", DSN: "user=s3cret level=debug" });
  });

  it("envFrom with a prefix; env overrides envFrom; envFrom values are not expanded", async () => {
    objects["ConfigMap/team/raw"] = { TEMPLATE: "$(COLOR)" };
    const got = await env({
      name: "c",
      envFrom: [{ configMapRef: { name: "settings" }, prefix: "CFG_" }, { secretRef: { name: "creds" } }, { configMapRef: { name: "raw" } }],
      env: [{ name: "USER", value: "override" }],
    });
    assert.deepEqual(got, { CFG_LEVEL: "debug", CFG_COLOR: "blue", "CFG_dotted.key": "d", USER: "override", PASS: "s3cret", TEMPLATE: "$(COLOR)" });
  });

  it("each referenced object is fetched once", async () => {
    calls.length = 0;
    await env({
      name: "c",
      envFrom: [{ configMapRef: { name: "settings" } }],
      env: [
        { name: "A", valueFrom: { configMapKeyRef: { name: "settings", key: "LEVEL" } } },
        { name: "B", valueFrom: { configMapKeyRef: { name: "settings", key: "COLOR" } } },
      ],
    });
    assert.deepEqual(calls, ["ConfigMap/team/settings"]);
    assert.deepEqual(envReferences({ name: "c", env: [{ name: "X", value: "lit", valueFrom: { configMapKeyRef: { name: "ignored", key: "k" } } }] }), []);
  });

  it("missing objects and keys fail with upstream's messages", async () => {
    const cases: [V1Container, RegExp][] = [
      [{ name: "c", env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "nope", key: "k" } } }] }, /^configmap "nope" not found$/],
      [{ name: "c", env: [{ name: "X", valueFrom: { secretKeyRef: { name: "nope", key: "k" } } }] }, /^secret "nope" not found$/],
      [{ name: "c", env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "settings", key: "missing" } } }] }, /^couldn't find key missing in ConfigMap team\/settings$/],
      [{ name: "c", env: [{ name: "X", valueFrom: { secretKeyRef: { name: "creds", key: "missing" } } }] }, /^couldn't find key missing in Secret team\/creds$/],
      [{ name: "c", envFrom: [{ configMapRef: { name: "nope" } }] }, /^configmap "nope" not found$/],
      [{ name: "c", envFrom: [{ secretRef: { name: "nope" } }] }, /^secret "nope" not found$/],
    ];
    for (const [c, re] of cases) {
      await assert.rejects(env(c), (err: unknown) => err instanceof ContainerConfigError && err.code === "CreateContainerConfigError" && re.test(err.message), re.source);
    }
  });

  it("optional references skip what is missing", async () => {
    const got = await env({
      name: "c",
      envFrom: [{ configMapRef: { name: "nope", optional: true } }, { secretRef: { name: "nope", optional: true } }],
      env: [
        { name: "A", valueFrom: { configMapKeyRef: { name: "nope", key: "k", optional: true } } },
        { name: "B", valueFrom: { configMapKeyRef: { name: "settings", key: "missing", optional: true } } },
        { name: "C", valueFrom: { secretKeyRef: { name: "creds", key: "missing", optional: true } } },
        { name: "D", value: "$(A)-$(B)" },
      ],
    });
    assert.deepEqual(got, { D: "$(A)-$(B)" });
  });

  it("standalone (no lookup): a clear error naming the object, even for optional references", async () => {
    await assert.rejects(env({ name: "c", env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "settings", key: "LEVEL", optional: true } } }] }, null), /couldn't get configMap team\/settings, no kubeClient defined \(tskubelet runs standalone/);
    await assert.rejects(env({ name: "c", envFrom: [{ secretRef: { name: "creds" } }] }, null), /couldn't get secret team\/creds, no kubeClient defined/);
    // Containers without such references need no lookup.
    assert.deepEqual(await env({ name: "c", env: [{ name: "A", value: "1" }] }, null), { A: "1" });
  });

  it("an API failure other than not-found propagates", async () => {
    const failing: EnvObjectLookup = () => Promise.reject(new Error("apiserver unreachable"));
    await assert.rejects(env({ name: "c", envFrom: [{ configMapRef: { name: "settings", optional: true } }] }, failing), /apiserver unreachable/);
  });

  it("makeContainerConfig: env and mounts together; a config error is a ContainerConfigError", async () => {
    const c: V1Container = { name: "c", image: "busybox", env: [{ name: "L", valueFrom: { configMapKeyRef: { name: "settings", key: "LEVEL" } } }], volumeMounts: [{ name: "v", mountPath: "/v" }] };
    const seen: Record<string, string>[] = [];
    const cfg = await makeContainerConfig(pod([c]), c, { restartCount: 0, imageRef: "", memoryCapacity: 1 << 30, podIPs: [], hostIPs: [] }, {
      envLookup: lookup,
      allocatable: {},
      mountsFor: (_p, _c, e) => {
        seen.push(e);
        return Promise.resolve([{ containerPath: "/v", hostPath: "/host/v", readonly: true }]);
      },
    });
    assert.deepEqual(cfg.envs, [{ key: "L", value: "debug" }]);
    assert.deepEqual(cfg.mounts, [{ containerPath: "/v", hostPath: "/host/v", readonly: true }]);
    assert.deepEqual(seen, [{ L: "debug" }], "mounts see the resolved env (subPathExpr)");
    const bad: V1Container = { ...c, env: [{ name: "L", valueFrom: { configMapKeyRef: { name: "absent", key: "k" } } }] };
    await assert.rejects(
      makeContainerConfig(pod([bad]), bad, { restartCount: 0, imageRef: "", memoryCapacity: 1, podIPs: [], hostIPs: [] }, { envLookup: lookup, allocatable: {}, mountsFor: () => Promise.resolve([]) }),
      ContainerConfigError,
    );
  });
});

describe("resourceFieldRef", () => {
  const c: V1Container = {
    name: "app",
    image: "x",
    resources: { requests: { cpu: "250m", memory: "64Mi" }, limits: { cpu: "1500m", memory: "128Mi", "hugepages-2Mi": "4Mi" } },
  };
  const p = pod([c, { name: "other", image: "x" }]);
  const alloc = { cpu: 4, memory: 8 * 2 ** 30, "ephemeral-storage": 100e9 };
  const value = (resource: string, divisor?: string, containerName?: string): string =>
    resourceFieldValue(p, c, { resource, ...(divisor !== undefined ? { divisor } : {}), ...(containerName !== undefined ? { containerName } : {}) }, alloc);

  it("limits and requests with upstream's rounding up and divisors", () => {
    assert.equal(value("limits.cpu"), "2", "1.5 cores rounded up");
    assert.equal(value("limits.cpu", "1m"), "1500");
    assert.equal(value("requests.cpu", "1m"), "250");
    assert.equal(value("requests.cpu"), "1");
    assert.equal(value("limits.memory"), String(128 * 2 ** 20));
    assert.equal(value("limits.memory", "1Mi"), "128");
    assert.equal(value("requests.memory", "1M"), "68", "64Mi = 67.1 MB, rounded up");
    assert.equal(value("limits.hugepages-2Mi", "1Mi"), "4");
  });

  it("without a limit: the node's allocatable; without a request: 0 (or the limit)", () => {
    assert.equal(value("limits.cpu", undefined, "other"), "4");
    assert.equal(value("limits.memory", "1Gi", "other"), "8");
    assert.equal(value("limits.ephemeral-storage", "1G", "other"), "100");
    assert.equal(value("requests.cpu", undefined, "other"), "0");
    const onlyLimit: V1Container = { name: "l", resources: { limits: { memory: "1Gi" } } };
    assert.equal(resourceFieldValue(pod([onlyLimit]), onlyLimit, { resource: "requests.memory", divisor: "1Mi" }), "1024");
  });

  it("unknown resources and containers fail", () => {
    assert.throws(() => value("limits.gpu"), /unsupported container resource : limits.gpu/);
    assert.throws(() => value("limits.cpu", undefined, "ghost"), /container ghost not found/);
  });

  it("in env, through resolveEnv", () => {
    const withEnv: V1Container = { ...c, env: [{ name: "CPU_M", valueFrom: { resourceFieldRef: { resource: "limits.cpu", divisor: "1m" } } }, { name: "MEM", valueFrom: { resourceFieldRef: { resource: "limits.memory", divisor: "1Mi", containerName: "other" } } }] };
    const e = resolveEnv(pod([withEnv, { name: "other", image: "x" }]), withEnv, { podIPs: [], hostIPs: [], allocatable: alloc });
    assert.deepEqual(e, [{ key: "CPU_M", value: "1500" }, { key: "MEM", value: "8192" }]);
  });
});
