#!/usr/bin/env node
// Runs the compiled test files (dist/test/<tier>/**/*.test.js) on node's built-in test runner.
// Usage: node scripts/run-tests.mjs [unit|integration|e2e|differential ...]   (default: all tiers, in that order)
// Unit tests run in parallel; integration and e2e files run one at a time (they share the machine).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const tiers = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["unit", "integration", "e2e", "differential"];
let failed = false;
for (const tier of tiers) {
  const dir = join("dist", "test", tier);
  if (!existsSync(dir)) continue;
  const files = find(dir).sort();
  if (files.length === 0) continue;
  console.log(`\n=== ${tier}: ${files.length} test file(s) ===`);
  const args = ["--test", "--test-reporter=spec", `--test-concurrency=${tier === "unit" ? 2 : 1}`, ...files];
  const r = spawnSync(process.execPath, args, { stdio: "inherit" });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}
