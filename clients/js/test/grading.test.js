// The grading methods and the batches against a live gradserve. Expected numbers come from the
// service's golden example (service/api/examples.py), from a forward and backward pass written
// here in plain JavaScript, or from the contract vectors; never from the client.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ClientError, GradserveClient, ProblemError, ValidationError } from "../src/index.js";
import { startServer } from "../testing/server.js";
import { checkAnswer, isGradientsCall, loadVectors } from "../testing/vectors.js";

// PROBLEM_SPEC and PROBLEM of service/api/examples.py.
const SPEC = { seed: "student-042", shape: { N: 2, D_in: 2, H: 3, D_out: 1 } };
const GOLDEN = {
  problem_id:
    "gsp1.eyJzZWVkIjoic3R1ZGVudC0wNDIiLCJzcGVjIjp7IkRfaW4iOjIsIkRfb3V0IjoxLCJIIjozLCJOIjoyLCJtYX" +
    "hfYWJzIjozLCJ2YWx1ZXMiOiJpbnRlZ2VycyIsInplcm9zX2luX0giOiJhdm9pZCJ9fQ",
  spec: { ...SPEC, values: "integers", max_abs: 3, scale: 1, zeros_in_H: "avoid" },
  X: [
    [-3, 3],
    [1, 1],
  ],
  Y: [[0], [0]],
  W1: [
    [-2, 2, 0],
    [0, -3, 3],
  ],
  W2: [[-2], [3], [-2]],
};
const SHAPE = { N: 3, D_in: 2, H: 4, D_out: 2 }; // N * D_out = 6: half is no mean
const QUANTITIES = ["loss", "Y_pred", "W2", "H_relu", "H", "W1"];
const WORKED = {
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

const matmul = (A, B) =>
  A.map((row) => B[0].map((_, j) => row.reduce((sum, a, k) => sum + a * B[k][j], 0)));
const transpose = (A) => A[0].map((_, j) => A.map((row) => row[j]));
const map2 = (A, B, f) => A.map((row, i) => row.map((a, j) => f(a, B[i][j])));

/** The right loss and gradients, by the chain rule written out here. */
function rightAnswers({ X, Y, W1, W2 }) {
  const H = matmul(X, W1);
  const Hrelu = H.map((row) => row.map((h) => Math.max(h, 0)));
  const Ypred = matmul(Hrelu, W2);
  const dYpred = map2(Ypred, Y, (p, y) => 2 * (p - y));
  const dHrelu = matmul(dYpred, transpose(W2));
  const dH = map2(dHrelu, H, (g, h) => (h > 0 ? g : 0));
  const loss = map2(Ypred, Y, (p, y) => (p - y) ** 2).flat().reduce((a, b) => a + b, 0);
  return {
    loss,
    gradients: {
      Y_pred: dYpred,
      W2: matmul(transpose(Hrelu), dYpred),
      H_relu: dHrelu,
      H: dH,
      W1: matmul(transpose(X), dH),
    },
  };
}

function withoutFactor2(problem) {
  const right = rightAnswers(problem);
  const Y_pred = right.gradients.Y_pred.map((row) => row.map((g) => g / 2));
  return { ...right, gradients: { ...right.gradients, Y_pred } };
}

let server;
let client;

before(async () => {
  server = await startServer();
  client = new GradserveClient({ baseUrl: server.url });
});
after(() => server?.stop());

test("createProblem gives the golden problem", async () => {
  assert.deepEqual(await client.createProblem(SPEC), GOLDEN);
});

test("the right answers get full marks, by problem, by id and inline", async () => {
  const problem = await client.createProblem({ seed: "full-marks", shape: SHAPE });
  const right = rightAnswers(problem);
  const { X, Y, W1, W2 } = problem;
  const ways = [
    [problem, problem.problem_id],
    [problem.problem_id, problem.problem_id],
    [{ X, Y, W1, W2 }, undefined],
  ];
  for (const [given, problemId] of ways) {
    const grade = await client.grade(given, right);
    assert.equal(grade.score, 6);
    assert.equal(grade.max_score, 6);
    assert.deepEqual(Object.keys(grade.quantities), QUANTITIES);
    for (const name of QUANTITIES) assert.equal(grade.quantities[name].status, "correct", name);
    assert.equal(grade.problem_id, problemId);
  }
});

test("a missing factor 2 is diagnosed where it is, with the options sent", async () => {
  const problem = await client.createProblem({ seed: "slip", shape: SHAPE });
  const grade = await client.grade(problem, withoutFactor2(problem), {
    rtol: 1e-6,
    atolFactor: 0,
  });
  const Y_pred = grade.quantities.Y_pred;
  assert.equal(Y_pred.status, "incorrect");
  const wrong = rightAnswers(problem).gradients.Y_pred.flat().filter((g) => g !== 0).length;
  assert.equal(Y_pred.wrong_count, wrong);
  const codes = Y_pred.diagnoses.map((d) => d.code);
  assert.ok(codes.includes("missing_factor_2") && !codes.includes("mean_instead_of_sum"), codes);
  assert.equal(grade.score, 5);
  assert.deepEqual([grade.tolerance.rtol, grade.tolerance.atol_factor], [1e-6, 0]);
});

test("weights and Chinese messages", async () => {
  const grade = await client.grade(WORKED, { loss: 0 }, { weights: { loss: 4 }, language: "zh" });
  assert.equal(grade.language, "zh");
  assert.equal(grade.max_score, 9);
  assert.match(grade.quantities.W1.message, /未提交/);
});

test("format gradescope and prairielearn, gradable or not", async () => {
  const problem = await client.createProblem({ seed: "formats", shape: SHAPE });
  const slip = withoutFactor2(problem);
  const gradescope = await client.grade(problem, slip, {
    format: "gradescope",
    visibility: "after_published",
  });
  assert.equal(gradescope.score, 5);
  assert.equal(gradescope.visibility, "after_published");
  assert.deepEqual(
    gradescope.tests.map((t) => t.status),
    ["passed", "failed", "passed", "passed", "passed", "passed"],
  );
  const prairielearn = await client.grade(problem, rightAnswers(problem), {
    format: "prairielearn",
  });
  assert.equal(prairielearn.gradable, true);
  assert.equal(prairielearn.score, 1);
  const ungradable = await client.grade(problem, { loss: "two" }, { format: "prairielearn" });
  assert.equal(ungradable.gradable, false);
  assert.ok(ungradable.format_errors.some((e) => e.includes("submission.loss")));
  const error = await client.grade(problem, { loss: "two" }).catch((e) => e);
  assert.ok(error instanceof ValidationError);
  assert.deepEqual(
    error.errors.map((e) => e.pointer),
    ["/submission/loss"],
  );
});

test("reveal is refused by default with a ClientError", async () => {
  const error = await client.grade(WORKED, { loss: 2 }, { reveal: true }).catch((e) => e);
  assert.ok(error instanceof ClientError && !(error instanceof ValidationError));
  assert.equal(error.status, 403);
});

test("gradeBatch grades in order, with class-wide counts", async () => {
  const problem = await client.createProblem({ seed: "batch", shape: SHAPE });
  const right = rightAnswers(problem);
  const batch = await client.gradeBatch([right, withoutFactor2(problem), { loss: right.loss }], {
    problem,
  });
  assert.deepEqual(
    batch.results.map((g) => [g.score, g.problem_id]),
    [6, 5, 1].map((score) => [score, problem.problem_id]),
  );
  assert.deepEqual(batch.diagnosis_counts, { missing_factor_2: 1 });
  assert.deepEqual(batch.diagnosis_counts_by_quantity, { Y_pred: { missing_factor_2: 1 } });
  assert.deepEqual(batch.status_counts.Y_pred, { correct: 1, incorrect: 1, missing: 1 });
});

test("a gradeBatch item that cannot be graded is its ProblemError", async () => {
  const overflowing = { X: [[1e200]], Y: [[1]], W1: [[1e200]], W2: [[1e200]] };
  const batch = await client.gradeBatch([{ loss: 2 }, { loss: 2 }], {
    problem: WORKED,
    problems: [null, overflowing],
  });
  assert.equal(batch.results[0].quantities.loss.status, "correct");
  const error = batch.results[1];
  assert.ok(error instanceof ValidationError, String(error));
  assert.equal(error.status, 422);
  assert.equal(error.type, "urn:gradserve:problem:non-finite-result");
  assert.equal(error.request.url, `${server.url}/v1/grade/batch`);
  await assert.rejects(client.gradeBatch([{}, {}], { problems: [WORKED] }), RangeError);
});

test("gradientsBatch: one request, errors pointing into the batch", async () => {
  const wrong = { ...WORKED, W1: [[1, -1, 2]] };
  const [worked, mismatch] = await client.gradientsBatch([WORKED, wrong]);
  assert.equal(worked.ok, true);
  assert.deepEqual(worked.value.gradients, rightAnswers(WORKED).gradients);
  assert.ok(mismatch.error instanceof ValidationError);
  assert.deepEqual(
    mismatch.error.errors.map((e) => e.pointer),
    ["/problems/1/W1"],
  );
  const empty = await client.gradientsBatch([]).catch((e) => e);
  assert.ok(empty instanceof ValidationError);
});

test("every gradients contract vector through gradientsMany's batches", async () => {
  const vectors = loadVectors().filter(isGradientsCall);
  assert.ok(vectors.length > 10);
  const outcomes = await client.gradientsMany(vectors.map((v) => v.request.json));
  for (const [index, vector] of vectors.entries()) {
    const outcome = outcomes[index];
    const wrong = outcome.ok
      ? checkAnswer(vector, 200, "application/json", outcome.value)
      : outcome.error instanceof ProblemError
        ? checkAnswer(
            vector,
            outcome.error.status,
            outcome.error.response.headers.get("content-type"),
            outcome.error,
          )
        : [String(outcome.error)];
    assert.deepEqual(wrong, [], `${vector.file}:\n${wrong.join("\n")}`);
  }
});
