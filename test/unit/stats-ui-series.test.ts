/** The web UI's series maths (plain browser JS under src/ui/static), run in Node. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { repoRoot } from "../support/containerd.js";

interface Sample {
  timestamp: string;
  cpu?: { usage: { total: number } };
  cpu_inst?: { usage: { total: number } };
  network?: { interfaces: { rx_bytes: number; tx_bytes: number }[] };
  memory?: { working_set: number; usage: number };
}
type Fn = (c: Sample, p: Sample | undefined) => number | undefined;
interface Series {
  merge: (store: Map<string, Sample[]>, name: string, list: Sample[], max: number) => void;
  derive: (samples: Sample[], fn: Fn) => [number, number][];
  cpuCores: Fn;
  memWs: Fn;
  netRate: (key: string) => Fn;
}

const load = async (): Promise<Series> => (await import(pathToFileURL(join(repoRoot(), "src/ui/static/series.js")).href)) as Series;
const at = (s: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

describe("UI series", () => {
  it("merges samples by timestamp, in order, keeping the newest", async () => {
    const { merge } = await load();
    const store = new Map<string, Sample[]>();
    merge(store, "/a", [{ timestamp: at(2) }, { timestamp: at(1) }], 3);
    merge(store, "/a", [{ timestamp: at(2) }, { timestamp: at(3) }, { timestamp: at(4) }], 3);
    assert.deepEqual(store.get("/a")?.map((s) => s.timestamp), [at(2), at(3), at(4)]);
  });

  it("derives cores, memory and network rates", async () => {
    const { derive, cpuCores, memWs, netRate } = await load();
    const samples: Sample[] = [
      { timestamp: at(0), cpu: { usage: { total: 0 } }, network: { interfaces: [{ rx_bytes: 0, tx_bytes: 0 }] }, memory: { working_set: 10, usage: 20 } },
      { timestamp: at(2), cpu: { usage: { total: 1e9 } }, network: { interfaces: [{ rx_bytes: 4000, tx_bytes: 100 }] }, memory: { working_set: 11, usage: 21 } },
      { timestamp: at(3), cpu: { usage: { total: 2e9 } }, cpu_inst: { usage: { total: 250_000_000 } }, network: { interfaces: [{ rx_bytes: 5000, tx_bytes: 100 }] } },
    ];
    const t = (s: number): number => Date.parse(at(s));
    assert.deepEqual(derive(samples, cpuCores), [[t(2), 0.5], [t(3), 0.25]], "from counters, then from cpu_inst");
    assert.deepEqual(derive(samples, memWs), [[t(0), 10], [t(2), 11]]);
    assert.deepEqual(derive(samples, netRate("rx_bytes")), [[t(2), 2000], [t(3), 1000]]);
  });
});
