/**
 * One attempt at a request: fetch, then read the whole body, within a time limit: as bytes for
 * a successful safetensors answer, as text for any other.
 *
 * The limit covers both steps and is enforced with an AbortController, which also follows the
 * caller's own `signal`. Failures come out classified for the retry loop:
 *
 * - the caller aborted: the signal's `reason`, unchanged (as fetch itself does);
 * - the limit passed: `GradserveTimeoutError`;
 * - fetch rejected with a TypeError (its network error): `ConnectError`;
 * - the connection broke while the body was read: `TransportError`;
 * - anything else (a bug in an injected fetch, say): the error, unchanged.
 */

import { isSafetensors } from "./answer.js";
import { ConnectError, GradserveTimeoutError, TransportError } from "./errors.js";

/**
 * Send one request and read its answer.
 *
 * @param {(url: string, init: RequestInit) => Promise<Response>} fetchFn
 * @param {string} url
 * @param {RequestInit} init  Method, headers and body; `signal` is set here.
 * @param {{ timeoutMs: number, signal?: AbortSignal,
 *   request: { method: string, url: string } }} limits
 * @returns {Promise<{ response: Response, text?: string, bytes?: ArrayBuffer }>}  `bytes` for
 *   a 2xx safetensors answer, `text` otherwise.
 */
export async function attempt(fetchFn, url, init, { timeoutMs, signal, request }) {
  signal?.throwIfAborted();
  const controller = new AbortController();
  let timedOut = false;
  const onCallerAbort = () => controller.abort(signal.reason);
  signal?.addEventListener("abort", onCallerAbort, { once: true });
  const timer = hasLimit(timeoutMs)
    ? setTimeout(() => {
        timedOut = true;
        controller.abort(new GradserveTimeoutError(timeoutMs, { request }));
      }, timeoutMs)
    : undefined;

  const failure = (cause, NetworkError, what) => {
    if (signal?.aborted) return signal.reason;
    if (timedOut) {
      return cause instanceof GradserveTimeoutError
        ? cause
        : new GradserveTimeoutError(timeoutMs, { cause, request });
    }
    if (cause instanceof TypeError) {
      const code = cause.cause?.code ? ` (${cause.cause.code})` : "";
      return new NetworkError(`${what} ${request.method} ${request.url}: ${cause.message}${code}`, {
        cause,
        request,
      });
    }
    return cause;
  };

  try {
    let response;
    try {
      response = await fetchFn(url, { ...init, signal: controller.signal });
    } catch (cause) {
      throw failure(cause, ConnectError, "could not send");
    }
    try {
      if (response.ok && isSafetensors(response.headers.get("content-type"))) {
        return { response, bytes: await response.arrayBuffer() };
      }
      return { response, text: await response.text() };
    } catch (cause) {
      throw failure(cause, TransportError, "could not read the answer to");
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onCallerAbort);
  }
}

/** setTimeout fires at once beyond 2 ** 31 - 1 ms, so a longer limit (Infinity) is no limit. */
function hasLimit(timeoutMs) {
  return timeoutMs <= 2 ** 31 - 1;
}
