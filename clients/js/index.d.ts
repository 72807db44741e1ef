// Type declarations for gradserve-client. Shapes: X is N x D_in, Y N x D_out, W1 D_in x H,
// W2 H x D_out; a matrix is an array of rows, each an array of numbers.

/** A matrix as it travels in JSON: an array of rows of equal length, each an array of numbers. */
export type Matrix = number[][];

/** The floating-point type of the whole computation. */
export type DType = "float64" | "float32";

/** The four matrices of one problem. Sent as given: the server is the one validator. */
export interface Problem {
  /** Inputs, N x D_in. */
  X: Matrix;
  /** Targets, N x D_out. */
  Y: Matrix;
  /** First-layer weights, D_in x H. */
  W1: Matrix;
  /** Second-layer weights, H x D_out. */
  W2: Matrix;
}

/** dloss/dK for each quantity K, each with K's shape. */
export interface Gradients {
  /** dloss/dY_pred = 2 (Y_pred - Y), N x D_out. */
  Y_pred: Matrix;
  /** dloss/dW2 = H_relu^T dloss/dY_pred, H x D_out. */
  W2: Matrix;
  /** dloss/dH_relu = dloss/dY_pred W2^T, N x H. */
  H_relu: Matrix;
  /** dloss/dH = dloss/dH_relu * [H > 0], N x H; 0 wherever H <= 0, including H == 0. */
  H: Matrix;
  /** dloss/dW1 = X^T dloss/dH, D_in x H. */
  W1: Matrix;
}

/** The forward pass, returned when `returnForward` is true. */
export interface ForwardPass {
  /** H = X W1, N x H. */
  H: Matrix;
  /** H_relu = max(H, 0), N x H. */
  H_relu: Matrix;
  /** Y_pred = H_relu W2, N x D_out. */
  Y_pred: Matrix;
}

/** The problem's dimensions. */
export interface Shapes {
  N: number;
  D_in: number;
  H: number;
  D_out: number;
}

/** The answer of POST /v1/gradients. */
export interface GradientsResult {
  /** ||Y_pred - Y||_F^2. */
  loss: number;
  gradients: Gradients;
  /** Present only when `returnForward` was true. */
  forward?: ForwardPass;
  dtype: DType;
  shapes: Shapes;
}

/** The answer of POST /v1/gradients with `returnForward: true`. */
export interface GradientsResultWithForward extends GradientsResult {
  forward: ForwardPass;
}

/** N, D_in, H and D_out of a generated problem, each 1 to 64. */
export interface ProblemShape {
  N: number;
  D_in: number;
  H: number;
  D_out: number;
}

/** What POST /v1/problems generates from; sent as given (the wire's spelling). */
export interface ProblemSpec {
  /** An integer within ±(2**53 - 1), or a string such as a student's email. */
  seed: number | string;
  shape: ProblemShape;
  /** Default "integers". */
  values?: "integers" | "quarters" | "normal";
  /** For integers and quarters; default 3. */
  max_abs?: number;
  /** For normal; default 1. */
  scale?: number;
  /** Default "avoid": no entry of H = X W1 is 0. */
  zeros_in_H?: "avoid" | "allow" | "require";
}

/** The answer of POST /v1/problems: the matrices, and the id that regenerates them. */
export interface GeneratedProblem extends Problem {
  problem_id: string;
  /** The spec with every default filled in. */
  spec: Required<ProblemSpec>;
}

/** A problem to grade against: a generated one or its id (sent by id), or its matrices. */
export type ProblemInput = string | { problem_id: string } | Problem;

/** A matrix as a submission may give it: rows, or flattened. */
export type SubmittedMatrix = number[][] | number[];

/** A student's answers: any subset; what is absent is graded "missing". */
export interface Submission {
  loss?: number;
  gradients?: Partial<Record<keyof Gradients, SubmittedMatrix>>;
}

/** The name of a graded quantity. */
export type Quantity = "loss" | keyof Gradients;

/** A recognised slip: a stable code, a message, and for "scaled" its factor. */
export interface Diagnosis {
  code: string;
  message: string;
  factor?: number;
}

/** The grade of one quantity. */
export interface QuantityGrade {
  status: "correct" | "incorrect" | "wrong_shape" | "missing";
  score: number;
  max_score: number;
  message: string;
  /** [] for the loss. */
  expected_shape: number[];
  received_shape?: number[];
  /** Reference information: only for a caller who may see reference answers. */
  max_abs_error?: number;
  max_rel_error?: number;
  wrong_count?: number;
  /** The first wrong entries, 0-based [row, column]. */
  wrong_indices?: number[][];
  non_finite_count?: number;
  diagnoses: Diagnosis[];
  /** The upstream quantity a follow-through credit came from. */
  follows_from?: string;
}

/** The answer of POST /v1/grade (format "json"). */
export interface Grade {
  score: number;
  max_score: number;
  quantities: Record<Quantity, QuantityGrade>;
  tolerance: { rtol: number; atol_factor: number; rule: string };
  follow_through_credit: number;
  language: "en" | "zh";
  /** For a problem given by id. */
  problem_id?: string;
  /** Only with `reveal: true`, where the deployment allows it. */
  reference?: { loss: number; gradients: Gradients };
}

/** Gradescope's visibility settings. */
export type Visibility = "hidden" | "after_due_date" | "after_published" | "visible";

/** A grade as Gradescope's results.json (format "gradescope"). */
export interface GradescopeResult {
  score: number;
  output: string;
  tests: {
    name: string;
    score: number;
    max_score: number;
    status: "passed" | "failed";
    output: string;
  }[];
  visibility?: Visibility;
  stdout_visibility?: Visibility;
}

/** A grade as a PrairieLearn external-grader result (format "prairielearn"). */
export interface PrairieLearnResult {
  gradable: true;
  /** From 0 to 1. */
  score: number;
  message: string;
  tests: { name: string; points: number; max_points: number; message: string; output: string }[];
}

/** A submission PrairieLearn's grader cannot grade: the student keeps the attempt. */
export interface UngradablePrairieLearnResult {
  gradable: false;
  format_errors: string[];
  message: string;
}

export interface GradingOptions extends CallOptions {
  /** Default 1e-5. */
  rtol?: number;
  /** Default 1e-9. */
  atolFactor?: number;
  /** Points per quantity; default 1 each. */
  weights?: Partial<Record<Quantity, number>>;
  /** Default 0.5. */
  followThroughCredit?: number;
  /** Ask for the reference answers; a 403 ClientError unless the deployment allows it. */
  reveal?: boolean;
  /** "zh" for messages in Chinese (Accept-Language). */
  language?: "en" | "zh";
}

export interface GradeOptions extends GradingOptions {
  /** Default "json". */
  format?: "json" | "gradescope" | "prairielearn";
  /** With format "gradescope". */
  visibility?: Visibility;
  /** With format "gradescope". */
  stdoutVisibility?: Visibility;
}

export interface GradeBatchOptions extends GradingOptions {
  /** The problem of every submission without its own. */
  problem?: ProblemInput;
  /** One per submission; null or undefined for the batch's problem. */
  problems?: Iterable<ProblemInput | null | undefined>;
}

/** The answer of POST /v1/grade/batch. */
export interface GradeBatch {
  /** A grade per submission, in order; the error of one whose problem cannot be graded. */
  results: Array<Grade | ProblemError>;
  /** How many submissions show each diagnosis code, each counted once. */
  diagnosis_counts: Record<string, number>;
  /** Per quantity, how many submissions show each code in it. */
  diagnosis_counts_by_quantity: Record<string, Record<string, number>>;
  /** Per quantity, how many submissions have each status. */
  status_counts: Record<string, Record<string, number>>;
}

/** The answer of GET /healthz. */
export interface HealthResult {
  status: string;
}

export interface RetryOptions {
  /** Attempts in all, the first included; 1 disables retries. Default 4. */
  maxAttempts?: number;
  /** The backoff's first ceiling, doubled each attempt. Default 250 ms. */
  baseDelayMs?: number;
  /** The longest wait between attempts, Retry-After included. Default 8000 ms. */
  maxDelayMs?: number;
  /** Replaces the real wait (for tests); should reject with `signal.reason` on abort. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Replaces Math.random in the jitter (for tests). */
  random?: () => number;
}

/** The retry settings in force on a client. */
export interface RetrySettings {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** The fetch the client calls: globalThis.fetch or anything with its signature. */
export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /**
   * Where the service is; a path prefix is kept; in a browser it may be relative to the page
   * ("/gradserve"). Default "http://127.0.0.1:8000".
   */
  baseUrl?: string;
  /** Time allowed for each attempt, reading the answer included, in ms. Default 30000. */
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Merged with the defaults { maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 8000 }. */
  retry?: RetryOptions;
  /** Default globalThis.fetch. */
  fetch?: FetchFunction;
}

export interface CallOptions {
  /** Aborts the call, retries and waits included; the call rejects with `signal.reason`. */
  signal?: AbortSignal;
}

export interface GradientsOptions extends CallOptions {
  /** Default "float64". */
  dtype?: DType;
  /** Also return the forward pass. Default false. */
  returnForward?: boolean;
  /**
   * Ask for the answer as safetensors (Accept: application/vnd.safetensors), smaller and faster
   * to read for large problems; it is given back in the JSON answer's form, with the same
   * numbers. The request still goes as JSON. Default false.
   */
  binary?: boolean;
}

export interface GradientsManyOptions extends GradientsOptions {
  /** Requests in flight at once; a positive integer. Default 4. */
  concurrency?: number;
  /**
   * false: one /v1/gradients request per problem. Default: from two problems on, through
   * /v1/gradients/batch in `concurrency` parts (never with `binary: true`); true: even one.
   */
  batch?: boolean;
}

export interface RequestOptions extends CallOptions {
  /** A value sent as JSON.stringify(json). */
  json?: unknown;
  /** A body sent verbatim, instead of `json`. Not a stream: it may be sent more than once. */
  body?: string | Blob | ArrayBuffer | ArrayBufferView | URLSearchParams;
  /** Default "application/json" when there is a body. */
  contentType?: string;
  /** More headers, sent as given. */
  headers?: Record<string, string>;
}

/** One outcome of `gradientsMany`. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** The request an error came from. */
export interface SentRequest {
  method: string;
  url: string;
}

/**
 * One fault in the request: in its body, located by a JSON Pointer such as "/X/1/0", or in a
 * query parameter, named by `parameter` (e.g. "format").
 */
export interface FieldError {
  pointer?: string;
  parameter?: string;
  detail: string;
}

/** An RFC 9457 problem details object, as gradserve sends them. */
export interface ProblemDetails {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: FieldError[];
  error_count?: number;
  quantities?: string[];
  [member: string]: unknown;
}

export class GradserveClient {
  constructor(options?: ClientOptions);
  /** The URL paths are joined to, without a trailing slash. */
  readonly baseUrl: string;
  /** Time allowed for one attempt, in ms. */
  readonly timeoutMs: number;
  readonly retry: RetrySettings;

  /** The loss and its five gradients for one problem; 422 ValidationError when it is wrong. */
  gradients(
    problem: Problem,
    options: GradientsOptions & { returnForward: true },
  ): Promise<GradientsResultWithForward>;
  gradients(problem: Problem, options?: GradientsOptions): Promise<GradientsResult>;

  /** `gradients` for many problems; one outcome per problem, in order; never rejects for one. */
  gradientsMany(
    problems: Iterable<Problem>,
    options: GradientsManyOptions & { returnForward: true },
  ): Promise<Settled<GradientsResultWithForward>[]>;
  gradientsMany(
    problems: Iterable<Problem>,
    options?: GradientsManyOptions,
  ): Promise<Settled<GradientsResult>[]>;

  /** POST /v1/gradients/batch in one request; a refused problem's error points into the batch. */
  gradientsBatch(
    problems: Iterable<Problem>,
    options?: Omit<GradientsOptions, "binary">,
  ): Promise<Settled<GradientsResult>[]>;

  /** POST /v1/problems: the problem instance of a seed and spec. */
  createProblem(spec: ProblemSpec, options?: CallOptions): Promise<GeneratedProblem>;

  /** POST /v1/grade: a submission graded; the autograder's result with `format`. */
  grade(
    problem: ProblemInput,
    submission: Submission,
    options: GradeOptions & { format: "gradescope" },
  ): Promise<GradescopeResult>;
  grade(
    problem: ProblemInput,
    submission: Submission,
    options: GradeOptions & { format: "prairielearn" },
  ): Promise<PrairieLearnResult | UngradablePrairieLearnResult>;
  grade(
    problem: ProblemInput,
    submission: Submission,
    options?: GradeOptions & { format?: "json" },
  ): Promise<Grade>;

  /** POST /v1/grade/batch: many submissions graded in one request, with class-wide counts. */
  gradeBatch(submissions: Iterable<Submission>, options?: GradeBatchOptions): Promise<GradeBatch>;

  /** GET /healthz. */
  health(options?: CallOptions): Promise<HealthResult>;

  /**
   * Send a request, retrying network errors and 502/503/504; the answer's parsed JSON (null
   * for an empty body, `Safetensors` for an application/vnd.safetensors one, the text for
   * another).
   */
  request<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<T>;
}

/** One tensor of a safetensors body, its entries in row-major order. */
export interface SafetensorsTensor {
  dtype: "F64" | "F32";
  /** [] for a scalar, [rows, columns] for a matrix. */
  shape: number[];
  /** A Float64Array for F64, a Float32Array for F32. */
  data: Float64Array | Float32Array;
}

/** A safetensors body, decoded. */
export interface Safetensors {
  tensors: Record<string, SafetensorsTensor>;
  /** The header's "__metadata__"; {} when it holds none. */
  metadata: Record<string, string>;
}

/**
 * Decode a safetensors body strictly: header at most 64 KiB, F64 and F32 tensors only, tensors
 * back to back filling the buffer. Throws a GradserveError saying what is wrong, a TypeError
 * for input that is not bytes.
 */
export function decodeSafetensors(body: ArrayBuffer | ArrayBufferView): Safetensors;

/** The base of every error the client throws. */
export class GradserveError extends Error {
  constructor(message: string, options?: { cause?: unknown; request?: SentRequest });
  /** The request that failed. */
  request: SentRequest | undefined;
  /** How many attempts were made, once the client gave up. */
  attempts: number | undefined;
}

/** No complete answer came back. Retried, except a timeout. */
export class TransportError extends GradserveError {}

/** fetch failed with a network error: refused, unreachable, reset. Retried. */
export class ConnectError extends TransportError {}

/** One attempt took longer than `timeoutMs`. Not retried. */
export class GradserveTimeoutError extends TransportError {
  constructor(timeoutMs: number, options?: { cause?: unknown; request?: SentRequest });
  timeoutMs: number;
}

/**
 * In a browser: fetch failed for a service on another origin that is reachable, most likely a
 * CORS refusal of the page's origin. Not retried.
 */
export class CorsError extends GradserveError {
  constructor(origin: string, options: { cause?: unknown; request: SentRequest });
  /** The page's origin, the one the service must allow. */
  origin: string;
}

/** The fields a ProblemError is built from. */
export interface ProblemErrorFields {
  status: number;
  type: string;
  title: string;
  detail?: string;
  errors: FieldError[];
  problem: ProblemDetails | null;
  response: Response;
  bodyText: string;
  request?: SentRequest;
}

/** The server answered with an error status. */
export class ProblemError extends GradserveError {
  constructor(fields: ProblemErrorFields);
  /** The HTTP status of the answer. */
  status: number;
  /** The problem type URI; "about:blank" when the answer gave none. */
  type: string;
  /** The problem's title, or the status text for an answer without problem details. */
  title: string;
  detail: string | undefined;
  /** Field faults with JSON Pointers into the request body; [] when there are none. */
  errors: FieldError[];
  /** The whole problem details object, or null when the answer held none. */
  problem: ProblemDetails | null;
  /** The fetch Response; its body is already read (see `bodyText`). */
  response: Response;
  /** The answer's body as text. */
  bodyText: string;
}

/** A 4xx answer. Never retried. */
export class ClientError extends ProblemError {}

/** A 400 (malformed JSON) or 422 (not a valid problem) answer. */
export class ValidationError extends ClientError {}

/** A 5xx answer. 502, 503 and 504 are retried. */
export class ServerError extends ProblemError {}

export const DEFAULT_BASE_URL: "http://127.0.0.1:8000";
export const DEFAULT_TIMEOUT_MS: number;
export const DEFAULT_RETRY: Readonly<{
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}>;
export const DEFAULT_CONCURRENCY: number;
export const DEFAULT_GRADIENTS_OPTIONS: Readonly<{ dtype: "float64"; returnForward: false }>;
