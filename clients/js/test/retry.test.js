// Retries with backoff and Retry-After, through an injected fetch and an injected sleep: no
// network, no real waiting.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ClientError,
  ConnectError,
  GradserveClient,
  ServerError,
  TransportError,
  ValidationError,
} from "../src/index.js";
import { backoffDelayMs, retryAfterMs, retryDelayMs } from "../src/retry.js";
import {
  jsonResponse,
  networkError,
  problemResponse,
  recordingSleep,
  scriptedFetch,
} from "../testing/fake-fetch.js";

const OK = { status: "ok" };
const unavailable = (headers = {}) =>
  problemResponse({ type: "about:blank", title: "Service Unavailable", status: 503 }, headers);

function clientWith(script, retry = {}) {
  const fetch = scriptedFetch(script);
  const sleep = recordingSleep();
  const client = new GradserveClient({ fetch, retry: { sleep, random: () => 0.5, ...retry } });
  return { client, fetch, sleep };
}

test("a 503, 502 and 504 are retried, then the answer is returned", async () => {
  const gateway = (status) => new Response("", { status });
  const { client, fetch, sleep } = clientWith([
    unavailable(),
    gateway(502),
    gateway(504),
    jsonResponse(200, OK),
  ]);
  assert.deepEqual(await client.health(), OK);
  assert.equal(fetch.calls.length, 4);
  assert.deepEqual(sleep.waits, [125, 250, 500], "half of 250, 500, 1000 ms (random 0.5)");
});

test("a network error is retried as a ConnectError until it succeeds", async () => {
  const { client, fetch } = clientWith([
    networkError(),
    networkError("ECONNRESET"),
    jsonResponse(200, OK),
  ]);
  assert.deepEqual(await client.health(), OK);
  assert.equal(fetch.calls.length, 3);
});

test("a connection broken while the answer is read is retried (TransportError)", async () => {
  const broken = () => ({
    ok: true,
    status: 200,
    headers: new Headers(),
    text: () => Promise.reject(new TypeError("terminated")),
  });
  const { client, fetch } = clientWith([broken, jsonResponse(200, OK)]);
  assert.deepEqual(await client.health(), OK);
  assert.equal(fetch.calls.length, 2);

  const failing = clientWith([broken], { maxAttempts: 1 });
  const error = await failing.client.health().catch((e) => e);
  assert.equal(error.constructor, TransportError);
  assert.match(error.message, /could not read the answer to GET .*healthz: terminated/);
});

test("a POST is retried with the same body", async () => {
  const problem = { X: [[1]], Y: [[1]], W1: [[1]], W2: [[1]] };
  const { client, fetch } = clientWith([networkError(), unavailable(), jsonResponse(200, {})]);
  await client.gradients(problem);
  const bodies = fetch.calls.map(({ init }) => init.body);
  assert.deepEqual(bodies, Array(3).fill(JSON.stringify(problem)));
  assert.ok(fetch.calls.every(({ init }) => init.method === "POST"));
});

test("after maxAttempts the last error is thrown, with the attempts made", async () => {
  const { client, fetch, sleep } = clientWith(Array.from({ length: 4 }, () => unavailable()));
  const error = await client.health().catch((e) => e);
  assert.ok(error instanceof ServerError);
  assert.equal(error.status, 503);
  assert.equal(error.attempts, 4);
  assert.equal(fetch.calls.length, 4);
  assert.equal(sleep.waits.length, 3);

  const down = clientWith(
    Array.from({ length: 2 }, () => networkError()),
    { maxAttempts: 2 },
  );
  const failure = await down.client.health().catch((e) => e);
  assert.ok(failure instanceof ConnectError && failure instanceof TransportError);
  assert.equal(failure.attempts, 2);
  assert.match(
    failure.message,
    /GET http:\/\/127\.0\.0\.1:8000\/healthz: fetch failed \(ECONNREFUSED\)/,
  );
  assert.equal(failure.cause.cause.code, "ECONNREFUSED");
});

for (const status of [400, 401, 404, 405, 413, 415, 422, 429]) {
  test(`a ${status} is never retried`, async () => {
    const problem = { type: "about:blank", title: "No", status };
    const { client, fetch, sleep } = clientWith([problemResponse(problem, { "retry-after": "1" })]);
    const error = await client.request("POST", "/v1/gradients", { json: {} }).catch((e) => e);
    assert.ok(error instanceof ClientError);
    assert.equal(error instanceof ValidationError, status === 400 || status === 422);
    assert.equal(error.attempts, 1);
    assert.equal(fetch.calls.length, 1);
    assert.deepEqual(sleep.waits, []);
  });
}

test("a 500 is not retried: the service failed, trying again would fail again", async () => {
  const problem = {
    type: "urn:gradserve:problem:internal-error",
    title: "Internal Server Error",
    status: 500,
  };
  const { client, fetch } = clientWith([problemResponse(problem)]);
  await assert.rejects(client.health(), ServerError);
  assert.equal(fetch.calls.length, 1);
});

test("Retry-After in seconds is waited, capped at maxDelayMs", async () => {
  const { client, sleep } = clientWith(
    [
      unavailable({ "retry-after": "2" }),
      unavailable({ "retry-after": "120" }),
      jsonResponse(200, OK),
    ],
    { maxDelayMs: 8000 },
  );
  await client.health();
  assert.deepEqual(sleep.waits, [2000, 8000]);
});

test("Retry-After as an HTTP date is waited until then, capped; a past one is 0", async () => {
  const soon = new Date(Date.now() + 60_000).toUTCString();
  const past = new Date(Date.now() - 60_000).toUTCString();
  const { client, sleep } = clientWith(
    [
      unavailable({ "retry-after": soon }),
      unavailable({ "retry-after": past }),
      jsonResponse(200, OK),
    ],
    { maxDelayMs: 5000 },
  );
  await client.health();
  assert.deepEqual(sleep.waits, [5000, 0]);
});

test("an unreadable Retry-After falls back to the backoff", async () => {
  const { client, sleep } = clientWith([
    unavailable({ "retry-after": "soon" }),
    jsonResponse(200, OK),
  ]);
  await client.health();
  assert.deepEqual(sleep.waits, [125]);
});

test("the real sleep waits between attempts (tiny delays)", async () => {
  const fetch = scriptedFetch([networkError(), unavailable(), jsonResponse(200, OK)]);
  const client = new GradserveClient({ fetch, retry: { baseDelayMs: 1, maxDelayMs: 2 } });
  assert.deepEqual(await client.health(), OK);
  assert.equal(fetch.calls.length, 3);
});

test("the caller's signal interrupts the wait between attempts", async () => {
  const fetch = scriptedFetch([unavailable(), jsonResponse(200, OK)]);
  const client = new GradserveClient({
    fetch,
    retry: { baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 1 },
  });
  const controller = new AbortController();
  const pending = client.health({ signal: controller.signal });
  setTimeout(() => controller.abort(), 10);
  await assert.rejects(pending, { name: "AbortError" });
  assert.equal(fetch.calls.length, 1);
});

test("backoff: full jitter under min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1))", () => {
  const retry = { baseDelayMs: 250, maxDelayMs: 8000 };
  const top = () => 0.999999;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => Math.round(backoffDelayMs(attempt, retry, top))),
    [250, 500, 1000, 2000, 4000, 8000, 8000, 8000],
  );
  assert.equal(
    backoffDelayMs(3, retry, () => 0),
    0,
  );
  for (let i = 0; i < 100; i++) {
    const delay = backoffDelayMs(3, retry);
    assert.ok(delay >= 0 && delay < 1000);
  }
});

test("retryAfterMs reads seconds and HTTP dates, and nothing else", () => {
  const now = Date.parse("Sat, 28 Nov 2026 08:00:00 GMT");
  assert.equal(retryAfterMs("3", now), 3000);
  assert.equal(retryAfterMs(" 0 ", now), 0);
  assert.equal(retryAfterMs("Sat, 28 Nov 2026 08:00:05 GMT", now), 5000);
  assert.equal(retryAfterMs("Sat, 28 Nov 2026 07:00:00 GMT", now), 0);
  assert.equal(retryAfterMs(null, now), undefined);
  assert.equal(retryAfterMs("", now), undefined);
  assert.equal(retryAfterMs("-1", now), undefined);
  assert.equal(retryAfterMs("later", now), undefined);
  assert.equal(retryDelayMs(1, { baseDelayMs: 1, maxDelayMs: 100 }, "3"), 100);
});
