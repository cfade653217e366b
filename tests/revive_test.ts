import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  buildModel,
  buildOperator,
  deadModes,
  EnvelopeModel,
  type ExperimentConfig,
  HYDROGEN2D_PRESETS,
  hydrogen2dProblem,
  Mlp,
  type ReviveOptions,
  Rng,
  TabularModel,
  Trainer,
  trainerOptions,
} from "../mod.ts";
import { setup, thrown } from "./helpers.ts";

await setup();

const points = [[0.3, -0.2], [1.1, 0.4], [-0.7, 0.9]];

Deno.test("deadModes flags modes far below a later mode's norm", () => {
  const r = { ratio: 0.1 };
  assert.deepEqual(deadModes([9, 0.01, 5, 4], r), [1]);
  assert.deepEqual(deadModes([9, 5, 4, 0.01], r), [], "a small last mode is not an inversion");
  assert.deepEqual(deadModes([0.2, 0.3, 8, 0.5, 6], r), [0, 1, 3]);
  assert.deepEqual(deadModes([3, 2, 1], r), []);
});

Deno.test("deadModes with last also flags a last mode far below the previous one", () => {
  const r = { ratio: 0.2, last: true };
  assert.deepEqual(deadModes([22, 21, 21, 0.5], r), [3]);
  assert.deepEqual(deadModes([22, 21, 21, 5], r), [], "0.24 of the previous is alive at 0.2");
  assert.deepEqual(deadModes([22, 0.3, 21, 0.5], r), [1, 3]);
  assert.deepEqual(deadModes([0.5], r), [], "a lone mode has nothing to compare with");
});

Deno.test("Mlp.reinitializeOutput re-draws one disjoint network and leaves the others", () => {
  const net = new Mlp({
    inputDim: 2,
    outputs: 4,
    hidden: [8, 8],
    disjoint: true,
    outputScale: 0.5,
    rng: new Rng(3),
  });
  try {
    tf.tidy(() => net.variables.forEach((v) => v.assign(tf.add(v, 0.25)))); // move off the init
    const before = net.predict(points);
    const masks = net.reinitializeOutput(2, new Rng(4));
    const after = net.predict(points);
    before.forEach((row, i) =>
      row.forEach((v, l) => {
        if (l === 2) assert.notEqual(after[i][l], v);
        else assert.equal(after[i][l], v, `output ${l} changed`);
      })
    );
    assert.equal(masks.length, net.variables.length);
    // The masks cover exactly one network's parameters: 2·8 + 8 + 8·8 + 8 + 8·1 + 1.
    const covered = masks.reduce((s, m) => s + m.sum().dataSync()[0], 0);
    assert.equal(covered, 2 * 8 + 8 + 8 * 8 + 8 + 8 + 1);
    // Re-drawn biases are zero; weights have the He-normal scale, not the shifted values.
    masks.forEach((m, i) => {
      const v = net.variables[i].dataSync(), mk = m.dataSync();
      const picked = Array.from(v).filter((_, k) => mk[k] === 1);
      if (net.variableNames[i].endsWith("bias")) assert.ok(picked.every((x) => x === 0));
      else assert.ok(Math.abs(picked.reduce((a, b) => a + b, 0) / picked.length) < 0.2);
    });
    tf.dispose(masks);
    // The first and the last network (empty blocks on one side) re-draw alone too.
    for (const edge of [0, 3]) {
      const was = net.predict(points);
      tf.dispose(net.reinitializeOutput(edge, new Rng(5 + edge)));
      const now = net.predict(points);
      was.forEach((row, i) =>
        row.forEach((v, l) => assert.equal(now[i][l] === v, l !== edge, `${edge}: output ${l}`))
      );
    }
    assert.match(thrown(() => net.reinitializeOutput(4, new Rng(1))).message, /Invalid output 4/);
  } finally {
    net.dispose();
  }
  const shared = new Mlp({ inputDim: 2, outputs: 3, hidden: [4], rng: new Rng(1) });
  assert.match(
    thrown(() => shared.reinitializeOutput(0, new Rng(1))).message,
    /Cannot re-initialise output 0 of a shared MLP/,
  );
  shared.dispose();
});

Deno.test("Mlp.reinitializeOutput featuresFrom copies a network's hidden layers, not its last", () => {
  const net = new Mlp({ inputDim: 2, outputs: 4, hidden: [8, 8], disjoint: true, rng: new Rng(3) });
  try {
    tf.tidy(() => net.variables.forEach((v) => v.assign(tf.add(v, 0.25))));
    const before = net.predict(points);
    const lastBefore = Array.from(net.weights[2].dataSync());
    tf.dispose(net.reinitializeOutput(2, new Rng(4), { featuresFrom: 1 }));
    const after = net.predict(points);
    before.forEach((row, i) =>
      row.forEach((v, l) => assert.equal(after[i][l] === v, l !== 2, `output ${l}`))
    );
    // Layer 0 holds networks as column blocks of 8; layers 1 and 2 as groups [4, fanIn, h].
    const w0 = net.weights[0].arraySync() as number[][];
    w0.forEach((row) => assert.deepEqual(row.slice(16, 24), row.slice(8, 16)));
    const w1 = net.weights[1].arraySync() as number[][][];
    assert.deepEqual(w1[2], w1[1]);
    for (const b of [net.biases[0], net.biases[1]]) {
      const v = Array.from(b.dataSync());
      assert.deepEqual(v.slice(16, 24), v.slice(8, 16));
    }
    // The last layer is drawn afresh (He-normal), its bias zero.
    const last = Array.from(net.weights[2].dataSync());
    assert.notDeepEqual(last.slice(16, 24), lastBefore.slice(16, 24));
    assert.notDeepEqual(last.slice(16, 24), last.slice(8, 16));
    assert.equal(net.biases[2].dataSync()[2], 0);
    assert.match(
      thrown(() => net.reinitializeOutput(2, new Rng(1), { featuresFrom: 7 })).message,
      /Invalid output 7/,
    );
  } finally {
    net.dispose();
  }
});

Deno.test("EnvelopeModel.reinitializeOutput also resets that mode's envelope scale", () => {
  const base = new Mlp({ inputDim: 2, outputs: 3, hidden: [4], disjoint: true, rng: new Rng(2) });
  const model = new EnvelopeModel(base, { kind: "gaussian", scales: [1, 2, 3] });
  try {
    model.logScales.assign(tf.tensor2d([[0.5, 0.5, 0.5]]));
    const masks = model.reinitializeOutput(1, new Rng(5));
    assert.equal(masks.length, model.variables.length);
    const s = Array.from(model.logScales.dataSync());
    assert.deepEqual(s.map((x) => Number(x.toFixed(6))), [
      0.5,
      Number(Math.log(2).toFixed(6)),
      0.5,
    ]);
    tf.dispose(masks.filter((m) => m !== null) as tf.Tensor[]);
    // Taking another mode's features also takes its envelope scale.
    model.logScales.assign(tf.tensor2d([[0.1, 0.2, 0.3]]));
    tf.dispose(
      model.reinitializeOutput(2, new Rng(6), { featuresFrom: 0 }).filter((m) =>
        m !== null
      ) as tf.Tensor[],
    );
    assert.deepEqual(Array.from(model.logScales.dataSync()).map((x) => Number(x.toFixed(6))), [
      0.1,
      0.2,
      0.1,
    ]);
  } finally {
    model.dispose();
  }
});

/**
 * A smoke hydrogen trainer with `revive`, stepped 4 times, then output `dead` (0-based) killed by
 * zeroing its last layer, as a collapsed mode's output.
 */
async function trainerWithKilledMode(
  dead: number,
  revive: ReviveOptions,
  extra: Partial<ExperimentConfig> = {},
) {
  const config = {
    ...HYDROGEN2D_PRESETS.smoke,
    steps: 40,
    batch: 64,
    modesPerNetwork: 1,
    ...extra,
  };
  const problem = hydrogen2dProblem();
  const rng = new Rng(config.seed);
  const model = buildModel(problem, config, { rng });
  const trainer = new Trainer(
    { operator: buildOperator(problem, config), model },
    { ...trainerOptions(config, rng), revive },
  );
  for (let i = 0; i < 4; i++) await trainer.step();
  const named = (name: string) => model.variables[model.variableNames.indexOf(name)];
  const last = named("layer2.weight"), lastBias = named("layer2.bias");
  const keep = [1, 1, 1, 1].map((x, l) => l === dead ? 0 : x);
  tf.tidy(() => last.assign(tf.mul(last, tf.tensor(keep).reshape([4, 1, 1]))));
  tf.tidy(() => lastBias.assign(tf.mul(lastBias, tf.tensor(keep))));
  return { trainer, model, named, last };
}

Deno.test("Trainer revive from previous: a killed last mode takes the previous mode's features", async () => {
  const { trainer, model, named, last } = await trainerWithKilledMode(3, {
    every: 5,
    until: 1,
    ratio: 1e-3,
    last: true,
    from: "previous",
  });
  try {
    const record = await trainer.step();
    assert.deepEqual(record.revived, [3], "only a last-mode test can see mode 4");
    const hidden = named("layer1.weight").arraySync() as number[][][];
    assert.deepEqual(hidden[3], hidden[2]);
    const w = last.arraySync() as number[][][];
    assert.ok(w[3].some((row) => row[0] !== 0), "a fresh last layer");
    assert.notDeepEqual(w[3], w[2]);
  } finally {
    trainer.dispose();
    model.dispose();
  }
});

Deno.test("Trainer revive: a killed mode is re-drawn with fresh optimiser and EMA state", async () => {
  // Kill mode 2 (0-based 1).
  const { trainer, model, last } = await trainerWithKilledMode(
    1,
    { every: 5, until: 1, ratio: 1e-3 },
    { ema: 0.9 },
  );
  try {
    const record = await trainer.step();
    assert.ok(record.norms[1] < 1e-3 * Math.max(...record.norms.slice(2)), `${record.norms}`);
    assert.deepEqual(record.revived, [1]);
    const w = last.dataSync() as Float32Array, per = w.length / 4;
    assert.ok(w.slice(per, 2 * per).some((x) => x !== 0), "mode 2 re-drawn");
    const i = trainer.variables.indexOf(last);
    const slots = trainer.optimizer.stateTensors();
    const n = trainer.variables.length;
    for (const slot of [slots[i], slots[n + i]]) {
      const v = slot.dataSync();
      assert.ok(v.slice(per, 2 * per).every((x) => x === 0), "optimiser state reset");
      assert.ok(v.slice(0, per).some((x) => x !== 0), "other modes keep their state");
    }
    assert.deepEqual(trainer.ema!.shadow[i].dataSync().slice(per, 2 * per), w.slice(per, 2 * per));
    const next = await trainer.step();
    assert.equal(next.revived, undefined);
  } finally {
    trainer.dispose();
    model.dispose();
  }
  const table = new TabularModel({ size: 5, outputs: 2, rng: new Rng(1) });
  const op = buildOperator(hydrogen2dProblem(), HYDROGEN2D_PRESETS.smoke);
  assert.match(
    thrown(() =>
      new Trainer({ operator: op, model: table }, { steps: 5, batchSize: 4, revive: { every: 2 } })
    ).message,
    /Cannot revive modes of a tabular model/,
  );
  assert.match(
    thrown(() =>
      new Trainer({ operator: op, model: table }, { steps: 5, batchSize: 4, revive: { every: 0 } })
    ).message,
    /Invalid revive interval 0/,
  );
  const bad = (revive: Record<string, unknown>) =>
    thrown(() =>
      new Trainer({ operator: op, model: table }, {
        steps: 5,
        batchSize: 4,
        revive: { every: 2, ...revive } as never,
      })
    ).message;
  assert.match(bad({ ratio: 1 }), /Invalid revive ratio 1: it must be in \(0, 1\)/);
  assert.match(bad({ until: 0 }), /Invalid revive until 0: it must be in \(0, 1\]/);
  assert.match(bad({ until: 1.5 }), /Invalid revive until 1.5: it must be in \(0, 1\]/);
  assert.match(
    bad({ from: "best" }),
    /Invalid revive source "best": allowed values are init, previous/,
  );
  table.dispose();
});
