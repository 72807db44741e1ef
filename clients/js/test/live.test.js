// The client against a live gradserve: the worked example, real error answers, a real network
// failure, and the README's example output.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { ClientError, ConnectError, GradserveClient, ValidationError } from "../src/index.js";
import { freePort, startServer } from "../testing/server.js";

// The worked example of service/api/examples.py: its request, its answer, and its shape mismatch.
const REQUEST = {
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
const RESPONSE = {
  loss: 2.0,
  gradients: {
    Y_pred: [[2.0], [2.0]],
    W2: [[10.0], [2.0], [14.0]],
    H_relu: [
      [2.0, -2.0, 2.0],
      [2.0, -2.0, 2.0],
    ],
    H: [
      [2.0, -2.0, 0.0],
      [2.0, 0.0, 2.0],
    ],
    W1: [
      [8.0, -2.0, 6.0],
      [2.0, -4.0, -2.0],
    ],
  },
  dtype: "float64",
  shapes: { N: 2, D_in: 2, H: 3, D_out: 1 },
};
const SHAPE_MISMATCH = { ...REQUEST, W1: [[1, -1, 2]] };
const MISMATCH_DETAIL =
  "X has 2 columns but W1 has 1 row (shapes: X 2 x 2, Y 2 x 1, W1 1 x 3, W2 3 x 1)";
const SHAPE_MISMATCH_PROBLEM = {
  type: "urn:gradserve:problem:invalid-request",
  title: "Invalid request",
  status: 422,
  detail: MISMATCH_DETAIL,
  errors: [{ pointer: "/W1", detail: MISMATCH_DETAIL }],
  error_count: 1,
};

let server;
let client;

before(async () => {
  server = await startServer();
  client = new GradserveClient({ baseUrl: server.url });
});
after(() => server?.stop());

test("health answers ok", async () => {
  assert.deepEqual(await client.health(), { status: "ok" });
});

test("the worked example gives the expected loss and gradients", async () => {
  assert.deepEqual(await client.gradients(REQUEST), RESPONSE);
});

test("returnForward adds the forward pass; dtype float32 computes in float32", async () => {
  const answer = await client.gradients(REQUEST, { returnForward: true });
  assert.deepEqual(answer.forward, {
    H: [
      [3, 1, 0],
      [2, -4, 7],
    ],
    H_relu: [
      [3, 1, 0],
      [2, 0, 7],
    ],
    Y_pred: [[2], [9]],
  });
  assert.deepEqual({ ...answer, forward: undefined }, { ...RESPONSE, forward: undefined });
  const float32 = await client.gradients(REQUEST, { dtype: "float32" });
  assert.deepEqual(float32, { ...RESPONSE, dtype: "float32" });
});

test("binary: true gives the JSON answer's form and numbers, in float64 and float32", async () => {
  // Scaled by 0.1, float32 values are not short decimals: the binary answer must still agree.
  const tenth = Object.fromEntries(
    Object.entries(REQUEST).map(([name, rows]) => [
      name,
      rows.map((row) => row.map((x) => x / 10)),
    ]),
  );
  for (const options of [{ returnForward: true }, { returnForward: true, dtype: "float32" }]) {
    const binary = await client.gradients(tenth, { ...options, binary: true });
    assert.deepEqual(binary, await client.gradients(tenth, options));
  }
  const raw = await client.request("POST", "/v1/gradients", {
    json: REQUEST,
    headers: { Accept: "application/vnd.safetensors" },
  });
  assert.deepEqual(Array.from(raw.tensors["gradients.W1"].data), RESPONSE.gradients.W1.flat());
});

test("a shape mismatch throws a ValidationError carrying the problem details", async () => {
  const error = await client.gradients(SHAPE_MISMATCH).catch((e) => e);
  assert.ok(error instanceof ValidationError);
  assert.equal(error.status, 422);
  assert.equal(error.type, SHAPE_MISMATCH_PROBLEM.type);
  assert.equal(error.title, SHAPE_MISMATCH_PROBLEM.title);
  assert.equal(error.detail, MISMATCH_DETAIL);
  assert.deepEqual(error.errors, SHAPE_MISMATCH_PROBLEM.errors);
  assert.deepEqual(error.problem, SHAPE_MISMATCH_PROBLEM);
  assert.equal(error.response.headers.get("content-type"), "application/problem+json");
  assert.equal(error.attempts, 1);
  assert.equal(error.message, `422 Invalid request: ${MISMATCH_DETAIL}`);
});

test("a method the endpoint does not take is a ClientError whose response has Allow", async () => {
  const error = await client.request("GET", "/v1/gradients").catch((e) => e);
  assert.ok(error instanceof ClientError && !(error instanceof ValidationError));
  assert.equal(error.status, 405);
  assert.equal(error.title, "Method Not Allowed");
  assert.equal(error.response.headers.get("allow"), "POST");
});

test("gradientsMany against the server: the wrong problem fails alone", async () => {
  const outcomes = await client.gradientsMany([REQUEST, SHAPE_MISMATCH, REQUEST], {
    concurrency: 2,
  });
  assert.deepEqual(outcomes[0], { ok: true, value: RESPONSE });
  assert.deepEqual(outcomes[2], { ok: true, value: RESPONSE });
  assert.equal(outcomes[1].ok, false);
  assert.deepEqual(outcomes[1].error.problem, SHAPE_MISMATCH_PROBLEM);
});

test("the generic request reads other endpoints, such as the OpenAPI document", async () => {
  const openapi = await client.request("GET", "/openapi.json");
  assert.ok("/v1/gradients" in openapi.paths);
});

test("nothing listening is a ConnectError after the retries", async () => {
  const port = await freePort();
  const unreachable = new GradserveClient({
    baseUrl: `http://127.0.0.1:${port}`,
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
  });
  const error = await unreachable.health().catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.attempts, 3);
  assert.match(error.message, /ECONNREFUSED/);
});

const README_EXAMPLES = {
  "../README.md": ["example", "grading"],
  "../../../README.md": ["example"],
};
const FENCE = "```";

for (const [readmePath, scripts] of Object.entries(README_EXAMPLES)) {
  for (const script of scripts) {
    test(`examples/${script}.mjs prints what ${readmePath} shows`, async () => {
      const readme = readFileSync(new URL(readmePath, import.meta.url), "utf8");
      const command = `${FENCE}sh\nnode examples/${script}\\.mjs\n${FENCE}`;
      const match = readme.match(
        new RegExp(`${command}\\s*\n${FENCE}text\n([\\s\\S]+?)\n${FENCE}`),
      );
      assert.ok(match, `${readmePath}: no node examples/${script}.mjs block, then its output`);
      const { stdout } = await promisify(execFile)(process.execPath, [`examples/${script}.mjs`], {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        env: { ...process.env, GRADSERVE_URL: server.url },
      });
      assert.equal(stdout.trim(), match[1].trim());
    });
  }
}
