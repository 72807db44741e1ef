/**
 * When to retry and how long to wait: exponential backoff with full jitter, or `Retry-After`.
 *
 * Computing gradients is idempotent (the same request always gets the same answer and changes
 * nothing on the server), so retrying any request, POST /v1/gradients included, is safe.
 */

import { GradserveTimeoutError, TransportError } from "./errors.js";

/** Statuses that say "a gateway or the service is briefly unable; try again". */
export const RETRYABLE_STATUSES = Object.freeze([502, 503, 504]);

/** How each of HTTP's three date formats begins: a day name ("Sun, 06 Nov 1994 08:49:37 GMT"). */
const HTTP_DATE = /^[A-Za-z]+,? /;

/**
 * True for a status worth retrying: 502, 503 or 504. 4xx never is.
 *
 * @param {number} status
 * @returns {boolean}
 */
export function isRetryableStatus(status) {
  return RETRYABLE_STATUSES.includes(status);
}

/**
 * True for an error worth retrying: a network error (`ConnectError`, or a `TransportError`
 * while reading the answer). A timeout is not retried: the server may still be computing, and
 * sending the same large problem again would only add to its load.
 *
 * @param {unknown} error
 * @returns {boolean}
 */
export function isRetryableError(error) {
  return error instanceof TransportError && !(error instanceof GradserveTimeoutError);
}

/**
 * The wait before attempt `attempt + 1`, in ms: random in [0, min(maxDelayMs, baseDelayMs *
 * 2 ** (attempt - 1))].
 *
 * @param {number} attempt  The attempt that just failed, from 1.
 * @param {{ baseDelayMs: number, maxDelayMs: number }} retry
 * @param {() => number} [random]  Uniform in [0, 1), Math.random by default.
 * @returns {number}
 */
export function backoffDelayMs(attempt, { baseDelayMs, maxDelayMs }, random = Math.random) {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
  return random() * ceiling;
}

/**
 * What a `Retry-After` header asks for, in ms: delay-seconds or an HTTP date (a date in the past
 * gives 0); undefined when the header is absent or unreadable.
 *
 * @param {string | null} header
 * @param {number} [now]  The current time in ms since the epoch.
 * @returns {number | undefined}
 */
export function retryAfterMs(header, now = Date.now()) {
  if (header === null || header.trim() === "") return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  if (!HTTP_DATE.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The wait before retrying after attempt `attempt` failed, in ms: what `Retry-After` asks if
 * the answer sent one, else the jittered backoff; never more than `maxDelayMs`.
 *
 * @param {number} attempt  The attempt that just failed, from 1.
 * @param {{ baseDelayMs: number, maxDelayMs: number, random?: () => number }} retry
 * @param {string | null} [retryAfter]  The failed answer's Retry-After header, if any.
 * @returns {number}
 */
export function retryDelayMs(attempt, retry, retryAfter = null) {
  const asked = retryAfterMs(retryAfter);
  const delay = asked ?? backoffDelayMs(attempt, retry, retry.random);
  return Math.min(delay, retry.maxDelayMs);
}

/**
 * Wait `ms`, or reject with `signal.reason` as soon as `signal` aborts.
 *
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
