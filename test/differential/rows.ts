/**
 * The table of the differential suite: small pods, each run on both kubelets, each observed until
 * a condition both kubelets should reach (or for a fixed time, or through its deletion).
 */
import { TEST_IMAGES } from "../support/containerd.js";
import type { NormContainer, NormStatus } from "./normalize.js";

export interface Row {
  /** Also the pod's name. */
  id: string;
  /** What the row exercises, for the report. */
  title: string;
  /** The pod spec, without nodeName (the suite pins each pod to its kubelet's node). */
  spec: Record<string, unknown>;
  /** Observation ends at the first status for which this holds ... */
  until?: (s: NormStatus) => boolean;
  /** ... or this long after the kubelet's first status of the pod. */
  holdMs?: number;
  /** Once `until` holds, delete the pod (its own grace period) and follow it until it is gone. */
  thenDelete?: boolean;
  /** Observation ends anyway this long after the pod's creation: a reported difference, not a hang. */
  timeoutMs?: number;
}

export const ROW_TIMEOUT_MS = 150_000;

const BUSYBOX = TEST_IMAGES.busybox;
/** A registry on a closed loopback port: a pull that fails at once, with no traffic off the host. */
const UNPULLABLE = "127.0.0.1:9/tskubelet/missing:1.0";
/** Not in the runtime and never pulled. */
const ABSENT = "tskubelet.local/missing:1.0";

const sh = (script: string): string[] => ["sh", "-c", script];

function container(name: string, command: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, image: BUSYBOX, imagePullPolicy: "IfNotPresent", command, ...extra };
}

function pod(containers: Record<string, unknown>[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { terminationGracePeriodSeconds: 2, containers, ...extra };
}

// predicates

const phaseIs =
  (...phases: string[]) =>
  (s: NormStatus): boolean =>
    phases.includes(s.phase);
const podReady = (s: NormStatus): boolean => s.conditions.includes("Ready=True");
const named = (s: NormStatus, name: string): NormContainer | undefined => s.containers.find((c) => c.name === name);
const waiting =
  (name: string, reason: string) =>
  (s: NormStatus): boolean =>
    named(s, name)?.state === `waiting:${reason}`;
const restartedAndRunning =
  (name: string) =>
  (s: NormStatus): boolean => {
    const c = named(s, name);
    return c !== undefined && c.restarts >= 1 && c.state === "running";
  };
const exitRows = (["Always", "OnFailure", "Never"] as const).flatMap((policy) =>
  ([0, 1] as const).map((code): Row => {
    const restarts = policy === "Always" || (policy === "OnFailure" && code === 1);
    return {
      id: `exit${code}-${policy.toLowerCase()}`,
      title: `one container exits ${code}, restartPolicy ${policy}${restarts ? " (back-off)" : ""}`,
      spec: pod([container("main", sh(`sleep 1; exit ${code}`))], { restartPolicy: policy }),
      until: restarts ? waiting("main", "CrashLoopBackOff") : phaseIs("Succeeded", "Failed"),
    };
  }),
);

export const ROWS: Row[] = [
  {
    id: "running",
    title: "a plain running pod",
    spec: pod([container("main", ["sleep", "3600"])]),
    until: podReady,
  },
  ...exitRows,
  {
    id: "init-ok",
    title: "an init container that succeeds, then the app container runs",
    spec: pod([container("main", ["sleep", "3600"])], { initContainers: [container("init", ["true"])] }),
    until: podReady,
  },
  {
    id: "init-fail-never",
    title: "an init container that exits 1, restartPolicy Never",
    spec: pod([container("main", ["sleep", "3600"])], { restartPolicy: "Never", initContainers: [container("init", sh("sleep 1; exit 1"))] }),
    until: phaseIs("Failed", "Succeeded"),
  },
  {
    id: "init-fail-onfailure",
    title: "an init container that exits 1, restartPolicy OnFailure (back-off)",
    spec: pod([container("main", ["sleep", "3600"])], { restartPolicy: "OnFailure", initContainers: [container("init", sh("sleep 1; exit 1"))] }),
    until: waiting("init/init", "CrashLoopBackOff"),
  },
  {
    id: "sidecar",
    title: "a sidecar (init container with restartPolicy Always) beside the app container",
    spec: pod([container("main", ["sleep", "3600"])], { initContainers: [container("sidecar", ["sleep", "3600"], { restartPolicy: "Always" })] }),
    until: podReady,
  },
  {
    id: "liveness-fail",
    title: "a liveness exec probe that always fails (period 1 s, threshold 1)",
    spec: pod([container("main", ["sleep", "3600"], { livenessProbe: { exec: { command: sh("exit 1") }, periodSeconds: 1, failureThreshold: 1 } })], { terminationGracePeriodSeconds: 1 }),
    until: restartedAndRunning("main"),
  },
  {
    id: "readiness-late",
    title: "a readiness exec probe that fails for ~4 s, then passes",
    spec: pod([container("main", sh("sleep 4; touch /tmp/ready; exec sleep 3600"), { readinessProbe: { exec: { command: ["test", "-f", "/tmp/ready"] }, periodSeconds: 1, timeoutSeconds: 5 } })]),
    until: podReady,
  },
  {
    id: "startup-probe",
    title: "a startup probe that passes after ~3 s (then no other probe)",
    spec: pod([container("main", sh("sleep 3; touch /tmp/started; exec sleep 3600"), { startupProbe: { exec: { command: ["test", "-f", "/tmp/started"] }, periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 30 } })]),
    until: podReady,
  },
  {
    id: "poststart-hook",
    title: "a postStart exec hook writes a file; the container copies it to its termination message",
    spec: pod(
      [
        container("main", sh("for i in 1 2 3 4 5 6 7 8 9 10; do test -f /tmp/hook && break; sleep 0.5; done; cat /tmp/hook > /dev/termination-log"), {
          lifecycle: { postStart: { exec: { command: sh("echo poststart > /tmp/hook") } } },
        }),
      ],
      { restartPolicy: "Never" },
    ),
    until: phaseIs("Succeeded", "Failed"),
  },
  {
    id: "prestop-hook",
    title: "a preStop exec hook writes the termination message when the pod is deleted",
    spec: pod(
      [
        container("main", sh("trap 'exit 0' TERM; while true; do sleep 0.2; done"), {
          lifecycle: { preStop: { exec: { command: sh("echo prestop > /dev/termination-log") } } },
        }),
      ],
      { terminationGracePeriodSeconds: 10 },
    ),
    until: podReady,
    thenDelete: true,
  },
  {
    id: "termination-message",
    title: "a termination message written to terminationMessagePath",
    spec: pod([container("main", sh("printf done > /dev/termination-log"))], { restartPolicy: "Never" }),
    until: phaseIs("Succeeded", "Failed"),
  },
  {
    id: "termination-fallback",
    title: "terminationMessagePolicy FallbackToLogsOnError, exit 1 after writing to stdout",
    spec: pod([container("main", sh("echo oops; exit 1"), { terminationMessagePolicy: "FallbackToLogsOnError" })], { restartPolicy: "Never" }),
    until: phaseIs("Succeeded", "Failed"),
  },
  {
    id: "image-unpullable",
    title: "an image that cannot be pulled (ErrImagePull, then ImagePullBackOff)",
    spec: pod([{ name: "main", image: UNPULLABLE, imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"] }]),
    until: waiting("main", "ImagePullBackOff"),
  },
  {
    id: "image-never-pull",
    title: "imagePullPolicy Never with an image that is not present",
    spec: pod([{ name: "main", image: ABSENT, imagePullPolicy: "Never", command: ["sleep", "3600"] }]),
    until: waiting("main", "ErrImageNeverPull"),
  },
  {
    id: "configmap-env-missing",
    title: "an environment variable from a ConfigMap that does not exist",
    spec: pod([container("main", ["sleep", "3600"], { env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "absent", key: "x" } } }] })]),
    until: waiting("main", "CreateContainerConfigError"),
  },
  {
    id: "configmap-volume-missing",
    title: "a volume from a ConfigMap that does not exist (watched for 20 s)",
    spec: pod([container("main", ["sleep", "3600"], { volumeMounts: [{ name: "cm", mountPath: "/cm" }] })], { volumes: [{ name: "cm", configMap: { name: "absent" } }] }),
    holdMs: 20_000,
  },
  {
    id: "run-as-non-root",
    title: "runAsNonRoot with an image that runs as root",
    spec: pod([container("main", ["sleep", "3600"], { securityContext: { runAsNonRoot: true } })]),
    until: waiting("main", "CreateContainerConfigError"),
  },
  {
    id: "oom-killed",
    title: "a container over its 16Mi memory limit (dd with a 64M buffer, after 1 s), restartPolicy Never",
    // The allocation waits a second: containerd 1.6 can miss the OOM event of a container killed
    // right after its start and report Error to either kubelet (containerd issue 8180).
    spec: pod([container("main", sh("sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1"), { resources: { limits: { memory: "16Mi" } } })], { restartPolicy: "Never" }),
    until: phaseIs("Succeeded", "Failed"),
  },
  {
    id: "emptydir",
    title: "an emptyDir written by an init container, read by the app container into its termination message",
    spec: pod([container("main", sh("cat /data/x > /dev/termination-log"), { volumeMounts: [{ name: "data", mountPath: "/data" }] })], {
      restartPolicy: "Never",
      initContainers: [container("init", sh("echo from-init > /data/x"), { volumeMounts: [{ name: "data", mountPath: "/data" }] })],
      volumes: [{ name: "data", emptyDir: {} }],
    }),
    until: phaseIs("Succeeded", "Failed"),
  },
  {
    id: "downward-api",
    title: "a downwardAPI volume (name and labels) copied into the termination message",
    spec: pod([container("main", sh("cat /podinfo/name /podinfo/labels > /dev/termination-log"), { volumeMounts: [{ name: "podinfo", mountPath: "/podinfo" }] })], {
      restartPolicy: "Never",
      volumes: [
        {
          name: "podinfo",
          downwardAPI: {
            items: [
              { path: "name", fieldRef: { fieldPath: "metadata.name" } },
              { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
            ],
          },
        },
      ],
    }),
    until: phaseIs("Succeeded", "Failed"),
  },
];
