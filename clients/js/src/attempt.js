/**
 * One attempt at a request: fetch, then read the whole body, within a time limit: as bytes for
 * a successful safetensors answer, as text for any other.
 *
 * The limit covers both steps and is enforced with an AbortController, which also follows the
 * caller's own `signal`. Failures come out classified for the retry loop:
 *
 * - the caller aborted: the signal's `reason`, unchanged (as fetch itself does);
 * - the limit passed: `GradserveTimeoutError`;
 * - fetch rejected with a TypeError (its network error): `ConnectError`, or `CorsError` in a
 *   browser when the service is on another origin and reachable (`corsRefusal`);
 * - the connection broke while the body was read: `TransportError`;
 * - anything else (a bug in an injected fetch, say): the error, unchanged.
 */

import { isSafetensors } from "./answer.js";
import { ConnectError, CorsError, GradserveTimeoutError, TransportError } from "./errors.js";

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
      const origin = cause instanceof TypeError && (await corsRefusal(fetchFn, url, controller));
      throw origin
        ? new CorsError(origin, { cause, request })
        : failure(cause, ConnectError, "could not send");
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

/**
 * In a browser, fetch rejects with the same bare TypeError whether the network failed or CORS
 * kept the answer from the page. For a service on another origin, one request the browser sends
 * without CORS (`mode: "no-cors"`: HEAD of the service's origin, no headers, an opaque answer)
 * tells them apart: if it gets an answer, the service is reachable. Gives the page's origin
 * then; false outside a browser, for the page's own origin, or when the check fails too.
 *
 * @param {(url: string, init: RequestInit) => Promise<Response>} fetchFn
 * @param {string} url
 * @param {AbortController} controller  Its signal, the attempt's, bounds the check.
 * @returns {Promise<string | false>}
 */
async function corsRefusal(fetchFn, url, controller) {
  const page = globalThis.location;
  if (!page || controller.signal.aborted) return false;
  const service = new URL(url, page.href).origin;
  if (service === page.origin) return false;
  try {
    await fetchFn(`${service}/`, { method: "HEAD", mode: "no-cors", signal: controller.signal });
    return page.origin;
  } catch {
    return false;
  }
}

/** setTimeout fires at once beyond 2 ** 31 - 1 ms, so a longer limit (Infinity) is no limit. */
function hasLimit(timeoutMs) {
  return timeoutMs <= 2 ** 31 - 1;
}
