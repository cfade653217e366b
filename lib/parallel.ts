/**
 * Data-parallel training over Deno module Workers. Each Worker holds its own single-thread WASM
 * tfjs and an identical replica of the model; every step the main thread draws the batch with the
 * run's generator, splits it into one shard per replica (each shard is itself i.i.d. and splits into
 * its own halves, so the averaged gradient stays unbiased), computes its own shard while the Workers
 * compute theirs, averages the θ-gradients, and tells the Workers the update, which every replica
 * then applies at once — so replicas stay bit-identical. With the update the Workers get their
 * shards of the next step's batch (the trainer draws it ahead, see `GradientSource.prefetches`),
 * so they start on it without waiting for the main thread's own update and bookkeeping. The
 * gradients travel through one SharedArrayBuffer: a slot per Worker that it writes its shard's
 * gradient into, and a slot the main thread writes the averaged gradient into. Messages carry the
 * requests; a Worker answers a shard through shared memory ({@linkcode ShardResults}), which the
 * main thread waits on with `Atomics.waitAsync` (a message took 0.3–1 ms to arrive on a busy host).
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { ExperimentConfig, ProblemSpec } from "./experiment.ts";
import type { OperatorBatch } from "./operator.ts";
import { disposeBatch } from "./operator.ts";
import type { GradientSource, NextBatch, SourceGradients, Trainer } from "./train.ts";
import type { Tensor } from "./types.ts";
import { readTensorsInto, type SimdFunctions, simdFunctions } from "./wasm_kernels.ts";

/** An operator that can rebuild a batch from raw points (a shard), with the shift its replicas copy. */
interface ShardableOperator {
  batchFromArray(x: Float32Array, n: number): OperatorBatch;
  readonly shift: number;
}

/** Messages a replica Worker answers. */
export type WorkerRequest =
  | {
    type: "init";
    spec: ProblemSpec;
    config: ExperimentConfig;
    weights: Float32Array[];
    slots: Float32Array[];
    iterations: number;
    /** The shared gradient memory and this Worker's slot in it (see {@linkcode GradientExchange}). */
    exchange: { buffer: SharedArrayBuffer; slot: number };
    /** Where this Worker answers its shards (see {@linkcode ShardResults}). */
    results: { buffer: SharedArrayBuffer; workers: number; modes: number };
  }
  | ShardRequest
  | { type: "apply"; lr: number; scale: number; next?: ShardRequest }
  | { type: "sync"; weights: Float32Array[]; slots: Float32Array[] }
  | { type: "weights" };

/** A shard for a Worker: its points, how many, the operator's shift, and the request's number. */
export interface ShardRequest {
  /** A shard gradient request. */
  type: "grad";
  /** Increases with every request to a Worker; the Worker publishes it with the result. */
  id: number;
  /** The shard's points, row after row (its own buffer: it is transferred). */
  x: Float32Array<ArrayBuffer>;
  /** Points in the shard. */
  n: number;
  /** The eigen operator's shift for this step. */
  shift: number;
}

/** A Worker's answer for one shard. */
export interface ShardResult {
  /** The shard's loss monitor. */
  loss: number;
  /** The shard's mode norms. */
  norms: number[];
  /** Milliseconds the Worker spent on it (flattening included). */
  ms: number;
}

/** How long one `Atomics.waitAsync` may wait before the wait is renewed (milliseconds). */
const WAIT_SLICE_MS = 1000;

/**
 * Where replica Workers answer their shards: for each Worker the number of the last request it
 * finished (an Int32 the main thread waits on) and that shard's loss, time and mode norms (float64),
 * in one SharedArrayBuffer. `publish` stores the numbers before the request number, so a reader
 * that sees the number reads that request's values.
 *
 * @example A Worker's side publishes, the main thread's reads
 * ```ts
 * import { ShardResults } from "./parallel.ts";
 * const board = new ShardResults({ workers: 1, modes: 2 });
 * const worker = new ShardResults({ workers: 1, modes: 2 }, board.buffer); // as a Worker views it
 * worker.publish(0, 1, { loss: -3, ms: 12, norms: [2, 1] });
 * const failed = new Promise<never>(() => {}); // rejects when a Worker fails, in a pool
 * console.log((await board.waitFor(0, 1, failed)).norms); // [2, 1]
 * ```
 */
export class ShardResults {
  /** The shared memory (hand it to the Workers). */
  readonly buffer: SharedArrayBuffer;
  /** Mode norms per result. */
  readonly modes: number;
  readonly #done: Int32Array;
  readonly #values: Float64Array;

  /** Room for `workers` results of `modes` norms, or a view of `buffer` when given. */
  constructor(options: { workers: number; modes: number }, buffer?: SharedArrayBuffer) {
    const { workers, modes } = options;
    const head = 8 * Math.ceil(workers / 2);
    const bytes = head + 8 * workers * (2 + modes);
    this.buffer = buffer ?? new SharedArrayBuffer(bytes);
    if (this.buffer.byteLength < bytes) {
      throw new RangeError(
        `Mismatched shard results: ${this.buffer.byteLength} bytes for ${workers} Workers of ${modes} modes`,
      );
    }
    this.modes = modes;
    this.#done = new Int32Array(this.buffer, 0, workers);
    this.#values = new Float64Array(this.buffer, head, workers * (2 + modes));
  }

  /** Worker `worker` (0-based) finished request `id` with `result`; wakes a waiting reader. */
  publish(worker: number, id: number, result: ShardResult): void {
    const o = worker * (2 + this.modes);
    this.#values[o] = result.loss;
    this.#values[o + 1] = result.ms;
    this.#values.set(result.norms, o + 2);
    Atomics.store(this.#done, worker, id);
    Atomics.notify(this.#done, worker);
  }

  /** The last request Worker `worker` finished (0 before any). */
  done(worker: number): number {
    return Atomics.load(this.#done, worker);
  }

  /**
   * Worker `worker`'s result once it has finished request `id` (or a later one), without blocking
   * the thread; rejects with `failed`'s error when that settles first (a Worker that died).
   */
  async waitFor(worker: number, id: number, failed: Promise<never>): Promise<ShardResult> {
    for (;;) {
      const seen = Atomics.load(this.#done, worker);
      if (seen >= id) break;
      const wait = Atomics.waitAsync(this.#done, worker, seen, WAIT_SLICE_MS);
      if (!wait.async) continue;
      // A timer alongside: Deno does not count a pending waitAsync as work that keeps it running.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const slice = new Promise<void>((resolve) => timer = setTimeout(resolve, WAIT_SLICE_MS));
      try {
        await Promise.race([wait.value, slice, failed]);
      } finally {
        clearTimeout(timer);
      }
    }
    const o = worker * (2 + this.modes);
    return {
      loss: this.#values[o],
      ms: this.#values[o + 1],
      norms: Array.from(this.#values.subarray(o + 2, o + 2 + this.modes)),
    };
  }
}

/** A batch's points read out once (B×d, row-major), with each replica's shard size n = B/R. */
interface BatchSplit {
  x: Float32Array;
  n: number;
  d: number;
}

/** What {@linkcode WorkerPool.create} needs. */
export interface WorkerPoolOptions {
  /** Total replicas including the main thread (≥ 2). */
  workers: number;
  /** How Workers rebuild the problem. */
  spec: ProblemSpec;
  /** The run's settings (model, operator and optimiser are rebuilt from them). */
  config: ExperimentConfig;
  /**
   * Whether the Workers get the next step's shards with each update and start on them at once
   * (default true). Off, they wait for the next step's request, as the main thread draws it.
   */
  prefetch?: boolean;
}

/** Copies the tensors' values one after another into `out` (a new array by default). */
export function flatten(
  tensors: Tensor[],
  out: Float32Array<ArrayBufferLike> = new Float32Array(tensors.reduce((n, t) => n + t.size, 0)),
): Float32Array<ArrayBufferLike> {
  readTensorsInto(tensors, out);
  return out;
}

/**
 * The shared gradient memory of a {@linkcode WorkerPool}: `slots` arrays of `size` floats in one
 * SharedArrayBuffer. Slot 0 holds the averaged gradient (written by the main thread), slot i ≥ 1
 * Worker i's shard gradient (written by that Worker), the last slot the main thread's own. The
 * allocating side makes it a shared WebAssembly memory, so that it averages the slots with one SIMD
 * pass ({@linkcode GradientExchange.average}).
 */
export class GradientExchange {
  /** Floats per slot (the model's parameter count). */
  readonly size: number;
  /** The shared memory. */
  readonly buffer: SharedArrayBuffer;
  #simd: SimdFunctions | null = null;

  /** Allocates `slots` slots of `size` floats, or views `buffer` when given. */
  constructor(size: number, slots: number, buffer?: SharedArrayBuffer) {
    this.size = size;
    if (buffer) {
      this.buffer = buffer;
    } else {
      const pages = Math.max(1, Math.ceil((4 * size * slots) / 65536));
      let memory: WebAssembly.Memory | null = null;
      try {
        memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
        this.#simd = simdFunctions(memory);
      } catch {
        // an engine without shared WebAssembly memory (or SIMD): a plain SharedArrayBuffer, and
        // `average` runs its JavaScript loop
        memory = null;
        this.#simd = null;
      }
      this.buffer = memory
        ? memory.buffer as unknown as SharedArrayBuffer
        : new SharedArrayBuffer(4 * size * slots);
    }
    if (this.buffer.byteLength < 4 * size * slots) {
      throw new RangeError(
        `Mismatched gradient exchange: ${this.buffer.byteLength} bytes for ${slots} slots of ${size} floats`,
      );
    }
  }

  /** Slot i as a Float32Array view. */
  slot(i: number): Float32Array {
    return new Float32Array(this.buffer, 4 * this.size * i, this.size);
  }

  /**
   * Slot 0 = (slot `first` + slots 1 … `count`) / (count + 1), summed in that order: the replicas'
   * average, with the main thread's own gradient (`first`) first as the tfjs kernels summed it.
   * Returns Σ x² over the average (summed in float32), which gives the global gradient norm.
   */
  average({ first, count }: { first: number; count: number }): number {
    const bytes = 4 * this.size;
    if (this.#simd) {
      return this.#simd.averageSlots({ dst: 0, first: bytes * first, rest: bytes }, {
        n: this.size,
        count,
        stride: bytes,
        divisor: count + 1,
      });
    }
    const f = Math.fround, out = this.slot(0), own = this.slot(first);
    const rest = Array.from({ length: count }, (_, s) => this.slot(s + 1));
    let squares = 0;
    for (let i = 0; i < this.size; i++) {
      let sum = own[i];
      for (const r of rest) sum = f(sum + r[i]);
      const average = out[i] = f(sum / (count + 1));
      squares = f(squares + f(average * average));
    }
    return squares;
  }
}

/** Splits a flat array back into tensors shaped like `like` (copies: `flat` may change later). */
export function unflatten(flat: Float32Array, like: { shape: number[]; size: number }[]): Tensor[] {
  let o = 0;
  return like.map((t) => {
    const part = tensorCopy(flat.subarray(o, o + t.size), t.shape);
    o += t.size;
    return part;
  });
}

/** A float32 tensor holding a copy of `values` (a view of shared memory that changes later). */
function tensorCopy(values: Float32Array, shape: number[]): Tensor {
  // tfjs-wasm copies new tensors' values into its heap; other backends may keep the array itself.
  return tf.tensor(tf.getBackend() === "wasm" ? values : values.slice(), shape, "float32");
}

/** Where the time of one data-parallel gradient went, in milliseconds. */
export interface PoolTimings {
  /** The main thread's own shard gradient. */
  local: number;
  /** Each Worker's shard gradient, timed inside the Worker (flattening included). */
  remote: number[];
  /**
   * How long the main thread waited for the Workers' answers after its own shard (and its
   * flattening): near 0 when they finish first, a slower Worker's lead otherwise.
   */
  waiting: number;
  /** Averaging the shards' gradients (their global norm with them) and losses once all have arrived. */
  averaging: number;
  /** The whole gradient phase on the main thread: shards, waiting, averaging. */
  total: number;
}

/**
 * Why Workers cannot be used here, or null when they can.
 *
 * @example Under Deno, Workers with shared memory are available
 * ```ts
 * import { workersUnavailable } from "../mod.ts";
 * console.log(workersUnavailable()); // null
 * ```
 */
export function workersUnavailable(): string | null {
  if (typeof Worker === "undefined") return "Workers are not available in this runtime";
  if (typeof SharedArrayBuffer === "undefined") return "SharedArrayBuffer is not available";
  if (typeof Atomics.waitAsync !== "function") return "Atomics.waitAsync is not available";
  return null;
}

/**
 * Replica Workers computing shard gradients for a {@linkcode Trainer} (plug it in with
 * `trainer.useGradientSource(pool)`).
 *
 * @example Three steps of the smoke hydrogen job on two replicas
 * ```ts
 * import {
 *   buildModel,
 *   buildOperator,
 *   HYDROGEN2D_PRESETS,
 *   hydrogen2dProblem,
 *   initBackend,
 *   Rng,
 *   Trainer,
 *   trainerOptions,
 *   WorkerPool,
 * } from "../mod.ts";
 * await initBackend();
 * const config = { ...HYDROGEN2D_PRESETS.smoke, batch: 64, steps: 3 };
 * const problem = hydrogen2dProblem();
 * const rng = new Rng(config.seed);
 * const model = buildModel(problem, config, { rng });
 * const operator = buildOperator(problem, config);
 * const trainer = new Trainer({ operator, model }, trainerOptions(config, rng));
 * const pool = await WorkerPool.create(trainer, { workers: 2, spec: problem.spec!, config });
 * trainer.useGradientSource(pool);
 * for (let i = 0; i < 3; i++) await trainer.step();
 * console.log(pool.lastTimings!.remote.length); // 1 (one Worker besides the main thread)
 * pool.close();
 * trainer.dispose();
 * model.dispose();
 * ```
 */
export class WorkerPool implements GradientSource {
  /** Shards are prepared in the replicas from the batch's points alone. */
  readonly pointsOnly = true;
  /**
   * Whether the Workers take the next step's shards with each update (see
   * {@linkcode WorkerPoolOptions.prefetch}). Set it to false before a step to leave the Workers
   * idle after it (a benchmark taking turns with other work does).
   */
  prefetches: boolean;
  readonly #workers: Worker[];
  readonly #operator: ShardableOperator;
  #pending = new Map<Worker, { resolve: (data: unknown) => void; reject: (e: Error) => void }>();
  readonly #exchange: GradientExchange;
  readonly #results: ShardResults;
  /** Rejects once a Worker fails or the pool is closed (every later wait rejects with it). */
  readonly #failed: Promise<never>;
  readonly #fail: (e: Error) => void;
  #lastId = 0;
  /** The requests already sent for a batch handed over with the last update. */
  #ahead: {
    batch: OperatorBatch;
    id: number;
    split: BatchSplit;
  } | null = null;
  /** Timings of the last {@linkcode WorkerPool.gradients} call (null before the first). */
  lastTimings: PoolTimings | null = null;

  private constructor(
    workers: Worker[],
    operator: ShardableOperator,
    shared: { exchange: GradientExchange; results: ShardResults; prefetch: boolean },
  ) {
    this.#workers = workers;
    this.#operator = operator;
    this.#exchange = shared.exchange;
    this.#results = shared.results;
    this.prefetches = shared.prefetch;
    let fail: (e: Error) => void = () => {};
    this.#failed = new Promise<never>((_, reject) => fail = reject);
    this.#failed.catch(() => {});
    this.#fail = fail;
    for (const w of workers) {
      w.onmessage = (e) => {
        const pending = this.#pending.get(w);
        this.#pending.delete(w);
        pending?.resolve(e.data);
      };
      w.onerror = (e) => {
        e.preventDefault();
        const error = new Error(`A training Worker failed: ${e.message}`);
        fail(error);
        const pending = this.#pending.get(w);
        this.#pending.delete(w);
        pending?.reject(error);
      };
    }
  }

  /** Number of replicas, the main thread included. */
  get replicas(): number {
    return this.#workers.length + 1;
  }

  #ask(w: Worker, message: WorkerRequest, transfer: Transferable[] = []): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#pending.set(w, { resolve, reject });
      w.postMessage(message, transfer);
    });
  }

  /**
   * Starts `workers − 1` replica Workers initialised with the trainer's current weights and
   * optimiser state (so it also works after resuming from a checkpoint).
   */
  static async create(trainer: Trainer, options: WorkerPoolOptions): Promise<WorkerPool> {
    const why = workersUnavailable();
    if (why) throw new Error(why);
    const op = trainer.problem.operator as unknown as Partial<ShardableOperator>;
    if (typeof op.batchFromArray !== "function") {
      throw new RangeError(
        "Data-parallel training needs an operator that can rebuild shards from points",
      );
    }
    const weights = trainer.variables.map((v) => v.dataSync() as Float32Array);
    const slots = trainer.optimizer.stateTensors().map((v) => v.dataSync() as Float32Array);
    const workers = Array.from(
      { length: options.workers - 1 },
      () => new Worker(new URL("./parallel_worker.ts", import.meta.url), { type: "module" }),
    );
    const size = weights.reduce((n, w) => n + w.length, 0);
    const exchange = new GradientExchange(size, workers.length + 2);
    const modes = trainer.loss.modes;
    const results = new ShardResults({ workers: workers.length, modes });
    const pool = new WorkerPool(workers, op as ShardableOperator, {
      exchange,
      results,
      prefetch: options.prefetch ?? true,
    });
    try {
      await Promise.all(workers.map((w, i) =>
        pool.#ask(w, {
          type: "init",
          spec: options.spec,
          config: { ...options.config, out: undefined, resume: undefined },
          weights: weights.map((a) => a.slice()),
          slots: slots.map((a) => a.slice()),
          iterations: trainer.optimizer.iterations,
          exchange: { buffer: exchange.buffer, slot: i + 1 },
          results: { buffer: results.buffer, workers: workers.length, modes },
        })
      ));
    } catch (e) {
      pool.close();
      throw e;
    }
    return pool;
  }

  /** The batch's points and each replica's shard size; throws when it does not split evenly. */
  #split(batch: OperatorBatch): BatchSplit {
    const [B, d] = batch.x.shape;
    const R = this.replicas;
    if (B % (2 * R) !== 0) {
      throw new RangeError(
        `Invalid batch size ${B} for ${R} replicas: it must be a multiple of 2·replicas`,
      );
    }
    return { x: batch.x.dataSync() as Float32Array, n: B / R, d };
  }

  /** Worker i's request for its shard of the batch (shard i + 1; the main thread takes shard 0). */
  #request(
    split: BatchSplit,
    i: number,
    id: number,
    shift: number,
  ): ShardRequest {
    const { x, n, d } = split;
    return { type: "grad", id, x: x.slice((i + 1) * n * d, (i + 2) * n * d), n, shift };
  }

  /**
   * Averaged gradients of the batch over all replicas' shards: the loss, norms and global gradient
   * norm at once, the gradient tensors (from the shared average) when asked.
   */
  async gradients(trainer: Trainer, batch: OperatorBatch): Promise<SourceGradients> {
    const t0 = performance.now();
    const R = this.replicas;
    let id: number, split: BatchSplit;
    if (this.#ahead?.batch === batch) {
      // the points were read and checked when the batch was handed over
      ({ id, split } = this.#ahead);
    } else {
      split = this.#split(batch);
      // Not the batch the Workers already have (none was handed over, or the trainer drew
      // another): a new request, answered after any they are still working on.
      id = ++this.#lastId;
      this.#workers.forEach((w, i) => {
        const request = this.#request(split, i, id, this.#operator.shift);
        w.postMessage(request, [request.x.buffer]);
      });
    }
    this.#ahead = null;
    const t1 = performance.now();
    const local = this.#operator.batchFromArray(split.x.slice(0, split.n * split.d), split.n);
    const mine = trainer.computeGradients(local);
    disposeBatch(local);
    const t2 = performance.now();
    // the main thread's own gradient to its slot while the Workers may still be computing
    flatten(mine.grads, this.#exchange.slot(R));
    const localLoss = mine.loss.dataSync()[0];
    const localNorms = mine.norms.dataSync();
    tf.dispose([mine.grads, mine.loss, mine.norms]);
    const waitFrom = performance.now();
    const theirs = await Promise.all(
      this.#workers.map((_, i) => this.#results.waitFor(i, id, this.#failed)),
    );
    const t3 = performance.now();
    // Slot 0 = (own + Worker 1 + …) / R in one SIMD pass on the shared memory (tfjs kernels took
    // 2.4 ms for the canonical step's 1.58M values: copies in, a sum, a division, a copy out); the
    // Workers read it when told to apply it — only now: a Worker answers this step's shard after it
    // has applied (read) the previous average. Its norm comes with it (tfjs's kernels and a
    // read-back took ~1 ms more), so the update can go out before any tensor is made of it.
    const gradNorm = Math.sqrt(this.#exchange.average({ first: R, count: R - 1 }));
    const result: SourceGradients = {
      loss: (localLoss + theirs.reduce((s, t) => s + t.loss, 0)) / R,
      gradNorm,
      norms: Array.from(localNorms, (v, l) => (v + theirs.reduce((s, t) => s + t.norms[l], 0)) / R),
      tensors: () => unflatten(this.#exchange.slot(0), trainer.variables),
    };
    this.lastTimings = {
      local: t2 - t1,
      remote: theirs.map((t) => t.ms),
      waiting: t3 - waitFrom,
      averaging: performance.now() - t3,
      total: performance.now() - t0,
    };
    return result;
  }

  /**
   * Has every Worker make the update with the averaged gradient (slot 0) now, and then start on
   * its shard of `next` when given (the batch {@linkcode WorkerPool.gradients} gets next).
   */
  applying(update: { lr: number; scale: number }, next?: NextBatch): void {
    let split: BatchSplit | null = null;
    if (next && this.prefetches) {
      try {
        split = this.#split(next.batch);
      } catch {
        // left to `gradients`, which says why
      }
    }
    const id = split ? ++this.#lastId : 0;
    this.#workers.forEach((w, i) => {
      const request = split
        ? this.#request(split, i, id, next!.shift ?? this.#operator.shift)
        : undefined;
      const message: WorkerRequest = { type: "apply", lr: update.lr, scale: update.scale };
      if (request) message.next = request;
      w.postMessage(message, request ? [request.x.buffer] : []);
    });
    this.#ahead = split ? { batch: next!.batch, id, split } : null;
  }

  /** Sends the trainer's weights and optimiser state to every replica (after a revival). */
  resync(trainer: Trainer): void {
    // A shard handed over before is being computed with the old weights: not used.
    this.#ahead = null;
    const weights = trainer.variables.map((v) => v.dataSync() as Float32Array);
    const slots = trainer.optimizer.stateTensors().map((v) => v.dataSync() as Float32Array);
    for (const w of this.#workers) w.postMessage({ type: "sync", weights, slots } as WorkerRequest);
  }

  /** The weights of replica i (1-based Worker index), flattened in variable order. */
  async replicaWeights(i: number): Promise<Float32Array> {
    const w = this.#workers[i - 1];
    if (!w) throw new RangeError(`Invalid replica ${i}: there are ${this.#workers.length} Workers`);
    return (await this.#ask(w, { type: "weights" })) as Float32Array;
  }

  /** Stops the Workers; a step still waiting for them, or asked for later, rejects. */
  close(): void {
    this.#fail(new Error("The Worker pool is closed"));
    for (const w of this.#workers) w.terminate();
  }
}
