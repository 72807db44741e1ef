/**
 * How `gradientsMany` sends its problems: through POST /v1/gradients/batch, in parts, unless
 * told not to or the answers go as safetensors, which a batch does not carry.
 *
 * The batch endpoint answers each problem as /v1/gradients would, computing problems of equal
 * shapes in one stacked product, and saves a request's overhead per problem: several times
 * faster for many small problems (README, "Many problems"). The problems are shared among
 * `concurrency` parts, so that one part is encoded and read while the service computes another,
 * each within the service's limit of problems and an entry budget well within its defaults.
 */

import { itemError } from "./answer.js";
import { ProblemError } from "./errors.js";

/** The most problems in one batch request: the service's own limit. */
export const BATCH_MAX_PROBLEMS = 10_000;
/** The most matrix entries in one batch request, about 20 MB of JSON. */
export const BATCH_MAX_ENTRIES = 1_000_000;
/** From this many problems on, `gradientsMany` batches them (unless `batch: false`). */
export const BATCH_MIN_PROBLEMS = 2;

const NO_BATCH_STATUSES = new Set([404, 405]);
const TOO_LARGE = 413;

/**
 * The requests for `bodies`: `{ positions, batched }` parts, `positions` into `bodies`.
 *
 * @param {object[]} bodies  Each a /v1/gradients request body.
 * @param {{ batch?: boolean, binary?: boolean, concurrency: number }} options
 * @returns {Array<{ positions: number[], batched: boolean }>}
 */
export function plan(bodies, { batch, binary, concurrency }) {
  const together =
    batch === false || binary || (batch === undefined && bodies.length < BATCH_MIN_PROBLEMS)
      ? []
      : bodies.map((_, index) => index);
  if (together.length === 0) {
    return bodies.map((_, index) => ({ positions: [index], batched: false }));
  }
  const most = Math.min(BATCH_MAX_PROBLEMS, Math.ceil(together.length / concurrency));
  const parts = [];
  let current = [];
  let entries = 0;
  for (const index of together) {
    const size = entriesOf(bodies[index]);
    if (current.length > 0 && (current.length >= most || entries + size > BATCH_MAX_ENTRIES)) {
      parts.push({ positions: current, batched: true });
      current = [];
      entries = 0;
    }
    current.push(index);
    entries += size;
  }
  if (current.length > 0) parts.push({ positions: current, batched: true });
  return parts;
}

/** The matrix entries of a body, at least 1 a matrix: a faulty one is answered all the same. */
function entriesOf(body) {
  let total = 0;
  for (const name of ["X", "Y", "W1", "W2"]) {
    const matrix = body?.[name];
    const size = Array.isArray(matrix)
      ? matrix.reduce((sum, row) => sum + (Array.isArray(row) ? row.length : 1), 0)
      : 1;
    total += Math.max(1, size);
  }
  return total;
}

/**
 * Each result of a batch answer as a settled outcome: `{ ok: true, value }`, or `{ ok: false,
 * error }` holding the `ProblemError` of the problem details in its place. With `relative`, the
 * pointers are made relative to the problem ("/problems/3/W1" becomes "/W1"), as /v1/gradients
 * gives them.
 *
 * @param {{ results: object[] }} answer
 * @param {{ method: string, url: string }} request
 * @param {{ relative: boolean }} options
 */
export function batchOutcomes(answer, request, { relative }) {
  return answer.results.map((result) =>
    "gradients" in result
      ? { ok: true, value: result }
      : { ok: false, error: itemError(relative ? relativePointers(result) : result, request) },
  );
}

/** Problem details whose pointers point into the problem rather than the batch. */
export function relativePointers(problem) {
  if (!Array.isArray(problem.errors)) return problem;
  return {
    ...problem,
    errors: problem.errors.map((error) =>
      typeof error?.pointer === "string"
        ? { ...error, pointer: error.pointer.replace(/^\/problems\/\d+/, "") }
        : error,
    ),
  };
}

/**
 * The parts to send instead of a batched `part` the service refused as a whole: two halves for
 * a 413 (over a budget), each problem alone where there is no batch endpoint; null when every
 * problem of the part is to get `error`.
 */
export function fallback(error, part) {
  if (!(error instanceof ProblemError)) return null;
  if (NO_BATCH_STATUSES.has(error.status)) {
    return part.positions.map((index) => ({ positions: [index], batched: false }));
  }
  if (error.status === TOO_LARGE && part.positions.length > 1) {
    const middle = Math.floor(part.positions.length / 2);
    return [part.positions.slice(0, middle), part.positions.slice(middle)].map((positions) => ({
      positions,
      batched: true,
    }));
  }
  return null;
}
