/** MachineInfo from fixture /sys and /proc trees, and the Prometheus text writer. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, symlink } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseSize, readMachineInfo, type MachineInfo } from "../../src/stats/machine.js";
import { mountOf, parseMountinfo } from "../../src/stats/fs.js";
import { escapeLabelValue, Exposition, formatValue } from "../../src/stats/prom.js";
import { tempDir, writeTree } from "../support/stats-fixtures.js";

/** Two sockets, one core each with two threads; per-core L1/L2, an L3 per socket; one NUMA node. */
function sysTree(): Record<string, string> {
  const t: Record<string, string> = {};
  for (let cpu = 0; cpu < 4; cpu++) {
    const socket = cpu < 2 ? 0 : 1;
    const siblings = socket === 0 ? "0-1" : "2-3";
    const b = `devices/system/cpu/cpu${cpu}`;
    t[`${b}/topology/core_id`] = "0\n";
    t[`${b}/topology/physical_package_id`] = `${socket}\n`;
    // L1 and L2 are shared by a core's two threads; L3 by the socket (here also those two).
    const caches: [number, string, string][] = [
      [1, "Data", "32K"],
      [1, "Instruction", "32K"],
      [2, "Unified", "1024K"],
      [3, "Unified", "32M"],
    ];
    caches.forEach(([level, type, size], i) => {
      t[`${b}/cache/index${i}/level`] = `${level}\n`;
      t[`${b}/cache/index${i}/type`] = `${type}\n`;
      t[`${b}/cache/index${i}/size`] = `${size}\n`;
      t[`${b}/cache/index${i}/shared_cpu_list`] = `${siblings}\n`;
      t[`${b}/cache/index${i}/id`] = `${socket}\n`;
    });
  }
  t["devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"] = "3500000\n";
  t["devices/system/node/node0/cpulist"] = "0-3\n";
  t["devices/system/node/node0/meminfo"] = "Node 0 MemTotal:       8000000 kB\n";
  t["devices/system/node/node0/distance"] = "10\n";
  t["devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"] = "16\n";
  t["kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] = "16\n";
  t["kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"] = "0\n";
  t["block/sda/dev"] = "8:0\n";
  t["block/sda/size"] = "2097152\n";
  t["block/sda/queue/scheduler"] = "none [mq-deadline] kyber\n";
  t["block/loop0/dev"] = "7:0\n";
  t["devices/pci0000:00/net/eth0/address"] = "02:00:00:00:00:01\n";
  t["devices/pci0000:00/net/eth0/mtu"] = "1500\n";
  t["devices/pci0000:00/net/eth0/speed"] = "10000\n";
  t["devices/virtual/net/veth1/address"] = "02:00:00:00:00:02\n";
  t["class/dmi/id/sys_vendor"] = "Google\n";
  t["class/dmi/id/product_name"] = "Google Compute Engine\n";
  t["class/dmi/id/product_uuid"] = "ABCDEF00-0000-0000-0000-000000000001\n";
  return t;
}

describe("machine info", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let m: MachineInfo;
  before(async () => {
    ({ dir, cleanup } = await tempDir("tsk-machine-"));
    const sys = join(dir, "sys");
    await writeTree(sys, sysTree());
    await mkdir(join(sys, "class/net"), { recursive: true });
    await symlink("../../devices/pci0000:00/net/eth0", join(sys, "class/net/eth0"));
    await symlink("../../devices/virtual/net/veth1", join(sys, "class/net/veth1"));
    await writeTree(join(dir, "proc"), {
      "meminfo": "MemTotal: 8000000 kB\nSwapTotal: 1024 kB\n",
      "cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu MHz\t\t: 2000.000\n",
      "sys/kernel/random/boot_id": "boot-1234\n",
      "self/mountinfo": `27 1 8:1 / ${dir} rw,relatime - ext4 /dev/sda1 rw\n30 27 0:27 / /dev/shm rw - tmpfs tmpfs rw\n31 27 0:40 / /run/netns/x rw - nsfs nsfs rw\n`,
    });
    await writeTree(join(dir, "etc"), { "machine-id": "0123456789abcdef\n" });
    m = await readMachineInfo({ proc: join(dir, "proc"), sys, etc: join(dir, "etc") }, new Date(Date.UTC(2026, 0, 1)));
  });
  after(() => cleanup());

  it("reports cores and memory as the OS counts them", () => {
    assert.equal(m.num_cores, cpus().length);
    assert.equal(m.memory_capacity, totalmem());
    assert.equal(m.swap_capacity, 1024 * 1024);
    assert.equal(m.vendor_id, "GenuineIntel");
    assert.equal(m.timestamp, "2026-01-01T00:00:00.000Z");
  });

  it("reads the topology: sockets, physical cores, threads and caches", () => {
    assert.equal(m.num_sockets, 2);
    assert.equal(m.num_physical_cores, 2);
    assert.equal(m.cpu_frequency_khz, 3_500_000);
    assert.equal(m.topology.length, 1);
    const node = m.topology[0];
    assert.ok(node);
    assert.equal(node.memory, 8_000_000 * 1024);
    assert.deepEqual(node.hugepages, [{ page_size: 2048, num_pages: 16 }]);
    assert.deepEqual(node.cores.map((c) => [c.socket_id, c.core_id, c.thread_ids]), [[0, 0, [0, 1]], [1, 0, [2, 3]]]);
    assert.deepEqual(node.cores[0]?.caches?.map((c) => `${c.level}${c.type[0] ?? ""}:${c.size}`), ["1D:32768", "1I:32768", "2U:1048576", "3U:33554432"]);
    assert.deepEqual(node.distances, [10]);
  });

  it("reads ids, hugepages, disks, NICs, filesystems and the cloud", () => {
    assert.equal(m.machine_id, "0123456789abcdef");
    assert.equal(m.system_uuid, "abcdef00-0000-0000-0000-000000000001");
    assert.equal(m.boot_id, "boot-1234");
    assert.deepEqual(m.hugepages, [{ page_size: 2048, num_pages: 16 }, { page_size: 1048576, num_pages: 0 }]);
    assert.deepEqual(m.disk_map, { "8:0": { name: "sda", major: 8, minor: 0, size: 2097152 * 512, scheduler: "mq-deadline" } });
    assert.deepEqual(m.network_devices, [{ name: "eth0", mac_address: "02:00:00:00:00:01", speed: 10000, mtu: 1500 }]);
    assert.deepEqual(m.filesystems.map((f) => f.device).sort(), ["/dev/sda1", "shm"]);
    assert.ok(m.filesystems.every((f) => f.capacity > 0 && f.type === "vfs"));
    assert.equal(m.cloud_provider, "GCE");
    assert.equal(m.instance_id, "None");
  });

  it("parses sysfs sizes and finds the mount of a path", () => {
    assert.equal(parseSize("32K"), 32768);
    assert.equal(parseSize("16M"), 16 * 1024 * 1024);
    assert.equal(parseSize("512"), 512);
    const mounts = parseMountinfo("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 8:2 / /var/lib rw - xfs /dev/sda2 rw\n3 1 0:5 / /var/lib\\040x rw - tmpfs tmpfs rw\n");
    assert.equal(mountOf(mounts, "/var/lib/containerd")?.source, "/dev/sda2");
    assert.equal(mountOf(mounts, "/var/library")?.source, "/dev/sda1");
    assert.equal(mountOf(mounts, "/var/lib x/y")?.fsType, "tmpfs");
  });
});

describe("Prometheus text", () => {
  it("escapes, sorts families and labels, and stamps samples", () => {
    const x = new Exposition();
    x.family("b_total", "counter", "B with a \\ and\nnewline")({ z: "1", a: 'q"uote\\n\n' }, 1.5, 1700000000000);
    x.family("a_bytes", "gauge", "A")({}, Infinity);
    x.family("c_empty", "gauge", "never set");
    assert.equal(
      x.render({ omitEmpty: true }),
      ['# HELP a_bytes A', "# TYPE a_bytes gauge", "a_bytes +Inf", "# HELP b_total B with a \\\\ and\\nnewline", "# TYPE b_total counter", 'b_total{a="q\\"uote\\\\n\\n",z="1"} 1.5 1700000000000', ""].join("\n"),
    );
    assert.match(x.render(), /# TYPE c_empty gauge/);
    assert.equal(escapeLabelValue('a"b'), 'a\\"b');
    assert.equal(formatValue(NaN), "NaN");
  });
});
