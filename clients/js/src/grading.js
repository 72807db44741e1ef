/**
 * The bodies of the grading endpoints and how their answers are read: POST /v1/problems,
 * /v1/grade (and its /gradescope and /prairielearn forms) and /v1/grade/batch, in the wire format of
 * `service/api/grading_schemas.py`. Only what the caller gives is sent; the service's defaults
 * apply to the rest.
 */

import { itemError } from "./answer.js";

/**
 * A problem as the grading endpoints take it: a generated problem or its id go as
 * `{ problem_id }` (the service regenerates the matrices), anything else (the four matrices
 * X, Y, W1, W2) as given.
 *
 * @param {string | { problem_id: string } | Record<string, unknown>} problem
 * @returns {Record<string, unknown>}
 */
export function problemBody(problem) {
  if (typeof problem === "string") return { problem_id: problem };
  if (typeof problem?.problem_id === "string") return { problem_id: problem.problem_id };
  return problem;
}

/**
 * The grading options that differ from the service's defaults, in the wire's spelling.
 *
 * @param {{ rtol?: number, atolFactor?: number, weights?: Record<string, number>,
 *   followThroughCredit?: number, reveal?: boolean }} options
 * @returns {Record<string, unknown>}
 */
export function gradingOptions({ rtol, atolFactor, weights, followThroughCredit, reveal }) {
  const body = {};
  const tolerance = {};
  if (rtol !== undefined) tolerance.rtol = rtol;
  if (atolFactor !== undefined) tolerance.atol_factor = atolFactor;
  if (Object.keys(tolerance).length > 0) body.tolerance = tolerance;
  if (weights !== undefined) body.weights = weights;
  if (followThroughCredit !== undefined) body.follow_through_credit = followThroughCredit;
  if (reveal) body.reveal = true;
  return body;
}

/**
 * The operation of `format`: /v1/grade for "json", /v1/grade/gradescope (with Gradescope's
 * visibilities) or /v1/grade/prairielearn.
 *
 * @param {{ format?: string, visibility?: string, stdoutVisibility?: string }} options
 * @returns {string}
 */
export function gradePath({ format = "json", visibility, stdoutVisibility }) {
  const path = format === "json" ? "/v1/grade" : `/v1/grade/${format}`;
  const query = new URLSearchParams();
  if (visibility !== undefined) query.set("visibility", visibility);
  if (stdoutVisibility !== undefined) query.set("stdout_visibility", stdoutVisibility);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Accept-Language for the messages: "zh" for Chinese; none leaves the service's English.
 *
 * @param {string | undefined} language
 * @returns {Record<string, string>}
 */
export function languageHeaders(language) {
  return language === undefined ? {} : { "Accept-Language": language };
}

/**
 * The body of POST /v1/grade/batch: each submission, with its own problem where `problems`
 * gives one (null or undefined for the batch's), against `problem` otherwise.
 *
 * @param {Iterable<object>} submissions
 * @param {{ problem?: unknown, problems?: Iterable<unknown> }} which
 * @param {Record<string, unknown>} options
 * @returns {Record<string, unknown>}
 */
export function gradeBatchBody(submissions, { problem, problems }, options) {
  const list = Array.from(submissions);
  const own = problems === undefined ? list.map(() => null) : Array.from(problems);
  if (own.length !== list.length) {
    throw new RangeError(`${own.length} problems for ${list.length} submissions`);
  }
  const items = list.map((submission, index) =>
    own[index] == null ? { submission } : { problem: problemBody(own[index]), submission },
  );
  return { ...options, ...(problem == null ? {} : { problem: problemBody(problem) }), items };
}

/**
 * The answer of POST /v1/grade/batch with each result that is problem details turned into the
 * `ProblemError` its status calls for.
 *
 * @param {{ results: object[] }} answer
 * @param {{ method: string, url: string }} request
 */
export function gradeBatchAnswer(answer, request) {
  return {
    ...answer,
    diagnosis_counts_by_quantity: answer.diagnosis_counts_by_quantity ?? {},
    results: answer.results.map((result) =>
      "score" in result ? result : itemError(result, request),
    ),
  };
}
