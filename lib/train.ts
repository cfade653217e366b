/**
 * The NestedLoRA training loop: sample through the operator, form the output gradient (never
 * differentiating the operator), inject it as θ-gradient = Jᵀ G, clip, update, average.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Scalar, Tensor, Tensor1D, Tensor2D, Variable } from "./types.ts";
import { CsvLog } from "./io.ts";
import type { Model } from "./models.ts";
import { type GramEstimator, NestedLoraLoss } from "./nested_lora.ts";
import {
  type DependenceOperator,
  disposeBatch,
  type EigenOperator,
  type OperatorBatch,
  type SingularOperator,
} from "./operator.ts";
import {
  createOptimizer,
  globalNorm,
  learningRate,
  type Optimizer,
  type OptimizerOptions,
  ParameterEma,
  parseSchedule,
  resetOptimizerEntries,
} from "./optimizers.ts";
import { ProgressReporter } from "./progress.ts";
import { prefersBatchedKernels, stepsPerReadback } from "./kernel_layout.ts";
import { Rng, type RngState } from "./random.ts";
import { assertPositive, assertPositiveInteger } from "./checks.ts";

/** What to train: an EVD operator with one model, or an SVD/CDK operator with f and g. */
export type TrainProblem =
  | { operator: EigenOperator; model: Model }
  | { operator: SingularOperator | DependenceOperator; f: Model; g: Model };

/** Settings of a training run. */
export interface TrainOptions {
  /** Total steps (the cosine schedule decays over them). */
  steps: number;
  /** Batch size, or `population` for the whole (finite) domain each step. */
  batchSize: number | "population";
  /** y-batch size for SVD operators; default `batchSize`. */
  yBatchSize?: number;
  /** `joint` (default), `sequential` or `none`. */
  nesting?: string;
  /** Joint-nesting weights; default 1/L each. */
  weights?: number[];
  /** Sequential nesting's over-deflation δ ≥ 1 (see `NestingMaskOptions.deflation`); default 1. */
  deflation?: number;
  /** EVD Gram estimator; default `split` (unbiased), forced to `full` on population batches. */
  estimator?: GramEstimator;
  /** Optimiser name or settings; default Adam. */
  optimizer?: string | OptimizerOptions;
  /** Base learning rate; default 1e-3. */
  lr?: number;
  /** `cosine` (default) or `constant`. */
  schedule?: string;
  /** Linear warm-up steps; default 0. */
  warmupSteps?: number;
  /** Parameter EMA decay (e.g. 0.995); default off. Evaluation and the final weights use the EMA. */
  ema?: number;
  /** Clip the global gradient norm to this value; default off. */
  clipNorm?: number;
  /** Seed of the run's generator (sampling and batch draws); default 0. Ignored when `rng` is set. */
  seed?: number;
  /** The run's generator, shared with model initialisation for a single seeded stream. */
  rng?: Rng;
  /** Call `onEvaluate` every this many steps (and after the last); default never. */
  evaluateEvery?: number;
  /** Evaluation hook; runs with the EMA weights loaded when EMA is on. */
  onEvaluate?: (step: number) => void | Promise<void>;
  /** Called after every step with its record. */
  onStep?: (record: TrainRecord) => void | Promise<void>;
  /** Write a CSV log (step, loss, lr, grad_norm, seconds, norm_1..norm_L) to this path. */
  csvPath?: string;
  /** Append to an existing CSV log (resuming a run) instead of starting it anew; default false. */
  csvAppend?: boolean;
  /** Print progress with an ETA to standard error; default false. */
  progress?: boolean;
  /** Computes each step's gradients elsewhere (e.g. data-parallel Workers); default in-process. */
  gradientSource?: GradientSource;
  /**
   * θ-gradients from the models' own reverse pass, kept by the evaluation the loss needs anyway,
   * where there is one (an EVD operator's {@linkcode EigenOperator.evaluateWithPullback} with a
   * model that has `reversePass`; the dependence kernel's f and g with `reversePass`); false:
   * tfjs's tape through a second evaluation. Default true, except on a GPU (WebGPU), where the
   * tape's batched layout stays until the own pass is timed there.
   */
  modelReversePass?: boolean;
  /** Re-initialise dead modes during training (disjoint models); default off. */
  revive?: ReviveOptions;
  /** Move the operator's shift during training (operators with `setShift`); default off. */
  shiftSchedule?: ShiftSchedule;
}

/**
 * A shift schedule for T = A + s·I: s stays at `from` until the fraction `start` of the steps, moves
 * linearly to `to` by the fraction `end`, and stays there. A large shift early keeps modes alive
 * while they find their states (the deflated operator stays positive); a small one late widens the
 * relative gaps λ_l/λ_{l+1} that set the convergence rate of the last modes. (On 2-D hydrogen this
 * gave no consistent gain: README, "what mattered".)
 */
export interface ShiftSchedule {
  /** Shift before `start`. */
  from: number;
  /** Shift after `end` (and at evaluation after the run). */
  to: number;
  /** Fraction of the steps where the change begins, in [0, 1]. */
  start: number;
  /** Fraction of the steps where it ends, in [start, 1]. */
  end: number;
}

/**
 * The shift at (0-based) step `step` of a run of `schedule.totalSteps` steps.
 *
 * @example
 * ```ts
 * import { scheduledShift } from "./train.ts";
 * const schedule = { from: 20, to: 2, start: 0.5, end: 1, totalSteps: 100 };
 * console.log(scheduledShift(50, schedule), scheduledShift(75, schedule)); // 20 11
 * ```
 */
export function scheduledShift(
  step: number,
  schedule: ShiftSchedule & { totalSteps: number },
): number {
  const t = step / Math.max(1, schedule.totalSteps);
  if (t <= schedule.start) return schedule.from;
  if (t >= schedule.end) return schedule.to;
  const u = (t - schedule.start) / (schedule.end - schedule.start);
  return schedule.from + (schedule.to - schedule.from) * u;
}

function validateShiftSchedule(schedule: ShiftSchedule, operator: TrainProblem["operator"]): void {
  if (operator.kind !== "evd" || !operator.setShift) {
    throw new RangeError(
      `Invalid shift schedule: the ${operator.kind} operator has no adjustable shift`,
    );
  }
  for (const key of ["from", "to"] as const) {
    if (!Number.isFinite(schedule[key])) {
      throw new RangeError(`Invalid shift schedule ${key} ${schedule[key]}: it must be finite`);
    }
  }
  const { start, end } = schedule;
  if (!(start >= 0 && start <= end && end <= 1)) {
    throw new RangeError(
      `Invalid shift schedule fractions ${start}, ${end}: they must satisfy 0 ≤ start ≤ end ≤ 1`,
    );
  }
}

/**
 * When to revive dead modes. At the optimum the norms E[f_l²] = λ_l do not increase with l, so a
 * mode whose norm is below `ratio` times a later mode's has collapsed (typically onto an earlier
 * mode's eigenfunction, where the deflated operator is ≈ 0 and nothing pulls it out). Every `every`
 * steps up to `until`·steps, such modes are re-drawn from the initial distribution, with their
 * optimiser and EMA state reset; the decision uses only the step's norms, so resumed runs repeat it.
 */
export interface ReviveOptions {
  /** Check every this many steps. */
  every: number;
  /** Last step to check, as a fraction of the run's steps; default 0.5. */
  until?: number;
  /** Norm ratio below which a mode counts as dead; default 0.1. */
  ratio?: number;
  /**
   * Also count the last mode as dead when its norm is below `ratio` times the previous mode's
   * (default false). No later mode can expose it, and where consecutive eigenvalues lie close (an
   * operator lifted by a shift, such as the hydrogen presets' T) a last mode that small has
   * collapsed rather than found a small eigenvalue.
   */
  last?: boolean;
  /**
   * What a dead mode is re-drawn from: `init` (default), its initial distribution; `previous`, the
   * previous mode's trained features with a fresh last layer (`ReinitializeOptions.featuresFrom`;
   * mode 1 is drawn from `init`).
   */
  from?: "init" | "previous";
}

/** Options of {@linkcode deadModes}. */
export interface DeadModesOptions {
  /** Norm ratio below which a mode counts as dead. */
  ratio: number;
  /** Also test the last mode against the previous one (see `ReviveOptions.last`). */
  last?: boolean;
}

/**
 * The modes whose norm is below `ratio` times the largest norm of a later mode (0-based), and with
 * `last`, the last mode when its norm is below `ratio` times the previous mode's.
 *
 * @example
 * ```ts
 * import { deadModes } from "./train.ts";
 * console.log(deadModes([9, 0.01, 5, 4], { ratio: 0.1 })); // [1]
 * console.log(deadModes([9, 5, 4, 0.01], { ratio: 0.1, last: true })); // [3]
 * ```
 */
export function deadModes(norms: ArrayLike<number>, options: DeadModesOptions): number[] {
  const { ratio } = options;
  const dead: number[] = [];
  const L = norms.length;
  if (options.last && L > 1 && norms[L - 1] < ratio * norms[L - 2]) dead.push(L - 1);
  let laterMax = -Infinity;
  for (let l = L - 1; l >= 0; l--) {
    if (norms[l] < ratio * laterMax) dead.push(l);
    laterMax = Math.max(laterMax, norms[l]);
  }
  return dead.reverse();
}

/** Gradients of one batch: θ-gradients aligned with the trainer's variables, loss and norms. */
export interface BatchGradients {
  /** θ-gradients, one per variable. */
  grads: Tensor[];
  /** Loss monitor. */
  loss: Scalar;
  /** Per-mode norm estimates. */
  norms: Tensor1D;
}

/**
 * Gradients of one batch from a {@linkcode GradientSource}: the monitors already on the host, the
 * θ-gradient tensors made on demand (after the replicas were told the update, so that their
 * optimiser step overlaps the making of these tensors here).
 */
export interface SourceGradients {
  /** Loss monitor. */
  loss: number;
  /** Global L2 norm of the θ-gradients. */
  gradNorm: number;
  /** Per-mode norm estimates. */
  norms: number[];
  /** Makes the θ-gradients, one per variable, which the caller disposes; call it at most once. */
  tensors(): Tensor[];
}

/**
 * The next step's batch, handed to a {@linkcode GradientSource} with an update when it
 * {@linkcode GradientSource.prefetches}.
 */
export interface NextBatch {
  /** The batch the trainer will pass to `gradients` next (unless it has to draw another). */
  batch: OperatorBatch;
  /** The eigen operator's shift at that step, when a shift schedule sets it. */
  shift?: number;
}

/**
 * A replacement for the trainer's in-process gradient computation: `gradients` returns the
 * (averaged) gradients of a batch; `applying` is told the update before the trainer applies it,
 * so replicas elsewhere make the same one meanwhile.
 */
export interface GradientSource {
  /** Gradients of `batch` for `trainer`'s variables. */
  gradients(trainer: Trainer, batch: OperatorBatch): Promise<SourceGradients>;
  /**
   * Called when the trainer is about to apply the gradients ·`scale` with learning rate `lr`
   * (not on a step that diverged), before it makes their tensors.
   */
  applying(update: { lr: number; scale: number }, next?: NextBatch): Promise<void> | void;
  /** Called after the trainer changed its variables or optimiser state outside a step. */
  resync?(trainer: Trainer): Promise<void> | void;
  /**
   * Whether `gradients` reads only the batch's points (`batch.x`): the trainer then draws them with
   * the operator's `samplePoints` where it has one, without preparing the batch's data.
   */
  readonly pointsOnly?: boolean;
  /**
   * Whether `applying` wants the next step's batch (`next`), to start on it at once. The trainer
   * draws it ahead with a copy of its generator's state, and uses it next step only if nothing
   * else drew from the generator meanwhile (otherwise it draws again and passes the new batch);
   * it hands none over on a run's last step or a step that may revive modes. The run's numbers
   * are the same either way.
   */
  readonly prefetches?: boolean;
}

/** One training step's numbers. */
export interface TrainRecord {
  /** 1-based step index. */
  step: number;
  /** Loss monitor of the batch. */
  loss: number;
  /** Learning rate used. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Per-mode norm estimates (EVD: E[f_l²] ≈ λ_l; SVD: ‖f_l‖‖g_l‖ ≈ σ_l). */
  norms: number[];
  /** Seconds since the run started. */
  seconds: number;
  /** Modes (0-based) re-initialised after this step, when any were (see `TrainOptions.revive`). */
  revived?: number[];
}

/** Summary of a finished run. */
export interface TrainResult {
  /** Steps completed. */
  steps: number;
  /** Wall-clock seconds. */
  seconds: number;
  /** The last record. */
  last: TrainRecord;
  /** All records, in order. */
  history: TrainRecord[];
}

/** A run's counters that a checkpoint saves and restores (see {@linkcode Trainer.getProgress}). */
export interface TrainerProgress {
  /** Steps completed. */
  step: number;
  /** Seconds spent stepping (the `seconds` of the records). */
  elapsedSeconds: number;
  /** The record of step `step`, when known. */
  last?: TrainRecord | null;
}

/**
 * Thrown when the loss or gradient becomes NaN or infinite; the parameters keep their last good
 * values.
 *
 * @example SGD with a far too large learning rate diverges at step 3 (step 2's parameters kept)
 * ```ts
 * import {
 *   initBackend,
 *   Rng,
 *   SymmetricMatrixOperator,
 *   TabularModel,
 *   train,
 *   TrainingDivergedError,
 * } from "../mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[3, 0, 0], [0, 2, 0], [0, 0, 1]]);
 * const model = new TabularModel({ size: 3, outputs: 2, rng: new Rng(0) });
 * const options = { steps: 50, batchSize: "population" as const, optimizer: "sgd", lr: 100 };
 * let error: TrainingDivergedError | undefined;
 * try {
 *   await train({ operator: op, model }, options);
 * } catch (e) {
 *   if (!(e instanceof TrainingDivergedError)) throw e;
 *   error = e;
 * }
 * console.log(error?.step); // 3
 * model.dispose();
 * ```
 */
export class TrainingDivergedError extends Error {
  /** The step at which the non-finite value appeared (its update was not applied). */
  readonly step: number;
  /** Creates the error. */
  constructor(step: number, what: string) {
    super(
      `Training diverged at step ${step}: the ${what} is not finite; parameters from step ${
        step - 1
      } are kept`,
    );
    this.name = "TrainingDivergedError";
    this.step = step;
  }
}

function validateRevive(revive: ReviveOptions, model: Model, models: number): void {
  assertPositiveInteger(revive.every, "revive interval");
  const until = revive.until ?? 0.5, ratio = revive.ratio ?? 0.1;
  if (!(until > 0 && until <= 1)) {
    throw new RangeError(`Invalid revive until ${until}: it must be in (0, 1]`);
  }
  if (!(ratio > 0 && ratio < 1)) {
    throw new RangeError(`Invalid revive ratio ${ratio}: it must be in (0, 1)`);
  }
  if (revive.from !== undefined && revive.from !== "init" && revive.from !== "previous") {
    throw new RangeError(
      `Invalid revive source "${revive.from}": allowed values are init, previous`,
    );
  }
  if (models !== 1 || !model.reinitializeOutput) {
    throw new RangeError(
      `Cannot revive modes of a ${model.kind} model: it needs one model whose outputs own their ` +
        "parameters (disjoint networks)",
    );
  }
}

/**
 * A NestedLoRA training run that can be stepped by hand or run to the end.
 *
 * @example Top-2 eigenvalues of a 3×3 matrix
 * ```ts
 * import { initBackend, Rng, SymmetricMatrixOperator, TabularModel, Trainer } from "../mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[3, 0, 0], [0, 2, 0], [0, 0, 1]]);
 * const model = new TabularModel({ size: 3, outputs: 2, rng: new Rng(1) });
 * const trainer = new Trainer({ operator: op, model }, {
 *   steps: 2000, batchSize: "population", nesting: "sequential", lr: 0.02,
 * });
 * const { last } = await trainer.run();
 * console.log(last.norms.map((x) => x.toFixed(2))); // ["3.00", "2.00"]
 * trainer.dispose();
 * model.dispose();
 * ```
 */
export class Trainer {
  /** The problem being trained. */
  readonly problem: TrainProblem;
  /** Resolved options. */
  readonly options: TrainOptions;
  /** The loss (masks). */
  readonly loss: NestedLoraLoss;
  /** The optimiser. */
  readonly optimizer: Optimizer;
  /** Parameter EMA, if on. */
  readonly ema: ParameterEma | null;
  /** The run's generator. */
  readonly rng: Rng;
  /** All trainable variables (f's, then g's). */
  readonly variables: Variable[];
  /** Records of the steps taken. */
  readonly history: TrainRecord[] = [];
  #step = 0;
  #elapsed = 0;
  #csv: CsvLog | null = null;
  /**
   * The next step's batch, drawn ahead for a prefetching gradient source: the step it is for and
   * the generator's state before and after drawing it (the generator itself stays before).
   */
  #ahead: { step: number; batch: OperatorBatch; before: RngState; after: RngState } | null = null;
  #progress: ProgressReporter | null = null;

  /** Validates the settings and sets up optimiser, EMA and logs. */
  constructor(problem: TrainProblem, options: TrainOptions) {
    assertPositiveInteger(options.steps, "number of steps");
    if (options.batchSize !== "population") assertPositiveInteger(options.batchSize, "batch size");
    if (options.yBatchSize !== undefined) assertPositiveInteger(options.yBatchSize, "y-batch size");
    parseSchedule(options.schedule ?? "cosine");
    const lr = options.lr ?? 1e-3;
    if (!(lr > 0) || !Number.isFinite(lr)) {
      throw new RangeError(`Invalid learning rate ${lr}: it must be a positive number`);
    }
    if (options.clipNorm !== undefined) assertPositive(options.clipNorm, "clipNorm");
    this.problem = problem;
    this.options = options;
    const models = "model" in problem ? [problem.model] : [problem.f, problem.g];
    const modes = models[0].outputDim;
    if (models.some((m) => m.outputDim !== modes)) {
      throw new RangeError(
        `Mismatched models: f has ${modes} outputs, g has ${models[1].outputDim}`,
      );
    }
    const estimator = options.batchSize === "population" ? "full" : (options.estimator ?? "split");
    if (
      problem.operator.kind === "evd" && estimator === "split" &&
      typeof options.batchSize === "number" && options.batchSize % 2 !== 0
    ) {
      throw new RangeError(
        `Invalid batch size ${options.batchSize}: split-half Gram estimates need an even batch size`,
      );
    }
    if (options.batchSize === "population" && !problem.operator.kind.match(/evd|svd/)) {
      throw new RangeError(
        "Invalid batch size population: only finite EVD and SVD operators have one",
      );
    }
    this.loss = new NestedLoraLoss({
      modes,
      nesting: options.nesting ?? "joint",
      weights: options.weights,
      deflation: options.deflation,
      estimator,
    });
    this.variables = models.flatMap((m) => m.variables);
    const opt = typeof options.optimizer === "string"
      ? { name: options.optimizer }
      : (options.optimizer ?? { name: "adam" });
    this.optimizer = createOptimizer(this.variables, opt);
    if (options.revive) validateRevive(options.revive, models[0], models.length);
    if (options.shiftSchedule) validateShiftSchedule(options.shiftSchedule, problem.operator);
    this.ema = options.ema ? new ParameterEma(this.variables, options.ema) : null;
    this.rng = options.rng ?? new Rng(options.seed ?? 0);
    if (options.csvPath) {
      this.#csv = new CsvLog(options.csvPath, [
        "step",
        "loss",
        "lr",
        "grad_norm",
        "seconds",
        ...Array.from({ length: modes }, (_, l) => `norm_${l + 1}`),
      ], { append: options.csvAppend === true });
    }
  }

  /** Routes gradient computation through `source` (e.g. a Worker pool); undefined restores the default. */
  useGradientSource(source: GradientSource | undefined): void {
    this.#dropAhead();
    this.options.gradientSource = source;
  }

  /** Draws the batch of step `step` (0-based) ahead, leaving the generator where it was. */
  #drawAhead(step: number): NextBatch | undefined {
    this.#dropAhead();
    // `step` is also the 1-based number of the step now ending: a revival after it would change
    // the weights and draw from the generator, and the batch handed over would be drawn again.
    if (step >= this.options.steps || this.#mayRevive(step)) return undefined;
    const before = this.rng.getState();
    const batch = this.#batch();
    const after = this.rng.getState();
    this.rng.setState(before);
    this.#ahead = { step, batch, before, after };
    return { batch, shift: this.#scheduledShift(step) };
  }

  /** The batch drawn ahead for this step when the generator has not moved since; else null. */
  #takeAhead(): OperatorBatch | null {
    const ahead = this.#ahead;
    this.#ahead = null;
    if (!ahead) return null;
    const now = this.rng.getState();
    if (
      ahead.step === this.#step && now.spare === ahead.before.spare &&
      now.words.every((w, i) => w === ahead.before.words[i])
    ) {
      this.rng.setState(ahead.after);
      return ahead.batch;
    }
    disposeBatch(ahead.batch);
    return null;
  }

  #dropAhead(): void {
    if (this.#ahead) disposeBatch(this.#ahead.batch);
    this.#ahead = null;
  }

  /** Steps completed so far. */
  get stepCount(): number {
    return this.#step;
  }

  /** The run's counters, for checkpoints: steps completed, seconds spent, the last record. */
  getProgress(): TrainerProgress {
    const last = this.history[this.history.length - 1];
    return {
      step: this.#step,
      elapsedSeconds: this.#elapsed,
      last: last ? { ...last, norms: [...last.norms] } : null,
    };
  }

  /**
   * Restores counters saved by {@linkcode Trainer.getProgress} when resuming from a checkpoint: the
   * learning-rate schedule, {@linkcode Trainer.run} and the records' times continue from them.
   * `history` restarts with the restored last record (when given, and of step `step`); the records
   * before it are not kept in memory (the CSV log of the first run has them).
   */
  restoreProgress(progress: TrainerProgress): void {
    const { step, elapsedSeconds, last } = progress;
    if (!Number.isInteger(step) || step < 0) {
      throw new RangeError(`Invalid step ${step}: it must be a non-negative integer`);
    }
    if (!Number.isFinite(elapsedSeconds) || elapsedSeconds < 0) {
      throw new RangeError(
        `Invalid elapsed time ${elapsedSeconds}: it must be a non-negative number of seconds`,
      );
    }
    this.#dropAhead();
    this.#step = step;
    this.#elapsed = elapsedSeconds;
    this.history.length = 0;
    if (last && last.step === step) this.history.push({ ...last, norms: [...last.norms] });
  }

  #batch(): OperatorBatch {
    const op = this.problem.operator;
    const { batchSize, yBatchSize } = this.options;
    if (batchSize === "population") {
      if (op.kind === "cdk" || !op.populationBatch) {
        throw new RangeError("Invalid batch size population: this operator has no finite domain");
      }
      return op.populationBatch();
    }
    if (op.kind === "svd") return op.sample(this.rng, batchSize, { yBatchSize });
    if (this.options.gradientSource?.pointsOnly && op.kind === "evd" && op.samplePoints) {
      const x = op.samplePoints(this.rng, batchSize);
      return { x: tf.tensor2d(x, [batchSize, x.length / batchSize]) };
    }
    return op.sample(this.rng, batchSize);
  }

  /** The output gradients, loss and norms of one batch; tensors owned by the caller. */
  #outputGradients(batch: OperatorBatch) {
    const p = this.problem;
    return tf.tidy(() => {
      if ("model" in p) {
        const { f, tf: tf_ } = p.operator.evaluate(p.model, batch);
        const r = this.loss.evd(f, tf_);
        return { grads: [r.grad], loss: r.loss, norms: r.norms };
      }
      if (p.operator.kind === "svd") {
        const e = p.operator.evaluate(p, batch);
        const r = this.loss.svd(e);
        return { grads: [r.gradF, r.gradG], loss: r.loss, norms: r.norms };
      }
      const r = this.loss.cdk(p.f.apply(batch.x), p.g.apply(batch.y!));
      return { grads: [r.gradF, r.gradG], loss: r.loss, norms: r.norms };
    });
  }

  /**
   * θ-gradients of one batch (aligned with {@linkcode Trainer.variables}), with the loss monitor and
   * per-mode norms: the output gradient G is formed outside the tape, then injected as Jᵀ G.
   * The caller owns (and disposes) every returned tensor; the batch is not disposed.
   */
  computeGradients(batch: OperatorBatch): BatchGradients {
    const p = this.problem;
    if (this.options.modelReversePass ?? !prefersBatchedKernels()) {
      const pulled = this.#pulledGradients(batch);
      if (pulled) return pulled;
    }
    const out = this.#outputGradients(batch);
    const { value, grads } = tf.variableGrads(() => {
      if ("model" in p) {
        const f = p.operator.trainedOutput
          ? p.operator.trainedOutput(p.model, batch)
          : p.model.apply(batch.x);
        return tf.sum(tf.mul(f, out.grads[0])) as Scalar;
      }
      return tf.add(
        tf.sum(tf.mul(p.f.apply(batch.x), out.grads[0])),
        tf.sum(tf.mul(p.g.apply(batch.y!), out.grads[1])),
      ) as Scalar;
    }, this.variables);
    tf.dispose([value, ...out.grads]);
    return { grads: this.variables.map((v) => grads[v.name]), loss: out.loss, norms: out.norms };
  }

  /**
   * {@linkcode Trainer.computeGradients} through the models' own reverse pass, where the problem
   * has one: an EVD operator with `evaluateWithPullback` and a model with `reversePass`, or the
   * dependence kernel's two models with `reversePass`. Null elsewhere.
   */
  #pulledGradients(batch: OperatorBatch): BatchGradients | null {
    const p = this.problem;
    if ("model" in p) {
      if (!p.model.reversePass || !p.operator.evaluateWithPullback) return null;
      const e = p.operator.evaluateWithPullback(p.model, batch);
      if (!e) return null;
      try {
        return tf.tidy(() => {
          const r = this.loss.evd(e.f, e.tf);
          return { grads: e.pullback.gradients(r.grad), loss: r.loss, norms: r.norms };
        });
      } finally {
        tf.dispose([e.f, e.tf]);
        e.pullback.dispose();
      }
    }
    if (p.operator.kind !== "cdk" || !p.f.reversePass || !p.g.reversePass) return null;
    const f = p.f.applyWithPullback!(batch.x as Tensor2D);
    let g: ReturnType<NonNullable<Model["applyWithPullback"]>> | undefined;
    try {
      g = p.g.applyWithPullback!(batch.y as Tensor2D);
      return tf.tidy(() => {
        const r = this.loss.cdk(f.value, g!.value);
        return {
          grads: [...f.pullback.gradients(r.gradF), ...g!.pullback.gradients(r.gradG)],
          loss: r.loss,
          norms: r.norms,
        };
      });
    } finally {
      tf.dispose([f.value, ...(g ? [g.value] : [])]);
      f.pullback.dispose();
      g?.pullback.dispose();
    }
  }

  /**
   * Re-draws the given outputs (0-based) of a disjoint model from their initial distribution with
   * the run's generator, and resets their optimiser and EMA state (see `TrainOptions.revive`).
   */
  async reviveOutputs(modes: number[]): Promise<void> {
    const model = "model" in this.problem ? this.problem.model : null;
    if (!model?.reinitializeOutput) {
      throw new RangeError(
        "Cannot revive modes: it needs one model whose outputs own their parameters (disjoint)",
      );
    }
    this.#dropAhead();
    const previous = this.options.revive?.from === "previous";
    for (const mode of modes) {
      const featuresFrom = previous && mode > 0 ? mode - 1 : undefined;
      const masks = model.reinitializeOutput(mode, this.rng, { featuresFrom });
      resetOptimizerEntries(this.optimizer, masks);
      this.ema?.resetEntries(masks);
      tf.dispose(masks.filter((m): m is Tensor => m !== null));
    }
    await this.options.gradientSource?.resync?.(this);
  }

  /** Takes one step; throws {@linkcode TrainingDivergedError} without updating on NaN/Inf. */
  async step(): Promise<TrainRecord> {
    const t0 = performance.now();
    const lr = this.#beginStep(this.#step);
    const batch = this.#takeAhead() ?? this.#batch();
    const source = this.options.gradientSource;
    let values: Float32Array;
    // The gradient tensors, or (from a source) the function that makes them.
    let grads: Tensor[] | (() => Tensor[]);
    if (source) {
      const g = await source.gradients(this, batch);
      disposeBatch(batch);
      values = Float32Array.of(g.loss, g.gradNorm, ...g.norms);
      grads = () => g.tensors();
    } else {
      const g = this.computeGradients(batch);
      disposeBatch(batch);
      const stats = tf.tidy(() => tf.concat([tf.stack([g.loss, globalNorm(g.grads)]), g.norms]));
      values = (await stats.data()) as Float32Array;
      tf.dispose([stats, g.loss, g.norms]);
      grads = g.grads;
    }
    const loss = values[0], gradNorm = values[1];
    const stepNo = this.#step + 1;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      if (Array.isArray(grads)) tf.dispose(grads);
      throw new TrainingDivergedError(stepNo, Number.isFinite(loss) ? "gradient" : "loss");
    }
    const clip = this.options.clipNorm;
    const scale = clip !== undefined && gradNorm > clip ? clip / gradNorm : 1;
    // Replicas get the update first, so that their optimiser step overlaps this one, and with it
    // the next batch when they take it, to start on it meanwhile.
    if (source) {
      await source.applying({ lr, scale }, source.prefetches ? this.#drawAhead(stepNo) : undefined);
    }
    const gradList = Array.isArray(grads) ? grads : grads();
    if (scale !== 1) {
      const scaled = tf.tidy(() => gradList.map((g) => tf.mul(g, scale)));
      this.optimizer.step(scaled, lr);
      tf.dispose(scaled);
    } else {
      this.optimizer.step(gradList, lr);
    }
    tf.dispose(gradList);
    this.ema?.update();
    this.#step = stepNo;
    this.#elapsed += (performance.now() - t0) / 1000;
    return await this.#finishStep(values, lr);
  }

  /**
   * Takes up to `count` steps with one read-back of their losses and norms, and returns their
   * records. A read-back from a GPU waits at least ~10 ms under Deno 2.9 (as if its WebGPU polled
   * the device every 10 ms), which a step of a few milliseconds cannot afford each time; so here the finite
   * check and the gradient clipping run on the device: a step with a non-finite loss or gradient
   * leaves parameters and optimiser state as they were, and so do the later steps of the block,
   * then {@linkcode TrainingDivergedError} names it (the steps before it are recorded). A block
   * ends early at a revive step, which needs its norms on the host. With a gradient source
   * (Worker replicas) it takes the steps one by one.
   *
   * @example Ten steps, one read-back
   * ```ts ignore
   * const records = await trainer.steps(10);
   * console.log(records.length, records[9].loss);
   * ```
   */
  async steps(count: number): Promise<TrainRecord[]> {
    assertPositiveInteger(count, "number of steps per block");
    const revive = this.options.revive;
    if (revive) count = Math.min(count, revive.every - (this.#step % revive.every));
    if (count === 1 || this.options.gradientSource) {
      const records: TrainRecord[] = [];
      for (let i = 0; i < count; i++) records.push(await this.step());
      return records;
    }
    const t0 = performance.now();
    const pending: { stats: Tensor; lr: number }[] = [];
    let ok: Tensor = tf.scalar(true, "bool");
    try {
      for (let i = 0; i < count; i++) {
        const lr = this.#beginStep(this.#step + i);
        const batch = this.#batch();
        const { grads, loss, norms } = this.computeGradients(batch);
        disposeBatch(batch);
        const stats = tf.tidy(() => tf.concat([tf.stack([loss, globalNorm(grads)]), norms]));
        pending.push({ stats, lr });
        const next = tf.tidy(() => tf.logicalAnd(ok, tf.all(tf.isFinite(tf.slice(stats, 0, 2)))));
        ok.dispose();
        ok = next;
        const clip = this.options.clipNorm;
        const scaled = clip === undefined ? grads : tf.tidy(() => {
          const norm = tf.reshape(tf.slice(stats, 1, 1), []);
          const scale = tf.where(tf.greater(norm, clip), tf.div(clip, norm), tf.onesLike(norm));
          return grads.map((g) => tf.mul(g, scale));
        });
        this.optimizer.step(scaled, lr, { guard: ok });
        tf.dispose([loss, norms, ...grads, ...(scaled === grads ? [] : scaled)]);
        this.ema?.update();
      }
    } catch (e) {
      tf.dispose(pending.map((p) => p.stats));
      throw e;
    } finally {
      ok.dispose();
    }
    const all = tf.concat(pending.map((p) => p.stats));
    const values = await all.data();
    tf.dispose([all, ...pending.map((p) => p.stats)]);
    const width = values.length / count;
    const seconds = (performance.now() - t0) / 1000 / count;
    const records: TrainRecord[] = [];
    for (let i = 0; i < count; i++) {
      const v = values.subarray(i * width, (i + 1) * width);
      if (!Number.isFinite(v[0]) || !Number.isFinite(v[1])) {
        throw new TrainingDivergedError(
          this.#step + 1,
          Number.isFinite(v[0]) ? "gradient" : "loss",
        );
      }
      this.#step += 1;
      this.#elapsed += seconds;
      records.push(await this.#finishStep(v, pending[i].lr));
    }
    return records;
  }

  /** Learning rate of the (0-based) step `step`, with the shift schedule set for it. */
  #beginStep(step: number): number {
    this.applyShiftSchedule(step);
    return learningRate(step, {
      schedule: this.options.schedule ?? "cosine",
      lr: this.options.lr ?? 1e-3,
      totalSteps: this.options.steps,
      warmupSteps: this.options.warmupSteps,
    });
  }

  /**
   * The record of the step just counted, from its read-back [loss, gradient norm, mode norms…]:
   * revives dead modes when due, then logs it.
   */
  async #finishStep(
    values: Float32Array | Int32Array | Uint8Array,
    lr: number,
  ): Promise<TrainRecord> {
    const stepNo = this.#step;
    const modeNorms = Array.from(values.subarray(2));
    const revive = this.options.revive;
    const revived = revive && this.#mayRevive(stepNo)
      ? deadModes(modeNorms, { ratio: revive.ratio ?? 0.1, last: revive.last })
      : [];
    if (revived.length > 0) await this.reviveOutputs(revived);
    const record: TrainRecord = {
      step: stepNo,
      loss: values[0],
      lr,
      gradNorm: values[1],
      norms: modeNorms,
      seconds: this.#elapsed,
    };
    if (revived.length > 0) record.revived = revived;
    this.history.push(record);
    this.#csv?.append([
      record.step,
      record.loss,
      record.lr,
      record.gradNorm,
      Number(record.seconds.toFixed(4)),
      ...record.norms,
    ]);
    await this.options.onStep?.(record);
    return record;
  }

  /**
   * Sets the operator's shift to the schedule's value at (0-based) `step`, by default the steps
   * completed (the value evaluation uses); without a shift schedule it does nothing.
   */
  applyShiftSchedule(step: number = this.#step): void {
    const shift = this.#scheduledShift(step);
    const op = this.problem.operator;
    if (shift !== undefined && op.kind === "evd") op.setShift?.(shift);
  }

  /** The shift the schedule sets at `step`, or undefined without one. */
  #scheduledShift(step: number): number | undefined {
    const schedule = this.options.shiftSchedule;
    if (!schedule || this.problem.operator.kind !== "evd") return undefined;
    return scheduledShift(step, { ...schedule, totalSteps: this.options.steps });
  }

  /** Whether modes may be revived after completing step `stepNo` (1-based). */
  #mayRevive(stepNo: number): boolean {
    const revive = this.options.revive;
    return revive !== undefined && stepNo % revive.every === 0 &&
      stepNo <= (revive.until ?? 0.5) * this.options.steps;
  }

  /** Runs `fn` with the evaluation weights (EMA if on) and the current scheduled shift loaded. */
  async withEvaluationWeights<T>(fn: () => T | Promise<T>): Promise<T> {
    this.applyShiftSchedule();
    return this.ema ? await this.ema.withAveraged(fn) : await fn();
  }

  /** Runs the remaining steps, evaluating and reporting as configured; loads EMA weights at the end. */
  async run(): Promise<TrainResult> {
    const { steps, evaluateEvery, onEvaluate } = this.options;
    if (this.options.progress) {
      this.#progress = new ProgressReporter({ total: steps });
    }
    try {
      while (this.#step < steps) {
        const untilEval = evaluateEvery ? evaluateEvery - (this.#step % evaluateEvery) : Infinity;
        const records = await this.steps(
          Math.min(stepsPerReadback(), steps - this.#step, untilEval),
        );
        const rec = records[records.length - 1];
        this.#progress?.update(rec.step, {
          loss: rec.loss.toExponential(4),
          lr: rec.lr.toExponential(2),
        });
        const evalNow = evaluateEvery && (rec.step % evaluateEvery === 0 || rec.step === steps);
        if (evalNow && onEvaluate) await this.withEvaluationWeights(() => onEvaluate(rec.step));
      }
    } finally {
      this.#progress?.done();
    }
    this.ema?.copyToVariables();
    return {
      steps: this.#step,
      seconds: this.#elapsed,
      last: this.history[this.history.length - 1],
      history: this.history,
    };
  }

  /** Frees optimiser state and EMA shadows (not the models). */
  dispose(): void {
    this.#dropAhead();
    this.optimizer.dispose();
    this.ema?.dispose();
  }
}

/**
 * Trains to the end: `new Trainer(problem, options).run()`, disposing the trainer's state after.
 *
 * @example Top-2 eigenvalues of a 3×3 matrix in 300 population steps
 * ```ts
 * import { initBackend, Rng, SymmetricMatrixOperator, TabularModel, train } from "../mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[3, 0, 0], [0, 2, 0], [0, 0, 1]]);
 * const model = new TabularModel({ size: 3, outputs: 2, rng: new Rng(0) });
 * const { last } = await train({ operator: op, model }, {
 *   steps: 300, batchSize: "population", nesting: "sequential", lr: 0.05,
 * });
 * console.log(last.norms.map((x) => x.toFixed(2))); // [ "3.00", "2.00" ]
 * model.dispose();
 * ```
 */
export async function train(problem: TrainProblem, options: TrainOptions): Promise<TrainResult> {
  const trainer = new Trainer(problem, options);
  try {
    return await trainer.run();
  } finally {
    trainer.dispose();
  }
}
