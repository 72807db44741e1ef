// What the client sends: URL, headers, body, and the gradients options in the wire format.

import assert from "node:assert/strict";
import { test } from "node:test";

import { GradserveClient } from "../src/index.js";
import { jsonResponse, scriptedFetch } from "../testing/fake-fetch.js";

const PROBLEM = {
  X: [
    [1, 2],
    [3, -1],
  ],
  Y: [[1], [8]],
  W1: [
    [1, -1, 2],
    [1, 1, -1],
  ],
  W2: [[1], [-1], [1]],
};

/** A client whose fetch answers `{}` to every call and records it. */
function recordingClient(options = {}) {
  const fetch = scriptedFetch(Array.from({ length: 10 }, () => jsonResponse(200, {})));
  return { client: new GradserveClient({ fetch, ...options }), calls: fetch.calls };
}

const sentBody = (call) => JSON.parse(call.init.body);

test("defaults: the local server, 30 s per attempt, 4 attempts from 250 ms up to 8 s", () => {
  const client = new GradserveClient();
  assert.equal(client.baseUrl, "http://127.0.0.1:8000");
  assert.equal(client.timeoutMs, 30_000);
  assert.deepEqual(client.retry, { maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 8000 });
  const partial = new GradserveClient({ retry: { maxAttempts: 2 } });
  assert.deepEqual(partial.retry, { maxAttempts: 2, baseDelayMs: 250, maxDelayMs: 8000 });
  assert.throws(() => (client.baseUrl = "http://elsewhere"), TypeError, "read-only");
  assert.throws(() => (client.retry.maxAttempts = 9), TypeError, "frozen");
});

test("gradients posts exactly the four matrices when the options are the defaults", async () => {
  const { client, calls } = recordingClient();
  await client.gradients(PROBLEM);
  await client.gradients(PROBLEM, { dtype: "float64", returnForward: false });
  for (const call of calls) {
    assert.equal(call.url, "http://127.0.0.1:8000/v1/gradients");
    assert.equal(call.init.method, "POST");
    assert.equal(call.init.headers["Content-Type"], "application/json");
    assert.equal(call.init.body, JSON.stringify(PROBLEM));
  }
});

test("gradients sends only options that differ from the defaults, in wire spelling", async () => {
  const { client, calls } = recordingClient();
  await client.gradients(PROBLEM, { dtype: "float32" });
  await client.gradients(PROBLEM, { returnForward: true });
  await client.gradients(PROBLEM, { dtype: "float32", returnForward: true });
  assert.deepEqual(
    calls.map((call) => sentBody(call).options),
    [{ dtype: "float32" }, { return_forward: true }, { dtype: "float32", return_forward: true }],
  );
});

test("matrices go as given: the server, not the client, validates them", async () => {
  const { client, calls } = recordingClient();
  await client.gradients({ X: [[Infinity, "1", true, null]], Y: [], W1: [[1]], w2: [[1]] });
  assert.equal(calls[0].init.body, '{"X":[[null,"1",true,null]],"Y":[],"W1":[[1]],"w2":[[1]]}');
});

test("Accept and Authorization headers; no Authorization without an apiKey", async () => {
  const { client, calls } = recordingClient({ apiKey: "s3cret" });
  await client.health();
  assert.equal(calls[0].init.headers.Authorization, "Bearer s3cret");
  assert.equal(calls[0].init.headers.Accept, "application/json, application/problem+json");
  assert.equal(calls[0].init.headers["Content-Type"], undefined, "no body, no Content-Type");
  assert.equal(calls[0].init.body, undefined);

  const anonymous = recordingClient();
  await anonymous.client.health();
  assert.equal("Authorization" in anonymous.calls[0].init.headers, false);
});

test("the API key does not show when the client is logged", async () => {
  const { inspect } = await import("node:util");
  const client = new GradserveClient({ apiKey: "s3cret" });
  assert.doesNotMatch(inspect(client, { depth: 5 }), /s3cret/);
  assert.doesNotMatch(JSON.stringify(client), /s3cret/);
});

test("request sends body verbatim with its content type, and json as JSON", async () => {
  const { client, calls } = recordingClient();
  await client.request("POST", "/v1/gradients", {
    body: '{"X": [[1, 2]',
    contentType: "text/plain",
  });
  await client.request("POST", "/v1/gradients", { body: "{}" });
  await client.request("PUT", "/v1/gradients", { json: [1, "a"], headers: { "X-Trace": "7" } });
  assert.deepEqual(
    calls.map(({ init }) => [init.method, init.headers["Content-Type"], init.body]),
    [
      ["POST", "text/plain", '{"X": [[1, 2]'],
      ["POST", "application/json", "{}"],
      ["PUT", "application/json", '[1,"a"]'],
    ],
  );
  assert.equal(calls[2].init.headers["X-Trace"], "7");
  await assert.rejects(client.request("POST", "/", { json: {}, body: "{}" }), TypeError);
});

test("paths are joined to baseUrl, keeping its path prefix", async () => {
  const { client, calls } = recordingClient({ baseUrl: "https://example.org/gradserve//" });
  await client.health();
  await client.request("GET", "openapi.json");
  assert.deepEqual(
    calls.map((call) => call.url),
    ["https://example.org/gradserve/healthz", "https://example.org/gradserve/openapi.json"],
  );
});

test("fetch is called as a plain function, as browsers require", async () => {
  let receiver = "not called";
  const fetch = function (url, init) {
    receiver = this;
    return Promise.resolve(jsonResponse(200, {}));
  };
  await new GradserveClient({ fetch }).health();
  assert.equal(receiver, undefined);
});

test("bad settings fail at construction", () => {
  assert.throws(() => new GradserveClient({ baseUrl: "not a url" }), TypeError);
  assert.throws(() => new GradserveClient({ timeoutMs: 0 }), RangeError);
  assert.throws(() => new GradserveClient({ retry: { maxAttempts: 0 } }), RangeError);
  assert.throws(() => new GradserveClient({ fetch: null }), TypeError);
});
