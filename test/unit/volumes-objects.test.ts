/** ConfigMaps and Secrets for pods: reads shared for a moment, failures not kept. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError, type ApiClient, type ApiRequest } from "../../src/api/client.js";
import { SHARED_READ_MS, createApiObjectSource, envLookupFrom } from "../../src/volumes/objects.js";
import { FakeClock } from "../../src/util/clock.js";

function fakeApi(answer: (req: ApiRequest) => unknown): { api: ApiClient; gets: string[] } {
  const gets: string[] = [];
  const api: ApiClient = {
    server: "https://127.0.0.1:6443",
    identity: () => "system:node:n1",
    request<T>(req: ApiRequest): Promise<T> {
      gets.push(req.path);
      try {
        return Promise.resolve(answer(req) as T);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    },
    watch: () => Promise.resolve(),
    reload: () => Promise.resolve(),
    close: () => undefined,
  };
  return { api, gets };
}

const CA_PATH = "/api/v1/namespaces/ns/configmaps/kube-root-ca.crt";

describe("object source", () => {
  it("readers of one object within a moment share one GET (volumes and env alike); later ones read again", async () => {
    let version = 1;
    const { api, gets } = fakeApi(() => ({ data: { "ca.crt": `v${version}` } }));
    const clock = new FakeClock(0);
    const objects = createApiObjectSource(api, clock);
    const env = envLookupFrom(api, clock);
    const [a, b] = await Promise.all([objects.configMap("ns", "kube-root-ca.crt"), objects.configMap("ns", "kube-root-ca.crt")]);
    assert.equal(a?.["ca.crt"]?.toString(), "v1");
    assert.equal(b?.["ca.crt"]?.toString(), "v1");
    assert.deepEqual(await env("ConfigMap", "ns", "kube-root-ca.crt"), { "ca.crt": "v1" });
    assert.deepEqual(gets, [CA_PATH], "one GET for three readers");
    version = 2;
    await clock.advance(SHARED_READ_MS);
    assert.equal((await objects.configMap("ns", "kube-root-ca.crt"))?.["ca.crt"]?.toString(), "v2", "older than the moment: read again");
    assert.equal(gets.length, 2);
    await objects.secret("ns", "kube-root-ca.crt");
    assert.equal(gets.length, 3, "a Secret of the same name is another object");
  });

  it("a missing object is shared like any answer; a failure is not kept", async () => {
    let fail = true;
    const { api, gets } = fakeApi((req) => {
      if (req.path.endsWith("/missing")) throw new ApiError(404, "NotFound", "not found");
      if (fail) throw new ApiError(500, "InternalError", "etcd timeout");
      return { data: { k: "v" } };
    });
    const clock = new FakeClock(0);
    const objects = createApiObjectSource(api, clock);
    assert.equal(await objects.configMap("ns", "missing"), undefined);
    assert.equal(await objects.configMap("ns", "missing"), undefined);
    assert.equal(gets.filter((p) => p.endsWith("/missing")).length, 1);
    await assert.rejects(objects.configMap("ns", "flaky"), /etcd timeout/);
    fail = false;
    assert.equal((await objects.configMap("ns", "flaky"))?.k?.toString(), "v", "the next reader tries again at once");
  });
});
