/**
 * Bad settings are rejected with a message naming the value and what is allowed, for the checks no
 * other test reaches.
 */
import assert from "node:assert/strict";
import {
  completeShellCount,
  degenerateBlocks,
  eigh,
  EnvelopeModel,
  gaussHermite,
  gaussianMixtureDensity,
  gaussLegendre,
  generalizedEigh,
  gridQuadrature,
  harmonicOscillator,
  hydrogen2d,
  matmul,
  Mlp,
  nestingMasks,
  oscillatorProblem,
  polarQuadrature,
  quasiRandomUniforms,
  Rng,
  saveCheckpoint,
  subspaceDistance,
  SymmetricMatrixOperator,
  TabularModel,
  Trainer,
  uniformGrid,
  weightedGram,
} from "../mod.ts";
import { assertFinite, assertPositive, assertPositiveInteger } from "../lib/checks.ts";
import { matrixHeatmap } from "../lib/plot.ts";
import { setup, thrown } from "./helpers.ts";

await setup();

/** Asserts that `f` throws a RangeError whose message matches `pattern`. */
function rejects(f: () => unknown, pattern: RegExp): void {
  const error = thrown(f);
  assert.ok(error instanceof RangeError, `${error.name}: ${error.message}`);
  assert.match(error.message, pattern);
}

Deno.test("assertPositiveInteger, assertPositive and assertFinite name the setting and the value", () => {
  assertPositiveInteger(3, "batch size");
  assertPositive(1e-9, "scale");
  assertFinite(-1e300, "shift");
  for (const v of [0, -2, 2.5, NaN, Infinity, "4"]) {
    rejects(
      () => assertPositiveInteger(v, "batch size"),
      new RegExp(`^Invalid batch size ${v}: it must be a positive integer$`),
    );
  }
  for (const v of [0, -1, NaN]) {
    rejects(
      () => assertPositive(v, "scale"),
      new RegExp(`^Invalid scale ${v}: it must be positive$`),
    );
  }
  for (const v of [NaN, Infinity, -Infinity]) {
    rejects(
      () => assertFinite(v, "shift"),
      new RegExp(`^Invalid shift ${v}: it must be a finite number$`),
    );
  }
});

Deno.test("oscillatorProblem takes its dimension from the frequencies and checks they agree", () => {
  assert.equal(oscillatorProblem().dim, 2);
  assert.deepEqual(oscillatorProblem({ dim: 3 }).spec?.omegas, [1, 1, 1]);
  const anisotropic = oscillatorProblem({ omegas: [1, 2] });
  assert.equal(anisotropic.dim, 2);
  // E = Σ ω_k (2 n_k + 1): 3, then 5 (n = (1, 0)), then 7 twice ((2, 0) and (0, 1))
  assert.deepEqual(anisotropic.spectrum.states(4).map((s) => s.energy), [3, 5, 7, 7]);
  rejects(
    () => oscillatorProblem({ dim: 3, omegas: [1, 2] }),
    /^Mismatched frequencies: 2 for dimension 3 \(give one per dimension\)$/,
  );
  rejects(
    () => oscillatorProblem({ dim: 0 }),
    /^Invalid dimension 0: it must be a positive integer$/,
  );
});

Deno.test("nestingMasks rejects weights of the wrong count or sign", () => {
  rejects(() => nestingMasks(3, { weights: [1, 1] }), /got 2 weights for 3 modes/);
  rejects(
    () => nestingMasks(3, { weights: [1, 0, 1] }),
    /Invalid nesting weight 0 at index 1: weights must be positive/,
  );
});

Deno.test("Analytic spectra reject bad counts, frequencies and tolerances", () => {
  rejects(() => hydrogen2d().states(0), /Invalid count 0: it must be a positive integer/);
  rejects(() => hydrogen2d().states(2.5), /Invalid count 2.5/);
  rejects(
    () => harmonicOscillator({ omegas: [1, -1] }),
    /Invalid omegas\[1\] -1: it must be positive/,
  );
  const states = hydrogen2d().states(4);
  rejects(
    () => degenerateBlocks(states, { tolerance: -1 }),
    /Invalid tolerance -1: it must be a finite non-negative number/,
  );
  rejects(
    () => completeShellCount(hydrogen2d(), 0),
    /Invalid minCount 0: it must be a positive integer/,
  );
  rejects(
    () => uniformGrid({ lower: [0], upper: [1], spacing: 0 }),
    /Invalid spacing 0: it must be a finite positive number/,
  );
});

Deno.test("Quadrature rules reject bad node counts, radii and spacings", () => {
  rejects(() => gaussLegendre(0), /Invalid number of nodes 0: it must be a positive integer/);
  rejects(() => gaussHermite(1.5), /Invalid number of nodes 1.5/);
  rejects(() => polarQuadrature({ radius: 0 }), /Invalid radius 0: it must be positive/);
  rejects(
    () => gridQuadrature({ lower: [0], upper: [1], spacing: -0.1 }),
    /Invalid spacing -0.1: it must be positive/,
  );
});

Deno.test("Samplers reject mismatched mixtures and bad point counts", () => {
  rejects(
    () => gaussianMixtureDensity({ dim: 2, stds: [1, 2], weights: [1] }),
    /Mismatched mixture: 1 weights for 2 components/,
  );
  rejects(
    () => quasiRandomUniforms(new Rng(0), { count: 0, dim: 2 }),
    /Invalid point count 0: it must be a positive integer/,
  );
});

Deno.test("Models reject a bad Fourier scale and envelope density", () => {
  rejects(
    () =>
      new Mlp({
        inputDim: 2,
        outputs: 2,
        hidden: [4],
        fourier: { frequencies: 4, scale: 0 },
        rng: new Rng(0),
      }),
    /Invalid Fourier scale 0: it must be positive/,
  );
  const base = new Mlp({ inputDim: 2, outputs: 2, hidden: [4], rng: new Rng(0) });
  try {
    rejects(
      () => new EnvelopeModel(base, { kind: "gaussian", scales: [1], inverseSqrtGaussian: -2 }),
      /Invalid density standard deviation -2: it must be positive/,
    );
  } finally {
    base.dispose();
  }
});

Deno.test("Trainer rejects a non-positive clipNorm", () => {
  const operator = new SymmetricMatrixOperator([[2, 0], [0, 1]]);
  const model = new TabularModel({ size: 2, outputs: 1, rng: new Rng(0) });
  try {
    rejects(
      () => new Trainer({ operator, model }, { steps: 1, batchSize: "population", clipNorm: 0 }),
      /Invalid clipNorm 0: it must be positive/,
    );
  } finally {
    model.dispose();
  }
});

Deno.test("matrixHeatmap rejects a fractional index base", () => {
  rejects(
    () => matrixHeatmap([[1, 2], [3, 4]], { indexBase: 0.5 }),
    /Invalid index base 0.5: it must be an integer/,
  );
});

Deno.test("Small linear algebra rejects shapes that do not fit", () => {
  rejects(() => eigh([[1, 2, 3], [4, 5, 6]]), /Invalid symmetric matrix: shape 2×3 is not square/);
  rejects(
    () => new SymmetricMatrixOperator([[1, 2, 3], [4, 5, 6]]),
    /Invalid symmetric matrix: shape 2×3 is not square/,
  );
  rejects(
    () => generalizedEigh([[1, 0], [0, 1]], [[1]]),
    /Invalid generalised eigenproblem: shapes 2×2 and 1×1/,
  );
  rejects(() => matmul([[1, 2]], [[1, 2]]), /Mismatched shapes: 1×2 times 1×2/);
  rejects(() => subspaceDistance([[1], [0]], [[1, 0], [0, 1]]), /Mismatched blocks: 2×1 and 2×2/);
  rejects(() => weightedGram([[1], [2]], [[1]]), /Mismatched rows: 2 and 1/);
});

Deno.test("saveCheckpoint rejects a path that names no directory", async () => {
  const operator = new SymmetricMatrixOperator([[2, 0], [0, 1]]);
  const model = new TabularModel({ size: 2, outputs: 1, rng: new Rng(0) });
  const trainer = new Trainer({ operator, model }, { steps: 1, batchSize: "population" });
  try {
    for (const dir of [".", "out/.."]) {
      const error = await saveCheckpoint(dir, trainer).then(() => null, (e: Error) => e);
      assert.ok(error instanceof RangeError, String(error));
      assert.match(error.message, /^Invalid checkpoint directory ".*": it must name a directory$/);
    }
  } finally {
    trainer.dispose();
    model.dispose();
  }
});
