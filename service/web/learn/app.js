// The page for learners: choose a problem, see it solved step by step (/v1/gradients), or check
// your own answers (/v1/grade). It calls the service that served it, as any client does, with
// the student's API key where the deployment asks for one; in check mode it calls nothing that
// answers reference values, so it shows only what the grader says.

import { FORMULAS, NETWORK } from "./mathml.js";
import { read, shape, show, write } from "./matrices.js";
import { TEXT, browserLanguage } from "./text.js";

const INPUTS = ["X", "Y", "W1", "W2"];
const GRADIENTS = ["Y_pred", "W2", "H_relu", "H", "W1"];
const QUANTITIES = ["loss", ...GRADIENTS];
const LABELS = {
  loss: "loss",
  Y_pred: "dloss/dY_pred",
  W2: "dloss/dW2",
  H_relu: "dloss/dH_relu",
  H: "dloss/dH",
  W1: "dloss/dW1",
};
const EXAMPLE = {
  X: [[1, 2], [3, -1]],
  Y: [[1], [8]],
  W1: [[1, -1, 2], [1, 1, -1]],
  W2: [[1], [-1], [1]],
};
const SYMBOLS = { correct: "✓", incorrect: "✗", wrong_shape: "≠", missing: "–" };
const MASK = "✕";
const ZERO = "○";
const TRACE = "◆";
const LANGUAGE_KEY = "gradserve-learn-language";
const API_KEY = "gradserve-learn-api-key";
const MAX_TRACE_ROWS = 16;
const MAX_TRACE_TERMS = 8;

const $ = (id) => document.getElementById(id);

const state = {
  language: "en",
  modes: document.body.dataset.modes.split(/\s+/).filter((mode) => mode),
  mode: null,
  key: "",
  problem: null, // the four matrices as read from the fields, when all four read
  problemId: null, // a generated problem's id, while its fields are as generated
  generatedText: null,
  solution: null, // /v1/gradients' answer, in solve mode
  expected: null, // each quantity's expected shape, from /v1/grade, in check mode
  submission: null,
  grade: null,
  traced: null, // [row, column] of dloss/dW1, 0-based
  faults: null, // the service's answer to a problem it refused
  asked: 0, // the number of the latest request about the problem
};

const t = () => TEXT[state.language];

/** An element: `h("td", { class: "x", dataset: { r: 1 } }, child, "text")`. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name === "className" ? "class" : name, value === true ? "" : value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

const hidden = (text) => h("span", { class: "visually-hidden", text });
const mark = (symbol) => h("span", { class: "mark", "aria-hidden": "true", text: symbol });

/** MathML from `mathml.js`, which holds only the page's own formulas. */
function formula(markup) {
  const box = h("div", { class: "formula" });
  box.innerHTML = markup;
  return box;
}

// ---------------------------------------------------------------- talking to the service

async function post(path, body, language) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (language) headers["Accept-Language"] = language;
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  try {
    const response = await fetch(new URL(path, document.baseURI), {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => null);
    return { status: response.status, ok: response.ok, answer };
  } catch {
    return { status: 0, ok: false, answer: null };
  }
}

/** What a refusal says: the problem details' detail, or that nothing answered. */
function refusal(result) {
  if (result.status === 0) return t().unreachable;
  const detail = result.answer?.detail ?? result.answer?.title ?? "";
  return t().refused(result.status, detail);
}

// ---------------------------------------------------------------- the problem

function problemFields() {
  return INPUTS.map((name) => $(`in-${name}`));
}

function fieldsText() {
  return problemFields().map((field) => field.value).join("\u0000");
}

function setStatus(element, text, kind) {
  element.textContent = text;
  element.dataset.kind = kind ?? "";
}

const said = new Map();

/** Say `text()` in the element `id`, and again in the other language when it changes. */
function say(id, text, kind) {
  said.set(id, [text, kind]);
  setStatus($(id), text(), kind);
}

/** Read the four fields; say what each holds; the matrices when all four read. */
function readProblem() {
  const problem = {};
  let complete = true;
  for (const field of problemFields()) {
    const name = field.dataset.name;
    const status = $(`st-${name}`);
    const result = read(field.value);
    field.removeAttribute("aria-invalid");
    if (result.empty) {
      setStatus(status, t().empty, "");
      complete = false;
    } else if (result.error) {
      setStatus(status, `⚠ ${t().notRead(result.error)}`, "error");
      field.setAttribute("aria-invalid", "true");
      complete = false;
    } else {
      const dims = shape(result.value);
      const described = dims.length === 2 ? t().shape(...dims) : dims.length ? dims.join(" × ") : t().scalar;
      setStatus(status, described, "");
      problem[name] = result.value;
    }
  }
  return complete ? problem : null;
}

/** The problem as /v1/grade takes it: by its id while it is as generated. */
function problemReference() {
  if (state.problemId && fieldsText() === state.generatedText) return { problem_id: state.problemId };
  return state.problem;
}

/** The service's faults in the problem, each under the field it points to. */
function showFaults(result) {
  state.faults = result;
  const faults = result.answer?.errors;
  if (result.status !== 422 || !Array.isArray(faults)) {
    say("service-status", () => `⚠ ${refusal(result)}`, "error");
    return;
  }
  const unplaced = [];
  for (const fault of faults) {
    const parts = (fault.pointer ?? "").split("/").filter((part) => part && part !== "problem");
    const name = parts[0];
    if (INPUTS.includes(name)) {
      setStatus($(`st-${name}`), `⚠ ${fault.detail}`, "error");
      $(`in-${name}`).setAttribute("aria-invalid", "true");
    } else {
      unplaced.push(fault.detail);
    }
  }
  say("service-status", () => `⚠ ${[result.answer.detail, ...unplaced].join(" ")}`, "error");
}

/** Ask the service about the problem in the fields: in solve mode its solution, in check mode
 * whether the grader takes it (with an empty submission) and the shapes it expects. */
async function refresh() {
  const asked = ++state.asked;
  state.problem = readProblem();
  state.solution = null;
  state.expected = null;
  state.traced = null;
  state.faults = null;
  state.grade = null; // a grade is of the problem it was asked for
  $("grade").replaceChildren();
  if (state.problemId && fieldsText() !== state.generatedText) {
    state.problemId = null;
    say("problem-note", () => "");
  }
  if (!state.problem || !state.mode) {
    say("service-status", () => "");
    render();
    return;
  }
  say("service-status", () => t().waiting, "busy");
  const result =
    state.mode === "solve"
      ? await post("v1/gradients", { ...state.problem, options: { return_forward: true } })
      : await post("v1/grade", { problem: problemReference(), submission: {} });
  if (asked !== state.asked) return; // the fields changed meanwhile
  if (!result.ok) {
    showFaults(result);
  } else if (state.mode === "solve") {
    state.solution = result.answer;
    say("service-status", () => t().solved(show(result.answer.loss)), "ok");
  } else {
    state.expected = Object.fromEntries(
      QUANTITIES.map((name) => [name, result.answer.quantities[name].expected_shape]),
    );
    say("service-status", () => t().problemOk, "ok");
  }
  render();
}

let pending = null;
function refreshSoon() {
  clearTimeout(pending);
  pending = setTimeout(refresh, 250);
}

function load(matrices) {
  for (const name of INPUTS) $(`in-${name}`).value = write(matrices[name]);
}

function loadExample() {
  state.problemId = null;
  load(EXAMPLE);
  say("problem-note", () => t().exampleLoaded);
  refresh();
}

async function generate(event) {
  event.preventDefault();
  const seedText = $("seed").value.trim();
  const seed = /^-?\d{1,15}$/.test(seedText) ? Number(seedText) : seedText;
  const size = (id) => Number($(id).value);
  const spec = {
    seed,
    shape: { N: size("N"), D_in: size("D_in"), H: size("H_size"), D_out: size("D_out") },
    values: $("values").value,
    zeros_in_H: $("zeros").value,
  };
  const result = await post("v1/problems", spec);
  if (!result.ok) {
    say("problem-note", () => `⚠ ${refusal(result)}`, "error");
    return;
  }
  load(result.answer);
  state.problemId = result.answer.problem_id;
  state.generatedText = fieldsText();
  const id = state.problemId.length > 24 ? `${state.problemId.slice(0, 24)}…` : state.problemId;
  say("problem-note", () => t().generated(id));
  refresh();
}

// ---------------------------------------------------------------- matrices as tables

/** A matrix as a table with its rows and columns numbered from 1, as the grader counts them.
 * `decorate(td, i, j, x)` adds marks to a cell; the number itself is in a `.num` span. */
function table(quantity, caption, matrix, decorate) {
  const [rows, columns] = [matrix.length, matrix[0].length];
  const head = h(
    "tr",
    {},
    h("td", { class: "corner" }),
    Array.from({ length: columns }, (_, j) => h("th", { scope: "col", text: String(j + 1) })),
  );
  const body = matrix.map((values, i) =>
    h(
      "tr",
      {},
      h("th", { scope: "row", text: String(i + 1) }),
      values.map((x, j) => {
        const cell = h("td", { dataset: { r: i, c: j } }, h("span", { class: "num", text: show(x) }));
        decorate?.(cell, i, j, x);
        return cell;
      }),
    ),
  );
  const label = `${caption}, ${t().shape(rows, columns)}`;
  return h(
    "div",
    { class: "scroll", "data-label": label },
    h(
      "table",
      { class: "matrix", dataset: { quantity } },
      h("caption", { text: label }),
      h("thead", {}, head),
      h("tbody", {}, body),
    ),
  );
}

/** A scrolled table can be reached and scrolled with the keyboard; others are no tab stop. */
function keyboardScroll() {
  for (const box of document.querySelectorAll(".scroll")) {
    if (box.scrollWidth > box.clientWidth + 1) {
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", box.dataset.label);
    } else {
      box.removeAttribute("tabindex");
      box.removeAttribute("role");
      box.removeAttribute("aria-label");
    }
  }
}

// ---------------------------------------------------------------- solve: step by step

function maskCell(H) {
  return (cell, i, j) => {
    const value = H[i][j];
    if (value > 0) return;
    const zero = value === 0;
    cell.classList.add("masked");
    if (zero) cell.classList.add("zero");
    cell.append(mark(zero ? ZERO : MASK), hidden(` (${zero ? t().zeroShort : t().maskedShort})`));
  };
}

function tracedCell(rows, columns) {
  return (cell, i, j) => {
    if (!state.traced || !rows(i) || !columns(j)) return;
    cell.classList.add("traced");
    cell.append(mark(TRACE), hidden(` (${t().traced})`));
  };
}

function both(...decorators) {
  return (...args) => decorators.forEach((decorate) => decorate?.(...args));
}

function legend() {
  return h(
    "ul",
    { class: "legend", "aria-label": t().legend },
    h("li", {}, h("span", { class: "swatch masked", "aria-hidden": "true", text: MASK }), ` ${t().masked}`),
    h("li", {}, h("span", { class: "swatch masked zero", "aria-hidden": "true", text: ZERO }), ` ${t().maskedZero}`),
    h("li", {}, h("span", { class: "swatch traced", "aria-hidden": "true", text: TRACE }), ` ${t().traced}`),
  );
}

function step(id, number, title, formulaMarkup, explanation, ...content) {
  return h(
    "article",
    { class: "step", id: `step-${id}`, "aria-labelledby": `title-${id}` },
    h("h4", { id: `title-${id}`, text: `${number}. ${title}` }),
    formula(formulaMarkup),
    h("p", { class: "explain", text: explanation }),
    ...content,
  );
}

function renderSolution() {
  const steps = $("steps");
  steps.replaceChildren();
  const answer = state.solution;
  if (!answer) return;
  const { X, Y, W1, W2 } = state.problem;
  const { H, H_relu, Y_pred } = answer.forward;
  const g = answer.gradients;
  const s = t().steps;
  const [i0, j0] = state.traced ?? [-1, -1];
  const inColumn = (j) => j === j0;
  const all = () => true;

  const dW1 = (cell, i, j, x) => {
    const chosen = state.traced && i === i0 && j === j0;
    const button = h(
      "button",
      {
        type: "button",
        class: "entry",
        "aria-pressed": chosen ? "true" : "false",
        dataset: { r: i, c: j },
        onclick: () => {
          state.traced = [i, j];
          renderSolution();
          steps.querySelector(`button.entry[data-r="${i}"][data-c="${j}"]`)?.focus();
        },
      },
      h("span", { class: "num", text: show(x) }),
      hidden(` (${t().row} ${i + 1}, ${t().column} ${j + 1})`),
    );
    cell.replaceChildren(button);
    if (chosen) {
      cell.classList.add("traced");
      cell.append(mark(TRACE));
    }
  };
  const dH = (cell, i, j, x) => {
    if (H[i][j] > 0) return;
    cell.classList.add("masked");
    if (H[i][j] === 0) cell.classList.add("zero");
    cell.replaceChildren(
      h("del", { class: "was", text: show(g.H_relu[i][j]) }),
      h("span", { "aria-hidden": "true", text: " → " }),
      h("span", { class: "num", text: show(x) }),
      mark(H[i][j] === 0 ? ZERO : MASK),
      hidden(` (${t().zeroedBy})`),
    );
  };

  steps.append(
    h("h3", { text: t().inputs }),
    h(
      "div",
      { class: "inputs" },
      table("X", "X", X, tracedCell(all, (j) => j === i0)),
      table("Y", "Y", Y),
      table("W1", "W1", W1),
      table("W2", "W2", W2),
    ),
    h("h3", { text: t().forward }),
    legend(),
    step("H", 1, "H", FORMULAS.H, s.H, table("H", "H", H, both(maskCell(H), tracedCell(all, inColumn)))),
    step("H_relu", 2, "H_relu", FORMULAS.H_relu, s.H_relu, table("H_relu", "H_relu", H_relu, maskCell(H))),
    step("Y_pred", 3, "Y_pred", FORMULAS.Y_pred, s.Y_pred, table("Y_pred", "Y_pred", Y_pred)),
    step(
      "loss",
      4,
      "loss",
      FORMULAS.loss,
      s.loss,
      h("p", { class: "loss" }, "loss = ", h("output", { dataset: { quantity: "loss" }, text: show(answer.loss) })),
    ),
    h("h3", { text: t().backward }),
    step("grad-Y_pred", 5, LABELS.Y_pred, FORMULAS.Y_pred_grad, s.Y_pred_grad, table("grad-Y_pred", LABELS.Y_pred, g.Y_pred)),
    step("grad-W2", 6, LABELS.W2, FORMULAS.W2_grad, s.W2_grad, table("grad-W2", LABELS.W2, g.W2)),
    step(
      "grad-H_relu",
      7,
      LABELS.H_relu,
      FORMULAS.H_relu_grad,
      s.H_relu_grad,
      table("grad-H_relu", LABELS.H_relu, g.H_relu, both(maskCell(H), tracedCell(all, inColumn))),
    ),
    step("grad-H", 8, LABELS.H, FORMULAS.H_grad, s.H_grad, table("grad-H", LABELS.H, g.H, both(dH, tracedCell(all, inColumn)))),
    step(
      "grad-W1",
      9,
      LABELS.W1,
      FORMULAS.W1_grad,
      s.W1_grad,
      table("grad-W1", LABELS.W1, g.W1, dW1),
      trace(),
    ),
  );
  keyboardScroll();
}

/** Where the chosen entry of dloss/dW1 comes from, with the numbers of each term. */
function trace() {
  const box = h("div", { id: "trace", class: "trace", "aria-live": "polite" });
  if (!state.traced) {
    box.append(h("p", { class: "help", text: t().traceHelp }));
    return box;
  }
  const [i, j] = state.traced;
  const { X, Y, W2 } = state.problem;
  const { H, Y_pred } = state.solution.forward;
  const g = state.solution.gradients;
  const rows = X.length;
  const shown = Math.min(rows, MAX_TRACE_ROWS);
  const at = (r, c) => `[${r + 1}, ${c + 1}]`;
  const terms = (count, term) => {
    const parts = Array.from({ length: Math.min(count, MAX_TRACE_TERMS) }, (_, k) => term(k));
    return parts.join(" + ") + (count > MAX_TRACE_TERMS ? " + …" : "");
  };
  const sum =
    `dloss/dW1${at(i, j)} = ` +
    terms(rows, (n) => `X${at(n, i)} · dloss/dH${at(n, j)}`) +
    " = " +
    terms(rows, (n) => `${show(X[n][i])} · ${show(g.H[n][j])}`) +
    ` = ${show(g.W1[i][j])}`;
  const items = Array.from({ length: shown }, (_, n) => {
    const passes = H[n][j] > 0;
    const outputs = W2[0].length;
    return h(
      "li",
      {},
      h("span", { class: "row-label", text: t().traceRow(n + 1) }),
      " ",
      h("code", {
        text: `dloss/dH${at(n, j)} = dloss/dH_relu${at(n, j)} × [H${at(n, j)} > 0] = ${show(g.H_relu[n][j])} × ${passes ? 1 : 0} = ${show(g.H[n][j])}`,
      }),
      h("span", { class: passes ? "passes" : "blocked" }, passes ? "" : mark(MASK), ` (${passes ? t().traceMask(show(H[n][j])) : t().traceBlocked(show(H[n][j]))})`),
      h("br"),
      t().traceHrelu,
      " ",
      h("code", {
        text:
          `dloss/dH_relu${at(n, j)} = ` +
          terms(outputs, (k) => `${show(g.Y_pred[n][k])} · ${show(W2[j][k])}`) +
          ` = ${show(g.H_relu[n][j])}`,
      }),
      h("br"),
      t().traceYpred,
      " ",
      h("code", {
        text: terms(outputs, (k) => `2 (${show(Y_pred[n][k])} − ${show(Y[n][k])}) = ${show(g.Y_pred[n][k])}`).replaceAll(" + ", "; "),
      }),
    );
  });
  box.append(
    h("h5", { text: t().traceHeading(i + 1, j + 1) }),
    h("p", { text: t().traceSum(i + 1, j + 1) }),
    h("p", {}, h("code", { class: "sum", text: sum })),
    h("ol", { class: "trace-rows" }, items),
  );
  if (rows > shown) box.append(h("p", { text: "…" }));
  return box;
}

// ---------------------------------------------------------------- check my answers

function answerFields() {
  const box = $("answer-fields");
  if (box.childElementCount) return;
  for (const name of GRADIENTS) {
    box.append(
      h(
        "div",
        { class: "field matrix-field" },
        h("label", { for: `ans-${name}` }, h("span", { class: "name", text: LABELS[name] })),
        h("textarea", {
          id: `ans-${name}`,
          rows: "3",
          spellcheck: "false",
          dataset: { name },
          "aria-describedby": `sh-${name} formats`,
        }),
        h("p", { id: `sh-${name}`, class: "status" }),
      ),
    );
  }
}

/** Under each answer field: the shape the grader expects, and what the field holds. */
function describeAnswers() {
  for (const name of QUANTITIES) {
    const expected = state.expected?.[name];
    const wanted = expected ? t().expectedShape(expected.length ? expected.join(" × ") : t().scalar) : "";
    const result = read($(`ans-${name}`).value);
    const problem = result.error ? ` ⚠ ${t().notRead(result.error)}` : "";
    setStatus($(`sh-${name}`), `${wanted}${problem}`.trim(), result.error ? "error" : "");
  }
}

function readSubmission() {
  const submission = { gradients: {} };
  const faults = [];
  const loss = $("ans-loss").value.trim();
  if (loss) {
    const result = read(loss);
    const value = Array.isArray(result.value) && result.value.flat(Infinity).length === 1
      ? result.value.flat(Infinity)[0]
      : result.value;
    if (typeof value === "number") submission.loss = value;
    else faults.push(t().notSubmittable("loss"));
  }
  for (const name of GRADIENTS) {
    const result = read($(`ans-${name}`).value);
    if (result.empty) continue;
    if (result.error) faults.push(t().notSubmittable(LABELS[name]));
    else submission.gradients[name] = result.value;
  }
  return { submission, faults };
}

async function check(event) {
  event?.preventDefault();
  const grade = $("grade");
  const { submission, faults } = readSubmission();
  const nothing = submission.loss === undefined && !Object.keys(submission.gradients).length;
  const problem = problemReference();
  const stop = !problem ? t().fix : faults.length ? faults.join(" ") : nothing ? t().nothing : null;
  if (stop) {
    state.grade = null;
    grade.replaceChildren(h("p", { class: "status", dataset: { kind: "error" }, text: `⚠ ${stop}` }));
    return;
  }
  state.submission = submission;
  await askGrade();
}

async function askGrade() {
  const grade = $("grade");
  grade.replaceChildren(h("p", { class: "status", dataset: { kind: "busy" }, text: t().waiting }));
  const result = await post("v1/grade", { problem: problemReference(), submission: state.submission }, state.language);
  state.grade = result.ok ? result.answer : null;
  if (!result.ok) {
    grade.replaceChildren(h("p", { class: "status", dataset: { kind: "error" }, text: `⚠ ${refusal(result)}` }));
    return;
  }
  renderGrade();
}

function renderGrade() {
  const grade = $("grade");
  const answer = state.grade;
  if (!answer) return;
  const items = QUANTITIES.map((name) => {
    const verdict = answer.quantities[name];
    const submitted = name === "loss" ? null : state.submission.gradients[name];
    const wrong = new Set((verdict.wrong_indices ?? []).map((index) => index.join(",")));
    const marked =
      verdict.status === "incorrect" && Array.isArray(submitted) && shape(submitted).length === 2
        ? [
            table(`answer-${name}`, `${t().yourAnswer}: ${LABELS[name]}`, submitted, (cell, i, j) => {
              if (!wrong.has(`${i},${j}`)) return;
              cell.classList.add("wrong");
              cell.append(mark("✗"), hidden(` (${t().wrongEntry})`));
            }),
            h("p", { class: "help", text: t().wrongMarked(wrong.size, verdict.wrong_count ?? wrong.size) }),
          ]
        : [];
    return h(
      "li",
      { class: `verdict ${verdict.status}`, dataset: { quantity: name, status: verdict.status } },
      h(
        "h4",
        {},
        h("span", { class: "symbol", "aria-hidden": "true", text: SYMBOLS[verdict.status] }),
        ` ${LABELS[name]}: `,
        h("span", { class: "status-text", text: t().status[verdict.status] }),
        h("span", { class: "points", text: ` (${show(verdict.score)} / ${show(verdict.max_score)})` }),
      ),
      h("p", { class: "message", text: verdict.message }),
      verdict.diagnoses.length
        ? h(
            "ul",
            { class: "diagnoses" },
            verdict.diagnoses.map((diagnosis) =>
              h(
                "li",
                { dataset: { code: diagnosis.code } },
                h("span", { class: "tag", text: `${t().diagnosis}: ` }),
                h("code", { text: diagnosis.code }),
                " ",
                h("span", { class: "diagnosis", text: diagnosis.message }),
              ),
            ),
          )
        : null,
      verdict.follows_from
        ? h("p", { class: "follows", text: `↳ ${t().followsFrom(LABELS[verdict.follows_from])}` })
        : null,
      ...marked,
    );
  });
  grade.replaceChildren(
    h("h3", { text: t().grade }),
    h("p", { class: "score", text: t().score(show(answer.score), show(answer.max_score)) }),
    h("ul", { class: "verdicts", lang: answer.language }, items),
  );
  keyboardScroll();
}

// ---------------------------------------------------------------- the page as a whole

function render() {
  $("solve").hidden = state.mode !== "solve";
  $("check").hidden = state.mode !== "check";
  if (state.mode === "solve") renderSolution();
  else $("steps").replaceChildren();
  if (state.mode === "check") {
    answerFields();
    describeAnswers();
  }
}

function translate() {
  const text = t();
  document.documentElement.lang = state.language === "zh" ? "zh-CN" : "en";
  for (const element of document.querySelectorAll("[data-t]")) {
    const value = text[element.dataset.t];
    if (typeof value === "string") element.textContent = value;
  }
  document.title = `gradserve: ${text.title}`;
  const only = state.modes.length === 1 ? (state.modes[0] === "solve" ? text.onlySolve : text.onlyCheck) : "";
  $("only-mode").textContent = only;
}

async function setLanguage(language) {
  state.language = language;
  $("language").value = language;
  sessionStorage.setItem(LANGUAGE_KEY, language);
  translate();
  readProblem();
  if (state.faults) showFaults(state.faults);
  for (const [id, [text, kind]] of said) setStatus($(id), text(), kind);
  render();
  if (state.mode === "check" && state.grade) await askGrade(); // the grader's words, in this language
}

function setMode(mode) {
  state.mode = mode;
  refresh();
}

function start() {
  $("network").innerHTML = NETWORK.join("");
  state.language = sessionStorage.getItem(LANGUAGE_KEY) ?? browserLanguage(navigator.languages);
  $("language").value = state.language;
  translate();
  $("language").addEventListener("change", (event) => setLanguage(event.target.value));

  if (document.body.dataset.keys === "required") {
    $("key-box").hidden = false;
    state.key = sessionStorage.getItem(API_KEY) ?? "";
    $("api-key").value = state.key;
    const useKey = (event) => {
      event.preventDefault();
      state.key = $("api-key").value.trim();
      sessionStorage.setItem(API_KEY, state.key);
      refresh();
    };
    $("api-key").addEventListener("change", useKey);
    $("key-box").addEventListener("submit", useKey);
  }

  for (const mode of ["solve", "check"]) {
    const offered = state.modes.includes(mode);
    $(`mode-${mode}-label`).hidden = !offered;
    $(`mode-${mode}`).disabled = !offered;
    $(`mode-${mode}`).addEventListener("change", (event) => event.target.checked && setMode(mode));
  }
  if (state.modes.length < 2) $("mode-choice").hidden = true;
  state.mode = state.modes[0] ?? null;
  if (state.mode) $(`mode-${state.mode}`).checked = true;

  for (const field of problemFields()) field.addEventListener("input", refreshSoon);
  $("load-example").addEventListener("click", loadExample);
  $("generate-form").addEventListener("submit", generate);
  $("check-form").addEventListener("submit", check);
  $("check-form").addEventListener("input", () => describeAnswers());
  window.addEventListener("resize", keyboardScroll);

  load(EXAMPLE);
  refresh();
}

start();
