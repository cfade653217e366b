/**
 * Sampling densities p for the importance representation ψ = √p·f: each draws points with the run's
 * generator and gives √p with its log-derivatives g = ∇√p/√p and q = Δ√p/√p, so that the kinetic
 * term Δψ/√p = Δf + 2 g·∇f + q f needs no differentiation of p.
 *
 * @module
 */
import { inverseNormalCdf, quasiRandomUniforms } from "./quasirandom.ts";
import type { Rng } from "./random.ts";
import { assertPositiveInteger } from "./checks.ts";

/** A sampling density on R^d with analytic derivatives of its square root. */
export interface SamplingDensity {
  /** Dimension d. */
  readonly dim: number;
  /** Short description, e.g. "gaussian(std=16)". */
  readonly name: string;
  /** n points, row-major n×d. */
  sample(rng: Rng, n: number): Float32Array;
  /**
   * Number m of uniforms one point is made from (by {@linkcode SamplingDensity.fromUniform});
   * absent when the density can only be sampled by `sample`.
   */
  readonly uniformDim?: number;
  /**
   * Maps n points of [0, 1)^m (row-major n×m) to n points of the density (row-major n×d): a
   * uniformly distributed input gives exactly p-distributed points, so quasi-random inputs give
   * unbiased, lower-variance batches ({@linkcode sampleQuasiRandom}).
   */
  fromUniform?(u: Float64Array, n: number): Float32Array;
  /** p at n points (row-major n×d). */
  density(x: Float64Array | Float32Array, n: number): Float64Array;
  /** g = ∇√p/√p (n×d) and q = Δ√p/√p (n) at n points. */
  sqrtLogDerivatives(
    x: Float64Array | Float32Array,
    n: number,
  ): { g: Float64Array; q: Float64Array };
}

function positive(value: number, name: string): void {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`Invalid ${name} ${value}: it must be a positive number`);
  }
}

/**
 * Isotropic Gaussian N(0, std²·I): √p ∝ exp(−|x|²/(4 std²)), g = −x/(2 std²),
 * q = |x|²/(4 std⁴) − d/(2 std²).
 *
 * @example
 * ```ts
 * import { gaussianDensity } from "./densities.ts";
 * import { Rng } from "./random.ts";
 * const p = gaussianDensity({ dim: 2, std: 16 });
 * console.log(p.sample(new Rng(0), 3).length); // 6
 * ```
 */
export function gaussianDensity(options: { dim: number; std: number }): SamplingDensity {
  const { dim, std } = options;
  assertPositiveInteger(dim, "dimension");
  positive(std, "standard deviation");
  const s2 = std * std;
  const norm = Math.pow(2 * Math.PI * s2, -dim / 2);
  return {
    dim,
    name: `gaussian(std=${std})`,
    sample: (rng, n) => rng.normals(n * dim, { std }),
    uniformDim: dim,
    fromUniform: (u, n) =>
      Float32Array.from(u.subarray(0, n * dim), (v) => std * inverseNormalCdf(v)),
    density(x, n) {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let r2 = 0;
        for (let k = 0; k < dim; k++) r2 += x[i * dim + k] ** 2;
        out[i] = norm * Math.exp(-r2 / (2 * s2));
      }
      return out;
    },
    sqrtLogDerivatives(x, n) {
      const g = new Float64Array(n * dim), q = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let r2 = 0;
        for (let k = 0; k < dim; k++) {
          const v = x[i * dim + k];
          g[i * dim + k] = -v / (2 * s2);
          r2 += v * v;
        }
        q[i] = r2 / (4 * s2 * s2) - dim / (2 * s2);
      }
      return { g, q };
    },
  };
}

/**
 * Uniform density on a box Π [lower_k, upper_k): √p constant, g = 0, q = 0.
 *
 * @example
 * ```ts
 * import { uniformBoxDensity } from "./densities.ts";
 * const p = uniformBoxDensity({ lower: [0, 0], upper: [1, 2] });
 * console.log(p.density(new Float64Array([0.5, 0.5]), 1)[0]); // 0.5
 * ```
 */
export function uniformBoxDensity(options: { lower: number[]; upper: number[] }): SamplingDensity {
  const { lower, upper } = options;
  if (lower.length === 0 || lower.length !== upper.length) {
    throw new RangeError(
      `Invalid box: lower has ${lower.length} entries and upper ${upper.length}; they must match`,
    );
  }
  lower.forEach((lo, k) => {
    if (!(lo < upper[k])) {
      throw new RangeError(
        `Invalid box on axis ${k}: lower ${lo} must be less than upper ${upper[k]}`,
      );
    }
  });
  const dim = lower.length;
  const volume = lower.reduce((v, lo, k) => v * (upper[k] - lo), 1);
  return {
    dim,
    name: `uniform([${lower}], [${upper}])`,
    sample(rng, n) {
      const out = new Float32Array(n * dim);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < dim; k++) {
          out[i * dim + k] = lower[k] + (upper[k] - lower[k]) * rng.uniform();
        }
      }
      return out;
    },
    uniformDim: dim,
    fromUniform(u, n) {
      const out = new Float32Array(n * dim);
      for (let i = 0; i < n * dim; i++) {
        const k = i % dim;
        out[i] = lower[k] + (upper[k] - lower[k]) * u[i];
      }
      return out;
    },
    density(x, n) {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let inside = true;
        for (let k = 0; k < dim; k++) {
          const v = x[i * dim + k];
          if (v < lower[k] || v > upper[k]) inside = false;
        }
        out[i] = inside ? 1 / volume : 0;
      }
      return out;
    },
    sqrtLogDerivatives: (_x, n) => ({ g: new Float64Array(n * dim), q: new Float64Array(n) }),
  };
}

/**
 * A mixture of isotropic Gaussians Σ_i w_i N(0, s_i²I): several length scales at once, so that
 * both compact and extended states are sampled where they live (importance sampling with lower
 * variance than one Gaussian). g = ∇p/(2p), q = Δp/(2p) − |∇p|²/(4p²).
 *
 * @example
 * ```ts
 * import { gaussianMixtureDensity } from "./densities.ts";
 * import { Rng } from "./random.ts";
 * const p = gaussianMixtureDensity({ dim: 2, stds: [1, 8], weights: [0.5, 0.5] });
 * console.log(p.sample(new Rng(0), 4).length); // 8
 * ```
 */
export function gaussianMixtureDensity(
  options: { dim: number; stds: number[]; weights?: number[] },
): SamplingDensity {
  const { dim, stds } = options;
  assertPositiveInteger(dim, "dimension");
  if (stds.length === 0) throw new RangeError("Invalid mixture: at least one component is needed");
  stds.forEach((s) => positive(s, "standard deviation"));
  const raw = options.weights ?? stds.map(() => 1);
  if (raw.length !== stds.length) {
    throw new RangeError(`Mismatched mixture: ${raw.length} weights for ${stds.length} components`);
  }
  raw.forEach((w) => positive(w, "mixture weight"));
  const total = raw.reduce((a, b) => a + b, 0);
  const w = raw.map((x) => x / total);
  const cumulative = w.map((_, i) => w.slice(0, i + 1).reduce((a, b) => a + b, 0));
  const norms = stds.map((s) => Math.pow(2 * Math.PI * s * s, -dim / 2));
  const parts = (x: Float64Array | Float32Array, i: number) => {
    let r2 = 0;
    for (let k = 0; k < dim; k++) r2 += x[i * dim + k] ** 2;
    return { r2, n: stds.map((s, c) => w[c] * norms[c] * Math.exp(-r2 / (2 * s * s))) };
  };
  return {
    dim,
    name: `gaussian-mixture(stds=[${stds}], weights=[${w.map((x) => +x.toFixed(4))}])`,
    sample(rng, n) {
      const out = new Float32Array(n * dim);
      for (let i = 0; i < n; i++) {
        const u = rng.uniform();
        const c = Math.min(cumulative.findIndex((v) => u < v), stds.length - 1);
        const s = stds[c < 0 ? stds.length - 1 : c];
        for (let k = 0; k < dim; k++) out[i * dim + k] = s * rng.normal();
      }
      return out;
    },
    // The first uniform picks the component, the others its coordinates.
    uniformDim: dim + 1,
    fromUniform(u, n) {
      const out = new Float32Array(n * dim);
      for (let i = 0; i < n; i++) {
        const row = i * (dim + 1);
        let c = cumulative.findIndex((v) => u[row] < v);
        if (c < 0) c = stds.length - 1;
        for (let k = 0; k < dim; k++) {
          out[i * dim + k] = stds[c] * inverseNormalCdf(u[row + 1 + k]);
        }
      }
      return out;
    },
    density(x, n) {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = parts(x, i).n.reduce((a, b) => a + b, 0);
      return out;
    },
    sqrtLogDerivatives(x, n) {
      const g = new Float64Array(n * dim), q = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const { r2, n: comp } = parts(x, i);
        const p = comp.reduce((a, b) => a + b, 0);
        // ∇p = −x Σ c_j/s_j², Δp = Σ c_j (r²/s_j⁴ − d/s_j²).
        let a = 0, lap = 0;
        comp.forEach((c, j) => {
          const s2 = stds[j] * stds[j];
          a += c / s2;
          lap += c * (r2 / (s2 * s2) - dim / s2);
        });
        for (let k = 0; k < dim; k++) g[i * dim + k] = -x[i * dim + k] * a / (2 * p);
        q[i] = lap / (2 * p) - (a * a * r2) / (4 * p * p);
      }
      return { g, q };
    },
  };
}

/** How a batch's points are drawn: independently, or as randomised quasi-Monte Carlo sets. */
export const SAMPLING_METHODS = ["random", "quasirandom"] as const;

/** One of {@linkcode SAMPLING_METHODS}. */
export type SamplingMethod = typeof SAMPLING_METHODS[number];

/**
 * n points of `density` made of `blocks` independent randomised Kronecker sets (see
 * `quasiRandomUniforms`): each point is exactly p-distributed, so estimates stay unbiased, and the
 * variance of smooth averages falls far below that of n independent draws.
 *
 * @example
 * ```ts
 * import { gaussianDensity, Rng, sampleQuasiRandom } from "../mod.ts";
 * const x = sampleQuasiRandom(gaussianDensity({ dim: 2, std: 1 }), new Rng(0), { count: 8, blocks: 2 });
 * console.log(x.length); // 16
 * ```
 */
export function sampleQuasiRandom(
  density: SamplingDensity,
  rng: Rng,
  options: { count: number; blocks?: number },
): Float32Array {
  if (!density.fromUniform || !density.uniformDim) {
    throw new TypeError(
      `Density ${density.name} cannot be sampled quasi-randomly: it has no fromUniform map; use random sampling`,
    );
  }
  const u = quasiRandomUniforms(rng, { ...options, dim: density.uniformDim });
  return density.fromUniform(u, options.count);
}
