// The grading workflow: a student's own problem, their answers graded (as JSON, for Gradescope
// and for PrairieLearn), then a whole class at once with its counts.
//
//   node examples/grading.mjs            # against http://127.0.0.1:8000 (make run)
//   GRADSERVE_URL=http://host:port node examples/grading.mjs

import { GradserveClient, ProblemError } from "gradserve-client";

const client = new GradserveClient({ baseUrl: process.env.GRADSERVE_URL });

const problem = await client.createProblem({
  seed: "student-042",
  shape: { N: 2, D_in: 2, H: 3, D_out: 1 },
});
console.log(problem.problem_id.slice(0, 12), problem.spec.shape);
console.log("X:", JSON.stringify(problem.X), "W2:", JSON.stringify(problem.W2));

// The student's answers: dloss/dY_pred without its factor 2, dloss/dW2 computed from it.
const answers = {
  loss: 936,
  gradients: { Y_pred: [[-30], [-6]], W2: [[-180], [0], [-288]] },
};
const grade = await client.grade(problem, answers);
console.log(`${grade.score} of ${grade.max_score}`);
for (const [name, { status, score, diagnoses }] of Object.entries(grade.quantities)) {
  const codes = diagnoses.map((diagnosis) => diagnosis.code);
  console.log(name.padEnd(7), status.padEnd(9), score, JSON.stringify(codes));
}
console.log("W2 follows from", grade.quantities.W2.follows_from);

const gradescope = await client.grade(problem, answers, {
  format: "gradescope",
  visibility: "after_published",
});
console.log("gradescope:", gradescope.score, gradescope.visibility, gradescope.tests[1].status);
const prairielearn = await client.grade(problem, { loss: "936" }, { format: "prairielearn" });
console.log("prairielearn:", prairielearn.gradable, prairielearn.format_errors);

const batch = await client.gradeBatch([answers, { loss: 936 }, { loss: 935 }], { problem });
console.log(
  "batch:",
  batch.results.map((result) => (result instanceof ProblemError ? result.message : result.score)),
);
console.log(JSON.stringify(batch.diagnosis_counts), JSON.stringify(batch.status_counts.loss));
