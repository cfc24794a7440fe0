/** The stats routes and the 4194 listener over a fake provider: status codes, forms, the UI's files. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { StatsProvider } from "../../src/stats/provider.js";
import type { StatsSnapshot } from "../../src/stats/types.js";
import type { MachineInfo } from "../../src/stats/machine.js";
import { startCadvisorServer, type CadvisorServer } from "../../src/server/cadvisor.js";
import { statsRoutes } from "../../src/stats/handlers.js";
import { closeServer, createHttpServer, createRouter, listen } from "../../src/server/http.js";
import { memoryLogger } from "../../src/util/log.js";
import type { Server } from "node:http";

const T = Date.UTC(2026, 0, 1);

function snapshot(podsUnavailable: boolean): StatsSnapshot {
  const root = { name: "/", kind: "root" as const, time: T, createdAt: T - 1000, stats: { procs: [], spec: {}, cpu: { usageNs: 5e9, userNs: 4e9, systemNs: 1e9, periods: 0, throttledPeriods: 0, throttledNs: 0 } } };
  return { time: T, nodeName: "n1", bootTime: T - 1000, memoryCapacity: 1 << 30, swapCapacity: 0, root, cgroups: [root], pods: [], systemContainers: [], rlimit: {}, blockDevices: {}, errors: podsUnavailable ? ["runtime down"] : [], podsUnavailable };
}

function fakeProvider(state: { down: boolean }): StatsProvider {
  const machine: MachineInfo = {
    timestamp: "",
    vendor_id: "",
    num_cores: 3,
    num_physical_cores: 3,
    num_sockets: 1,
    cpu_frequency_khz: 0,
    memory_capacity: 42,
    swap_capacity: 0,
    memory_by_type: {},
    nvm: { memory_mode_capacity: 0, app_direct_mode_capacity: 0, avg_power_budget: 0 },
    hugepages: [],
    machine_id: "m",
    system_uuid: "u",
    boot_id: "b",
    filesystems: [],
    disk_map: {},
    network_devices: [],
    topology: [],
    cloud_provider: "Unknown",
    instance_type: "Unknown",
    instance_id: "None",
  };
  return {
    nodeName: "n1",
    run: () => Promise.resolve(),
    snapshot: () => Promise.resolve(snapshot(state.down)),
    nodeSnapshot: () => Promise.resolve(snapshot(state.down)),
    history: () => [{ time: T, cpu: { total: 5e9, user: 4e9, system: 1e9 } }],
    machineInfo: () => Promise.resolve(machine),
  };
}

describe("stats routes (10250/10255)", () => {
  const state = { down: false };
  let server: Server;
  let base: string;
  before(async () => {
    server = createHttpServer(createRouter(statsRoutes(fakeProvider(state)), { serverType: "readonly", logger: memoryLogger().logger }));
    await listen(server, 0, "127.0.0.1");
    const a = server.address();
    base = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  });
  after(() => closeServer(server));

  it("serves the summary for GET and POST, and 500 when the runtime cannot list pods", async () => {
    const get = await fetch(`${base}/stats/summary?only_cpu_and_memory=true`);
    assert.equal(get.status, 200);
    const body = (await get.json()) as { node: Record<string, unknown>; pods: unknown[] };
    assert.deepEqual(Object.keys(body.node).sort(), ["cpu", "nodeName", "startTime"]);
    const post = await fetch(`${base}/stats/summary`, { method: "POST", body: "only_cpu_and_memory=false", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(post.status, 200);
    assert.ok("rlimit" in ((await post.json()) as { node: object }).node);
    state.down = true;
    const down = await fetch(`${base}/stats/summary`);
    assert.equal(down.status, 500);
    assert.match(await down.text(), /failed to list pod stats: runtime down/);
    const resource = await (await fetch(`${base}/metrics/resource`)).text();
    assert.match(resource, /^resource_scrape_error 1$/m);
    state.down = false;
  });

  it("serves /spec and /spec/ as MachineInfo, and the metrics' content type", async () => {
    for (const p of ["/spec", "/spec/"]) assert.equal(((await (await fetch(`${base}${p}`)).json()) as MachineInfo).num_cores, 3);
    const res = await fetch(`${base}/metrics/cadvisor`);
    assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.match(await res.text(), /^container_cpu_usage_seconds_total\{container="",cpu="total",id="\/",image="",name="",namespace="",pod=""\} 5 1767225600000$/m);
    assert.equal((await fetch(`${base}/stats/summary`, { method: "PUT" })).status, 405);
  });
});

describe("the cadvisor listener", () => {
  let srv: CadvisorServer;
  let base: string;
  before(async () => {
    srv = await startCadvisorServer({ stats: fakeProvider({ down: false }), logger: memoryLogger().logger }, { address: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${srv.address.port}`;
  });
  after(() => srv.close());

  it("serves the page at /, /containers/ and any container path, and only its own files", async () => {
    for (const p of ["/", "/containers/", "/containers/kubepods/besteffort/pod1/abc"]) {
      const res = await fetch(`${base}${p}`);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'self'/);
      assert.match(await res.text(), /<main id="app">/);
    }
    assert.equal((await fetch(`${base}/static/chart.js`)).status, 200);
    for (const p of ["/static/..%2F..%2Fpackage.json", "/static/../index.ts", "/static/nope.js", "/static/"]) assert.equal((await fetch(`${base}${p}`)).status, 404, p);
  });

  it("serves the cAdvisor API", async () => {
    assert.equal(((await (await fetch(`${base}/api/v1.3/machine`)).json()) as MachineInfo).memory_capacity, 42);
    const stats = (await (await fetch(`${base}/api/v2.0/stats`)).json()) as Record<string, { cpu?: { usage: { total: number } } }[]>;
    assert.equal(stats["/"]?.[0]?.cpu?.usage.total, 5e9);
    const spec = (await (await fetch(`${base}/api/v2.0/spec`)).json()) as Record<string, { kind: string; has_cpu: boolean }>;
    assert.equal(spec["/"]?.kind, "root");
    assert.equal((await fetch(`${base}/api/v2.0/stats/kubepods/none`)).status, 404);
    assert.equal(await (await fetch(`${base}/healthz`)).text(), "ok");
    assert.match(await (await fetch(`${base}/metrics`)).text(), /^machine_cpu_cores\{boot_id="b",machine_id="m",system_uuid="u"\} 3$/m);
  });
});
