/** cgroup v1 (hybrid) and v2 readers against fixture trees, and the small parsers behind them. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { cgroupDir, detectCgroupLayout, parsePsi, type CgroupLayout } from "../../src/stats/cgroup.js";
import { readCgroup } from "../../src/stats/cgroup-read.js";
import { parseBlkio } from "../../src/stats/cgroup-v1.js";
import { parseIoStat, weightToShares } from "../../src/stats/cgroup-v2.js";
import { parseNetDev, parseProcCgroup } from "../../src/stats/procfs.js";
import { parseCpuList, parseMeminfo } from "../../src/stats/read.js";
import { NET_DEV, tempDir, v2Cgroup, writeTree } from "../support/stats-fixtures.js";

const POD = "/kubepods/burstable/pod1234";

/** A hybrid v1 hierarchy as Debian mounts it: cpu and cpuacct apart, cgroup2 at unified/. */
function v1Tree(path: string): Record<string, string> {
  return {
    [`cpu${path}/cgroup.procs`]: "",
    [`cpu${path}/cpu.stat`]: "nr_periods 40\nnr_throttled 4\nthrottled_time 5000000\n",
    [`cpu${path}/cpu.shares`]: "512\n",
    [`cpu${path}/cpu.cfs_quota_us`]: "50000\n",
    [`cpu${path}/cpu.cfs_period_us`]: "100000\n",
    [`cpuacct${path}/cgroup.procs`]: "",
    [`cpuacct${path}/cpuacct.usage`]: "2500000000\n",
    [`cpuacct${path}/cpuacct.stat`]: "user 150\nsystem 50\n",
    [`cpuset${path}/cpuset.cpus`]: "0-1\n",
    [`memory${path}/cgroup.procs`]: "42\n43\n",
    [`memory${path}/memory.usage_in_bytes`]: "104857600\n",
    [`memory${path}/memory.max_usage_in_bytes`]: "209715200\n",
    [`memory${path}/memory.limit_in_bytes`]: "268435456\n",
    [`memory${path}/memory.soft_limit_in_bytes`]: "9223372036854771712\n",
    [`memory${path}/memory.failcnt`]: "7\n",
    [`memory${path}/memory.kmem.usage_in_bytes`]: "1048576\n",
    [`memory${path}/memory.oom_control`]: "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    [`memory${path}/memory.stat`]: [
      "cache 1000",
      "rss 2000",
      "pgfault 10",
      "pgmajfault 1",
      "total_cache 20971520",
      "total_rss 52428800",
      "total_mapped_file 4096",
      "total_swap 0",
      "total_inactive_file 10485760",
      "total_active_file 5242880",
      "total_pgfault 500",
      "total_pgmajfault 5",
      "",
    ].join("\n"),
    [`blkio${path}/cgroup.procs`]: "",
    [`blkio${path}/blkio.throttle.io_service_bytes_recursive`]: "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
    [`blkio${path}/blkio.throttle.io_serviced_recursive`]: "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
    [`pids${path}/cgroup.procs`]: "",
    [`pids${path}/pids.current`]: "3\n",
    [`pids${path}/pids.max`]: "1024\n",
    "unified/cgroup.controllers": "",
    [`unified${path}/cpu.pressure`]: "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
  };
}

describe("cgroup v1 (hybrid) reader", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let layout: CgroupLayout;
  before(async () => {
    ({ dir, cleanup } = await tempDir("tsk-cg1-"));
    await writeTree(dir, v1Tree(POD));
    layout = await detectCgroupLayout(dir);
  });
  after(() => cleanup());

  it("finds each controller's hierarchy and the unified mount", () => {
    assert.equal(layout.version, 1);
    if (layout.version !== 1) return;
    assert.equal(layout.mounts.cpuacct, `${dir}/cpuacct`);
    assert.equal(layout.mounts.memory, `${dir}/memory`);
    assert.equal(layout.unified, `${dir}/unified`);
    assert.equal(cgroupDir(layout, "pids", POD), `${dir}/pids${POD}`);
  });

  it("reads cpu, memory, blkio, pids, PSI and the spec", async () => {
    const s = await readCgroup(layout, POD);
    assert.ok(s);
    assert.deepEqual(s.cpu, { usageNs: 2.5e9, userNs: 1.5e9, systemNs: 0.5e9, periods: 40, throttledPeriods: 4, throttledNs: 5e6 });
    assert.equal(s.memory?.usage, 104857600);
    assert.equal(s.memory?.workingSet, 104857600 - 10485760, "usage minus total_inactive_file");
    assert.equal(s.memory?.rss, 52428800, "hierarchical rss");
    assert.equal(s.memory?.cache, 20971520);
    assert.equal(s.memory?.maxUsage, 209715200);
    assert.equal(s.memory?.failcnt, 7);
    assert.equal(s.memory?.kernel, 1048576);
    assert.equal(s.memory?.oomEvents, 2);
    assert.equal(s.memory?.pgfault, 10);
    assert.equal(s.memory?.hierarchicalPgfault, 500);
    assert.deepEqual(s.io, [{ major: 8, minor: 0, readBytes: 4096, writeBytes: 8192, reads: 1, writes: 2 }]);
    assert.deepEqual(s.pids, { current: 3, max: 1024 });
    assert.deepEqual(s.procs, [42, 43]);
    assert.equal(s.psi?.cpu?.some.total, 10);
    assert.equal(s.psi?.cpu?.full?.total, 5);
    assert.deepEqual(s.spec, { cpuShares: 512, cpuQuota: 50000, cpuPeriod: 100000, cpus: "0-1", memoryLimit: 268435456, pidsMax: 1024 });
  });

  it("answers undefined for a cgroup that does not exist", async () => {
    assert.equal(await readCgroup(layout, "/kubepods/gone"), undefined);
  });

  it("reads per-controller paths (a process whose controllers disagree)", async () => {
    const path = { byController: { memory: POD, cpuacct: POD, cpu: POD }, unified: POD };
    const s = await readCgroup(layout, path);
    assert.equal(s?.cpu?.usageNs, 2.5e9);
    assert.equal(s?.memory?.usage, 104857600);
  });
});

describe("cgroup v2 reader", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let layout: CgroupLayout;
  before(async () => {
    ({ dir, cleanup } = await tempDir("tsk-cg2-"));
    await writeTree(dir, { "cgroup.controllers": "cpu memory io pids\n", ...v2Cgroup(POD, { cpuUsec: 1_500_000, memory: 8_388_608, inactiveFile: 1_048_576 }, { procs: [7, 8], max: "25000 100000\n" }) });
    layout = await detectCgroupLayout(dir);
  });
  after(() => cleanup());

  it("detects the unified hierarchy", () => {
    assert.deepEqual(layout, { version: 2, root: dir });
  });

  it("reads cpu.stat, memory, io.stat, pids, PSI and the spec", async () => {
    const s = await readCgroup(layout, POD);
    assert.ok(s);
    assert.deepEqual(s.cpu, { usageNs: 1.5e9, userNs: 1_125_000_000, systemNs: 375_000_000, periods: 10, throttledPeriods: 2, throttledNs: 3e6 });
    assert.equal(s.memory?.usage, 8_388_608);
    assert.equal(s.memory?.workingSet, 8_388_608 - 1_048_576);
    assert.equal(s.memory?.rss, 4_194_304, "anon");
    assert.equal(s.memory?.cache, 2_097_152, "file");
    assert.equal(s.memory?.maxUsage, 16_777_216, "memory.peak");
    assert.equal(s.memory?.failcnt, 5, "memory.events max");
    assert.equal(s.memory?.oomEvents, 1);
    assert.equal(s.memory?.kernel, 8192);
    assert.deepEqual(s.io, [{ major: 8, minor: 0, readBytes: 4096, writeBytes: 8192, reads: 1, writes: 2 }]);
    assert.deepEqual(s.pids, { current: 2 });
    assert.deepEqual(s.procs, [7, 8]);
    assert.equal(s.psi?.cpu?.some.avg10, 1.5);
    assert.deepEqual(s.spec, { cpuShares: weightToShares(100), cpuQuota: 25000, cpuPeriod: 100000 });
  });
});

describe("kernel file parsers", () => {
  it("maps cpu.weight back to shares the way runc maps shares to weight", () => {
    assert.equal(weightToShares(1), 2);
    assert.equal(weightToShares(10000), 262144);
    assert.equal(weightToShares(100), 2597);
  });

  it("parses blkio and io.stat, PSI, cpu lists and meminfo", () => {
    assert.deepEqual(parseBlkio("259:0 Read 10\n259:0 Write 20\n", undefined), [{ major: 259, minor: 0, readBytes: 10, writeBytes: 20, reads: 0, writes: 0 }]);
    assert.deepEqual(parseIoStat("254:0 rbytes=1 wbytes=2 rios=3 wios=4\n\n"), [{ major: 254, minor: 0, readBytes: 1, writeBytes: 2, reads: 3, writes: 4 }]);
    assert.deepEqual(parsePsi("some avg10=1.00 avg60=2.00 avg300=3.00 total=4\n"), { some: { avg10: 1, avg60: 2, avg300: 3, total: 4 } });
    assert.equal(parsePsi(""), undefined);
    assert.deepEqual(parseCpuList("0-2,5,7-8\n"), [0, 1, 2, 5, 7, 8]);
    assert.equal(parseMeminfo("MemTotal:  100 kB\nHugePages_Total: 4\n").get("MemTotal"), 102400);
    assert.equal(parseMeminfo("Node 0 MemTotal:  100 kB\n").get("MemTotal"), 102400);
  });

  it("parses /proc/<pid>/net/dev without loopback", () => {
    const ifs = parseNetDev(NET_DEV(1000, 2000));
    assert.deepEqual(ifs, [{ name: "eth0", rxBytes: 1000, rxPackets: 10, rxErrors: 1, rxDropped: 2, txBytes: 2000, txPackets: 20, txErrors: 3, txDropped: 4 }]);
  });

  it("parses /proc/self/cgroup for v1 controllers and the unified path", () => {
    const p = parseProcCgroup("12:cpu,cpuacct:/system.slice/kubelet\n4:memory:/kubelet\n1:name=systemd:/x\n0::/unified/path\n");
    assert.deepEqual(p, { byController: { cpu: "/system.slice/kubelet", cpuacct: "/system.slice/kubelet", memory: "/kubelet" }, unified: "/unified/path" });
  });
});
