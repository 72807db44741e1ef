// gradientsMany through /v1/gradients/batch, against a fake server: which requests it sends,
// how a refused problem is reported, and what it does when a batch is refused as a whole.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConnectError, GradserveClient, ServerError, ValidationError } from "../src/index.js";
import { jsonResponse, networkError, problemResponse } from "../testing/fake-fetch.js";

const DETAIL = "W1 is wrong";
/**
 * A 1 x 1 problem tagged by its X entry, which the fake server echoes back as the loss; a W1 of
 * no rows is refused.
 */
const problem = (tag) => ({ X: [[tag]], Y: [[0]], W1: [[1]], W2: [[1]] });
const wrong = (tag) => ({ ...problem(tag), W1: [] });

function refusal(at) {
  return {
    type: "urn:gradserve:problem:invalid-request",
    title: "Invalid request",
    status: 422,
    detail: DETAIL,
    errors: [{ pointer: `${at}/W1`, detail: DETAIL }],
    error_count: 1,
  };
}

/**
 * A fake gradserve recording [path, problem count] for each request; `refuse(problems)` may give
 * a status for a whole batch ("network" for a failed connection).
 */
function fakeServer(refuse = () => undefined) {
  const sent = [];
  const answer = (body, at) =>
    body.W1.length === 0
      ? refusal(at)
      : { loss: body.X[0][0], gradients: {}, dtype: body.options?.dtype ?? "float64" };
  const fetch = async (url, init) => {
    const path = new URL(url).pathname;
    const body = JSON.parse(init.body);
    if (path === "/v1/gradients/batch") {
      sent.push([path, body.problems.length]);
      const status = refuse(body.problems);
      if (status === "network") throw networkError();
      if (status !== undefined) return problemResponse({ title: "refused", status });
      const results = body.problems.map((p, i) => answer(p, `/problems/${i}`));
      return jsonResponse(200, { results });
    }
    sent.push([path, 1]);
    const result = answer(body, "");
    return "status" in result ? problemResponse(result) : jsonResponse(200, result);
  };
  return { fetch, sent };
}

const tags = (n) => Array.from({ length: n }, (_, tag) => problem(tag));
const losses = (outcomes) => outcomes.map((o) => (o.ok ? o.value.loss : o.error.name));
const NO_RETRY = { maxAttempts: 1 };

test("small problems go in one batch per slot, results in order", async () => {
  const server = fakeServer();
  const client = new GradserveClient({ fetch: server.fetch });
  const outcomes = await client.gradientsMany(tags(10), { concurrency: 4 });
  assert.deepEqual(server.sent.sort(), [
    ["/v1/gradients/batch", 1],
    ["/v1/gradients/batch", 3],
    ["/v1/gradients/batch", 3],
    ["/v1/gradients/batch", 3],
  ]);
  assert.deepEqual(losses(outcomes), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("options reach every batched problem", async () => {
  const server = fakeServer();
  const client = new GradserveClient({ fetch: server.fetch });
  const outcomes = await client.gradientsMany(tags(3), { dtype: "float32" });
  assert.deepEqual(
    outcomes.map((o) => o.value.dtype),
    ["float32", "float32", "float32"],
  );
});

test("batch: false, binary: true and a single problem go one by one", async () => {
  for (const [problems, options] of [
    [tags(3), { batch: false }],
    [tags(3), { binary: true }],
    [tags(1), {}],
  ]) {
    const server = fakeServer();
    const client = new GradserveClient({ fetch: server.fetch });
    await client.gradientsMany(problems, options);
    const expected = problems.map(() => ["/v1/gradients", 1]);
    assert.deepEqual(server.sent, expected, JSON.stringify(options));
  }
});

test("a refused problem's error points into the problem, batched or not", async () => {
  const problems = [problem(0), wrong(1), problem(2)];
  for (const batch of [undefined, false]) {
    const client = new GradserveClient({ fetch: fakeServer().fetch });
    const outcomes = await client.gradientsMany(problems, { batch, concurrency: 1 });
    assert.deepEqual(losses(outcomes), [0, "ValidationError", 2]);
    const { error } = outcomes[1];
    assert.ok(error instanceof ValidationError);
    assert.deepEqual(error.errors, [{ pointer: "/W1", detail: DETAIL }]);
    assert.equal(error.message, `422 Invalid request: ${DETAIL}`);
    const path = batch === false ? "/v1/gradients" : "/v1/gradients/batch";
    assert.equal(error.request.url, `http://127.0.0.1:8000${path}`);
  }
});

test("a batch over a budget is sent again in halves", async () => {
  const server = fakeServer((problems) => (problems.length > 2 ? 413 : undefined));
  const client = new GradserveClient({ fetch: server.fetch });
  const outcomes = await client.gradientsMany(tags(7), { concurrency: 1 });
  assert.deepEqual(
    server.sent.map(([, n]) => n),
    [7, 3, 1, 2, 4, 2, 2],
  );
  assert.deepEqual(losses(outcomes), [0, 1, 2, 3, 4, 5, 6]);
});

test("a service without the batch endpoint gets the problems one by one", async () => {
  const server = fakeServer(() => 404);
  const client = new GradserveClient({ fetch: server.fetch });
  const outcomes = await client.gradientsMany(tags(3), { concurrency: 1 });
  assert.deepEqual(server.sent, [
    ["/v1/gradients/batch", 3],
    ["/v1/gradients", 1],
    ["/v1/gradients", 1],
    ["/v1/gradients", 1],
  ]);
  assert.deepEqual(losses(outcomes), [0, 1, 2]);
});

test("a batch that fails is the error of each of its problems, the others kept", async () => {
  const server = fakeServer((problems) => (problems.length === 2 ? 503 : undefined));
  const client = new GradserveClient({ fetch: server.fetch, retry: NO_RETRY });
  const outcomes = await client.gradientsMany(tags(5), { concurrency: 2 }); // parts of 3 and 2
  assert.deepEqual(losses(outcomes), [0, 1, 2, "ServerError", "ServerError"]);
  assert.ok(outcomes[3].error instanceof ServerError);
  const unreachable = fakeServer(() => "network");
  const down = new GradserveClient({ fetch: unreachable.fetch, retry: NO_RETRY });
  const failed = await down.gradientsMany(tags(3));
  assert.ok(failed.every((o) => o.error instanceof ConnectError));
});
