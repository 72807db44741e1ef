// gradientsMany one request per problem (batch: false): order kept, concurrency capped, one
// failure never losing the others. Through /v1/gradients/batch: batch.test.js.

import assert from "node:assert/strict";
import { test } from "node:test";

import { GradserveClient, ValidationError } from "../src/index.js";
import { jsonResponse, problemResponse } from "../testing/fake-fetch.js";

/** A 1 x 1 problem tagged by its X entry, which the fake server echoes back as the loss. */
const problem = (tag) => ({ X: [[tag]], Y: [[0]], W1: [[1]], W2: [[1]] });

/**
 * A fake server: answers each problem after a delay (later problems sooner), with its tag as the
 * loss, and a 422 to the problem tagged `failing`; it tracks the most requests in flight.
 */
function fakeServer({ failing } = {}) {
  const state = { inFlight: 0, mostInFlight: 0, calls: 0 };
  state.fetch = async (_url, init) => {
    state.calls += 1;
    state.inFlight += 1;
    state.mostInFlight = Math.max(state.mostInFlight, state.inFlight);
    const tag = JSON.parse(init.body).X[0][0];
    await new Promise((resolve) => setTimeout(resolve, 30 - tag * 2));
    state.inFlight -= 1;
    if (tag === failing) {
      return problemResponse({
        type: "urn:gradserve:problem:invalid-request",
        title: "Invalid request",
        status: 422,
        detail: "W1 is wrong",
        errors: [{ pointer: "/W1", detail: "W1 is wrong" }],
        error_count: 1,
      });
    }
    return jsonResponse(200, { loss: tag });
  };
  return state;
}

test("results come back in input order, whatever order they finish in", async () => {
  const server = fakeServer();
  const client = new GradserveClient({ fetch: server.fetch });
  const outcomes = await client.gradientsMany([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(problem), {
    batch: false,
  });
  assert.deepEqual(
    outcomes,
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((tag) => ({ ok: true, value: { loss: tag } })),
  );
});

test("at most `concurrency` requests are in flight, 4 by default", async () => {
  for (const [concurrency, expected] of [
    [undefined, 4],
    [1, 1],
    [3, 3],
    [50, 12],
  ]) {
    const server = fakeServer();
    const client = new GradserveClient({ fetch: server.fetch });
    const problems = Array.from({ length: 12 }, (_, tag) => problem(tag));
    await client.gradientsMany(problems, { concurrency, batch: false });
    assert.equal(server.mostInFlight, expected, `concurrency ${concurrency}`);
    assert.equal(server.calls, 12);
  }
});

test("one failing problem is reported in its place; the others keep their results", async () => {
  const server = fakeServer({ failing: 2 });
  const client = new GradserveClient({ fetch: server.fetch });
  const outcomes = await client.gradientsMany([0, 1, 2, 3, 4].map(problem), {
    concurrency: 2,
    batch: false,
  });
  assert.deepEqual(
    outcomes.map((outcome) => outcome.ok),
    [true, true, false, true, true],
  );
  assert.deepEqual(
    outcomes.filter((outcome) => outcome.ok).map((outcome) => outcome.value.loss),
    [0, 1, 3, 4],
  );
  const { error } = outcomes[2];
  assert.ok(error instanceof ValidationError);
  assert.deepEqual(
    error.errors.map((e) => e.pointer),
    ["/W1"],
  );
});

test("options reach every problem; any iterable will do; none gives []", async () => {
  const bodies = [];
  const fetch = async (_url, init) => {
    bodies.push(JSON.parse(init.body));
    return jsonResponse(200, {});
  };
  const client = new GradserveClient({ fetch });
  function* problems() {
    yield problem(1);
    yield problem(2);
  }
  await client.gradientsMany(problems(), { dtype: "float32", returnForward: true, batch: false });
  assert.deepEqual(
    bodies.map((body) => body.options),
    Array(2).fill({ dtype: "float32", return_forward: true }),
  );
  assert.deepEqual(await client.gradientsMany([]), []);
});

test("a concurrency that is not a positive integer is refused", async () => {
  const client = new GradserveClient({ fetch: async () => jsonResponse(200, {}) });
  for (const concurrency of [0, -1, 1.5, NaN, "4"]) {
    await assert.rejects(client.gradientsMany([problem(1)], { concurrency }), RangeError);
  }
});
