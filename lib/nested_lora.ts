/**
 * NestedLoRA output gradients and loss monitors (METHOD §2).
 *
 * The operator output (Tf, Tg, T*f) is never differentiated: each function returns the gradient of
 * the loss with respect to the network outputs, G (B×L), which the trainer injects as the parameter
 * gradient Jᵀ G, i.e. the gradient of Σ_{b,l} f_l(x_b; θ) G_bl with G held constant.
 *
 * Shapes: B batch rows, L modes. Every tensor argument is float32.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Scalar, Tensor, Tensor1D, Tensor2D } from "./types.ts";
import type { SingularEvaluation } from "./operator.ts";
import {
  assertModes,
  type NestingMaskOptions,
  type NestingMasks,
  nestingMasks,
} from "./nesting.ts";

/** How the Gram matrices of an EVD batch are estimated. */
export type GramEstimator = "split" | "full";

/** Output gradient and loss monitor for one batch. */
export interface EvdGradient {
  /** ∂ℒ/∂f, B×L. */
  grad: Tensor2D;
  /** The masked loss estimate (a monitor), scalar. */
  loss: Scalar;
  /** Per-mode squared norms E[f_l²] (the eigenvalue estimator), length L. */
  norms: Tensor1D;
}

/** Output gradients and loss monitor for an SVD or CDK batch. */
export interface SvdGradient {
  /** ∂ℒ/∂f on the x-batch, B₁×L. */
  gradF: Tensor2D;
  /** ∂ℒ/∂g on the y-batch, B₂×L. */
  gradG: Tensor2D;
  /** The masked loss estimate (a monitor), scalar. */
  loss: Scalar;
  /** Per-mode ‖f_l‖·‖g_l‖ (the singular value estimator), length L. */
  norms: Tensor1D;
}

/** Plain-matMul Gram matrix aᵀb / rows (explicit transpose: the WASM transposed kernels are slow). */
function gram(a: Tensor2D, b: Tensor2D): Tensor2D {
  return tf.div(tf.matMul(tf.transpose(a), b), a.shape[0]);
}

function masksAsTensors(masks: NestingMasks): [Tensor1D, Tensor2D] {
  return [tf.tensor1d(masks.vector), tf.tensor2d(masks.matrix)];
}

function assertShape(t: Tensor, shape: number[], name: string): void {
  if (t.rank !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
    throw new RangeError(
      `Mismatched shape for ${name}: got [${t.shape.join(", ")}], expected [${shape.join(", ")}]`,
    );
  }
}

function assertMaskSize(masks: NestingMasks, modes: number): void {
  if (masks.vector.length !== modes || masks.matrix.length !== modes) {
    throw new RangeError(
      `Mismatched masks: they are for ${masks.vector.length} modes, the outputs have ${modes}`,
    );
  }
}

/**
 * EVD output gradient (self-adjoint T). With `split` (default) the batch's first and second halves
 * give independent Gram estimates Λ₁, Λ₂ so the gradient is unbiased:
 * G = −(4/B) m ⊙ Tf; half 1 rows add (2/B₁) f₁ (M ⊙ Λ₂); half 2 rows add (2/B₂) f₂ (M ⊙ Λ₁).
 * With `full` one Gram estimate Λ serves both (exact on a population batch):
 * G = −(4/B) m ⊙ Tf + (4/B) f (M ⊙ Λ).
 *
 * @param f network outputs f(x_b), B×L
 * @param tf_ operator outputs (Tf)(x_b), B×L
 *
 * @example Zero gradient at the eigenfunctions of [[2, 1], [1, 2]]; loss −(3² + 1²), norms λ
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { initBackend, nestedLoraEvdGradient, nestingMasks } from "../mod.ts";
 * await initBackend();
 * const f = tf.tensor2d([[Math.sqrt(3), 1], [Math.sqrt(3), -1]]); // columns √λ_l φ_l
 * const tf_ = tf.matMul<tf.Tensor2D>(tf.tensor2d([[2, 1], [1, 2]]), f); // (Tf)(i) = Σ_j A_ij f(j)
 * const masks = nestingMasks(2, { nesting: "sequential" });
 * const { grad, loss, norms } = nestedLoraEvdGradient(f, tf_, { masks, estimator: "full" });
 * console.log(tf.max(tf.abs(grad)).dataSync()[0].toFixed(4)); // 0.0000
 * console.log(loss.dataSync()[0].toFixed(3)); // -10.000
 * console.log(Array.from(norms.dataSync(), (x) => x.toFixed(3))); // [ "3.000", "1.000" ]
 * ```
 */
export function nestedLoraEvdGradient(
  f: Tensor2D,
  tf_: Tensor2D,
  options: { masks: NestingMasks; estimator?: GramEstimator },
): EvdGradient {
  const [B, L] = f.shape;
  assertShape(tf_, [B, L], "Tf");
  assertMaskSize(options.masks, L);
  const estimator = options.estimator ?? "split";
  if (estimator !== "split" && estimator !== "full") {
    throw new RangeError(`Unknown Gram estimator "${estimator}": allowed values are split, full`);
  }
  if (estimator === "split" && (B % 2 !== 0 || B < 2)) {
    throw new RangeError(
      `Invalid batch size ${B} for split halves: it must be even and at least 2`,
    );
  }
  return tf.tidy(() => {
    const [m, M] = masksAsTensors(options.masks);
    const opTerm = tf.mul(tf.mul(tf_, m), -4 / B) as Tensor2D;
    const diagP = tf.mean(tf.mul(f, tf_), 0);
    let gramTerm: Tensor2D, gramLoss: Scalar, norms: Tensor1D;
    if (estimator === "full") {
      const lam = gram(f, f);
      gramTerm = tf.mul(tf.matMul(f, tf.mul(M, lam)), 4 / B) as Tensor2D;
      gramLoss = tf.sum(tf.mul(M, tf.mul(lam, lam)));
      norms = tf.mean(tf.square(f), 0) as Tensor1D;
    } else {
      const h = B / 2;
      const f1 = tf.slice(f, [0, 0], [h, L]), f2 = tf.slice(f, [h, 0], [h, L]);
      const lam1 = gram(f1, f1), lam2 = gram(f2, f2);
      gramTerm = tf.concat([
        tf.mul(tf.matMul(f1, tf.mul(M, lam2)), 2 / h),
        tf.mul(tf.matMul(f2, tf.mul(M, lam1)), 2 / h),
      ], 0) as Tensor2D;
      gramLoss = tf.sum(tf.mul(M, tf.mul(lam1, lam2)));
      norms = tf.mean(tf.square(f), 0) as Tensor1D;
    }
    const loss = tf.add(tf.mul(-2, tf.sum(tf.mul(m, diagP))), gramLoss) as Scalar;
    return { grad: tf.add(opTerm, gramTerm) as Tensor2D, loss, norms };
  });
}

/**
 * SVD output gradients from an x-batch (size B₁) and an independent y-batch (size B₂):
 * grad_f = (2/B₁)[−m ⊙ Tg + f (M ⊙ Λ_g)], grad_g = (2/B₂)[−m ⊙ T*f + g (M ⊙ Λ_f)],
 * with Λ_f = fᵀf/B₁, Λ_g = gᵀg/B₂.
 *
 * @param evaluation f(x_b) and (Tg)(x_b), B₁×L; g(y_b) and (T*f)(y_b), B₂×L
 *
 * @example Optimum for T = diag(2, 1), joint nesting (m = [1, ½]): loss −Σ m_l σ_l², norms σ
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { initBackend, nestedLoraSvdGradient, nestingMasks } from "../mod.ts";
 * await initBackend();
 * const a = tf.tensor2d([[2, 0], [0, 1]]);
 * const f = tf.tensor2d([[2, 0], [0, Math.SQRT2]]), g = f.clone(); // columns √σ_l φ_l, √σ_l ψ_l
 * const tg = tf.matMul<tf.Tensor2D>(a, g), tsf = tf.matMul<tf.Tensor2D>(a, f, true); // Ag, Aᵀf
 * const masks = nestingMasks(2, { nesting: "joint" });
 * const out = nestedLoraSvdGradient({ f, tg, g, tsf }, { masks });
 * console.log(out.loss.dataSync()[0].toFixed(3)); // -4.500
 * console.log(Array.from(out.norms.dataSync(), (x) => x.toFixed(3))); // [ "2.000", "1.000" ]
 * ```
 */
export function nestedLoraSvdGradient(
  evaluation: SingularEvaluation,
  options: { masks: NestingMasks },
): SvdGradient {
  const { f, tg, g, tsf } = evaluation;
  const [B1, L] = f.shape;
  const B2 = g.shape[0];
  assertShape(tg, [B1, L], "Tg");
  assertShape(g, [B2, L], "g");
  assertShape(tsf, [B2, L], "T*f");
  assertMaskSize(options.masks, L);
  return tf.tidy(() => {
    const [m, M] = masksAsTensors(options.masks);
    const lamF = gram(f, f), lamG = gram(g, g);
    const gradF = tf.mul(
      tf.sub(tf.matMul(f, tf.mul(M, lamG)), tf.mul(m, tg)),
      2 / B1,
    ) as Tensor2D;
    const gradG = tf.mul(
      tf.sub(tf.matMul(g, tf.mul(M, lamF)), tf.mul(m, tsf)),
      2 / B2,
    ) as Tensor2D;
    const diagP = tf.mean(tf.mul(f, tg), 0);
    const loss = tf.add(
      tf.mul(-2, tf.sum(tf.mul(m, diagP))),
      tf.sum(tf.mul(M, tf.mul(lamF, lamG))),
    ) as Scalar;
    const norms = tf.sqrt(
      tf.mul(tf.mean(tf.square(f), 0), tf.mean(tf.square(g), 0)),
    ) as Tensor1D;
    return { gradF, gradG, loss, norms };
  });
}

/**
 * Canonical dependence kernel k = p(x,y)/(p(x)p(y)) from paired samples (x_b, y_b): ⟨f, Kg⟩ =
 * E_{p(x,y)}[f(x)ᵀ g(y)]. A constant mode (σ₀ = 1) is prepended to f and g, masks are of size L+1,
 * grad_f̃ = (2/B)[−m ⊙ g̃ + f̃ (M ⊙ Λ_g̃)] (symmetric for g̃), and the constant's column is dropped.
 * Returned norms are for the L learned modes.
 *
 * @param f f(x_b), B×L
 * @param g g(y_b), B×L (row b paired with row b of f)
 * @param options.masks masks for L+1 modes (constant first)
 *
 * @example x = ±1, y = x with probability 3/4: σ₁ = E[xy] = ½, optimal loss −(1 + σ₁²)
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { initBackend, nestedLoraCdkGradient, nestingMasks } from "../mod.ts";
 * await initBackend();
 * const x = tf.tensor2d([1, 1, 1, 1, -1, -1, -1, -1], [8, 1]);
 * const y = tf.tensor2d([1, 1, 1, -1, -1, -1, -1, 1], [8, 1]);
 * const masks = nestingMasks(2, { nesting: "sequential" }); // constant mode + 1 learned mode
 * const out = nestedLoraCdkGradient(tf.mul(x, Math.SQRT1_2), tf.mul(y, Math.SQRT1_2), { masks });
 * console.log(out.loss.dataSync()[0].toFixed(3)); // -1.250
 * console.log(out.norms.dataSync()[0].toFixed(3)); // 0.500
 * ```
 */
export function nestedLoraCdkGradient(
  f: Tensor2D,
  g: Tensor2D,
  options: { masks: NestingMasks },
): SvdGradient {
  const [B, L] = f.shape;
  assertShape(g, [B, L], "g");
  assertMaskSize(options.masks, L + 1);
  return tf.tidy(() => {
    const [m, M] = masksAsTensors(options.masks);
    const one = tf.ones([B, 1]);
    const fe = tf.concat([one, f], 1) as Tensor2D, ge = tf.concat([one, g], 1) as Tensor2D;
    const lamF = gram(fe, fe), lamG = gram(ge, ge);
    const gF = tf.mul(tf.sub(tf.matMul(fe, tf.mul(M, lamG)), tf.mul(m, ge)), 2 / B);
    const gG = tf.mul(tf.sub(tf.matMul(ge, tf.mul(M, lamF)), tf.mul(m, fe)), 2 / B);
    const loss = tf.add(
      tf.mul(-2, tf.sum(tf.mul(m, tf.mean(tf.mul(fe, ge), 0)))),
      tf.sum(tf.mul(M, tf.mul(lamF, lamG))),
    ) as Scalar;
    const norms = tf.sqrt(
      tf.mul(tf.mean(tf.square(f), 0), tf.mean(tf.square(g), 0)),
    ) as Tensor1D;
    return {
      gradF: tf.slice(gF, [0, 1], [B, L]) as Tensor2D,
      gradG: tf.slice(gG, [0, 1], [B, L]) as Tensor2D,
      loss,
      norms,
    };
  });
}

/** Options of {@linkcode NestedLoraLoss}. */
export interface NestedLoraLossOptions extends NestingMaskOptions {
  /** Number of learned modes L (the CDK's constant mode is extra). */
  modes: number;
  /** Gram estimator for EVD batches; default `split`. */
  estimator?: GramEstimator;
}

/**
 * NestedLoRA as an object: holds the masks for a fixed L and nesting, and gives the output
 * gradients of EVD, SVD and CDK batches (the functional forms are `nestedLora*Gradient`).
 *
 * @example Population gradient of a 2-mode EVD batch
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { NestedLoraLoss } from "./nested_lora.ts";
 * const loss = new NestedLoraLoss({ modes: 2, nesting: "sequential", estimator: "full" });
 * const f = tf.tensor2d([[1, 0], [0, 1]]);
 * const { grad } = loss.evd(f, tf.mul(f, 2) as tf.Tensor2D);
 * console.log(grad.shape); // [2, 2]
 * ```
 */
export class NestedLoraLoss {
  /** Number of learned modes. */
  readonly modes: number;
  /** Masks for the learned modes. */
  readonly masks: NestingMasks;
  /** Masks for the CDK (constant mode first, L+1 modes). */
  readonly cdkMasks: NestingMasks;
  /** Gram estimator used for EVD batches. */
  readonly estimator: GramEstimator;

  /** Builds the masks; throws on bad modes, nesting or weights. */
  constructor(options: NestedLoraLossOptions) {
    assertModes(options.modes);
    this.modes = options.modes;
    this.masks = nestingMasks(options.modes, options);
    const cdkWeights = options.weights ? [options.weights[0], ...options.weights] : undefined;
    this.cdkMasks = nestingMasks(options.modes + 1, { ...options, weights: cdkWeights });
    this.estimator = options.estimator ?? "split";
  }

  /** EVD output gradient, see {@linkcode nestedLoraEvdGradient} (estimator: this loss's by default). */
  evd(f: Tensor2D, tf_: Tensor2D, options: { estimator?: GramEstimator } = {}): EvdGradient {
    return nestedLoraEvdGradient(f, tf_, {
      masks: this.masks,
      estimator: options.estimator ?? this.estimator,
    });
  }

  /** SVD output gradients, see {@linkcode nestedLoraSvdGradient}. */
  svd(evaluation: SingularEvaluation): SvdGradient {
    return nestedLoraSvdGradient(evaluation, { masks: this.masks });
  }

  /** CDK output gradients, see {@linkcode nestedLoraCdkGradient}. */
  cdk(f: Tensor2D, g: Tensor2D): SvdGradient {
    return nestedLoraCdkGradient(f, g, { masks: this.cdkMasks });
  }

  /** Optimal value of the masked loss for a spectrum σ: −Σ_l m_l σ_l² (EVD: σ = λ). */
  optimalValue(spectrum: number[]): number {
    if (spectrum.length !== this.modes) {
      throw new RangeError(
        `Mismatched spectrum: ${spectrum.length} values for ${this.modes} modes`,
      );
    }
    return -spectrum.reduce((s, x, l) => s + this.masks.vector[l] * x * x, 0);
  }
}
