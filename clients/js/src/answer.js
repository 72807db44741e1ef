/**
 * Turning an answer (a fetch Response and its body) into a value or an error.
 *
 * A 2xx answer gives its parsed JSON (null for an empty body, the decoded tensors of a
 * safetensors one, the text for another media type). Any other status gives a `ProblemError`
 * subclass chosen by the status, filled from the RFC 9457 problem details in the body, or from
 * the status alone when the body holds none.
 */

import {
  ClientError,
  GradserveError,
  ProblemError,
  ServerError,
  ValidationError,
} from "./errors.js";
import { SAFETENSORS, decodeSafetensors } from "./safetensors.js";

/** Status phrases for answers whose status text is empty (HTTP/2 sends none). */
const STATUS_PHRASES = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * True for application/json and application/*+json (problem+json among them), parameters aside.
 *
 * @param {string | null} contentType
 * @returns {boolean}
 */
export function isJsonMediaType(contentType) {
  const mediaType = (contentType ?? "").split(";")[0].trim().toLowerCase();
  return mediaType === "application/json" || /^application\/[^/]+\+json$/.test(mediaType);
}

/**
 * True for application/vnd.safetensors, parameters aside.
 *
 * @param {string | null} contentType
 * @returns {boolean}
 */
export function isSafetensors(contentType) {
  return (contentType ?? "").split(";")[0].trim().toLowerCase() === SAFETENSORS;
}

/**
 * The value of a 2xx answer: its JSON parsed, null when empty, its text when not JSON, its
 * tensors (`decodeSafetensors`) when read as bytes.
 *
 * @param {Response} response
 * @param {string | ArrayBuffer} body  The body, already read: bytes for safetensors.
 * @param {{ method: string, url: string }} request
 * @returns {unknown}
 * @throws {GradserveError} when the body is declared JSON or safetensors but does not parse.
 */
export function successValue(response, body, request) {
  if (body instanceof ArrayBuffer) {
    try {
      return decodeSafetensors(body);
    } catch (cause) {
      throw new GradserveError(`the ${response.status} answer is not valid safetensors`, {
        cause,
        request,
      });
    }
  }
  const text = body;
  if (text === "") return null;
  if (!isJsonMediaType(response.headers.get("content-type"))) return text;
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new GradserveError(`the ${response.status} answer is not valid JSON`, { cause, request });
  }
}

/**
 * The error for a non-2xx answer, with its problem details when the body holds them.
 *
 * @param {Response} response
 * @param {string} text  The body, already read.
 * @param {{ method: string, url: string }} request
 * @returns {ProblemError}
 */
export function problemError(response, text, request) {
  const status = response.status;
  const problem = problemDetails(response, text);
  const ErrorClass = errorClassFor(status);
  return new ErrorClass({
    status,
    type: stringOr(problem?.type, "about:blank"),
    title: stringOr(
      problem?.title,
      response.statusText || STATUS_PHRASES[status] || `HTTP ${status}`,
    ),
    detail: stringOr(problem?.detail, undefined),
    errors: Array.isArray(problem?.errors) ? problem.errors : [],
    problem,
    response,
    bodyText: text,
    request,
  });
}

/**
 * The class of error for an HTTP status.
 *
 * @param {number} status
 * @returns {typeof ProblemError}
 */
export function errorClassFor(status) {
  if (status === 400 || status === 422) return ValidationError;
  if (status >= 400 && status < 500) return ClientError;
  if (status >= 500 && status < 600) return ServerError;
  return ProblemError;
}

/** The body's JSON object when the answer is JSON holding one, else null. */
function problemDetails(response, text) {
  if (!isJsonMediaType(response.headers.get("content-type"))) return null;
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

function stringOr(value, fallback) {
  return typeof value === "string" ? value : fallback;
}

/**
 * The error for one result of a batch that is problem details: the `ProblemError` subclass its
 * `status` calls for, as if it had been the answer to a request of its own. Its `request` is
 * the batch's; its `response` is made of the problem alone (the batch's answer was a 200).
 *
 * @param {Record<string, unknown>} problem
 * @param {{ method: string, url: string }} request
 * @returns {ProblemError}
 */
export function itemError(problem, request) {
  const text = JSON.stringify(problem);
  const status = Number.isInteger(problem.status) ? problem.status : 500;
  const headers = { "content-type": "application/problem+json" };
  return problemError(new Response(text, { status, headers }), text, request);
}
