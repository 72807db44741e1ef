// Every contract vector (tests/contract/*.json) through the client against a live server, and
// the checker itself: it must be able to fail.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ClientError, ValidationError } from "../src/index.js";
import { runVector } from "../testing/run-vector.js";
import { startServer } from "../testing/server.js";
import { checkAnswer, isGradientsCall, loadVectors, mismatches } from "../testing/vectors.js";

const vectors = loadVectors();
let server;

before(async () => {
  server = await startServer();
});
after(() => server?.stop());

test("the contract vectors are there", () => {
  assert.ok(vectors.length > 0, "no tests/contract/*.json");
});

for (const vector of vectors) {
  test(vector.name, async () => {
    const answer = await runVector(server.url, vector);
    const wrong = checkAnswer(vector, answer.status, answer.contentType, answer.body);
    assert.deepEqual(wrong, [], `${vector.file} through ${answer.call}:\n${wrong.join("\n")}`);
    if (answer.error) {
      const Expected = [400, 422].includes(answer.status) ? ValidationError : ClientError;
      assert.ok(answer.error instanceof Expected, `${answer.error.name} for ${answer.status}`);
    }
  });
}

test("a changed expected number is reported", async () => {
  const vector = vectors.find((v) => isGradientsCall(v) && v.response.status === 200);
  const answer = await runVector(server.url, vector);
  assert.deepEqual(checkAnswer(vector, answer.status, answer.contentType, answer.body), []);

  const changed = structuredClone(vector);
  changed.response.json.gradients.W1[0][0] += 1;
  const wrong = checkAnswer(changed, answer.status, answer.contentType, answer.body);
  assert.equal(wrong.length, 1);
  assert.match(wrong[0], /^\/gradients\/W1\/0\/0: /);
});

test("a changed expected pointer, title or status is reported", async () => {
  const vector = vectors.find((v) => v.response.problem?.pointers.length > 0);
  const answer = await runVector(server.url, vector);
  const changed = structuredClone(vector);
  changed.response.status = 400;
  changed.response.problem.title = "Something else";
  changed.response.problem.pointers[0] = "/nowhere";
  const wrong = checkAnswer(changed, answer.status, answer.contentType, answer.body);
  assert.equal(wrong.length, 3, wrong.join("\n"));
});

test("the checker follows vectors.py's rule", () => {
  assert.deepEqual(mismatches({ a: [1, 2.5] }, { a: [1, 2.5] }, 0, 0), []);
  assert.deepEqual(mismatches(1.0000001, 1, 1e-6, 0), []);
  assert.deepEqual(mismatches(1.1, 1, 0, 0.1 + 1e-12), []);
  assert.equal(mismatches(1.1, 1, 0, 0.09).length, 1);
  assert.equal(mismatches(Infinity, 1e308, 1, 1).length, 1, "a non-finite answer never matches");
  assert.equal(mismatches(true, 1, 0, 0).length, 1, "a boolean is not a number");
  assert.equal(mismatches("1", 1, 0, 0).length, 1);
  assert.equal(mismatches(1, true, 0, 0).length, 1);
  assert.equal(mismatches({ a: 1, b: 2 }, { a: 1 }, 0, 0).length, 1, "an extra key");
  assert.equal(mismatches({}, { a: 1 }, 0, 0).length, 1, "a missing key");
  assert.equal(mismatches([[1]], [[1], [2]], 0, 0).length, 1, "a missing row");
  assert.equal(mismatches(null, [], 0, 0).length, 1);
  assert.deepEqual(mismatches(null, null, 0, 0), []);
  assert.throws(() => mismatches(1, undefined, 0, 0), TypeError);
});

test("checkAnswer compares status, media type, type, title and pointers of an error", () => {
  const vector = {
    response: { status: 422, problem: { type: "t", title: "T", pointers: ["/X", "/W1/0/0"] } },
  };
  const body = { type: "t", title: "T", errors: [{ pointer: "/X" }, { pointer: "/W1/0/0" }] };
  assert.deepEqual(checkAnswer(vector, 422, "application/problem+json", body), []);
  assert.equal(checkAnswer(vector, 422, "application/json", body).length, 1);
  const reordered = { ...body, errors: [...body.errors].reverse() };
  assert.equal(checkAnswer(vector, 422, "application/problem+json", reordered).length, 2);
});
