/** The tskubelet command's surface: --help, version, flag errors and config errors with exit codes. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const main = join(fileURLToPath(new URL(".", import.meta.url)), "../../src/cli/main.js");
const run = (...args: string[]): { code: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: "utf8", timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe("tskubelet command", () => {
  it("prints help naming the upstream flags", () => {
    const r = run("--help");
    assert.equal(r.code, 0);
    for (const flag of ["--config", "--pod-manifest-path", "--container-runtime-endpoint", "--image-service-endpoint", "--root-dir", "--hostname-override", "--node-ip", "--max-pods", "--runtime-request-timeout", "--file-check-frequency", "--read-only-port", "--healthz-port", "--healthz-bind-address", "--kubeconfig", "-v, --v"]) {
      assert.ok(r.out.includes(flag), `help mentions ${flag}`);
    }
  });

  it("prints its version both ways", () => {
    for (const args of [["version"], ["--version"]]) {
      const r = run(...args);
      assert.equal(r.code, 0);
      assert.match(r.out, /^tskubelet v\d+\.\d+\.\d+ \(Kubernetes v1\.\d+\.\d+ kubelet API/);
    }
  });

  it("rejects a bad flag value naming the flag and what it expected, with exit code 2", () => {
    const r = run("--max-pods=lots");
    assert.equal(r.code, 2);
    assert.match(r.err, /flag --max-pods: expected an integer >= 0, got "lots"/);
  });

  it("accepts -v=N as pflag does", () => {
    const r = run("-v=abc");
    assert.equal(r.code, 2);
    assert.match(r.err, /flag --v: expected an integer >= 0, got "abc"/);
  });

  it("rejects an unknown flag", () => {
    const r = run("--no-such-flag");
    assert.notEqual(r.code, 0);
    assert.match(r.err, /unknown option '--no-such-flag'/);
  });

  it("reports every invalid field of a config file at once, naming the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "tskubelet-cli-"));
    const file = join(dir, "config.yaml");
    writeFileSync(file, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: lots\nhealthzBindAddress: not-an-ip\nfileCheckFrequency: 5\n");
    const r = run(`--config=${file}`);
    assert.equal(r.code, 2);
    assert.match(r.err, new RegExp(`${file}: maxPods: expected an integer`));
    assert.match(r.err, /healthzBindAddress: expected a valid IP address/);
    assert.match(r.err, /fileCheckFrequency: expected a duration such as 20s/);
    rmSync(dir, { recursive: true, force: true });
  });
});
