/**
 * Nesting masks of NestedLoRA (METHOD §1): the vector m weighting the operator term and the matrix
 * M weighting the Gram term in ℒ = −2 Σ_l m_l P_ll + Σ_{l,l'} M_{ll'} (M_f)_{ll'} (M_g)_{ll'}.
 *
 * @module
 */
import { assertPositiveInteger, parseChoice } from "./checks.ts";

/** The nesting schemes: `joint` (weighted sum of nested losses), `sequential`, `none` (LoRA). */
export const NESTING_NAMES = ["joint", "sequential", "none"] as const;

/** Name of a nesting scheme. */
export type Nesting = typeof NESTING_NAMES[number];

/** The masks of a nesting scheme for L modes. */
export interface NestingMasks {
  /** Operator-term weights m (length L). */
  vector: number[];
  /** Gram-term weights M (L×L, row-major); upper-triangular ones for sequential nesting. */
  matrix: number[][];
}

/** Options for {@linkcode nestingMasks}. */
export interface NestingMaskOptions {
  /** Nesting scheme; default `joint`. */
  nesting?: string;
  /** Joint-nesting weights w_1..w_L, all positive; default 1/L each (the reference). */
  weights?: number[];
  /**
   * Sequential nesting only: the weight δ ≥ 1 of the earlier modes' Gram terms in a later mode's
   * gradient, M_{lk} = δ for l < k (default 1, the reference). With δ = 1 a mode feels no force
   * along the directions of modes already learned (the deflated operator is zero there: noise makes
   * modes drift into them and stall); δ > 1 (over-deflation) turns each learned direction φ_j into a
   * repelling one with curvature (δ − 1)·λ_j. The minimiser is unchanged: the cross Gram terms vanish
   * at the solution.
   */
  deflation?: number;
}

/**
 * Throws unless `name` is a known nesting scheme.
 *
 * @example A known name passes through, an unknown one throws
 * ```ts
 * import { parseNesting } from "../mod.ts";
 * console.log(parseNesting("sequential")); // sequential
 * let message = "";
 * try {
 *   parseNesting("nested");
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * console.log(message); // Unknown nesting "nested": allowed values are joint, sequential, none
 * ```
 */
export function parseNesting(name: string): Nesting {
  return parseChoice(name, { what: "nesting", allowed: NESTING_NAMES });
}

/**
 * Throws unless `modes` is a positive integer.
 *
 * @example A positive integer passes, zero throws
 * ```ts
 * import { assertModes } from "../mod.ts";
 * assertModes(4); // passes
 * try {
 *   assertModes(0);
 * } catch (e) {
 *   console.log((e as Error).message); // Invalid number of modes 0: it must be a positive integer
 * }
 * ```
 */
export function assertModes(modes: number): void {
  assertPositiveInteger(modes, "number of modes");
}

/**
 * Masks for L modes. Joint nesting: m_l = Σ_{k≥l} w_k, M_{ll'} = min(m_l, m_l'). Sequential:
 * m = 1, M_{kk} = 1, M_{lk} = δ (`deflation`, default 1) for l < k (mode k sees modes 1..k; acts
 * through the gradient only). None: all ones.
 *
 * @example
 * ```ts
 * import { nestingMasks } from "./nesting.ts";
 * const { vector, matrix } = nestingMasks(2, { nesting: "sequential" });
 * console.log(vector, matrix); // [1, 1] [[1, 1], [0, 1]]
 * ```
 */
export function nestingMasks(modes: number, options: NestingMaskOptions = {}): NestingMasks {
  assertModes(modes);
  const nesting = parseNesting(options.nesting ?? "joint");
  const L = modes;
  if (nesting === "none") {
    return {
      vector: new Array(L).fill(1),
      matrix: Array.from({ length: L }, () => new Array(L).fill(1)),
    };
  }
  const deflation = options.deflation ?? 1;
  if (!(deflation >= 1) || !Number.isFinite(deflation)) {
    throw new RangeError(`Invalid deflation ${deflation}: it must be a number ≥ 1`);
  }
  if (deflation !== 1 && nesting !== "sequential") {
    throw new RangeError(
      `Invalid deflation ${deflation} with ${nesting} nesting: only sequential nesting has one`,
    );
  }
  if (nesting === "sequential") {
    return {
      vector: new Array(L).fill(1),
      matrix: Array.from(
        { length: L },
        (_, l) => Array.from({ length: L }, (_, k) => (l < k ? deflation : l === k ? 1 : 0)),
      ),
    };
  }
  const w = options.weights ?? new Array(L).fill(1 / L);
  if (w.length !== L) {
    throw new RangeError(`Invalid nesting weights: got ${w.length} weights for ${L} modes`);
  }
  w.forEach((x, i) => {
    if (!(x > 0) || !Number.isFinite(x)) {
      throw new RangeError(`Invalid nesting weight ${x} at index ${i}: weights must be positive`);
    }
  });
  const m = new Array<number>(L);
  let acc = 0;
  for (let l = L - 1; l >= 0; l--) {
    acc += w[l];
    m[l] = acc;
  }
  return {
    vector: m,
    matrix: Array.from(
      { length: L },
      (_, l) => Array.from({ length: L }, (_, k) => Math.min(m[l], m[k])),
    ),
  };
}
