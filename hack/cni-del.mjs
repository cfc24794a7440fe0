// Run CNI DEL for attachments recorded in libcni's result cache, the way the runtime would
// have on StopPodSandbox. Used by hack/containerd.sh stop when containerd is already gone.
//
//   node hack/cni-del.mjs CNI_BIN_DIR CACHE_FILE...
//
// Each cache file (/var/lib/cni/results/<network>-<containerID>-<ifname>) holds the network
// configuration list that was used for ADD, the CNI_ARGS, the capability arguments and the
// result. DEL calls the list's plugins in reverse order with prevResult set, as libcni does.
// Errors are reported and the next attachment is tried; the exit code is 1 if any failed.
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const [binDir, ...files] = process.argv.slice(2);
if (!binDir || files.length === 0) {
  console.error("usage: node hack/cni-del.mjs CNI_BIN_DIR CACHE_FILE...");
  process.exit(2);
}

function versionAtLeast(version, major, minor) {
  const [a = 0, b = 0] = String(version).split(".").map((n) => Number.parseInt(n, 10) || 0);
  return a > major || (a === major && b >= minor);
}

function netnsOf(result) {
  for (const itf of result?.interfaces ?? []) {
    if (typeof itf?.sandbox === "string" && itf.sandbox !== "") return itf.sandbox;
  }
  return "";
}

let failed = 0;
for (const file of files) {
  let cached;
  try {
    cached = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    console.error(`cni-del: ${file}: unreadable (${err.message})`);
    failed++;
    continue;
  }
  let list;
  try {
    list = JSON.parse(Buffer.from(cached.config, "base64").toString("utf8"));
  } catch (err) {
    console.error(`cni-del: ${file}: no usable network configuration (${err.message})`);
    failed++;
    continue;
  }
  // A single-plugin .conf is cached as the plugin itself; a .conflist has "plugins".
  const plugins = Array.isArray(list.plugins) ? list.plugins : [list];
  const cniArgs = (cached.cniArgs ?? []).map(([k, v]) => `${k}=${v}`).join(";");
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: "DEL",
    CNI_CONTAINERID: cached.containerId ?? "",
    CNI_NETNS: netnsOf(cached.result),
    CNI_IFNAME: cached.ifName ?? "eth0",
    CNI_ARGS: cniArgs,
    CNI_PATH: binDir,
  };
  for (const plugin of [...plugins].reverse()) {
    const conf = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    const runtimeConfig = {};
    for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
      if (on && cached.capabilityArgs && cap in cached.capabilityArgs) {
        runtimeConfig[cap] = cached.capabilityArgs[cap];
      }
    }
    if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
    if (cached.result && versionAtLeast(list.cniVersion, 0, 4)) conf.prevResult = cached.result;
    const run = spawnSync(join(binDir, plugin.type), {
      input: JSON.stringify(conf),
      env,
      encoding: "utf8",
      timeout: 30_000,
    });
    if (run.error || run.status !== 0) {
      const why = run.error?.message ?? (run.stdout || run.stderr || `exit ${run.status}`).trim();
      console.error(`cni-del: ${plugin.type} DEL for ${env.CNI_CONTAINERID.slice(0, 12)}: ${why}`);
      failed++;
    }
  }
}
process.exit(failed > 0 ? 1 : 0);
