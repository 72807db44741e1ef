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
import { settleAll } from "./pool.js";
import { isRetryableError, isRetryableStatus, retryDelayMs, sleep } from "./retry.js";
import { SAFETENSORS, gradientsAnswer } from "./safetensors.js";
import { gradientsBody } from "./wire.js";

const ACCEPT = "application/json, application/problem+json";
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
   * `gradients` for many problems, at most `concurrency` in flight at once.
   *
   * @param {Iterable<{ X: number[][], Y: number[][], W1: number[][], W2: number[][] }>} problems
   * @param {{ concurrency?: number, dtype?: "float64" | "float32", returnForward?: boolean,
   *   binary?: boolean, signal?: AbortSignal }} [options]  `dtype`, `returnForward`, `binary`
   *   and `signal` apply to every problem.
   * @returns {Promise<Array<{ ok: true, value: object } | { ok: false, error: unknown }>>} One
   *   outcome per problem, in the problems' order; never rejects for a problem's failure.
   */
  async gradientsMany(problems, { concurrency = DEFAULT_CONCURRENCY, ...options } = {}) {
    return settleAll(Array.from(problems), concurrency, (problem) =>
      this.gradients(problem, options),
    );
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
