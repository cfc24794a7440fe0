/**
 * Runs short system commands (mount, umount) through one long-lived `/bin/sh` instead of a fork of
 * the kubelet for each. Forking a large Node process costs milliseconds of its main thread per
 * command; writing a line to a small shell that forks does not. Commands run one at a time, in
 * order. A command that outlives its timeout takes the shell down with it; the next command starts
 * a new shell.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { Socket } from "node:net";
import { systemClock, type Clock } from "./clock.js";

export interface CommandResult {
  /** Exit status (128 + n when the command was killed by signal n). */
  code: number;
  /** Standard output and error, together. */
  output: string;
}

export interface CommandRunner {
  /** Runs argv[0] with the other arguments; resolves with its status and output, rejects when it could not be run. */
  run(argv: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** Ends the shell (pending commands fail). */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 60_000;
/** Marks the end of a command's output: RS, sequence number, status. */
const END = "\x1e";

/** Single-quotes one word for sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

interface Pending {
  seq: number;
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
  cancelTimer: (() => void) | undefined;
}

/** An idle shell never keeps the process alive; one running a command does. */
function hold(c: ChildProcessWithoutNullStreams, on: boolean): void {
  if (on) c.ref();
  else c.unref();
  for (const s of [c.stdin, c.stdout, c.stderr]) {
    if (s instanceof Socket) {
      if (on) s.ref();
      else s.unref();
    }
  }
}

function killGroup(c: ChildProcessWithoutNullStreams): void {
  try {
    if (c.pid !== undefined) process.kill(-c.pid, "SIGKILL");
  } catch {
    c.kill("SIGKILL");
  }
}

export function createCommandRunner(opts: { shell?: string; clock?: Clock } = {}): CommandRunner {
  const shell = opts.shell ?? "/bin/sh";
  const clock = opts.clock ?? systemClock;
  let child: ChildProcessWithoutNullStreams | undefined;
  let buffer = "";
  let seq = 0;
  let closed = false;
  const pending: Pending[] = [];
  /** Commands wait here so that only one runs at a time (and so one timeout concerns one command). */
  let chain: Promise<unknown> = Promise.resolve();

  const failAll = (err: Error): void => {
    for (const p of pending.splice(0)) {
      p.cancelTimer?.();
      p.reject(err);
    }
  };

  const onData = (chunk: string): void => {
    buffer += chunk;
    for (;;) {
      const at = buffer.indexOf(END);
      if (at < 0) return;
      const eol = buffer.indexOf("\n", at);
      if (eol < 0) return;
      const [seqText, codeText] = buffer.slice(at + 1, eol).split(" ");
      const output = buffer.slice(0, at);
      buffer = buffer.slice(eol + 1);
      const p = pending[0];
      if (p && p.seq === Number(seqText)) {
        pending.shift();
        p.cancelTimer?.();
        if (pending.length === 0 && child) hold(child, false);
        p.resolve({ code: Number(codeText), output });
      }
    }
  };

  const ensureShell = (): ChildProcessWithoutNullStreams => {
    if (child && child.exitCode === null && child.signalCode === null) return child;
    buffer = "";
    // Each request line is a complete command followed by its end marker.
    const c = spawn(shell, ["-c", 'while IFS= read -r line; do eval "$line"; done'], { stdio: ["pipe", "pipe", "pipe"], detached: true });
    c.stdout.setEncoding("utf8");
    c.stdout.on("data", onData);
    c.stderr.resume();
    c.stdin.on("error", () => undefined);
    hold(c, false);
    c.on("error", (err) => failAll(new Error(`command shell ${shell}: ${err.message}`)));
    c.on("exit", (code, signal) => {
      // A shell abandoned after a timeout has nothing pending any more.
      if (child !== c) return;
      child = undefined;
      failAll(new Error(`command shell ${shell} ended (${signal ?? code ?? "?"})`));
    });
    child = c;
    return c;
  };

  const runOne = (argv: readonly string[], timeoutMs: number): Promise<CommandResult> =>
    new Promise<CommandResult>((resolve, reject) => {
      if (closed) return reject(new Error("command runner closed"));
      if (argv.length === 0) return reject(new Error("empty command"));
      const bad = argv.find((a) => a.includes("\n") || a.includes("\0"));
      if (bad !== undefined) return reject(new Error(`argument ${JSON.stringify(bad)} holds a newline or NUL`));
      const sh = ensureShell();
      const n = ++seq;
      const p: Pending = { seq: n, resolve, reject, cancelTimer: undefined };
      p.cancelTimer = clock.setTimer(timeoutMs, () => {
        const i = pending.indexOf(p);
        if (i >= 0) pending.splice(i, 1);
        reject(new Error(`${argv.join(" ")} did not finish in ${timeoutMs} ms`));
        // Abandon this shell (its late output is ignored); the next command starts another.
        if (child === sh) child = undefined;
        sh.stdout.removeAllListeners("data");
        // Its own process group (detached): the hanging command goes too.
        killGroup(sh);
      });
      pending.push(p);
      hold(sh, true);
      sh.stdin.write(`${argv.map(shellQuote).join(" ")} </dev/null 2>&1; printf '${END}%s %s\\n' ${n} "$?"\n`);
    });

  return {
    run(argv, timeoutMs = DEFAULT_TIMEOUT_MS) {
      const r = chain.then(() => runOne(argv, timeoutMs));
      chain = r.catch(() => undefined);
      return r;
    },
    close() {
      closed = true;
      child?.stdin.end();
      child = undefined;
      failAll(new Error("command runner closed"));
    },
  };
}
