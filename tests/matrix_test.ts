import assert from "node:assert/strict";
import {
  EmbeddingMlp,
  MatrixOperator,
  matrixWithSpectrum,
  Rng,
  SymmetricMatrixOperator,
  TabularModel,
  train,
} from "../mod.ts";
import { setup, thrown } from "./helpers.ts";

await setup();

const SPECTRUM = Array.from({ length: 40 }, (_, i) => 2 * Math.pow(0.8, i));

function psd40(): SymmetricMatrixOperator {
  return new SymmetricMatrixOperator(
    matrixWithSpectrum({ rows: 40, values: SPECTRUM, rng: new Rng(3) }),
  );
}

Deno.test("SymmetricMatrixOperator: nested LoRA recovers the top 8 eigenpairs in order", async (t) => {
  const op = psd40();
  // Over-deflation (δ = 2) leaves the minimiser unchanged.
  for (
    const [nesting, deflation] of [["sequential", 1], ["joint", 1], ["sequential", 2]] as const
  ) {
    await t.step(`${nesting}, deflation ${deflation}`, async () => {
      const model = new TabularModel({ size: 40, outputs: 8, rng: new Rng(1) });
      await train({ operator: op, model }, {
        steps: 4000,
        batchSize: "population",
        nesting,
        deflation: nesting === "sequential" ? deflation : undefined,
        lr: 0.03,
      });
      const report = op.report(model);
      report.modes.forEach((m, l) => {
        assert.ok(Math.abs(m.target! - SPECTRUM[l]) < 1e-9, "exact spectrum");
        assert.ok(
          m.normRelError! <= 1e-3,
          `${nesting} mode ${l + 1}: eigenvalue error ${m.normRelError}`,
        );
        assert.ok(
          m.rayleighRelError! <= 1e-3,
          `${nesting} mode ${l + 1}: Rayleigh error ${m.rayleighRelError}`,
        );
        assert.ok(
          m.subspaceDistance! <= 1e-2,
          `${nesting} mode ${l + 1}: distance ${m.subspaceDistance}`,
        );
      });
      assert.ok(report.orthogonality < 1e-6, `orthogonality ${report.orthogonality}`);
      model.dispose();
    });
  }
  op.dispose();
});

Deno.test("SymmetricMatrixOperator: plain LoRA finds the subspace but not the vectors", async () => {
  const op = psd40();
  const model = new TabularModel({ size: 40, outputs: 8, rng: new Rng(1) });
  await train({ operator: op, model }, {
    steps: 4000,
    batchSize: "population",
    nesting: "none",
    lr: 0.03,
  });
  const report = op.report(model);
  assert.ok(report.subspaceDistanceAll! < 1e-4, `subspace distance ${report.subspaceDistanceAll}`);
  const worst = Math.max(...report.modes.map((m) => m.subspaceDistance!));
  assert.ok(worst > 0.1, `un-nested modes should be mixed, worst per-mode distance ${worst}`);
  model.dispose();
  op.dispose();
});

Deno.test("SymmetricMatrixOperator: minibatch split-half training converges too", async () => {
  const op = new SymmetricMatrixOperator(
    matrixWithSpectrum({ rows: 20, values: [3, 2, 1, 0.5, 0.25], rng: new Rng(4) }),
  );
  const model = new TabularModel({ size: 20, outputs: 3, rng: new Rng(2) });
  await train({ operator: op, model }, {
    steps: 3000,
    batchSize: 64,
    nesting: "sequential",
    lr: 0.01,
    ema: 0.99,
    seed: 5,
  });
  const report = op.report(model);
  assert.ok(report.meanNormRelError! < 0.03, `mean error ${report.meanNormRelError}`);
  report.modes.forEach((m) =>
    assert.ok(m.subspaceDistance! < 0.02, `distance ${m.subspaceDistance}`)
  );
  model.dispose();
});

Deno.test("MatrixOperator: nested LoRA recovers the top 6 singular triplets of a 30×20 matrix", async (t) => {
  const values = Array.from({ length: 20 }, (_, i) => 2 * Math.pow(0.75, i));
  const op = new MatrixOperator(
    matrixWithSpectrum({ rows: 30, cols: 20, values, rng: new Rng(6) }),
  );
  assert.ok(Math.abs(op.spectrum().values[5] - values[5]) < 1e-9);
  for (const nesting of ["sequential", "joint"]) {
    await t.step(nesting, async () => {
      const rng = new Rng(7);
      const f = new TabularModel({ size: 30, outputs: 6, rng });
      const g = new TabularModel({ size: 20, outputs: 6, rng });
      await train({ operator: op, f, g }, {
        steps: 4000,
        batchSize: "population",
        nesting,
        lr: 0.03,
      });
      const report = op.report(f, g);
      report.modes.forEach((m, l) => {
        assert.ok(m.normRelError! <= 1e-3, `mode ${l + 1}: singular value error ${m.normRelError}`);
        assert.ok(
          m.subspaceDistance! <= 1e-2,
          `mode ${l + 1}: left/right distance ${m.subspaceDistance}`,
        );
      });
      f.dispose();
      g.dispose();
    });
  }
});

Deno.test("EmbeddingMlp on index embeddings learns the top eigenvalues", async () => {
  const op = new SymmetricMatrixOperator(
    matrixWithSpectrum({ rows: 24, values: [3, 2, 1.2, 0.6, 0.3, 0.1], rng: new Rng(12) }),
  );
  const model = new EmbeddingMlp({ size: 24, outputs: 4, rng: new Rng(13) });
  await train({ operator: op, model }, {
    steps: 3000,
    batchSize: "population",
    nesting: "sequential",
    lr: 3e-3,
  });
  const report = op.report(model);
  assert.ok(report.meanNormRelError! < 1e-2, `mean eigenvalue error ${report.meanNormRelError}`);
  report.modes.forEach((m) =>
    assert.ok(m.subspaceDistance! < 1e-2, `distance ${m.subspaceDistance}`)
  );
  model.dispose();
});

Deno.test("Matrix operators reject malformed matrices", () => {
  assert.match(
    thrown(() => new SymmetricMatrixOperator([[1, 2], [3, 4]])).message,
    /entries \(1, 0\) and \(0, 1\) differ/,
  );
  assert.match(
    thrown(() => new SymmetricMatrixOperator([[1, 2, 3], [2, 1, 0]])).message,
    /shape 2×3 is not square/,
  );
  assert.match(
    thrown(() => new MatrixOperator([[1, 2], [3]])).message,
    /row 1 has 1 entries, expected 2/,
  );
  assert.match(thrown(() => new MatrixOperator([[1, NaN]])).message, /entry \(0, 1\) is NaN/);
  assert.match(
    thrown(() => matrixWithSpectrum({ rows: 2, cols: 3, values: [1, 2, 3], rng: new Rng(0) }))
      .message,
    /Too many values: 3 given, at most 2 fit/,
  );
});
