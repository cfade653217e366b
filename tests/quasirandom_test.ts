import assert from "node:assert/strict";
import {
  gaussianDensity,
  gaussianMixtureDensity,
  hydrogen2d,
  inverseNormalCdf,
  kroneckerGenerator,
  quasiRandomUniforms,
  Rng,
  sampleQuasiRandom,
  type SamplingDensity,
  SchrodingerOperator,
  uniformBoxDensity,
} from "../mod.ts";
import { thrown } from "./helpers.ts";

Deno.test("inverseNormalCdf matches tabulated normal quantiles", () => {
  const table: [number, number][] = [
    [0.5, 0],
    [0.975, 1.959963984540054],
    [0.84134474606854293, 1],
    [0.001, -3.090232306167814],
    [1e-10, -6.361340902404056],
    [0.02425, -1.9729610513118845],
    [0.3, -0.5244005127080407],
  ];
  for (const [p, z] of table) {
    const got = inverseNormalCdf(p);
    // Reference values: Python's statistics.NormalDist().inv_cdf.
    assert.ok(Math.abs(got - z) <= 2e-9 * Math.max(1, Math.abs(z)), `Φ⁻¹(${p}) = ${got}, not ${z}`);
    assert.ok(Math.abs(inverseNormalCdf(1 - p) + z) <= 5e-9 * Math.max(1, Math.abs(z)));
  }
  assert.ok(Number.isFinite(inverseNormalCdf(0)) && inverseNormalCdf(0) < -30);
});

Deno.test("kroneckerGenerator gives the inverse golden and plastic ratios", () => {
  assert.ok(Math.abs(kroneckerGenerator(1)[0] - (Math.sqrt(5) - 1) / 2) < 1e-14);
  const [a1, a2] = kroneckerGenerator(2);
  const plastic = 1.324717957244746;
  assert.ok(Math.abs(a1 - 1 / plastic) < 1e-14 && Math.abs(a2 - 1 / plastic ** 2) < 1e-14);
  assert.match(thrown(() => kroneckerGenerator(0)).message, /Invalid dimension 0/);
});

Deno.test("quasiRandomUniforms covers the cube evenly in each block", () => {
  const n = 256, dim = 3;
  const u = quasiRandomUniforms(new Rng(1), { count: 2 * n, dim, blocks: 2 });
  assert.ok(u.every((v) => v >= 0 && v < 1));
  for (let b = 0; b < 2; b++) {
    for (let k = 0; k < dim; k++) {
      // Low discrepancy: each block's mean of every coordinate within ~log(n)/n of 1/2, where
      // independent draws would scatter by 1/√(12n) ≈ 0.018.
      let mean = 0;
      for (let i = 0; i < n; i++) mean += u[(b * n + i) * dim + k] / n;
      assert.ok(Math.abs(mean - 0.5) < 0.006, `block ${b} axis ${k}: mean ${mean}`);
    }
  }
  // Two blocks carry different random shifts.
  assert.notEqual(u[0], u[n * dim]);
  assert.match(
    thrown(() => quasiRandomUniforms(new Rng(0), { count: 10, dim: 2, blocks: 4 })).message,
    /Invalid block count 4: it must be a positive integer dividing the 10 points/,
  );
});

// ∫ψ₀²: the importance estimate mean ψ₀(x)²/p(x) over 256 points, repeated.
function groundNormEstimates(density: SamplingDensity, quasi: boolean, reps: number): number[] {
  const psi0 = hydrogen2d().states(1)[0].fn;
  const rng = new Rng(3), n = 256;
  return Array.from({ length: reps }, () => {
    const x = quasi ? sampleQuasiRandom(density, rng, { count: n }) : density.sample(rng, n);
    const p = density.density(x, n);
    let s = 0;
    for (let i = 0; i < n; i++) s += psi0([x[2 * i], x[2 * i + 1]]) ** 2 / p[i] / n;
    return s;
  });
}

Deno.test("sampleQuasiRandom is unbiased and cuts the variance of the hydrogen norm estimate", () => {
  const density = gaussianMixtureDensity({ dim: 2, stds: [1.5, 6, 20] });
  const reps = 400;
  const stats = (v: number[]) => {
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    return { mean: m, variance: v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1) };
  };
  const mc = stats(groundNormEstimates(density, false, reps));
  const qmc = stats(groundNormEstimates(density, true, reps));
  assert.ok(Math.abs(mc.mean - 1) < 4 * Math.sqrt(mc.variance / reps), `MC mean ${mc.mean}`);
  assert.ok(Math.abs(qmc.mean - 1) < 4 * Math.sqrt(qmc.variance / reps), `RQMC mean ${qmc.mean}`);
  // Measured ≈ 20× lower; assert 5×.
  assert.ok(qmc.variance < mc.variance / 5, `variance RQMC ${qmc.variance} vs MC ${mc.variance}`);
});

Deno.test("fromUniform maps uniforms to the density's distribution", () => {
  const densities = [
    gaussianDensity({ dim: 2, std: 3 }),
    gaussianMixtureDensity({ dim: 2, stds: [1, 4], weights: [1, 3] }),
    uniformBoxDensity({ lower: [-1, 0], upper: [1, 4] }),
  ];
  // Second moments E[x_k²]: 9; (1 + 3·16)/4 = 12.25; 1/3 and 16/3.
  const expected = [[9, 9], [12.25, 12.25], [1 / 3, 16 / 3]];
  densities.forEach((density, j) => {
    const n = 20000;
    const x = sampleQuasiRandom(density, new Rng(j), { count: n });
    for (let k = 0; k < 2; k++) {
      let m2 = 0;
      for (let i = 0; i < n; i++) m2 += x[2 * i + k] ** 2 / n;
      assert.ok(Math.abs(m2 / expected[j][k] - 1) < 0.02, `${density.name} axis ${k}: ${m2}`);
    }
  });
});

Deno.test("SchrodingerOperator quasirandom sampling checks its density and batch size", () => {
  const base = {
    dim: 2,
    potential: () => 0,
    density: gaussianDensity({ dim: 2, std: 1 }),
    sampling: "quasirandom" as const,
  };
  const op = new SchrodingerOperator({ ...base, sampleBlocks: 4 });
  assert.match(
    thrown(() => op.sample(new Rng(0), 6)).message,
    /Invalid batch size 6: .* multiple of 4/,
  );
  const noMap: SamplingDensity = { ...base.density, fromUniform: undefined, uniformDim: undefined };
  assert.match(
    thrown(() => new SchrodingerOperator({ ...base, density: noMap })).message,
    /Invalid sampling "quasirandom": density gaussian\(std=1\) has no fromUniform map/,
  );
  assert.match(
    thrown(() => new SchrodingerOperator({ ...base, sampling: "sobol" as "random" })).message,
    /Unknown sampling "sobol": allowed values are random, quasirandom/,
  );
});
