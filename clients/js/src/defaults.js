/**
 * Every default of the client, in one place.
 *
 * The gradients options mirror the server's own defaults (`service/api/schemas.py`, `Options`), so
 * the client sends an option only when it differs from them.
 */

/** Where `gradserve serve` listens when started without options. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:8000";

/** Time allowed for one attempt, from sending the request to reading the whole answer. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Retries of network errors and of 502, 503 and 504 answers: at most `maxAttempts` attempts in
 * all, waiting a random time in [0, min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1))] between
 * them ("full jitter"), or what `Retry-After` asks, capped at `maxDelayMs`.
 */
export const DEFAULT_RETRY = Object.freeze({ maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 8_000 });

/** How many requests `gradientsMany` keeps in flight at once. */
export const DEFAULT_CONCURRENCY = 4;

/** The server's defaults for `options` of POST /v1/gradients, in the client's spelling. */
export const DEFAULT_GRADIENTS_OPTIONS = Object.freeze({ dtype: "float64", returnForward: false });
