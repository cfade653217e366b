/**
 * Exact spectra of Schrödinger operators H = −Δ + V (no factor ½) with known eigenfunctions: the 2D
 * and 3D hydrogen atoms (V = −1/|x|), the harmonic oscillator (V = Σ_i ω_i² x_i²) and the infinite
 * well. They are the ground truth against which learned eigenfunctions are scored, so everything
 * here is plain float64 TypeScript, independent of the training engine.
 *
 * Eigenfunctions are real and normalised in L²(R^d), ∫ψ² dx = 1; their overall signs follow from the
 * formulas below and are arbitrary. A spectrum lists its states by increasing energy; states whose
 * energies agree to a relative 1e-9 form a shell, listed in a fixed order documented per problem.
 * `states(count)` returns exactly `count` states, so when `count` cuts a degenerate shell the last
 * block returned by {@linkcode degenerateBlocks} is partial; {@linkcode completeShellCount} gives the
 * smallest count that ends on a complete shell.
 *
 * @module
 */

import { assertFinite, assertPositive, assertPositiveInteger } from "../lib/checks.ts";

/** One eigenstate of an {@linkcode AnalyticSpectrum}. */
export interface AnalyticState {
  /** Eigenvalue E of H = −Δ + V. */
  energy: number;
  /** Quantum numbers labelling the state; their meaning is documented by each spectrum. */
  quantumNumbers: number[];
  /** The real eigenfunction, normalised in L²(R^d), at a point of length d. */
  fn: (x: number[]) => number;
}

/** A Schrödinger operator H = −Δ + V on R^d whose eigenpairs are known in closed form. */
export interface AnalyticSpectrum {
  /** Dimension d of the configuration space. */
  dim: number;
  /** The potential V at a point of length d (may be ±Infinity at a singularity or outside a box). */
  potential(x: number[]): number;
  /** The lowest `count` states by energy, shells in the spectrum's documented order. */
  states(count: number): AnalyticState[];
}

/** Relative tolerance under which two energies count as the same shell. */
const SHELL_TOLERANCE = 1e-9;

function sameEnergy(a: number, b: number, tolerance: number): boolean {
  return Math.abs(a - b) <= tolerance * Math.max(Math.abs(a), Math.abs(b));
}

function checkCount(count: number): void {
  assertPositiveInteger(count, "count");
}

function checkPoint(x: number[], dim: number): void {
  if (x.length !== dim) {
    throw new RangeError(`Invalid point of length ${x.length}: it must have length ${dim}`);
  }
}

function checkFiniteVector(values: number[], name: string): void {
  if (!Array.isArray(values) || values.length === 0) {
    throw new RangeError(`Invalid ${name} ${JSON.stringify(values)}: it must be a non-empty array`);
  }
  values.forEach((v, i) => {
    assertFinite(v, `${name}[${i}]`);
  });
}

/** log(b!/a!) for integers 0 ≤ a ≤ b, summed so that large factorials never overflow. */
function logFactorialRatio(b: number, a: number): number {
  let s = 0;
  for (let j = a + 1; j <= b; j++) s += Math.log(j);
  return s;
}

/** Generalised Laguerre polynomial L^{(alpha)}_k(x) by its three-term recurrence. */
function laguerre(k: number, alpha: number, x: number): number {
  if (k === 0) return 1;
  let prev = 1;
  let cur = 1 + alpha - x;
  for (let j = 1; j < k; j++) {
    const next = ((2 * j + 1 + alpha - x) * cur - (j + alpha) * prev) / (j + 1);
    prev = cur;
    cur = next;
  }
  return cur;
}

/**
 * C·ρ^a·e^{−ρ/2}·L^{(alpha)}_k(ρ), with C = e^{logC}. Working in logs keeps ρ^a and C finite where
 * either alone would overflow or underflow.
 */
function laguerreRadial(logC: number, a: number, k: number, alpha: number, rho: number): number {
  if (rho === 0) return a === 0 ? Math.exp(logC) * laguerre(k, alpha, 0) : 0;
  return Math.exp(logC + a * Math.log(rho) - rho / 2) * laguerre(k, alpha, rho);
}

/** Order of the magnetic numbers inside a shell: 0, 1, −1, 2, −2, …, lMax, −lMax. */
function signedOrder(lMax: number): number[] {
  const out = [0];
  for (let l = 1; l <= lMax; l++) out.push(l, -l);
  return out;
}

/**
 * The 2D hydrogen atom H = −Δ − 1/|x| on R².
 *
 * Since −Δ − 1/r = 2(−½Δ − ½/r), the levels are E_{n,l} = −1/(4(n+½)²) for n ≥ 0 and |l| ≤ n, with
 * degeneracy 2n+1. With β = 1/(n+½) (so R decays as e^{−√(−E) r}),
 * ψ = C·(βr)^{|l|}·e^{−βr/2}·L^{(2|l|)}_{n−|l|}(βr)·A_l(θ), where A_0 = 1/√(2π), A_l = cos(lθ)/√π for
 * l > 0 and sin(|l|θ)/√π for l < 0, and C = β·√((n−|l|)! / ((n+|l|)!·(2n+1))) exactly.
 * Quantum numbers are [n, l]; inside a shell l runs 0, 1, −1, 2, −2, …, n, −n.
 *
 * @example
 * ```ts
 * import { hydrogen2d } from "./analytic.ts";
 * const states = hydrogen2d().states(4);
 * console.log(states.map((s) => s.energy)); // [-1, -0.111…, -0.111…, -0.111…]
 * ```
 */
export function hydrogen2d(): AnalyticSpectrum {
  return {
    dim: 2,
    potential(x: number[]): number {
      checkPoint(x, 2);
      return -1 / Math.hypot(x[0], x[1]);
    },
    states(count: number): AnalyticState[] {
      checkCount(count);
      const out: AnalyticState[] = [];
      for (let n = 0; out.length < count; n++) {
        const energy = -1 / (4 * (n + 0.5) ** 2);
        const beta = 1 / (n + 0.5);
        for (const l of signedOrder(n)) {
          if (out.length === count) break;
          const a = Math.abs(l);
          const k = n - a;
          const logC = Math.log(beta) -
            0.5 * (logFactorialRatio(k + 2 * a, k) + Math.log(2 * n + 1));
          const angularNorm = l === 0 ? 1 / Math.sqrt(2 * Math.PI) : 1 / Math.sqrt(Math.PI);
          const fn = (x: number[]): number => {
            checkPoint(x, 2);
            const r = Math.hypot(x[0], x[1]);
            const radial = laguerreRadial(logC, a, k, 2 * a, beta * r);
            if (l === 0) return radial * angularNorm;
            if (radial === 0) return 0;
            const theta = Math.atan2(x[1], x[0]);
            return radial * angularNorm * (l > 0 ? Math.cos(l * theta) : Math.sin(a * theta));
          };
          out.push({ energy, quantumNumbers: [n, l], fn });
        }
      }
      return out;
    },
  };
}

/**
 * Real spherical harmonic Y_{l,m} at a unit vector u, orthonormal on the unit sphere:
 * m > 0 ↔ cos(mφ), m < 0 ↔ sin(|m|φ). The fully normalised Legendre recurrence avoids the
 * (l+m)!/(l−m)! ratios that overflow in the textbook form.
 */
function realSphericalHarmonic(l: number, m: number): (u: number[]) => number {
  const a = Math.abs(m);
  let seed = (2 * a + 1) / (4 * Math.PI);
  for (let j = 1; j <= a; j++) seed *= (2 * j - 1) / (2 * j);
  const start = Math.sqrt(m === 0 ? seed : 2 * seed);
  const alpha: number[] = [];
  const gamma: number[] = [];
  for (let j = a + 2; j <= l; j++) {
    alpha.push(Math.sqrt((4 * j * j - 1) / (j * j - a * a)));
    gamma.push(Math.sqrt(((j - 1) ** 2 - a * a) / (4 * (j - 1) ** 2 - 1)));
  }
  return (u: number[]): number => {
    const t = u[2];
    // P̄ without its sin^{|m|}θ factor; that factor rides on (u_x + i u_y)^{|m|} below.
    let p = start;
    if (l > a) {
      let prev = p;
      p = t * Math.sqrt(2 * a + 3) * prev;
      for (let i = 0; i < alpha.length; i++) {
        const next = alpha[i] * (t * p - gamma[i] * prev);
        prev = p;
        p = next;
      }
    }
    let re = 1;
    let im = 0;
    for (let j = 0; j < a; j++) {
      const r2 = re * u[0] - im * u[1];
      im = re * u[1] + im * u[0];
      re = r2;
    }
    return m === 0 ? p : p * (m > 0 ? re : im);
  };
}

/**
 * The 3D hydrogen atom H = −Δ − 1/|x| on R³.
 *
 * Since −Δ − 1/r = 2(−½Δ − ½/r), the levels are E_n = −1/(4n²) for n ≥ 1, with degeneracy n². With
 * β = 1/n, ψ = C·(βr)^l·e^{−βr/2}·L^{(2l+1)}_{n−l−1}(βr)·Y_{l,m}, where Y_{l,m} is the real spherical
 * harmonic (cos(mφ) for m > 0, sin(|m|φ) for m < 0, polar angle from the z axis) and
 * C = √(β³·(n−l−1)! / (2n·(n+l)!)) exactly. Quantum numbers are [n, l, m]; inside a shell l runs
 * 0 … n−1 and, for each l, m runs 0, 1, −1, …, l, −l.
 *
 * @example
 * ```ts
 * import { hydrogen3d } from "./analytic.ts";
 * const states = hydrogen3d().states(5);
 * console.log(states.map((s) => s.quantumNumbers)); // [[1,0,0], [2,0,0], [2,1,0], [2,1,1], [2,1,-1]]
 * ```
 */
export function hydrogen3d(): AnalyticSpectrum {
  return {
    dim: 3,
    potential(x: number[]): number {
      checkPoint(x, 3);
      return -1 / Math.hypot(x[0], x[1], x[2]);
    },
    states(count: number): AnalyticState[] {
      checkCount(count);
      const out: AnalyticState[] = [];
      for (let n = 1; out.length < count; n++) {
        const energy = -1 / (4 * n * n);
        const beta = 1 / n;
        for (let l = 0; l < n && out.length < count; l++) {
          const k = n - l - 1;
          const logC = 0.5 * (3 * Math.log(beta) - logFactorialRatio(n + l, k) - Math.log(2 * n));
          for (const m of signedOrder(l)) {
            if (out.length === count) break;
            const harmonic = realSphericalHarmonic(l, m);
            const fn = (x: number[]): number => {
              checkPoint(x, 3);
              const r = Math.hypot(x[0], x[1], x[2]);
              const radial = laguerreRadial(logC, l, k, 2 * l + 1, beta * r);
              if (radial === 0) return 0;
              // At the nucleus only l = 0 survives, and Y_00 is constant: any direction will do.
              const u = r === 0 ? [0, 0, 1] : [x[0] / r, x[1] / r, x[2] / r];
              return radial * harmonic(u);
            };
            out.push({ energy, quantumNumbers: [n, l, m], fn });
          }
        }
      }
      return out;
    },
  };
}

/** Binary min-heap keyed by a comparison function. */
class MinHeap<T> {
  #items: T[] = [];
  #less: (a: T, b: T) => boolean;
  constructor(less: (a: T, b: T) => boolean) {
    this.#less = less;
  }
  get size(): number {
    return this.#items.length;
  }
  peek(): T {
    return this.#items[0];
  }
  push(item: T): void {
    const h = this.#items;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }
  pop(): T {
    const h = this.#items;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < h.length && this.#less(h[l], h[best])) best = l;
        if (r < h.length && this.#less(h[r], h[best])) best = r;
        if (best === i) break;
        [h[i], h[best]] = [h[best], h[i]];
        i = best;
      }
    }
    return top;
  }
}

function lexLess(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return false;
}

/**
 * Lowest `count` multi-indices of a separable spectrum E(k) = Σ_i e_i(k_i), each e_i increasing in
 * k_i ≥ kMin. Best-first search from (kMin, …, kMin) visits them in nondecreasing energy; popping on
 * until the last shell is complete lets ties be reordered lexicographically, so the order never
 * depends on floating-point noise in the sums.
 */
function lowestSeparable(
  axisEnergy: (axis: number, k: number) => number,
  dim: number,
  kMin: number,
  count: number,
): { energy: number; k: number[] }[] {
  type Node = { energy: number; k: number[] };
  const heap = new MinHeap<Node>((a, b) => a.energy < b.energy);
  const seen = new Set<string>();
  const total = (k: number[]) => k.reduce((s, ki, i) => s + axisEnergy(i, ki), 0);
  const start = new Array<number>(dim).fill(kMin);
  heap.push({ energy: total(start), k: start });
  seen.add(start.join(","));
  const popped: Node[] = [];
  let shellStart = 0;
  while (heap.size > 0) {
    if (popped.length >= count && !sameEnergy(heap.peek().energy, shellStart, SHELL_TOLERANCE)) {
      break;
    }
    const node = heap.pop();
    if (popped.length === 0 || !sameEnergy(node.energy, shellStart, SHELL_TOLERANCE)) {
      shellStart = node.energy;
    }
    popped.push(node);
    for (let i = 0; i < dim; i++) {
      const k = node.k.slice();
      k[i]++;
      const key = k.join(",");
      if (!seen.has(key)) {
        seen.add(key);
        heap.push({ energy: total(k), k });
      }
    }
  }
  const ordered: Node[] = [];
  for (const block of shellBlocks(popped.map((p) => p.energy), SHELL_TOLERANCE)) {
    const shell = block.map((i) => popped[i]).sort((a, b) =>
      lexLess(a.k, b.k) ? -1 : lexLess(b.k, a.k) ? 1 : 0
    );
    ordered.push(...shell);
  }
  return ordered.slice(0, count);
}

/** Index blocks of equal energy, in order of energy; indices inside a block ascend. */
function shellBlocks(energies: number[], tolerance: number): number[][] {
  const order = energies.map((_, i) => i).sort((a, b) => energies[a] - energies[b] || a - b);
  const blocks: number[][] = [];
  let start = NaN;
  for (const i of order) {
    if (blocks.length === 0 || !sameEnergy(energies[i], start, tolerance)) {
      blocks.push([i]);
      start = energies[i];
    } else {
      blocks[blocks.length - 1].push(i);
    }
  }
  for (const b of blocks) b.sort((x, y) => x - y);
  return blocks;
}

/**
 * Normalised Hermite function h_k(ξ) = (2^k k! √π)^{−1/2} H_k(ξ) e^{−ξ²/2}. The recurrence runs on
 * the polynomial part with a running log-scale and applies e^{−ξ²/2} last, so a high k far out is
 * not lost to an underflowed Gaussian.
 */
function hermiteFunction(k: number, xi: number): number {
  let prev = 0;
  let cur = Math.pow(Math.PI, -0.25);
  let logScale = 0;
  for (let j = 0; j < k; j++) {
    const next = Math.sqrt(2 / (j + 1)) * xi * cur - Math.sqrt(j / (j + 1)) * prev;
    prev = cur;
    cur = next;
    const mag = Math.abs(cur);
    if (mag > 1e100) {
      prev /= mag;
      cur /= mag;
      logScale += Math.log(mag);
    }
  }
  return cur * Math.exp(logScale - xi * xi / 2);
}

/** Options of {@linkcode harmonicOscillator}. */
export interface HarmonicOscillatorOptions {
  /** Frequencies ω_i > 0, one per axis (V = Σ_i ω_i² x_i²); equal values give the isotropic case. */
  omegas: number[];
}

/**
 * The harmonic oscillator H = −Δ + Σ_i ω_i² x_i² on R^d, d = `omegas.length`.
 *
 * Per axis E_k = ω(2k+1) and ψ_k(x) = (ω/π)^{1/4}(2^k k!)^{−1/2} H_k(√ω x) e^{−ωx²/2} (computed by
 * the normalised Hermite-function recurrence, no factorials); d-dimensional states are products, with
 * E = Σ_i ω_i(2k_i+1). Quantum numbers are [k_1, …, k_d]; inside a shell they ascend
 * lexicographically (first axis slowest), e.g. [0,1] before [1,0].
 *
 * @example
 * ```ts
 * import { harmonicOscillator } from "./analytic.ts";
 * const states = harmonicOscillator({ omegas: [1, 1] }).states(3);
 * console.log(states.map((s) => s.energy)); // [2, 4, 4]
 * ```
 */
export function harmonicOscillator(options: HarmonicOscillatorOptions): AnalyticSpectrum {
  const omegas = options?.omegas;
  checkFiniteVector(omegas, "omegas");
  omegas.forEach((w, i) => {
    assertPositive(w, `omegas[${i}]`);
  });
  const w = omegas.slice();
  const dim = w.length;
  const sqrtW = w.map(Math.sqrt);
  const quarterW = w.map((v) => Math.pow(v, 0.25));
  return {
    dim,
    potential(x: number[]): number {
      checkPoint(x, dim);
      let v = 0;
      for (let i = 0; i < dim; i++) v += w[i] * w[i] * x[i] * x[i];
      return v;
    },
    states(count: number): AnalyticState[] {
      checkCount(count);
      return lowestSeparable((i, k) => w[i] * (2 * k + 1), dim, 0, count).map(({ energy, k }) => ({
        energy,
        quantumNumbers: k,
        fn: (x: number[]): number => {
          checkPoint(x, dim);
          let v = 1;
          for (let i = 0; i < dim; i++) v *= quarterW[i] * hermiteFunction(k[i], sqrtW[i] * x[i]);
          return v;
        },
      }));
    },
  };
}

/** Options of {@linkcode infiniteWell}. */
export interface InfiniteWellOptions {
  /** Lower corner of the box, one entry per axis. */
  lower: number[];
  /** Upper corner of the box; each entry must exceed the matching `lower`. */
  upper: number[];
}

function checkBox(lower: number[], upper: number[]): void {
  checkFiniteVector(lower, "lower");
  checkFiniteVector(upper, "upper");
  if (lower.length !== upper.length) {
    throw new RangeError(
      `Invalid upper of length ${upper.length}: it must have the length of lower, ${lower.length}`,
    );
  }
  lower.forEach((lo, i) => {
    if (!(lo < upper[i])) {
      throw new RangeError(
        `Invalid box on axis ${i}: lower ${lo} must be less than upper ${upper[i]}`,
      );
    }
  });
}

/**
 * The infinite well (particle in a box) H = −Δ on Π_i [lo_i, hi_i] with Dirichlet walls
 * (V = 0 inside, +Infinity outside).
 *
 * With a_i = hi_i − lo_i, E = Σ_i (π k_i / a_i)² for k_i ≥ 1 and
 * ψ = Π_i √(2/a_i) sin(k_i π (x_i − lo_i)/a_i) inside the box, 0 on and outside its walls. Quantum
 * numbers are [k_1, …, k_d]; inside a shell they ascend lexicographically (first axis slowest).
 *
 * @example
 * ```ts
 * import { infiniteWell } from "./analytic.ts";
 * const [ground] = infiniteWell({ lower: [0], upper: [1] }).states(1);
 * console.log(ground.energy); // π² ≈ 9.8696
 * ```
 */
export function infiniteWell(options: InfiniteWellOptions): AnalyticSpectrum {
  checkBox(options?.lower, options?.upper);
  const lo = options.lower.slice();
  const hi = options.upper.slice();
  const dim = lo.length;
  const width = lo.map((l, i) => hi[i] - l);
  const amp = width.map((a) => Math.sqrt(2 / a));
  const inside = (x: number[]) => x.every((xi, i) => xi > lo[i] && xi < hi[i]);
  return {
    dim,
    potential(x: number[]): number {
      checkPoint(x, dim);
      return inside(x) ? 0 : Infinity;
    },
    states(count: number): AnalyticState[] {
      checkCount(count);
      const e = (i: number, k: number) => (Math.PI * k / width[i]) ** 2;
      return lowestSeparable(e, dim, 1, count).map(({ energy, k }) => ({
        energy,
        quantumNumbers: k,
        fn: (x: number[]): number => {
          checkPoint(x, dim);
          if (!inside(x)) return 0;
          let v = 1;
          for (let i = 0; i < dim; i++) {
            v *= amp[i] * Math.sin(k[i] * Math.PI * (x[i] - lo[i]) / width[i]);
          }
          return v;
        },
      }));
    },
  };
}

/** Options of {@linkcode degenerateBlocks}. */
export interface DegenerateBlocksOptions {
  /** Relative tolerance |E_i − E_j| ≤ tolerance·max(|E_i|, |E_j|); default 1e-9. */
  tolerance?: number;
}

/**
 * Groups states of equal energy: index blocks into `states`, ordered by energy, indices ascending in
 * each block. Energies are compared with the first (lowest) energy of their block, so a slow drift
 * never chains distinct levels together. A block at the end of a truncated list may be partial.
 *
 * @example
 * ```ts
 * import { degenerateBlocks, hydrogen2d } from "./analytic.ts";
 * console.log(degenerateBlocks(hydrogen2d().states(9))); // [[0], [1, 2, 3], [4, 5, 6, 7, 8]]
 * ```
 */
export function degenerateBlocks(
  states: AnalyticState[],
  options: DegenerateBlocksOptions = {},
): number[][] {
  const tolerance = options.tolerance ?? SHELL_TOLERANCE;
  if (!(tolerance >= 0) || !Number.isFinite(tolerance)) {
    throw new RangeError(`Invalid tolerance ${tolerance}: it must be a finite non-negative number`);
  }
  return shellBlocks(states.map((s) => s.energy), tolerance);
}

/**
 * The smallest count ≥ `minCount` for which `spectrum.states(count)` ends on a complete shell, i.e.
 * the state after the last one has a different energy (relative tolerance 1e-9).
 *
 * @example
 * ```ts
 * import { completeShellCount, hydrogen2d } from "./analytic.ts";
 * console.log(completeShellCount(hydrogen2d(), 5)); // 9 (shells of 1, 3, 5)
 * ```
 */
export function completeShellCount(spectrum: AnalyticSpectrum, minCount: number): number {
  assertPositiveInteger(minCount, "minCount");
  // Shells are finite for every spectrum here; the cap only guards against a broken spectrum.
  for (let n = 2 * minCount + 8; n <= 64 * minCount + 1024; n *= 2) {
    const s = spectrum.states(n);
    for (let c = minCount; c < n; c++) {
      if (!sameEnergy(s[c - 1].energy, s[c].energy, SHELL_TOLERANCE)) return c;
    }
  }
  throw new RangeError(
    `Invalid spectrum: no shell ends between ${minCount} and ${64 * minCount + 1024} states`,
  );
}

/** Options of {@linkcode uniformGrid}. */
export interface UniformGridOptions {
  /** Lower corner, one entry per axis (the first point). */
  lower: number[];
  /** Upper corner (excluded); each extent upper − lower must be a whole number of spacings. */
  upper: number[];
  /** Distance between neighbouring points along every axis. */
  spacing: number;
}

/** A uniform grid of left-endpoint points; Σ_p weight·f(p) approximates ∫ f over the box. */
export interface UniformGrid {
  /** The points, row-major: the last axis varies fastest. */
  points: number[][];
  /** Quadrature weight of each point, spacing^d. */
  weight: number;
  /** Number of points along each axis. */
  shape: number[];
}

/**
 * The left-endpoint grid of the half-open box Π_i [lower_i, upper_i): points lower_i + j·spacing for
 * j = 0 … n_i − 1 with n_i = (upper_i − lower_i)/spacing, as in the evaluation of METHOD §4 (for
 * [−50,50)² at spacing 0.1: −50, −49.9, …, 49.9 per axis). Each coordinate is computed from its
 * index, not accumulated, so round-off does not drift across the grid.
 *
 * @example
 * ```ts
 * import { uniformGrid } from "./analytic.ts";
 * const grid = uniformGrid({ lower: [0, 0], upper: [1, 2], spacing: 0.5 });
 * console.log(grid.shape, grid.weight, grid.points[1]); // [2, 4] 0.25 [0, 0.5]
 * ```
 */
export function uniformGrid(options: UniformGridOptions): UniformGrid {
  const { lower, upper, spacing } = options ?? {};
  checkBox(lower, upper);
  if (typeof spacing !== "number" || !Number.isFinite(spacing) || spacing <= 0) {
    throw new RangeError(`Invalid spacing ${spacing}: it must be a finite positive number`);
  }
  const shape = lower.map((lo, i) => {
    const extent = upper[i] - lo;
    const n = Math.round(extent / spacing);
    if (n < 1 || Math.abs(n * spacing - extent) > 1e-9 * extent) {
      throw new RangeError(
        `Invalid spacing ${spacing}: it must divide the extent ${extent} of axis ${i} evenly`,
      );
    }
    return n;
  });
  const d = shape.length;
  const total = shape.reduce((a, b) => a * b, 1);
  const points: number[][] = new Array(total);
  const idx = new Array<number>(d).fill(0);
  for (let p = 0; p < total; p++) {
    points[p] = idx.map((j, i) => lower[i] + j * spacing);
    for (let i = d - 1; i >= 0; i--) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
  return { points, weight: spacing ** d, shape };
}

/**
 * Evaluates states at points: row p holds every state's value at `points[p]` (points × states).
 *
 * @example
 * ```ts
 * import { evaluateStates, harmonicOscillator } from "./analytic.ts";
 * const states = harmonicOscillator({ omegas: [1] }).states(2);
 * console.log(evaluateStates(states, [[0], [1]])); // [[π^{-1/4}, 0], [0.4556…, 0.6443…]]
 * ```
 */
export function evaluateStates(states: AnalyticState[], points: number[][]): number[][] {
  return points.map((x) => states.map((s) => s.fn(x)));
}
