/**
 * Matrices as operators on functions of a discrete index under the uniform measure.
 *
 * Inner products are means, ⟨a, b⟩ = (1/n) Σ_i a_i b_i. A symmetric n×n matrix A acts as
 * (Tf)(i) = Σ_j A_ij f(j), self-adjoint with the eigenvalues of A; its unit eigenfunctions are
 * φ = √n·v. A rectangular m×n matrix acts from functions on its n columns to functions on its m rows
 * as (Tg)(i) = √(m/n) Σ_j A_ij g(j), scaled so that T's singular values are exactly A's; then
 * (T*f)(j) = √(n/m) Σ_i A_ij f(i).
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor1D, Tensor2D } from "../lib/types.ts";
import { eigenReport, singularReport, type SpectralReport } from "../lib/evaluate.ts";
import { eigh, type Matrix, orthonormalColumns, svd } from "../lib/linalg.ts";
import type { Model } from "../lib/models.ts";
import type {
  EigenEvaluation,
  EigenOperator,
  OperatorBatch,
  SingularEvaluation,
  SingularModels,
  SingularOperator,
} from "../lib/operator.ts";
import type { Rng } from "../lib/random.ts";
import { assertPositiveInteger } from "../lib/checks.ts";

/** Options of {@linkcode matrixWithSpectrum}. */
export interface MatrixWithSpectrumOptions {
  /** Number of rows m. */
  rows: number;
  /** Number of columns n (omit for a symmetric m×m matrix). */
  cols?: number;
  /** Eigenvalues (symmetric) or singular values, at most min(m, n); missing ones are 0. */
  values: number[];
  /** Generator for the random orthogonal factors. */
  rng: Rng;
}

/**
 * A random matrix with a prescribed spectrum: Q diag(values) Qᵀ (symmetric) or U diag(values) Vᵀ,
 * with Haar-random orthonormal factors.
 *
 * @example
 * ```ts
 * import { matrixWithSpectrum, Rng, SymmetricMatrixOperator } from "../mod.ts";
 * const a = matrixWithSpectrum({ rows: 4, values: [3, 2, 1, 0.5], rng: new Rng(0) });
 * console.log(new SymmetricMatrixOperator(a).spectrum().values[0].toFixed(6)); // "3.000000"
 * ```
 */
export function matrixWithSpectrum(options: MatrixWithSpectrumOptions): Matrix {
  const m = options.rows, n = options.cols ?? options.rows;
  for (const [v, name] of [[m, "rows"], [n, "columns"]] as const) {
    assertPositiveInteger(v, `number of ${name}`);
  }
  const k = Math.min(m, n);
  if (options.values.length > k) {
    throw new RangeError(`Too many values: ${options.values.length} given, at most ${k} fit`);
  }
  const gauss = (r: number, c: number) =>
    Array.from({ length: r }, () => Array.from({ length: c }, () => options.rng.normal()));
  const u = orthonormalColumns(gauss(m, k));
  const v = options.cols === undefined ? u : orthonormalColumns(gauss(n, k));
  const out = Array.from({ length: m }, () => new Array<number>(n).fill(0));
  options.values.forEach((s, l) => {
    for (let i = 0; i < m; i++) {
      const a = s * u[i][l];
      for (let j = 0; j < n; j++) out[i][j] += a * v[j][l];
    }
  });
  if (options.cols === undefined) {
    for (let i = 0; i < m; i++) for (let j = 0; j < i; j++) out[j][i] = out[i][j];
  }
  return out;
}

function checkMatrix(a: Matrix, name: string): [number, number] {
  if (!Array.isArray(a) || a.length === 0 || !Array.isArray(a[0]) || a[0].length === 0) {
    throw new TypeError(`Invalid ${name}: expected a non-empty array of rows`);
  }
  const cols = a[0].length;
  a.forEach((row, i) => {
    if (row.length !== cols) {
      throw new RangeError(`Invalid ${name}: row ${i} has ${row.length} entries, expected ${cols}`);
    }
    row.forEach((x, j) => {
      if (!Number.isFinite(x)) throw new RangeError(`Invalid ${name}: entry (${i}, ${j}) is ${x}`);
    });
  });
  return [a.length, cols];
}

function range(n: number): Tensor1D {
  return tf.range(0, n, 1, "int32") as Tensor1D;
}

/**
 * A symmetric matrix as a self-adjoint operator (EVD). Tf is exact: it evaluates the model on all n
 * indices outside the gradient tape.
 *
 * @example
 * ```ts
 * import { SymmetricMatrixOperator } from "../mod.ts";
 * const op = new SymmetricMatrixOperator([[2, 1], [1, 2]]);
 * console.log(op.spectrum().values); // [3, 1] (up to round-off)
 * ```
 */
export class SymmetricMatrixOperator implements EigenOperator {
  readonly kind = "evd";
  /** Number of indices n. */
  readonly size: number;
  /** The matrix. */
  readonly matrix: Matrix;
  #a: Tensor2D | null = null;

  /** Wraps a symmetric matrix; throws if it is not square or not symmetric. */
  constructor(matrix: Matrix) {
    const [n, c] = checkMatrix(matrix, "symmetric matrix");
    if (n !== c) throw new RangeError(`Invalid symmetric matrix: shape ${n}×${c} is not square`);
    let scale = 0;
    for (const row of matrix) for (const x of row) scale = Math.max(scale, Math.abs(x));
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++) {
        if (Math.abs(matrix[i][j] - matrix[j][i]) > 1e-9 * Math.max(scale, 1)) {
          throw new RangeError(
            `Invalid symmetric matrix: entries (${i}, ${j}) and (${j}, ${i}) differ`,
          );
        }
      }
    }
    this.size = n;
    this.matrix = matrix;
  }

  #tensor(): Tensor2D {
    if (!this.#a || this.#a.isDisposed) this.#a = tf.keep(tf.tensor2d(this.matrix));
    return this.#a;
  }

  /** B indices drawn uniformly with replacement. */
  sample(rng: Rng, batchSize: number): OperatorBatch {
    return { x: tf.tensor1d(rng.ints(batchSize, this.size), "int32") };
  }

  /** All n indices. */
  populationBatch(): OperatorBatch {
    return { x: range(this.size) };
  }

  /** f(i_b) and (Tf)(i_b) = Σ_j A_{i_b j} f(j). */
  evaluate(model: Model, batch: OperatorBatch): EigenEvaluation {
    return tf.tidy(() => {
      const fAll = model.apply(range(this.size));
      const rows = tf.gather(this.#tensor(), batch.x as Tensor1D);
      return {
        f: tf.gather(fAll, batch.x as Tensor1D) as Tensor2D,
        tf: tf.matMul(rows, fAll) as Tensor2D,
      };
    });
  }

  /** The exact spectrum: eigenvalues (descending) and unit eigenfunctions φ_l = √n·v_l as columns. */
  spectrum(): { values: number[]; functions: Matrix } {
    const { values, vectors } = eigh(this.matrix);
    const s = Math.sqrt(this.size);
    return { values, functions: vectors.map((row) => row.map((x) => x * s)) };
  }

  /** Metrics of a model's L modes against the exact spectrum on all n indices. */
  report(model: Model): SpectralReport {
    const [f, tf_] = tf.tidy(() => {
      const all = this.populationBatch();
      const e = this.evaluate(model, all);
      return [e.f.arraySync(), e.tf.arraySync()];
    });
    const { values, functions } = this.spectrum();
    return eigenReport(f, tf_, { values: values.slice(0, model.outputDim), functions });
  }

  /** Frees the cached matrix tensor. */
  dispose(): void {
    this.#a?.dispose();
    this.#a = null;
  }
}

/**
 * A rectangular m×n matrix as an operator from functions on its columns (Y) to functions on its rows
 * (X), scaled so its singular values are the matrix's (SVD).
 *
 * @example
 * ```ts
 * import { MatrixOperator } from "../mod.ts";
 * const op = new MatrixOperator([[3, 0], [0, 2], [0, 0]]);
 * console.log(op.spectrum().values); // [3, 2] (up to round-off)
 * ```
 */
export class MatrixOperator implements SingularOperator {
  readonly kind = "svd";
  /** Number of rows m (the x-domain). */
  readonly rows: number;
  /** Number of columns n (the y-domain). */
  readonly cols: number;
  /** The matrix. */
  readonly matrix: Matrix;
  #a: Tensor2D | null = null;
  #at: Tensor2D | null = null;

  /** Wraps an m×n matrix. */
  constructor(matrix: Matrix) {
    [this.rows, this.cols] = checkMatrix(matrix, "matrix");
    this.matrix = matrix;
  }

  #tensors(): [Tensor2D, Tensor2D] {
    if (!this.#a || this.#a.isDisposed) {
      const s = Math.sqrt(this.rows / this.cols);
      this.#a = tf.keep(tf.mul(tf.tensor2d(this.matrix), s) as Tensor2D);
      this.#at = tf.keep(tf.mul(tf.transpose(tf.tensor2d(this.matrix)), 1 / s) as Tensor2D);
    }
    return [this.#a, this.#at!];
  }

  /** A row-index batch of `batchSize` and an independent column-index batch of `options.yBatchSize`. */
  sample(rng: Rng, batchSize: number, options: { yBatchSize?: number } = {}): OperatorBatch {
    const yBatchSize = options.yBatchSize ?? batchSize;
    return {
      x: tf.tensor1d(rng.ints(batchSize, this.rows), "int32"),
      y: tf.tensor1d(rng.ints(yBatchSize, this.cols), "int32"),
    };
  }

  /** All rows and all columns. */
  populationBatch(): OperatorBatch {
    return { x: range(this.rows), y: range(this.cols) };
  }

  /** f, Tg at the row batch and g, T*f at the column batch. */
  evaluate(models: SingularModels, batch: OperatorBatch): SingularEvaluation {
    const { f, g } = models;
    return tf.tidy(() => {
      const [a, at] = this.#tensors();
      const fAll = f.apply(range(this.rows)), gAll = g.apply(range(this.cols));
      const x = batch.x as Tensor1D, y = batch.y as Tensor1D;
      return {
        f: tf.gather(fAll, x) as Tensor2D,
        tg: tf.matMul(tf.gather(a, x), gAll) as Tensor2D,
        g: tf.gather(gAll, y) as Tensor2D,
        tsf: tf.matMul(tf.gather(at, y), fAll) as Tensor2D,
      };
    });
  }

  /**
   * The exact SVD: singular values (descending), unit left functions √m·u_l on rows and right
   * functions √n·v_l on columns (as columns of the returned matrices).
   */
  spectrum(): { values: number[]; left: Matrix; right: Matrix } {
    const r = svd(this.matrix);
    const sm = Math.sqrt(this.rows), sn = Math.sqrt(this.cols);
    return {
      values: r.s,
      left: r.u.map((row) => row.map((x) => x * sm)),
      right: r.v.map((row) => row.map((x) => x * sn)),
    };
  }

  /** Metrics of f and g against the exact SVD on all rows and columns. */
  report(f: Model, g: Model): SpectralReport {
    const [fa, tga, ga] = tf.tidy(() => {
      const e = this.evaluate({ f, g }, this.populationBatch());
      return [e.f.arraySync(), e.tg.arraySync(), e.g.arraySync()];
    });
    const { values, left, right } = this.spectrum();
    return singularReport({ f: fa, tg: tga, g: ga }, {
      values: values.slice(0, f.outputDim),
      left,
      right,
    });
  }

  /** Frees cached tensors. */
  dispose(): void {
    this.#a?.dispose();
    this.#at?.dispose();
    this.#a = this.#at = null;
  }
}
