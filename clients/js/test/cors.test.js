// In a browser, a fetch to another origin that fails is checked once without CORS: reachable,
// it is a CorsError naming the page's origin and not retried; unreachable, a ConnectError as
// before. A real browser runs the same client in tests/system/test_browser.py.

import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { ConnectError, CorsError, GradserveClient, GradserveError } from "../src/index.js";
import { jsonResponse, scriptedFetch } from "../testing/fake-fetch.js";

const PAGE = "https://course.example.edu";
const SERVICE = "https://gradserve.example.edu";

/** What Chromium's fetch rejects with, CORS refusal and network failure alike. */
const failedToFetch = () => new TypeError("Failed to fetch");

const noWait = { sleep: async () => {}, random: () => 0 };

beforeEach(() => {
  globalThis.location = { href: `${PAGE}/lab/1.html`, origin: PAGE };
});

afterEach(() => {
  delete globalThis.location;
});

test("CorsError is a GradserveError, not a TransportError", () => {
  assert.equal(Object.getPrototypeOf(CorsError), GradserveError);
});

test("a reachable service on another origin: a CorsError after one check, no retry", async () => {
  const fetch = scriptedFetch([failedToFetch(), new Response(null)]);
  const client = new GradserveClient({ baseUrl: SERVICE, fetch, retry: noWait });
  const error = await client.health().catch((e) => e);
  assert.ok(error instanceof CorsError, String(error));
  assert.equal(error.origin, PAGE);
  assert.equal(error.attempts, 1);
  assert.deepEqual(error.request, { method: "GET", url: `${SERVICE}/healthz` });
  assert.ok(error.cause instanceof TypeError);
  for (const named of [PAGE, `${SERVICE}/healthz`, "CORS", "GRADSERVE_CORS_ORIGINS"]) {
    assert.ok(error.message.includes(named), `${named} in: ${error.message}`);
  }
  assert.equal(fetch.calls.length, 2);
  const [, check] = fetch.calls;
  assert.equal(check.url, `${SERVICE}/`);
  assert.equal(check.init.method, "HEAD");
  assert.equal(check.init.mode, "no-cors");
  assert.equal(check.init.headers, undefined);
});

test("an unreachable service on another origin: a ConnectError, retried as before", async () => {
  const fetch = scriptedFetch([failedToFetch(), failedToFetch(), failedToFetch(), failedToFetch()]);
  const client = new GradserveClient({
    baseUrl: SERVICE,
    fetch,
    retry: { maxAttempts: 2, ...noWait },
  });
  const error = await client.health().catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.attempts, 2);
  assert.equal(fetch.calls.length, 4); // each attempt and its check
});

test("the page's own origin: no check, a ConnectError", async () => {
  const fetch = scriptedFetch([failedToFetch()]);
  const client = new GradserveClient({ baseUrl: "/gradserve", fetch, retry: { maxAttempts: 1 } });
  const error = await client.health().catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(fetch.calls.length, 1);
});

test("an answer from another origin is used as it is", async () => {
  const fetch = scriptedFetch([jsonResponse(200, { status: "ok" })]);
  const client = new GradserveClient({ baseUrl: SERVICE, fetch });
  assert.deepEqual(await client.health(), { status: "ok" });
});
