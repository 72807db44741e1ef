// The page for learners reads matrices as people paste them (service/web/learn/matrices.js):
// `node --test tests/web/`, run by `make test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { read, shape, show, write } from "../../service/web/learn/matrices.js";

const EXAMPLE = [[1, 2], [3, -1]];

for (const [name, text] of [
  ["JSON", "[[1, 2], [3, -1]]"],
  ["NumPy's print", "[[ 1.  2.]\n [ 3. -1.]]"],
  ["NumPy's repr", "array([[ 1.,  2.],\n       [ 3., -1.]])"],
  ["a float32 repr", "array([[1., 2.], [3., -1.]], dtype=float32)"],
  ["PyTorch's print", "tensor([[ 1.,  2.],\n        [ 3., -1.]])"],
  ["CSV rows", "1,2\n3,-1"],
  ["rows of spaces", "1 2\n3 -1\n"],
  ["rows without the outer brackets", "[1, 2]\n[3, -1]"],
  ["exponents", "[[1e0, 0.2E1], [+3, -1.0e-0]]"],
]) {
  test(`reads ${name}`, () => assert.deepEqual(read(text), { value: EXAMPLE }));
}

test("reads a number and a column", () => {
  assert.deepEqual(read(" 2.5 "), { value: 2.5, scalar: true });
  assert.deepEqual(read("[[2.], [2.]]"), { value: [[2], [2]] });
  assert.deepEqual(read("2\n2"), { value: [[2], [2]] });
});

test("keeps any shape for the service to judge", () => {
  assert.deepEqual(read("[1, 2, 3]"), { value: [1, 2, 3] });
  assert.deepEqual(read("[[1, 2], [3]]"), { value: [[1, 2], [3]] });
  assert.deepEqual(shape([[1, 2, 3], [4, 5, 6]]), [2, 3]);
  assert.deepEqual(shape(7), []);
});

test("says what it cannot read", () => {
  assert.deepEqual(read(""), { empty: true });
  assert.match(read("[[1, two]]").error, /“two” is not a number/);
  assert.match(read("[[1, 2]").error, /not closed/);
  assert.match(read("[1]]").error, /closes no/);
  assert.match(read("1,2\n3,x").error, /“x” is not a number/);
  assert.match(read("[[1, NaN]]").error, /“NaN” is not a number/);
});

test("shows integers whole and the rest to 6 significant digits", () => {
  assert.equal(show(8), "8");
  assert.equal(show(-0), "0");
  assert.equal(show(0.1 + 0.2), "0.3");
  assert.equal(show(2 / 3), "0.666667");
  assert.equal(show(-1234567.25), "-1.23457e+6");
  assert.equal(show(1.5e-7), "1.5e-7");
});

test("writes a matrix back as JSON rows that it reads again", () => {
  const written = write([[1, -0.25], [3e-9, 2]]);
  assert.equal(written, "[[1, -0.25],\n [3e-9, 2]]");
  assert.deepEqual(read(written), { value: [[1, -0.25], [3e-9, 2]] });
});
