import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  autodiffJet,
  coulombPotential,
  EnvelopeModel,
  gaussHermiteQuadrature,
  gaussianDensity,
  gaussLegendre,
  harmonicOscillator,
  harmonicPotential,
  hydrogen2d,
  HYDROGEN2D_PRESETS,
  hydrogen2dProblem,
  hydrogen3d,
  HYDROGEN3D_PRESETS,
  hydrogen3dProblem,
  type Jet,
  Mlp,
  type Model,
  polarQuadrature,
  Rng,
  SchrodingerOperator,
  sphericalQuadrature,
  uniformBoxDensity,
} from "../mod.ts";
import { setup, thrown } from "./helpers.ts";

await setup();

function relMax(a: number[][], b: number[][]): number {
  let d = 0, s = 0;
  a.forEach((r, i) =>
    r.forEach((x, j) => {
      d = Math.max(d, Math.abs(x - b[i][j]));
      s = Math.max(s, Math.abs(b[i][j]));
    })
  );
  return d / s;
}

function tfAt(op: SchrodingerOperator, model: Model, seed = 5, n = 64): number[][] {
  const batch = op.sample(new Rng(seed), n);
  const out = tf.tidy(() => op.evaluate(model, batch).tf.arraySync());
  for (const t of [batch.x, ...Object.values(batch.data!)]) t.dispose();
  return out;
}

const hydrogenNet = (activation: string) =>
  new Mlp({
    inputDim: 2,
    outputs: 3,
    hidden: [24, 24],
    activation,
    disjoint: true,
    radial: true,
    fourier: { frequencies: 12, scale: 0.1 },
    rng: new Rng(1),
  });

const opWith = (
  kinetic: string,
  options: { fdEpsilon?: number; sampling?: "random" | "quasirandom" } = {},
) =>
  new SchrodingerOperator({
    dim: 2,
    potential: coulombPotential(),
    density: gaussianDensity({ dim: 2, std: 4 }),
    scale: 1,
    kinetic,
    fdEpsilon: options.fdEpsilon ?? 0.01,
    sampling: options.sampling,
  });

Deno.test("SchrodingerOperator: forward and autodiff kinetic terms agree to 1e-5", async (t) => {
  for (const activation of ["softplus", "sin"]) {
    await t.step(activation, () => {
      const net = hydrogenNet(activation);
      const forward = tfAt(opWith("forward"), net), auto = tfAt(opWith("autodiff"), net);
      assert.ok(relMax(auto, forward) < 1e-5, `${activation}: ${relMax(auto, forward)}`);
      net.dispose();
    });
  }
  await t.step("softplus, 2 networks of 2 modes", () => {
    const net = new Mlp({
      inputDim: 2,
      outputs: 4,
      hidden: [24, 24],
      disjoint: true,
      modesPerNetwork: 2,
      radial: true,
      rng: new Rng(4),
    });
    const forward = tfAt(opWith("forward"), net), auto = tfAt(opWith("autodiff"), net);
    assert.ok(relMax(auto, forward) < 1e-5, `grouped: ${relMax(auto, forward)}`);
    net.dispose();
  });
});

Deno.test("SchrodingerOperator: fd agrees with forward within O(ε²) and round-off", async (t) => {
  // SiLU has no autodiff oracle (tfjs's nested sigmoid gradient is wrong): fd checks its jets.
  for (const activation of ["softplus", "silu"]) {
    await t.step(activation, () => {
      const net = hydrogenNet(activation);
      const forward = tfAt(opWith("forward"), net);
      const errors = [0.3, 0.1].map((eps) =>
        relMax(tfAt(opWith("fd", { fdEpsilon: eps }), net), forward)
      );
      // Truncation O(ε²) dominates at these steps: a 3× smaller ε gives a ~9× smaller error
      // (SiLU's larger fourth derivative makes its fd error ~2× softplus's).
      const bound = activation === "silu" ? 1.5e-2 : 5e-3;
      assert.ok(errors[1] < bound, `fd(0.1) error ${errors[1]}`);
      assert.ok(errors[0] / errors[1] > 4, `fd errors ${errors} do not fall like ε²`);
      net.dispose();
    });
  }
});

Deno.test("autodiffJet refuses tanh and silu, whose nested gradients tfjs computes wrongly", () => {
  for (const activation of ["tanh", "silu"]) {
    const net = hydrogenNet(activation);
    const x = tf.zeros([2, 2]) as tf.Tensor2D;
    assert.match(
      thrown(() => autodiffJet(net, x)).message,
      /autodiff kinetic term would be wrong for model disjoint-mlp.*use kinetic forward or fd/,
    );
    net.dispose();
    x.dispose();
  }
});

/**
 * Fixed functions with exact jets (for checking the operator on analytic eigenfunctions): each
 * output is given by its value, gradient and Laplacian as tensor functions of x.
 */
class FixedModel implements Model {
  readonly kind = "fixed";
  readonly variables = [];
  readonly variableNames = [];
  readonly outputDim: number;
  constructor(
    readonly inputDim: number,
    readonly parts: ((x: tf.Tensor2D) => { v: tf.Tensor; g: tf.Tensor[]; l: tf.Tensor })[],
  ) {
    this.outputDim = parts.length;
  }
  jet(x: tf.Tensor2D): Jet {
    return tf.tidy(() => {
      const outs = this.parts.map((p) => p(x));
      return {
        value: tf.concat(outs.map((o) => o.v), 1) as tf.Tensor2D,
        grad: tf.stack(
          Array.from({ length: this.inputDim }, (_, k) => tf.concat(outs.map((o) => o.g[k]), 1)),
        ) as tf.Tensor3D,
        lap: tf.concat(outs.map((o) => o.l), 1) as tf.Tensor2D,
      };
    });
  }
  apply(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => this.jet(x as tf.Tensor2D).value);
  }
  predict(): number[][] {
    return [];
  }
  dispose() {}
}

const col = (x: tf.Tensor2D, k: number) => tf.slice(x, [0, k], [-1, 1]);
const ones = (x: tf.Tensor2D) => tf.ones([x.shape[0], 1]);
const zeros = (x: tf.Tensor2D) => tf.zeros([x.shape[0], 1]);

Deno.test("SchrodingerOperator maps 2-D oscillator eigenfunctions to λψ", async (t) => {
  // ψ = P(x) e^{−r²/2}: Hermite products H_a(x)H_b(y) for (a, b) = (0,0), (1,0), (0,1), (1,1), (2,0).
  const poly = new FixedModel(2, [
    (x) => ({ v: ones(x), g: [zeros(x), zeros(x)], l: zeros(x) }),
    (x) => ({ v: tf.mul(2, col(x, 0)), g: [tf.fill([x.shape[0], 1], 2), zeros(x)], l: zeros(x) }),
    (x) => ({ v: tf.mul(2, col(x, 1)), g: [zeros(x), tf.fill([x.shape[0], 1], 2)], l: zeros(x) }),
    (x) => ({
      v: tf.mul(4, tf.mul(col(x, 0), col(x, 1))),
      g: [tf.mul(4, col(x, 1)), tf.mul(4, col(x, 0))],
      l: zeros(x),
    }),
    (x) => ({
      v: tf.sub(tf.mul(4, tf.square(col(x, 0))), 2),
      g: [tf.mul(8, col(x, 0)), zeros(x)],
      l: tf.fill([x.shape[0], 1], 8),
    }),
  ]);
  const energies = [2, 4, 4, 6, 6];
  const std = 2;
  const model = new EnvelopeModel(poly, {
    kind: "gaussian",
    scales: [1],
    trainable: false,
    inverseSqrtGaussian: std,
  });
  for (const kinetic of ["forward", "fd"]) {
    await t.step(kinetic, () => {
      const op = new SchrodingerOperator({
        dim: 2,
        potential: harmonicPotential([1, 1]),
        density: gaussianDensity({ dim: 2, std }),
        scale: 1,
        shift: 10,
        kinetic,
        fdEpsilon: 0.01,
      });
      const batch = op.sample(new Rng(3), 256);
      const [f, tfx] = tf.tidy(() => {
        const e = op.evaluate(model, batch);
        return [e.f.arraySync(), e.tf.arraySync()];
      });
      for (const tt of [batch.x, ...Object.values(batch.data!)]) tt.dispose();
      const expected = f.map((row) => row.map((v, l) => (10 - energies[l]) * v));
      const err = relMax(tfx, expected);
      assert.ok(
        err < (kinetic === "forward" ? 1e-4 : 2e-2),
        `${kinetic}: relative residual ${err}`,
      );
    });
  }
});

Deno.test("SchrodingerOperator maps 2-D hydrogen eigenfunctions (n ≤ 1) to λψ", () => {
  // ψ_{0,0} ∝ e^{−r}; ψ_{1,0} ∝ (1 − 2r/3) e^{−r/3}; ψ_{1,±1} ∝ (x, y) e^{−r/3}.
  const r = (x: tf.Tensor2D) => tf.sqrt(tf.sum(tf.square(x), 1, true));
  const radialLinear = new FixedModel(2, [
    (x) => ({
      v: tf.sub(1, tf.mul(2 / 3, r(x))),
      g: [0, 1].map((k) => tf.mul(-2 / 3, tf.div(col(x, k), r(x)))),
      l: tf.mul(-2 / 3, tf.div(1, r(x))),
    }),
    (x) => ({ v: col(x, 0), g: [ones(x), zeros(x)], l: zeros(x) }),
    (x) => ({ v: col(x, 1), g: [zeros(x), ones(x)], l: zeros(x) }),
  ]);
  const ground = new FixedModel(2, [(x) => ({ v: ones(x), g: [zeros(x), zeros(x)], l: zeros(x) })]);
  const std = 6;
  const cases: [Model, number[]][] = [
    [
      new EnvelopeModel(ground, {
        kind: "exponential",
        scales: [1],
        trainable: false,
        inverseSqrtGaussian: std,
      }),
      [-1],
    ],
    [
      new EnvelopeModel(radialLinear, {
        kind: "exponential",
        scales: [3],
        trainable: false,
        inverseSqrtGaussian: std,
      }),
      [-1 / 9, -1 / 9, -1 / 9],
    ],
  ];
  for (const [model, energies] of cases) {
    const op = new SchrodingerOperator({
      dim: 2,
      potential: coulombPotential(),
      density: gaussianDensity({ dim: 2, std }),
      scale: 1,
    });
    const batch = op.sample(new Rng(4), 256);
    const [f, tfx] = tf.tidy(() => {
      const e = op.evaluate(model, batch);
      return [e.f.arraySync(), e.tf.arraySync()];
    });
    for (const tt of [batch.x, ...Object.values(batch.data!)]) tt.dispose();
    const expected = f.map((row) => row.map((v, l) => -energies[l] * v));
    // The Coulomb term is large near the nucleus: compare against the largest |V f|.
    const err = relMax(tfx, expected);
    assert.ok(err < 1e-4, `energies ${energies}: relative residual ${err}`);
  }
});

Deno.test("EnvelopeModel jets match autodiff of apply on a sin network", () => {
  const base = new Mlp({
    inputDim: 2,
    outputs: 2,
    hidden: [8],
    activation: "sin",
    rng: new Rng(2),
  });
  const model = new EnvelopeModel(base, {
    kind: "gaussian",
    scales: [1.5, 2],
    inverseSqrtGaussian: 3,
  });
  const x = tf.tensor2d([[0.4, -0.3], [1.5, 0.7], [-0.2, 2.1]]);
  const jet = model.jet(x);
  const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.slice(model.apply(xx), [0, 1], [-1, 1])))(x);
  const jg = (jet.grad.arraySync() as number[][][]).map((gk) => gk.map((row) => row[1]));
  (g.arraySync() as number[][]).forEach((row, b) =>
    row.forEach((v, k) => assert.ok(Math.abs(v - jg[k][b]) < 1e-4))
  );
  // Laplacian by central differences of the value in float32 at a coarse step.
  const eps = 1e-2, pts = x.arraySync();
  const f0 = model.predict(pts);
  pts.forEach((p, b) => {
    let lap = 0;
    for (let k = 0; k < 2; k++) {
      const a = p.slice(), c = p.slice();
      a[k] += eps;
      c[k] -= eps;
      lap += (model.predict([a])[0][1] + model.predict([c])[0][1] - 2 * f0[b][1]) / (eps * eps);
    }
    const exact = (jet.lap.arraySync() as number[][])[b][1];
    assert.ok(Math.abs(lap - exact) < 2e-2 * Math.max(1, Math.abs(exact)), `${lap} vs ${exact}`);
  });
  model.dispose();
});

Deno.test("Densities give √p log-derivatives that match finite differences", () => {
  const p = gaussianDensity({ dim: 2, std: 3 });
  const x = new Float64Array([0.7, -1.2]);
  const { g, q } = p.sqrtLogDerivatives(x, 1);
  const h = 1e-4;
  const sq = (a: number, b: number) => Math.sqrt(p.density(new Float64Array([a, b]), 1)[0]);
  const s0 = sq(0.7, -1.2);
  const gx = (sq(0.7 + h, -1.2) - sq(0.7 - h, -1.2)) / (2 * h) / s0;
  const lap =
    (sq(0.7 + h, -1.2) + sq(0.7 - h, -1.2) + sq(0.7, -1.2 + h) + sq(0.7, -1.2 - h) - 4 * s0) /
    (h * h) / s0;
  assert.ok(Math.abs(g[0] - gx) < 1e-6, `${g[0]} vs ${gx}`);
  assert.ok(Math.abs(q[0] - lap) < 1e-4, `${q[0]} vs ${lap}`);
  const box = uniformBoxDensity({ lower: [0, 0], upper: [2, 1] });
  assert.equal(box.density(new Float64Array([1, 0.5]), 1)[0], 0.5);
  assert.match(
    thrown(() => uniformBoxDensity({ lower: [0, 1], upper: [1, 1] })).message,
    /Invalid box on axis 1: lower 1 must be less than upper 1/,
  );
  assert.match(
    thrown(() => gaussianDensity({ dim: 2, std: -1 })).message,
    /Invalid standard deviation -1/,
  );
});

Deno.test("Quadratures integrate the analytic eigenfunctions to orthonormality", () => {
  const { nodes, weights } = gaussLegendre(5);
  const int = (k: number) => nodes.reduce((s, x, i) => s + weights[i] * x ** k, 0);
  assert.ok(Math.abs(int(8) - 2 / 9) < 1e-13);
  const check = (
    states: { fn: (x: number[]) => number }[],
    q: { points: number[][]; weights: number[] },
    tol: number,
  ) => {
    const vals = q.points.map((p) => states.map((s) => s.fn(p)));
    for (let a = 0; a < states.length; a++) {
      for (let b = 0; b < states.length; b++) {
        const g = vals.reduce((s, v, i) => s + q.weights[i] * v[a] * v[b], 0);
        assert.ok(Math.abs(g - (a === b ? 1 : 0)) < tol, `⟨${a},${b}⟩ = ${g}`);
      }
    }
  };
  check(hydrogen2d().states(16), polarQuadrature({ radius: 120 }), 1e-6);
  check(hydrogen3d().states(14), sphericalQuadrature({ radius: 120 }), 1e-6);
  check(
    harmonicOscillator({ omegas: [1, 1] }).states(28),
    gaussHermiteQuadrature({ omegas: [1, 1], nodes: 16 }),
    1e-9,
  );
  check(
    harmonicOscillator({ omegas: [1, 2.5] }).states(10),
    gaussHermiteQuadrature({ omegas: [1, 2.5] }),
    1e-9,
  );
});

Deno.test("SchrodingerOperator rejects bad settings", () => {
  const base = {
    dim: 2,
    potential: coulombPotential(),
    density: gaussianDensity({ dim: 2, std: 1 }),
  };
  assert.match(
    thrown(() => new SchrodingerOperator({ ...base, kinetic: "spectral" })).message,
    /Unknown kinetic method "spectral": allowed values are forward, fd, autodiff/,
  );
  assert.match(
    thrown(() => new SchrodingerOperator({ ...base, density: gaussianDensity({ dim: 3, std: 1 }) }))
      .message,
    /Mismatched density: it is 3-dimensional, the operator 2-dimensional/,
  );
  assert.match(
    thrown(() => new SchrodingerOperator({ ...base, representation: "density" })).message,
    /Unknown representation "density": allowed values are importance, psi/,
  );
  assert.match(
    thrown(() => new SchrodingerOperator({ ...base, fdEpsilon: 0 })).message,
    /Invalid finite-difference step 0/,
  );
  assert.match(
    thrown(() => new SchrodingerOperator({ ...base, scale: -1 })).message,
    /Invalid scale -1/,
  );
  assert.match(thrown(() => harmonicPotential([1, -2])).message, /Invalid frequency -2 on axis 1/);
});

Deno.test("BoxMaskModel: a short run learns the infinite well's lowest shells", async () => {
  const { BoxMaskModel, degenerateBlocks, gridQuadrature, infiniteWell, train } = await import(
    "../mod.ts"
  );
  const rng = new Rng(0);
  const lower = [0, 0], upper = [Math.PI, Math.PI];
  const base = new Mlp({
    inputDim: 2,
    outputs: 3,
    hidden: [32, 32],
    activation: "sin",
    disjoint: true,
    rng,
  });
  const model = new BoxMaskModel(base, { lower, upper });
  assert.ok(model.predict([[0, 1], [Math.PI, 2], [1, 0]]).flat().every((v) => Math.abs(v) < 1e-5));
  const op = new SchrodingerOperator({
    dim: 2,
    potential: () => 0,
    density: uniformBoxDensity({ lower, upper }),
    shift: 12,
  });
  await train({ operator: op, model }, {
    steps: 600,
    batchSize: 256,
    nesting: "sequential",
    lr: 3e-3,
    rng,
    ema: 0.99,
  });
  const states = infiniteWell({ lower, upper }).states(3);
  const h = Math.PI / 64;
  const q = gridQuadrature({ lower, upper, spacing: h });
  q.points = q.points.map((p) => p.map((v) => v + h / 2));
  const report = await op.report(model, {
    quadrature: q,
    values: states.map((s) => 12 - s.energy),
    functions: q.points.map((p) => states.map((s) => s.fn(p))),
    blocks: degenerateBlocks(states),
  });
  const energies = report.modes.map((m) => op.toEnergy(m.rayleigh));
  energies.forEach((e, l) =>
    assert.ok(Math.abs(e - states[l].energy) < 0.02 * states[l].energy, `mode ${l + 1}: E = ${e}`)
  );
  assert.ok(report.subspaceDistanceAvg! < 0.02, `subspace ${report.subspaceDistanceAvg}`);
  model.dispose();
});

// Trained networks carry angular detail far above their targets' (README, "Evaluation quadrature"):
// the evaluation rules must integrate high angular harmonics exactly, not just the targets.
Deno.test("hydrogen2dProblem and hydrogen3dProblem quadratures integrate high angular harmonics", () => {
  const radial = (q: { points: number[][]; weights: number[] }, f: (p: number[]) => number) =>
    q.points.reduce((s, p, i) => s + q.weights[i] * f(p), 0);
  const decay = (p: number[]) => Math.exp(-Math.hypot(...p) / 8);
  const q2 = hydrogen2dProblem().quadrature(HYDROGEN2D_PRESETS.default);
  const disc = radial(q2, decay);
  for (const m of [1, 24, 64, 127]) {
    const v = radial(q2, (p) => decay(p) * Math.cos(m * Math.atan2(p[1], p[0])) ** 2);
    assert.ok(Math.abs(v / disc - 0.5) < 1e-10, `cos²(${m}θ) averages ${v / disc}`);
  }
  // 48 angles, the previous rule, alias cos²(24θ) to 0: what the test exists to catch.
  const coarse = polarQuadrature({ radius: 120, angles: 48 });
  const aliased = radial(coarse, (p) => decay(p) * Math.cos(24 * Math.atan2(p[1], p[0])) ** 2);
  assert.ok(Math.abs(aliased / radial(coarse, decay)) < 1e-10);
  const q3 = hydrogen3dProblem().quadrature(HYDROGEN3D_PRESETS.default);
  const ball = radial(q3, decay);
  for (const k of [1, 10, 31]) {
    const v = radial(q3, (p) => decay(p) * (p[2] / Math.hypot(...p)) ** (2 * k));
    assert.ok(Math.abs(v / ball - 1 / (2 * k + 1)) < 1e-10, `cos^${2 * k}θ averages ${v / ball}`);
  }
  for (const m of [1, 16, 31]) {
    const v = radial(q3, (p) => decay(p) * Math.cos(m * Math.atan2(p[1], p[0])) ** 2);
    assert.ok(Math.abs(v / ball - 0.5) < 1e-10, `cos²(${m}φ) averages ${v / ball}`);
  }
});

Deno.test("SchrodingerOperator.samplePoints draws the points sample draws, unprepared", () => {
  for (const sampling of ["random", "quasirandom"] as const) {
    const op = opWith("fd", { sampling });
    const batch = op.sample(new Rng(5), 16);
    const points = op.samplePoints(new Rng(5), 16);
    assert.deepEqual(points, batch.x.dataSync(), sampling);
    // and the generator ends where sample leaves it: the next draws agree too
    const [a, b] = [new Rng(7), new Rng(7)];
    op.sample(a, 16).x.dispose();
    op.samplePoints(b, 16);
    assert.deepEqual(op.samplePoints(a, 8), op.samplePoints(b, 8), `${sampling}, next draws`);
    tf.dispose([batch.x, ...Object.values(batch.data!)]);
  }
});
