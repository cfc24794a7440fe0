import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfiguration, type LoadedConfiguration } from "../../src/config/index.js";

const PATH = "/etc/kubernetes/kubelet-config.yaml";

function load(file: string): LoadedConfiguration {
  return loadConfiguration({
    flags: { config: PATH },
    readFile: (p) => {
      if (p !== PATH) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
      return `apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n${file}`;
    },
    hostname: () => "node-a",
  });
}

describe("image configuration", () => {
  it("defaults as upstream: serialized pulls, no parallel limit, GC at 85/80 % after 2m", () => {
    const { config } = load("");
    assert.equal(config.serializeImagePulls, true);
    assert.equal(config.maxParallelImagePulls, 0);
    assert.equal(config.imageGCHighThresholdPercent, 85);
    assert.equal(config.imageGCLowThresholdPercent, 80);
    assert.equal(config.imageMinimumGCAge, 120_000);
    assert.equal(config.registryPullQPS, 5);
    assert.equal(config.registryBurst, 10);
  });

  it("takes --registry-qps and --registry-burst", () => {
    const { config } = loadConfiguration({ flags: { "registry-qps": "0", "registry-burst": "3" }, readFile: () => "", hostname: () => "n" });
    assert.equal(config.registryPullQPS, 0);
    assert.equal(config.registryBurst, 3);
  });

  it("takes maxParallelImagePulls with serializeImagePulls false", () => {
    const { config, warnings } = load("serializeImagePulls: false\nmaxParallelImagePulls: 3\n");
    assert.equal(config.maxParallelImagePulls, 3);
    assert.ok(!warnings.some((w) => w.includes("maxParallelImagePulls")), warnings.join("\n"));
  });

  it("refuses a parallel limit above 1 with serialized pulls, and thresholds out of order", () => {
    assert.throws(() => load("maxParallelImagePulls: 2\n"), /maxParallelImagePulls \(2\) cannot be larger than 1 unless serializeImagePulls/);
    assert.throws(() => load("imageGCHighThresholdPercent: 50\nimageGCLowThresholdPercent: 60\n"), /imageGCLowThresholdPercent \(60\) must not be greater than imageGCHighThresholdPercent \(50\)/);
    assert.throws(() => load("maxParallelImagePulls: -1\n"), /maxParallelImagePulls/);
    assert.throws(() => load("imageMaximumGCAge: 1m\n"), /imageMaximumGCAge \(1m0s\) must not be less than imageMinimumGCAge \(2m0s\)/);
    assert.equal(load("imageMaximumGCAge: 24h\n").config.imageMaximumGCAge, 86_400_000);
    assert.equal(load("").config.imageMaximumGCAge, 0);
  });
});
