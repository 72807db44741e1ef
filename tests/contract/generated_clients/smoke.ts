/**
 * Drives the TypeScript client that @hey-api/openapi-ts generates from clients/openapi.json
 * against live servers, through every operation a grader or a program uses and one error of
 * each kind the client can provoke.
 *
 * tests/contract/test_generated_clients.py generates the client into ./client beside this file,
 * type-checks both with `tsc --strict`, compiles them and runs this program with the path of a
 * JSON file of inputs (`Inputs`). It prints one JSON object (`Outcomes`) of what the service
 * answered, which the test checks against an independent reference. Every field read here is
 * read through the generated types, so a contract that typed an answer wrongly fails `tsc`.
 */
import { readFileSync } from 'node:fs';

import {
  createProblem,
  grade,
  gradeBatch,
  gradeGradescope,
  gradePrairielearn,
  gradients,
  gradientsBatch,
  type GradeOut,
  type GradientsRequest,
  type GradientsResponse,
  type ProblemDetails,
  type ProblemShape,
  type ProblemSpecInput,
  type Submission,
} from './client';
import { type Client, createClient } from './client/client';

/** What the test hands over: the servers, the keys, a problem and answers to grade. */
type Inputs = {
  /** A server that needs no key. */
  url: string;
  /** A server with keys, a rate limit of one request a minute and a small input budget. */
  keyedUrl: string;
  /** Keys of `keyedUrl`: one with the compute role, one with the grade role, and one unknown. */
  keys: { compute: string; grade: string; unknown: string };
  /** A problem whose input count is above the budget of `keyedUrl`. */
  problem: GradientsRequest;
  /** The seed and shape of a generated problem, the reference's answers to it, and a slip. */
  seed: string;
  shape: ProblemShape;
  /** A problem spec within the budget of `keyedUrl`. */
  smallSpec: ProblemSpecInput;
  answers: Submission;
  slipped: Submission;
};

/** An error answer as the client parsed it, with the HTTP status and headers it came with. */
type ProblemSeen = {
  http: number;
  contentType: string | null;
  retryAfter: string | null;
  type: string | undefined;
  title: string;
  status: number;
  detail: string;
  pointers: Array<string | null | undefined>;
  budget: string | null | undefined;
  limit: number | null | undefined;
  value: number | null | undefined;
};

/** What one call of a generated operation resolves to (its `responseStyle` is 'fields'). */
type Outcome<T> = { data?: T; error?: unknown; response?: Response };

/** The answer of a call that must succeed; anything else stops the program. */
function answer<T>(outcome: Outcome<T>, what: string): T {
  if (outcome.data === undefined || outcome.response === undefined || !outcome.response.ok) {
    throw new Error(`${what}: ${outcome.response?.status} ${JSON.stringify(outcome.error)}`);
  }
  return outcome.data;
}

/** The problem details of a call that must fail, read through the generated ProblemDetails. */
function problem(outcome: { error?: ProblemDetails; response?: Response }, what: string): ProblemSeen {
  const { error, response } = outcome;
  if (error === undefined || response === undefined || response.ok) {
    throw new Error(`${what}: expected problem details, got ${response?.status}`);
  }
  return {
    http: response.status,
    contentType: response.headers.get('content-type'),
    retryAfter: response.headers.get('retry-after'),
    type: error.type,
    title: error.title,
    status: error.status,
    detail: error.detail,
    pointers: (error.errors ?? []).map((fault) => fault.pointer),
    budget: error.budget,
    limit: error.limit,
    value: error.value,
  };
}

/** A grade reduced to what the test checks: the score and each quantity's status. */
function statuses(result: GradeOut): { score: number; max_score: number; statuses: Record<string, string> } {
  const seen: Record<string, string> = {};
  for (const [quantity, graded] of Object.entries(result.quantities)) {
    seen[quantity] = graded.status;
  }
  return { score: result.score, max_score: result.max_score, statuses: seen };
}

async function main(): Promise<void> {
  const inputs = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Inputs;
  const open: Client = createClient({ baseUrl: inputs.url });
  const keyed = (key: string): Client => createClient({ baseUrl: inputs.keyedUrl, auth: key });
  const { X, Y, W1, W2 } = inputs.problem;
  const wrongShapes: GradientsRequest = { X, Y, W1: [W1[0]!], W2 };

  const computed: GradientsResponse = answer(
    await gradients({ client: open, body: { ...inputs.problem, options: { return_forward: true } } }),
    'gradients',
  );
  const batch = answer(
    await gradientsBatch({ client: open, body: { problems: [inputs.problem, wrongShapes] } }),
    'gradients_batch',
  );
  const generated = answer(
    await createProblem({ client: open, body: { seed: inputs.seed, shape: inputs.shape } }),
    'create_problem',
  );
  const byId = { problem_id: generated.problem_id };
  const graded = answer(
    await grade({ client: open, body: { problem: byId, submission: inputs.slipped } }),
    'grade',
  );
  const gradescope = answer(
    await gradeGradescope({ client: open, body: { problem: byId, submission: inputs.slipped } }),
    'grade_gradescope',
  );
  const prairielearn = answer(
    await gradePrairielearn({ client: open, body: { problem: byId, submission: inputs.answers } }),
    'grade_prairielearn',
  );
  const gradedBatch = answer(
    await gradeBatch({
      client: open,
      body: {
        problem: byId,
        items: [{ submission: inputs.answers }, { submission: inputs.slipped }],
      },
    }),
    'grade_batch',
  );

  const errors: Record<string, ProblemSeen> = {
    // The generated operation serializes its body; with no serializer it sends these bytes.
    '400': problem(
      await gradients({
        client: open,
        body: '{"X": [[1' as unknown as GradientsRequest,
        bodySerializer: null,
      }),
      'malformed JSON',
    ),
    '401': problem(
      await gradients({ client: keyed(inputs.keys.unknown), body: inputs.problem }),
      'an unknown key',
    ),
    '403': problem(
      await createProblem({ client: keyed(inputs.keys.compute), body: inputs.smallSpec }),
      'a key outside its role',
    ),
    '413': problem(
      await gradients({ client: keyed(inputs.keys.compute), body: inputs.problem }),
      'over the input budget',
    ),
    '415': problem(
      await gradients({ client: open, body: inputs.problem, headers: { 'Content-Type': 'text/plain' } }),
      'not sent as JSON',
    ),
    '422': problem(await gradients({ client: open, body: wrongShapes }), 'shapes that do not fit'),
  };
  const limited = keyed(inputs.keys.grade);
  answer(await createProblem({ client: limited, body: inputs.smallSpec }), 'the first of a minute');
  errors['429'] = problem(
    await createProblem({ client: limited, body: inputs.smallSpec }),
    'beyond the rate limit',
  );

  const outcomes = {
    gradients: computed,
    gradients_batch: batch.results.map((result) =>
      'loss' in result ? { loss: result.loss } : { status: result.status, title: result.title },
    ),
    create_problem: generated,
    grade: statuses(graded),
    grade_gradescope: {
      score: gradescope.score,
      tests: gradescope.tests.map((test) => ({ name: test.name, score: test.score, max_score: test.max_score })),
    },
    grade_prairielearn: prairielearn.gradable
      ? { gradable: true, score: prairielearn.score, tests: prairielearn.tests.length }
      : { gradable: false, format_errors: prairielearn.format_errors },
    grade_batch: gradedBatch.results.map((result) =>
      // Not `'quantities' in result`: ProblemDetails has a `quantities` too (those that overflowed).
      'max_score' in result ? statuses(result) : { status: result.status, title: result.title },
    ),
    errors,
  };
  process.stdout.write(`${JSON.stringify(outcomes)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
