/**
 * What pods need from the API, end to end (real control plane, real containerd, the tskubelet
 * command, kubectl): ConfigMaps and Secrets through env and volumes, volume updates within the
 * refresh period, missing objects reported as upstream reports them, and the projected service
 * account token used by a pod to read its own Pod.
 *
 * tskubelet runs with --sync-frequency=10s: API-backed volumes are rewritten every sync period
 * (upstream's semantics; the default 1m keeps updates within a minute).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startContainerd, type PrivateContainerd } from "../support/containerd.js";
import { startCluster, type TestCluster } from "../support/cluster.js";
import { eventsOf, kubectlJSON, waitNodeReadyForPods, type EventJSON } from "../support/e2e.js";
import { startTskubelet, waitFor, type TskubeletProcess } from "../support/tskubelet.js";

const IMAGE = "tskubelet.local/busybox:1.35";
const SYNC_SECONDS = 10;

interface PodJSON {
  metadata: { name: string; namespace: string; uid: string };
  spec: { volumes?: { name: string; projected?: unknown }[] };
  status: { phase?: string; containerStatuses?: { name: string; state: { running?: object; waiting?: { reason?: string; message?: string } } }[] };
}

describe("pods use ConfigMaps, Secrets and their service account token", () => {
  let cp: TestCluster;
  let rt: PrivateContainerd;
  let k: TskubeletProcess;
  const node = "e2e-volumes";

  const getJSON = <T>(args: string[]): Promise<T> => kubectlJSON<T>(cp, args);
  const apply = (yaml: string): Promise<string> => cp.kubectl(["apply", "-f", "-"], { input: yaml });
  const podJSON = (name: string): Promise<PodJSON> => getJSON<PodJSON>(["get", "pod", name]);
  const events = (name: string): Promise<EventJSON[]> => eventsOf(cp, name);
  const logOf = async (name: string, container = "main"): Promise<string> => {
    const p = await podJSON(name);
    return readFile(join(k.logsDir, `${p.metadata.namespace}_${name}_${p.metadata.uid}`, container, "0.log"), "utf8").catch(() => "");
  };
  const waitLog = (name: string, re: RegExp, timeoutMs = 60_000): Promise<string> =>
    waitFor(async () => {
      const t = await logOf(name);
      return re.test(t) ? t : undefined;
    }, { timeoutMs, what: () => `${name} to log ${re.source}` });
  const waitRunning = (name: string): Promise<PodJSON> =>
    waitFor(async () => {
      const p = await podJSON(name);
      return p.status.phase === "Running" ? p : undefined;
    }, { timeoutMs: 60_000, what: () => `${name} Running` });
  const pod = (name: string, body: string): string =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  nodeName: ${node}\n  terminationGracePeriodSeconds: 1\n${body}`;

  before(async () => {
    [cp, rt] = await Promise.all([startCluster(), startContainerd({ cni: true })]);
    const kc = await cp.nodeKubeconfig(node);
    k = await startTskubelet(rt, { nodeName: node, extraArgs: [`--kubeconfig=${kc}`, `--sync-frequency=${SYNC_SECONDS}s`] });
    await waitNodeReadyForPods(cp, node);
    // The token volume needs kube-root-ca.crt.
    await waitFor(async () => (await cp.kubectl(["get", "configmap", "kube-root-ca.crt", "-o", "name"]).catch(() => "")).includes("kube-root-ca.crt"), { timeoutMs: 60_000, what: () => "the kube-root-ca.crt ConfigMap" });
  });
  after(async () => {
    await k?.cleanup();
    await Promise.all([cp?.stop(), rt?.stop()]);
  });

  it("a pod reads a ConfigMap and a Secret through env (keyRef, envFrom) and volumes", async () => {
    await cp.kubectl(["create", "configmap", "settings", "--from-literal=level=debug", "--from-literal=app.conf=version-1"]);
    await cp.kubectl(["create", "secret", "generic", "creds", "--from-literal=password=hunter2", "--from-literal=user=admin"]);
    await apply(
      pod(
        "reader",
        `  containers:
  - name: main
    image: ${IMAGE}
    command: ["sh", "-c", "echo LEVEL=$LEVEL PW=$PW CFG_user=$CFG_user; echo file-pw=$(cat /etc/creds/pw); ls -l /etc/creds/; while true; do echo conf=$(cat /etc/settings/app.conf); sleep 1; done"]
    env:
    - name: LEVEL
      valueFrom: {configMapKeyRef: {name: settings, key: level}}
    - name: PW
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    envFrom:
    - secretRef: {name: creds}
      prefix: CFG_
    volumeMounts:
    - {name: settings, mountPath: /etc/settings}
    - {name: creds, mountPath: /etc/creds}
  volumes:
  - name: settings
    configMap: {name: settings}
  - name: creds
    secret:
      secretName: creds
      defaultMode: 0400
      items: [{key: password, path: pw}]
`,
      ),
    );
    const p = await waitRunning("reader");
    const log = await waitLog("reader", /conf=version-1/);
    assert.match(log, /stdout F LEVEL=debug PW=hunter2 CFG_user=admin$/m);
    assert.match(log, /stdout F file-pw=hunter2$/m);
    assert.match(log, /stdout F lrwxrwxrwx .* pw -> \.\.data\/pw$/m, "secret keys are ..data symlinks");
    // On the node: upstream's layout, the secret on a tmpfs.
    const vol = join(k.dir, "pods", p.metadata.uid, "volumes");
    assert.deepEqual((await readdir(vol)).sort(), ["kubernetes.io~configmap", "kubernetes.io~projected", "kubernetes.io~secret"]);
    assert.equal(await readFile(join(vol, "kubernetes.io~configmap/settings/app.conf"), "utf8"), "version-1");
    assert.match(await readFile("/proc/self/mountinfo", "utf8"), new RegExp(` ${join(vol, "kubernetes.io~secret/creds")} .* - tmpfs `));
  });

  it("updating the ConfigMap updates the volume file atomically within the sync period", async () => {
    const p = await podJSON("reader");
    const dir = join(k.dir, "pods", p.metadata.uid, "volumes/kubernetes.io~configmap/settings");
    const before1 = await readlink(join(dir, "..data"));
    const t0 = Date.now();
    await cp.kubectl(["patch", "configmap", "settings", "--type=merge", "-p", '{"data":{"app.conf":"version-2"}}']);
    await waitLog("reader", /conf=version-2/, 70_000);
    const took = Date.now() - t0;
    assert.ok(took < (SYNC_SECONDS + 10) * 1000, `the update reached the pod in ${took} ms`);
    const after1 = await readlink(join(dir, "..data"));
    assert.notEqual(after1, before1, "..data points at a new timestamped dir");
    assert.deepEqual((await readdir(dir)).filter((e) => e.startsWith("..")).sort(), ["..data", after1].sort(), "the old version is removed");
    // The environment does not change for a running container (as upstream).
    assert.match(await logOf("reader"), /LEVEL=debug/);
  });

  it("a missing ConfigMap: CreateContainerConfigError for env, FailedMount for a volume, Events; other pods unaffected", async () => {
    await apply(pod("env-missing", `  containers:\n  - name: main\n    image: ${IMAGE}\n    command: [sleep, "3600"]\n    env:\n    - name: X\n      valueFrom: {configMapKeyRef: {name: absent, key: k}}\n`));
    await apply(pod("key-missing", `  containers:\n  - name: main\n    image: ${IMAGE}\n    command: [sleep, "3600"]\n    env:\n    - name: X\n      valueFrom: {configMapKeyRef: {name: settings, key: nope}}\n`));
    await apply(
      pod("vol-missing", `  containers:\n  - name: main\n    image: ${IMAGE}\n    command: [sh, -c, "echo got=$(cat /cfg/k); sleep 3600"]\n    volumeMounts: [{name: cfg, mountPath: /cfg}]\n  volumes:\n  - name: cfg\n    configMap: {name: absent-too}\n`),
    );
    await apply(pod("bystander", `  containers:\n  - name: main\n    image: ${IMAGE}\n    command: [sleep, "3600"]\n`));
    const waitingOf = async (name: string): Promise<{ reason?: string; message?: string } | undefined> => (await podJSON(name)).status.containerStatuses?.[0]?.state.waiting;
    const envWait = await waitFor(async () => {
      const w = await waitingOf("env-missing");
      return w?.reason === "CreateContainerConfigError" ? w : undefined;
    }, { timeoutMs: 60_000, what: () => "env-missing in CreateContainerConfigError" });
    assert.equal(envWait.message, 'configmap "absent" not found');
    const keyWait = await waitFor(async () => {
      const w = await waitingOf("key-missing");
      return w?.reason === "CreateContainerConfigError" ? w : undefined;
    }, { timeoutMs: 60_000, what: () => "key-missing in CreateContainerConfigError" });
    assert.equal(keyWait.message, "couldn't find key nope in ConfigMap default/settings");
    await waitFor(async () => (await waitingOf("vol-missing"))?.reason === "ContainerCreating", { timeoutMs: 60_000, what: () => "vol-missing in ContainerCreating" });
    const envEvents = await waitFor(async () => {
      const e = await events("env-missing");
      return e.some((x) => x.reason === "Failed") ? e : undefined;
    }, { timeoutMs: 30_000, what: () => "a Failed event" });
    assert.ok(envEvents.some((x) => x.type === "Warning" && x.message === 'Error: configmap "absent" not found'), JSON.stringify(envEvents));
    const volEvents = await waitFor(async () => {
      const e = await events("vol-missing");
      return e.some((x) => x.reason === "FailedMount") ? e : undefined;
    }, { timeoutMs: 30_000, what: () => "a FailedMount event" });
    assert.ok(volEvents.some((x) => x.type === "Warning" && x.message === 'MountVolume.SetUp failed for volume "cfg" : configmap "absent-too" not found'), JSON.stringify(volEvents));
    const table = await cp.kubectl(["get", "pods", "env-missing", "vol-missing"]);
    assert.match(table, /env-missing\s+0\/1\s+CreateContainerConfigError/);
    assert.match(table, /vol-missing\s+0\/1\s+ContainerCreating/);
    await waitRunning("bystander");
    assert.equal((await podJSON("reader")).status.phase, "Running");
    // Creating the ConfigMap lets the pod start.
    await cp.kubectl(["create", "configmap", "absent-too", "--from-literal=k=arrived"]);
    await waitLog("vol-missing", /stdout F got=arrived$/m);
    await cp.kubectl(["delete", "pod", "env-missing", "key-missing", "vol-missing", "bystander", "--wait=true"], { timeoutMs: 90_000 });
  });

  it("a pod uses its projected service account token to read its own Pod from the API", async () => {
    const apiserver = new URL(cp.server);
    await cp.kubectl(["create", "role", "pod-reader", "--verb=get", "--resource=pods"]);
    await cp.kubectl(["create", "rolebinding", "default-reads-pods", "--role=pod-reader", "--serviceaccount=default:default"]);
    const sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    // hostNetwork: the test control plane listens on loopback only.
    await apply(
      pod(
        "whoami",
        `  hostNetwork: true
  containers:
  - name: main
    image: ${IMAGE}
    command:
    - sh
    - -c
    - |
      echo "namespace=$(cat ${sa}/namespace)"
      until wget -q -O /tmp/me --header "Authorization: Bearer $(cat ${sa}/token)" https://127.0.0.1:${apiserver.port}/api/v1/namespaces/$(cat ${sa}/namespace)/pods/whoami; do sleep 2; done
      # The apiserver pretty-prints for wget: one line for the log.
      echo "self=$(tr -d '\\n' < /tmp/me)"
      wget -q -O - --header "Authorization: Bearer $(cat ${sa}/token)" https://127.0.0.1:${apiserver.port}/api/v1/namespaces/kube-system/pods/x 2>&1 || echo "other-namespace=refused"
      sleep 3600
`,
      ),
    );
    const p = await waitRunning("whoami");
    const projected = p.spec.volumes?.find((v) => v.projected && v.name.startsWith("kube-api-access-"));
    assert.ok(projected, "the ServiceAccount admission added the kube-api-access volume");
    const log = await waitLog("whoami", /self=|other-namespace/, 60_000);
    assert.match(log, /stdout F namespace=default$/m);
    const self = /stdout F self=(.*)$/m.exec(log)?.[1] ?? "";
    assert.ok(self, `the pod read itself through the API:\n${log}`);
    const me = JSON.parse(self) as { kind: string; metadata: { name: string; uid: string } };
    assert.equal(me.kind, "Pod");
    assert.equal(me.metadata.name, "whoami");
    assert.equal(me.metadata.uid, p.metadata.uid);

    // On the node: the token, CA bundle and namespace beside each other, on a tmpfs.
    const dir = join(k.dir, "pods", p.metadata.uid, "volumes/kubernetes.io~projected", projected.name);
    const [token, ca, ns] = await Promise.all(["token", "ca.crt", "namespace"].map((f) => readFile(join(dir, f), "utf8")));
    assert.equal(ns, "default");
    assert.equal(ca, await readFile(cp.caCert, "utf8"), "ca.crt is the cluster CA (kube-root-ca.crt)");
    // The token is bound to the pod: TokenReview says who it is.
    const review = JSON.parse(
      await cp.kubectl(["create", "-o", "json", "-f", "-"], { input: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } }) }),
    ) as { status: { authenticated?: boolean; user?: { username?: string; extra?: Record<string, string[]> }; audiences?: string[] } };
    assert.equal(review.status.authenticated, true);
    assert.equal(review.status.user?.username, "system:serviceaccount:default:default");
    assert.deepEqual(review.status.user?.extra?.["authentication.kubernetes.io/pod-name"], ["whoami"]);
    assert.deepEqual(review.status.user?.extra?.["authentication.kubernetes.io/pod-uid"], [p.metadata.uid]);
    assert.deepEqual(review.status.user?.extra?.["authentication.kubernetes.io/node-name"], [node]);
    // kubectl with only what the volume holds (token + ca.crt, verified TLS): get itself, but nothing else.
    const kc = join(await mkdtemp(join(tmpdir(), "tskubelet-e2e-sa-")), "kubeconfig");
    await writeFile(
      kc,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${cp.server}\n    certificate-authority: ${join(dir, "ca.crt")}\nusers:\n- name: sa\n  user:\n    tokenFile: ${join(dir, "token")}\ncontexts:\n- name: c\n  context: {cluster: c, user: sa, namespace: default}\ncurrent-context: c\n`,
    );
    const viaToken = JSON.parse(await cp.kubectl(["get", "pod", "whoami", "-o", "json"], { kubeconfig: kc })) as { metadata: { uid: string } };
    assert.equal(viaToken.metadata.uid, p.metadata.uid);
    await assert.rejects(cp.kubectl(["get", "pods", "-n", "kube-system"], { kubeconfig: kc }), /Forbidden|forbidden/);
    assert.match(await waitLog("whoami", /other-namespace=refused|403/), /other-namespace=refused|403/);
    await rm(dirname(kc), { recursive: true, force: true });
  });

  it("the pod's volumes are removed from the node when it is deleted", async () => {
    const p = await podJSON("reader");
    const dir = join(k.dir, "pods", p.metadata.uid);
    await cp.kubectl(["delete", "pod", "reader", "--wait=true"], { timeoutMs: 60_000 });
    await waitFor(async () => (await readdir(dir).then(() => false, () => true)), { timeoutMs: 30_000, what: () => `${dir} removed` });
    assert.doesNotMatch(await readFile("/proc/self/mountinfo", "utf8"), new RegExp(dir));
  });
});
