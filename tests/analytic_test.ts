import assert from "node:assert/strict";
import {
  type AnalyticSpectrum,
  type AnalyticState,
  completeShellCount,
  degenerateBlocks,
  evaluateStates,
  harmonicOscillator,
  hydrogen2d,
  hydrogen3d,
  infiniteWell,
  uniformGrid,
} from "../operators/analytic.ts";
import { Rng } from "../lib/random.ts";

/** Gram matrix Σ_p w·ψ_i(p)ψ_j(p), streamed so large grids never hold a points × states matrix. */
function gram(states: AnalyticState[], points: Iterable<number[]>, weights?: number[]): number[][] {
  const n = states.length;
  const g = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const v = new Float64Array(n);
  let p = 0;
  for (const x of points) {
    const w = weights ? weights[p] : 1;
    p++;
    for (let i = 0; i < n; i++) v[i] = states[i].fn(x);
    for (let i = 0; i < n; i++) {
      const wi = w * v[i];
      for (let j = 0; j <= i; j++) g[i][j] += wi * v[j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[j][i] = g[i][j];
  return g;
}

function scaled(g: number[][], s: number): number[][] {
  return g.map((row) => row.map((x) => x * s));
}

/** max_ij |G − I|_ij over the index set (all indices by default). */
function identityDeviation(g: number[][], indices?: number[]): number {
  const idx = indices ?? g.map((_, i) => i);
  let worst = 0;
  for (const i of idx) for (const j of idx) worst = Math.max(worst, Math.abs(g[i][j] - +(i === j)));
  return worst;
}

/** Gauss–Legendre nodes and weights on [−1, 1] by Newton on P_n. */
function gaussLegendre(n: number): { x: number[]; w: number[] } {
  const x: number[] = [];
  const w: number[] = [];
  for (let i = 0; i < n; i++) {
    let t = Math.cos(Math.PI * (i + 0.75) / (n + 0.5));
    let dp = 0;
    for (let it = 0; it < 100; it++) {
      let p0 = 1;
      let p1 = t;
      for (let k = 2; k <= n; k++) [p0, p1] = [p1, ((2 * k - 1) * t * p1 - (k - 1) * p0) / k];
      dp = n * (t * p1 - p0) / (t * t - 1);
      const dt = p1 / dp;
      t -= dt;
      if (Math.abs(dt) < 1e-16) break;
    }
    x.push(t);
    w.push(2 / ((1 - t * t) * dp * dp));
  }
  return { x, w };
}

/** Composite Gauss–Legendre on [0, rMax] in panels: nodes and weights for ∫ f(r) dr. */
function radialRule(rMax: number, panels: number, order: number): { r: number[]; w: number[] } {
  const gl = gaussLegendre(order);
  const r: number[] = [];
  const w: number[] = [];
  const h = rMax / panels;
  for (let p = 0; p < panels; p++) {
    for (let i = 0; i < order; i++) {
      r.push(h * (p + (gl.x[i] + 1) / 2));
      w.push(h * gl.w[i] / 2);
    }
  }
  return { r, w };
}

/** −Δψ(x) by the 4th-order 5-point stencil on each axis. */
function minusLaplacian(f: (x: number[]) => number, x: number[], h: number): number {
  const f0 = f(x);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const at = (t: number) => {
      const y = x.slice();
      y[i] += t;
      return f(y);
    };
    s += (-at(2 * h) + 16 * at(h) - 30 * f0 + 16 * at(-h) - at(-2 * h)) / (12 * h * h);
  }
  return -s;
}

/**
 * Checks |Hψ − Eψ| ≤ 1e-4·max|Eψ| over the points for every state, returning the worst ratio. Near
 * the nucleus the step shrinks with r because the Cartesian derivatives of e^{−βr/2} grow like r^{−k}.
 */
function eigenResidual(
  spectrum: AnalyticSpectrum,
  states: AnalyticState[],
  points: number[][],
): number {
  let worst = 0;
  for (const s of states) {
    let scale = 0;
    let err = 0;
    for (const x of points) {
      const r = Math.hypot(...x);
      const h = Math.min(1e-3, r / 50);
      const psi = s.fn(x);
      const hpsi = minusLaplacian(s.fn, x, h) + spectrum.potential(x) * psi;
      scale = Math.max(scale, Math.abs(s.energy * psi));
      err = Math.max(err, Math.abs(hpsi - s.energy * psi));
    }
    const ratio = err / scale;
    assert.ok(ratio <= 1e-4, `state ${s.quantumNumbers}: residual ${err} vs scale ${scale}`);
    worst = Math.max(worst, ratio);
  }
  return worst;
}

/** n random points with radius in [rMin, rMax] and a uniformly random direction. */
function randomPoints(rng: Rng, n: number, dim: number, rMin: number, rMax: number): number[][] {
  const out: number[][] = [];
  for (let p = 0; p < n; p++) {
    const dir = Array.from({ length: dim }, () => rng.normal());
    const norm = Math.hypot(...dir);
    const r = rMin + (rMax - rMin) * rng.uniform();
    out.push(dir.map((d) => (r * d) / norm));
  }
  return out;
}

function blockSizes(states: AnalyticState[]): number[] {
  return degenerateBlocks(states).map((b) => b.length);
}

function* gridPoints(lower: number[], upper: number[], spacing: number): Generator<number[]> {
  yield* uniformGrid({ lower, upper, spacing }).points;
}

function timed<T>(label: string, run: () => T): T {
  const t0 = performance.now();
  const out = run();
  console.log(`  ${label}: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  return out;
}

Deno.test("2D hydrogen", async (t) => {
  const h = hydrogen2d();
  const states = h.states(16);

  await t.step("energies, quantum numbers and shells 1, 3, 5, 7", () => {
    assert.equal(h.dim, 2);
    assert.deepEqual(blockSizes(states), [1, 3, 5, 7]);
    assert.deepEqual(
      states.slice(0, 9).map((s) => s.quantumNumbers),
      [[0, 0], [1, 0], [1, 1], [1, -1], [2, 0], [2, 1], [2, -1], [2, 2], [2, -2]],
    );
    for (const s of states) assert.equal(s.energy, -1 / (4 * (s.quantumNumbers[0] + 0.5) ** 2));
    // The reference T = 100·(−H) has top eigenvalues 100, 11.11, 4, 2.04 (METHOD §3).
    assert.deepEqual(
      [0, 1, 4, 9].map((i) => Math.round(-100 * states[i].energy * 100) / 100),
      [100, 11.11, 4, 2.04],
    );
    assert.equal(h.potential([3, 4]), -0.2);
  });

  await t.step("orthonormal to 1e-10 by polar quadrature", () => {
    // ψ_iψ_j·r is polynomial × e^{−(β_i+β_j)r/2} in r (no cusp once r dr is used), so composite
    // Gauss–Legendre converges fast; the angular parts are trig polynomials of degree ≤ 6, which the
    // 64-point trapezoid rule integrates exactly. Beyond r = 400 the slowest state holds < e^{−100}.
    const { r, w } = radialRule(400, 200, 16);
    const nTheta = 64;
    const points: number[][] = [];
    const weights: number[] = [];
    for (let i = 0; i < r.length; i++) {
      for (let k = 0; k < nTheta; k++) {
        const theta = (2 * Math.PI * (k + 0.37)) / nTheta;
        points.push([r[i] * Math.cos(theta), r[i] * Math.sin(theta)]);
        weights.push(w[i] * r[i] * (2 * Math.PI / nTheta));
      }
    }
    const g = timed("polar quadrature, 16 states", () => gram(states, points, weights));
    assert.ok(identityDeviation(g) < 1e-10, `deviation ${identityDeviation(g)}`);
  });

  await t.step("METHOD §4 grid [−50,50)², spacing 0.1: n ≤ 2 to 1e-3, n = 3 truncated", () => {
    const grid = uniformGrid({ lower: [-50, -50], upper: [50, 50], spacing: 0.1 });
    assert.deepEqual(grid.shape, [1000, 1000]);
    const g = timed(
      "METHOD grid, 1e6 points × 16 states",
      () => scaled(gram(states, grid.points), grid.weight),
    );
    const low = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    assert.ok(identityDeviation(g, low) < 1e-3, `n ≤ 2 deviation ${identityDeviation(g, low)}`);
    // The n = 3 states decay only like e^{−r/7}: the square [−50,50)² misses 1.4–7.5% of their
    // norm (and their overlaps reach 1.3e-2). This pins that property of the METHOD grid.
    const norms = states.map((_, i) => g[i][i]).slice(9);
    for (const v of norms) assert.ok(v > 0.92 && v < 0.99, `n = 3 grid norm ${v}`);
    console.log(`  n = 3 norms on the METHOD grid: ${norms.map((v) => v.toFixed(4)).join(", ")}`);
  });

  await t.step("grid [−80,80)², spacing 0.1: all 16 orthonormal to 1e-3", () => {
    // Measured worst |G − I| against the half-width L: 7.5e-2 (50), 1.5e-2 (60), 2.5e-3 (70),
    // 3.6e-4 (80); 80 is the smallest round box that holds every n ≤ 3 state to 1e-3.
    const g = timed(
      "grid [−80,80)², 2.56e6 points × 16 states",
      () => scaled(gram(states, gridPoints([-80, -80], [80, 80], 0.1)), 0.01),
    );
    assert.ok(identityDeviation(g) < 1e-3, `deviation ${identityDeviation(g)}`);
  });

  await t.step("Hψ = Eψ at 50 random points with |x| > 0.05", () => {
    const points = randomPoints(new Rng(1), 50, 2, 0.05, 25);
    const worst = eigenResidual(h, states, points);
    console.log(`  worst relative residual ${worst.toExponential(2)}`);
  });
});

Deno.test("3D hydrogen", async (t) => {
  const h = hydrogen3d();
  const states = h.states(14);

  await t.step("energies, quantum numbers and shells 1, 4, 9", () => {
    assert.equal(h.dim, 3);
    assert.deepEqual(blockSizes(states), [1, 4, 9]);
    assert.deepEqual(
      states.slice(0, 5).map((s) => s.quantumNumbers),
      [[1, 0, 0], [2, 0, 0], [2, 1, 0], [2, 1, 1], [2, 1, -1]],
    );
    for (const s of states) assert.equal(s.energy, -1 / (4 * s.quantumNumbers[0] ** 2));
    assert.deepEqual(blockSizes(h.states(30)), [1, 4, 9, 16]);
  });

  await t.step("orthonormal to 1e-10 by spherical quadrature", () => {
    // Radial: composite Gauss–Legendre with weight r²; polar: Gauss–Legendre in cos θ (exact for the
    // degree ≤ 4 polynomials there); azimuth: 16-point trapezoid (exact for degree ≤ 4 trig).
    const { r, w } = radialRule(300, 150, 16);
    const gl = gaussLegendre(8);
    const nPhi = 16;
    const points: number[][] = [];
    const weights: number[] = [];
    for (let i = 0; i < r.length; i++) {
      for (let j = 0; j < gl.x.length; j++) {
        const c = gl.x[j];
        const s = Math.sqrt(1 - c * c);
        for (let k = 0; k < nPhi; k++) {
          const phi = (2 * Math.PI * (k + 0.21)) / nPhi;
          points.push([r[i] * s * Math.cos(phi), r[i] * s * Math.sin(phi), r[i] * c]);
          weights.push(w[i] * r[i] * r[i] * gl.w[j] * (2 * Math.PI / nPhi));
        }
      }
    }
    const g = timed("spherical quadrature, 14 states", () => gram(states, points, weights));
    assert.ok(identityDeviation(g) < 1e-10, `deviation ${identityDeviation(g)}`);
  });

  await t.step("Hψ = Eψ at 50 random points with |x| > 0.05", () => {
    const points = randomPoints(new Rng(2), 50, 3, 0.05, 25);
    const worst = eigenResidual(h, states, points);
    console.log(`  worst relative residual ${worst.toExponential(2)}`);
  });
});

Deno.test("harmonic oscillator", async (t) => {
  await t.step("2D isotropic: shells 1…7, 28 states orthonormal on [−5,5)², spacing 0.1", () => {
    const h = harmonicOscillator({ omegas: [1, 1] });
    const states = h.states(28);
    assert.deepEqual(blockSizes(states), [1, 2, 3, 4, 5, 6, 7]);
    for (const s of states) {
      assert.equal(s.energy, 2 * (s.quantumNumbers[0] + s.quantumNumbers[1]) + 2);
    }
    assert.deepEqual(states.slice(3, 6).map((s) => s.quantumNumbers), [[0, 2], [1, 1], [2, 0]]);
    const grid = uniformGrid({ lower: [-5, -5], upper: [5, 5], spacing: 0.1 });
    const g = timed("[−5,5)², 1e4 points × 28 states", () => {
      const values = evaluateStates(states, grid.points);
      const gg = states.map(() => new Array<number>(states.length).fill(0));
      for (const row of values) {
        for (let i = 0; i < row.length; i++) {
          for (let j = 0; j < row.length; j++) gg[i][j] += grid.weight * row[i] * row[j];
        }
      }
      return gg;
    });
    assert.ok(identityDeviation(g) < 1e-3, `deviation ${identityDeviation(g)}`);
    const worst = eigenResidual(h, states, randomPoints(new Rng(3), 50, 2, 0, 4));
    console.log(`  Hψ = Eψ worst relative residual ${worst.toExponential(2)}`);
  });

  await t.step("2D anisotropic ω = (1, 2.5): energies, order and orthonormality", () => {
    const h = harmonicOscillator({ omegas: [1, 2.5] });
    const states = h.states(12);
    for (const s of states) {
      const [a, b] = s.quantumNumbers;
      assert.equal(s.energy, 1 * (2 * a + 1) + 2.5 * (2 * b + 1));
    }
    const e = states.map((s) => s.energy);
    assert.deepEqual(e, [...e].sort((a, b) => a - b));
    // 2a + 5b = const ties: (0,2)/(5,0) at E = 14 and (1,2)/(6,0) at E = 16, lexicographic order.
    assert.deepEqual(states.slice(0, 8).map((s) => s.quantumNumbers), [
      [0, 0],
      [1, 0],
      [2, 0],
      [0, 1],
      [3, 0],
      [1, 1],
      [4, 0],
      [2, 1],
    ]);
    assert.equal(h.potential([1, 2]), 1 + 6.25 * 4);
    const g = scaled(gram(states, gridPoints([-7, -5], [7, 5], 0.1)), 0.01);
    assert.ok(identityDeviation(g) < 1e-3, `deviation ${identityDeviation(g)}`);
    eigenResidual(h, states, randomPoints(new Rng(4), 50, 2, 0, 4));
  });

  await t.step("3D isotropic: shells 1, 3, 6, 10, orthonormal on [−5,5)³, spacing 0.2", () => {
    const h = harmonicOscillator({ omegas: [1, 1, 1] });
    const states = h.states(20);
    assert.deepEqual(blockSizes(states), [1, 3, 6, 10]);
    const g = timed(
      "[−5,5)³, 1.25e5 points × 20 states",
      () => scaled(gram(states, gridPoints([-5, -5, -5], [5, 5, 5], 0.2)), 0.008),
    );
    assert.ok(identityDeviation(g) < 1e-3, `deviation ${identityDeviation(g)}`);
    eigenResidual(h, states, randomPoints(new Rng(5), 50, 3, 0, 4));
  });

  await t.step("ties from inexact sums still form clean shells", () => {
    // 0.1·(2k+1) sums differ in the last bits depending on the order of the terms.
    const states = harmonicOscillator({ omegas: [0.1, 0.1, 0.1] }).states(20);
    assert.deepEqual(blockSizes(states), [1, 3, 6, 10]);
    assert.deepEqual(states.slice(1, 4).map((s) => s.quantumNumbers), [[0, 0, 1], [0, 1, 0], [
      1,
      0,
      0,
    ]]);
  });

  await t.step("high Hermite orders stay finite and normalised far out", () => {
    const [psi] = harmonicOscillator({ omegas: [1] }).states(301).slice(300);
    assert.equal(psi.quantumNumbers[0], 300);
    // 1D trapezoid over [−30, 30): the turning point is √601 ≈ 24.5.
    let s = 0;
    for (let i = 0; i < 60000; i++) s += psi.fn([-30 + i * 0.001]) ** 2 * 0.001;
    assert.ok(Math.abs(s - 1) < 1e-9, `norm ${s}`);
  });
});

Deno.test("infinite well", async (t) => {
  await t.step("square [0,π]²: E = k₁² + k₂², shells and exact grid orthonormality", () => {
    const h = infiniteWell({ lower: [0, 0], upper: [Math.PI, Math.PI] });
    const states = h.states(10);
    const e = states.map((s) => Math.round(s.energy * 1e9) / 1e9);
    assert.deepEqual(e, [2, 5, 5, 8, 10, 10, 13, 13, 17, 17]);
    assert.deepEqual(blockSizes(states), [1, 2, 1, 2, 2, 2]);
    assert.deepEqual(states[1].quantumNumbers, [1, 2]);
    assert.deepEqual(states[2].quantumNumbers, [2, 1]);
    const spacing = Math.PI / 100;
    const g = scaled(gram(states, gridPoints([0, 0], [Math.PI, Math.PI], spacing)), spacing ** 2);
    assert.ok(identityDeviation(g) < 1e-12, `deviation ${identityDeviation(g)}`);
  });

  await t.step(
    "rectangle [−1,2]×[0,0.5]: Hψ = Eψ inside, zero and infinite potential outside",
    () => {
      const h = infiniteWell({ lower: [-1, 0], upper: [2, 0.5] });
      const states = h.states(8);
      for (const s of states) {
        const [a, b] = s.quantumNumbers;
        assert.ok(Math.abs(s.energy - ((Math.PI * a / 3) ** 2 + (Math.PI * b / 0.5) ** 2)) < 1e-12);
        assert.equal(s.fn([2.5, 0.25]), 0);
        assert.equal(s.fn([-1, 0.25]), 0);
      }
      assert.equal(h.potential([0, 0.7]), Infinity);
      assert.equal(h.potential([0, 0.2]), 0);
      const rng = new Rng(6);
      const points = Array.from(
        { length: 50 },
        () => [-0.9 + 2.8 * rng.uniform(), 0.05 + 0.4 * rng.uniform()],
      );
      eigenResidual(h, states, points);
    },
  );
});

Deno.test("grids, evaluation and shell counts", async (t) => {
  await t.step("uniformGrid: left endpoints, row-major, weight spacing^d", () => {
    const grid = uniformGrid({ lower: [-50, -50], upper: [50, 50], spacing: 0.1 });
    assert.deepEqual(grid.shape, [1000, 1000]);
    assert.equal(grid.points.length, 1e6);
    assert.ok(Math.abs(grid.weight - 0.01) < 1e-15);
    assert.deepEqual(grid.points[0], [-50, -50]);
    assert.ok(Math.abs(grid.points[1][1] - -49.9) < 1e-12);
    assert.ok(Math.abs(grid.points[1e6 - 1][0] - 49.9) < 1e-12);
    assert.ok(Math.abs(grid.points[1000][0] - -49.9) < 1e-12);
    const small = uniformGrid({ lower: [0, 0, 0], upper: [1, 1, 2], spacing: 0.5 });
    assert.deepEqual(small.shape, [2, 2, 4]);
    assert.equal(small.weight, 0.125);
    assert.deepEqual(small.points.slice(0, 5), [[0, 0, 0], [0, 0, 0.5], [0, 0, 1], [0, 0, 1.5], [
      0,
      0.5,
      0,
    ]]);
  });

  await t.step("evaluateStates: points × states", () => {
    const states = harmonicOscillator({ omegas: [1] }).states(3);
    const v = evaluateStates(states, [[0], [1]]);
    assert.equal(v.length, 2);
    assert.equal(v[0].length, 3);
    assert.ok(Math.abs(v[0][0] - Math.PI ** -0.25) < 1e-15);
    assert.ok(Math.abs(v[1][1] - Math.SQRT2 * Math.PI ** -0.25 * Math.exp(-0.5)) < 1e-15);
    // ψ_2 = (2x² − 1)/√2 · π^{−1/4} e^{−x²/2}
    assert.ok(Math.abs(v[1][2] - Math.PI ** -0.25 * Math.exp(-0.5) / Math.SQRT2) < 1e-15);
  });

  await t.step("completeShellCount", () => {
    assert.equal(completeShellCount(hydrogen2d(), 1), 1);
    assert.equal(completeShellCount(hydrogen2d(), 5), 9);
    assert.equal(completeShellCount(hydrogen2d(), 9), 9);
    assert.equal(completeShellCount(hydrogen2d(), 10), 16);
    assert.equal(completeShellCount(hydrogen2d(), 30), 36);
    assert.equal(completeShellCount(hydrogen3d(), 6), 14);
    assert.equal(completeShellCount(harmonicOscillator({ omegas: [1, 1] }), 27), 28);
  });

  await t.step("degenerateBlocks groups unsorted input and honours a tolerance", () => {
    const s = (energy: number): AnalyticState => ({ energy, quantumNumbers: [], fn: () => 0 });
    assert.deepEqual(degenerateBlocks([s(2), s(1), s(2 + 1e-12), s(1.5)]), [[1], [3], [0, 2]]);
    assert.deepEqual(degenerateBlocks([s(1), s(1.01)], { tolerance: 0.1 }), [[0, 1]]);
    assert.deepEqual(degenerateBlocks([]), []);
  });
});

Deno.test("bad input throws RangeError naming the value", async (t) => {
  const throwsWith = (run: () => unknown, pattern: RegExp) => {
    assert.throws(run, (e: unknown) => {
      assert.ok(e instanceof RangeError, `expected RangeError, got ${e}`);
      assert.match(e.message, pattern);
      assert.match(e.message, /^[A-Z]/, "sentence case");
      assert.doesNotMatch(e.message, /\.$/, "no trailing period");
      return true;
    });
  };
  await t.step("counts", () => {
    for (const spectrum of [hydrogen2d(), hydrogen3d(), harmonicOscillator({ omegas: [1] })]) {
      throwsWith(() => spectrum.states(0), /count 0: it must be a positive integer/);
      throwsWith(() => spectrum.states(-3), /count -3: it must be a positive integer/);
      throwsWith(() => spectrum.states(2.5), /count 2\.5: it must be a positive integer/);
    }
    throwsWith(() => completeShellCount(hydrogen2d(), 0), /minCount 0: it must be a positive/);
  });
  await t.step("oscillator frequencies", () => {
    throwsWith(() => harmonicOscillator({ omegas: [] }), /omegas \[\]: it must be a non-empty/);
    throwsWith(
      () => harmonicOscillator({ omegas: [1, -2] }),
      /omegas\[1\] -2: it must be positive/,
    );
    throwsWith(() => harmonicOscillator({ omegas: [0] }), /omegas\[0\] 0: it must be positive/);
    throwsWith(
      () => harmonicOscillator({ omegas: [NaN] }),
      /omegas\[0\] NaN: it must be a finite number/,
    );
  });
  await t.step("boxes and grids", () => {
    throwsWith(
      () => infiniteWell({ lower: [0, 1], upper: [1, 1] }),
      /axis 1: lower 1 must be less than upper 1/,
    );
    throwsWith(
      () => infiniteWell({ lower: [0], upper: [1, 2] }),
      /upper of length 2: it must have the length of lower, 1/,
    );
    throwsWith(() => infiniteWell({ lower: [], upper: [] }), /lower \[\]: it must be a non-empty/);
    throwsWith(
      () => uniformGrid({ lower: [3], upper: [-3], spacing: 0.1 }),
      /lower 3 must be less than upper -3/,
    );
    throwsWith(
      () => uniformGrid({ lower: [0], upper: [1], spacing: 0 }),
      /spacing 0: it must be a finite positive number/,
    );
    throwsWith(
      () => uniformGrid({ lower: [0], upper: [1], spacing: 0.3 }),
      /spacing 0\.3: it must divide the extent 1 of axis 0 evenly/,
    );
  });
  await t.step("points of the wrong dimension", () => {
    const [s] = hydrogen3d().states(1);
    throwsWith(() => s.fn([1, 2]), /point of length 2: it must have length 3/);
    throwsWith(() => hydrogen2d().potential([1]), /point of length 1: it must have length 2/);
  });
});
