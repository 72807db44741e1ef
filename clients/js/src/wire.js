/**
 * The body of POST /v1/gradients, in the wire format of `service/api/schemas.py`:
 *
 *     { X: N x D_in, Y: N x D_out, W1: D_in x H, W2: H x D_out,
 *       options?: { dtype?: "float64" | "float32", return_forward?: boolean } }
 *
 * The matrices go as given: the client never checks them, the server is the one validator.
 */

import { DEFAULT_GRADIENTS_OPTIONS } from "./defaults.js";

/**
 * The request body for one problem; `options` holds only what differs from the defaults and is
 * left out when nothing does.
 *
 * Every key of `problem` is sent, so a misspelt field ("w2") is rejected by the server rather
 * than silently dropped by the client.
 *
 * @param {{ X: number[][], Y: number[][], W1: number[][], W2: number[][] }} problem
 * @param {{ dtype?: string, returnForward?: boolean }} [options]
 * @returns {Record<string, unknown>}
 */
export function gradientsBody(problem, { dtype, returnForward } = {}) {
  const options = {};
  if (dtype !== undefined && dtype !== DEFAULT_GRADIENTS_OPTIONS.dtype) options.dtype = dtype;
  if (returnForward !== undefined && returnForward !== DEFAULT_GRADIENTS_OPTIONS.returnForward) {
    options.return_forward = returnForward;
  }
  const body = { ...problem };
  if (Object.keys(options).length > 0) body.options = { ...problem?.options, ...options };
  return body;
}
