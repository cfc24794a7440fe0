#!/usr/bin/env node
/**
 * The `tskubelet` command. With no subcommand it runs the kubelet, taking the upstream kubelet's
 * flags; `tskubelet version` prints the version.
 */
import { Command, Option } from "commander";
import { CONFIG_FLAGS, FLAG_ONLY, loadConfiguration } from "../config/index.js";
import { ConfigError, errorMessage } from "../util/errors.js";
import { KUBERNETES_VERSION, TSKUBELET_VERSION } from "./version.js";
import { runKubelet } from "./run.js";
import { certsCommand } from "./certs.js";

process.title = "tskubelet";

function versionText(): string {
  return `tskubelet v${TSKUBELET_VERSION} (Kubernetes ${KUBERNETES_VERSION} kubelet API, Node ${process.version})`;
}

export function buildProgram(run: (flags: Record<string, string>) => Promise<number>): Command {
  const program = new Command("tskubelet")
    .description("A Kubernetes node agent (kubelet) written in TypeScript.\nFlags mirror the upstream kubelet's; --config takes a kubelet.config.k8s.io/v1beta1 KubeletConfiguration.")
    .allowExcessArguments(false)
    .showHelpAfterError("(run tskubelet --help for the flags)")
    .option("--version", "print the version and exit");
  for (const f of FLAG_ONLY) program.addOption(new Option(`--${f.flag} <value>`, f.help));
  for (const f of CONFIG_FLAGS) {
    if (f.flag === "v") program.addOption(new Option("-v, --v <level>", "log verbosity"));
    else program.addOption(new Option(f.bool ? `--${f.flag} [bool]` : `--${f.flag} <value>`, f.help));
  }
  program.action(async (_opts: Record<string, unknown>, cmd: Command) => {
    if (cmd.getOptionValue("version") === true) {
      console.log(versionText());
      return;
    }
    const given: Record<string, string> = {};
    for (const opt of cmd.options) {
      const name = opt.long?.replace(/^--/, "") ?? "";
      if (name === "version" || cmd.getOptionValueSource(opt.attributeName()) !== "cli") continue;
      const v: unknown = cmd.getOptionValue(opt.attributeName());
      given[name] = v === true ? "" : String(v);
    }
    process.exitCode = await run(given);
  });
  program
    .command("version")
    .description("print the version")
    .action(() => {
      console.log(versionText());
    });
  // Subcommands take their own --kubeconfig/--cert-dir/--config: kubelet flags must come before them.
  program.enablePositionalOptions();
  program.addCommand(certsCommand());
  return program;
}

/** pflag accepts `-v=2`; commander wants `-v 2` or `--v=2`. */
export function normalizeArgs(argv: string[]): string[] {
  return argv.map((a) => (a.startsWith("-v=") ? `--v=${a.slice(3)}` : a));
}

async function main(): Promise<void> {
  const program = buildProgram(async (flags) => {
    let loaded;
    try {
      loaded = loadConfiguration({ flags });
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(`tskubelet: ${err.message}`);
        return 2;
      }
      throw err;
    }
    return runKubelet(loaded);
  });
  await program.parseAsync(normalizeArgs(process.argv));
  // Open handles (gRPC channels, file watchers) must not keep a stopped kubelet alive.
  process.exit(process.exitCode ?? 0);
}

main().catch((err: unknown) => {
  console.error(`tskubelet: ${errorMessage(err)}`);
  process.exit(1);
});
