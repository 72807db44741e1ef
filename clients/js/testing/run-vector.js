/**
 * Sending a contract vector's request through the client, the way its README prescribes: the
 * typed `gradients` method when it can carry the request, `health` for GET /healthz, and the
 * generic `request` otherwise.
 */

import { GradserveClient, ProblemError } from "../src/index.js";
import { isGradientsCall, isHealthCall } from "./vectors.js";

/**
 * The answer the client gives to `vector`: for a success the value it returns, for an error
 * answer the documented properties of the `ProblemError` it throws. Status and media type of a
 * success are read off the fetch Response, through an injected fetch that keeps the last one.
 *
 * @param {string} baseUrl
 * @param {{ request: object }} vector
 * @returns {Promise<{ status: number, contentType: string, body: unknown, error?: ProblemError,
 *   call: "gradients" | "health" | "request" }>}
 */
export async function runVector(baseUrl, vector) {
  let last;
  const recordingFetch = async (url, init) => (last = await fetch(url, init));
  const client = new GradserveClient({ baseUrl, fetch: recordingFetch });
  const call = isGradientsCall(vector) ? "gradients" : isHealthCall(vector) ? "health" : "request";
  try {
    const body = await send(client, call, vector.request);
    return { call, status: last.status, contentType: contentType(last), body };
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    const { type, title, errors } = error;
    return {
      call,
      status: error.status,
      contentType: contentType(error.response),
      body: { type, title, errors },
      error,
    };
  }
}

function send(client, call, request) {
  if (call === "gradients") {
    const { X, Y, W1, W2, options = {} } = request.json;
    return client.gradients(
      { X, Y, W1, W2 },
      { dtype: options.dtype, returnForward: options.return_forward },
    );
  }
  if (call === "health") return client.health();
  const { method, path, json, body, content_type: contentType } = request;
  return client.request(method, path, { json, body, contentType });
}

function contentType(response) {
  return response.headers.get("content-type") ?? "";
}
