import assert from "node:assert/strict";
import {
  buildModel,
  buildOperator,
  HYDROGEN2D_PRESETS,
  hydrogen2dProblem,
  matrixWithSpectrum,
  Mlp,
  type Model,
  nestingMasks,
  type OperatorBatch,
  Rng,
  scheduledShift,
  SymmetricMatrixOperator,
  TabularModel,
  Trainer,
  TrainingDivergedError,
} from "../mod.ts";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { setup, thrown } from "./helpers.ts";

await setup();

function smallOperator(): SymmetricMatrixOperator {
  return new SymmetricMatrixOperator(
    matrixWithSpectrum({ rows: 16, values: [2, 1.5, 1, 0.5, 0.2], rng: new Rng(1) }),
  );
}

/** A model of 16 indices through an MLP on fixed one-hot-like features, to exercise JᵀG. */
class IndexMlp implements Model {
  readonly kind = "index-mlp";
  readonly inputDim = 1;
  readonly outputDim: number;
  readonly mlp: Mlp;
  readonly variables: tf.Variable[];
  readonly variableNames: string[];
  constructor(outputs: number, disjoint: boolean) {
    this.outputDim = outputs;
    this.mlp = new Mlp({
      inputDim: 16,
      outputs,
      hidden: [12, 10],
      activation: "tanh",
      disjoint,
      rng: new Rng(4),
    });
    this.variables = this.mlp.variables;
    this.variableNames = this.mlp.variableNames;
  }
  apply(x: tf.Tensor): tf.Tensor2D {
    return this.mlp.apply(tf.cast(tf.oneHot(x as tf.Tensor1D, 16), "float32"));
  }
  predict(): number[][] {
    return [];
  }
  dispose() {
    this.mlp.dispose();
  }
}

Deno.test("Trainer.computeGradients injects JᵀG equal to autodiff of the population loss", async (t) => {
  const op = smallOperator();
  for (const disjoint of [false, true]) {
    await t.step(disjoint ? "disjoint MLPs" : "shared MLP", () => {
      const model = new IndexMlp(3, disjoint);
      const weights = [0.5, 0.3, 0.2];
      const trainer = new Trainer({ operator: op, model }, {
        steps: 1,
        batchSize: "population",
        nesting: "joint",
        weights,
      });
      const batch = op.populationBatch();
      const injected = trainer.computeGradients(batch);
      const masks = nestingMasks(3, { nesting: "joint", weights });
      // Reference: differentiate the population loss through Tf as well (valid for symmetric A).
      const { grads } = tf.variableGrads(() => {
        const f = model.apply(batch.x);
        const tf_ = tf.matMul(tf.tensor2d(op.matrix), f);
        const n = 16;
        const lam = tf.div(tf.matMul(tf.transpose(f), f), n);
        const p = tf.div(tf.sum(tf.mul(f, tf_), 0), n);
        return tf.add(
          tf.mul(-2, tf.sum(tf.mul(tf.tensor1d(masks.vector), p))),
          tf.sum(tf.mul(tf.tensor2d(masks.matrix), tf.square(lam))),
        ) as tf.Scalar;
      }, model.variables);
      model.variables.forEach((v, i) => {
        const a = injected.grads[i].dataSync(), b = grads[v.name].dataSync();
        let diff = 0, scale = 0;
        a.forEach((x, k) => {
          diff = Math.max(diff, Math.abs(x - b[k]));
          scale = Math.max(scale, Math.abs(b[k]));
        });
        assert.ok(diff <= 1e-4 * scale, `${model.variableNames[i]}: ${diff} vs scale ${scale}`);
      });
      tf.dispose([injected.grads, injected.loss, injected.norms, Object.values(grads), batch.x]);
      trainer.dispose();
      model.dispose();
    });
  }
});

Deno.test("Trainer keeps tf.memory().numTensors flat over 100 steps and 10 blocks", async () => {
  const op = smallOperator();
  const model = new Mlp({
    inputDim: 1,
    outputs: 3,
    hidden: [16, 16],
    disjoint: true,
    fourier: { frequencies: 8, scale: 0.5 },
    rng: new Rng(0),
  });
  const wrapped: Model = {
    ...model,
    kind: "mlp-on-index",
    inputDim: 1,
    outputDim: 3,
    variables: model.variables,
    variableNames: model.variableNames,
    apply: (x) => tf.tidy(() => model.apply(tf.reshape(tf.cast(x, "float32"), [-1, 1]))),
    predict: () => [],
    dispose: () => model.dispose(),
  };
  const trainer = new Trainer({ operator: op, model: wrapped }, {
    steps: 160,
    batchSize: 32,
    nesting: "sequential",
    optimizer: "rmsprop",
    ema: 0.99,
    clipNorm: 10,
  });
  for (let i = 0; i < 10; i++) await trainer.step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 100; i++) await trainer.step();
  assert.equal(tf.memory().numTensors, before);
  // Blocks of steps (the GPU path, with the device-side guard and clipping) free theirs too.
  for (let i = 0; i < 10; i++) await trainer.steps(5);
  assert.equal(tf.memory().numTensors, before);
  trainer.dispose();
  model.dispose();
});

Deno.test("Trainer with the same seed reproduces the same losses bit for bit", async () => {
  const op = smallOperator();
  const run = async () => {
    const rng = new Rng(42);
    const model = new TabularModel({ size: 16, outputs: 3, rng });
    const trainer = new Trainer({ operator: op, model }, {
      steps: 30,
      batchSize: 8,
      rng,
      optimizer: "adam",
    });
    const losses: number[] = [];
    for (let i = 0; i < 30; i++) losses.push((await trainer.step()).loss);
    trainer.dispose();
    model.dispose();
    return losses;
  };
  const a = await run(), b = await run();
  assert.deepEqual(a, b);
  const c = await (async () => {
    const model = new TabularModel({ size: 16, outputs: 3, rng: new Rng(43) });
    const trainer = new Trainer({ operator: op, model }, { steps: 3, batchSize: 8, seed: 43 });
    const l = (await trainer.step()).loss;
    trainer.dispose();
    model.dispose();
    return l;
  })();
  assert.notEqual(a[0], c);
});

Deno.test("Trainer stops on a NaN loss and keeps the last good parameters", async () => {
  const op = smallOperator();
  const model = new TabularModel({ size: 16, outputs: 2, rng: new Rng(0) });
  let poison = false;
  const poisoned = {
    kind: "evd" as const,
    sample: (rng: Rng, b: number): OperatorBatch => op.sample(rng, b),
    evaluate: (m: Model, batch: OperatorBatch) => {
      const e = op.evaluate(m, batch);
      if (!poison) return e;
      const bad = tf.mul(e.tf, NaN) as tf.Tensor2D;
      e.tf.dispose();
      return { f: e.f, tf: bad };
    },
  };
  const trainer = new Trainer({ operator: poisoned, model }, { steps: 10, batchSize: 8 });
  await trainer.step();
  await trainer.step();
  const good = model.variables[0].arraySync();
  poison = true;
  let error: unknown;
  try {
    await trainer.step();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof TrainingDivergedError);
  assert.equal(error.step, 3);
  assert.match(
    error.message,
    /Training diverged at step 3: the loss is not finite; parameters from step 2 are kept/,
  );
  assert.deepEqual(model.variables[0].arraySync(), good);
  trainer.dispose();
  model.dispose();
});

for (const optimizer of ["rmsprop", "adam", "sgd"]) {
  Deno.test(`Trainer.steps gives the records and parameters of single steps (${optimizer})`, async () => {
    const op = smallOperator();
    const run = async (block: boolean, clipNorm?: number) => {
      const model = new IndexMlp(3, true);
      const trainer = new Trainer({ operator: op, model }, {
        steps: 20,
        batchSize: 8,
        seed: 5,
        optimizer,
        ema: 0.9,
        clipNorm,
      });
      const records = [];
      if (block) records.push(...await trainer.steps(4), ...await trainer.steps(3));
      else for (let i = 0; i < 7; i++) records.push(await trainer.step());
      const params = model.variables.map((v) => Array.from(v.dataSync()));
      const ema = trainer.ema!.shadow.map((v) => Array.from(v.dataSync()));
      trainer.dispose();
      model.dispose();
      return { records, params, ema, steps: trainer.stepCount };
    };
    const one = await run(false), block = await run(true);
    assert.equal(block.steps, 7);
    assert.deepEqual(block.records.map((r) => r.step), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(
      block.records.map((r) => [r.loss, r.gradNorm, r.lr, r.norms]),
      one.records.map((r) => [r.loss, r.gradNorm, r.lr, r.norms]),
    );
    assert.deepEqual(block.params, one.params);
    assert.deepEqual(block.ema, one.ema);
    // Clipping on the device: the same updates to float32 rounding of the scale.
    const c1 = await run(false, 0.05), c2 = await run(true, 0.05);
    assert.ok(c1.records.some((r) => r.gradNorm > 0.05), "the clip must act in this test");
    c2.params.flat().forEach((v, i) => assert.ok(Math.abs(v - c1.params.flat()[i]) < 1e-5));
  });
}

Deno.test("Trainer.steps stops at a NaN step with the parameters before it", async () => {
  const op = smallOperator();
  const model = new TabularModel({ size: 16, outputs: 2, rng: new Rng(0) });
  let calls = 0;
  const poisoned = {
    kind: "evd" as const,
    sample: (rng: Rng, b: number): OperatorBatch => op.sample(rng, b),
    evaluate: (m: Model, batch: OperatorBatch) => {
      const e = op.evaluate(m, batch);
      if (++calls < 4) return e;
      const bad = tf.mul(e.tf, NaN) as tf.Tensor2D;
      e.tf.dispose();
      return { f: e.f, tf: bad };
    },
  };
  const trainer = new Trainer({ operator: poisoned, model }, { steps: 10, batchSize: 8 });
  await trainer.steps(2);
  await trainer.step();
  const good = model.variables[0].arraySync();
  const state = trainer.optimizer.stateTensors().map((v) => v.arraySync());
  const error = await trainer.steps(3).catch((e) => e);
  assert.ok(error instanceof TrainingDivergedError);
  assert.equal(error.step, 4);
  assert.equal(trainer.stepCount, 3);
  assert.equal(trainer.history.length, 3);
  assert.deepEqual(model.variables[0].arraySync(), good);
  assert.deepEqual(trainer.optimizer.stateTensors().map((v) => v.arraySync()), state);
  await assert.rejects(trainer.steps(0), /Invalid number of steps per block 0/);
  trainer.dispose();
  model.dispose();
});

Deno.test("Trainer writes a CSV log and reports progress", async () => {
  const op = smallOperator();
  const model = new TabularModel({ size: 16, outputs: 2, rng: new Rng(0) });
  const path = await Deno.makeTempFile({ suffix: ".csv" });
  const trainer = new Trainer({ operator: op, model }, { steps: 5, batchSize: 8, csvPath: path });
  await trainer.run();
  const lines = (await Deno.readTextFile(path)).trim().split("\n");
  assert.equal(lines[0], "step,loss,lr,grad_norm,seconds,norm_1,norm_2");
  assert.equal(lines.length, 6);
  const last = lines[5].split(",").map(Number);
  assert.equal(last[0], 5);
  assert.ok(last.every(Number.isFinite));
  trainer.dispose();
  model.dispose();
  await Deno.remove(path);
});

Deno.test("Trainer rejects bad settings with clear messages", () => {
  const op = smallOperator();
  const model = new TabularModel({ size: 16, outputs: 2, rng: new Rng(0) });
  const make = (o: Record<string, unknown>) => () =>
    new Trainer({ operator: op, model }, { steps: 10, batchSize: 8, ...o } as never);
  assert.match(
    thrown(make({ batchSize: 7 })).message,
    /Invalid batch size 7: split-half Gram estimates need an even batch size/,
  );
  assert.match(
    thrown(make({ batchSize: 0 })).message,
    /Invalid batch size 0: it must be a positive integer/,
  );
  assert.match(thrown(make({ steps: -1 })).message, /Invalid number of steps -1/);
  assert.match(
    thrown(make({ optimizer: "lbfgs" })).message,
    /Unknown optimizer "lbfgs": allowed values are rmsprop, adam, sgd/,
  );
  assert.match(thrown(make({ nesting: "deep" })).message, /Unknown nesting "deep"/);
  assert.match(
    thrown(make({ schedule: "step" })).message,
    /Unknown schedule "step": allowed values are constant, cosine/,
  );
  assert.match(thrown(make({ lr: -1 })).message, /Invalid learning rate -1/);
  assert.match(thrown(make({ ema: 1.5 })).message, /Invalid EMA decay 1.5/);
  model.dispose();
});

Deno.test("scheduledShift holds, moves linearly, then holds", () => {
  const schedule = { from: 20, to: 2, start: 0.25, end: 0.75 };
  const at = (step: number) => scheduledShift(step, { ...schedule, totalSteps: 100 });
  assert.deepEqual([0, 25, 50, 75, 100].map(at), [20, 20, 11, 2, 2]);
  assert.ok(Math.abs(at(30) - (20 - 18 * 0.1)) < 1e-12);
  // A step change (start = end) switches at that fraction.
  assert.deepEqual(
    [49, 50, 51].map((s) =>
      scheduledShift(s, { ...schedule, start: 0.5, end: 0.5, totalSteps: 100 })
    ),
    [20, 20, 2],
  );
});

Deno.test("Trainer follows its shift schedule and evaluates at the current shift", async () => {
  const config = { ...HYDROGEN2D_PRESETS.smoke, steps: 4, batch: 32, ema: 0 };
  const problem = hydrogen2dProblem();
  const rng = new Rng(0);
  const model = buildModel(problem, config, { rng });
  const op = buildOperator(problem, config);
  const schedule = { from: 20, to: 4, start: 0.25, end: 0.75 };
  const trainer = new Trainer({ operator: op, model }, {
    steps: 4,
    batchSize: 32,
    nesting: "sequential",
    shiftSchedule: schedule,
    rng,
    onStep: (rec) => {
      // During step k (1-based) the operator used the shift of 0-based step k − 1.
      assert.equal(op.shift, scheduledShift(rec.step - 1, { ...schedule, totalSteps: 4 }));
    },
  });
  try {
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      await trainer.step();
      seen.push(op.shift);
    }
    assert.deepEqual(seen, [20, 20, 12, 4]);
    op.setShift(99);
    assert.equal(await trainer.withEvaluationWeights(() => op.shift), 4);
  } finally {
    trainer.dispose();
    model.dispose();
  }
  // The schedule changes nothing but the shift: T's eigenvalues move, its eigenfunctions stay.
  assert.equal(op.toEigenvalue(-1) - op.toEnergy(0), 100 + 4 - 4 / 100);
});

Deno.test("Trainer rejects a bad shift schedule with clear messages", () => {
  const model = new TabularModel({ size: 16, outputs: 2, rng: new Rng(0) });
  const make = (op: SymmetricMatrixOperator | ReturnType<typeof buildOperator>, s: object) => () =>
    new Trainer({ operator: op, model }, {
      steps: 10,
      batchSize: 8,
      shiftSchedule: { from: 20, to: 2, start: 0.5, end: 1, ...s },
    });
  assert.match(
    thrown(make(smallOperator(), {})).message,
    /Invalid shift schedule: the evd operator has no adjustable shift/,
  );
  const op = buildOperator(hydrogen2dProblem(), HYDROGEN2D_PRESETS.smoke);
  assert.match(
    thrown(make(op, { start: 0.8, end: 0.2 })).message,
    /Invalid shift schedule fractions 0.8, 0.2: they must satisfy 0 ≤ start ≤ end ≤ 1/,
  );
  assert.match(
    thrown(make(op, { to: NaN })).message,
    /Invalid shift schedule to NaN: it must be finite/,
  );
  assert.match(thrown(() => op.setShift(Infinity)).message, /Invalid shift Infinity/);
  model.dispose();
});
