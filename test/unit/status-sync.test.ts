import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { statusPatch } from "../../src/pods/status-sync.js";

describe("status patch", () => {
  it("clears a condition's old reason and message with explicit nulls once it has none", () => {
    const body = statusPatch("uid-1", {
      phase: "Running",
      conditions: [
        { type: "Ready", status: "True", lastTransitionTime: new Date(Date.UTC(2026, 0, 1)) },
        { type: "ContainersReady", status: "False", reason: "ContainersNotReady", message: "containers with unready status: [main]" },
      ],
    });
    assert.deepEqual(body.metadata, { uid: "uid-1" });
    const conds = body.status.conditions as Record<string, unknown>[];
    assert.deepEqual(conds[0], { type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:00Z", reason: null, message: null });
    assert.equal(conds[1]?.reason, "ContainersNotReady");
    assert.equal(conds[1]?.message, "containers with unready status: [main]");
    assert.equal(body.status.phase, "Running");
  });

  it("leaves a status without conditions as it is", () => {
    const body = statusPatch("u", { phase: "Pending" });
    assert.deepEqual(body.status, { phase: "Pending" });
  });
});
