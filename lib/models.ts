/**
 * Models mapping inputs to L mode outputs: MLPs (shared, or L disjoint per-mode MLPs evaluated
 * together with batched matMuls, the reference's "parallel" network), optional fixed Gaussian
 * Fourier features, and models of a discrete index (a table, or an MLP on index embeddings).
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor, Tensor1D, Tensor2D, Tensor3D, Variable } from "./types.ts";
import { type Activation, activation } from "./activations.ts";
import type { Rng } from "./random.ts";
import { prefersBatchedKernels } from "./kernel_layout.ts";
import {
  simdBiasSoftplus,
  simdLinearSoftplus,
  simdMatMulHandles,
  simdMlpReverse,
  simdSoftplusJet,
  simdSoftplusJetWithSlope,
} from "./wasm_kernels.ts";
import { transposedProduct } from "./gradients.ts";
import { hostInputJet, radius, rowBlock } from "./tensor_rows.ts";
import { assertPositive, assertPositiveInteger } from "./checks.ts";

/**
 * Value, input gradient and input Laplacian of a model's L outputs at B points in d dimensions:
 * value [B, L], grad [d, B, L] (grad[k] = ∂f/∂x_k), lap [B, L].
 */
export interface Jet {
  /** f(x_b), B×L. */
  value: Tensor2D;
  /** ∂f/∂x_k at x_b, d×B×L. */
  grad: Tensor3D;
  /** Δf(x_b), B×L. */
  lap: Tensor2D;
  /** The reverse pass of `value`, where asked for ({@linkcode JetOptions}). */
  pullback?: Pullback;
}

/**
 * The reverse pass of one forward evaluation, from what that evaluation kept: for an output gradient
 * g [B, L] at its points, the θ-gradients of Σ_b,l g_bl·f_l(x_b) — the vector-Jacobian product Jᵀg
 * that tfjs's tape gives, without evaluating f a second time.
 */
export interface Pullback {
  /** Gradients aligned with the model's `variables`; the caller owns them. */
  gradients(g: Tensor2D): Tensor[];
  /** Frees what the evaluation kept (idempotent). */
  dispose(): void;
}

/** Options of {@linkcode Model.jet}. */
export interface JetOptions {
  /** Keep what a reverse pass through the value rows needs and return it as `Jet.pullback`. */
  pullback?: boolean;
}

/** Options of {@linkcode Model.applyWithPullback}. */
export interface PullbackOptions {
  /** The reverse pass covers the first `rows` points only (default: all of them). */
  rows?: number;
}

/** A trainable map from a batch of inputs to a B×L matrix of mode values. */
export interface Model {
  /** Short name of the architecture. */
  readonly kind: string;
  /** Input width (1 for index models, whose inputs are int32 indices of shape [B]). */
  readonly inputDim: number;
  /** Number of outputs L. */
  readonly outputDim: number;
  /** Trainable variables, in a fixed order. */
  readonly variables: Variable[];
  /** Stable names of `variables`, same order (for checkpoints). */
  readonly variableNames: string[];
  /** Forward pass on a tensor batch: [B, d] float32 (or [B] int32 for index models) → [B, L]. */
  apply(x: Tensor): Tensor2D;
  /** Out-of-sample evaluation on plain arrays: points (or indices) in, B×L values out. */
  predict(inputs: number[][] | number[]): number[][];
  /** Frees the variables. */
  dispose(): void;
  /**
   * Exact forward-mode jet (value, gradient, Laplacian) in the input, where the model has one; with
   * `pullback` (models with `reversePass`), also the reverse pass of its value rows.
   */
  jet?(x: Tensor2D, options?: JetOptions): Jet;
  /**
   * Whether the model has its own reverse pass: `applyWithPullback`, and `jet` (where it has one)
   * with the `pullback` option.
   */
  readonly reversePass?: boolean;
  /** The forward pass with its reverse pass kept (models with `reversePass`). */
  applyWithPullback?(
    x: Tensor2D,
    options?: PullbackOptions,
  ): { value: Tensor2D; pullback: Pullback };
  /** False when tfjs's nested gradients are known to be wrong for this model (e.g. tanh). */
  readonly secondOrderAutodiffSafe?: boolean;
  /**
   * Models whose outputs own their parameters (disjoint networks): re-draws the parameters of
   * output `mode` from the initial distribution and returns, aligned with `variables`, a 0/1 mask
   * of the entries that changed (null where none did), so that optimiser and EMA state can be reset
   * there. The caller disposes the masks. Throws when the outputs share parameters.
   */
  reinitializeOutput?(mode: number, rng: Rng, options?: ReinitializeOptions): (Tensor | null)[];
}

/** Options of {@linkcode Model.reinitializeOutput}. */
export interface ReinitializeOptions {
  /**
   * Copy every parameter but the last layer's from this output's network (its features, and its
   * envelope scale), and draw only the last layer afresh: a revived mode then starts from trained
   * features instead of broad random ones. (On 2-D hydrogen neither kept a collapsed mode alive;
   * networks serving several modes did: README, "what mattered".)
   */
  featuresFrom?: number;
}

/**
 * Throws unless `mode` is an output index of a model with `outputs` outputs.
 *
 * @example Outputs 0 and 1 of a 2-output model exist, output 2 does not
 * ```ts
 * import { assertOutputIndex } from "../mod.ts";
 * assertOutputIndex(1, 2); // passes
 * try {
 *   assertOutputIndex(2, 2);
 * } catch (e) {
 *   console.log((e as Error).message); // Invalid output 2: expected an integer in [0, 1]
 * }
 * ```
 */
export function assertOutputIndex(mode: number, outputs: number): void {
  if (!Number.isInteger(mode) || mode < 0 || mode >= outputs) {
    throw new RangeError(`Invalid output ${mode}: expected an integer in [0, ${outputs - 1}]`);
  }
}

/** Fixed random Fourier features [sin(xB), cos(xB)] with B = 2π·scale·N(0,1)^{d×m}. */
export interface FourierOptions {
  /** Number of frequencies m (the features have width 2m). */
  frequencies: number;
  /** Scale of the frequencies. */
  scale: number;
}

/** Options of {@linkcode Mlp}. */
export interface MlpOptions {
  /** Input dimension d. */
  inputDim: number;
  /** Number of outputs L. */
  outputs: number;
  /** Hidden widths; default [128, 128, 128]. */
  hidden?: number[];
  /** Activation name; default `softplus`. */
  activation?: string;
  /** L disjoint per-mode MLPs (each with one output) instead of one shared MLP; default false. */
  disjoint?: boolean;
  /**
   * Disjoint networks only: consecutive modes each network serves (its last layer's width), so
   * that L/m networks each read out m modes from shared features; default 1. L must be a multiple.
   */
  modesPerNetwork?: number;
  /** Fixed Gaussian Fourier features in front of the MLP; default none. */
  fourier?: FourierOptions;
  /** Append the radius |x| to the input (lets the network form cusps at the origin); default false. */
  radial?: boolean;
  /** Multiplies the He-normal standard deviation of the last layer (small outputs at start); default 1. */
  outputScale?: number;
  /** Generator for the initialisation (He-normal weights, zero biases). */
  rng: Rng;
  /**
   * Disjoint networks only: how many modes `apply` and `jet` propagate at a time (default 0: as
   * many as keep one activation matrix — B rows, or (d + 2)·B for jets, by modes·width — within 2¹⁶
   * numbers). The modes are independent, so chunks give the same numbers; they keep the working set
   * in cache, which keeps the step linear in the number of modes (at 32 modes of width 128, batch
   * 512: 2.6× faster jets). On a GPU (WebGPU) the automatic choice is all modes at once, each layer
   * one batched matMul.
   */
  modeChunk?: number;
}

/**
 * Numbers in one activation matrix of a mode chunk (see `MlpOptions.modeChunk`): 2¹⁶ floats
 * (256 KiB) keep the element-wise jet work in a core's cache. Measured on the default hydrogen job
 * (2 replicas): 149 ms/step at 2²⁰, 113 at 2¹⁷, 105 at 2¹⁶ and 2¹⁵.
 */
const CHUNK_NUMBERS = 2 ** 16;

/**
 * A multilayer perceptron, shared or as L disjoint per-mode networks. Disjoint networks are run
 * together: the first layer is one matMul of the (shared) input against all L first-layer
 * matrices side by side, the others are batched [L, B, h] × [L, h, h'] matMuls.
 *
 * @example
 * ```ts
 * import { initBackend, Mlp, Rng } from "../mod.ts";
 * await initBackend();
 * const net = new Mlp({ inputDim: 2, outputs: 3, hidden: [16], disjoint: true, rng: new Rng(1) });
 * console.log(net.predict([[0.1, 0.2]])[0].length); // 3
 * net.dispose();
 * ```
 */
export class Mlp implements Model {
  readonly kind: string;
  readonly inputDim: number;
  readonly outputDim: number;
  readonly variables: Variable[] = [];
  readonly variableNames: string[] = [];
  /** Number of independent networks (L/modesPerNetwork when disjoint, else 1). */
  readonly groups: number;
  /** Modes each network reads out (1 for per-mode networks, L for a shared MLP). */
  readonly modesPerNetwork: number;
  /** Layer widths from the MLP's input (after features) to its per-group output. */
  readonly widths: number[];
  /** The activation. */
  readonly act: Activation;
  /** tfjs 4.22's second derivatives of tanh and sigmoid (saved-output gradients) are wrong. */
  readonly secondOrderAutodiffSafe: boolean;
  /** Whether |x| is appended to the input. */
  readonly radial: boolean;
  /** Fixed Fourier frequency matrix (d or d+1)×m, if any. */
  readonly fourier: Tensor2D | null;
  /** Weights per layer: first [in, G·h₁]; later [G, h, h'] (or [h, h'] when G = 1). */
  readonly weights: Variable[] = [];
  /** Biases per layer, group after group: [G·h'] (or [h'] when G = 1). */
  readonly biases: Variable[] = [];
  /** Modes per chunk in `apply` and `jet` (0: automatic). */
  readonly modeChunk: number;
  /** He-normal standard deviation of each layer's weights at initialisation. */
  readonly #initStd: number[] = [];

  /** Creates the network with He-normal weights and zero biases. */
  constructor(options: MlpOptions) {
    assertPositiveInteger(options.inputDim, "input dimension");
    assertPositiveInteger(options.outputs, "number of outputs");
    const hidden = options.hidden ?? [128, 128, 128];
    hidden.forEach((h) => assertPositiveInteger(h, "hidden width"));
    this.act = activation(options.activation ?? "softplus");
    this.secondOrderAutodiffSafe = this.act.secondOrderAutodiffSafe;
    this.inputDim = options.inputDim;
    this.outputDim = options.outputs;
    const disjoint = options.disjoint ?? false;
    const perNetwork = options.modesPerNetwork ?? 1;
    assertPositiveInteger(perNetwork, "modes per network");
    if (disjoint && options.outputs % perNetwork !== 0) {
      throw new RangeError(
        `Invalid modes per network ${perNetwork}: it must divide the number of outputs (${options.outputs})`,
      );
    }
    if (!disjoint && perNetwork !== 1) {
      throw new RangeError(
        `Invalid modes per network ${perNetwork}: a shared MLP serves all ${options.outputs} modes (use disjoint networks)`,
      );
    }
    this.modesPerNetwork = disjoint ? perNetwork : options.outputs;
    this.groups = disjoint ? options.outputs / perNetwork : 1;
    this.kind = disjoint ? "disjoint-mlp" : "mlp";
    const rng = options.rng;
    this.radial = options.radial ?? false;
    this.modeChunk = options.modeChunk ?? 0;
    if (!Number.isInteger(this.modeChunk) || this.modeChunk < 0) {
      throw new RangeError(
        `Invalid mode chunk ${this.modeChunk}: it must be a non-negative integer (0: automatic)`,
      );
    }
    const rawDim = options.inputDim + (this.radial ? 1 : 0);
    let featureDim = rawDim;
    if (options.fourier) {
      assertPositiveInteger(options.fourier.frequencies, "number of Fourier frequencies");
      assertPositive(options.fourier.scale, "Fourier scale");
      const m = options.fourier.frequencies;
      const b = rng.normals(rawDim * m, { std: 2 * Math.PI * options.fourier.scale });
      this.fourier = tf.tensor2d(b, [rawDim, m]);
      featureDim = 2 * m;
    } else {
      this.fourier = null;
    }
    const perGroupOut = this.modesPerNetwork;
    this.widths = [featureDim, ...hidden, perGroupOut];
    const G = this.groups;
    for (let k = 0; k + 1 < this.widths.length; k++) {
      const fanIn = this.widths[k], fanOut = this.widths[k + 1];
      const last = k + 2 === this.widths.length;
      const std = Math.sqrt(2 / fanIn) * (last ? options.outputScale ?? 1 : 1);
      this.#initStd.push(std);
      let w: Tensor, b: Tensor;
      if (k === 0) {
        w = tf.tensor2d(rng.normals(fanIn * G * fanOut, { std }), [fanIn, G * fanOut]);
        b = tf.zeros([G * fanOut]);
      } else if (G === 1) {
        w = tf.tensor2d(rng.normals(fanIn * fanOut, { std }), [fanIn, fanOut]);
        b = tf.zeros([fanOut]);
      } else {
        w = tf.tensor3d(rng.normals(G * fanIn * fanOut, { std }), [G, fanIn, fanOut]);
        b = tf.zeros([G * fanOut]);
      }
      this.weights.push(tf.variable(w));
      this.biases.push(tf.variable(b));
      w.dispose();
      b.dispose();
      this.variables.push(this.weights[k], this.biases[k]);
      this.variableNames.push(`layer${k}.weight`, `layer${k}.bias`);
    }
  }

  /** Fourier features of the (radius-augmented) input. */
  features(x: Tensor2D): Tensor2D {
    return tf.tidy(() => {
      const u = this.radial ? tf.concat([x, radius(x)], 1) as Tensor2D : x;
      if (!this.fourier) return u;
      const z = tf.matMul(u, this.fourier);
      return tf.concat([tf.sin(z), tf.cos(z)], 1) as Tensor2D;
    });
  }

  /** Forward pass, [B, d] → [B, L]. */
  apply(x: Tensor): Tensor2D {
    if (x.rank !== 2 || x.shape[1] !== this.inputDim) {
      throw new RangeError(
        `Mismatched input shape [${x.shape.join(", ")}]: expected [B, ${this.inputDim}]`,
      );
    }
    return tf.tidy(() => {
      const a = this.features(x as Tensor2D);
      const chunks = this.#chunks(this.#modeChunk(x.shape[0], 1));
      if (chunks.length === 1) return this.#applyLayers(a, this.weights, this.biases);
      return tf.concat(chunks.map((c) => this.#applyLayers(a, c.weights, c.biases)), 1) as Tensor2D;
    });
  }

  /** The forward pass through the layers given (a chunk of groups, or all of them). */
  #applyLayers(a: Tensor2D, weights: Tensor[], biases: Tensor[]): Tensor2D {
    if (prefersBatchedKernels() && this.groups > 1 && weights.length > 1) {
      return this.#applyGrouped(a, weights, biases);
    }
    for (let k = 0; k < weights.length; k++) {
      const z = tf.add(this.#linearWith(weights[k], k, a), biases[k]) as Tensor2D;
      a = k === weights.length - 1 ? z : this.act.fn(z) as Tensor2D;
    }
    return a;
  }

  /**
   * The forward pass on a GPU: after the first layer the activations stay [G, B, h] (one batched
   * matMul per layer, biases broadcast as [G, 1, h]), so the layers need two transposes in all
   * rather than two each.
   */
  #applyGrouped(a: Tensor2D, weights: Tensor[], biases: Tensor[]): Tensor2D {
    const B = a.shape[0], G = weights[1].shape[0]!, n = weights.length;
    const z0 = tf.add(tf.matMul(a, weights[0] as Tensor2D), biases[0]);
    let h = tf.transpose(tf.reshape(this.act.fn(z0), [B, G, -1]), [1, 0, 2]) as Tensor3D;
    for (let k = 1; k < n; k++) {
      const z = tf.add(tf.matMul(h, weights[k] as Tensor3D), tf.reshape(biases[k], [G, 1, -1]));
      h = (k === n - 1 ? z : this.act.fn(z)) as Tensor3D;
    }
    return tf.reshape(tf.transpose(h, [1, 0, 2]), [B, -1]) as Tensor2D;
  }

  /**
   * The weights and biases of consecutive chunks of `chunk` groups (one chunk of all of them when
   * it covers every group): column blocks of the first layer, groups of the later ones.
   */
  #chunks(chunk: number): { weights: Tensor[]; biases: Tensor[] }[] {
    if (this.groups <= chunk) return [{ weights: this.weights, biases: this.biases }];
    const sizes: number[] = [];
    for (let g = 0; g < this.groups; g += chunk) sizes.push(Math.min(chunk, this.groups - g));
    const h = (k: number) => this.widths[k + 1];
    // One split per tensor rather than a slice per chunk: a split's gradient is one concat, a
    // slice's is a zero-padded full-size tensor per chunk, all of them then added up.
    const weights = this.weights.map((w, k) =>
      k === 0 ? tf.split(w, sizes.map((s) => s * h(0)), 1) : tf.split(w, sizes, 0)
    );
    const biases = this.biases.map((b, k) => tf.split(b, sizes.map((s) => s * h(k)), 0));
    return sizes.map((_, c) => ({
      weights: weights.map((parts) => parts[c]),
      biases: biases.map((parts) => parts[c]),
    }));
  }

  /**
   * Layer k's matrix product without bias. Activations stay [B, G·h] (group after group): the first
   * layer is one matMul against all groups side by side; later layers split the columns per group and
   * run G plain 2-D matMuls, which the WASM backend runs ~4× faster than one batched [G, B, h] matMul.
   */
  linear(k: number, a: Tensor2D): Tensor2D {
    return this.#linearWith(this.weights[k], k, a);
  }

  /**
   * Layer k's weights `w` (all groups, or a chunk of them) as one matrix where the layer is one
   * product: the first layer, a shared network, or a chunk of one group.
   */
  #singleMatrix(w: Tensor, k: number): Tensor2D | undefined {
    if (k === 0 || this.groups === 1) return w as Tensor2D;
    // One group (a chunk of one mode): no split/unstack — tfjs 4.22 hands a single-output op's
    // gradient a bare tensor, which SplitV's and Unpack's gradients cannot take.
    if (w.shape[0] === 1) return tf.reshape(w, [w.shape[1]!, w.shape[2]!]) as Tensor2D;
    return undefined;
  }

  /** `linear` with layer k's weights `w` (all groups, or a chunk of them). */
  #linearWith(w: Tensor, k: number, a: Tensor2D): Tensor2D {
    const matrix = this.#singleMatrix(w, k);
    if (matrix) return tf.matMul(a, matrix);
    if (prefersBatchedKernels()) {
      // [B, G·h] → [G, B, h] · [G, h, h'] → [B, G·h']: one batched kernel for all groups.
      const [G, h, h2] = w.shape as [number, number, number];
      const B = a.shape[0];
      const z = tf.matMul(
        tf.transpose(tf.reshape(a, [B, G, h]), [1, 0, 2]) as Tensor3D,
        w as Tensor3D,
      );
      return tf.reshape(tf.transpose(z, [1, 0, 2]), [B, G * h2]) as Tensor2D;
    }
    const mats = tf.unstack(w);
    const parts = tf.split(a, mats.length, 1);
    return tf.concat(parts.map((p, g) => tf.matMul(p, mats[g] as Tensor2D)), 1) as Tensor2D;
  }

  /**
   * Forward-mode value, gradient and Laplacian with respect to the input, exact (no higher-order
   * autodiff): the (d + 2)·B rows [value; ∂₁; …; ∂_d; Δ] go through each layer as one stacked matrix,
   * linear layers act on all rows (bias on the value rows only), and an activation a = σ(z) maps
   * ∂a = σ'(z) ∂z and Δa = σ'(z) Δz + σ''(z) Σ_k (∂_k z)².
   */
  jet(x: Tensor2D, options: JetOptions = {}): Jet {
    this.#checkInput(x);
    if (!options.pullback) {
      // tidy keeps the returned tensors; Jet is a fixed-key record of them.
      return tf.tidy(() => this.#jetAll(x) as unknown as tf.TensorContainer) as unknown as Jet;
    }
    const trace = new MlpTrace();
    try {
      const jet = tf.tidy(() =>
        this.#jetAll(x, trace) as unknown as tf.TensorContainer
      ) as unknown as Jet;
      return { ...jet, pullback: this.#pullback(trace) };
    } catch (e) {
      trace.dispose();
      throw e;
    }
  }

  /** Disjoint and shared MLPs have their own reverse pass ({@linkcode Model.applyWithPullback}). */
  get reversePass(): boolean {
    return true;
  }

  /**
   * The forward pass, keeping for the first `rows` points (default all) each layer's input and
   * activation slope, so that {@linkcode Pullback.gradients} needs no second evaluation: per layer
   * ∂W = aᵀ∂z, ∂b = Σ_rows ∂z and ∂a = ∂z·Wᵀ, then ∂z = ∂a ⊙ σ'(z) below.
   *
   * @example θ-gradients of Σ f(x) over the first two of three points
   * ```ts
   * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
   * import { initBackend, Mlp, Rng } from "../mod.ts";
   * await initBackend();
   * const net = new Mlp({ inputDim: 2, outputs: 3, hidden: [8], rng: new Rng(1) });
   * const x = tf.tensor2d([[0, 1], [1, 0], [2, 2]]);
   * const { value, pullback } = net.applyWithPullback(x, { rows: 2 });
   * const grads = pullback.gradients(tf.ones([2, 3]));
   * console.log(grads.map((g) => g.shape)); // [[2, 8], [8], [8, 3], [3]]
   * pullback.dispose();
   * tf.dispose([x, value, ...grads]);
   * net.dispose();
   * ```
   */
  applyWithPullback(
    x: Tensor2D,
    options: PullbackOptions = {},
  ): { value: Tensor2D; pullback: Pullback } {
    this.#checkInput(x);
    const rows = options.rows ?? x.shape[0];
    if (!Number.isInteger(rows) || rows < 1 || rows > x.shape[0]) {
      throw new RangeError(
        `Invalid reverse-pass rows ${rows}: it must be an integer from 1 to ${x.shape[0]}`,
      );
    }
    const trace = new MlpTrace();
    try {
      const value = tf.tidy(() => {
        const a = this.features(x);
        const chunks = this.#chunks(this.#modeChunk(x.shape[0], 1));
        // kept whole, not copied (tfjs-wasm's clone copies); x itself is the caller's
        trace.start(chunks, tf.keep(a === x ? tf.clone(a) : a), chunks.length > 1);
        const parts = chunks.map((c, i) => {
          let h: Tensor2D = a;
          const n = c.weights.length;
          for (let k = 0; k < n; k++) {
            if (k > 0) trace.chunks[i].inputs.push(tf.keep(h));
            // On WASM a softplus layer and its slope are one fused kernel, with the product where
            // the layer is one matMul (lib/wasm_kernels.ts).
            const softplus = k < n - 1 && this.act.name === "softplus";
            const matrix = softplus ? this.#singleMatrix(c.weights[k], k) : undefined;
            const whole = matrix && simdLinearSoftplus(h, matrix, c.biases[k], { slopeRows: rows });
            if (whole) {
              trace.chunks[i].slopes.push(tf.keep(whole[1]));
              h = whole[0];
              continue;
            }
            const linear = this.#linearWith(c.weights[k], k, h);
            const fused = softplus
              ? simdBiasSoftplus(linear, c.biases[k], { slopeRows: rows })
              : undefined;
            if (fused) {
              trace.chunks[i].slopes.push(tf.keep(fused[1]));
              h = fused[0];
              continue;
            }
            if (k === n - 1) return linear;
            const z = tf.add(linear, c.biases[k]) as Tensor2D;
            trace.chunks[i].slopes.push(tf.keep(this.act.d1(rowBlock(z, rows)) as Tensor2D));
            h = this.act.fn(z) as Tensor2D;
          }
          return h;
        });
        // the last layer's bias once for all chunks (one kernel, not one per chunk)
        const z = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
        return tf.add(z, this.biases[this.biases.length - 1]) as Tensor2D;
      });
      return { value, pullback: this.#pullback(trace) };
    } catch (e) {
      trace.dispose();
      throw e;
    }
  }

  #checkInput(x: Tensor2D): void {
    if (x.rank !== 2 || x.shape[1] !== this.inputDim) {
      throw new RangeError(
        `Mismatched input shape [${x.shape.join(", ")}]: expected [B, ${this.inputDim}]`,
      );
    }
  }

  #jetAll(x: Tensor2D, trace?: MlpTrace): Jet {
    const rows = this.featureJet(x);
    const B = x.shape[0];
    const chunks = this.#chunks(this.#modeChunk(B, this.inputDim + 2));
    trace?.start(chunks, tf.keep(rows), chunks.length > 1);
    const parts = chunks.map((c, i) =>
      this.#jetLayers(rows, c.weights, c.biases, B, trace?.chunks[i])
    );
    // The chunks' last layers side by side, then split into the jet's parts once, the bias added
    // to the value rows once: 6 kernels where each chunk took 5 and the concatenations 3 more.
    const z = parts.length === 1 ? parts[0] : tf.concat(parts, 1) as Tensor2D;
    return this.#jetParts(z, B, this.biases[this.biases.length - 1]);
  }

  /** Stacked rows [value; ∂₁; …; ∂_d; Δ] of a layer's product as a jet, the bias on the values. */
  #jetParts(z: Tensor2D, B: number, bias: Tensor): Jet {
    const d = this.inputDim, w = z.shape[1];
    return {
      value: tf.add(tf.slice(z, [0, 0], [B, w]), bias) as Tensor2D,
      grad: tf.reshape(tf.slice(z, [B, 0], [d * B, w]), [d, B, w]) as Tensor3D,
      lap: tf.slice(z, [(d + 1) * B, 0], [B, w]) as Tensor2D,
    };
  }

  /** Groups per chunk for B points carried as `streams` stacked row blocks (1 or d + 2). */
  #modeChunk(B: number, streams: number): number {
    if (this.modeChunk > 0) return this.modeChunk;
    if (prefersBatchedKernels()) return this.groups;
    const width = Math.max(...this.widths.slice(1, -1), 1);
    return Math.max(1, Math.floor(CHUNK_NUMBERS / (streams * B * width)));
  }

  /**
   * The jet through the layers given (a chunk of groups, or all of them): the last layer's stacked
   * rows [value; ∂₁; …; ∂_d; Δ] before its bias.
   */
  #jetLayers(
    rows: Tensor2D,
    weights: Tensor[],
    biases: Tensor[],
    B: number,
    trace?: ChunkTrace,
  ): Tensor2D {
    const d = this.inputDim, n = weights.length;
    for (let k = 0; k < n; k++) {
      // a traced layer's input rows are the trace's now (kept whole), so not disposed below
      if (k > 0) trace?.inputs.push(tf.keep(rows));
      const z = this.#linearWith(weights[k], k, rows);
      const w = z.shape[1];
      // On WASM one softplus layer of the jet is one fused kernel (lib/wasm_kernels.ts).
      const shape = { points: B, dim: d };
      const fused = k < n - 1 && this.act.name === "softplus"
        ? (trace
          ? simdSoftplusJetWithSlope(z, biases[k], shape)
          : simdSoftplusJet(z, biases[k], shape))
        : undefined;
      if (fused) {
        tf.dispose([z, ...(k > 0 && !trace ? [rows] : [])]);
        if (Array.isArray(fused)) {
          trace!.slopes.push(tf.keep(fused[1]));
          rows = fused[0];
        } else {
          rows = fused;
        }
        continue;
      }
      if (k === n - 1) return z;
      const { value: zv, grad: zg, lap: zl } = this.#jetParts(z, B, biases[k]);
      // A layer's intermediates go as soon as its rows exist: on 1024 evaluation points in 3-D they
      // would otherwise all stay until the caller's tidy ends (the WASM heap grew to 358 MiB).
      const next = tf.tidy(() => {
        const s1 = this.act.d1(zv), s2 = this.act.d2(zv);
        const av = this.act.fn(zv);
        const ag = tf.reshape(tf.mul(zg, s1), [d * B, w]);
        const al = tf.add(tf.mul(s1, zl), tf.mul(s2, tf.sum(tf.square(zg), 0)));
        return { rows: tf.concat([av, ag, al], 0) as Tensor2D, slope: s1 as Tensor2D };
      });
      if (trace) trace.slopes.push(tf.keep(next.slope));
      else next.slope.dispose();
      tf.dispose([z, zv, zg, zl, ...(k > 0 && !trace ? [rows] : [])]);
      rows = next.rows;
    }
    throw new Error("Unreachable: an Mlp has at least one layer");
  }

  /** The reverse pass of a traced evaluation (see {@linkcode Mlp.applyWithPullback}). */
  #pullback(trace: MlpTrace): Pullback {
    return {
      gradients: (g: Tensor2D) => tf.tidy(() => this.#reverse(trace, g)),
      dispose: () => trace.dispose(),
    };
  }

  #reverse(trace: MlpTrace, g: Tensor2D): Tensor[] {
    const n = this.weights.length, chunks = trace.chunks;
    // One group per chunk (the usual case on WASM): the whole pass is one fused kernel there.
    if (chunks.length === this.groups && trace.features) {
      const fused = simdMlpReverse(g, {
        features: trace.features,
        weights: this.weights,
        inputs: chunks.map((c) => c.inputs),
        slopes: chunks.map((c) => c.slopes),
        shapes: this.weights.flatMap((w, k) => [w.shape, this.biases[k].shape]),
      });
      if (fused) return fused;
    }
    const perChunk = chunks.map((c) => c.biases[n - 1].size);
    const outs = chunks.length === 1 ? [g] : tf.split(g, perChunk, 1) as Tensor2D[];
    // Where the matMul kernel cannot take a transposed B (tfjs's own kernels), Wᵀ of each later
    // layer, all groups in one transpose, split like the chunks: tfjs-wasm transposes B explicitly
    // for every such product, one per group and chunk otherwise.
    const B = g.shape[0];
    // The trace keeps whole evaluations (all points, or a jet's stacked rows); the first B rows are
    // the ones the reverse pass covers.
    const rowsOf = (t: Tensor2D) => t.shape[0] === B ? t : tf.slice(t, [0, 0], [B, -1]) as Tensor2D;
    const flagged = (w: Tensor) =>
      simdMatMulHandles([B, w.shape[2]!], [w.shape[1]!, w.shape[2]!], { transposeB: true });
    const transposed = !prefersBatchedKernels() && this.groups > 1
      ? this.weights.map((w, k) => {
        if (k === 0 || flagged(w)) return null;
        const wt = tf.transpose(w, [0, 2, 1]);
        return chunks.length === 1
          ? [wt]
          : tf.split(wt, chunks.map((c) => c.weights[k].shape[0]!), 0);
      })
      : null;
    // Layers n−1 … 1 chunk by chunk; the first layer's weight gradient as one product for all.
    const grads: Tensor[][] = chunks.map(() => new Array(2 * n));
    const dz0 = chunks.map((c, i) => {
      let dz = outs[i];
      for (let k = n - 1; k > 0; k--) {
        const input = rowsOf(c.inputs[k - 1]);
        grads[i][2 * k] = this.#weightGradient(c.weights[k], { input, dz });
        grads[i][2 * k + 1] = tf.sum(dz, 0);
        const explicit = transposed?.[k];
        const da = explicit
          ? groupProducts(dz, explicit[i] as Tensor3D)
          : this.#inputGradient(c.weights[k], dz);
        dz = tf.mul(da, c.slopes[k - 1]) as Tensor2D;
      }
      return dz;
    });
    const dz = dz0.length === 1 ? dz0[0] : tf.concat(dz0, 1) as Tensor2D;
    const result: Tensor[] = [
      transposedProduct(rowsOf(trace.features!), dz, { transposeA: true }),
      tf.sum(dz, 0),
    ];
    for (let j = 2; j < 2 * n; j++) {
      result.push(chunks.length === 1 ? grads[0][j] : tf.concat(grads.map((p) => p[j]), 0));
    }
    return result;
  }

  /** ∂W of a layer after the first (a chunk's weights w) from its input rows and output gradient. */
  #weightGradient(w: Tensor, { input: a, dz }: { input: Tensor2D; dz: Tensor2D }): Tensor {
    const G = w.rank === 2 ? 1 : w.shape[0]!;
    if (G === 1 && dz.shape[1] === 1) {
      // A one-output layer: (∂zᵀa)ᵀ is a reshape, and ∂zᵀa runs in the WASM kernel (8 | N), where
      // aᵀ∂z (N = 1) took an explicit transpose of a and tfjs's kernel (3 ms a step, 16 modes).
      return tf.reshape(transposedProduct(dz, a, { transposeA: true }), w.shape);
    }
    if (w.rank === 2) return transposedProduct(a, dz, { transposeA: true });
    if (G === 1) return tf.reshape(transposedProduct(a, dz, { transposeA: true }), w.shape);
    if (prefersBatchedKernels()) {
      return tf.matMul(groupMajor(a, G), groupMajor(dz, G), true, false);
    }
    const as = tf.split(a, G, 1), dzs = tf.split(dz, G, 1);
    return tf.stack(as.map((ag, i) => transposedProduct(ag, dzs[i], { transposeA: true })));
  }

  /** ∂a = ∂z·Wᵀ of a layer after the first, group by group. */
  #inputGradient(w: Tensor, dz: Tensor2D): Tensor2D {
    if (w.rank === 2) return transposedProduct(dz, w, { transposeB: true }) as Tensor2D;
    const [G, h, h2] = w.shape as [number, number, number];
    if (G === 1) {
      return transposedProduct(dz, tf.reshape(w, [h, h2]), { transposeB: true }) as Tensor2D;
    }
    if (prefersBatchedKernels()) {
      const da = tf.matMul(groupMajor(dz, G), w as Tensor3D, false, true);
      return tf.reshape(tf.transpose(da, [1, 0, 2]), [dz.shape[0], G * h]) as Tensor2D;
    }
    const mats = tf.unstack(w), parts = tf.split(dz, G, 1);
    return tf.concat(
      parts.map((p, i) => transposedProduct(p, mats[i], { transposeB: true })),
      1,
    ) as Tensor2D;
  }

  /** The stacked rows [value; ∂₁; …; ∂_d; Δ] of the features at x. */
  featureJet(x: Tensor2D): Tensor2D {
    if (!this.fourier && !prefersBatchedKernels()) return hostInputJet(x, { radial: this.radial });
    return tf.tidy(() => {
      const B = x.shape[0], d = this.inputDim;
      const eye = tf.eye(d);
      const unit = (k: number) => tf.tile(tf.slice(eye, [k, 0], [1, d]), [B, 1]);
      // Input jet: u = x (∂_k u = e_k, Δu = 0), plus r = |x| (∂_k r = x_k/r, Δr = (d−1)/r).
      let value: Tensor2D = x, lap: Tensor2D = tf.zeros([B, d]);
      let grads: Tensor2D[] = Array.from({ length: d }, (_, k) => unit(k) as Tensor2D);
      if (this.radial) {
        const r = radius(x);
        value = tf.concat([x, r], 1) as Tensor2D;
        grads = grads.map((gk, k) =>
          tf.concat([gk, tf.div(tf.slice(x, [0, k], [B, 1]), r)], 1) as Tensor2D
        );
        lap = tf.concat([lap, tf.div(d - 1, r)], 1) as Tensor2D;
      }
      if (!this.fourier) return tf.concat([value, ...grads, lap], 0) as Tensor2D;
      // z = uF is linear; sin and cos then map ∂s = c ∂z, Δs = c Δz − s Σ(∂z)² (and likewise cos).
      const z = tf.matMul(value, this.fourier);
      const dz = grads.map((gk) => tf.matMul(gk, this.fourier!));
      const lz = tf.matMul(lap, this.fourier);
      const s = tf.sin(z), c = tf.cos(z);
      const sq = tf.addN(dz.map((t) => tf.square(t)));
      const fg = dz.map((t) => tf.concat([tf.mul(c, t), tf.neg(tf.mul(s, t))], 1));
      const fl = tf.concat([
        tf.sub(tf.mul(c, lz), tf.mul(s, sq)),
        tf.neg(tf.add(tf.mul(s, lz), tf.mul(c, sq))),
      ], 1);
      return tf.concat([tf.concat([s, c], 1), ...fg, fl], 0) as Tensor2D;
    });
  }

  /** Evaluates points given as rows of numbers. */
  predict(inputs: number[][] | number[]): number[][] {
    return predictPoints(this, inputs);
  }

  /**
   * Disjoint networks: re-draws network `mode` (He-normal weights, zero biases, as at construction;
   * with `featuresFrom`, only the last layer, the others copied from that network) and returns the
   * masks of its entries in every variable. A shared MLP throws.
   */
  reinitializeOutput(mode: number, rng: Rng, options: ReinitializeOptions = {}): Tensor[] {
    assertOutputIndex(mode, this.outputDim);
    const from = options.featuresFrom;
    if (from !== undefined) assertOutputIndex(from, this.outputDim);
    if (this.groups === 1) {
      throw new RangeError(
        `Cannot re-initialise output ${mode} of a shared MLP: its outputs share every parameter ` +
          "(use disjoint networks)",
      );
    }
    if (this.modesPerNetwork > 1) {
      throw new RangeError(
        `Cannot re-initialise output ${mode} alone: its network serves ${this.modesPerNetwork} modes`,
      );
    }
    const G = this.groups;
    const masks: Tensor[] = [];
    const lastLayer = this.weights.length - 1;
    this.weights.forEach((w, k) => {
      const fanIn = this.widths[k], h = this.widths[k + 1];
      const copy = from !== undefined && k < lastLayer;
      const fresh = copy ? null : rng.normals(fanIn * h, { std: this.#initStd[k] });
      // The first layer holds the networks side by side as column blocks, later ones as groups.
      const [block, axis] = k === 0
        ? [copy ? tf.slice(w, [0, from! * h], [fanIn, h]) : tf.tensor2d(fresh!, [fanIn, h]), 1]
        : [
          copy ? tf.slice(w, [from!, 0, 0], [1, fanIn, h]) : tf.tensor3d(fresh!, [1, fanIn, h]),
          0,
        ];
      const before = mode * (k === 0 ? h : 1), after = (G - mode - 1) * (k === 0 ? h : 1);
      const stitched = (fill: (shape: number[]) => Tensor, middle: Tensor) =>
        tf.concat(
          [
            fill(axis === 1 ? [fanIn, before] : [before, fanIn, h]),
            middle,
            fill(axis === 1 ? [fanIn, after] : [after, fanIn, h]),
          ],
          axis,
        );
      tf.tidy(() => {
        const mask = stitched(tf.zeros, tf.onesLike(block));
        w.assign(tf.where(tf.cast(mask, "bool"), stitched(tf.zeros, block), w));
        masks.push(tf.keep(mask));
      });
      block.dispose();
      const b = this.biases[k];
      const bMask = tf.tidy(() =>
        tf.concat([tf.zeros([mode * h]), tf.ones([h]), tf.zeros([(G - mode - 1) * h])])
      );
      tf.tidy(() => {
        const kept = tf.mul(b, tf.sub(1, bMask));
        if (!copy) return b.assign(kept);
        const source = tf.slice(b, [from! * h], [h]);
        const moved = tf.concat([tf.zeros([mode * h]), source, tf.zeros([(G - mode - 1) * h])]);
        b.assign(tf.add(kept, moved));
      });
      masks.push(bMask);
    });
    return masks;
  }

  /** Frees variables and the Fourier matrix. */
  dispose(): void {
    this.variables.forEach((v) => v.dispose());
    this.fourier?.dispose();
  }
}

/**
 * Rows `idx` of `table` as oneHot(idx)·table: WASM has no kernel for tf.gather's gradient
 * (UnsortedSegmentSum), while a matMul's gradient runs everywhere. The one-hot matrix is made as
 * int32 and cast: tfjs-wasm 4.22's OneHot kernel returns zeros when asked for float32 directly.
 *
 * @example Rows 2 and 0 of a 3×2 table
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { gatherRows, initBackend } from "../mod.ts";
 * await initBackend();
 * const table = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
 * const idx = tf.tensor1d([2, 0], "int32");
 * const rows = gatherRows(table, idx);
 * console.log(rows.arraySync()); // [ [ 5, 6 ], [ 1, 2 ] ]
 * tf.dispose([table, idx, rows]);
 * ```
 */
export function gatherRows(table: Tensor2D, idx: Tensor1D): Tensor2D {
  return tf.tidy(() => tf.matMul(tf.cast(tf.oneHot(idx, table.shape[0]), "float32"), table));
}

/** What a traced evaluation of one mode chunk keeps: each layer's input rows and slopes. */
interface ChunkTrace {
  /** The chunk's weights and biases (the variables themselves, or kept split parts). */
  weights: Tensor[];
  biases: Tensor[];
  /**
   * Inputs of layers 1 … n−1, whole: the reverse pass covers their first rows (the points it was
   * asked for, or a jet's value rows), which the fused kernel reads in place.
   */
  inputs: Tensor2D[];
  /** σ'(z) of layers 0 … n−2 (value rows). */
  slopes: Tensor2D[];
}

/** The tensors an {@linkcode Mlp} keeps for its reverse pass, freed together. */
class MlpTrace {
  chunks: ChunkTrace[] = [];
  /** The first layer's input rows (features), whole as the inputs, shared by every chunk. */
  features: Tensor2D | null = null;
  #owned: Tensor[] = [];

  start(
    chunks: { weights: Tensor[]; biases: Tensor[] }[],
    features: Tensor2D,
    splitParts: boolean,
  ): void {
    this.features = features;
    this.#owned.push(features);
    for (const c of chunks) {
      // Split parts are made in the caller's tidy; the variables themselves are not ours to free.
      if (splitParts) this.#owned.push(...c.weights.map(tf.keep), ...c.biases.map(tf.keep));
      this.chunks.push({ weights: c.weights, biases: c.biases, inputs: [], slopes: [] });
    }
  }

  dispose(): void {
    tf.dispose([...this.#owned, ...this.chunks.flatMap((c) => [...c.inputs, ...c.slopes])]);
    this.#owned = [];
    this.chunks = [];
    this.features = null;
  }
}

/** [B, G·h] times [G, h, h'] group by group, as [B, G·h'] (plain 2-D products). */
function groupProducts(x: Tensor2D, w: Tensor3D): Tensor2D {
  const [G, h, h2] = w.shape;
  if (G === 1) return tf.matMul(x, tf.reshape(w, [h, h2]) as Tensor2D);
  const mats = tf.unstack(w), parts = tf.split(x, G, 1);
  return tf.concat(
    parts.map((p, i) => tf.matMul(p as Tensor2D, mats[i] as Tensor2D)),
    1,
  ) as Tensor2D;
}

/** [B, G·h] (group after group) as [G, B, h]. */
function groupMajor(x: Tensor2D, G: number): Tensor3D {
  const [B, w] = x.shape;
  return tf.transpose(tf.reshape(x, [B, G, w / G]), [1, 0, 2]) as Tensor3D;
}

/**
 * `model.apply` on points given as rows of numbers (or bare numbers for 1-D inputs), as plain
 * arrays: the `predict` of every point-input model.
 *
 * @example Three 1-D points, given as bare numbers, through a 2-output network
 * ```ts
 * import { initBackend, Mlp, predictPoints, Rng } from "../mod.ts";
 * await initBackend();
 * const net = new Mlp({ inputDim: 1, outputs: 2, hidden: [8], rng: new Rng(0) });
 * const values = predictPoints(net, [-1, 0, 1]);
 * console.log(values.length, values[0].length); // 3 2
 * net.dispose();
 * ```
 */
export function predictPoints(model: Model, inputs: number[][] | number[]): number[][] {
  const rows = inputs.map((r) => (Array.isArray(r) ? r : [r]));
  return readAndDispose(
    tf.tidy(() => model.apply(tf.tensor2d(rows, [rows.length, model.inputDim]))),
  );
}

/**
 * The rows of `t`, which is disposed. (Returning the arrays from `tf.tidy` instead would make it
 * walk every number looking for tensors: ~0.4 s per million.)
 */
function readAndDispose(t: Tensor2D): number[][] {
  try {
    return t.arraySync();
  } finally {
    t.dispose();
  }
}

function indexTensor(inputs: number[][] | number[], n: number): Tensor1D {
  const idx = inputs.map((r) => (Array.isArray(r) ? r[0] : r));
  idx.forEach((i) => {
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new RangeError(`Invalid index ${i}: indices must be integers in [0, ${n})`);
    }
  });
  return tf.tensor1d(idx, "int32");
}

function assertIndexBatch(x: Tensor): void {
  if (x.rank !== 1 || x.dtype !== "int32") {
    throw new RangeError(
      `Mismatched input: index models take an int32 tensor of shape [B], got ${x.dtype} [${
        x.shape.join(", ")
      }]`,
    );
  }
}

/** Options of {@linkcode TabularModel}. */
export interface TabularOptions {
  /** Number of indices n. */
  size: number;
  /** Number of outputs L. */
  outputs: number;
  /** Standard deviation of the initial values; default 0.1. */
  initStd?: number;
  /** Generator for the initialisation. */
  rng: Rng;
}

/**
 * One free value per (index, mode): the exact, non-parametric model of a function on n points.
 *
 * @example
 * ```ts
 * import { initBackend, Rng, TabularModel } from "../mod.ts";
 * await initBackend();
 * const table = new TabularModel({ size: 5, outputs: 2, rng: new Rng(0) });
 * console.log(table.predict([0, 4]).length); // 2
 * table.dispose();
 * ```
 */
export class TabularModel implements Model {
  readonly kind = "tabular";
  readonly inputDim = 1;
  readonly outputDim: number;
  readonly variables: Variable[];
  readonly variableNames = ["table"];
  /** Number of indices. */
  readonly size: number;

  /** Creates the table with normal initial values. */
  constructor(options: TabularOptions) {
    assertPositiveInteger(options.size, "table size");
    assertPositiveInteger(options.outputs, "number of outputs");
    this.size = options.size;
    this.outputDim = options.outputs;
    const init = tf.tensor2d(
      options.rng.normals(options.size * options.outputs, { std: options.initStd ?? 0.1 }),
      [options.size, options.outputs],
    );
    this.variables = [tf.variable(init)];
    init.dispose();
  }

  /** Looks up rows: [B] int32 → [B, L]. */
  apply(x: Tensor): Tensor2D {
    assertIndexBatch(x);
    return gatherRows(this.variables[0] as Tensor2D, x as Tensor1D);
  }

  /** Evaluates indices. */
  predict(inputs: number[][] | number[]): number[][] {
    return readAndDispose(tf.tidy(() => this.apply(indexTensor(inputs, this.size))));
  }

  /** Frees the table. */
  dispose(): void {
    this.variables.forEach((v) => v.dispose());
  }
}

/** Options of {@linkcode EmbeddingMlp}. */
export interface EmbeddingMlpOptions {
  /** Number of indices n. */
  size: number;
  /** Width of the learned index embedding; default 16. */
  embeddingDim?: number;
  /** Number of outputs L. */
  outputs: number;
  /** Hidden widths of the MLP; default [64, 64]. */
  hidden?: number[];
  /** Activation; default `tanh`. */
  activation?: string;
  /** Generator for the initialisation. */
  rng: Rng;
}

/**
 * An MLP on learned index embeddings: f(i) = MLP(e_i), with e_i a trainable row of an n×E table.
 *
 * @example
 * ```ts
 * import { EmbeddingMlp, initBackend, Rng } from "../mod.ts";
 * await initBackend();
 * const net = new EmbeddingMlp({ size: 10, outputs: 2, rng: new Rng(0) });
 * console.log(net.predict([3])[0].length); // 2
 * net.dispose();
 * ```
 */
export class EmbeddingMlp implements Model {
  readonly kind = "embedding-mlp";
  readonly inputDim = 1;
  readonly outputDim: number;
  readonly variables: Variable[];
  readonly variableNames: string[];
  /** Number of indices. */
  readonly size: number;
  /** The MLP on embeddings. */
  readonly mlp: Mlp;
  /** The embedding table n×E. */
  readonly embedding: Variable;

  /** Creates the embedding (N(0,1) entries) and the MLP. */
  constructor(options: EmbeddingMlpOptions) {
    assertPositiveInteger(options.size, "number of indices");
    const e = options.embeddingDim ?? 16;
    assertPositiveInteger(e, "embedding width");
    this.size = options.size;
    this.outputDim = options.outputs;
    const init = tf.tensor2d(options.rng.normals(options.size * e), [options.size, e]);
    this.embedding = tf.variable(init);
    init.dispose();
    this.mlp = new Mlp({
      inputDim: e,
      outputs: options.outputs,
      hidden: options.hidden ?? [64, 64],
      activation: options.activation ?? "tanh",
      rng: options.rng,
    });
    this.variables = [this.embedding, ...this.mlp.variables];
    this.variableNames = ["embedding", ...this.mlp.variableNames];
  }

  /** [B] int32 → [B, L]. */
  apply(x: Tensor): Tensor2D {
    assertIndexBatch(x);
    return tf.tidy(() => this.mlp.apply(gatherRows(this.embedding as Tensor2D, x as Tensor1D)));
  }

  /** Evaluates indices. */
  predict(inputs: number[][] | number[]): number[][] {
    return readAndDispose(tf.tidy(() => this.apply(indexTensor(inputs, this.size))));
  }

  /** Frees the variables. */
  dispose(): void {
    this.embedding.dispose();
    this.mlp.dispose();
  }
}
