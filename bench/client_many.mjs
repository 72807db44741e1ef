// The JavaScript client's gradientsMany: through /v1/gradients/batch (the default), in one batch
// request, and one /v1/gradients request per problem (batch: false); same problems, same server,
// same run, the three ways alternated, five runs each. Against a running server:
//
//   GRADSERVE_URL=http://127.0.0.1:8000 node bench/client_many.mjs
//
// The JS client's README quotes a run ("Many problems"); bench/client_many.py is the Python one.

import { GradserveClient } from "../clients/js/src/index.js";

const client = new GradserveClient({ baseUrl: process.env.GRADSERVE_URL });
let seed = 1;
const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
const matrix = (r, c) => Array.from({ length: r }, () => Array.from({ length: c }, rand));
const cases = [
  ["tiny", 1000, [8, 4, 16, 3]],
  ["course-sized", 200, [32, 32, 32, 8]],
  ["medium", 20, [256, 128, 64, 10]],
];
for (const [name, count, [N, D_in, H, D_out]] of cases) {
  const problems = Array.from({ length: count }, () => ({
    X: matrix(N, D_in),
    Y: matrix(N, D_out),
    W1: matrix(D_in, H),
    W2: matrix(H, D_out),
  }));
  const ways = {
    "batch (default)": {},
    "batch in 1 part": { concurrency: 1 },
    "one by one": { batch: false },
  };
  const times = Object.fromEntries(Object.keys(ways).map((w) => [w, []]));
  for (const options of Object.values(ways)) await client.gradientsMany(problems, options);
  for (let run = 0; run < 5; run++) {
    for (const [way, options] of Object.entries(ways)) {
      const start = performance.now();
      const outcomes = await client.gradientsMany(problems, options);
      times[way].push(performance.now() - start);
      if (!outcomes.every((outcome) => outcome.ok)) throw new Error(`${way}: a problem failed`);
    }
  }
  console.log(`${count} ${name} problems (${N}, ${D_in}, ${H}, ${D_out}):`);
  for (const [way, t] of Object.entries(times)) {
    t.sort((a, b) => a - b);
    const [low, median, high] = [t[0], t[2], t[4]].map((ms) => ms.toFixed(0));
    console.log(`  ${way.padEnd(16)} median ${median} ms (range ${low} to ${high})`);
  }
}
