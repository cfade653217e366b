/**
 * Sampling densities p for the importance representation ψ = √p·f: each draws points with the run's
 * generator and gives √p with its log-derivatives g = ∇√p/√p and q = Δ√p/√p, so that the kinetic
 * term Δψ/√p = Δf + 2 g·∇f + q f needs no differentiation of p.
 *
 * @module
 */
import type { Rng } from "./random.ts";

/** A sampling density on R^d with analytic derivatives of its square root. */
export interface SamplingDensity {
  /** Dimension d. */
  readonly dim: number;
  /** Short description, e.g. "gaussian(std=16)". */
  readonly name: string;
  /** n points, row-major n×d. */
  sample(rng: Rng, n: number): Float32Array;
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
 * import { gaussianDensity, Rng } from "./mod.ts";
 * const p = gaussianDensity({ dim: 2, std: 16 });
 * console.log(p.sample(new Rng(0), 3).length); // 6
 * ```
 */
export function gaussianDensity(options: { dim: number; std: number }): SamplingDensity {
  const { dim, std } = options;
  if (!Number.isInteger(dim) || dim <= 0) {
    throw new RangeError(`Invalid dimension ${dim}: it must be a positive integer`);
  }
  positive(std, "standard deviation");
  const s2 = std * std;
  const norm = Math.pow(2 * Math.PI * s2, -dim / 2);
  return {
    dim,
    name: `gaussian(std=${std})`,
    sample: (rng, n) => rng.normals(n * dim, std),
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
 * import { Rng, uniformBoxDensity } from "./mod.ts";
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
