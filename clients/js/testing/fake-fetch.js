/**
 * Stand-ins for fetch that answer from a script, for tests of retries, timeouts and errors
 * without a network or real waiting.
 */

/**
 * A fetch that answers its n-th call with `script[n]`: a Response (or a function of (url, init)
 * giving one) is returned, an Error is thrown. It records every call in `fetch.calls` as
 * { url, init }. Calls past the end of the script fail the test.
 *
 * @param {Array<Response | Error |
 *   ((url: string, init: RequestInit) => Response | Promise<Response>)>} script
 */
export function scriptedFetch(script) {
  const calls = [];
  const fake = async (url, init) => {
    calls.push({ url, init });
    const step = script[calls.length - 1];
    if (step === undefined) throw new Error(`unexpected fetch #${calls.length} of ${url}`);
    if (step instanceof Error) throw step;
    return typeof step === "function" ? step(url, init) : step;
  };
  fake.calls = calls;
  return fake;
}

/** A fetch that never answers; it rejects with the signal's reason once aborted, as fetch does. */
export function hangingFetch() {
  const calls = [];
  const fake = (url, init) => {
    calls.push({ url, init });
    return new Promise((_resolve, reject) => {
      init.signal.addEventListener("abort", () => reject(init.signal.reason), { once: true });
    });
  };
  fake.calls = calls;
  return fake;
}

/** The TypeError fetch rejects with when the network fails (undici's shape). */
export function networkError(code = "ECONNREFUSED") {
  return new TypeError("fetch failed", { cause: Object.assign(new Error(code), { code }) });
}

/** A JSON Response: `status`, `body` serialized, `headers` added to the media type. */
export function jsonResponse(
  status,
  body,
  { contentType = "application/json", headers = {} } = {},
) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": contentType, ...headers },
  });
}

/** A problem details Response, as gradserve sends them. */
export function problemResponse(problem, headers = {}) {
  return jsonResponse(problem.status, problem, {
    contentType: "application/problem+json",
    headers,
  });
}

/** A no-op sleep that records each wait, for `retry: { sleep }`. */
export function recordingSleep() {
  const waits = [];
  const sleep = async (ms) => {
    waits.push(ms);
  };
  sleep.waits = waits;
  return sleep;
}
