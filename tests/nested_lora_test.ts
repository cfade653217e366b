import assert from "node:assert/strict";
import {
  matrixWithSpectrum,
  nestedLoraCdkGradient,
  nestedLoraEvdGradient,
  NestedLoraLoss,
  nestedLoraSvdGradient,
  nestingMasks,
  Rng,
  SymmetricMatrixOperator,
} from "../mod.ts";
import { maskedLoss64, mm, relMaxDiff, setup, thrown } from "./helpers.ts";

const tf = await setup();

function randomMatrix(rng: Rng, r: number, c: number, std = 1): number[][] {
  return Array.from({ length: r }, () => Array.from({ length: c }, () => std * rng.normal()));
}

/** Central finite-difference gradient of a float64 function of a matrix. */
function fdGradient(x: number[][], loss: (x: number[][]) => number, h = 1e-6): number[][] {
  return x.map((row, i) =>
    row.map((_, j) => {
      const p = x.map((r) => r.slice()), m = x.map((r) => r.slice());
      p[i][j] += h;
      m[i][j] -= h;
      return (loss(p) - loss(m)) / (2 * h);
    })
  );
}

Deno.test("nestingMasks gives the joint, sequential and plain masks", () => {
  const joint = nestingMasks(3, { nesting: "joint", weights: [0.5, 0.3, 0.2] });
  joint.vector.forEach((x, i) => assert.ok(Math.abs(x - [1, 0.5, 0.2][i]) < 1e-12));
  assert.ok(Math.abs(joint.matrix[0][2] - 0.2) < 1e-12);
  assert.ok(Math.abs(joint.matrix[1][0] - 0.5) < 1e-12);
  const uniform = nestingMasks(4);
  assert.ok(Math.abs(uniform.vector[0] - 1) < 1e-12 && Math.abs(uniform.vector[3] - 0.25) < 1e-12);
  assert.deepEqual(nestingMasks(3, { nesting: "sequential" }).matrix, [[1, 1, 1], [0, 1, 1], [
    0,
    0,
    1,
  ]]);
  assert.deepEqual(nestingMasks(2, { nesting: "none" }), {
    vector: [1, 1],
    matrix: [[1, 1], [1, 1]],
  });
});

Deno.test("nestingMasks over-deflates earlier modes in sequential nesting", () => {
  assert.deepEqual(nestingMasks(3, { nesting: "sequential", deflation: 2 }).matrix, [
    [1, 2, 2],
    [0, 1, 2],
    [0, 0, 1],
  ]);
  assert.match(
    thrown(() => nestingMasks(2, { nesting: "sequential", deflation: 0.5 })).message,
    /Invalid deflation 0.5: it must be a number ≥ 1/,
  );
  assert.match(
    thrown(() => nestingMasks(2, { nesting: "joint", deflation: 2 })).message,
    /Invalid deflation 2 with joint nesting: only sequential nesting has one/,
  );
});

Deno.test("nestedLoraEvdGradient: over-deflation repels a later mode from a learned one", () => {
  // T = diag(3, 2, 1) on 3 points (uniform measure): the learned mode is f₁ = √(3·3)·e₁; mode 2
  // starts as ε·e₁ + s·e₂. Its output gradient's e₁ entry is −4ε + 4δε + (4/9)ε(ε² + s²): no
  // restoring force at first order for δ = 1, 4(δ − 1)ε for δ > 1.
  const eps = 0.05, s = 0.01;
  const f = [[3, eps], [0, s], [0, 0]];
  const a = [3, 2, 1];
  const along = (deflation: number) =>
    tf.tidy(() => {
      const ft = tf.tensor2d(f);
      const tft = tf.tensor2d(f.map((row, i) => row.map((v) => a[i] * v)));
      const masks = nestingMasks(2, { nesting: "sequential", deflation });
      const { grad } = nestedLoraEvdGradient(ft, tft, { masks, estimator: "full" });
      return (grad.arraySync() as number[][])[0][1];
    });
  const cubic = (4 / 9) * eps * (eps * eps + s * s);
  assert.ok(Math.abs(along(1) - cubic) < 1e-6, `δ = 1: ${along(1)} vs ${cubic}`);
  assert.ok(Math.abs(along(2) - (4 * eps + cubic)) < 1e-5, `δ = 2: ${along(2)}`);
  assert.ok(Math.abs(along(3) - (8 * eps + cubic)) < 1e-5, `δ = 3: ${along(3)}`);
});

Deno.test("nestingMasks rejects bad modes, nesting and weights", () => {
  assert.match(
    thrown(() => nestingMasks(0)).message,
    /Invalid number of modes 0: it must be a positive integer/,
  );
  assert.match(thrown(() => nestingMasks(-2)).message, /modes -2/);
  assert.match(thrown(() => nestingMasks(2.5)).message, /modes 2.5/);
  assert.match(
    thrown(() => nestingMasks(2, { nesting: "nested" })).message,
    /Unknown nesting "nested": allowed values are joint, sequential, none/,
  );
  assert.match(thrown(() => nestingMasks(2, { weights: [1, -1] })).message, /weight -1 at index 1/);
  assert.match(thrown(() => nestingMasks(2, { weights: [1] })).message, /1 weights for 2 modes/);
});

Deno.test("nestedLoraEvdGradient on the population equals a finite-difference gradient", async (t) => {
  const rng = new Rng(5);
  const n = 10, L = 4;
  const a = matrixWithSpectrum({ rows: n, values: [3, 2, 1.5, 1, 0.5, 0.2], rng });
  const f0 = randomMatrix(rng, n, L, 0.5);
  for (const nesting of ["joint", "none"]) {
    await t.step(nesting, () => {
      const masks = nestingMasks(L, {
        nesting,
        weights: nesting === "joint" ? [0.4, 0.3, 0.2, 0.1] : undefined,
      });
      // Tf = A f for a symmetric A; the population loss is a function of the table f alone.
      const loss = (f: number[][]) => maskedLoss64(f, mm(a, f), f, masks);
      const fd = fdGradient(f0, loss);
      const grad = tf.tidy(() => {
        const f = tf.tensor2d(f0);
        const r = nestedLoraEvdGradient(f, tf.matMul(tf.tensor2d(a), f), {
          masks,
          estimator: "full",
        });
        // Population batch: each index appears once, so the table's θ-gradient is G itself.
        return r.grad.arraySync();
      });
      assert.ok(relMaxDiff(grad, fd) < 1e-4, `relative difference ${relMaxDiff(grad, fd)}`);
    });
  }
});

Deno.test("nestedLoraEvdGradient with split halves is unbiased over random batches", () => {
  const rng = new Rng(11);
  const n = 6, L = 3, B = 8, draws = 20000;
  const a = matrixWithSpectrum({ rows: n, values: [2, 1.2, 0.7, 0.3], rng });
  const table = randomMatrix(rng, n, L, 0.7);
  const masks = nestingMasks(L, { nesting: "joint" });
  const population = tf.tidy(() => {
    const f = tf.tensor2d(table);
    return nestedLoraEvdGradient(f, tf.matMul(tf.tensor2d(a), f), { masks, estimator: "full" }).grad
      .arraySync();
  });
  const op = new SymmetricMatrixOperator(a);
  const tableT = tf.tensor2d(table);
  const tableTf = tf.matMul(tf.tensor2d(a), tableT);
  // Largest z-score over entries of (mean θ-gradient − population gradient), with the standard
  // error of the mean taken from the draws themselves.
  const maxZ = (estimator: "split" | "full") => {
    const sum = Array.from({ length: n }, () => new Array(L).fill(0));
    const sq = Array.from({ length: n }, () => new Array(L).fill(0));
    const sampler = new Rng(3);
    for (let k = 0; k < draws; k++) {
      const batch = op.sample(sampler, B);
      const idx = batch.x.arraySync() as number[];
      const g = tf.tidy(() => {
        const f = tf.gather(tableT, batch.x as never) as never;
        const tfb = tf.gather(tableTf, batch.x as never) as never;
        return nestedLoraEvdGradient(f, tfb, { masks, estimator }).grad.arraySync();
      });
      batch.x.dispose();
      // The table's θ-gradient: rows of G added to their indices.
      const theta = Array.from({ length: n }, () => new Array(L).fill(0));
      idx.forEach((i, b) => g[b].forEach((x, l) => (theta[i][l] += x)));
      theta.forEach((row, i) =>
        row.forEach((x, l) => {
          sum[i][l] += x;
          sq[i][l] += x * x;
        })
      );
    }
    let z = 0;
    sum.forEach((row, i) =>
      row.forEach((s, l) => {
        const mean = s / draws, variance = sq[i][l] / draws - mean * mean;
        z = Math.max(z, Math.abs(mean - population[i][l]) / Math.sqrt(variance / draws));
      })
    );
    return z;
  };
  // E[Σ_b onehot(i_b) G_b](i) = B·(1/n)·(terms with 1/B) = the population gradient at i.
  const zSplit = maxZ("split");
  const zFull = maxZ("full");
  tableT.dispose();
  tableTf.dispose();
  assert.ok(zSplit < 4.5, `split-half average deviates by ${zSplit} standard errors`);
  assert.ok(zFull > 6, `full-batch Gram should be visibly biased (z = ${zFull}, split ${zSplit})`);
});

Deno.test("NestedLoraLoss at the optimum equals −Σ m_l λ_l² with zero gradient", () => {
  const rng = new Rng(2);
  const n = 12, L = 4;
  const values = [4, 3, 2, 1, 0.5];
  const op = new SymmetricMatrixOperator(matrixWithSpectrum({ rows: n, values, rng }));
  const { functions } = op.spectrum();
  const fOpt = functions.map((row) => row.slice(0, L).map((x, l) => x * Math.sqrt(values[l])));
  for (const nesting of ["joint", "sequential"]) {
    const loss = new NestedLoraLoss({ modes: L, nesting, estimator: "full" });
    const [value, gmax] = tf.tidy(() => {
      const f = tf.tensor2d(fOpt);
      const r = loss.evd(f, tf.matMul(tf.tensor2d(op.matrix), f));
      return [r.loss.dataSync()[0], tf.max(tf.abs(r.grad)).dataSync()[0]];
    });
    const expected = loss.optimalValue(values.slice(0, L));
    assert.ok(
      Math.abs(value - expected) < 1e-4 * Math.abs(expected),
      `${nesting}: ${value} vs ${expected}`,
    );
    assert.ok(gmax < 1e-4, `${nesting}: gradient ${gmax} at the optimum`);
  }
});

Deno.test("nestedLoraSvdGradient equals a finite-difference gradient (f and g)", () => {
  const rng = new Rng(8);
  const m = 7, n = 5, L = 3;
  const a = randomMatrix(rng, m, n);
  const at = a[0].map((_, j) => a.map((r) => r[j]));
  const f0 = randomMatrix(rng, m, L, 0.5), g0 = randomMatrix(rng, n, L, 0.5);
  const masks = nestingMasks(L, { nesting: "joint" });
  // Tg = A g and T*f = (n/m) Aᵀ f make ⟨f, Tg⟩_x = ⟨T*f, g⟩_y under mean inner products.
  const lossF = (f: number[][]) => maskedLoss64(f, mm(a, g0), g0, masks);
  const lossG = (g: number[][]) => maskedLoss64(f0, mm(a, g), g, masks);
  const [gf, gg] = tf.tidy(() => {
    const f = tf.tensor2d(f0), g = tf.tensor2d(g0);
    const tg = tf.matMul(tf.tensor2d(a), g);
    const tsf = tf.mul(tf.matMul(tf.tensor2d(at), f), n / m);
    const r = nestedLoraSvdGradient({ f, tg, g, tsf } as never, { masks });
    return [r.gradF.arraySync(), r.gradG.arraySync()];
  });
  const fdF = fdGradient(f0, lossF), fdG = fdGradient(g0, lossG);
  assert.ok(relMaxDiff(gf, fdF) < 1e-4, `f: ${relMaxDiff(gf, fdF)}`);
  assert.ok(relMaxDiff(gg, fdG) < 1e-4, `g: ${relMaxDiff(gg, fdG)}`);
});

Deno.test("nestedLoraCdkGradient equals a finite-difference gradient of the paired loss", () => {
  const rng = new Rng(9);
  const B = 9, L = 3;
  const f0 = randomMatrix(rng, B, L, 0.6), g0 = randomMatrix(rng, B, L, 0.6);
  const masks = nestingMasks(L + 1, { nesting: "joint" });
  const ext = (x: number[][]) => x.map((r) => [1, ...r]);
  const lossF = (f: number[][]) => maskedLoss64(ext(f), ext(g0), ext(g0), masks);
  const lossG = (g: number[][]) => maskedLoss64(ext(g), ext(f0), ext(f0), masks);
  const [gf, gg] = tf.tidy(() => {
    const r = nestedLoraCdkGradient(tf.tensor2d(f0), tf.tensor2d(g0), { masks });
    return [r.gradF.arraySync(), r.gradG.arraySync()];
  });
  const fdF = fdGradient(f0, lossF), fdG = fdGradient(g0, lossG);
  assert.ok(relMaxDiff(gf, fdF) < 1e-4, `f: ${relMaxDiff(gf, fdF)}`);
  assert.ok(relMaxDiff(gg, fdG) < 1e-4, `g: ${relMaxDiff(gg, fdG)}`);
});

Deno.test("nestedLora gradients reject odd split batches and mismatched shapes", () => {
  const masks = nestingMasks(2);
  tf.tidy(() => {
    const f3 = tf.zeros([3, 2]) as never;
    assert.match(
      thrown(() => nestedLoraEvdGradient(f3, f3, { masks })).message,
      /Invalid batch size 3 for split halves: it must be even/,
    );
    const f4 = tf.zeros([4, 2]) as never, t5 = tf.zeros([5, 2]) as never;
    assert.match(
      thrown(() => nestedLoraEvdGradient(f4, t5, { masks })).message,
      /Mismatched shape for Tf: got \[5, 2\], expected \[4, 2\]/,
    );
    const f43 = tf.zeros([4, 3]) as never;
    assert.match(
      thrown(() => nestedLoraEvdGradient(f43, f43, { masks })).message,
      /they are for 2 modes, the outputs have 3/,
    );
    assert.match(
      thrown(() => nestedLoraEvdGradient(f4, f4, { masks, estimator: "half" as never })).message,
      /Unknown Gram estimator "half"/,
    );
  });
});
