/** Facts about the machine, read from /proc and /sys: cores, memory, ids, kernel, OS, addresses. */
import { readFile } from "node:fs/promises";
import { cpus, networkInterfaces, release, totalmem } from "node:os";
import { isIP } from "node:net";

export interface MachineFacts {
  numCores: number;
  memoryCapacity: number;
  machineID: string;
  systemUUID: string;
  bootID: string;
  kernelVersion: string;
  osImage: string;
}

async function readTrim(path: string): Promise<string> {
  return (await readFile(path, "utf8").catch(() => "")).trim();
}

export async function readMachineFacts(): Promise<MachineFacts> {
  const osRelease = await readTrim("/etc/os-release");
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? "Linux";
  return {
    numCores: cpus().length,
    memoryCapacity: totalmem(),
    machineID: (await readTrim("/etc/machine-id")) || (await readTrim("/var/lib/dbus/machine-id")),
    systemUUID: (await readTrim("/sys/class/dmi/id/product_uuid")).toLowerCase(),
    bootID: await readTrim("/proc/sys/kernel/random/boot_id"),
    kernelVersion: release(),
    osImage: pretty,
  };
}

/** The node's IP: --node-ip, else the IPv4 of the default route's interface, else any non-loopback IPv4. */
export async function detectNodeIPs(nodeIPFlag: string): Promise<string[]> {
  if (nodeIPFlag) return nodeIPFlag.split(",").filter((ip) => isIP(ip) !== 0);
  const routes = await readFile("/proc/net/route", "utf8").catch(() => "");
  const defaultIface = routes
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1] === "00000000")?.[0];
  const ifaces = networkInterfaces();
  const v4 = (name: string): string | undefined => ifaces[name]?.find((a) => a.family === "IPv4" && !a.internal)?.address;
  if (defaultIface) {
    const ip = v4(defaultIface);
    if (ip) return [ip];
  }
  for (const name of Object.keys(ifaces)) {
    const ip = v4(name);
    if (ip) return [ip];
  }
  return ["127.0.0.1"];
}
