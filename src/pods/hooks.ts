/**
 * Lifecycle hooks: postStart right after a container starts, preStop before it is stopped. Both
 * run one V1LifecycleHandler (exec, httpGet or sleep) through the shared handler runner, never
 * longer than a deadline: a hook still running then is abandoned and reported as failed.
 */
import type { V1Container, V1LifecycleHandler, V1Pod } from "@kubernetes/client-node";
import type { Clock } from "../util/clock.js";
import type { HandlerOutcome, HandlerRunner, HandlerTarget } from "./handlers.js";

export interface HookResult {
  ok: boolean;
  /** For the FailedPostStartHook / FailedPreStopHook event, in upstream's words. */
  message: string;
  /** How long the hook ran, in milliseconds. */
  elapsedMs: number;
  /** True when the hook was cut at its deadline. */
  timedOut: boolean;
}

export interface HookRunner {
  /** Runs `handler` against the container; resolves by `timeoutMs` at the latest. */
  run(handler: V1LifecycleHandler, target: HandlerTarget, pod: V1Pod, timeoutMs: number): Promise<HookResult>;
}

/** Upstream's format.Pod: name_namespace(uid). */
function podRef(pod: V1Pod): string {
  return `${pod.metadata?.name ?? ""}_${pod.metadata?.namespace ?? ""}(${pod.metadata?.uid ?? ""})`;
}

/** Go's %v of a string slice. */
function goList(xs: string[]): string {
  return `[${xs.join(" ")}]`;
}

/** The failure message upstream's handler runner gives for each kind of action. */
export function hookFailureMessage(handler: V1LifecycleHandler, c: V1Container, pod: V1Pod, error: string): string {
  if (handler.exec) {
    return `Exec lifecycle hook (${goList(handler.exec.command ?? [])}) for Container ${JSON.stringify(c.name)} in Pod ${JSON.stringify(podRef(pod))} failed - error: ${error}`;
  }
  if (handler.httpGet) {
    return `HTTP lifecycle hook (${handler.httpGet.path ?? ""}) for Container ${JSON.stringify(c.name)} in Pod ${JSON.stringify(podRef(pod))} failed - error: ${error}`;
  }
  return `Lifecycle hook for Container ${JSON.stringify(c.name)} in Pod ${JSON.stringify(podRef(pod))} failed - error: ${error}`;
}

async function runAction(handlers: HandlerRunner, handler: V1LifecycleHandler, t: HandlerTarget, limit: { timeoutMs: number; signal: AbortSignal }): Promise<HandlerOutcome> {
  const { timeoutMs, signal } = limit;
  if (handler.exec) return handlers.exec(t, handler.exec.command ?? [], timeoutMs);
  if (handler.httpGet) return handlers.httpGet(t, handler.httpGet, timeoutMs);
  if (handler.sleep) return handlers.sleep(handler.sleep.seconds, signal);
  if (handler.tcpSocket) return { ok: false, message: "tcpSocket is not supported as a lifecycle handler" };
  return { ok: false, message: "invalid handler: none of exec, httpGet, sleep is set" };
}

export function createHookRunner(deps: { handlers: HandlerRunner; clock: Clock }): HookRunner {
  return {
    async run(handler, target, pod, timeoutMs) {
      const t0 = deps.clock.now();
      const ac = new AbortController();
      let cancel: (() => void) | undefined;
      const deadline = new Promise<"timeout">((resolve) => {
        cancel = deps.clock.setTimer(Math.max(0, timeoutMs), () => {
          ac.abort();
          resolve("timeout");
        });
      });
      const outcome = await Promise.race([runAction(deps.handlers, handler, target, { timeoutMs, signal: ac.signal }), deadline]).finally(() => cancel?.());
      const elapsedMs = deps.clock.now() - t0;
      if (outcome === "timeout" || (!outcome.ok && (outcome.timedOut === true || ac.signal.aborted))) {
        const error = `hook did not complete within ${Math.round(timeoutMs / 1000)}s`;
        return { ok: false, message: hookFailureMessage(handler, target.container, pod, error), elapsedMs, timedOut: true };
      }
      if (outcome.ok) return { ok: true, message: "", elapsedMs, timedOut: false };
      const error = handler.exec ? `command ${JSON.stringify((handler.exec.command ?? []).join(" "))} exited with a failure, message: ${JSON.stringify(outcome.message)}` : outcome.message;
      return { ok: false, message: hookFailureMessage(handler, target.container, pod, error), elapsedMs, timedOut: false };
    },
  };
}
