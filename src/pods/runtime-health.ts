/**
 * Watches the runtime's health: Version once it answers (API must be v1), then Status every
 * interval for RuntimeReady and NetworkReady. Failures are logged with the endpoint and retried
 * with backoff; nothing here throws.
 */
import type { RuntimeService } from "../cri/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/log.js";
import { errorMessage } from "../util/errors.js";

export interface RuntimeHealthState {
  runtimeName: string;
  runtimeVersion: string;
  runtimeReady: boolean;
  networkReady: boolean;
  /** Upstream-style message when not ready, e.g. "container runtime is down". */
  problem: string | undefined;
  networkProblem: string | undefined;
  lastCheckMs: number;
}

export interface RuntimeHealth {
  run(signal: AbortSignal): Promise<void>;
  state(): RuntimeHealthState;
  /** Resolves once the runtime answered Version and Status once. */
  readonly ready: Promise<void>;
  /** Forces a check now. */
  check(): Promise<void>;
}

export function createRuntimeHealth(opts: { rs: RuntimeService; endpoint: string; clock: Clock; logger: Logger; intervalMs: number; onChange?: () => void }): RuntimeHealth {
  const st: RuntimeHealthState = {
    runtimeName: "",
    runtimeVersion: "",
    runtimeReady: false,
    networkReady: false,
    problem: "container runtime status check may not have completed yet",
    networkProblem: undefined,
    lastCheckMs: 0,
  };
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  let failures = 0;

  const check = async (): Promise<void> => {
    const was = `${st.runtimeReady}/${st.networkReady}`;
    try {
      if (!st.runtimeName) {
        const v = await opts.rs.version();
        if (v.runtimeApiVersion !== "v1") {
          throw new Error(`runtime at ${opts.endpoint} speaks CRI ${v.runtimeApiVersion}; tskubelet needs runtime.v1`);
        }
        st.runtimeName = v.runtimeName;
        st.runtimeVersion = v.runtimeVersion;
        opts.logger.info("container runtime connected", { endpoint: opts.endpoint, runtime: v.runtimeName, version: v.runtimeVersion, apiVersion: v.runtimeApiVersion });
      }
      const s = await opts.rs.status();
      const rr = s.status.conditions.find((c) => c.type === "RuntimeReady");
      const nr = s.status.conditions.find((c) => c.type === "NetworkReady");
      st.runtimeReady = rr?.status === true;
      st.networkReady = nr?.status === true;
      st.problem = st.runtimeReady ? undefined : `container runtime not ready: RuntimeReady=false reason:${rr?.reason ?? ""} message:${rr?.message ?? ""}`;
      st.networkProblem = st.networkReady ? undefined : `container runtime network not ready: NetworkReady=false reason:${nr?.reason ?? ""} message:${nr?.message ?? ""}`;
      if (failures > 0) opts.logger.info("container runtime is back", { endpoint: opts.endpoint });
      failures = 0;
      resolveReady();
    } catch (err) {
      st.runtimeReady = false;
      st.problem = "container runtime is down";
      if (failures === 0 || failures % 20 === 0) {
        opts.logger.error("container runtime is not answering; will retry", { endpoint: opts.endpoint, err: errorMessage(err), failures });
      }
      failures++;
    }
    st.lastCheckMs = opts.clock.now();
    if (`${st.runtimeReady}/${st.networkReady}` !== was) opts.onChange?.();
  };

  return {
    ready,
    check,
    state: () => st,
    async run(signal) {
      while (!signal.aborted) {
        await check();
        const delay = failures === 0 ? opts.intervalMs : Math.min(1000 * 2 ** Math.min(failures - 1, 4), opts.intervalMs * 3);
        await opts.clock.sleep(delay, signal).catch(() => undefined);
      }
    },
  };
}
