/**
 * Small dense linear algebra in float64 on plain arrays (tfjs has no eigh/svd): cyclic Jacobi
 * eigendecomposition, SVD through it, orthonormalisation, and subspace comparisons.
 * Meant for L×L Gram matrices and test-sized matrices (n up to a few hundred).
 *
 * @module
 */

/** A dense matrix as rows of numbers. */
export type Matrix = number[][];

/** Result of {@linkcode eigh}: eigenvalues in descending order, eigenvectors as columns. */
export interface EighResult {
  /** Eigenvalues, largest first. */
  values: number[];
  /** n×n matrix whose column k is the unit eigenvector of `values[k]`. */
  vectors: Matrix;
}

/** Result of {@linkcode svd}: A = U diag(s) Vᵀ with the k = min(m, n) largest singular values. */
export interface SvdResult {
  /** m×k left singular vectors (columns). */
  u: Matrix;
  /** Singular values, largest first. */
  s: number[];
  /** n×k right singular vectors (columns). */
  v: Matrix;
}

function assertMatrix(a: Matrix, name: string): [number, number] {
  if (!Array.isArray(a) || a.length === 0 || !Array.isArray(a[0])) {
    throw new TypeError(`Invalid ${name}: expected a non-empty array of rows`);
  }
  const cols = a[0].length;
  for (let i = 0; i < a.length; i++) {
    if (a[i].length !== cols) {
      throw new RangeError(
        `Invalid ${name}: row ${i} has ${a[i].length} entries, expected ${cols}`,
      );
    }
  }
  return [a.length, cols];
}

/**
 * Zero matrix of shape rows×cols.
 *
 * @example A 2×3 zero matrix
 * ```ts
 * import { zeros } from "./linalg.ts";
 * console.log(JSON.stringify(zeros(2, 3))); // [[0,0,0],[0,0,0]]
 * ```
 */
export function zeros(rows: number, cols: number): Matrix {
  return Array.from({ length: rows }, () => new Array<number>(cols).fill(0));
}

/**
 * Identity matrix of size n.
 *
 * @example The 3×3 identity
 * ```ts
 * import { identity } from "./linalg.ts";
 * console.log(JSON.stringify(identity(3))); // [[1,0,0],[0,1,0],[0,0,1]]
 * ```
 */
export function identity(n: number): Matrix {
  const m = zeros(n, n);
  for (let i = 0; i < n; i++) m[i][i] = 1;
  return m;
}

/**
 * Transpose.
 *
 * @example A 2×3 matrix becomes 3×2
 * ```ts
 * import { transpose } from "./linalg.ts";
 * console.log(JSON.stringify(transpose([[1, 2, 3], [4, 5, 6]]))); // [[1,4],[2,5],[3,6]]
 * ```
 */
export function transpose(a: Matrix): Matrix {
  const [r, c] = assertMatrix(a, "matrix");
  const t = zeros(c, r);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j][i] = a[i][j];
  return t;
}

/**
 * Matrix product a·b.
 *
 * @example A 2×2 product
 * ```ts
 * import { matmul } from "./linalg.ts";
 * console.log(JSON.stringify(matmul([[1, 2], [3, 4]], [[5, 6], [7, 8]]))); // [[19,22],[43,50]]
 * ```
 */
export function matmul(a: Matrix, b: Matrix): Matrix {
  const [r, k] = assertMatrix(a, "left matrix");
  const [k2, c] = assertMatrix(b, "right matrix");
  if (k !== k2) {
    throw new RangeError(`Mismatched shapes: ${r}×${k} times ${k2}×${c}`);
  }
  const out = zeros(r, c);
  for (let i = 0; i < r; i++) {
    const ai = a[i], oi = out[i];
    for (let p = 0; p < k; p++) {
      const v = ai[p];
      if (v === 0) continue;
      const bp = b[p];
      for (let j = 0; j < c; j++) oi[j] += v * bp[j];
    }
  }
  return out;
}

/**
 * Eigendecomposition of a symmetric matrix by cyclic Jacobi rotations (accurate to round-off).
 *
 * @example
 * ```ts
 * import { eigh } from "./linalg.ts";
 * const { values } = eigh([[2, 1], [1, 2]]);
 * console.log(values); // [3, 1] (up to round-off)
 * ```
 */
export function eigh(a: Matrix): EighResult {
  const [n, c] = assertMatrix(a, "symmetric matrix");
  if (n !== c) throw new RangeError(`Invalid symmetric matrix: shape ${n}×${c} is not square`);
  const m = a.map((row) => row.slice());
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const s = 0.5 * (m[i][j] + m[j][i]);
      m[i][j] = s;
      m[j][i] = s;
    }
  }
  const v = identity(n);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, diag = 0;
    for (let i = 0; i < n; i++) {
      diag += m[i][i] * m[i][i];
      for (let j = i + 1; j < n; j++) off += m[i][j] * m[i][j];
    }
    if (off <= 1e-30 * Math.max(diag, 1e-300)) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p][q];
        if (apq === 0) continue;
        const theta = (m[q][q] - m[p][p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1), sn = t * cs;
        for (let k = 0; k < n; k++) {
          const mkp = m[k][p], mkq = m[k][q];
          m[k][p] = cs * mkp - sn * mkq;
          m[k][q] = sn * mkp + cs * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p][k], mqk = m[q][k];
          m[p][k] = cs * mpk - sn * mqk;
          m[q][k] = sn * mpk + cs * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p], vkq = v[k][q];
          v[k][p] = cs * vkp - sn * vkq;
          v[k][q] = sn * vkp + cs * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[j][j] - m[i][i]);
  return {
    values: order.map((i) => m[i][i]),
    vectors: v.map((row) => order.map((i) => row[i])),
  };
}

/**
 * Symmetric-definite generalised eigenproblem A c = λ B c (A symmetric, B symmetric positive
 * definite), through B = U Λ Uᵀ and the ordinary problem of Λ^{-1/2}Uᵀ A U Λ^{-1/2}. Eigenvalues come
 * largest first; the eigenvector columns are B-orthonormal (Cᵀ B C = I). This is the Rayleigh–Ritz
 * step: with A = ⟨f_i, T f_j⟩ and B = ⟨f_i, f_j⟩ it gives the best eigenvalue estimates in the span
 * of the f_i.
 *
 * @example
 * ```ts
 * import { generalizedEigh } from "./linalg.ts";
 * const { values } = generalizedEigh([[2, 0], [0, 3]], [[1, 0], [0, 3]]);
 * console.log(values); // [2, 1] (up to round-off)
 * ```
 */
export function generalizedEigh(a: Matrix, b: Matrix): EighResult {
  const [n, c] = assertMatrix(a, "symmetric matrix");
  const [nb, cb] = assertMatrix(b, "positive definite matrix");
  if (n !== c || nb !== cb || n !== nb) {
    throw new RangeError(`Invalid generalised eigenproblem: shapes ${n}×${c} and ${nb}×${cb}`);
  }
  const { values: lb, vectors: ub } = eigh(b);
  const smallest = lb[n - 1];
  if (!(smallest > 1e-14 * Math.max(Math.abs(lb[0]), 1e-300))) {
    throw new RangeError(
      `Invalid positive definite matrix: smallest eigenvalue ${smallest} (largest ${lb[0]})`,
    );
  }
  const w = ub.map((row) => row.map((x, k) => x / Math.sqrt(lb[k])));
  const { values, vectors } = eigh(matmul(transpose(w), matmul(a, w)));
  return { values, vectors: matmul(w, vectors) };
}

/**
 * Thin singular value decomposition through the eigendecomposition of the smaller Gram matrix.
 * Accurate for well-conditioned test matrices; singular values below ~1e-8·σ_max lose digits.
 *
 * @example The singular values of a scaled permutation are the absolute scales
 * ```ts
 * import { svd } from "./linalg.ts";
 * const { s } = svd([[0, 2], [-3, 0], [0, 0]]);
 * console.log(s.map((x) => x.toFixed(12))); // [ "3.000000000000", "2.000000000000" ]
 * ```
 */
export function svd(a: Matrix): SvdResult {
  const [m, n] = assertMatrix(a, "matrix");
  if (m < n) {
    const r = svd(transpose(a));
    return { u: r.v, s: r.s, v: r.u };
  }
  const at = transpose(a);
  const { values, vectors } = eigh(matmul(at, a));
  const s = values.map((x) => Math.sqrt(Math.max(x, 0)));
  const av = matmul(a, vectors);
  const u = zeros(m, n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) u[i][j] = s[j] > 0 ? av[i][j] / s[j] : 0;
  }
  return { u, s, v: vectors };
}

/**
 * Orthonormalises the columns of `a` (modified Gram–Schmidt, twice for stability).
 *
 * @example The first column is normalised and the Gram matrix is the identity
 * ```ts
 * import { matmul, orthonormalColumns, transpose } from "./linalg.ts";
 * const q = orthonormalColumns([[3, 1], [4, 2], [0, 2]]);
 * console.log(q[0][0].toFixed(12), q[1][0].toFixed(12)); // 0.600000000000 0.800000000000
 * const gram = matmul(transpose(q), q).map((row) => row.map((x) => +x.toFixed(12)));
 * console.log(JSON.stringify(gram)); // [[1,0],[0,1]]
 * ```
 */
export function orthonormalColumns(a: Matrix, options: { dropDependent?: boolean } = {}): Matrix {
  const [m, n] = assertMatrix(a, "matrix");
  const q = a.map((r) => r.slice());
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[i][k] * q[i][j];
        for (let i = 0; i < m; i++) q[i][j] -= dot * q[i][k];
      }
      let norm = 0;
      for (let i = 0; i < m; i++) norm += q[i][j] * q[i][j];
      norm = Math.sqrt(norm);
      if (!(norm > 1e-12)) {
        if (!options.dropDependent) {
          throw new RangeError(`Column ${j} is linearly dependent on earlier columns`);
        }
        for (let i = 0; i < m; i++) q[i][j] = 0;
        continue;
      }
      for (let i = 0; i < m; i++) q[i][j] /= norm;
    }
  }
  return q;
}

/**
 * Subspace distance 1 − tr(P_A P_B)/k between the column spans of two m×k blocks (0 when equal,
 * 1 when orthogonal). Columns need not be orthonormal; a zero or dependent column adds nothing.
 *
 * @example The same plane, then two planes sharing one axis
 * ```ts
 * import { subspaceDistance } from "./linalg.ts";
 * const xy = [[2, 1], [0, 1], [0, 0]], xz = [[1, 0], [0, 0], [0, 3]];
 * console.log(subspaceDistance(xy, [[1, 0], [0, 1], [0, 0]]).toFixed(12)); // 0.000000000000
 * console.log(subspaceDistance(xy, xz).toFixed(12)); // 0.500000000000
 * ```
 */
export function subspaceDistance(a: Matrix, b: Matrix): number {
  const [ma, ka] = assertMatrix(a, "first block");
  const [mb, kb] = assertMatrix(b, "second block");
  if (ma !== mb || ka !== kb) {
    throw new RangeError(`Mismatched blocks: ${ma}×${ka} and ${mb}×${kb}`);
  }
  const qa = orthonormalColumns(a, { dropDependent: true });
  const qb = orthonormalColumns(b, { dropDependent: true });
  const c = matmul(transpose(qa), qb);
  let s = 0;
  for (const row of c) for (const x of row) s += x * x;
  return Math.max(0, 1 - s / ka);
}

/** The inner products of two column blocks A and B on the same points (k×k each). */
export interface GramBlocks {
  /** AᵀA. */
  aa: Matrix;
  /** AᵀB. */
  ab: Matrix;
  /** BᵀB. */
  bb: Matrix;
}

/**
 * The {@linkcode subspaceDistance} of column blocks A and B given only their inner products
 * AᵀA, AᵀB and BᵀB: Gram–Schmidt of the columns is the Cholesky factor R of AᵀA
 * (Q = A R⁻¹), so QₐᵀQ_b = Rₐ⁻ᵀ (AᵀB) R_b⁻¹; a column whose remaining norm is ≤ 1e-12 adds
 * nothing, as there. Costs O(k³), however many rows the blocks have.
 *
 * @example Two of three coordinate axes against the first
 * ```ts
 * import { subspaceDistanceFromGrams } from "./linalg.ts";
 * const d = subspaceDistanceFromGrams({
 *   aa: [[1, 0], [0, 1]],
 *   ab: [[1, 0], [0, 0]],
 *   bb: [[1, 0], [0, 1]],
 * });
 * console.log(d); // 0.5
 * ```
 */
export function subspaceDistanceFromGrams(grams: GramBlocks): number {
  const { aa, ab, bb } = grams;
  const k = aa.length;
  if (ab.length !== k || bb.length !== k || ab.some((r) => r.length !== k)) {
    throw new RangeError(`Mismatched Gram matrices: expected ${k}×${k} blocks`);
  }
  const ra = gramCholesky(aa), rb = gramCholesky(bb);
  // X = Rₐ⁻ᵀ (AᵀB): forward substitution down the rows (dropped rows stay zero).
  const x = zeros(k, k);
  for (let i = 0; i < k; i++) {
    if (ra[i][i] === 0) continue;
    for (let j = 0; j < k; j++) {
      let v = ab[i][j];
      for (let p = 0; p < i; p++) v -= ra[p][i] * x[p][j];
      x[i][j] = v / ra[i][i];
    }
  }
  // Y = X R_b⁻¹: substitution along the columns.
  let s = 0;
  for (let i = 0; i < k; i++) {
    const y = new Array<number>(k).fill(0);
    for (let j = 0; j < k; j++) {
      if (rb[j][j] === 0) continue;
      let v = x[i][j];
      for (let p = 0; p < j; p++) v -= y[p] * rb[p][j];
      y[j] = v / rb[j][j];
      s += y[j] * y[j];
    }
  }
  return Math.max(0, 1 - s / k);
}

/** Upper-triangular R with G = RᵀR; a pivot ≤ 1e-12 (a dependent column) leaves its row zero. */
function gramCholesky(g: Matrix): Matrix {
  const k = g.length, r = zeros(k, k);
  for (let j = 0; j < k; j++) {
    let d = g[j][j];
    for (let p = 0; p < j; p++) d -= r[p][j] * r[p][j];
    const pivot = Math.sqrt(Math.max(d, 0));
    if (!(pivot > 1e-12)) continue;
    r[j][j] = pivot;
    for (let c = j + 1; c < k; c++) {
      let v = g[j][c];
      for (let p = 0; p < j; p++) v -= r[p][j] * r[p][c];
      r[j][c] = v / pivot;
    }
  }
  return r;
}

/**
 * Columns `from` (default 0) up to, not including, `to` (default all) of a matrix.
 *
 * @example Dropping the first column, then keeping only it
 * ```ts
 * import { columns } from "./linalg.ts";
 * const a = [[1, 2, 3], [4, 5, 6]];
 * console.log(JSON.stringify(columns(a, { from: 1 }))); // [[2,3],[5,6]]
 * console.log(JSON.stringify(columns(a, { to: 1 }))); // [[1],[4]]
 * ```
 */
export function columns(a: Matrix, range: { from?: number; to?: number }): Matrix {
  return a.map((row) => row.slice(range.from ?? 0, range.to));
}

/**
 * Orthogonal R minimising ‖A R − B‖_F (orthogonal Procrustes): R = U Vᵀ for AᵀB = U Σ Vᵀ.
 *
 * @example Recovering a 90° rotation
 * ```ts
 * import { matmul, procrustes } from "./linalg.ts";
 * const a = [[1, 0], [0, 1], [1, 2]], rotation = [[0, -1], [1, 0]];
 * const r = procrustes(a, matmul(a, rotation));
 * console.log(JSON.stringify(r.map((row) => row.map((x) => +x.toFixed(12))))); // [[0,-1],[1,0]]
 * ```
 */
export function procrustes(a: Matrix, b: Matrix): Matrix {
  const { u, v } = svd(matmul(transpose(a), b));
  return matmul(u, transpose(v));
}

/**
 * A Haar-random n×n orthogonal matrix drawn with the given normal sampler.
 *
 * @example Its columns are orthonormal
 * ```ts
 * import { matmul, randomOrthogonal, transpose } from "./linalg.ts";
 * import { Rng } from "./random.ts";
 * const rng = new Rng(0);
 * const q = randomOrthogonal(3, () => rng.normal());
 * const gram = matmul(transpose(q), q).map((row) => row.map((x) => +x.toFixed(12)));
 * console.log(JSON.stringify(gram)); // [[1,0,0],[0,1,0],[0,0,1]]
 * ```
 */
export function randomOrthogonal(n: number, normal: () => number): Matrix {
  const g = Array.from({ length: n }, () => Array.from({ length: n }, () => normal()));
  return orthonormalColumns(g);
}
