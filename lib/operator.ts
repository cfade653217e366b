/**
 * The operator interface NestedLoRA trains against. An operator owns its sampling measure: it draws
 * batches and, given the model(s), returns the network outputs and the operator applied to them.
 * Operator outputs are computed outside the gradient tape; the trainer differentiates only f (and g).
 *
 * @module
 */
import type { Tensor, Tensor2D } from "./types.ts";
import type { Model, Pullback } from "./models.ts";
import type { Rng } from "./random.ts";

/** A batch of model inputs: `x` for f, and `y` for g (SVD: independent; CDK: paired with `x`). */
export interface OperatorBatch {
  /** Inputs of f, [B, d] float32 or [B] int32 for index domains. */
  x: Tensor;
  /** Inputs of g (SVD and CDK only). */
  y?: Tensor;
  /** Operator-specific tensors prepared with the batch (potential values, weights, …). */
  data?: Record<string, Tensor>;
}

/**
 * Frees every tensor of a batch.
 *
 * @example A drawn batch leaves no tensor behind
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { disposeBatch, initBackend, Rng, SymmetricMatrixOperator } from "../mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[2, 1], [1, 2]]);
 * const before = tf.memory().numTensors;
 * const batch = op.sample(new Rng(0), 4);
 * disposeBatch(batch);
 * console.log(tf.memory().numTensors - before); // 0
 * ```
 */
export function disposeBatch(batch: OperatorBatch): void {
  batch.x.dispose();
  batch.y?.dispose();
  for (const t of Object.values(batch.data ?? {})) t.dispose();
}

/** f and Tf at a batch (self-adjoint T, EVD). */
export interface EigenEvaluation {
  /** f(x_b), B×L. */
  f: Tensor2D;
  /** (Tf)(x_b), B×L. */
  tf: Tensor2D;
}

/** f and Tf at a batch with the reverse pass of the trained f ({@linkcode Pullback}). */
export interface PulledEvaluation extends EigenEvaluation {
  /** θ-gradients of Σ g·f for an output gradient g of f. */
  pullback: Pullback;
}

/** f, Tg, g, T*f at a batch (SVD). */
export interface SingularEvaluation {
  /** f(x_b), B₁×L. */
  f: Tensor2D;
  /** (Tg)(x_b), B₁×L. */
  tg: Tensor2D;
  /** g(y_b), B₂×L. */
  g: Tensor2D;
  /** (T*f)(y_b), B₂×L. */
  tsf: Tensor2D;
}

/** A self-adjoint operator on L²(p) for the EVD: learns f = (√λ_l φ_l). */
export interface EigenOperator {
  /** Discriminator. */
  readonly kind: "evd";
  /** Draws B i.i.d. inputs from the sampling measure p. */
  sample(rng: Rng, batchSize: number): OperatorBatch;
  /**
   * The points `sample` would draw (the same draws from `rng`), row-major [B, d], without preparing
   * the batch's data: for a gradient source that reads only the points and prepares its shards itself.
   */
  samplePoints?(rng: Rng, batchSize: number): Float32Array;
  /** The whole domain as one batch (finite domains only), for exact population gradients. */
  populationBatch?(): OperatorBatch;
  /** f and Tf at the batch (untaped). */
  evaluate(model: Model, batch: OperatorBatch): EigenEvaluation;
  /**
   * The f the loss sees, on the gradient tape (default `model.apply(batch.x)`); an operator whose
   * model represents something else (e.g. ψ, with f = ψ/√p) maps it here.
   */
  trainedOutput?(model: Model, batch: OperatorBatch): Tensor2D;
  /**
   * f and Tf at the batch with the reverse pass of the trained f kept (`trainedOutput`'s gradient,
   * without a second evaluation), where the operator and the model support it (the model has
   * `reversePass`); null where they do not. The caller disposes f, tf and the pullback.
   */
  evaluateWithPullback?(model: Model, batch: OperatorBatch): PulledEvaluation | null;
  /** Sets the shift s of T = A + s·I, for operators trained with a shift schedule. */
  setShift?(shift: number): void;
}

/** The two networks of an SVD: f on X (the left functions) and g on Y (the right ones). */
export interface SingularModels {
  /** f, learning √σ φ on X. */
  f: Model;
  /** g, learning √σ ψ on Y. */
  g: Model;
}

/** An operator T: L²(q) → L²(p) for the SVD: learns f = √σ φ on X and g = √σ ψ on Y. */
export interface SingularOperator {
  /** Discriminator. */
  readonly kind: "svd";
  /** Draws an x-batch of `batchSize` and an independent y-batch of `options.yBatchSize` (default equal). */
  sample(rng: Rng, batchSize: number, options?: { yBatchSize?: number }): OperatorBatch;
  /** Both whole domains (finite domains only). */
  populationBatch?(): OperatorBatch;
  /** f, Tg, g, T*f at the batch (untaped). */
  evaluate(models: SingularModels, batch: OperatorBatch): SingularEvaluation;
}

/**
 * The canonical dependence kernel of paired data: samples (x_b, y_b) ~ p(x, y). Nothing is applied:
 * the gradient uses g(y_b) in place of (Kg)(x_b) (METHOD §2).
 */
export interface DependenceOperator {
  /** Discriminator. */
  readonly kind: "cdk";
  /** Draws B pairs. */
  sample(rng: Rng, batchSize: number): OperatorBatch;
}

/** Any operator the trainer accepts. */
export type Operator = EigenOperator | SingularOperator | DependenceOperator;
