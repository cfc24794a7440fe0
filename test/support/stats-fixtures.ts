/**
 * Fixture trees for the stats unit tests: cgroup v1 (hybrid) and v2 hierarchies, /proc and /sys,
 * written into a temporary directory with the kernel's file formats.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export type Tree = Record<string, string>;

export async function writeTree(base: string, tree: Tree): Promise<void> {
  for (const [path, content] of Object.entries(tree)) {
    const p = join(base, path);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, content);
  }
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export const POD_UID = "0b9e5f3c-1111-4222-8333-944455556666";
export const SANDBOX_ID = "a".repeat(64);
export const CONTAINER_ID = "c".repeat(64);

export interface V2Usage {
  cpuUsec: number;
  memory: number;
  inactiveFile: number;
}

/** One cgroup v2 directory's files. */
export function v2Cgroup(path: string, u: V2Usage, extra: { procs?: number[]; max?: string } = {}): Tree {
  const p = path === "/" ? "" : path;
  return {
    [`${p}/cgroup.procs`]: (extra.procs ?? []).map((n) => `${n}\n`).join(""),
    [`${p}/cpu.stat`]: `usage_usec ${u.cpuUsec}\nuser_usec ${Math.floor(u.cpuUsec * 0.75)}\nsystem_usec ${Math.floor(u.cpuUsec * 0.25)}\nnr_periods 10\nnr_throttled 2\nthrottled_usec 3000\n`,
    [`${p}/cpu.weight`]: "100\n",
    [`${p}/cpu.max`]: extra.max ?? "max 100000\n",
    [`${p}/memory.current`]: `${u.memory}\n`,
    [`${p}/memory.peak`]: `${u.memory * 2}\n`,
    [`${p}/memory.max`]: "max\n",
    [`${p}/memory.stat`]: `anon ${u.memory / 2}\nfile ${u.memory / 4}\nfile_mapped 4096\nkernel 8192\nactive_file 1024\ninactive_file ${u.inactiveFile}\npgfault 77\npgmajfault 3\n`,
    [`${p}/memory.events`]: "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
    [`${p}/memory.swap.current`]: "0\n",
    [`${p}/io.stat`]: "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    [`${p}/pids.current`]: `${(extra.procs ?? []).length}\n`,
    [`${p}/pids.max`]: "max\n",
    [`${p}/cpu.pressure`]: "some avg10=1.50 avg60=0.50 avg300=0.10 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=789\n",
  };
}

export const NET_DEV = (rx: number, tx: number): string =>
  [
    "Inter-|   Receive                                                |  Transmit",
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
    "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0",
    `  eth0: ${rx}      10    1    2    0     0          0         0  ${tx}       20    3    4    0     0       0          0`,
    "",
  ].join("\n");

/** /proc for the provider: boot time, memory, load, pid_max, the kubelet's cgroup, mounts, and one pod process. */
export function procTree(): Tree {
  return {
    "stat": "cpu  100 0 50 1000 0 0 0 0 0 0\nbtime 1767225600\n",
    "meminfo": "MemTotal:       16384000 kB\nMemFree:         8192000 kB\nCached:          1024000 kB\nInactive(file):   512000 kB\nActive(file):     256000 kB\nAnonPages:       2048000 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n",
    "loadavg": "0.10 0.20 0.30 2/345 6789\n",
    "sys/kernel/pid_max": "4194304\n",
    "self/cgroup": "0::/kubelet.slice\n",
    "self/mountinfo": "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n",
    "self/net/dev": NET_DEV(5000, 6000),
    "100/net/dev": NET_DEV(1000, 2000),
  };
}
