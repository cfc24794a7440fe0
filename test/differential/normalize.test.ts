import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collapse, DELETED, finalState, normalize, render, stateDiff, stateWord, type PodLike } from "./normalize.js";
import { isSubsequence, seqRelation } from "./report.js";

describe("differential normalization", () => {
  const pod: PodLike = {
    metadata: { name: "p", resourceVersion: "7" },
    status: {
      phase: "Running",
      conditions: [
        { type: "Ready", status: "False", reason: "ContainersNotReady" },
        { type: "Initialized", status: "True" },
      ],
      initContainerStatuses: [{ name: "side", state: { running: {} }, ready: true, started: true, restartCount: 0 }],
      containerStatuses: [
        { name: "b", state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { reason: "Error", exitCode: 1 } }, ready: false, started: false, restartCount: 2 },
        { name: "a", state: { terminated: { reason: "Completed", exitCode: 0, message: "done\n" } }, ready: false, restartCount: 0 },
      ],
    },
  };

  it("keeps phase, sorted conditions with reasons, and per container state, last state, ready, started, restarts", () => {
    assert.equal(
      render(normalize(pod)),
      'Running | Initialized=True Ready=False(ContainersNotReady) | init/side: running ready started r0; a: terminated:Completed(0,"done") unready r0; b: waiting:CrashLoopBackOff last=terminated:Error(1) unready not-started r2',
    );
  });

  it("drops waiting messages and cuts long termination messages", () => {
    assert.equal(stateWord({ waiting: { reason: "ErrImagePull" } }), "waiting:ErrImagePull");
    const long = "x".repeat(100);
    assert.equal(stateWord({ terminated: { reason: "Error", exitCode: 2, message: long } }), `terminated:Error(2,"${"x".repeat(60)}...")`);
    assert.equal(stateWord(undefined), "none");
  });

  it("renders a pod without status and collapses consecutive duplicates only", () => {
    assert.equal(render(normalize({})), "- | - | -");
    assert.deepEqual(collapse(["a", "a", "b", "a", "a"]), ["a", "b", "a"]);
  });

  it("takes the final state before the deletion marker and lists field differences", () => {
    assert.equal(finalState(["s1", "s2", DELETED]), "s2");
    const d = stateDiff("Running | Ready=True | main: running ready r0", "Running | Ready=False | main: running unready r0");
    assert.deepEqual(d, { onlyA: ["Ready=True", "main: running ready r0"], onlyB: ["Ready=False", "main: running unready r0"] });
  });
});

describe("differential sequence relation", () => {
  it("tells equal sequences, skipped states and real differences apart", () => {
    assert.equal(isSubsequence(["a", "c"], ["a", "b", "c"]), true);
    assert.equal(isSubsequence(["c", "a"], ["a", "b", "c"]), false);
    assert.equal(seqRelation(["a", "b"], ["a", "b"]), "equal");
    assert.equal(seqRelation(["a", "b", "c"], ["a", "c"]), "tskubelet skips");
    assert.equal(seqRelation(["a", "c"], ["a", "b", "c"]), "upstream skips");
    assert.equal(seqRelation(["a", "b"], ["a", "x"]), "differ");
  });
});
