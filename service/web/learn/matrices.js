// Reading matrices as people paste them, and writing numbers for people to read.
//
// `read` takes JSON ([[1, 2], [3, -1]]), NumPy's print ([[ 1.  2.]\n [ 3. -1.]], array([...]))
// or CSV rows (1,2\n3,-1), and gives nested arrays of numbers, whatever their shape: the
// service, not the page, says whether a shape is right, in its own words.

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** `text` as { value } (nested arrays of numbers, or a number), { empty }, or { error }. */
export function read(text) {
  let source = text.trim();
  if (source === "") return { empty: true };
  // NumPy's and PyTorch's wrappers: array([...], dtype=float32), tensor([...]).
  source = source
    .replace(/^(?:np\.|numpy\.|torch\.)?(?:array|tensor|asarray)\s*\(/, "")
    .replace(/,\s*dtype\s*=\s*[\w.]+\s*\)?\s*$/, "")
    .replace(/\)\s*$/, "")
    .trim();
  return source.includes("[") ? bracketed(source) : rows(source);
}

function bracketed(source) {
  const tokens = source.match(/\[|\]|,|[^\s,[\]]+/g) ?? [];
  const stack = [[]];
  for (const token of tokens) {
    if (token === "[") {
      const inner = [];
      stack.at(-1).push(inner);
      stack.push(inner);
    } else if (token === "]") {
      if (stack.length === 1) return { error: "a ] closes no [" };
      stack.pop();
    } else if (token !== ",") {
      if (!NUMBER.test(token)) return { error: `“${token.slice(0, 20)}” is not a number` };
      stack.at(-1).push(Number(token));
    }
  }
  if (stack.length !== 1) return { error: "a [ is not closed" };
  const top = stack[0];
  if (top.length === 1) return { value: top[0] };
  // Rows without the outer pair of brackets: [1, 2]\n[3, -1].
  if (top.length > 1 && top.every((row) => Array.isArray(row))) return { value: top };
  return { error: "write one array, in one pair of outer brackets" };
}

function rows(source) {
  const lines = source.split(/\r?\n|;/).map((line) => line.trim()).filter((line) => line);
  const matrix = [];
  for (const line of lines) {
    const row = [];
    for (const token of line.split(/[\s,]+/).filter((entry) => entry)) {
      if (!NUMBER.test(token)) return { error: `“${token.slice(0, 20)}” is not a number` };
      row.push(Number(token));
    }
    matrix.push(row);
  }
  if (matrix.length === 1 && matrix[0].length === 1 && !/[,\n]/.test(source)) {
    return { value: matrix[0][0], scalar: true };
  }
  return { value: matrix };
}

/** The shape of nested arrays: [] for a number, [r] for a row, [r, c] for a matrix, ... */
export function shape(value) {
  const dims = [];
  let part = value;
  while (Array.isArray(part)) {
    dims.push(part.length);
    part = part[0];
  }
  return dims;
}

/** `x` for reading: integers whole, others to 6 significant digits (the grader's rtol). */
export function show(x) {
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x === 0 ? 0 : x);
  let text = x.toPrecision(6);
  if (text.includes("e")) {
    const [mantissa, exponent] = text.split("e");
    const trimmed = mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa;
    text = `${trimmed}e${exponent}`;
  } else if (text.includes(".")) {
    text = text.replace(/\.?0+$/, "");
  }
  return text;
}

/** A matrix as JSON rows, one a line, for a text field. */
export function write(matrix) {
  const lines = matrix.map((row) => `[${row.map((x) => String(x)).join(", ")}]`);
  return `[${lines.join(",\n ")}]`;
}
