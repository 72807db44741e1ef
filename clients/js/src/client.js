/**
 * `GradserveClient`: the typed calls of the gradserve API over one generic `request`, which
 * sends, retries, parses JSON and throws the errors of `errors.js`.
 *
 * Letters mean what they mean on the server: X is N x D_in, Y N x D_out, W1 D_in x H,
 * W2 H x D_out; a matrix is an array of rows, each an array of numbers.
 */

import { attempt } from "./attempt.js";
import { problemError, successValue } from "./answer.js";
import {
  DEFAULT_BASE_URL,
  DEFAULT_CONCURRENCY,
  DEFAULT_RETRY,
  DEFAULT_TIMEOUT_MS,
} from "./defaults.js";
import {
  gradeBatchAnswer,
  gradeBatchBody,
  gradePath,
  gradingOptions,
  languageHeaders,
  problemBody,
} from "./grading.js";
import { batchOutcomes, fallback, plan } from "./many.js";
import { settleAll } from "./pool.js";
import { isRetryableError, isRetryableStatus, retryDelayMs, sleep } from "./retry.js";
import { SAFETENSORS, gradientsAnswer } from "./safetensors.js";
import { gradientsBody } from "./wire.js";

const ACCEPT = "application/json, application/problem+json";
const BATCH_PATH = "/v1/gradients/batch";
const GRADE_BATCH_PATH = "/v1/grade/batch";
/** Asks for a safetensors answer; a server that only writes JSON may still answer JSON. */
const ACCEPT_SAFETENSORS = `${SAFETENSORS}, application/problem+json, application/json;q=0.5`;

export class GradserveClient {
  #baseUrl;
  #timeoutMs;
  #retry;
  #apiKey;
  #fetch;
  #sleep;
  #random;

  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl]  Where the service is; a path prefix is kept. In a
   *   browser it may be relative to the page ("/gradserve").
   * @param {number} [options.timeoutMs]  Time allowed for each attempt, in ms; Infinity for none.
   * @param {string} [options.apiKey]  Sent as `Authorization: Bearer <apiKey>`.
   * @param {{ maxAttempts?: number, baseDelayMs?: number, maxDelayMs?: number,
   *   sleep?: (ms: number, signal?: AbortSignal) => Promise<void>, random?: () => number }}
   *   [options.retry]  Merged with the defaults; `sleep` and `random` replace the real wait and
   *   Math.random (for tests).
   * @param {typeof fetch} [options.fetch]  The fetch to use, globalThis.fetch by default.
   */
  constructor({
    baseUrl = DEFAULT_BASE_URL,
    timeoutMs = DEFAULT_TIMEOUT_MS,
    apiKey,
    retry = {},
    fetch = globalThis.fetch,
  } = {}) {
    if (typeof fetch !== "function") {
      throw new TypeError("no fetch: use Node >= 18 or a browser, or pass options.fetch");
    }
    new URL(baseUrl, globalThis.location?.href); // a TypeError now, not on every request
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, not ${timeoutMs}`);
    const { sleep: sleepFn = sleep, random = Math.random, ...settings } = retry;
    const merged = { ...DEFAULT_RETRY, ...settings };
    if (!Number.isInteger(merged.maxAttempts) || merged.maxAttempts < 1) {
      throw new RangeError(
        `retry.maxAttempts must be a positive integer, not ${merged.maxAttempts}`,
      );
    }
    this.#baseUrl = baseUrl.replace(/\/+$/, "");
    this.#timeoutMs = timeoutMs;
    this.#retry = Object.freeze(merged);
    this.#apiKey = apiKey;
    this.#fetch = (url, init) => fetch(url, init); // called unbound: browsers require it
    this.#sleep = sleepFn;
    this.#random = random;
  }

  /** The URL paths are joined to, without a trailing slash. */
  get baseUrl() {
    return this.#baseUrl;
  }

  /** Time allowed for one attempt, in ms. */
  get timeoutMs() {
    return this.#timeoutMs;
  }

  /** The retry settings in force: { maxAttempts, baseDelayMs, maxDelayMs }. */
  get retry() {
    return this.#retry;
  }

  /**
   * The loss and its five gradients for one problem.
   *
   * @param {{ X: number[][], Y: number[][], W1: number[][], W2: number[][] }} problem
   * @param {{ dtype?: "float64" | "float32", returnForward?: boolean, binary?: boolean,
   *   signal?: AbortSignal }} [options]  `dtype` of the whole computation; `returnForward` to
   *   also get the forward pass; `binary` to have the answer sent as safetensors (smaller, and
   *   faster to read for large problems; the request still goes as JSON), given back in the
   *   same form as a JSON answer, with the same numbers.
   * @returns {Promise<{ loss: number,
   *   gradients: { Y_pred: number[][], W2: number[][], H_relu: number[][], H: number[][],
   *     W1: number[][] },
   *   forward?: { H: number[][], H_relu: number[][], Y_pred: number[][] },
   *   dtype: "float64" | "float32", shapes: { N: number, D_in: number, H: number, D_out: number }
   * }>}  Each gradient dloss/dK has K's shape: Y_pred N x D_out, W2 H x D_out, H_relu and H
   *   N x H, W1 D_in x H.
   * @throws {ValidationError} 422 when a matrix is wrong; `errors` points at each fault.
   */
  async gradients(
    problem,
    { dtype = "float64", returnForward = false, binary = false, signal } = {},
  ) {
    const json = gradientsBody(problem, { dtype, returnForward });
    const headers = binary ? { Accept: ACCEPT_SAFETENSORS } : {};
    const answer = await this.request("POST", "/v1/gradients", { json, headers, signal });
    return answer?.tensors ? gradientsAnswer(answer) : answer;
  }

  /**
   * `gradients` for many problems, at most `concurrency` requests in flight at once.
   *
   * From two problems on, unless `batch` is false or `binary` is true (a batch is JSON only),
   * the problems go through POST /v1/gradients/batch, shared among `concurrency` requests of
   * at most 10,000 problems and 1,000,000 entries each: several times faster for many small
   * problems. The outcomes are the same either way; a refused problem's error points into the
   * problem ("/W1"), its `request` the batch's. A batch refused as a whole is sent again in
   * halves for a 413, one problem at a time for a 404 or 405 (no batch endpoint); any other
   * failure is the outcome of each of its problems.
   *
   * @param {Iterable<{ X: number[][], Y: number[][], W1: number[][], W2: number[][] }>} problems
   * @param {{ concurrency?: number, batch?: boolean, dtype?: "float64" | "float32",
   *   returnForward?: boolean, binary?: boolean, signal?: AbortSignal }} [options]  `dtype`,
   *   `returnForward`, `binary` and `signal` apply to every problem; `batch` false sends each
   *   problem alone, true batches even one.
   * @returns {Promise<Array<{ ok: true, value: object } | { ok: false, error: unknown }>>} One
   *   outcome per problem, in the problems' order; never rejects for a problem's failure.
   */
  async gradientsMany(problems, { concurrency = DEFAULT_CONCURRENCY, batch, ...options } = {}) {
    const list = Array.from(problems);
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, not ${concurrency}`);
    }
    const { dtype, returnForward, binary, signal } = options;
    const bodies = list.map((problem) => gradientsBody(problem, { dtype, returnForward }));
    const outcomes = new Array(list.length);
    const parts = plan(bodies, { batch, binary, concurrency });
    const settled = await settleAll(parts, concurrency, async (part) => {
      if (!part.batched) {
        const [index] = part.positions;
        const [outcome] = await settleAll([list[index]], 1, (p) => this.gradients(p, options));
        return [[index, outcome]];
      }
      return this.#partOutcomes(bodies, part, signal);
    });
    for (const outcome of settled) {
      if (!outcome.ok) throw outcome.error; // a bug of the client's own: parts never reject
      for (const [index, result] of outcome.value) outcomes[index] = result;
    }
    return outcomes;
  }

  /**
   * POST /v1/gradients/batch: many problems in one request, each a `gradients` problem (a
   * problem may carry its own `options`, as the wire has them).
   *
   * @param {Iterable<object>} problems
   * @param {{ dtype?: "float64" | "float32", returnForward?: boolean, signal?: AbortSignal }}
   *   [options]  Applied to every problem.
   * @returns {Promise<Array<{ ok: true, value: object } | { ok: false, error: ProblemError }>>}
   *   One outcome per problem, in order; a refused problem's `ProblemError` points into the
   *   batch ("/problems/3/W1").
   * @throws {ValidationError} when the batch as a whole is refused (empty, over 10,000).
   */
  async gradientsBatch(problems, { dtype, returnForward, signal } = {}) {
    const json = {
      problems: Array.from(problems, (problem) => gradientsBody(problem, { dtype, returnForward })),
    };
    const answer = await this.request("POST", BATCH_PATH, { json, signal });
    return batchOutcomes(answer, this.#sent(BATCH_PATH), { relative: false });
  }

  /**
   * POST /v1/problems: the problem instance of a seed and spec, the same on every platform.
   *
   * @param {{ seed: number | string, shape: { N: number, D_in: number, H: number,
   *   D_out: number }, values?: "integers" | "quarters" | "normal", max_abs?: number,
   *   scale?: number, zeros_in_H?: "avoid" | "allow" | "require" }} spec  Sent as given.
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<{ problem_id: string, spec: object, X: number[][], Y: number[][],
   *   W1: number[][], W2: number[][] }>}
   */
  async createProblem(spec, { signal } = {}) {
    return this.request("POST", "/v1/problems", { json: spec, signal });
  }

  /**
   * POST /v1/grade: a submission graded against a problem.
   *
   * @param {string | { problem_id: string } | { X: number[][], Y: number[][], W1: number[][],
   *   W2: number[][] }} problem  A generated problem or its id (sent by id), or the matrices.
   * @param {{ loss?: number, gradients?: Record<string, number[][] | number[]> }} submission
   * @param {{ format?: "json" | "gradescope" | "prairielearn", rtol?: number,
   *   atolFactor?: number, weights?: Record<string, number>, followThroughCredit?: number,
   *   reveal?: boolean, language?: "en" | "zh", visibility?: string,
   *   stdoutVisibility?: string, signal?: AbortSignal }} [options]
   * @returns {Promise<object>}  The grade, or the autograder's result in `format`.
   */
  async grade(
    problem,
    submission,
    { format, language, visibility, stdoutVisibility, signal, ...options } = {},
  ) {
    const json = { ...gradingOptions(options), problem: problemBody(problem), submission };
    const path = gradePath({ format, visibility, stdoutVisibility });
    return this.request("POST", path, { json, headers: languageHeaders(language), signal });
  }

  /**
   * POST /v1/grade/batch: many submissions graded in one request (at most 10,000), against
   * `problem`, or each its own where `problems` gives one.
   *
   * @param {Iterable<object>} submissions
   * @param {{ problem?: unknown, problems?: Iterable<unknown>, rtol?: number,
   *   atolFactor?: number, weights?: Record<string, number>, followThroughCredit?: number,
   *   reveal?: boolean, language?: "en" | "zh", signal?: AbortSignal }} [options]
   * @returns {Promise<{ results: Array<object | ProblemError>, diagnosis_counts: object,
   *   diagnosis_counts_by_quantity: object, status_counts: object }>}
   */
  async gradeBatch(submissions, { problem, problems, language, signal, ...options } = {}) {
    const json = gradeBatchBody(submissions, { problem, problems }, gradingOptions(options));
    const headers = languageHeaders(language);
    const answer = await this.request("POST", GRADE_BATCH_PATH, { json, headers, signal });
    return gradeBatchAnswer(answer, this.#sent(GRADE_BATCH_PATH));
  }

  /**
   * GET /healthz: `{ status: "ok" }` when the service can compute.
   *
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<{ status: string }>}
   * @throws {ServerError} when it cannot (after the retries of 502, 503 and 504).
   */
  async health({ signal } = {}) {
    return this.request("GET", "/healthz", { signal });
  }

  /**
   * Send a request, retrying network errors and 502/503/504 answers, and give the answer's
   * parsed JSON (null for an empty body, `decodeSafetensors` of a safetensors one, the text of
   * any other). Retrying a POST to /v1/gradients is safe: computing gradients is idempotent.
   *
   * @param {string} method  "GET", "POST", ...
   * @param {string} path  Joined to `baseUrl`, e.g. "/v1/gradients".
   * @param {{ json?: unknown, body?: string | Blob | ArrayBuffer | ArrayBufferView |
   *   URLSearchParams, contentType?: string, headers?: Record<string, string>,
   *   signal?: AbortSignal }} [options]  `json` is sent as JSON.stringify(json); `body` is sent
   *   verbatim (not a stream: it may be sent more than once); `contentType` defaults to
   *   application/json when there is a body.
   * @returns {Promise<unknown>}
   * @throws {ProblemError} for an error status, {TransportError} when no answer came back, the
   *   caller's `signal.reason` when it aborted.
   */
  async request(method, path, { json, body, contentType, headers = {}, signal } = {}) {
    if (json !== undefined && body !== undefined) {
      throw new TypeError("give either json or body, not both");
    }
    const payload = json !== undefined ? JSON.stringify(json) : body;
    const url = this.baseUrl + (path.startsWith("/") ? path : `/${path}`);
    const request = { method, url };
    const init = { method, headers: this.#headers(headers, payload, contentType), body: payload };

    for (let attempts = 1; ; attempts++) {
      let answer;
      try {
        answer = await attempt(this.#fetch, url, init, {
          timeoutMs: this.timeoutMs,
          signal,
          request,
        });
      } catch (error) {
        if (!isRetryableError(error) || attempts >= this.retry.maxAttempts) {
          throw withAttempts(error, attempts);
        }
        await this.#sleep(this.#delayMs(attempts, null), signal);
        continue;
      }
      const { response, text, bytes } = answer;
      if (response.ok) {
        try {
          return successValue(response, bytes ?? text, request);
        } catch (error) {
          throw withAttempts(error, attempts);
        }
      }
      const error = withAttempts(problemError(response, text, request), attempts);
      if (!isRetryableStatus(response.status) || attempts >= this.retry.maxAttempts) throw error;
      await this.#sleep(this.#delayMs(attempts, response.headers.get("retry-after")), signal);
    }
  }

  /** The outcomes of a batched part, by position; a refusal as a whole as `fallback` says. */
  async #partOutcomes(bodies, part, signal) {
    let answer;
    try {
      const json = { problems: part.positions.map((index) => bodies[index]) };
      answer = await this.request("POST", BATCH_PATH, { json, signal });
    } catch (error) {
      if (signal?.aborted) throw error;
      const parts = fallback(error, part);
      if (parts === null) return part.positions.map((index) => [index, { ok: false, error }]);
      const again = [];
      for (const next of parts) {
        if (next.batched) again.push(...(await this.#partOutcomes(bodies, next, signal)));
        else {
          const [index] = next.positions;
          const json = bodies[index];
          const [outcome] = await settleAll([json], 1, (body) =>
            this.request("POST", "/v1/gradients", { json: body, signal }),
          );
          again.push([index, outcome]);
        }
      }
      return again;
    }
    const outcomes = batchOutcomes(answer, this.#sent(BATCH_PATH), { relative: true });
    return part.positions.map((index, at) => [index, outcomes[at]]);
  }

  /** The { method, url } of a POST to `path`, as errors carry it. */
  #sent(path) {
    return { method: "POST", url: this.baseUrl + path };
  }

  #headers(extra, payload, contentType) {
    const headers = { Accept: ACCEPT };
    if (payload !== undefined || contentType !== undefined) {
      headers["Content-Type"] = contentType ?? "application/json";
    }
    if (this.#apiKey) headers.Authorization = `Bearer ${this.#apiKey}`;
    return { ...headers, ...extra };
  }

  #delayMs(attempts, retryAfter) {
    return retryDelayMs(attempts, { ...this.retry, random: this.#random }, retryAfter);
  }
}

/** Record on a client error how many attempts were made; other errors pass through as they are. */
function withAttempts(error, attempts) {
  if (error !== null && typeof error === "object" && "attempts" in error) error.attempts = attempts;
  return error;
}
