/**
 * Optimisers with PyTorch semantics (RMSprop, Adam, SGD with momentum), learning-rate schedules,
 * parameter EMA and gradient-norm clipping, acting on a fixed list of tfjs variables.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Scalar, Tensor, Variable } from "./types.ts";
import { fusedElementwise, fusedElementwiseAvailable } from "./webgpu_kernels.ts";
import { prefersBatchedKernels } from "./kernel_layout.ts";
import { simdAdam, simdEma, simdRmsprop, simdSumOfSquares } from "./wasm_kernels.ts";
import { parseChoice } from "./checks.ts";

/** The optimisers the toolkit provides. */
export const OPTIMIZER_NAMES = ["rmsprop", "adam", "sgd"] as const;

/** Name of an optimiser. */
export type OptimizerName = typeof OPTIMIZER_NAMES[number];

/** Optimiser settings. */
export interface OptimizerOptions {
  /** `rmsprop`, `adam` or `sgd`. */
  name: string;
  /** RMSprop smoothing α (default 0.99, PyTorch's). */
  alpha?: number;
  /** Adam β₁ (default 0.9). */
  beta1?: number;
  /** Adam β₂ (default 0.999). */
  beta2?: number;
  /** Added outside the square root (default 1e-8; the NeuralSVD reference's RMSprop uses 1e-10). */
  epsilon?: number;
  /** SGD momentum μ (default 0.9). */
  momentum?: number;
}

/**
 * Throws unless `name` is a known optimiser.
 *
 * @example A known name passes through, an unknown one throws
 * ```ts
 * import { parseOptimizerName } from "../mod.ts";
 * console.log(parseOptimizerName("adam")); // adam
 * let message = "";
 * try {
 *   parseOptimizerName("lbfgs");
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * console.log(message); // Unknown optimizer "lbfgs": allowed values are rmsprop, adam, sgd
 * ```
 */
export function parseOptimizerName(name: string): OptimizerName {
  return parseChoice(name, { what: "optimizer", allowed: OPTIMIZER_NAMES });
}

/** An optimiser over a fixed list of variables. */
export interface Optimizer {
  /** Its name. */
  readonly name: OptimizerName;
  /**
   * Applies one update θ ← θ − lr·direction(g); `grads` align with the variables. With a `guard`
   * (a boolean scalar tensor) the update and the state change apply only where it is true, decided
   * on the device: a false guard leaves parameters and state as they were, even for NaN gradients.
   */
  step(grads: Tensor[], lr: number, options?: { guard?: Tensor }): void;
  /** Number of updates applied so far. */
  readonly iterations: number;
  /**
   * The state tensors (slots), for checkpoints; same order on every call: groups of one slot per
   * variable, each group in variable order (Adam: first moments, then second moments).
   */
  stateTensors(): Variable[];
  /** Sets the iteration counter (restoring a checkpoint). */
  setIterations(n: number): void;
  /** Frees the state. */
  dispose(): void;
}

function slots(vars: Variable[]): Variable[] {
  return vars.map((v) => tf.variable(tf.zerosLike(v), false));
}

/** Assigns `value` to `x`, or keeps `x` where the guard (a boolean scalar) is false. */
function guardedAssign(x: Variable, value: Tensor, guard: Tensor | undefined): void {
  x.assign(guard ? tf.where(guard, value, x) : value);
}

/**
 * Creates an optimiser. RMSprop: v ← αv + (1−α)g², θ −= lr·g/(√v + ε). Adam: bias-corrected moments,
 * θ −= lr·m̂/(√v̂ + ε). SGD: b ← μb + g, θ −= lr·b.
 *
 * @example
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { createOptimizer } from "./optimizers.ts";
 * const x = tf.variable(tf.scalar(1));
 * const opt = createOptimizer([x], { name: "sgd", momentum: 0 });
 * opt.step([tf.scalar(2)], 0.1);
 * console.log(x.dataSync()[0].toFixed(6)); // 0.800000 (1 − 0.1·2)
 * ```
 */
export function createOptimizer(vars: Variable[], options: OptimizerOptions): Optimizer {
  const name = parseOptimizerName(options.name);
  const eps = options.epsilon ?? 1e-8;
  let t = 0;
  const check = (grads: Tensor[]) => {
    if (grads.length !== vars.length) {
      throw new RangeError(`Mismatched gradients: ${grads.length} for ${vars.length} variables`);
    }
  };
  if (name === "rmsprop") {
    const alpha = options.alpha ?? 0.99;
    const v = slots(vars);
    return {
      name,
      get iterations() {
        return t;
      },
      step(grads, lr, options) {
        check(grads);
        const guard = options?.guard;
        if (fusedElementwiseAvailable()) {
          // One kernel per tensor on a GPU (both read the old v; see fusedElementwise).
          vars.forEach((p, i) => {
            const vNext = "s1 * x2 + (1.0 - s1) * x1 * x1";
            const pi = fusedElementwise(`select(x0, x0 - s0 * x1 / (sqrt(${vNext}) + s2), guard)`, [
              p,
              grads[i],
              v[i],
            ], { scalars: [lr, alpha, eps], guard });
            const vi = fusedElementwise("select(x1, s0 * x1 + (1.0 - s0) * x0 * x0, guard)", [
              grads[i],
              v[i],
            ], { scalars: [alpha], guard });
            p.assign(pi);
            v[i].assign(vi);
            tf.dispose([pi, vi]);
          });
          t++;
          return;
        }
        tf.tidy(() => {
          vars.forEach((p, i) => {
            const g = grads[i];
            const fused = guard ? undefined : simdRmsprop({ p, g, v: v[i] }, {
              lr,
              alpha,
              epsilon: eps,
            });
            if (fused) {
              p.assign(fused[0]);
              v[i].assign(fused[1]);
              return;
            }
            const vi = tf.add(tf.mul(v[i], alpha), tf.mul(tf.square(g), 1 - alpha));
            guardedAssign(p, tf.sub(p, tf.mul(tf.div(g, tf.add(tf.sqrt(vi), eps)), lr)), guard);
            guardedAssign(v[i], vi, guard);
          });
        });
        t++;
      },
      stateTensors: () => v,
      setIterations: (n) => void (t = n),
      dispose: () => v.forEach((s) => s.dispose()),
    };
  }
  if (name === "adam") {
    const b1 = options.beta1 ?? 0.9, b2 = options.beta2 ?? 0.999;
    const m = slots(vars), v = slots(vars);
    return {
      name,
      get iterations() {
        return t;
      },
      step(grads, lr, options) {
        check(grads);
        const guard = options?.guard;
        t++;
        const c1 = 1 - Math.pow(b1, t), c2 = 1 - Math.pow(b2, t);
        if (fusedElementwiseAvailable()) {
          vars.forEach((p, i) => {
            const mNext = "s1 * x2 + (1.0 - s1) * x1", vNext = "s2 * x3 + (1.0 - s2) * x1 * x1";
            const pi = fusedElementwise(
              `select(x0, x0 - s0 * (${mNext}) / (sqrt((${vNext}) / s3) + s4), guard)`,
              [p, grads[i], m[i], v[i]],
              { scalars: [lr / c1, b1, b2, c2, eps], guard },
            );
            const mi = fusedElementwise("select(x1, s0 * x1 + (1.0 - s0) * x0, guard)", [
              grads[i],
              m[i],
            ], { scalars: [b1], guard });
            const vi = fusedElementwise("select(x1, s0 * x1 + (1.0 - s0) * x0 * x0, guard)", [
              grads[i],
              v[i],
            ], { scalars: [b2], guard });
            p.assign(pi);
            m[i].assign(mi);
            v[i].assign(vi);
            tf.dispose([pi, mi, vi]);
          });
          return;
        }
        tf.tidy(() => {
          vars.forEach((p, i) => {
            const g = grads[i];
            const fused = guard ? undefined : simdAdam({ p, g, m: m[i], v: v[i] }, {
              beta1: b1,
              beta2: b2,
              c2,
              epsilon: eps,
              rate: lr / c1,
            });
            if (fused) {
              p.assign(fused[0]);
              m[i].assign(fused[1]);
              v[i].assign(fused[2]);
              return;
            }
            const mi = tf.add(tf.mul(m[i], b1), tf.mul(g, 1 - b1));
            const vi = tf.add(tf.mul(v[i], b2), tf.mul(tf.square(g), 1 - b2));
            const denom = tf.add(tf.sqrt(tf.div(vi, c2)), eps);
            guardedAssign(p, tf.sub(p, tf.mul(tf.div(mi, denom), lr / c1)), guard);
            guardedAssign(m[i], mi, guard);
            guardedAssign(v[i], vi, guard);
          });
        });
      },
      stateTensors: () => [...m, ...v],
      setIterations: (n) => void (t = n),
      dispose: () => [...m, ...v].forEach((s) => s.dispose()),
    };
  }
  const mu = options.momentum ?? 0.9;
  const b = slots(vars);
  return {
    name,
    get iterations() {
      return t;
    },
    step(grads, lr, options) {
      check(grads);
      const guard = options?.guard;
      tf.tidy(() => {
        vars.forEach((p, i) => {
          const bi = t === 0 ? grads[i] : tf.add(tf.mul(b[i], mu), grads[i]);
          guardedAssign(p, tf.sub(p, tf.mul(bi, lr)), guard);
          guardedAssign(b[i], bi, guard);
        });
      });
      t++;
    },
    stateTensors: () => b,
    setIterations: (n) => void (t = n),
    dispose: () => b.forEach((s) => s.dispose()),
  };
}

/** The learning-rate schedules. */
export const SCHEDULE_NAMES = ["constant", "cosine"] as const;

/** Name of a learning-rate schedule. */
export type ScheduleName = typeof SCHEDULE_NAMES[number];

/** Options of {@linkcode learningRate}. */
export interface ScheduleOptions {
  /** `constant` or `cosine` (decay to `minLr` over `totalSteps`). */
  schedule: string;
  /** Base learning rate. */
  lr: number;
  /** Steps of the whole run (cosine decays over them). */
  totalSteps: number;
  /** Linear warm-up steps from 0; default 0. */
  warmupSteps?: number;
  /** Floor of the cosine decay; default 0. */
  minLr?: number;
}

/**
 * Throws unless `name` is a known schedule.
 *
 * @example A known name passes through, an unknown one throws
 * ```ts
 * import { parseSchedule } from "../mod.ts";
 * console.log(parseSchedule("cosine")); // cosine
 * let message = "";
 * try {
 *   parseSchedule("linear");
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * console.log(message); // Unknown schedule "linear": allowed values are constant, cosine
 * ```
 */
export function parseSchedule(name: string): ScheduleName {
  return parseChoice(name, { what: "schedule", allowed: SCHEDULE_NAMES });
}

/**
 * Learning rate at (0-based) step `step`: cosine lr·½(1 + cos(π t/T)), after an optional warm-up.
 *
 * @example Cosine from 0.01 over 1000 steps with 10 warm-up steps: start, half-way, end
 * ```ts
 * import { learningRate } from "../mod.ts";
 * const options = { schedule: "cosine", lr: 0.01, totalSteps: 1000, warmupSteps: 10 };
 * const lrs = [0, 500, 999].map((step) => learningRate(step, options).toFixed(4));
 * console.log(lrs); // [ "0.0010", "0.0050", "0.0000" ]
 * ```
 */
export function learningRate(step: number, options: ScheduleOptions): number {
  const schedule = parseSchedule(options.schedule);
  const warm = options.warmupSteps ?? 0;
  const floor = options.minLr ?? 0;
  const scale = warm > 0 && step < warm ? (step + 1) / warm : 1;
  if (schedule === "constant") return options.lr * scale;
  const T = Math.max(1, options.totalSteps);
  const progress = Math.min(1, step / T);
  return scale * (floor + (options.lr - floor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/**
 * Zeroes an optimiser's state at the entries `masks` mark (0/1 tensors aligned with its variables,
 * null for untouched ones), as after re-initialising those parameters.
 *
 * @example Clear SGD momentum at the first of two entries
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { createOptimizer, initBackend, resetOptimizerEntries } from "../mod.ts";
 * await initBackend();
 * const x = tf.variable(tf.tensor1d([1, 2]));
 * const opt = createOptimizer([x], { name: "sgd", momentum: 0.9 });
 * tf.tidy(() => opt.step([tf.tensor1d([1, 1])], 0.1)); // momentum buffer b = [1, 1]
 * tf.tidy(() => resetOptimizerEntries(opt, [tf.tensor1d([1, 0])]));
 * console.log(Array.from(opt.stateTensors()[0].dataSync())); // [ 0, 1 ]
 * opt.dispose();
 * x.dispose();
 * ```
 */
export function resetOptimizerEntries(optimizer: Optimizer, masks: (Tensor | null)[]): void {
  const slots = optimizer.stateTensors();
  if (slots.length % masks.length !== 0) {
    throw new RangeError(
      `Mismatched masks: ${masks.length} for an optimiser with ${slots.length} state tensors`,
    );
  }
  slots.forEach((slot, j) => {
    const mask = masks[j % masks.length];
    if (mask) tf.tidy(() => slot.assign(tf.mul(slot, tf.sub(1, mask))));
  });
}

/**
 * Exponential moving average of parameters with the reference's warm-up:
 * shadow ← d_t·shadow + (1 − d_t)·θ, d_t = min(decay, (1 + t)/(10 + t)).
 *
 * @example The first update's warm-up decay d_0 = 0.1 moves the shadow 90% of the way
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { initBackend, ParameterEma } from "../mod.ts";
 * await initBackend();
 * const x = tf.variable(tf.scalar(0));
 * const ema = new ParameterEma([x], 0.99);
 * x.assign(tf.scalar(1));
 * ema.update();
 * console.log(ema.shadow[0].dataSync()[0].toFixed(3)); // 0.900
 * ema.dispose();
 * x.dispose();
 * ```
 */
export class ParameterEma {
  /** Target decay. */
  readonly decay: number;
  /** Shadow copies of the variables. */
  readonly shadow: Variable[];
  #vars: Variable[];
  #t = 0;

  /** Starts the average at the current values. */
  constructor(vars: Variable[], decay: number) {
    if (!(decay >= 0 && decay < 1)) {
      throw new RangeError(`Invalid EMA decay ${decay}: it must be in [0, 1)`);
    }
    this.decay = decay;
    this.#vars = vars;
    this.shadow = vars.map((v) => tf.variable(v.clone(), false));
  }

  /** Number of updates so far. */
  get updates(): number {
    return this.#t;
  }

  /** Sets the update counter (restoring a checkpoint). */
  setUpdates(n: number): void {
    this.#t = n;
  }

  /** Folds the current parameters into the average. */
  update(): void {
    const d = Math.min(this.decay, (1 + this.#t) / (10 + this.#t));
    if (fusedElementwiseAvailable()) {
      this.#vars.forEach((v, i) => {
        const next = fusedElementwise("s0 * x0 + (1.0 - s0) * x1", [this.shadow[i], v], {
          scalars: [d],
        });
        this.shadow[i].assign(next);
        next.dispose();
      });
      this.#t++;
      return;
    }
    tf.tidy(() => {
      this.#vars.forEach((v, i) => {
        const fused = simdEma({ shadow: this.shadow[i], value: v }, { decay: d });
        if (fused) return void this.shadow[i].assign(fused);
        this.shadow[i].assign(tf.add(tf.mul(this.shadow[i], d), tf.mul(v, 1 - d)));
      });
    });
    this.#t++;
  }

  /** Restarts the average at the current values where `masks` (aligned with the variables) are 1. */
  resetEntries(masks: (Tensor | null)[]): void {
    masks.forEach((mask, i) => {
      if (!mask) return;
      tf.tidy(() =>
        this.shadow[i].assign(
          tf.add(tf.mul(this.shadow[i], tf.sub(1, mask)), tf.mul(this.#vars[i], mask)),
        )
      );
    });
  }

  /** Runs `fn` with the averaged weights loaded into the variables, then restores them. */
  async withAveraged<T>(fn: () => T | Promise<T>): Promise<T> {
    const saved = this.#vars.map((v) => v.clone());
    this.#vars.forEach((v, i) => v.assign(this.shadow[i]));
    try {
      return await fn();
    } finally {
      this.#vars.forEach((v, i) => v.assign(saved[i]));
      saved.forEach((s) => s.dispose());
    }
  }

  /** Copies the averaged weights into the variables for good. */
  copyToVariables(): void {
    this.#vars.forEach((v, i) => v.assign(this.shadow[i]));
  }

  /** Frees the shadows. */
  dispose(): void {
    this.shadow.forEach((s) => s.dispose());
  }
}

/**
 * Global L2 norm of a list of gradients (a scalar tensor).
 *
 * @example The norm of the gradients [3] and [4] is 5
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { globalNorm, initBackend } from "../mod.ts";
 * await initBackend();
 * const grads = [tf.tensor1d([3]), tf.tensor2d([[4]])];
 * const norm = globalNorm(grads);
 * console.log(norm.dataSync()[0]); // 5
 * tf.dispose([...grads, norm]);
 * ```
 */
export function globalNorm(grads: Tensor[]): Scalar {
  return tf.tidy(() => {
    // On a GPU one concat and one reduction cost fewer dispatches than a reduction per tensor.
    if (prefersBatchedKernels() && grads.length > 1) {
      return tf.sqrt(tf.sum(tf.square(tf.concat(grads.map((g) => tf.reshape(g, [-1])))))) as Scalar;
    }
    // Pairwise adds, not one addN: tfjs-webgpu's AddN binds every input at once and returns zeros
    // past the device's storage-buffer limit (8 by default). On WASM Σg² is one fused pass.
    const squares = grads.map((g) => simdSumOfSquares(g) ?? tf.sum(tf.square(g)));
    return tf.sqrt(squares.reduce((a, b) => tf.add(a, b))) as Scalar;
  });
}
