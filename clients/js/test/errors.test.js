// The error classes, and how an error answer becomes one: problem details or not.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ClientError,
  ConnectError,
  GradserveClient,
  GradserveError,
  GradserveTimeoutError,
  ProblemError,
  ServerError,
  TransportError,
  ValidationError,
} from "../src/index.js";
import { jsonResponse, problemResponse, scriptedFetch } from "../testing/fake-fetch.js";

const once = (response) =>
  new GradserveClient({ fetch: scriptedFetch([response]), retry: { maxAttempts: 1 } });

test("the error classes form the documented tree", () => {
  const parents = [
    [TransportError, GradserveError],
    [ConnectError, TransportError],
    [GradserveTimeoutError, TransportError],
    [ProblemError, GradserveError],
    [ClientError, ProblemError],
    [ValidationError, ClientError],
    [ServerError, ProblemError],
    [GradserveError, Error],
  ];
  for (const [child, parent] of parents) {
    assert.equal(Object.getPrototypeOf(child), parent, `${child.name} extends ${parent.name}`);
  }
  assert.notEqual(GradserveTimeoutError.name, "TimeoutError");
});

test("a 422 problem becomes a ValidationError carrying its details", async () => {
  const problem = {
    type: "urn:gradserve:problem:invalid-request",
    title: "Invalid request",
    status: 422,
    detail: "2 errors, the first: X is required",
    errors: [
      { pointer: "/X", detail: "X is required" },
      { pointer: "/W1/0/1", detail: "W1[0][1] must be a JSON number, not a string" },
    ],
    error_count: 2,
  };
  const error = await once(problemResponse(problem))
    .request("POST", "/v1/gradients", { json: {} })
    .catch((e) => e);
  assert.ok(error instanceof ValidationError);
  assert.equal(error.name, "ValidationError");
  assert.equal(error.status, 422);
  assert.equal(error.type, problem.type);
  assert.equal(error.title, problem.title);
  assert.equal(error.detail, problem.detail);
  assert.deepEqual(error.errors, problem.errors);
  assert.deepEqual(error.problem, problem);
  assert.equal(error.response.status, 422);
  assert.equal(error.message, "422 Invalid request: 2 errors, the first: X is required");
  assert.deepEqual(error.request, { method: "POST", url: "http://127.0.0.1:8000/v1/gradients" });
});

test("each status gets its class", async () => {
  const cases = [
    [400, ValidationError],
    [404, ClientError],
    [405, ClientError],
    [413, ClientError],
    [415, ClientError],
    [422, ValidationError],
    [500, ServerError],
    [503, ServerError],
    [302, ProblemError],
  ];
  for (const [status, Class] of cases) {
    const response = problemResponse({ type: "about:blank", title: `T${status}`, status });
    const error = await once(response)
      .health()
      .catch((e) => e);
    assert.equal(error.constructor, Class, `${status}`);
    assert.equal(error.status, status);
    assert.deepEqual(error.errors, []);
    assert.equal(error.detail, undefined);
  }
});

test("a proxy's HTML 502 is a ServerError titled with the status text", async () => {
  const html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
  const response = new Response(html, {
    status: 502,
    statusText: "Bad Gateway",
    headers: { "content-type": "text/html" },
  });
  const error = await once(response)
    .health()
    .catch((e) => e);
  assert.ok(error instanceof ServerError);
  assert.equal(error.status, 502);
  assert.equal(error.title, "Bad Gateway");
  assert.equal(error.type, "about:blank");
  assert.equal(error.detail, undefined);
  assert.equal(error.problem, null);
  assert.deepEqual(error.errors, []);
  assert.equal(error.bodyText, html);
  assert.equal(error.message, "502 Bad Gateway");
});

test("without a status text the title is the standard phrase", async () => {
  const error = await once(new Response("upstream down", { status: 504 }))
    .health()
    .catch((e) => e);
  assert.equal(error.title, "Gateway Timeout");
  const odd = await once(new Response("", { status: 599 }))
    .health()
    .catch((e) => e);
  assert.equal(odd.title, "HTTP 599");
});

test("a JSON error body that is not an object is not taken for problem details", async () => {
  const error = await once(jsonResponse(404, ["not", "a", "problem"]))
    .health()
    .catch((e) => e);
  assert.ok(error instanceof ClientError);
  assert.equal(error.problem, null);
  assert.equal(error.type, "about:blank");
});

test("a 2xx answer: JSON parsed, empty null, text as text, broken JSON an error", async () => {
  assert.deepEqual(await once(jsonResponse(200, { a: [1.5] })).request("GET", "/x"), { a: [1.5] });
  assert.equal(await once(new Response(null, { status: 204 })).request("GET", "/x"), null);
  const html = new Response("<html></html>", { headers: { "content-type": "text/html" } });
  assert.equal(await once(html).request("GET", "/docs"), "<html></html>");
  const broken = new Response("{", { headers: { "content-type": "application/json" } });
  const error = await once(broken)
    .request("GET", "/x")
    .catch((e) => e);
  assert.equal(error.constructor, GradserveError);
  assert.ok(error.cause instanceof SyntaxError);
});

test("an error that is not a network error passes through, not retried", async () => {
  const bug = new RangeError("bug in a custom fetch");
  const fetch = scriptedFetch([bug]);
  const client = new GradserveClient({ fetch });
  await assert.rejects(client.health(), (error) => error === bug);
  assert.equal(fetch.calls.length, 1);
});
