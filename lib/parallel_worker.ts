/**
 * A replica Worker of {@linkcode WorkerPool}: rebuilds the model, operator and optimiser from the
 * run's settings, computes gradients of the shards it is sent, and applies the averaged updates. An
 * update may come with the next step's shard, which it starts on as soon as the update is made. It
 * answers a shard through shared memory ({@linkcode ShardResults}), not with a message.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { initBackend } from "./backend.ts";
import { buildModel, buildOperator, trainerOptions } from "./experiment.ts";
import { disposeBatch } from "./operator.ts";
import {
  flatten,
  GradientExchange,
  type ShardRequest,
  ShardResults,
  unflatten,
  type WorkerRequest,
} from "./parallel.ts";
import { problemFromSpec } from "./problems.ts";
import { Rng } from "./random.ts";
import { Trainer } from "./train.ts";
import type { Model } from "./models.ts";
import type { SchrodingerOperator } from "../operators/schrodinger.ts";

let trainer: Trainer | null = null;
let model: Model | null = null;
let operator: SchrodingerOperator | null = null;
/** This replica's shard gradient (written here) and the averaged gradient (read here). */
let slots: { mine: Float32Array; average: Float32Array } | null = null;
/** Where this replica answers its shards, and its index there. */
let results: { board: ShardResults; index: number } | null = null;

function assignState(t: Trainer, weights: Float32Array[], slots: Float32Array[]): void {
  const assign = (v: tf.Variable, data: Float32Array) =>
    tf.tidy(() => v.assign(tf.tensor(data, v.shape, "float32")));
  t.variables.forEach((v, i) => assign(v, weights[i]));
  t.optimizer.stateTensors().forEach((v, i) => assign(v, slots[i]));
}

/** Computes the shard's gradient into this replica's slot and publishes its loss and norms. */
function shardGradient(request: ShardRequest): void {
  const t0 = performance.now();
  // The main thread's trainer owns the shift schedule; replicas follow its value.
  operator!.setShift(request.shift);
  const batch = operator!.batchFromArray(request.x, request.n);
  const g = trainer!.computeGradients(batch);
  disposeBatch(batch);
  flatten(g.grads, slots!.mine);
  const loss = g.loss.dataSync()[0];
  const norms = Array.from(g.norms.dataSync());
  tf.dispose([g.grads, g.loss, g.norms]);
  results!.board.publish(results!.index, request.id, {
    loss,
    norms,
    ms: performance.now() - t0,
  });
}

self.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const msg = e.data;
  if (msg.type === "init") {
    await initBackend({
      backend: "wasm",
      threads: msg.config.threads ?? 1,
      simdKernels: msg.config.simdKernels ?? true,
    });
    const problem = problemFromSpec(msg.spec);
    const rng = new Rng(msg.config.seed);
    model = buildModel(problem, msg.config, { rng });
    operator = buildOperator(problem, msg.config);
    trainer = new Trainer({ operator, model }, {
      ...trainerOptions(msg.config, rng),
      ema: undefined,
    });
    assignState(trainer, msg.weights, msg.slots);
    trainer.optimizer.setIterations(msg.iterations);
    const size = trainer.variables.reduce((n, v) => n + v.size, 0);
    const exchange = new GradientExchange(size, msg.exchange.slot + 1, msg.exchange.buffer);
    slots = { mine: exchange.slot(msg.exchange.slot), average: exchange.slot(0) };
    const board = new ShardResults(msg.results, msg.results.buffer);
    results = { board, index: msg.exchange.slot - 1 };
    self.postMessage({ type: "ready" });
  } else if (msg.type === "sync") {
    assignState(trainer!, msg.weights, msg.slots);
  } else if (msg.type === "grad") {
    shardGradient(msg);
  } else if (msg.type === "apply") {
    const grads = unflatten(slots!.average, trainer!.variables);
    const scaled = msg.scale !== 1 ? tf.tidy(() => grads.map((g) => tf.mul(g, msg.scale))) : grads;
    trainer!.optimizer.step(scaled, msg.lr);
    tf.dispose(grads);
    if (scaled !== grads) tf.dispose(scaled);
    if (msg.next) shardGradient(msg.next);
  } else if (msg.type === "weights") {
    self.postMessage(flatten(trainer!.variables));
  }
};
