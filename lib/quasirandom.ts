/**
 * Randomised quasi-Monte Carlo (RQMC): low-discrepancy point sets with a random shift, so every
 * point is still exactly uniform (estimates stay unbiased) while the set covers the cube far more
 * evenly than independent draws. For the smooth integrands of NestedLoRA's Gram matrices this cuts
 * the variance of a 256-point estimate 10–20× (measured on 2-D hydrogen; see the tests).
 *
 * The sequence is the Kronecker (additive recurrence) sequence u_i = frac(s + i·α) with
 * α_k = φ_m^{−k}, φ_m the positive root of x^{m+1} = x + 1 (the golden ratio for m = 1, the
 * plastic number for m = 2) — it needs no tables and works for any point count.
 *
 * @module
 */
import type { Rng } from "./random.ts";
import { assertPositiveInteger } from "./checks.ts";

/** The generalised golden ratio φ_m: the positive root of x^{m+1} = x + 1. */
function generalisedGoldenRatio(m: number): number {
  let x = 2;
  for (let i = 0; i < 64; i++) x = Math.pow(1 + x, 1 / (m + 1));
  return x;
}

/**
 * The Kronecker generator α of dimension m (entries in (0, 1)).
 *
 * @example In one dimension α is the golden ratio's conjugate, (√5 − 1)/2
 * ```ts
 * import { kroneckerGenerator } from "./quasirandom.ts";
 * const [alpha] = kroneckerGenerator(1);
 * const goldenConjugate = (Math.sqrt(5) - 1) / 2;
 * console.log(alpha.toFixed(12), goldenConjugate.toFixed(12)); // 0.618033988750 0.618033988750
 * ```
 */
export function kroneckerGenerator(m: number): number[] {
  assertPositiveInteger(m, "dimension");
  const phi = generalisedGoldenRatio(m);
  return Array.from({ length: m }, (_, k) => Math.pow(phi, -(k + 1)) % 1);
}

/** Options of {@linkcode quasiRandomUniforms}. */
export interface QuasiRandomOptions {
  /** Number of points n. */
  count: number;
  /** Dimension m of the unit cube. */
  dim: number;
  /**
   * Number of contiguous blocks, each a Kronecker set with its own random shift (default 1).
   * Blocks are statistically independent: the split-half Gram estimator needs its two halves
   * independent, so a batch for it has an even number of blocks. `count` must be a multiple.
   */
  blocks?: number;
}

/**
 * n points in [0, 1)^m (row-major n×m), each exactly uniform, jointly low-discrepancy within each
 * block: block b is {frac(s_b + i·α) : i = 1…n/blocks} with s_b drawn from `rng`.
 *
 * @example
 * ```ts
 * import { quasiRandomUniforms, Rng } from "../mod.ts";
 * const u = quasiRandomUniforms(new Rng(0), { count: 4, dim: 2, blocks: 2 });
 * console.log(u.length); // 8
 * ```
 */
export function quasiRandomUniforms(rng: Rng, options: QuasiRandomOptions): Float64Array {
  const { count, dim } = options;
  const blocks = options.blocks ?? 1;
  assertPositiveInteger(count, "point count");
  if (!Number.isInteger(blocks) || blocks <= 0 || count % blocks !== 0) {
    throw new RangeError(
      `Invalid block count ${blocks}: it must be a positive integer dividing the ${count} points`,
    );
  }
  const alpha = kroneckerGenerator(dim);
  const per = count / blocks;
  const out = new Float64Array(count * dim);
  for (let b = 0; b < blocks; b++) {
    const shift = alpha.map(() => rng.uniform());
    for (let i = 0; i < per; i++) {
      const row = (b * per + i) * dim;
      for (let k = 0; k < dim; k++) {
        // i·α mod 1 first keeps the fractional part exact to ~1e-16 for any n used here.
        const v = shift[k] + (((i + 1) * alpha[k]) % 1);
        out[row + k] = v >= 1 ? v - 1 : v;
      }
    }
  }
  return out;
}

// Rational approximations of the normal quantile (Acklam's published coefficients; relative
// error below 1.2e-9 everywhere, far below float32 resolution of the sampled points).
const A = [
  -39.69683028665376,
  220.9460984245205,
  -275.9285104469687,
  138.357751867269,
  -30.66479806614716,
  2.506628277459239,
];
const B = [
  -54.47609879822406,
  161.5858368580409,
  -155.6989798598866,
  66.80131188771972,
  -13.28068155288572,
];
const C = [
  -0.007784894002430293,
  -0.3223964580411365,
  -2.400758277161838,
  -2.549732539343734,
  4.374664141464968,
  2.938163982698783,
];
const D = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
const LOW = 0.02425;

function tail(q: number): number {
  return (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) /
    ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
}

/**
 * The standard normal quantile Φ⁻¹(u) for u in (0, 1); u is clamped to [1e-300, 1 − 2⁻⁵³] so
 * a point at exactly 0 maps to a finite value.
 *
 * @example
 * ```ts
 * import { inverseNormalCdf } from "../mod.ts";
 * console.log(inverseNormalCdf(0.975).toFixed(4)); // "1.9600"
 * ```
 */
export function inverseNormalCdf(u: number): number {
  const p = Math.min(Math.max(u, 1e-300), 1 - 2 ** -53);
  if (p < LOW) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - LOW) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5, r = q * q;
  return (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q /
    (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
}
