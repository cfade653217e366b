/**
 * Quadratures of R^d for evaluating learned functions: uniform grids (METHOD §4) and polar /
 * spherical product rules (Gauss–Legendre in r on panels, uniform in angle), which integrate the
 * radial bound states of hydrogen accurately with far fewer points than a grid.
 *
 * @module
 */
import { eigh } from "./linalg.ts";
import { assertPositive, assertPositiveInteger } from "./checks.ts";

/** Points with weights: ∫ h(x) dx ≈ Σ_i w_i h(x_i). */
export interface Quadrature {
  /** Points, n×d. */
  points: number[][];
  /** Weights, n. */
  weights: number[];
  /** Short description. */
  name: string;
}

/**
 * Gauss–Legendre nodes and weights on [−1, 1] (Newton iteration on P_n).
 *
 * @example
 * ```ts
 * import { gaussLegendre } from "./quadrature.ts";
 * const { nodes, weights } = gaussLegendre(3);
 * console.log(weights.reduce((a, b) => a + b, 0).toFixed(12)); // "2.000000000000"
 * ```
 */
export function gaussLegendre(n: number): { nodes: number[]; weights: number[] } {
  assertPositiveInteger(n, "number of nodes");
  const nodes = new Array<number>(n), weights = new Array<number>(n);
  for (let i = 0; i < Math.ceil(n / 2); i++) {
    let x = Math.cos(Math.PI * (i + 0.75) / (n + 0.5));
    let dp = 0;
    for (let it = 0; it < 100; it++) {
      let p0 = 1, p1 = x;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      if (n === 1) p1 = x, p0 = 1;
      dp = n * (x * p1 - p0) / (x * x - 1);
      const dx = p1 / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-15) break;
    }
    const w = 2 / ((1 - x * x) * dp * dp);
    nodes[i] = -x;
    nodes[n - 1 - i] = x;
    weights[i] = weights[n - 1 - i] = w;
  }
  return { nodes, weights };
}

function radialRule(radius: number, nodes: number, panels: number): { r: number[]; w: number[] } {
  assertPositive(radius, "radius");
  const gl = gaussLegendre(nodes);
  const r: number[] = [], w: number[] = [];
  // Panels grow geometrically so that the cusp region near r = 0 is resolved finely.
  const edges = [0];
  const ratio = 2;
  const first = radius * (ratio - 1) / (Math.pow(ratio, panels) - 1);
  for (let p = 0; p < panels; p++) edges.push(edges[p] + first * Math.pow(ratio, p));
  for (let p = 0; p < panels; p++) {
    const a = edges[p], b = edges[p + 1];
    gl.nodes.forEach((t, i) => {
      r.push(a + (b - a) * (t + 1) / 2);
      w.push(gl.weights[i] * (b - a) / 2);
    });
  }
  return { r, w };
}

/** Options of {@linkcode polarQuadrature}. */
export interface PolarOptions {
  /** Outer radius. */
  radius: number;
  /** Gauss–Legendre nodes per radial panel; default 16. */
  radialNodes?: number;
  /** Radial panels (geometrically growing); default 8. */
  panels?: number;
  /**
   * Uniform angles; default 256, exact for angular harmonics of degree ≤ 255. Learned networks carry
   * angular detail far above their target's: on a trained 2-D hydrogen model 48 angles put the mean
   * energy error 28% too high (README, "Evaluation quadrature").
   */
  angles?: number;
}

/**
 * Polar product rule on the disc of the given radius: weights r·dr·dθ.
 *
 * @example
 * ```ts
 * import { polarQuadrature } from "./quadrature.ts";
 * const q = polarQuadrature({ radius: 1 });
 * console.log(q.weights.reduce((a, b) => a + b, 0).toFixed(10)); // "3.1415926536"
 * ```
 */
export function polarQuadrature(options: PolarOptions): Quadrature {
  const { r, w } = radialRule(options.radius, options.radialNodes ?? 16, options.panels ?? 8);
  const m = options.angles ?? 256;
  const points: number[][] = [], weights: number[] = [];
  for (let j = 0; j < m; j++) {
    const t = 2 * Math.PI * (j + 0.5) / m;
    r.forEach((ri, i) => {
      points.push([ri * Math.cos(t), ri * Math.sin(t)]);
      weights.push(w[i] * ri * 2 * Math.PI / m);
    });
  }
  return { points, weights, name: `polar(radius=${options.radius}, ${r.length}×${m})` };
}

/** Options of {@linkcode sphericalQuadrature}. */
export interface SphericalOptions {
  /** Outer radius. */
  radius: number;
  /** Gauss–Legendre nodes per radial panel; default 12. */
  radialNodes?: number;
  /** Radial panels; default 8. */
  panels?: number;
  /** Gauss–Legendre nodes in cos θ; default 32 (exact for polynomials of degree ≤ 63). */
  polar?: number;
  /** Uniform azimuths; default 64 (as polarQuadrature's angles: learned functions need them). */
  azimuthal?: number;
}

/**
 * Spherical product rule on the ball: weights r²·dr·d(cos θ)·dφ.
 *
 * @example The weights sum to the volume of the unit ball, 4π/3
 * ```ts
 * import { sphericalQuadrature } from "./quadrature.ts";
 * const q = sphericalQuadrature({ radius: 1, polar: 8, azimuthal: 8 });
 * const volume = q.weights.reduce((a, b) => a + b, 0);
 * console.log(volume.toFixed(10), (4 * Math.PI / 3).toFixed(10)); // 4.1887902048 4.1887902048
 * ```
 */
export function sphericalQuadrature(options: SphericalOptions): Quadrature {
  const { r, w } = radialRule(options.radius, options.radialNodes ?? 12, options.panels ?? 8);
  const ct = gaussLegendre(options.polar ?? 32);
  const m = options.azimuthal ?? 64;
  const points: number[][] = [], weights: number[] = [];
  for (let a = 0; a < m; a++) {
    const phi = 2 * Math.PI * (a + 0.5) / m;
    ct.nodes.forEach((c, j) => {
      const s = Math.sqrt(1 - c * c);
      r.forEach((ri, i) => {
        points.push([ri * s * Math.cos(phi), ri * s * Math.sin(phi), ri * c]);
        weights.push(w[i] * ri * ri * ct.weights[j] * 2 * Math.PI / m);
      });
    });
  }
  return { points, weights, name: `spherical(radius=${options.radius}, ${points.length} points)` };
}

/** Options of {@linkcode gridQuadrature}. */
export interface GridOptions {
  /** Lower corner (included). */
  lower: number[];
  /** Upper corner (excluded). */
  upper: number[];
  /** Spacing. */
  spacing: number;
}

/**
 * The uniform grid of METHOD §4: left endpoints lower + k·spacing < upper, weight spacing^d.
 *
 * @example A 4×2 grid on [0, 2)×[0, 1): the weights sum to the area
 * ```ts
 * import { gridQuadrature } from "./quadrature.ts";
 * const q = gridQuadrature({ lower: [0, 0], upper: [2, 1], spacing: 0.5 });
 * console.log(q.points.length, q.weights.reduce((a, b) => a + b, 0)); // 8 2
 * ```
 */
export function gridQuadrature(options: GridOptions): Quadrature {
  const { lower, upper, spacing } = options;
  assertPositive(spacing, "spacing");
  const counts = lower.map((lo, k) => Math.round((upper[k] - lo) / spacing));
  const points: number[][] = [];
  const total = counts.reduce((a, b) => a * b, 1);
  for (let i = 0; i < total; i++) {
    let rest = i;
    const pt = new Array<number>(lower.length);
    for (let k = lower.length - 1; k >= 0; k--) {
      pt[k] = lower[k] + (rest % counts[k]) * spacing;
      rest = Math.floor(rest / counts[k]);
    }
    points.push(pt);
  }
  const w = Math.pow(spacing, lower.length);
  return {
    points,
    weights: new Array(total).fill(w),
    name: `grid([${lower}], [${upper}], spacing=${spacing})`,
  };
}

/**
 * Gauss–Hermite nodes and weights for ∫ e^{−x²} h(x) dx (Golub–Welsch: eigenvalues of the Jacobi
 * matrix with off-diagonals √(k/2)).
 *
 * @example The weights sum to ∫ e^{−x²} dx = √π
 * ```ts
 * import { gaussHermite } from "./quadrature.ts";
 * const { weights } = gaussHermite(5);
 * const total = weights.reduce((a, b) => a + b, 0);
 * console.log(total.toFixed(12), Math.sqrt(Math.PI).toFixed(12)); // 1.772453850906 1.772453850906
 * ```
 */
export function gaussHermite(n: number): { nodes: number[]; weights: number[] } {
  assertPositiveInteger(n, "number of nodes");
  const jacobi = Array.from(
    { length: n },
    (_, i) =>
      Array.from(
        { length: n },
        (_, j) => (Math.abs(i - j) === 1 ? Math.sqrt(Math.max(i, j) / 2) : 0),
      ),
  );
  const { values, vectors } = eigh(jacobi);
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  return {
    nodes: order.map((i) => values[i]),
    weights: order.map((i) => Math.sqrt(Math.PI) * vectors[0][i] * vectors[0][i]),
  };
}

/**
 * Tensor-product Gauss–Hermite rule for ∫ h(x) dx on R^d, exact for h = e^{−Σ ω_k x_k²}·polynomial
 * of degree < 2n per axis (products of oscillator eigenfunctions): nodes x/√ω_k, weights
 * w·e^{x²}/√ω_k.
 *
 * @example ∫ e^{−x²−2y²} dx dy = π/√2, exactly
 * ```ts
 * import { gaussHermiteQuadrature } from "./quadrature.ts";
 * const q = gaussHermiteQuadrature({ omegas: [1, 2], nodes: 6 });
 * const h = ([x, y]: number[]) => Math.exp(-x * x - 2 * y * y);
 * const total = q.points.reduce((s, p, i) => s + q.weights[i] * h(p), 0);
 * console.log(total.toFixed(10), (Math.PI / Math.SQRT2).toFixed(10)); // 2.2214414691 2.2214414691
 * ```
 */
export function gaussHermiteQuadrature(options: { omegas: number[]; nodes?: number }): Quadrature {
  const n = options.nodes ?? 14;
  const gh = gaussHermite(n);
  const d = options.omegas.length;
  const points: number[][] = [], weights: number[] = [];
  const total = Math.pow(n, d);
  for (let i = 0; i < total; i++) {
    let rest = i, w = 1;
    const pt = new Array<number>(d);
    for (let k = d - 1; k >= 0; k--) {
      const j = rest % n;
      rest = Math.floor(rest / n);
      const s = Math.sqrt(options.omegas[k]);
      pt[k] = gh.nodes[j] / s;
      w *= gh.weights[j] * Math.exp(gh.nodes[j] * gh.nodes[j]) / s;
    }
    points.push(pt);
    weights.push(w);
  }
  return { points, weights, name: `gauss-hermite(${n}^${d})` };
}
