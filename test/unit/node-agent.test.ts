import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { conditionDrift } from "../../src/node/agent.js";

describe("node condition drift", () => {
  it("names the conditions whose status in the API differs from ours, ignoring ones the API lacks", () => {
    const ours = { conditions: [{ type: "Ready", status: "True" }, { type: "MemoryPressure", status: "False" }, { type: "DiskPressure", status: "False" }] };
    assert.deepEqual(conditionDrift({ conditions: [{ type: "Ready", status: "Unknown" }, { type: "MemoryPressure", status: "False" }] }, ours), ["Ready=Unknown"]);
    assert.deepEqual(conditionDrift({ conditions: [{ type: "Ready", status: "True" }] }, ours), []);
    assert.deepEqual(conditionDrift(undefined, ours), []);
  });
});
