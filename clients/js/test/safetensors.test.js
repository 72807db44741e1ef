// Safetensors answers: the strict decoder on bytes built here by hand, golden answers written
// by the official Python package (test/golden/make_golden.py), and `binary: true` end to end
// through an injected fetch.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  GradserveClient,
  GradserveError,
  ValidationError,
  decodeSafetensors,
} from "../src/index.js";
import { gradientsAnswer } from "../src/safetensors.js";
import { jsonResponse, problemResponse, scriptedFetch } from "../testing/fake-fetch.js";

const SAFETENSORS = "application/vnd.safetensors";
const ACCEPT_BINARY =
  "application/vnd.safetensors, application/problem+json, application/json;q=0.5";
const PROBLEM = { X: [[1, 2]], Y: [[1]], W1: [[1], [1]], W2: [[1]] };

const golden = (name, extension) =>
  readFileSync(new URL(`golden/${name}.${extension}`, import.meta.url));
const goldenJson = (name) => JSON.parse(golden(name, "json").toString("utf8"));

/** A body: the header's length (that of the header unless given), the header, the buffer. */
function body(header, buffer = new Uint8Array(0), { length, padding = 0 } = {}) {
  const text =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(JSON.stringify(header) + " ".repeat(padding));
  const bytes = new Uint8Array(8 + text.length + buffer.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(length ?? text.length), true);
  bytes.set(text, 8);
  bytes.set(buffer, 8 + text.length);
  return bytes.buffer;
}

/** Little-endian float64 (size 8) or float32 (size 4) entries, written one by one. */
function entries(size, ...values) {
  const bytes = new Uint8Array(size * values.length);
  const view = new DataView(bytes.buffer);
  values.forEach((value, i) =>
    size === 8 ? view.setFloat64(8 * i, value, true) : view.setFloat32(4 * i, value, true),
  );
  return bytes;
}

function concat(...parts) {
  const bytes = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  parts.reduce((at, part) => (bytes.set(part, at), at + part.length), 0);
  return bytes;
}

const ONE = { dtype: "F64", shape: [1], data_offsets: [0, 8] };

test("decodes F64, F32 and 0-d tensors in any order, metadata, a padded header", () => {
  const header = {
    b: { dtype: "F32", shape: [1, 3], data_offsets: [0, 12] },
    a: { dtype: "F64", shape: [2, 2], data_offsets: [12, 44] },
    s: { dtype: "F64", shape: [], data_offsets: [44, 52] },
    __metadata__: { dtype: "float32" },
  };
  const buffer = concat(
    entries(4, 0.1, -2, 3.5),
    entries(8, 0.1, -0, 5e-324, -1e300),
    entries(8, 7),
  );
  const { tensors, metadata } = decodeSafetensors(body(header, buffer, { padding: 5 }));
  assert.deepEqual(metadata, { dtype: "float32" });
  assert.deepEqual(Object.keys(tensors), ["b", "a", "s"]);
  assert.ok(tensors.b.data instanceof Float32Array);
  assert.deepEqual(Array.from(tensors.b.data), [Math.fround(0.1), -2, 3.5]);
  assert.ok(tensors.a.data instanceof Float64Array);
  assert.deepEqual(Array.from(tensors.a.data), [0.1, -0, 5e-324, -1e300]);
  assert.ok(Object.is(tensors.a.data[1], -0), "-0 stays -0");
  assert.deepEqual(tensors.a.shape, [2, 2]);
  assert.deepEqual(
    { ...tensors.s, data: Array.from(tensors.s.data) },
    {
      dtype: "F64",
      shape: [],
      data: [7],
    },
  );
});

test("a Node Buffer or any typed array over the bytes is read too; no metadata is {}", () => {
  const bytes = new Uint8Array(body({ x: ONE }, entries(8, 1.5)));
  const framed = new Uint8Array(bytes.length + 3);
  framed.set(bytes, 3);
  for (const input of [Buffer.from(bytes), framed.subarray(3)]) {
    const { tensors, metadata } = decodeSafetensors(input);
    assert.deepEqual(Array.from(tensors.x.data), [1.5]);
    assert.deepEqual(metadata, {});
  }
  assert.throws(() => decodeSafetensors("not bytes"), TypeError);
});

const REFUSALS = [
  ["too short", new Uint8Array(7).buffer, /7 bytes, fewer than the 8 of the header length/],
  ["a header over the cap", body({}, undefined, { length: 65_537 }), /a header of 65537 bytes/],
  [
    "a header beyond the body",
    body({}, undefined, { length: 50 }),
    /a header of 50 bytes in a body of 10/,
  ],
  ["a header not an object", body([1]), /must be a JSON object, starting with "\{"/],
  [
    "a header with a leading space",
    body(new TextEncoder().encode(' {"x":1}')),
    /starting with "\{"/,
  ],
  ["a header not UTF-8", body(new Uint8Array([0x7b, 0xff, 0x7d])), /the header is not UTF-8/],
  ["a header not JSON", body(new TextEncoder().encode('{"x": }')), /the header is not JSON/],
  [
    "metadata not strings",
    body({ __metadata__: { k: 1 } }),
    /__metadata__ must be an object of strings/,
  ],
  ["metadata not an object", body({ __metadata__: ["k"] }), /__metadata__ must be an object/],
  [
    "an entry with a key too many",
    body({ x: { ...ONE, order: "C" } }, entries(8, 1)),
    /"x" must be exactly/,
  ],
  [
    "an entry without dtype",
    body({ x: { shape: [1], data_offsets: [0, 8] } }, entries(8, 1)),
    /"x" must be exactly/,
  ],
  ["dtype F16", body({ x: { ...ONE, dtype: "F16" } }, entries(8, 1)), /only F64 and F32/],
  ["dtype toString", body({ x: { ...ONE, dtype: "toString" } }, entries(8, 1)), /only F64 and F32/],
  ["a shape not integers", body({ x: { ...ONE, shape: [0.5] } }, entries(8, 1)), /malformed shape/],
  ["negative offsets", body({ x: { ...ONE, data_offsets: [-8, 0] } }, entries(8, 1)), /malformed/],
  ["a size not the shape's", body({ x: { ...ONE, shape: [2] } }, entries(8, 1)), /takes 16 bytes/],
  [
    "a gap",
    body({ x: ONE, y: { ...ONE, data_offsets: [16, 24] } }, entries(8, 1, 2, 3)),
    /a gap or an overlap at byte 16/,
  ],
  ["an overlap", body({ x: ONE, y: ONE }, entries(8, 1, 2)), /a gap or an overlap at byte 0/],
  [
    "trailing bytes",
    body({ x: ONE }, entries(8, 1, 2)),
    /the tensors take 8 bytes, the buffer holds 16/,
  ],
  [
    "a tensor beyond the buffer",
    body({ x: { ...ONE, shape: [2], data_offsets: [0, 16] } }, entries(8, 1)),
    /the tensors take 16 bytes, the buffer holds 8/,
  ],
];

for (const [name, bytes, message] of REFUSALS) {
  test(`refused: ${name}`, () => {
    assert.throws(
      () => decodeSafetensors(bytes),
      (error) =>
        error instanceof GradserveError &&
        /^not safetensors: /.test(error.message) &&
        message.test(error.message),
    );
  });
}

for (const name of ["answer-float64", "answer-float32"]) {
  test(`${name}.safetensors, written by the official package, reads as ${name}.json`, () => {
    const decoded = decodeSafetensors(golden(name, "safetensors"));
    const expected = goldenJson(name);
    assert.deepEqual(decoded.metadata, { dtype: expected.dtype });
    const Typed = expected.dtype === "float32" ? Float32Array : Float64Array;
    assert.ok(Object.values(decoded.tensors).every((tensor) => tensor.data instanceof Typed));
    assert.deepEqual(gradientsAnswer(decoded), expected);
  });
}

test("an answer missing a gradient is refused", () => {
  const { tensors, metadata } = decodeSafetensors(golden("answer-float64", "safetensors"));
  delete tensors["gradients.W1"];
  assert.throws(() => gradientsAnswer({ tensors, metadata }), /lacks gradients\.W1/);
});

const binaryResponse = (bytes) => new Response(bytes, { headers: { "content-type": SAFETENSORS } });

test("binary: true asks for safetensors and gives the JSON answer's form and numbers", async () => {
  const fetch = scriptedFetch(
    ["answer-float64", "answer-float32"].map((name) => binaryResponse(golden(name, "safetensors"))),
  );
  const client = new GradserveClient({ fetch });
  const float64 = await client.gradients(PROBLEM, { binary: true, returnForward: true });
  const float32 = await client.gradients(PROBLEM, { binary: true, dtype: "float32" });
  assert.deepEqual(float64, goldenJson("answer-float64"));
  assert.deepEqual(float32, goldenJson("answer-float32"));
  for (const { init } of fetch.calls) {
    assert.equal(init.headers.Accept, ACCEPT_BINARY);
    assert.equal(init.headers["Content-Type"], "application/json");
  }
  assert.deepEqual(JSON.parse(fetch.calls[1].init.body).options, { dtype: "float32" });
});

test("binary: true still reads a JSON answer, and error answers as problem details", async () => {
  const expected = goldenJson("answer-float64");
  const problem = {
    type: "urn:gradserve:problem:invalid-request",
    title: "Invalid request",
    status: 422,
    detail: "d",
    errors: [{ pointer: "/W1", detail: "d" }],
  };
  const client = new GradserveClient({
    fetch: scriptedFetch([jsonResponse(200, expected), problemResponse(problem)]),
  });
  assert.deepEqual(await client.gradients(PROBLEM, { binary: true }), expected);
  const error = await client.gradients(PROBLEM, { binary: true }).catch((e) => e);
  assert.ok(error instanceof ValidationError);
  assert.deepEqual(error.errors, problem.errors);
});

test("gradientsMany passes binary to every problem", async () => {
  const fetch = scriptedFetch(
    [1, 2].map(() => binaryResponse(golden("answer-float64", "safetensors"))),
  );
  const outcomes = await new GradserveClient({ fetch }).gradientsMany([PROBLEM, PROBLEM], {
    binary: true,
  });
  assert.deepEqual(
    outcomes,
    [1, 2].map(() => ({ ok: true, value: goldenJson("answer-float64") })),
  );
  assert.deepEqual(
    fetch.calls.map(({ init }) => init.headers.Accept),
    [ACCEPT_BINARY, ACCEPT_BINARY],
  );
});

test("request gives a safetensors answer decoded, typed arrays and all", async () => {
  const fetch = scriptedFetch([binaryResponse(golden("answer-float32", "safetensors"))]);
  const answer = await new GradserveClient({ fetch }).request("POST", "/v1/gradients", {
    json: PROBLEM,
    headers: { Accept: SAFETENSORS },
  });
  assert.deepEqual(Object.keys(answer), ["tensors", "metadata"]);
  assert.ok(answer.tensors["gradients.W1"].data instanceof Float32Array);
  assert.deepEqual(answer.tensors.loss.shape, []);
});

test("a 200 safetensors answer that is not safetensors is a GradserveError, not retried", async () => {
  const fetch = scriptedFetch([binaryResponse(new Uint8Array([1, 2, 3]))]);
  const error = await new GradserveClient({ fetch })
    .gradients(PROBLEM, { binary: true })
    .catch((e) => e);
  assert.equal(error.constructor, GradserveError);
  assert.equal(error.message, "the 200 answer is not valid safetensors");
  assert.match(error.cause.message, /3 bytes, fewer than the 8/);
  assert.equal(error.attempts, 1);
});
