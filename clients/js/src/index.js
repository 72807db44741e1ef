/**
 * gradserve-client: a dependency-free client for gradserve, on global `fetch` (Node >= 18 and
 * browsers).
 *
 *     import { GradserveClient } from "gradserve-client";
 *     const client = new GradserveClient({ baseUrl: "http://127.0.0.1:8000" });
 *     const { loss, gradients } = await client.gradients({ X, Y, W1, W2 });
 */

export {
  DEFAULT_BASE_URL,
  DEFAULT_CONCURRENCY,
  DEFAULT_GRADIENTS_OPTIONS,
  DEFAULT_RETRY,
  DEFAULT_TIMEOUT_MS,
} from "./defaults.js";
export {
  ClientError,
  ConnectError,
  CorsError,
  GradserveError,
  GradserveTimeoutError,
  ProblemError,
  ServerError,
  TransportError,
  ValidationError,
} from "./errors.js";
export { GradserveClient } from "./client.js";
export { decodeSafetensors } from "./safetensors.js";
