// The loss and gradients of the README's worked example, the forward pass, a batch with one
// wrong problem, and the error a wrong problem gets.
//
//   node examples/example.mjs            # against http://127.0.0.1:8000 (make run)
//   GRADSERVE_URL=http://host:port node examples/example.mjs

import { GradserveClient, ValidationError } from "gradserve-client";

const client = new GradserveClient({ baseUrl: process.env.GRADSERVE_URL });

// X: N x D_in (2 x 2), Y: N x D_out (2 x 1), W1: D_in x H (2 x 3), W2: H x D_out (3 x 1).
const problem = {
  X: [
    [1, 2],
    [3, -1],
  ],
  Y: [[1], [8]],
  W1: [
    [1, -1, 2],
    [1, 1, -1],
  ],
  W2: [[1], [-1], [1]],
};

console.log("health:", await client.health());

const { loss, gradients, shapes, dtype } = await client.gradients(problem);
console.log("loss:", loss, dtype, shapes);
for (const [name, gradient] of Object.entries(gradients)) {
  console.log(`dloss/d${name}:`, JSON.stringify(gradient));
}

// H = X W1 has an exact zero at row 0, column 2: there dloss/dH_relu is 2 but dloss/dH is 0.
const { forward } = await client.gradients(problem, { returnForward: true });
console.log("H:", JSON.stringify(forward.H), "H_relu:", JSON.stringify(forward.H_relu));

const wrong = { ...problem, W1: [[1, -1, 2]] }; // W1 must have as many rows as X has columns
try {
  await client.gradients(wrong);
} catch (error) {
  if (!(error instanceof ValidationError)) throw error;
  console.log(`${error.name} ${error.status} ${error.type}`);
  for (const { pointer, detail } of error.errors) console.log(`  ${pointer}: ${detail}`);
}

const outcomes = await client.gradientsMany([problem, wrong, { ...problem, Y: [[0], [0]] }]);
for (const [index, outcome] of outcomes.entries()) {
  console.log(
    `problem ${index}:`,
    outcome.ok ? `loss ${outcome.value.loss}` : outcome.error.message,
  );
}
