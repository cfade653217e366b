import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  BoxMaskModel,
  EnvelopeModel,
  gaussianDensity,
  harmonicPotential,
  HYDROGEN2D_PRESETS,
  hydrogen2dProblem,
  Mlp,
  type MlpOptions,
  type Model,
  type OperatorBatch,
  Rng,
  SchrodingerOperator,
  Trainer,
  trainerOptions,
  uniformBoxDensity,
} from "../mod.ts";
import { replicatedTrainer } from "../bench/common.ts";
import { setup, thrown } from "./helpers.ts";

await setup();

/** Largest |a − b| over all entries of all tensors, relative to the largest |b| of each. */
function worstRelative(a: tf.Tensor[], b: tf.Tensor[]): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  a.forEach((t, i) => {
    assert.deepEqual(t.shape, b[i].shape, `tensor ${i}`);
    const x = t.dataSync(), y = b[i].dataSync();
    let d = 0, s = 0;
    for (let j = 0; j < x.length; j++) {
      d = Math.max(d, Math.abs(x[j] - y[j]));
      s = Math.max(s, Math.abs(y[j]));
    }
    worst = Math.max(worst, d / Math.max(s, 1e-30));
  });
  return worst;
}

/** θ-gradients of Σ g ⊙ model(x[:rows]) by tfjs's tape. */
function tapeGradients(model: Model, x: tf.Tensor2D, g: tf.Tensor2D): tf.Tensor[] {
  const rows = g.shape[0];
  const { value, grads } = tf.variableGrads(
    () => tf.sum(tf.mul(model.apply(tf.slice(x, [0, 0], [rows, -1])), g)) as tf.Scalar,
    model.variables,
  );
  value.dispose();
  return model.variables.map((v) => grads[v.name]);
}

function points(rng: Rng, n: number, d: number, scale = 2): tf.Tensor2D {
  return tf.tensor2d(rng.normals(n * d, { std: scale }), [n, d]);
}

const NETWORKS: [string, Omit<MlpOptions, "rng">][] = [
  ["shared, Fourier and radius", {
    inputDim: 2,
    outputs: 3,
    hidden: [12, 8],
    fourier: { frequencies: 5, scale: 0.3 },
    radial: true,
  }],
  ["disjoint per mode, one mode per chunk (the fused reverse kernel)", {
    inputDim: 2,
    outputs: 4,
    hidden: [8, 8],
    disjoint: true,
    modeChunk: 1,
  }],
  ["disjoint, 2 modes per network, 2 networks per chunk", {
    inputDim: 3,
    outputs: 6,
    hidden: [8, 4, 8],
    disjoint: true,
    modesPerNetwork: 2,
    modeChunk: 2,
    radial: true,
  }],
  ["disjoint, 4 modes per network, one network per chunk (the fused reverse kernel)", {
    inputDim: 2,
    outputs: 8,
    hidden: [8, 12],
    disjoint: true,
    modesPerNetwork: 4,
    modeChunk: 1,
    fourier: { frequencies: 4, scale: 0.5 },
  }],
  ["disjoint, one chunk, width not a multiple of 4", {
    inputDim: 2,
    outputs: 4,
    hidden: [6, 6],
    disjoint: true,
    modesPerNetwork: 2,
    fourier: { frequencies: 3, scale: 0.5 },
  }],
  ["tanh", { inputDim: 2, outputs: 2, hidden: [8, 8], activation: "tanh", disjoint: true }],
  ["silu, one layer", { inputDim: 2, outputs: 3, hidden: [], activation: "silu" }],
];

Deno.test("Mlp.applyWithPullback: the value of apply and the tape's gradients", async (t) => {
  for (const [name, options] of NETWORKS) {
    await t.step(name, () => {
      const rng = new Rng(3);
      const model = new Mlp({ ...options, rng });
      const x = points(rng, 10, options.inputDim);
      for (const rows of [10, 4]) {
        const g = tf.tensor2d(rng.normals(rows * model.outputDim, { std: 1 }), [
          rows,
          model.outputDim,
        ]);
        const before = tf.memory().numTensors;
        const { value, pullback } = model.applyWithPullback(x, { rows });
        const own = pullback.gradients(g);
        pullback.dispose();
        pullback.dispose();
        const applied = model.apply(x);
        assert.ok(worstRelative([value], [applied]) < 1e-6);
        const tape = tapeGradients(model, x, g);
        const err = worstRelative(own, tape);
        assert.ok(err < 1e-5, `${rows} rows: ${err}`);
        tf.dispose([value, applied, ...own, ...tape]);
        assert.equal(tf.memory().numTensors, before, "tensors left behind");
        g.dispose();
      }
      assert.match(
        thrown(() => model.applyWithPullback(x, { rows: 11 })).message,
        /^Invalid reverse-pass rows 11: it must be an integer from 1 to 10$/,
      );
      x.dispose();
      model.dispose();
    });
  }
});

Deno.test("Mlp.jet with pullback: the jet of jet() and the tape's gradients of its value", async (t) => {
  for (const [name, options] of NETWORKS) {
    await t.step(name, () => {
      const rng = new Rng(4);
      const model = new Mlp({ ...options, rng });
      const x = points(rng, 7, options.inputDim);
      const g = tf.tensor2d(rng.normals(7 * model.outputDim, { std: 1 }), [7, model.outputDim]);
      const before = tf.memory().numTensors;
      const plain = model.jet(x);
      const traced = model.jet(x, { pullback: true });
      assert.ok(traced.pullback && !plain.pullback);
      for (const k of ["value", "grad", "lap"] as const) {
        assert.deepEqual(Array.from(traced[k].dataSync()), Array.from(plain[k].dataSync()), k);
      }
      const own = traced.pullback.gradients(g);
      traced.pullback.dispose();
      const tape = tapeGradients(model, x, g);
      const err = worstRelative(own, tape);
      assert.ok(err < 1e-5, `${err}`);
      tf.dispose([plain.value, plain.grad, plain.lap, traced.value, traced.grad, traced.lap]);
      tf.dispose([...own, ...tape]);
      assert.equal(tf.memory().numTensors, before, "tensors left behind");
      tf.dispose([x, g]);
      model.dispose();
    });
  }
});

Deno.test("EnvelopeModel rejects an unknown kind and scales that do not fit the modes", () => {
  const base = new Mlp({ inputDim: 2, outputs: 3, hidden: [4], disjoint: true, rng: new Rng(1) });
  try {
    assert.match(
      thrown(() => new EnvelopeModel(base, { kind: "lorentzian", scales: [1] })).message,
      /Unknown envelope "lorentzian": allowed values are exponential, gaussian/,
    );
    assert.match(
      thrown(() => new EnvelopeModel(base, { kind: "gaussian", scales: [1, 2] })).message,
      /Mismatched envelope scales: 2 given for 3 modes/,
    );
    assert.match(
      thrown(() => new EnvelopeModel(base, { kind: "gaussian", scales: [1, 0, 2] })).message,
      /Invalid envelope scale 0 for mode 2: it must be positive/,
    );
  } finally {
    base.dispose();
  }
});

Deno.test("EnvelopeModel: its reverse pass gives the tape's gradients, scales included", async (t) => {
  for (const trainable of [true, false]) {
    for (const kind of ["exponential", "gaussian"]) {
      await t.step(`${kind}, trainable ${trainable}`, () => {
        const rng = new Rng(5);
        const base = new Mlp({ inputDim: 2, outputs: 4, hidden: [8, 8], disjoint: true, rng });
        const model = new EnvelopeModel(base, {
          kind,
          scales: [1, 2, 3, 4],
          trainable,
          inverseSqrtGaussian: 3,
        });
        assert.equal(model.reversePass, true);
        const x = points(rng, 9, 2);
        const g = tf.tensor2d(rng.normals(9 * 4, { std: 1 }), [9, 4]);
        const before = tf.memory().numTensors;
        const jet = model.jet(x, { pullback: true });
        const applied = model.applyWithPullback(x);
        const tape = tapeGradients(model, x, g);
        assert.equal(tape.length, trainable ? 7 : 6);
        for (const pullback of [jet.pullback!, applied.pullback]) {
          const own = pullback.gradients(g);
          assert.ok(worstRelative(own, tape) < 1e-5);
          pullback.dispose();
          tf.dispose(own);
        }
        // The first rows only, as the finite differences ask.
        const part = model.applyWithPullback(x, { rows: 5 });
        const g5 = tf.slice(g, [0, 0], [5, -1]) as tf.Tensor2D;
        const own5 = part.pullback.gradients(g5);
        const tape5 = tapeGradients(model, x, g5);
        assert.ok(worstRelative(own5, tape5) < 1e-5);
        part.pullback.dispose();
        tf.dispose([jet.value, jet.grad, jet.lap, applied.value, part.value, g5]);
        tf.dispose([...tape, ...own5, ...tape5]);
        assert.equal(tf.memory().numTensors, before, "tensors left behind");
        tf.dispose([x, g]);
        model.dispose();
      });
    }
  }
});

Deno.test("SchrodingerOperator.evaluateWithPullback: evaluate's f and Tf, the tape's gradients", async (t) => {
  for (const kinetic of ["forward", "fd"]) {
    for (const representation of ["importance", "psi"]) {
      await t.step(`${kinetic}, ${representation}`, () => {
        const rng = new Rng(6);
        const op = new SchrodingerOperator({
          dim: 2,
          potential: harmonicPotential([1, 1]),
          density: gaussianDensity({ dim: 2, std: 1.5 }),
          kinetic,
          representation,
        });
        const model = new Mlp({
          inputDim: 2,
          outputs: 4,
          hidden: [8, 8],
          disjoint: true,
          modesPerNetwork: 2,
          fourier: { frequencies: 4, scale: 0.2 },
          rng,
        });
        const batch = op.sample(rng, 16);
        const g = tf.tensor2d(rng.normals(16 * 4, { std: 1 }), [16, 4]);
        const before = tf.memory().numTensors;
        const e = op.evaluateWithPullback(model, batch)!;
        const plain = op.evaluate(model, batch);
        assert.ok(worstRelative([e.f, e.tf], [plain.f, plain.tf]) < 1e-6);
        const own = e.pullback.gradients(g);
        e.pullback.dispose();
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.mul(op.trainedOutput(model, batch), g)) as tf.Scalar,
          model.variables,
        );
        const tape = model.variables.map((v) => grads[v.name]);
        const err = worstRelative(own, tape);
        assert.ok(err < 1e-5, `${err}`);
        tf.dispose([e.f, e.tf, plain.f, plain.tf, value, ...own, ...tape]);
        assert.equal(tf.memory().numTensors, before, "tensors left behind");
        g.dispose();
        tf.dispose([batch.x, ...Object.values(batch.data!)]);
        model.dispose();
      });
    }
  }
  await t.step("null for autodiff kinetic terms and for models without a reverse pass", () => {
    const rng = new Rng(7);
    const options = {
      dim: 2,
      potential: harmonicPotential([1, 1]),
      density: uniformBoxDensity({ lower: [-1, -1], upper: [1, 1] }),
    };
    const model = new Mlp({ inputDim: 2, outputs: 2, hidden: [8], rng });
    // A wrapper whose base has no reverse pass of its own.
    const opaque = Object.defineProperty(
      Object.create(new Mlp({ inputDim: 2, outputs: 2, hidden: [8], rng })),
      "reversePass",
      { value: false },
    ) as Mlp;
    const box = new BoxMaskModel(opaque, { lower: [-1, -1], upper: [1, 1] });
    const autodiff = new SchrodingerOperator({ ...options, kinetic: "autodiff" });
    const forward = new SchrodingerOperator({ ...options, kinetic: "forward" });
    const batch = forward.sample(rng, 8);
    assert.equal(autodiff.evaluateWithPullback(model, batch), null);
    assert.equal(box.reversePass, false);
    assert.equal(forward.evaluateWithPullback(box, batch), null);
    tf.dispose([batch.x, ...Object.values(batch.data!)]);
    model.dispose();
    box.dispose();
  });
});

Deno.test("Trainer: the model's reverse pass trains as the tape does, tensor count flat", async (t) => {
  const presets = {
    // Plain gradient steps: RMSprop's and Adam's first steps move every weight by ±lr whatever its
    // gradient, so they would turn rounding-level differences of tiny gradients into full steps.
    "default job (envelope, psi, forward)": {
      ...HYDROGEN2D_PRESETS.smoke,
      kinetic: "forward",
      optimizer: "sgd",
      lr: 1e-9,
      warmup: 0,
    },
    // fd's Laplacian divides rounding by ε² = 1e-4, so that comparison lives at the operator level.
    "paper-shaped job (forward, importance, Fourier features)": {
      ...HYDROGEN2D_PRESETS.paper,
      kinetic: "forward",
      optimizer: "sgd",
      lr: 1e-5,
      modes: 4,
      batch: 64,
      frequencies: 16,
      width: 16,
      workers: 1,
    },
  };
  for (const [name, config] of Object.entries(presets)) {
    await t.step(name, async () => {
      const params: number[][][] = [];
      const losses: number[][] = [];
      for (const modelReversePass of [true, false]) {
        const { trainer, close } = await replicatedTrainer(hydrogen2dProblem(), config, {
          workers: 1,
          seed: 2,
        });
        (trainer.options as { modelReversePass?: boolean }).modelReversePass = modelReversePass;
        const records = [];
        let tensors = 0;
        for (let i = 0; i < 6; i++) {
          records.push(await trainer.step());
          if (i === 1) tensors = tf.memory().numTensors;
        }
        assert.equal(tf.memory().numTensors, tensors, "tensor count grew across steps");
        losses.push(records.map((r) => r.loss));
        params.push(trainer.variables.map((v) => Array.from(v.dataSync())));
        close();
      }
      losses[0].forEach((l, i) => {
        assert.ok(
          Math.abs(l - losses[1][i]) <= 1e-4 * Math.abs(losses[1][i]),
          `step ${i + 1}: ${losses[0]} vs ${losses[1]}`,
        );
      });
      let worst = 0;
      params[0].forEach((p, i) =>
        p.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - params[1][i][j]))))
      );
      assert.ok(worst < 1e-4, `parameters differ by ${worst}`);
    });
  }
});

Deno.test("Trainer: modelReversePass false keeps tfjs's tape", () => {
  const rng = new Rng(8);
  const op = new SchrodingerOperator({
    dim: 2,
    potential: harmonicPotential([1, 1]),
    density: gaussianDensity({ dim: 2, std: 1.5 }),
  });
  const model = new Mlp({ inputDim: 2, outputs: 2, hidden: [8], rng });
  let pulled = 0;
  const original = op.evaluateWithPullback.bind(op);
  op.evaluateWithPullback = (m: Model, b: OperatorBatch) => {
    pulled++;
    return original(m, b);
  };
  for (const [flag, calls] of [[false, 0], [true, 1]] as const) {
    pulled = 0;
    const trainer = new Trainer({ operator: op, model }, {
      steps: 1,
      batchSize: 8,
      modelReversePass: flag,
      rng: new Rng(1),
    });
    const batch = op.sample(rng, 8);
    const r = trainer.computeGradients(batch);
    assert.equal(pulled, calls);
    assert.equal(r.grads.length, model.variables.length);
    tf.dispose([...r.grads, r.loss, r.norms, batch.x, ...Object.values(batch.data!)]);
    trainer.dispose();
  }
  model.dispose();
});

Deno.test("trainerOptions: --no-reverse-pass selects tfjs's tape, unset leaves the default", () => {
  const rng = new Rng(1);
  const smoke = HYDROGEN2D_PRESETS.smoke;
  assert.equal(trainerOptions({ ...smoke, reversePass: false }, rng).modelReversePass, false);
  assert.equal(trainerOptions({ ...smoke, reversePass: true }, rng).modelReversePass, true);
  assert.equal(trainerOptions(smoke, rng).modelReversePass, undefined);
});

Deno.test("Trainer: a dependence kernel's two networks train through their own reverse passes", () => {
  // Paired data y = x + noise: a minimal DependenceOperator.
  const pairs = {
    kind: "cdk" as const,
    sample(rng: Rng, n: number) {
      const x = rng.normals(2 * n, { std: 1 }), noise = rng.normals(2 * n, { std: 0.3 });
      const y = x.map((v, i) => v + noise[i]);
      return { x: tf.tensor2d(x, [n, 2]), y: tf.tensor2d(y, [n, 2]) };
    },
  };
  const rng = new Rng(11);
  const f = new Mlp({ inputDim: 2, outputs: 3, hidden: [8, 8], rng });
  const g = new Mlp({ inputDim: 2, outputs: 3, hidden: [8], disjoint: true, rng });
  const results = [true, false].map((modelReversePass) => {
    const trainer = new Trainer({ operator: pairs, f, g }, {
      steps: 1,
      batchSize: 16,
      modelReversePass,
      rng: new Rng(1),
    });
    const batch = pairs.sample(new Rng(3), 16);
    const r = trainer.computeGradients(batch);
    const out = { grads: r.grads, loss: r.loss.dataSync()[0] };
    tf.dispose([r.loss, r.norms, batch.x, batch.y]);
    trainer.dispose();
    return out;
  });
  assert.equal(results[0].grads.length, f.variables.length + g.variables.length);
  assert.ok(Math.abs(results[0].loss - results[1].loss) <= 1e-6 * Math.abs(results[1].loss));
  const err = worstRelative(results[0].grads, results[1].grads);
  assert.ok(err < 1e-5, `${err}`);
  tf.dispose([...results[0].grads, ...results[1].grads]);
  f.dispose();
  g.dispose();
});
