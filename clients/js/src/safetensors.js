/**
 * Safetensors (https://github.com/huggingface/safetensors), the binary form of gradserve's
 * answers, read strictly, and turned into the answer POST /v1/gradients gives in JSON.
 *
 *     offset 0       8 bytes   N: the header's length, an unsigned 64-bit little-endian integer
 *     offset 8       N bytes   the header: a UTF-8 JSON object, right-padded with spaces
 *     offset 8 + N   the rest  the buffer: each tensor's entries, row-major, little-endian
 *
 * The header maps each tensor's name to { dtype: "F64" | "F32", shape: [...],
 * data_offsets: [begin, end] } (byte offsets into the buffer) and may hold "__metadata__", an
 * object of strings. Tensors lie back to back from the buffer's first byte to its last.
 *
 * gradserve's answer holds "loss" (shape [], a scalar), "gradients.Y_pred" (N x D_out),
 * "gradients.W2" (H x D_out), "gradients.H_relu" and "gradients.H" (N x H), "gradients.W1"
 * (D_in x H) and, when asked for, "forward.H", "forward.H_relu" (N x H) and "forward.Y_pred"
 * (N x D_out), all F64, or all F32 for a float32 computation, with
 * "__metadata__": { "dtype": "float64" | "float32" }.
 */

import { GradserveError } from "./errors.js";

/** The media type of a safetensors body. */
export const SAFETENSORS = "application/vnd.safetensors";

/** The longest header read; gradserve's answers need well under 1 KiB. */
export const MAX_HEADER_BYTES = 64 * 1024;

const ENTRY_SIZES = { F64: 8, F32: 4 };
const GRADIENTS = ["Y_pred", "W2", "H_relu", "H", "W1"];
const FORWARD = ["H", "H_relu", "Y_pred"];

/**
 * The tensors and metadata of a safetensors body.
 *
 * Strict, as gradserve's own reader: it throws a `GradserveError` saying what is wrong for a
 * body shorter than 8 bytes, a header longer than MAX_HEADER_BYTES or than the body, a header
 * that is not a UTF-8 JSON object starting with "{", metadata that is not an object of strings,
 * an entry that is not exactly { dtype, shape, data_offsets }, a dtype other than F64 and F32,
 * a shape or offsets that are not non-negative integers, a size that does not match the shape,
 * or tensors that do not fill the buffer back to back from its first byte to its last.
 *
 * @param {ArrayBuffer | ArrayBufferView} body
 * @returns {{ tensors: Record<string, { dtype: "F64" | "F32", shape: number[],
 *   data: Float64Array | Float32Array }>, metadata: Record<string, string> }}  Each tensor's
 *   entries in row-major order, in a typed array of its own (F64: Float64Array, F32:
 *   Float32Array); metadata {} when the header holds none.
 */
export function decodeSafetensors(body) {
  const bytes = asBytes(body);
  if (bytes.length < 8) refuse(`${bytes.length} bytes, fewer than the 8 of the header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES) || 8n + length > BigInt(bytes.length)) {
    refuse(
      `a header of ${length} bytes in a body of ${bytes.length} (at most ${MAX_HEADER_BYTES})`,
    );
  }
  const start = 8 + Number(length);
  const { __metadata__: metadata = {}, ...entries } = readHeader(bytes.subarray(8, start));
  if (!isObject(metadata) || !Object.values(metadata).every((v) => typeof v === "string")) {
    refuse("__metadata__ must be an object of strings");
  }
  for (const [name, entry] of Object.entries(entries)) checkEntry(name, entry);
  checkLayout(Object.values(entries), bytes.length - start);
  const tensors = {};
  for (const [
    name,
    {
      dtype,
      shape,
      data_offsets: [begin, end],
    },
  ] of Object.entries(entries)) {
    const size = ENTRY_SIZES[dtype];
    const data = new (dtype === "F64" ? Float64Array : Float32Array)((end - begin) / size);
    for (let i = 0, at = start + begin; i < data.length; i++, at += size) {
      data[i] = dtype === "F64" ? view.getFloat64(at, true) : view.getFloat32(at, true);
    }
    tensors[name] = { dtype, shape, data };
  }
  return { tensors, metadata };
}

/**
 * The JSON answer of POST /v1/gradients from its safetensors form: matrices as arrays of rows
 * of numbers, each the value computed (a float32 one read exactly), as JSON.parse gives them.
 *
 * @param {ReturnType<typeof decodeSafetensors>} decoded
 * @returns {{ loss: number, gradients: Record<string, number[][]>,
 *   forward?: Record<string, number[][]>, dtype: "float64" | "float32",
 *   shapes: { N: number, D_in: number, H: number, D_out: number } }}
 */
export function gradientsAnswer({ tensors }) {
  const missing = ["loss", ...GRADIENTS.map((name) => `gradients.${name}`)].filter(
    (name) => !(name in tensors),
  );
  if (missing.length > 0) {
    throw new GradserveError(`the safetensors answer lacks ${missing.join(", ")}`);
  }
  const matrices = (prefix, names) =>
    Object.fromEntries(names.map((name) => [name, rows(tensors[`${prefix}.${name}`])]));
  const [N, D_out] = tensors["gradients.Y_pred"].shape;
  const [D_in, H] = tensors["gradients.W1"].shape;
  return {
    loss: tensors.loss.data[0],
    gradients: matrices("gradients", GRADIENTS),
    ...("forward.H" in tensors ? { forward: matrices("forward", FORWARD) } : {}),
    dtype: tensors.loss.dtype === "F32" ? "float32" : "float64",
    shapes: { N, D_in, H, D_out },
  };
}

/** A matrix tensor as an array of rows of numbers. */
function rows({ shape: [count, width], data }) {
  return Array.from({ length: count }, (_, i) =>
    Array.from(data.subarray(i * width, (i + 1) * width)),
  );
}

function asBytes(body) {
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body))
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError("decodeSafetensors takes an ArrayBuffer or a typed array");
}

function readHeader(bytes) {
  if (bytes[0] !== 0x7b) refuse('the header must be a JSON object, starting with "{"');
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    refuse("the header is not UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    refuse(`the header is not JSON: ${cause.message}`);
  }
}

function checkEntry(name, entry) {
  const keys = isObject(entry) ? Object.keys(entry).sort().join() : "";
  if (keys !== "data_offsets,dtype,shape") {
    refuse(`"${name}" must be exactly { dtype, shape, data_offsets }`);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!Object.hasOwn(ENTRY_SIZES, dtype)) refuse(`"${name}": only F64 and F32 tensors are read`);
  if (!naturals(shape) || !naturals(offsets) || offsets.length !== 2) {
    refuse(`"${name}" has a malformed shape or data_offsets`);
  }
  const size = shape.reduce((product, n) => product * n, ENTRY_SIZES[dtype]);
  if (offsets[1] - offsets[0] !== size) {
    refuse(`"${name}" has data_offsets [${offsets}], but its shape takes ${size} bytes`);
  }
}

function checkLayout(entries, bufferSize) {
  const spans = entries
    .map((entry) => entry.data_offsets)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let end = 0;
  for (const [begin, next] of spans) {
    if (begin !== end) refuse(`a gap or an overlap at byte ${begin} of the buffer`);
    end = next;
  }
  if (end !== bufferSize) refuse(`the tensors take ${end} bytes, the buffer holds ${bufferSize}`);
}

function naturals(value) {
  return Array.isArray(value) && value.every((n) => Number.isSafeInteger(n) && n >= 0);
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function refuse(reason) {
  throw new GradserveError(`not safetensors: ${reason}`);
}
