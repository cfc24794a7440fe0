/**
 * imagePullSecrets end to end (real control plane, real containerd, a real registry with htpasswd
 * authentication, the tskubelet command, kubectl): a `kubectl create secret docker-registry`
 * Secret and a legacy kubernetes.io/dockercfg Secret let pods pull from the registry; a pod
 * without one fails with ErrImagePull naming the cause and records upstream's events; a pod whose
 * secret does not exist gets FailedToRetrieveImagePullSecret.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { eventsOf, kubectlJSON, waitNodeReadyForPods, type EventJSON } from "../support/e2e.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

interface PodJSON {
  metadata: { name: string; namespace: string; uid: string };
  status: { phase?: string; containerStatuses?: { name: string; state: { running?: object; waiting?: { reason?: string; message?: string } } }[] };
}

describe("pods pull from a private registry with imagePullSecrets", () => {
  let cp: TestCluster;
  let rt: PrivateContainerd;
  let reg: TestRegistry;
  let k: TskubeletProcess;
  let image: string;
  const node = "e2e-images";

  const getJSON = <T>(args: string[]): Promise<T> => kubectlJSON<T>(cp, args);
  const apply = (json: unknown): Promise<string> => cp.kubectl(["apply", "-f", "-"], { input: JSON.stringify(json) });
  const podJSON = (name: string): Promise<PodJSON> => getJSON<PodJSON>(["get", "pod", name]);
  const events = (name: string): Promise<EventJSON[]> => eventsOf(cp, name);
  const pod = (name: string, secrets: string[], policy = "IfNotPresent"): unknown => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      imagePullSecrets: secrets.map((s) => ({ name: s })),
      containers: [{ name: "main", image, imagePullPolicy: policy, command: ["sleep", "3600"] }],
    },
  });
  const waitRunning = (name: string): Promise<PodJSON> =>
    waitFor(async () => {
      const p = await podJSON(name);
      return p.status.phase === "Running" ? p : undefined;
    }, { timeoutMs: 60_000, what: () => `${name} Running` });
  const waitEvent = (name: string, reason: string, re: RegExp): Promise<EventJSON> =>
    waitFor(async () => (await events(name)).find((e) => e.reason === reason && re.test(e.message)), { timeoutMs: 60_000, what: () => `${name}: event ${reason} ${re.source}` });

  before(async () => {
    [cp, rt, reg] = await Promise.all([startCluster(), startContainerd({ cni: true }), startRegistry()]);
    await reg.trust(rt);
    image = await reg.push("busybox.tar", "private/busybox:1.35");
    const kc = await cp.nodeKubeconfig(node);
    k = await startTskubelet(rt, { nodeName: node, extraArgs: [`--kubeconfig=${kc}`] });
    await waitNodeReadyForPods(cp, node);
  });
  after(async () => {
    await k?.cleanup();
    await Promise.all([cp?.stop(), rt?.stop()]);
    await reg?.stop();
  });

  it("fails without a secret: ErrImagePull naming the cause, then ImagePullBackOff, with upstream's events", async () => {
    await apply(pod("nosecret", [], "Always"));
    const waiting = await waitFor(async () => {
      const w = (await podJSON("nosecret")).status.containerStatuses?.[0]?.state.waiting;
      return w?.reason === "ErrImagePull" || w?.reason === "ImagePullBackOff" ? w : undefined;
    }, { timeoutMs: 60_000, what: () => "nosecret waiting on its image" });
    assert.match(waiting.message ?? "", /401 Unauthorized|unauthorized/i);
    await waitEvent("nosecret", "Pulling", new RegExp(`^Pulling image "${image.replace(/\./g, "\\.")}"$`));
    const failed = await waitEvent("nosecret", "Failed", /^Failed to pull image ".*": .*(401 Unauthorized|unauthorized)/i);
    assert.equal(failed.type, "Warning");
    await waitEvent("nosecret", "BackOff", /^Back-off pulling image "/);
  });

  it("pulls with a kubernetes.io/dockerconfigjson Secret made by kubectl create secret docker-registry", async () => {
    await cp.kubectl(["create", "secret", "docker-registry", "regcred", `--docker-server=${reg.host}`, `--docker-username=${reg.username}`, `--docker-password=${reg.password}`]);
    await apply(pod("withsecret", ["regcred"], "Always"));
    await waitRunning("withsecret");
    const pulled = await waitEvent("withsecret", "Pulled", /^Successfully pulled image ".*" in .* \(.* including waiting\)\. Image size: \d+ bytes\.$/);
    assert.equal(pulled.type, "Normal");
  });

  it("pulls with a legacy kubernetes.io/dockercfg Secret", async () => {
    const cfg = { [`${reg.host}/private`]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString("base64") } };
    await apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "legacycred" }, type: "kubernetes.io/dockercfg", data: { ".dockercfg": Buffer.from(JSON.stringify(cfg)).toString("base64") } });
    await apply(pod("legacy", ["legacycred"], "Always"));
    await waitRunning("legacy");
  });

  it("reports a missing secret with FailedToRetrieveImagePullSecret", async () => {
    await apply(pod("missing", ["no-such-secret"], "Always"));
    const e = await waitEvent("missing", "FailedToRetrieveImagePullSecret", /no-such-secret/);
    assert.equal(e.message, "Unable to retrieve some image pull secrets (no-such-secret); attempting to pull the image may not succeed.");
    assert.equal(e.type, "Warning");
  });
});
