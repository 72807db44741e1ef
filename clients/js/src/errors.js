/**
 * The errors the client throws, one class per way a call can fail:
 *
 *     GradserveError                 anything the client reports
 *     ├── TransportError             no complete answer came back
 *     │   ├── ConnectError           the network failed: refused, unreachable, reset (retried)
 *     │   └── GradserveTimeoutError  one attempt took longer than `timeoutMs` (not retried)
 *     ├── CorsError                  in a browser: the service on another origin is
 *     │                              reachable, its answer kept from the page (not retried)
 *     └── ProblemError               the server answered with an error status
 *         ├── ClientError            4xx: the request is at fault (never retried)
 *         │   └── ValidationError    400 (malformed JSON) or 422 (not a valid problem)
 *         └── ServerError            5xx: the service or a proxy in front of it is at fault
 *
 * A `TransportError` that is neither a connect error nor a timeout (the connection broke while
 * the answer was being read) is thrown as a plain `TransportError` and is retried too.
 *
 * Every error carries `request` ({ method, url }) and, once the client gives up, `attempts`:
 * how many attempts were made. A `ProblemError` carries the RFC 9457 problem details the server
 * sent (`type`, `title`, `detail`, `errors`, and the whole object as `problem`) and the fetch
 * `response` (its body already read). An error answer that is not problem details, such as a
 * proxy's HTML 502 page, still gives a `ProblemError` subclass: `status` is set, `type` is
 * "about:blank", `title` is the status text, `problem` is null and `bodyText` holds the text.
 */

/**
 * The base of every error the client throws.
 *
 * @property {{ method: string, url: string } | undefined} request  The request that failed.
 * @property {number | undefined} attempts  Attempts made before giving up (set by the client).
 */
export class GradserveError extends Error {
  /**
   * @param {string} message
   * @param {{ cause?: unknown, request?: { method: string, url: string } }} [options]
   */
  constructor(message, { cause, request } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.request = request;
    this.attempts = undefined;
  }
}

/** No complete answer came back: the network failed or an attempt timed out. */
export class TransportError extends GradserveError {}

/** fetch failed with a network error (a TypeError): refused, unreachable, reset. */
export class ConnectError extends TransportError {}

/**
 * One attempt took longer than `timeoutMs`. Named so as not to clash with the DOM's
 * `TimeoutError` DOMException.
 *
 * @property {number} timeoutMs  The limit that was exceeded.
 */
export class GradserveTimeoutError extends TransportError {
  /**
   * @param {number} timeoutMs
   * @param {{ cause?: unknown, request?: { method: string, url: string } }} [options]
   */
  constructor(timeoutMs, options = {}) {
    super(`no answer within ${timeoutMs} ms`, options);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * In a browser, fetch failed with a network error for a service on another origin, yet the
 * service is reachable: most likely the browser refused the page the answer because the service
 * does not allow the page's origin (CORS; the service's GRADSERVE_CORS_ORIGINS). Browsers do not
 * say so to the page, only in their console. Not retried: it would be refused again.
 *
 * @property {string} origin  The page's origin, the one the service must allow.
 */
export class CorsError extends GradserveError {
  /**
   * @param {string} origin
   * @param {{ cause?: unknown, request: { method: string, url: string } }} options
   */
  constructor(origin, { cause, request }) {
    super(
      `the browser gave this page (origin ${origin}) no answer to ${request.method} ` +
        `${request.url}, though the service is reachable: most likely a CORS refusal, ` +
        `the service not allowing this origin (GRADSERVE_CORS_ORIGINS)`,
      { cause, request },
    );
    this.origin = origin;
  }
}

/**
 * The server answered with an error status; its problem details, if any, are here.
 *
 * @property {number} status  The HTTP status of the answer.
 * @property {string} type  The problem type URI; "about:blank" when the answer gave none.
 * @property {string} title  The problem's title, or the status text for a non-problem answer.
 * @property {string | undefined} detail  What went wrong in this request, for a person to read.
 * @property {{ pointer?: string, parameter?: string, detail: string }[]} errors  Field faults,
 *   with JSON Pointers into the request body, or naming a query parameter ([] when none).
 * @property {Record<string, unknown> | null} problem  The whole problem object, or null.
 * @property {Response} response  The fetch Response (its body already read).
 * @property {string} bodyText  The answer's body as text.
 */
export class ProblemError extends GradserveError {
  /**
   * @param {{ status: number, type: string, title: string, detail?: string,
   *   errors: { pointer?: string, parameter?: string, detail: string }[],
   *   problem: Record<string, unknown> | null,
   *   response: Response, bodyText: string, request?: { method: string, url: string } }} fields
   */
  constructor({ status, type, title, detail, errors, problem, response, bodyText, request }) {
    super(detail ? `${status} ${title}: ${detail}` : `${status} ${title}`, { request });
    this.status = status;
    this.type = type;
    this.title = title;
    this.detail = detail;
    this.errors = errors;
    this.problem = problem;
    this.response = response;
    this.bodyText = bodyText;
  }
}

/** A 4xx answer: the request is at fault. Never retried. */
export class ClientError extends ProblemError {}

/** A 400 (the body is not valid JSON) or 422 (valid JSON, not a valid problem) answer. */
export class ValidationError extends ClientError {}

/** A 5xx answer: a fault of the service or of a proxy in front of it. */
export class ServerError extends ProblemError {}
