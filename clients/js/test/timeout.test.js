// The per-attempt time limit and the caller's own signal, through a fetch that never answers.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";

import { GradserveClient, GradserveTimeoutError, TransportError } from "../src/index.js";
import { hangingFetch, recordingSleep, scriptedFetch } from "../testing/fake-fetch.js";

test(
  "an attempt that takes longer than timeoutMs is a GradserveTimeoutError, not retried",
  { timeout: 5_000 },
  async () => {
    const fetch = hangingFetch();
    const client = new GradserveClient({
      fetch,
      timeoutMs: 20,
      retry: { sleep: recordingSleep() },
    });
    const started = Date.now();
    const error = await client.health().catch((e) => e);
    assert.ok(error instanceof GradserveTimeoutError && error instanceof TransportError);
    assert.equal(error.name, "GradserveTimeoutError");
    assert.equal(error.timeoutMs, 20);
    assert.equal(error.attempts, 1);
    assert.deepEqual(error.request, { method: "GET", url: "http://127.0.0.1:8000/healthz" });
    assert.equal(fetch.calls.length, 1);
    assert.ok(fetch.calls[0].init.signal.aborted, "the attempt's signal is aborted");
    assert.ok(Date.now() - started < 5_000);
  },
);

test("the limit covers reading the body, not only the headers", { timeout: 5_000 }, async () => {
  // A real server that sends its headers and part of a body, then stalls.
  const stalling = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json" });
    response.write('{"status":');
  });
  await new Promise((resolve) => stalling.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = stalling.address();
    const client = new GradserveClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 100 });
    await assert.rejects(client.health(), GradserveTimeoutError);
  } finally {
    stalling.closeAllConnections();
    stalling.close();
  }
});

test(
  "the caller's signal aborts the attempt with the caller's reason, and is not retried",
  { timeout: 5_000 },
  async () => {
    const fetch = hangingFetch();
    const client = new GradserveClient({ fetch });
    const controller = new AbortController();
    const pending = client.health({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user gave up")), 10);
    await assert.rejects(pending, { message: "user gave up" });
    assert.equal(fetch.calls.length, 1);
  },
);

test("an already aborted signal sends nothing", { timeout: 5_000 }, async () => {
  const fetch = hangingFetch();
  const client = new GradserveClient({ fetch });
  await assert.rejects(client.health({ signal: AbortSignal.abort() }), { name: "AbortError" });
  assert.equal(fetch.calls.length, 0);
});

test("timeoutMs: Infinity sets no limit", { timeout: 5_000 }, async () => {
  const fetch = scriptedFetch([
    () => new Promise((resolve) => setTimeout(() => resolve(Response.json({ status: "ok" })), 30)),
  ]);
  const client = new GradserveClient({ fetch, timeoutMs: Infinity });
  assert.deepEqual(await client.health(), { status: "ok" });
});
