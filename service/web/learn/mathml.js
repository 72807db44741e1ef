// The formulas of the forward and backward pass, in MathML, which the browser typesets itself:
// no script, no font and no stylesheet to load, and screen readers read it as mathematics.

const mi = (name) => `<mi>${name}</mi>`;
const mo = (op) => `<mo>${op}</mo>`;
const mn = (n) => `<mn>${n}</mn>`;
const row = (...parts) => `<mrow>${parts.join("")}</mrow>`;
const sub = (base, index) => `<msub>${base}${index}</msub>`;
const sup = (base, power) => `<msup>${base}${power}</msup>`;
const T = (base) => sup(base, mi("T"));

export const X = mi("X");
export const Y = mi("Y");
export const H = mi("H");
export const W1 = sub(mi("W"), mn(1));
export const W2 = sub(mi("W"), mn(2));
export const H_relu = sub(mi("H"), mi("relu"));
export const Y_pred = sub(mi("Y"), mi("pred"));
const loss = mi("loss");

/** dloss/dK as a fraction of partials. */
export const d = (quantity) =>
  `<mfrac>${row(mi("∂"), loss)}${row(mi("∂"), quantity)}</mfrac>`;

const math = (...parts) => `<math display="block">${parts.join("")}</math>`;
const eq = (left, ...right) => math(left, mo("="), ...right);
const paren = (...parts) => row(mo("("), ...parts, mo(")"));

export const FORMULAS = {
  H: eq(H, X, mo("&#x2062;"), W1),
  H_relu: eq(H_relu, mi("max"), paren(H, mo(","), mn(0))),
  Y_pred: eq(Y_pred, H_relu, mo("&#x2062;"), W2),
  loss: eq(
    loss,
    row(mo("‖"), Y_pred, mo("−"), Y, `<msubsup>${mo("‖")}${mi("F")}${mn(2)}</msubsup>`),
    mo("="),
    row(
      sub(mo("∑"), row(mi("n"), mo(","), mi("k"))),
      `<msubsup>${paren(Y_pred, mo("−"), Y)}${row(mi("n"), mi("k"))}${mn(2)}</msubsup>`,
    ),
  ),
  Y_pred_grad: eq(d(Y_pred), mn(2), paren(Y_pred, mo("−"), Y)),
  W2_grad: eq(d(W2), T(H_relu), mo("&#x2062;"), d(Y_pred)),
  H_relu_grad: eq(d(H_relu), d(Y_pred), mo("&#x2062;"), T(W2)),
  H_grad: eq(d(H), d(H_relu), mo("⊙"), row(mo("["), H, mo("&gt;"), mn(0), mo("]"))),
  W1_grad: eq(d(W1), T(X), mo("&#x2062;"), d(H)),
};
// The formula of each step, keyed as the page's steps are.

/** The network, as the page's header shows it. */
export const NETWORK = [FORMULAS.H, FORMULAS.H_relu, FORMULAS.Y_pred, FORMULAS.loss];
