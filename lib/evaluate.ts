/**
 * Spectral metrics of learned functions on a quadrature (a grid or a finite domain), on plain
 * arrays (METHOD §4): norm and Rayleigh-quotient eigenvalue estimates, orthogonality, and subspace
 * distances against known eigenfunctions, per mode, per degenerate block and overall.
 *
 * @module
 */
import {
  columns,
  type EighResult,
  generalizedEigh,
  type GramBlocks,
  matmul,
  type Matrix,
  subspaceDistanceFromGrams,
  transpose,
} from "./linalg.ts";

/** One learned mode's numbers. */
export interface ModeReport {
  /** 0-based mode index. */
  mode: number;
  /** Known eigenvalue / singular value, if given. */
  target?: number;
  /** Norm estimator: E[f_l²] (EVD) or ‖f_l‖·‖g_l‖ (SVD). */
  norm: number;
  /** Rayleigh quotient ⟨f_l, T f_l⟩/⟨f_l, f_l⟩ (EVD) or ⟨f_l, T g_l⟩/(‖f_l‖‖g_l‖) (SVD). */
  rayleigh: number;
  /** |norm − target| / |target|. */
  normRelError?: number;
  /** |rayleigh − target| / |target|. */
  rayleighRelError?: number;
  /**
   * The l-th largest Ritz value (EVD): eigenvalue of the Rayleigh–Ritz problem ⟨f, Tf⟩c = λ⟨f, f⟩c
   * in the span of all L learned functions. Absent when their Gram matrix is singular.
   */
  ritz?: number;
  /** |ritz − target| / |target|. */
  ritzRelError?: number;
  /** 1 − cos² between the learned and the true function (for the left side in SVD). */
  subspaceDistance?: number;
}

/** Metrics of a set of learned modes. */
export interface SpectralReport {
  /** Per-mode numbers. */
  modes: ModeReport[];
  /** Mean squared entry of C − I, C the normalised Gram matrix of the learned functions. */
  orthogonality: number;
  /** Mean relative error of the Rayleigh quotients (when targets are known). */
  meanRayleighRelError?: number;
  /** Mean relative error of the norm estimates (when targets are known). */
  meanNormRelError?: number;
  /** Mean relative error of the Ritz values (EVD, when targets are known). */
  meanRitzRelError?: number;
  /** Subspace distance of all L learned columns against the L true ones. */
  subspaceDistanceAll?: number;
  /** Subspace distance per degenerate block (blocks given as lists of mode indices). */
  blockSubspaceDistances?: number[];
  /** Mean of `blockSubspaceDistances`. */
  subspaceDistanceAvg?: number;
  /**
   * Rayleigh–Ritz rotation (EVD): the L×L matrix C whose columns combine the learned functions into
   * the Ritz vectors F·C (B-orthonormal, largest Ritz value first). Absent when the Gram matrix of
   * the learned functions is singular.
   */
  ritzVectors?: Matrix;
  /** Subspace distance per degenerate block of the Ritz vectors F·C. */
  ritzBlockSubspaceDistances?: number[];
  /** Mean of `ritzBlockSubspaceDistances`. */
  ritzSubspaceDistanceAvg?: number;
}

/**
 * Weighted inner-product matrix aᵀ diag(w) b (w defaults to uniform 1/n: a mean).
 *
 * @example Gram of 1 and x on three points with weights ¼, ½, ¼
 * ```ts
 * import { weightedGram } from "./evaluate.ts";
 * const f = [[1, -1], [1, 0], [1, 1]];
 * console.log(JSON.stringify(weightedGram(f, f, [0.25, 0.5, 0.25]))); // [[1,0],[0,0.5]]
 * ```
 */
export function weightedGram(a: Matrix, b: Matrix, weights?: number[]): Matrix {
  const n = a.length, L = a[0].length, K = b[0].length;
  if (b.length !== n) throw new RangeError(`Mismatched rows: ${n} and ${b.length}`);
  const out = Array.from({ length: L }, () => new Array<number>(K).fill(0));
  for (let i = 0; i < n; i++) {
    const w = weights ? weights[i] : 1 / n;
    const ai = a[i], bi = b[i];
    for (let l = 0; l < L; l++) {
      const v = w * ai[l];
      if (v === 0) continue;
      for (let k = 0; k < K; k++) out[l][k] += v * bi[k];
    }
  }
  return out;
}

/**
 * Mean squared entry of C − I for the normalised Gram matrix C = G/√(diag diagᵀ).
 *
 * @example Scaled orthogonal functions, then a correlation of 0.5
 * ```ts
 * import { orthogonalityDeviation } from "./evaluate.ts";
 * console.log(orthogonalityDeviation([[4, 0], [0, 9]])); // 0
 * console.log(orthogonalityDeviation([[4, 1], [1, 1]])); // 0.125
 * ```
 */
export function orthogonalityDeviation(gram: Matrix): number {
  const L = gram.length;
  let s = 0;
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) {
      const c = gram[i][j] / Math.sqrt(gram[i][i] * gram[j][j]);
      s += (c - (i === j ? 1 : 0)) ** 2;
    }
  }
  return s / (L * L);
}

/** One mode's norm and Rayleigh estimates, with their relative errors where the target is known. */
function modeReport(mode: number, norm: number, rayleigh: number, target?: number): ModeReport {
  const m: ModeReport = { mode, norm, rayleigh };
  if (target !== undefined) {
    m.target = target;
    m.normRelError = Math.abs(norm - target) / Math.abs(target);
    m.rayleighRelError = Math.abs(rayleigh - target) / Math.abs(target);
  }
  return m;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The unweighted {@linkcode GramBlocks} of two column blocks: three passes, no copies. */
function gramBlocks(a: Matrix, b: Matrix): GramBlocks {
  const ones = new Array<number>(a.length).fill(1);
  return {
    aa: weightedGram(a, a, ones),
    ab: weightedGram(a, b, ones),
    bb: weightedGram(b, b, ones),
  };
}

/** The subspace distance of learned columns `la` against true columns `tb`, from their Grams. */
function gramDistance(g: GramBlocks, la: number[], tb: number[]): number {
  const pick = (m: Matrix, rows: number[], cols: number[]) =>
    rows.map((i) => cols.map((j) => m[i][j]));
  return subspaceDistanceFromGrams({
    aa: pick(g.aa, la, la),
    ab: pick(g.ab, la, tb),
    bb: pick(g.bb, tb, tb),
  });
}

/** The Grams of the rotated columns A·C (C with as many rows as A has columns) against B. */
function rotatedGrams(g: GramBlocks, c: Matrix): GramBlocks {
  const ct = transpose(c);
  return { aa: matmul(matmul(ct, g.aa), c), ab: matmul(ct, g.ab), bb: g.bb };
}

/**
 * Adds error summaries and subspace distances shared by the EVD and SVD reports. The distances come
 * from the Grams of the learned and true columns (`grams`): one pass over the points, where
 * distances taken on copies of columns made hundreds of MB of garbage on a 3-D quadrature.
 */
function finishReport(
  modes: ModeReport[],
  orthogonality: number,
  grams: GramBlocks | undefined,
  blocks: number[][] | undefined,
): SpectralReport {
  const report: SpectralReport = { modes, orthogonality };
  if (modes.every((m) => m.target !== undefined)) {
    report.meanRayleighRelError = mean(modes.map((m) => m.rayleighRelError!));
    report.meanNormRelError = mean(modes.map((m) => m.normRelError!));
    if (modes.every((m) => m.ritzRelError !== undefined)) {
      report.meanRitzRelError = mean(modes.map((m) => m.ritzRelError!));
    }
  }
  if (grams) {
    const first = modes.map((_, l) => l);
    modes.forEach((m, l) => {
      m.subspaceDistance = gramDistance(grams, [l], [l]);
    });
    report.subspaceDistanceAll = gramDistance(grams, first, first);
    if (blocks) {
      report.blockSubspaceDistances = blocks.map((b) => gramDistance(grams, b, b));
      report.subspaceDistanceAvg = mean(report.blockSubspaceDistances);
    }
  }
  return report;
}

/** Options of {@linkcode eigenReport}. */
export interface EigenReportOptions {
  /** Quadrature weights (default: uniform mean). */
  weights?: number[];
  /** Known eigenvalues, at least L of them, largest first. */
  values?: number[];
  /** Known unit eigenfunctions on the same points (n×≥L, as columns). */
  functions?: Matrix;
  /** Degenerate blocks (lists of 0-based mode indices) for the block subspace distances. */
  blocks?: number[][];
  /**
   * Report only the first K learned modes (default all L): per-mode numbers, orthogonality and
   * distances cover them, while the Rayleigh–Ritz problem uses all L functions and reports its K
   * largest values — extra trained modes then widen the span the K Ritz pairs are taken from.
   */
  reportModes?: number;
}

/**
 * EVD metrics from learned values F (n×L) and the operator applied to them TF (n×L) on the same
 * quadrature points.
 *
 * @example
 * ```ts
 * import { eigenReport } from "./evaluate.ts";
 * const F = [[1, 0], [0, 1]], TF = [[2, 0], [0, 1]];
 * console.log(eigenReport(F, TF, { values: [2, 1] }).meanRayleighRelError); // 0
 * ```
 */
export function eigenReport(
  f: Matrix,
  tf: Matrix,
  options: EigenReportOptions = {},
): SpectralReport {
  const L = f[0].length;
  const K = options.reportModes ?? L;
  if (!Number.isInteger(K) || K < 1 || K > L) {
    throw new RangeError(`Invalid reportModes ${K}: expected an integer in [1, ${L}]`);
  }
  const cov = weightedGram(f, f, options.weights);
  const quad = weightedGram(f, tf, options.weights);
  const modes: ModeReport[] = [];
  for (let l = 0; l < K; l++) {
    modes.push(modeReport(l, cov[l][l], quad[l][l] / cov[l][l], options.values?.[l]));
  }
  const ritz = rayleighRitz(quad, cov);
  ritz?.values.slice(0, K).forEach((value, l) => {
    const m = modes[l];
    m.ritz = value;
    if (m.target !== undefined) m.ritzRelError = Math.abs(value - m.target) / Math.abs(m.target);
  });
  const first = (m: Matrix) => K === L ? m : m.slice(0, K).map((row) => row.slice(0, K));
  const grams = options.functions ? gramBlocks(f, options.functions) : undefined;
  const report = finishReport(
    modes,
    orthogonalityDeviation(first(cov)),
    grams,
    options.blocks,
  );
  if (ritz) {
    report.ritzVectors = ritz.vectors;
    if (grams && options.blocks) {
      const refined = rotatedGrams(grams, columns(ritz.vectors, { to: K }));
      report.ritzBlockSubspaceDistances = options.blocks.map((b) => gramDistance(refined, b, b));
      report.ritzSubspaceDistanceAvg = mean(report.ritzBlockSubspaceDistances);
    }
  }
  return report;
}

/** Rayleigh–Ritz pairs in the span of the learned functions; undefined for a singular Gram. */
function rayleighRitz(quad: Matrix, cov: Matrix): EighResult | undefined {
  try {
    return generalizedEigh(quad, cov);
  } catch {
    return undefined;
  }
}

/** Options of {@linkcode singularReport}. */
export interface SingularReportOptions {
  /** Quadrature weights on X (default uniform). */
  xWeights?: number[];
  /** Quadrature weights on Y (default uniform). */
  yWeights?: number[];
  /** Known singular values, largest first. */
  values?: number[];
  /** Known unit left singular functions on the X points (n_x×≥L). */
  left?: Matrix;
  /** Known unit right singular functions on the Y points (n_y×≥L). */
  right?: Matrix;
}

/** The learned functions of an SVD on the evaluation points, the input of {@linkcode singularReport}. */
export interface SingularFunctionValues {
  /** f on the X points, n_x×L. */
  f: Matrix;
  /** (Tg) on the X points, n_x×L. */
  tg: Matrix;
  /** g on the Y points, n_y×L. */
  g: Matrix;
}

/**
 * SVD metrics from f and Tg on X and g on Y. Orthogonality is the worse of the two sides; subspace
 * distances per mode are the worse of left and right.
 *
 * @example Exact singular functions give Rayleigh quotients equal to σ
 * ```ts
 * import { singularReport } from "./evaluate.ts";
 * const f = [[1, 0], [0, 1]], tg = [[3, 0], [0, 1]], g = [[1, 0], [0, 1]];
 * const report = singularReport({ f, tg, g }, { values: [3, 1] });
 * const rayleigh = report.modes.map((m) => m.rayleigh.toFixed(12));
 * console.log(rayleigh); // [ "3.000000000000", "1.000000000000" ]
 * ```
 */
export function singularReport(
  values: SingularFunctionValues,
  options: SingularReportOptions = {},
): SpectralReport {
  const { f, tg, g } = values;
  const L = f[0].length;
  const covF = weightedGram(f, f, options.xWeights);
  const covG = weightedGram(g, g, options.yWeights);
  const quad = weightedGram(f, tg, options.xWeights);
  const modes: ModeReport[] = [];
  for (let l = 0; l < L; l++) {
    const norm = Math.sqrt(covF[l][l]) * Math.sqrt(covG[l][l]);
    modes.push(modeReport(l, norm, quad[l][l] / norm, options.values?.[l]));
  }
  const ortho = Math.max(orthogonalityDeviation(covF), orthogonalityDeviation(covG));
  const left = options.left ? gramBlocks(f, options.left) : undefined;
  const report = finishReport(modes, ortho, left, undefined);
  if (options.right) {
    const grams = gramBlocks(g, options.right);
    const right = finishReport(modes.map((m) => ({ ...m })), ortho, grams, undefined);
    modes.forEach((m, l) => {
      m.subspaceDistance = Math.max(m.subspaceDistance ?? 0, right.modes[l].subspaceDistance!);
    });
    report.subspaceDistanceAll = Math.max(
      report.subspaceDistanceAll ?? 0,
      right.subspaceDistanceAll!,
    );
  }
  return report;
}
