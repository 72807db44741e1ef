/**
 * Contract vectors (tests/contract/*.json; format in tests/contract/README.md) and the rule an
 * answer must meet: a port of tests/contract/vectors.py.
 *
 * A vector is { name, description, request: { method, path, json?, body?, content_type? },
 * response: { status, json?, tolerance?: { rtol, atol }, problem?: { type, title, pointers } } }.
 */

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { REPO_ROOT } from "./server.js";

export const VECTORS_DIRECTORY = join(REPO_ROOT, "tests", "contract");
export const PROBLEM_JSON = "application/problem+json";
const TYPED_FIELDS = ["X", "Y", "W1", "W2"];
const TYPED_OPTIONS = ["dtype", "return_forward"];

/**
 * Every vector in `directory`, in file name order, each with the `file` it came from.
 * JSON.parse reads numbers beyond float64 (1e400) as Infinity, as the README says it may.
 *
 * @param {string} [directory]
 * @returns {Array<{ file: string, name: string, description: string, request: object,
 *   response: object }>}
 */
export function loadVectors(directory = VECTORS_DIRECTORY) {
  return readdirSync(directory)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => ({ file, ...JSON.parse(readFileSync(join(directory, file), "utf8")) }));
}

/** True when the typed `gradients` method can send this vector's request. */
export function isGradientsCall(vector) {
  const { method, path, json } = vector.request;
  if (method !== "POST" || path !== "/v1/gradients" || !isObject(json)) return false;
  const keys = Object.keys(json);
  const options = json.options ?? {};
  return (
    TYPED_FIELDS.every((field) => keys.includes(field)) &&
    keys.every((key) => TYPED_FIELDS.includes(key) || key === "options") &&
    isObject(options) &&
    Object.keys(options).every((key) => TYPED_OPTIONS.includes(key))
  );
}

/** True for GET /healthz, which the `health` method sends. */
export function isHealthCall(vector) {
  return vector.request.method === "GET" && vector.request.path === "/healthz";
}

/**
 * Where `actual` differs from `expected`: objects with exactly the same keys, arrays of the same
 * lengths, strings, booleans and null equal, numbers within |a - e| <= atol + rtol * |e|.
 *
 * @returns {string[]} Empty when they match.
 */
export function mismatches(actual, expected, rtol, atol, at = "") {
  if (typeof expected === "boolean" || typeof expected === "string" || expected === null) {
    return actual === expected ? [] : [`${at || "/"}: ${show(actual)} != ${show(expected)}`];
  }
  if (typeof expected === "number") {
    if (typeof actual !== "number") return [`${at}: ${show(actual)} is not a number`];
    if (
      Number.isFinite(actual) &&
      Math.abs(actual - expected) <= atol + rtol * Math.abs(expected)
    ) {
      return [];
    }
    return [`${at}: ${show(actual)} != ${show(expected)}`];
  }
  if (isObject(expected)) {
    if (!isObject(actual) || !sameKeys(actual, expected)) {
      const keys = isObject(actual) ? Object.keys(actual).sort() : actual;
      return [`${at || "/"}: keys ${show(keys)} != ${show(Object.keys(expected).sort())}`];
    }
    return Object.keys(expected).flatMap((key) =>
      mismatches(actual[key], expected[key], rtol, atol, `${at}/${key}`),
    );
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [`${at}: length differs`];
    }
    return expected.flatMap((e, i) => mismatches(actual[i], e, rtol, atol, `${at}/${i}`));
  }
  throw new TypeError(`unexpected value in a vector at ${at}: ${show(expected)}`);
}

/**
 * What is wrong with an answer (status, media type, parsed body) to `vector`.
 *
 * @param {{ response: object }} vector
 * @param {number} status
 * @param {string} contentType
 * @param {any} body  The parsed answer; for an error, an object with its problem details.
 * @returns {string[]} Empty when the answer is right.
 */
export function checkAnswer(vector, status, contentType, body) {
  const expected = vector.response;
  const problems = status === expected.status ? [] : [`status ${status} != ${expected.status}`];
  if ("problem" in expected) {
    if (contentType.split(";")[0].trim() !== PROBLEM_JSON) {
      problems.push(`content type ${show(contentType)} is not ${PROBLEM_JSON}`);
    }
    const got = {
      type: body?.type ?? null,
      title: body?.title ?? null,
      pointers: (body?.errors ?? []).map((error) => error.pointer),
    };
    problems.push(...mismatches(got, expected.problem, 0, 0));
  } else {
    const { rtol, atol } = expected.tolerance ?? { rtol: 0, atol: 0 };
    problems.push(...mismatches(body, expected.json, rtol, atol));
  }
  return problems;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function sameKeys(a, b) {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key));
}

function show(value) {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return value === undefined ? "undefined" : JSON.stringify(value);
}
