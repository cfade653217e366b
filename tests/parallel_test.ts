import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  buildModel,
  buildOperator,
  disposeBatch,
  HYDROGEN2D_PRESETS,
  hydrogen2dProblem,
  Rng,
  Trainer,
  trainerOptions,
  type TrainOptions,
  WorkerPool,
  workersUnavailable,
} from "../mod.ts";
import { GradientExchange, ShardResults } from "../lib/parallel.ts";
import { setup } from "./helpers.ts";

await setup();

function setupRun(batch = 64, clip = 0, extra: Partial<TrainOptions> = {}) {
  const config = {
    ...HYDROGEN2D_PRESETS.smoke,
    steps: 30,
    batch,
    ema: 0,
    modesPerNetwork: 1,
    clip,
  };
  const problem = hydrogen2dProblem();
  const rng = new Rng(config.seed);
  const model = buildModel(problem, config, { rng });
  const op = buildOperator(problem, config);
  const trainer = new Trainer({ operator: op, model }, {
    ...trainerOptions(config, rng),
    ...extra,
  });
  return { config, problem, model, op, trainer };
}

function flat(vars: tf.Tensor[]): Float32Array {
  return Float32Array.from(vars.flatMap((v) => Array.from(v.dataSync())));
}

Deno.test("WorkerPool: replicas stay bit-identical and the gradient is the shard average", async () => {
  const { config, problem, model, op, trainer } = setupRun();
  const pool = await WorkerPool.create(trainer, { workers: 2, spec: problem.spec!, config });
  try {
    // The pooled gradient equals the mean of the two shards' gradients computed here, also after
    // the main operator's shift changed (a shift schedule): the Worker follows it.
    for (const shift of [config.shift, 7]) {
      op.setShift(shift);
      const batch = op.sample(new Rng(9), 64);
      const x = batch.x.dataSync() as Float32Array;
      const pooled = await pool.gradients(trainer, batch);
      const shards = [0, 1].map((i) => {
        const b = op.batchFromArray(x.slice(i * 64, (i + 1) * 64), 32);
        const g = trainer.computeGradients(b);
        disposeBatch(b);
        return g;
      });
      const grads = pooled.tensors();
      grads.forEach((g, i) => {
        const a = g.dataSync(),
          s0 = shards[0].grads[i].dataSync(),
          s1 = shards[1].grads[i].dataSync();
        a.forEach((v, k) =>
          assert.ok(Math.abs(v - (s0[k] + s1[k]) / 2) <= 1e-6 * (1 + Math.abs(v)), `shift ${shift}`)
        );
      });
      // The monitors on the host: the shards' mean loss and norms, the average's global norm.
      const mean = (f: (s: typeof shards[0]) => Float32Array) =>
        Array.from(f(shards[0]), (v, l) => (v + f(shards[1])[l]) / 2);
      const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 * (1 + Math.abs(b));
      assert.ok(close(pooled.loss, mean((s) => s.loss.dataSync() as Float32Array)[0]));
      const norms = mean((s) => s.norms.dataSync() as Float32Array);
      assert.equal(pooled.norms.length, norms.length);
      pooled.norms.forEach((v, l) =>
        assert.ok(close(v, norms[l]), `norm ${l}: ${v} vs ${norms[l]}`)
      );
      const norm = Math.sqrt(grads.reduce((s, g) => s + tf.sum(tf.square(g)).dataSync()[0], 0));
      assert.ok(close(pooled.gradNorm, norm), `${pooled.gradNorm} vs ${norm}`);
      tf.dispose([grads, batch.x, Object.values(batch.data!)]);
      for (const s of shards) tf.dispose([s.grads, s.loss, s.norms]);
    }
    op.setShift(config.shift);
    // Train with the pool; the Worker's replica must match the main thread's weights exactly.
    trainer.useGradientSource(pool);
    const losses: number[] = [];
    for (let i = 0; i < 10; i++) losses.push((await trainer.step()).loss);
    assert.ok(losses.every(Number.isFinite));
    const timings = pool.lastTimings!;
    assert.equal(timings.remote.length, 1);
    assert.ok(timings.local > 0 && timings.remote[0] > 0, JSON.stringify(timings));
    assert.ok(timings.total >= timings.local, JSON.stringify(timings));
    assert.ok(timings.waiting >= 0 && timings.waiting <= timings.total, JSON.stringify(timings));
    const main = flat(trainer.variables);
    const replica = await pool.replicaWeights(1);
    assert.equal(replica.length, main.length);
    assert.deepEqual(replica, main);
    // A revival re-draws a mode on the main thread only; resync keeps the replicas identical.
    await trainer.reviveOutputs([2]);
    for (let i = 0; i < 3; i++) await trainer.step();
    assert.deepEqual(await pool.replicaWeights(1), flat(trainer.variables));
  } finally {
    pool.close();
    trainer.dispose();
    model.dispose();
  }
});

Deno.test("WorkerPool: a clipped update is the same on every replica", async () => {
  // A clip far below the gradient norm: every step scales its update by the pooled norm.
  const { config, problem, model, trainer } = setupRun(64, 1e-3);
  const pool = await WorkerPool.create(trainer, { workers: 2, spec: problem.spec!, config });
  try {
    trainer.useGradientSource(pool);
    const before = flat(trainer.variables);
    const records = [];
    for (let i = 0; i < 3; i++) records.push(await trainer.step());
    assert.ok(
      records.every((r) => r.gradNorm > 1e-3),
      JSON.stringify(records.map((r) => r.gradNorm)),
    );
    const after = flat(trainer.variables);
    assert.notDeepEqual(after, before);
    assert.deepEqual(await pool.replicaWeights(1), after);
  } finally {
    pool.close();
    trainer.dispose();
    model.dispose();
  }
});

Deno.test("WorkerPool: handing the Workers the next batch with the update changes no number", async () => {
  // Two runs alike but for the Workers taking the next step's shard with each update or waiting
  // for it. A shift schedule moves the shift every step (a shard computed ahead must use the next
  // step's), and after step 4 a callback draws from the run's generator: the batch drawn ahead is
  // dropped and drawn again, as the run without it draws.
  async function run(prefetch: boolean) {
    let trainer: Trainer | null = null;
    const setup = setupRun(64, 0, {
      shiftSchedule: { from: 8, to: 2, start: 0, end: 1 },
      onStep: (r) => {
        if (r.step === 4) trainer!.rng.normals(3);
      },
    });
    trainer = setup.trainer;
    const { config, problem, model } = setup;
    const pool = await WorkerPool.create(trainer, {
      workers: 2,
      spec: problem.spec!,
      config,
      prefetch,
    });
    try {
      assert.equal(pool.prefetches, prefetch);
      trainer.useGradientSource(pool);
      const losses: number[] = [];
      const tensors: number[] = [];
      for (let i = 0; i < 8; i++) {
        losses.push((await trainer.step()).loss);
        tensors.push(tf.memory().numTensors);
      }
      // One batch drawn ahead is held from step to step: the count stays flat.
      assert.deepEqual(tensors.slice(2), Array(6).fill(tensors[2]), JSON.stringify(tensors));
      return {
        losses,
        weights: flat(trainer.variables),
        replica: await pool.replicaWeights(1),
        rng: trainer.rng.getState(),
      };
    } finally {
      pool.close();
      trainer.dispose();
      model.dispose();
    }
  }
  const ahead = await run(true), waiting = await run(false);
  assert.deepEqual(ahead.losses, waiting.losses);
  assert.deepEqual(ahead.weights, waiting.weights);
  assert.deepEqual(ahead.replica, ahead.weights);
  assert.deepEqual(ahead.rng, waiting.rng);
});

Deno.test("WorkerPool: a step waiting on a closed pool rejects instead of hanging", async () => {
  const { config, problem, model, op, trainer } = setupRun();
  const pool = await WorkerPool.create(trainer, { workers: 2, spec: problem.spec!, config });
  const batch = op.sample(new Rng(3), 64);
  try {
    // Settles within 5 s or rejects with "still waiting" (before, such a step waited forever).
    const within = async <T>(p: Promise<T>) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("still waiting")), 5000);
      });
      try {
        return await Promise.race([p, late]);
      } finally {
        clearTimeout(timer);
      }
    };
    const waiting = pool.gradients(trainer, batch);
    pool.close();
    await assert.rejects(within(waiting), /The Worker pool is closed/);
    await assert.rejects(within(pool.gradients(trainer, batch)), /The Worker pool is closed/);
  } finally {
    pool.close();
    disposeBatch(batch);
    trainer.dispose();
    model.dispose();
  }
});

Deno.test("ShardResults: a Worker's loss, time and norms, read once its request is done", async () => {
  const board = new ShardResults({ workers: 3, modes: 2 });
  // Another view of the same memory, as a Worker makes one.
  const theirs = new ShardResults({ workers: 3, modes: 2 }, board.buffer);
  const never = new Promise<never>(() => {});
  theirs.publish(2, 1, { loss: -1.5, ms: 3, norms: [0.25, 0.125] });
  assert.equal(board.done(2), 1);
  assert.equal(board.done(1), 0);
  assert.deepEqual(await board.waitFor(2, 1, never), { loss: -1.5, ms: 3, norms: [0.25, 0.125] });
  // A later request: the reader waits until it is published.
  const later = board.waitFor(1, 2, never);
  let settled = false;
  later.then(() => settled = true);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, false);
  theirs.publish(1, 1, { loss: 9, ms: 1, norms: [9, 9] });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, false);
  theirs.publish(1, 2, { loss: 0.5, ms: 2, norms: [1, 2] });
  assert.deepEqual(await later, { loss: 0.5, ms: 2, norms: [1, 2] });
  // A failed Worker rejects the wait.
  const failed = Promise.reject(new Error("A training Worker failed: boom"));
  await assert.rejects(board.waitFor(0, 1, failed), /A training Worker failed: boom/);
  assert.throws(
    () => new ShardResults({ workers: 3, modes: 4 }, board.buffer),
    /Mismatched shard results: \d+ bytes for 3 Workers of 4 modes/,
  );
});

Deno.test("WorkerPool: three replicas average three shards through the shared slots", async () => {
  const { config, problem, model, op, trainer } = setupRun(96);
  const pool = await WorkerPool.create(trainer, { workers: 3, spec: problem.spec!, config });
  try {
    const batch = op.sample(new Rng(4), 96);
    const x = batch.x.dataSync() as Float32Array;
    const pooled = await pool.gradients(trainer, batch);
    const shards = [0, 1, 2].map((i) => {
      const b = op.batchFromArray(x.slice(i * 64, (i + 1) * 64), 32);
      const g = trainer.computeGradients(b);
      disposeBatch(b);
      return g;
    });
    const grads = pooled.tensors();
    grads.forEach((g, i) => {
      const a = g.dataSync(), s = shards.map((sh) => sh.grads[i].dataSync());
      a.forEach((v, k) => {
        const want = (s[0][k] + s[1][k] + s[2][k]) / 3;
        assert.ok(Math.abs(v - want) <= 1e-6 * (1 + Math.abs(v)), `${i}[${k}]: ${v} vs ${want}`);
      });
    });
    tf.dispose([grads, batch.x, Object.values(batch.data!)]);
    for (const sh of shards) tf.dispose([sh.grads, sh.loss, sh.norms]);
    trainer.useGradientSource(pool);
    for (let i = 0; i < 4; i++) await trainer.step();
    const main = flat(trainer.variables);
    assert.deepEqual(await pool.replicaWeights(1), main);
    assert.deepEqual(await pool.replicaWeights(2), main);
  } finally {
    pool.close();
    trainer.dispose();
    model.dispose();
  }
});

Deno.test("GradientExchange: one slot per replica in one SharedArrayBuffer", () => {
  const exchange = new GradientExchange(5, 3);
  assert.ok(exchange.buffer instanceof SharedArrayBuffer);
  exchange.slot(2).fill(7);
  const view = new GradientExchange(5, 3, exchange.buffer);
  assert.deepEqual(Array.from(view.slot(2)), [7, 7, 7, 7, 7]);
  assert.deepEqual(Array.from(view.slot(1)), [0, 0, 0, 0, 0]);
  assert.throws(
    () => new GradientExchange(5, 4, new SharedArrayBuffer(60)),
    /^RangeError: Mismatched gradient exchange: 60 bytes for 4 slots of 5 floats$/,
  );
});

Deno.test("GradientExchange.average: slot 0 = (own + Workers') / R, as tfjs's add and div round it", () => {
  const rng = new Rng(31);
  for (const [size, replicas] of [[4099, 2], [13, 3], [6, 4]]) {
    // slots: 0 the average, 1 … R − 1 the Workers, R the main thread's own
    const owner = new GradientExchange(size, replicas + 1);
    const view = new GradientExchange(size, replicas + 1, owner.buffer); // a Worker's view
    const parts = Array.from(
      { length: replicas },
      () => Float32Array.from({ length: size }, () => rng.normal() * 10 ** rng.normal()),
    );
    parts.forEach((p, i) => owner.slot(i === 0 ? replicas : i).set(p));
    const simdSquares = owner.average({ first: replicas, count: replicas - 1 });
    const want = tf.tidy(() => {
      let sum = tf.tensor1d(parts[0]);
      for (const p of parts.slice(1)) sum = tf.add(sum, tf.tensor1d(p));
      return tf.div(sum, replicas).dataSync();
    });
    assert.deepEqual(
      Array.from(owner.slot(0)),
      Array.from(want),
      `size ${size}, ${replicas} replicas`,
    );
    // a view without the SIMD functions averages the same way
    view.slot(0).fill(0);
    const loopSquares = view.average({ first: replicas, count: replicas - 1 });
    assert.deepEqual(Array.from(view.slot(0)), Array.from(want));
    // both return Σ x² of the average, as float64 sums it up to float32 rounding
    const squares = Array.from(want).reduce((s, v) => s + v * v, 0);
    for (const [who, sum] of [["SIMD", simdSquares], ["loop", loopSquares]] as const) {
      assert.ok(Math.abs(sum - squares) <= 1e-5 * squares, `${who}: ${sum} vs ${squares}`);
    }
  }
});

Deno.test("GradientExchange falls back to a plain SharedArrayBuffer without shared WebAssembly memory", () => {
  const saved = WebAssembly.Memory;
  try {
    // deno-lint-ignore no-explicit-any
    (WebAssembly as any).Memory = function () {
      throw new TypeError("no shared memory here");
    };
    const exchange = new GradientExchange(6, 3);
    assert.ok(exchange.buffer instanceof SharedArrayBuffer);
    exchange.slot(2).set([1, 2, 3, 4, 5, 6]);
    exchange.slot(1).set([3, 2, 1, 0, -1, -2]);
    assert.equal(exchange.average({ first: 2, count: 1 }), 6 * 4);
    assert.deepEqual(Array.from(exchange.slot(0)), [2, 2, 2, 2, 2, 2]);
  } finally {
    // deno-lint-ignore no-explicit-any
    (WebAssembly as any).Memory = saved;
  }
});

Deno.test("workersUnavailable explains why Workers cannot be used", () => {
  assert.equal(workersUnavailable(), null);
  const saved = globalThis.Worker;
  try {
    // deno-lint-ignore no-explicit-any
    (globalThis as any).Worker = undefined;
    assert.equal(workersUnavailable(), "Workers are not available in this runtime");
  } finally {
    globalThis.Worker = saved;
  }
});
