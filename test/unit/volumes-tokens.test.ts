import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { createVolumeManager } from "../../src/volumes/index.js";
import { createTokenManager, type TokenRequester } from "../../src/volumes/tokens.js";
import type { Mounter } from "../../src/volumes/mounter.js";
import { FakeClock } from "../../src/util/clock.js";
import { memoryLogger } from "../../src/util/log.js";

const noMounts: Mounter = { mountTmpfs: () => Promise.resolve(), mountsUnder: () => Promise.resolve([]), unmount: () => Promise.resolve() };
const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually(cond: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await realSleep(10);
  }
  assert.fail(`timed out waiting for ${what}`);
}

function tokenPod(uid: string, expirationSeconds: number, audience?: string): V1Pod {
  return {
    metadata: { name: `p-${uid}`, namespace: "ns", uid },
    spec: {
      containers: [{ name: "c" }],
      volumes: [{ name: "tok", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds, ...(audience ? { audience } : {}) } }] } }],
    },
  };
}

describe("service account token rotation", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tsk-tokens-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("the volume's token is requested again at 80% of its life, by the manager's own loop", async () => {
    const clock = new FakeClock();
    const issued: { at: number; audiences: string[] }[] = [];
    const requestToken: TokenRequester = (_ns, _sa, spec) => {
      issued.push({ at: clock.now(), audiences: spec.audiences });
      return Promise.resolve({ token: `t${issued.length}`, expirationSeconds: spec.expirationSeconds });
    };
    const vm = createVolumeManager({ api: undefined, clock, logger: memoryLogger().logger, events: () => undefined, allocatable: () => ({}), mounter: noMounts, objects: { configMap: () => Promise.resolve(undefined), secret: () => Promise.resolve(undefined) }, requestToken }, { rootDir: root, refreshMs: 3_600_000 });
    const t0 = clock.now();
    assert.deepEqual(await vm.setUp(tokenPod("a", 600, "vault")), []);
    const file = join(root, "pods/a/volumes/kubernetes.io~projected/tok/token");
    assert.equal(await readFile(file, "utf8"), "t1");
    assert.deepEqual(issued[0]?.audiences, ["vault"]);
    const ac = new AbortController();
    const loop = vm.run(ac.signal);
    try {
      await clock.advance(479_000);
      await realSleep(50);
      assert.equal(issued.length, 1, "not refreshed before 80% of 600 s");
      await clock.advance(2_000);
      await eventually(async () => (await readFile(file, "utf8")) === "t2", "the refreshed token in the volume");
      assert.ok((issued[1]?.at ?? 0) - t0 >= 480_000 && (issued[1]?.at ?? 0) - t0 <= 481_000, `refreshed at ${(issued[1]?.at ?? 0) - t0} ms`);
      // The next one is due 480 s after that refresh.
      await clock.advance(478_000);
      await realSleep(50);
      assert.equal(issued.length, 2);
      await clock.advance(3_000);
      await eventually(async () => (await readFile(file, "utf8")) === "t3", "the second refresh");
    } finally {
      ac.abort();
      await clock.advance(1_000);
      await loop;
    }
  });

  it("a failed refresh keeps the valid token and retries; an expired one fails with upstream's message", async () => {
    const clock = new FakeClock();
    let fail = false;
    let n = 0;
    const tokens = createTokenManager({
      clock,
      logger: memoryLogger().logger,
      request: (_ns, _sa, spec) => (fail ? Promise.reject(new Error("apiserver unreachable")) : Promise.resolve({ token: `t${++n}`, expirationSeconds: spec.expirationSeconds })),
    });
    const pod = tokenPod("b", 1000);
    const src = { path: "token", expirationSeconds: 1000 };
    assert.equal(await tokens.token(pod, src), "t1");
    assert.equal(tokens.nextRefreshAt(), clock.now() + 800_000);
    await clock.advance(500_000);
    assert.equal(await tokens.token(pod, src), "t1", "cached before 80%");
    await clock.advance(300_000);
    fail = true;
    assert.equal(await tokens.token(pod, src), "t1", "still valid: kept");
    assert.equal(tokens.nextRefreshAt(), clock.now() + 10_000, "retried in 10 s");
    await clock.advance(200_000);
    await assert.rejects(tokens.token(pod, src), /failed to fetch token: apiserver unreachable/);
    fail = false;
    assert.equal(await tokens.token(pod, src), "t2");
    tokens.forget("b");
    assert.equal(tokens.nextRefreshAt(), undefined);
  });

  it("long-lived tokens are still refreshed after 24 hours; tokens are per pod, audience and lifetime", async () => {
    const clock = new FakeClock();
    const reqs: string[] = [];
    const tokens = createTokenManager({
      clock,
      logger: memoryLogger().logger,
      request: (ns, sa, spec) => {
        reqs.push(`${ns}/${sa}/${spec.boundObjectRef.name}/${spec.audiences.join(",")}/${spec.expirationSeconds}`);
        return Promise.resolve({ token: `t${reqs.length}`, expirationSeconds: spec.expirationSeconds });
      },
    });
    const week = 7 * 24 * 3600;
    await tokens.token(tokenPod("c", week), { path: "t", expirationSeconds: week });
    assert.equal(tokens.nextRefreshAt(), clock.now() + 24 * 3600_000);
    await tokens.token(tokenPod("c", week), { path: "t", expirationSeconds: week, audience: "other" });
    await tokens.token(tokenPod("d", week), { path: "t", expirationSeconds: week });
    await tokens.token(tokenPod("c", week), { path: "t" });
    assert.deepEqual(reqs, [`ns/default/p-c//${week}`, `ns/default/p-c/other/${week}`, `ns/default/p-d//${week}`, "ns/default/p-c//3600"]);
  });
});
