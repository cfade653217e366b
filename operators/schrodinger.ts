/**
 * Schrödinger operators H = −Δ + V on R^d, trained as T = scale·(−H) + shift·I so that the wanted
 * low energies become the top positive eigenvalues (METHOD §3).
 *
 * Importance representation: with samples x ~ p the learned eigenfunction is ψ = √p·f, inner
 * products are batch means of f, and the operator acts on f as
 *   (Tf)(x) = scale·(Δψ/√p − V f) + shift·f,  Δψ/√p = Δf + 2 g·∇f + q f,
 * with g = ∇√p/√p and q = Δ√p/√p supplied analytically by the density. The kinetic term is
 * computed one of three ways: `forward` (exact forward-mode jets, the default), `fd` (the reference's
 * 5-point finite differences on √p·f, √p clamped below at 1e-5) or `autodiff` (nested tf.grad; a test
 * oracle). Tf is never differentiated.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor2D, Tensor3D } from "../lib/types.ts";
import {
  sampleQuasiRandom,
  SAMPLING_METHODS,
  type SamplingDensity,
  type SamplingMethod,
} from "../lib/densities.ts";
import { eigenReport, type SpectralReport } from "../lib/evaluate.ts";
import type { Jet, JetOptions, Model, Pullback } from "../lib/models.ts";
import type {
  EigenEvaluation,
  EigenOperator,
  OperatorBatch,
  PulledEvaluation,
} from "../lib/operator.ts";
import type { Rng } from "../lib/random.ts";
import { assertFinite, assertPositive, assertPositiveInteger, parseChoice } from "../lib/checks.ts";

/** How the Laplacian is computed. */
export const KINETIC_METHODS = ["forward", "fd", "autodiff"] as const;

/** Name of a kinetic-term method. */
export type KineticMethod = typeof KINETIC_METHODS[number];

/** A potential V(x), evaluated on the host in float64 (no gradient is ever needed). */
export type Potential = (x: number[]) => number;

/**
 * Throws unless `name` is a known kinetic method.
 *
 * @example A known method, and an unknown one
 * ```ts
 * import { parseKineticMethod } from "../mod.ts";
 * console.log(parseKineticMethod("fd")); // fd
 * try {
 *   parseKineticMethod("exact");
 * } catch (e) {
 *   console.log((e as Error).message.split(": ")[1]); // allowed values are forward, fd, autodiff
 * }
 * ```
 */
export function parseKineticMethod(name: string): KineticMethod {
  return parseChoice(name, { what: "kinetic method", allowed: KINETIC_METHODS });
}

/**
 * Coulomb potential −charge/|x| (hydrogen-like in any dimension).
 *
 * @example At |x| = 5, for charge 1 and 2
 * ```ts
 * import { coulombPotential } from "../mod.ts";
 * console.log(coulombPotential()([3, 4]), coulombPotential(2)([3, 4])); // -0.2 -0.4
 * ```
 */
export function coulombPotential(charge = 1): Potential {
  return (x) => -charge / Math.hypot(...x);
}

/**
 * Harmonic potential Σ_k ω_k² x_k² (isotropic when all ω are equal).
 *
 * @example ω = (1, 2): V(1, 1) = 1 + 4, V(3, 0.5) = 9 + 1
 * ```ts
 * import { harmonicPotential } from "../mod.ts";
 * const v = harmonicPotential([1, 2]);
 * console.log(v([1, 1]), v([3, 0.5])); // 5 10
 * ```
 */
export function harmonicPotential(omegas: number[]): Potential {
  if (omegas.length === 0) throw new RangeError("Invalid frequencies: at least one ω is needed");
  omegas.forEach((w, k) => {
    if (!(w > 0)) throw new RangeError(`Invalid frequency ${w} on axis ${k}: it must be positive`);
  });
  return (x) => x.reduce((s, v, k) => s + omegas[k] * omegas[k] * v * v, 0);
}

/** Options of {@linkcode SchrodingerOperator}. */
export interface SchrodingerOptions {
  /** Dimension d. */
  dim: number;
  /** The potential V. */
  potential: Potential;
  /** The sampling density p of the importance representation. */
  density: SamplingDensity;
  /** T = scale·(−H) + shift; default 1. */
  scale?: number;
  /** Default 0. */
  shift?: number;
  /** Kinetic term: `forward` (default), `fd` or `autodiff`. */
  kinetic?: string;
  /** Finite-difference step ε for `fd`; default 0.01. */
  fdEpsilon?: number;
  /**
   * What the model represents: `importance` (default, the reference's) — the model is f and
   * ψ = √p·f; `psi` — the model is ψ itself and the loss sees f = ψ/√p, so Tf = (T ψ)/√p needs no
   * derivatives of p at all (any density works, e.g. a mixture).
   */
  representation?: string;
  /**
   * How batches are drawn: `random` (default; independent draws) or `quasirandom` (randomised
   * quasi-Monte Carlo, see `sampleQuasiRandom`: unbiased, much lower variance; needs a density with
   * `fromUniform`).
   */
  sampling?: SamplingMethod;
  /**
   * Independent quasi-random blocks per batch (default 2, the split halves). Data-parallel runs
   * shard a batch into replicas that each split their shard in halves: use 2 × replicas so every
   * half is made of whole blocks.
   */
  sampleBlocks?: number;
}

/** What a model represents for a {@linkcode SchrodingerOperator}. */
export const REPRESENTATIONS = ["importance", "psi"] as const;

/** Host-side arrays for a set of points. */
interface Prepared {
  n: number;
  x: Float32Array;
  v: Float32Array;
  mask: Float32Array;
  g: Float32Array;
  q: Float32Array;
  sqrtP: Float64Array;
}

/**
 * H = −Δ + V as a self-adjoint operator on L²(p) under the importance representation.
 *
 * @example 1-D harmonic oscillator operator
 * ```ts
 * import { gaussianDensity, harmonicPotential, SchrodingerOperator } from "../mod.ts";
 * const op = new SchrodingerOperator({
 *   dim: 1,
 *   potential: harmonicPotential([1]),
 *   density: gaussianDensity({ dim: 1, std: 1 }),
 *   scale: 1,
 *   shift: 8,
 * });
 * console.log(op.toEigenvalue(1)); // 7: energy 1 becomes T-eigenvalue 8 − 1
 * ```
 */
export class SchrodingerOperator implements EigenOperator {
  readonly kind = "evd";
  /** Dimension d. */
  readonly dim: number;
  /** The potential. */
  readonly potential: Potential;
  /** The sampling density. */
  readonly density: SamplingDensity;
  /** Scale of −H in T. */
  readonly scale: number;
  #shift: number;
  /** The kinetic-term method. */
  readonly kinetic: KineticMethod;
  /** The finite-difference step. */
  readonly fdEpsilon: number;
  /** `importance` (model = f) or `psi` (model = ψ, f = ψ/√p). */
  readonly representation: typeof REPRESENTATIONS[number];
  /** How batches are drawn. */
  readonly sampling: SamplingMethod;
  /** Independent quasi-random blocks per batch. */
  readonly sampleBlocks: number;

  /** Validates the settings. */
  constructor(options: SchrodingerOptions) {
    assertPositiveInteger(options.dim, "dimension");
    if (options.density.dim !== options.dim) {
      throw new RangeError(
        `Mismatched density: it is ${options.density.dim}-dimensional, the operator ${options.dim}-dimensional`,
      );
    }
    this.dim = options.dim;
    this.potential = options.potential;
    this.density = options.density;
    this.scale = options.scale ?? 1;
    assertPositive(this.scale, "scale");
    this.#shift = 0;
    this.setShift(options.shift ?? 0);
    this.kinetic = parseKineticMethod(options.kinetic ?? "forward");
    this.fdEpsilon = options.fdEpsilon ?? 0.01;
    const rep = options.representation ?? "importance";
    this.representation = parseChoice(rep, { what: "representation", allowed: REPRESENTATIONS });
    assertPositive(this.fdEpsilon, "finite-difference step");
    const sampling = parseChoice(options.sampling ?? "random", {
      what: "sampling",
      allowed: SAMPLING_METHODS,
    });
    if (sampling === "quasirandom" && !this.density.fromUniform) {
      throw new RangeError(
        `Invalid sampling "quasirandom": density ${this.density.name} has no fromUniform map; use "random"`,
      );
    }
    this.sampling = sampling;
    this.sampleBlocks = options.sampleBlocks ?? 2;
    assertPositiveInteger(this.sampleBlocks, "sample block count");
  }

  /** Shift of T = scale·(−H) + shift. */
  get shift(): number {
    return this.#shift;
  }

  /**
   * Changes the shift (a shift schedule): the eigenfunctions stay, every T-eigenvalue moves with it.
   */
  setShift(shift: number): void {
    assertFinite(shift, "shift");
    this.#shift = shift;
  }

  /** T-eigenvalue of an energy E: scale·(−E) + shift. */
  toEigenvalue(energy: number): number {
    return this.scale * -energy + this.shift;
  }

  /** Energy of a T-eigenvalue λ: (shift − λ)/scale. */
  toEnergy(eigenvalue: number): number {
    return (this.shift - eigenvalue) / this.scale;
  }

  #prepare(x: Float32Array, n: number): Prepared {
    const d = this.dim;
    const v = new Float32Array(n), mask = new Float32Array(n);
    const pt = new Array<number>(d);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < d; k++) pt[k] = x[i * d + k];
      const value = this.potential(pt);
      const ok = Number.isFinite(value);
      v[i] = ok ? value : 0;
      mask[i] = ok ? 1 : 0;
    }
    const { g, q } = this.density.sqrtLogDerivatives(x, n);
    const sqrtP = this.density.density(x, n).map(Math.sqrt);
    return { n, x, v, mask, g: Float32Array.from(g), q: Float32Array.from(q), sqrtP };
  }

  #upload(p: Prepared): OperatorBatch {
    const { n } = p, d = this.dim;
    const gT = new Float32Array(d * n);
    for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) gT[k * n + i] = p.g[i * d + k];
    return {
      x: tf.tensor2d(p.x, [n, d]),
      data: {
        v: tf.tensor2d(p.v, [n, 1]),
        mask: tf.tensor2d(p.mask, [n, 1]),
        g: tf.tensor3d(gT, [d, n, 1]),
        q: tf.tensor2d(p.q, [n, 1]),
        invSqrtP: tf.tensor2d(Float32Array.from(p.sqrtP, (v) => 1 / Math.max(v, 1e-30)), [n, 1]),
        ...(this.kinetic === "fd" ? this.#fdData(p) : {}),
      },
    };
  }

  /** Shifted points [x; x+εe₁; x−εe₁; …] and √p there (clamped at 1e-5), for `fd`. */
  #fdData(p: Prepared) {
    const { n } = p, d = this.dim, eps = this.fdEpsilon;
    const rows = 2 * d + 1;
    const pts = new Float32Array(rows * n * d);
    pts.set(p.x, 0);
    for (let k = 0; k < d; k++) {
      for (const [j, sign] of [[1 + 2 * k, 1], [2 + 2 * k, -1]]) {
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < d; c++) {
            pts[(j * n + i) * d + c] = p.x[i * d + c] + (c === k ? sign * eps : 0);
          }
        }
      }
    }
    const sq = this.representation === "psi"
      ? new Float64Array(rows * n).fill(1)
      : this.density.density(pts, rows * n).map((x) => Math.max(Math.sqrt(x), 1e-5));
    return {
      fdPoints: tf.tensor2d(pts, [rows * n, d]),
      fdSqrtP: tf.tensor2d(Float32Array.from(sq), [rows * n, 1]),
    };
  }

  /** B points from the density, with the potential and density terms prepared. */
  sample(rng: Rng, batchSize: number): OperatorBatch {
    return this.#upload(this.#prepare(this.samplePoints(rng, batchSize), batchSize));
  }

  /**
   * The B points `sample` draws (the same draws), row-major, unprepared: a Worker pool prepares its
   * shards itself (for `fd` the shifted points and their densities cost ~1 ms a step at batch 512).
   */
  samplePoints(rng: Rng, batchSize: number): Float32Array {
    if (this.sampling === "random") return this.density.sample(rng, batchSize);
    if (batchSize % this.sampleBlocks !== 0) {
      throw new RangeError(
        `Invalid batch size ${batchSize}: quasi-random batches are made of ${this.sampleBlocks} blocks, so it must be a multiple of ${this.sampleBlocks}`,
      );
    }
    return sampleQuasiRandom(this.density, rng, { count: batchSize, blocks: this.sampleBlocks });
  }

  /** A batch at n points given row-major (n×d) — e.g. a shard of another batch. */
  batchFromArray(x: Float32Array, n: number): OperatorBatch {
    if (x.length !== n * this.dim) {
      throw new RangeError(
        `Mismatched points: ${x.length} numbers for ${n} points in ${this.dim}-D`,
      );
    }
    return this.#upload(this.#prepare(x, n));
  }

  /** A batch at given points (for evaluation). */
  batchAt(points: number[][]): OperatorBatch {
    const d = this.dim;
    const x = new Float32Array(points.length * d);
    points.forEach((pt, i) => {
      if (pt.length !== d) {
        throw new RangeError(
          `Mismatched point ${i}: it has ${pt.length} coordinates, expected ${d}`,
        );
      }
      pt.forEach((v, k) => (x[i * d + k] = v));
    });
    return this.#upload(this.#prepare(x, points.length));
  }

  /** f and Tf at the batch (untaped). */
  evaluate(model: Model, batch: OperatorBatch): EigenEvaluation {
    return tf.tidy(() => {
      const { f, tf: tfx } = this.#evaluate(model, batch, false);
      return { f, tf: tfx };
    });
  }

  /**
   * f and Tf with the reverse pass of the trained f kept: the Laplacian's own evaluation at x (the
   * jet's value rows, or the centre points of the finite differences) serves the gradient too.
   * Null where the model has no reverse pass of its own or the kinetic term is `autodiff`.
   */
  evaluateWithPullback(model: Model, batch: OperatorBatch): PulledEvaluation | null {
    if (!model.reversePass || this.kinetic === "autodiff") return null;
    let pullback: Pullback | undefined;
    try {
      const out = tf.tidy(() => {
        const e = this.#evaluate(model, batch, true);
        pullback = e.pullback;
        return { f: e.f, tf: e.tf };
      });
      const inner = pullback!;
      const invSqrtP = batch.data!.invSqrtP;
      // In the psi representation the trained f is the model's output divided by √p.
      const scaled: Pullback = this.representation === "psi"
        ? {
          gradients: (g) => tf.tidy(() => inner.gradients(tf.mul(g, invSqrtP) as Tensor2D)),
          dispose: () => inner.dispose(),
        }
        : inner;
      return { ...out, pullback: scaled };
    } catch (e) {
      pullback?.dispose();
      throw e;
    }
  }

  #evaluate(
    model: Model,
    batch: OperatorBatch,
    reverse: boolean,
  ): EigenEvaluation & { pullback?: Pullback } {
    const data = batch.data!;
    const x = batch.x as Tensor2D;
    const psiModel = this.representation === "psi";
    let f: Tensor2D, kin: Tensor2D, pullback: Pullback | undefined;
    if (this.kinetic === "fd") {
      [f, kin, pullback] = this.#fdKinetic(
        model,
        x,
        data.fdPoints as Tensor2D,
        data.fdSqrtP as Tensor2D,
        reverse,
      );
    } else {
      const jet = this.kinetic === "forward"
        ? forwardJet(model, x, { pullback: reverse })
        : autodiffJet(model, x);
      pullback = jet.pullback;
      f = jet.value;
      if (psiModel) {
        kin = jet.lap;
      } else {
        const drift = tf.sum(tf.mul(data.g, jet.grad), 0);
        kin = tf.add(tf.add(jet.lap, tf.mul(2, drift)), tf.mul(data.q, f)) as Tensor2D;
      }
    }
    // In the psi representation f and kin above are ψ and Δψ; the loss sees them divided by √p.
    const hf = tf.sub(kin, tf.mul(data.v, f));
    let tfx = tf.mul(tf.add(tf.mul(hf, this.scale), tf.mul(f, this.shift)), data.mask);
    if (psiModel) {
      f = tf.mul(f, data.invSqrtP) as Tensor2D;
      tfx = tf.mul(tfx, data.invSqrtP);
    }
    return { f, tf: tfx as Tensor2D, pullback };
  }

  /** f on the gradient tape: the model itself, or ψ/√p in the psi representation. */
  trainedOutput(model: Model, batch: OperatorBatch): Tensor2D {
    if (this.representation !== "psi") return model.apply(batch.x);
    return tf.tidy(() => tf.mul(model.apply(batch.x), batch.data!.invSqrtP) as Tensor2D);
  }

  #fdKinetic(
    model: Model,
    x: Tensor2D,
    pts: Tensor2D,
    sqrtP: Tensor2D,
    reverse: boolean,
  ): [Tensor2D, Tensor2D, Pullback | undefined] {
    const n = x.shape[0], d = this.dim, eps = this.fdEpsilon;
    // The centre points come first: their rows of the evaluation are f(x) itself.
    const out = reverse ? model.applyWithPullback!(pts, { rows: n }) : undefined;
    const psi = tf.mul(out ? out.value : model.apply(pts), sqrtP);
    const center = tf.slice(psi, [0, 0], [n, -1]);
    let lap = tf.mul(center, -2 * d);
    for (let j = 1; j <= 2 * d; j++) lap = tf.add(lap, tf.slice(psi, [j * n, 0], [n, -1]));
    const sq0 = tf.slice(sqrtP, [0, 0], [n, 1]);
    const f = tf.div(center, sq0) as Tensor2D;
    return [f, tf.div(lap, tf.mul(sq0, eps * eps)) as Tensor2D, out?.pullback];
  }

  /**
   * f and Tf at arbitrary points, in chunks, as plain arrays, plus the density there (for the
   * ψ = √p·f representation).
   */
  async evaluateAt(
    model: Model,
    points: number[][],
    options: { chunk?: number } = {},
  ): Promise<{ f: number[][]; tf: number[][]; density: number[] }> {
    const chunk = options.chunk ?? 1024;
    const f: number[][] = [], tfv: number[][] = [];
    for (let s = 0; s < points.length; s += chunk) {
      const part = points.slice(s, s + chunk);
      const batch = this.batchAt(part);
      // Asynchronous reads: WebGPU in Deno has no synchronous readback.
      const e = this.evaluate(model, batch);
      const [a, b] = [await e.f.array(), await e.tf.array()];
      tf.dispose([e.f, e.tf, batch.x, ...Object.values(batch.data!)]);
      f.push(...a);
      tfv.push(...b);
    }
    const flat = new Float64Array(points.length * this.dim);
    points.forEach((pt, i) => pt.forEach((v, k) => (flat[i * this.dim + k] = v)));
    return { f, tf: tfv, density: Array.from(this.density.density(flat, points.length)) };
  }

  /**
   * Spectral metrics on a quadrature of R^d (points with weights, e.g. a grid with the cell volume):
   * ψ = √p·f and Tψ = √p·Tf, cov = Σ w ψψᵀ, quad = Σ w ψ(Tψ)ᵀ. Known T-eigenvalues and eigenfunctions
   * (ψ values at the points) add relative errors and subspace distances.
   */
  async report(
    model: Model,
    options: {
      /** The points and weights. */
      quadrature: { points: number[][]; weights: number[] };
      /** Known T-eigenvalues, largest first. */
      values?: number[];
      /** Known eigenfunctions' ψ values at the points (points × modes). */
      functions?: number[][];
      /** Groups of modes with one eigenvalue, compared as subspaces. */
      blocks?: number[][];
    },
  ): Promise<SpectralReport> {
    const { quadrature, ...truth } = options;
    const { f, tf: tfv, density } = await this.evaluateAt(model, quadrature.points);
    const psi = f.map((row, i) => row.map((v) => v * Math.sqrt(density[i])));
    const tpsi = tfv.map((row, i) => row.map((v) => v * Math.sqrt(density[i])));
    return eigenReport(psi, tpsi, { weights: quadrature.weights, ...truth });
  }
}

/**
 * The model's forward-mode jet (with its reverse pass where asked); throws when it has none.
 *
 * @example An MLP's Laplacian from its jet agrees with nested tf.grad's
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { autodiffJet, forwardJet, initBackend, Mlp, Rng } from "../mod.ts";
 * await initBackend();
 * const model = new Mlp({ inputDim: 2, outputs: 1, hidden: [8, 8], rng: new Rng(0) });
 * const x = tf.tensor2d([[0.5, -1]]);
 * const jet = forwardJet(model, x), oracle = autodiffJet(model, x);
 * const lap = (j: { lap: tf.Tensor }) => j.lap.dataSync()[0].toFixed(4);
 * console.log(lap(jet), lap(oracle)); // 0.6991 0.6991
 * tf.dispose([x, jet.value, jet.grad, jet.lap, oracle.value, oracle.grad, oracle.lap]);
 * model.dispose();
 * ```
 */
export function forwardJet(model: Model, x: Tensor2D, options: JetOptions = {}): Jet {
  if (!model.jet) {
    throw new RangeError(
      `Model ${model.kind} has no forward-mode jet: use kinetic fd or autodiff`,
    );
  }
  return model.jet(x, options);
}

/**
 * Value, gradient and Laplacian by nested tf.grad (slow; a test oracle). Refuses models whose
 * second derivatives tfjs 4.22 computes wrongly (tanh and other saved-output gradients).
 *
 * @example Value B×L, gradient d×B×L and Laplacian B×L at four points in 2-D, three modes
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { autodiffJet, initBackend, Mlp, Rng } from "../mod.ts";
 * await initBackend();
 * const model = new Mlp({ inputDim: 2, outputs: 3, hidden: [8], rng: new Rng(0) });
 * const x = tf.tensor2d([[0, 0], [1, 0], [0, 1], [1, 1]]);
 * const jet = autodiffJet(model, x);
 * console.log(jet.value.shape, jet.grad.shape, jet.lap.shape); // [4, 3] [2, 4, 3] [4, 3]
 * tf.dispose([x, jet.value, jet.grad, jet.lap]);
 * model.dispose();
 * ```
 */
export function autodiffJet(model: Model, x: Tensor2D): Jet {
  if (model.secondOrderAutodiffSafe === false) {
    throw new RangeError(
      `The autodiff kinetic term would be wrong for model ${model.kind}: tfjs 4.22 computes wrong ` +
        `second derivatives through its activation (e.g. tanh); use kinetic forward or fd`,
    );
  }
  return tf.tidy(() => {
    const L = model.outputDim, d = x.shape[1];
    const value = model.apply(x);
    const grads: Tensor2D[] = [], laps: Tensor2D[] = [];
    for (let l = 0; l < L; l++) {
      const first = tf.grad((xx: tf.Tensor) =>
        tf.sum(tf.slice(model.apply(xx as Tensor2D), [0, l], [-1, 1]))
      );
      grads.push(first(x) as Tensor2D);
      let lap = tf.zeros([x.shape[0], 1]);
      for (let k = 0; k < d; k++) {
        const second = tf.grad((xx: tf.Tensor) => tf.sum(tf.slice(first(xx), [0, k], [-1, 1])));
        lap = tf.add(lap, tf.slice(second(x), [0, k], [-1, 1]));
      }
      laps.push(lap as Tensor2D);
    }
    // grads[l] is [B, d]; the jet wants [d, B, L].
    const grad = tf.transpose(tf.stack(grads, 2), [1, 0, 2]) as Tensor3D;
    return { value, grad, lap: tf.concat(laps, 1) as Tensor2D };
  });
}
