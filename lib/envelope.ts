/**
 * Per-mode radial envelopes multiplying a model: f_l(x) = u_l(x)·exp(α_l r + γ_l r²), r = |x|.
 *
 * An `exponential` envelope exp(−r/s_l) builds in the decay of bound states (hydrogen); a `gaussian`
 * one exp(−r²/(2 s_l²)) that of oscillators. The scales s_l are trainable (stored as log s_l).
 * `inverseSqrtGaussian: σ` also multiplies by exp(r²/(4σ²)) ∝ 1/√p for p = N(0, σ²I), so that the
 * network and envelope describe ψ itself while f = ψ/√p is what the importance representation needs.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor, Tensor2D, Tensor3D, Variable } from "./types.ts";
import { assertPositive, parseChoice } from "./checks.ts";
import {
  assertOutputIndex,
  type Jet,
  type JetOptions,
  type Model,
  predictPoints,
  type Pullback,
  type PullbackOptions,
  type ReinitializeOptions,
} from "./models.ts";
import type { Rng } from "./random.ts";
import { radius, rowBlock } from "./tensor_rows.ts";

/** The envelope shapes. */
export const ENVELOPE_KINDS = ["exponential", "gaussian"] as const;

/** An envelope shape. */
export type EnvelopeKind = typeof ENVELOPE_KINDS[number];

/** Options of {@linkcode EnvelopeModel}. */
export interface EnvelopeOptions {
  /** `exponential` exp(−r/s) or `gaussian` exp(−r²/(2s²)). */
  kind: string;
  /** Initial scales s_l, one per mode (or one for all). */
  scales: number[];
  /** Whether the scales are trained; default true. */
  trainable?: boolean;
  /** Multiply by exp(r²/(4σ²)) ∝ 1/√p for the Gaussian sampling density N(0, σ²I). */
  inverseSqrtGaussian?: number;
}

/**
 * A model times per-mode radial envelopes, with exact forward-mode jets by the product rule:
 * ∇f = e∇u + u∇e, Δf = eΔu + 2∇u·∇e + uΔe, where for e = exp(a), a = αr + γr²:
 * ∇e = e·x(α/r + 2γ), Δe = e(α(d−1)/r + 2γd + (α + 2γr)²).
 *
 * @example
 * ```ts
 * import { EnvelopeModel, initBackend, Mlp, Rng } from "../mod.ts";
 * await initBackend();
 * const base = new Mlp({ inputDim: 2, outputs: 2, hidden: [8], rng: new Rng(0) });
 * const model = new EnvelopeModel(base, { kind: "exponential", scales: [1, 3] });
 * console.log(model.predict([[0, 0]])[0].length); // 2
 * model.dispose();
 * ```
 */
export class EnvelopeModel implements Model {
  readonly kind: string;
  readonly inputDim: number;
  readonly outputDim: number;
  readonly variables: Variable[];
  readonly variableNames: string[];
  readonly secondOrderAutodiffSafe = false;
  /** The wrapped model. */
  readonly base: Model;
  /** The envelope shape. */
  readonly envelope: EnvelopeKind;
  /** log s_l, shape [1, L]. */
  readonly logScales: Variable;
  readonly #initialLogScales: number[];
  /** 1/(4σ²) for the inverse-√p factor, or 0. */
  readonly inverseSqrtCoefficient: number;

  /** Wraps `base`. */
  constructor(base: Model, options: EnvelopeOptions) {
    parseChoice(options.kind, { what: "envelope", allowed: ENVELOPE_KINDS });
    const L = base.outputDim;
    const scales = options.scales.length === 1
      ? new Array(L).fill(options.scales[0])
      : options.scales;
    if (scales.length !== L) {
      throw new RangeError(`Mismatched envelope scales: ${scales.length} given for ${L} modes`);
    }
    scales.forEach((s, l) => {
      if (!(s > 0) || !Number.isFinite(s)) {
        throw new RangeError(`Invalid envelope scale ${s} for mode ${l + 1}: it must be positive`);
      }
    });
    const sigma = options.inverseSqrtGaussian;
    if (sigma !== undefined) assertPositive(sigma, "density standard deviation");
    this.base = base;
    this.envelope = options.kind as EnvelopeKind;
    this.kind = `${base.kind}+${options.kind}-envelope`;
    this.inputDim = base.inputDim;
    this.outputDim = L;
    this.#initialLogScales = scales.map(Math.log);
    const init = tf.tensor2d([this.#initialLogScales]);
    this.logScales = tf.variable(init, options.trainable ?? true);
    init.dispose();
    this.inverseSqrtCoefficient = sigma ? 1 / (4 * sigma * sigma) : 0;
    this.variables = options.trainable === false
      ? base.variables
      : [...base.variables, this.logScales];
    this.variableNames = options.trainable === false
      ? base.variableNames
      : [...base.variableNames, "envelope.logScale"];
  }

  /**
   * α and γ of a = αr + γr², each [1, L], or null where identically zero (γ of an exponential
   * envelope without the inverse-√p factor, α of a Gaussian one): a zero term adds +0, so leaving
   * it out gives the same numbers with fewer kernels (the default hydrogen job's jet ran ~10 on it).
   */
  #coefficients(): [Tensor2D, Tensor2D | null] | [null, Tensor2D] {
    const inv = tf.exp(tf.neg(this.logScales));
    const c = this.inverseSqrtCoefficient;
    if (this.envelope === "exponential") {
      return [
        tf.neg(inv) as Tensor2D,
        c === 0 ? null : tf.fill([1, this.outputDim], c) as Tensor2D,
      ];
    }
    return [null, tf.add(tf.mul(-0.5, tf.square(inv)), c) as Tensor2D];
  }

  /** exp(αr + γr²), [B, L]. */
  #value(r: Tensor2D, [alpha, gamma]: (Tensor2D | null)[]): Tensor2D {
    const linear = alpha && tf.mul(r, alpha), quadratic = gamma && tf.mul(tf.square(r), gamma);
    return tf.exp(
      linear && quadratic ? tf.add(linear, quadratic) : (linear ?? quadratic)!,
    ) as Tensor2D;
  }

  /** f = u·e. */
  apply(x: Tensor): Tensor2D {
    return tf.tidy(() => {
      const r = radius(x as Tensor2D);
      return tf.mul(this.base.apply(x), this.#value(r, this.#coefficients())) as Tensor2D;
    });
  }

  /** Whether the base model has its own reverse pass ({@linkcode Model.reversePass}). */
  get reversePass(): boolean {
    return this.base.reversePass === true;
  }

  /**
   * f = u·e with the reverse pass kept: the base model's for u (output gradient g·e) and, for
   * trained scales, the envelope's ∂/∂log s = Σ_b g·u·∂e/∂log s (u held fixed).
   */
  applyWithPullback(
    x: Tensor2D,
    options: PullbackOptions = {},
  ): { value: Tensor2D; pullback: Pullback } {
    const u = baseApplyWithPullback(this.base, x, options);
    const rows = options.rows ?? x.shape[0];
    const kept = tf.tidy(() => {
      const r = radius(x as Tensor2D);
      const e = this.#value(r, this.#coefficients());
      const value = tf.mul(u.value, e) as Tensor2D;
      const part = (t: Tensor2D) => rowBlock(t, rows);
      // Kept past any enclosing tidy, like the base model's own.
      return { value, r: tf.keep(part(r)), e: tf.keep(part(e)), u: tf.keep(part(u.value)) };
    });
    u.value.dispose();
    return { value: kept.value, pullback: this.#pullback(u.pullback, kept) };
  }

  #pullback(base: Pullback, kept: { r: Tensor2D; e: Tensor2D; u: Tensor2D }): Pullback {
    const scaled = scaledPullback(base, kept.e);
    return {
      gradients: (g: Tensor2D) =>
        tf.tidy(() => {
          const grads = scaled.gradients(g);
          if (this.variables.length === grads.length) return grads;
          return [...grads, this.#scaleGradient(g, kept)];
        }),
      dispose: () => {
        scaled.dispose();
        tf.dispose([kept.r, kept.u]);
      },
    };
  }

  /**
   * ∂/∂log s of Σ g·u·e with u held fixed (the scales enter only through e): Σ_b g·u·e·∂a/∂log s,
   * where ∂a/∂log s = r/s (exponential) or r²/s² (gaussian). Written out in the order tfjs's tape
   * applies the chain rule through `#coefficients` and `#value` (the same numbers, bit for bit, in
   * a one-off comparison), in 7–9 kernels where a taped product ran ~40: about a millisecond of
   * the default hydrogen job's step.
   */
  #scaleGradient(g: Tensor2D, kept: { r: Tensor2D; e: Tensor2D; u: Tensor2D }): Tensor2D {
    const inv = tf.exp(tf.neg(this.logScales));
    const dA = tf.mul(tf.mul(g, kept.u), kept.e); // ∂/∂a, [B, L]
    if (this.envelope === "exponential") {
      // a = −inv·r + γr²: ∂/∂α summed over the batch, then through α = −inv, inv = e^(−log s)
      return tf.mul(tf.sum(tf.mul(dA, kept.r), 0, true), inv) as Tensor2D;
    }
    // a = γr² with γ = −inv²/2 + c
    const dGamma = tf.sum(tf.mul(dA, tf.square(kept.r)), 0, true);
    return tf.neg(tf.mul(tf.mul(tf.mul(dGamma, -0.5), tf.mul(inv, 2)), inv)) as Tensor2D;
  }

  /** Exact jet by the product rule; with `pullback`, also its reverse pass (see applyWithPullback). */
  jet(x: Tensor2D, options: JetOptions = {}): Jet {
    const u = baseJet(this.base, x, options);
    const out = tf.tidy(() => {
      const d = this.inputDim;
      const coefficients = this.#coefficients();
      const [alpha, gamma] = coefficients;
      const r = radius(x as Tensor2D);
      const e = this.#value(r, coefficients);
      // Sums with a zero term (a null coefficient) are left out: the same numbers.
      const sum = (a: Tensor | null, b: Tensor | null) => (a && b ? tf.add(a, b) : (a ?? b)!);
      const twoGamma = gamma && tf.mul(2, gamma);
      const radialRate = sum(alpha && tf.div(alpha, r), twoGamma); // ∂_k a = x_k·rate, [B, L]
      const xt = tf.expandDims(tf.transpose(x), 2); // [d, B, 1]
      const grad_e = tf.mul(tf.mul(xt, radialRate), e) as Tensor3D; // [d, B, L]
      const slope = sum(alpha, twoGamma && tf.mul(twoGamma, r));
      const lapA = sum(alpha && tf.div(tf.mul(alpha, d - 1), r), gamma && tf.mul(gamma, 2 * d));
      const lap_e = tf.mul(e, tf.add(lapA, tf.square(slope)));
      const value = tf.mul(u.value, e) as Tensor2D;
      const grad = tf.add(tf.mul(u.grad, e), tf.mul(grad_e, u.value)) as Tensor3D;
      const lap = tf.add(
        tf.add(tf.mul(u.lap, e), tf.mul(2, tf.sum(tf.mul(u.grad, grad_e), 0))),
        tf.mul(u.value, lap_e),
      ) as Tensor2D;
      if (!u.pullback) return { value, grad, lap };
      // Kept past any enclosing tidy, like the base model's own (u.value is kept below).
      return { value, grad, lap, r: tf.keep(r), e: tf.keep(e) };
    });
    tf.dispose([u.grad, u.lap]);
    const { value, grad, lap } = out;
    if (!u.pullback) {
      u.value.dispose();
      return { value, grad, lap };
    }
    const kept = { ...(out as typeof out & { r: Tensor2D; e: Tensor2D }), u: tf.keep(u.value) };
    return { value, grad, lap, pullback: this.#pullback(u.pullback, kept) };
  }

  /** Evaluates points given as rows of numbers. */
  predict(inputs: number[][] | number[]): number[][] {
    return predictPoints(this, inputs);
  }

  /** Re-draws output `mode` of the base model and resets its envelope scale to the initial one. */
  reinitializeOutput(
    mode: number,
    rng: Rng,
    options: ReinitializeOptions = {},
  ): (Tensor | null)[] {
    assertOutputIndex(mode, this.outputDim);
    const from = options.featuresFrom;
    if (from !== undefined) assertOutputIndex(from, this.outputDim);
    const masks = reinitializeBase(this.base, mode, rng, options);
    if (this.variables.length === masks.length) return masks;
    const L = this.outputDim;
    const mask = tf.tidy(() => tf.oneHot(tf.tensor1d([mode], "int32"), L).toFloat());
    tf.tidy(() =>
      this.logScales.assign(
        tf.where(
          tf.cast(mask, "bool"),
          from === undefined
            ? tf.fill([1, L], this.#initialLogScales[mode])
            : tf.tile(tf.slice(this.logScales, [0, from], [-1, 1]), [1, L]),
          this.logScales,
        ),
      )
    );
    return [...masks, mask];
  }

  /** Frees the base model and the scales. */
  dispose(): void {
    this.base.dispose();
    this.logScales.dispose();
  }
}

/** The wrapped model's jet (with its reverse pass where asked), or a clear error. */
function baseJet(base: Model, x: Tensor2D, options: JetOptions): Jet {
  if (!base.jet) throw new RangeError(`Model ${base.kind} has no forward-mode jet to wrap`);
  if (options.pullback && !base.reversePass) {
    throw new RangeError(`Model ${base.kind} has no reverse pass of its own to wrap`);
  }
  return base.jet(x, options);
}

/** The wrapped model's forward pass with its reverse pass kept, or a clear error. */
function baseApplyWithPullback(
  base: Model,
  x: Tensor2D,
  options: PullbackOptions,
): { value: Tensor2D; pullback: Pullback } {
  if (!base.applyWithPullback) {
    throw new RangeError(`Model ${base.kind} has no reverse pass of its own to wrap`);
  }
  return base.applyWithPullback(x, options);
}

/** The reverse pass of u·m for a fixed factor m (kept by the caller, freed here) and u's own. */
function scaledPullback(base: Pullback, factor: Tensor2D): Pullback {
  return {
    gradients: (g) => tf.tidy(() => base.gradients(tf.mul(g, factor) as Tensor2D)),
    dispose: () => {
      base.dispose();
      factor.dispose();
    },
  };
}

/** The base model's {@linkcode Model.reinitializeOutput}, or a clear error when it has none. */
function reinitializeBase(
  base: Model,
  mode: number,
  rng: Rng,
  options: ReinitializeOptions,
): (Tensor | null)[] {
  if (!base.reinitializeOutput) {
    throw new RangeError(
      `Cannot re-initialise output ${mode} of a ${base.kind} model: its outputs share parameters`,
    );
  }
  return base.reinitializeOutput(mode, rng, options);
}

/**
 * A model times the Dirichlet mask m(x) = Π_k (x_k − lower_k)(upper_k − x_k)/ℓ_k² (ℓ_k the box's
 * half-width), so every output vanishes on the walls of the box: the infinite well. Exact jets by
 * the product rule (∂_k m and Δm of the quadratic factors are closed-form).
 *
 * @example
 * ```ts
 * import { BoxMaskModel, initBackend, Mlp, Rng } from "../mod.ts";
 * await initBackend();
 * const base = new Mlp({ inputDim: 1, outputs: 2, hidden: [8], rng: new Rng(0) });
 * const model = new BoxMaskModel(base, { lower: [0], upper: [1] });
 * console.log(model.predict([[0], [1]]).flat().every((v) => Math.abs(v) < 1e-6)); // true
 * model.dispose();
 * ```
 */
export class BoxMaskModel implements Model {
  readonly kind: string;
  readonly inputDim: number;
  readonly outputDim: number;
  readonly variables: Variable[];
  readonly variableNames: string[];
  readonly secondOrderAutodiffSafe: boolean;
  /** The wrapped model. */
  readonly base: Model;
  /** Lower corner. */
  readonly lower: number[];
  /** Upper corner. */
  readonly upper: number[];

  /** Wraps `base`; throws on a malformed box. */
  constructor(base: Model, options: { lower: number[]; upper: number[] }) {
    const { lower, upper } = options;
    if (lower.length !== base.inputDim || upper.length !== base.inputDim) {
      throw new RangeError(
        `Mismatched box: lower has ${lower.length} and upper ${upper.length} entries for a ${base.inputDim}-dimensional model`,
      );
    }
    lower.forEach((lo, k) => {
      if (!(lo < upper[k])) {
        throw new RangeError(
          `Invalid box on axis ${k}: lower ${lo} must be less than upper ${upper[k]}`,
        );
      }
    });
    this.base = base;
    this.lower = lower;
    this.upper = upper;
    this.kind = `${base.kind}+box-mask`;
    this.inputDim = base.inputDim;
    this.outputDim = base.outputDim;
    this.variables = base.variables;
    this.variableNames = base.variableNames;
    this.secondOrderAutodiffSafe = base.secondOrderAutodiffSafe !== false;
  }

  /** The per-axis factors q_k = (x_k − lo)(hi − x_k)/ℓ², their derivatives and the mask, [B, 1] each. */
  #factors(x: Tensor2D) {
    const d = this.inputDim;
    const q: Tensor[] = [], dq: Tensor[] = [], d2q: number[] = [];
    for (let k = 0; k < d; k++) {
      const lo = this.lower[k], hi = this.upper[k], l2 = ((hi - lo) / 2) ** 2;
      const xk = tf.slice(x, [0, k], [-1, 1]);
      q.push(tf.div(tf.mul(tf.sub(xk, lo), tf.sub(hi, xk)), l2));
      dq.push(tf.div(tf.sub(lo + hi, tf.mul(2, xk)), l2));
      d2q.push(-2 / l2);
    }
    return { q, dq, d2q };
  }

  /** f = u·m. */
  apply(x: Tensor): Tensor2D {
    return tf.tidy(() => {
      const { q } = this.#factors(x as Tensor2D);
      return tf.mul(this.base.apply(x), q.reduce((a, b) => tf.mul(a, b))) as Tensor2D;
    });
  }

  /** Whether the base model has its own reverse pass ({@linkcode Model.reversePass}). */
  get reversePass(): boolean {
    return this.base.reversePass === true;
  }

  /** f = u·m with the reverse pass kept: the base model's, for the output gradient g·m. */
  applyWithPullback(
    x: Tensor2D,
    options: PullbackOptions = {},
  ): { value: Tensor2D; pullback: Pullback } {
    const u = baseApplyWithPullback(this.base, x, options);
    const rows = options.rows ?? x.shape[0];
    const [value, mask] = tf.tidy(() => {
      const { q } = this.#factors(x);
      const m = q.reduce((a, b) => tf.mul(a, b)) as Tensor2D;
      return [tf.mul(u.value, m) as Tensor2D, tf.keep(rowBlock(m, rows))];
    });
    u.value.dispose();
    return { value, pullback: scaledPullback(u.pullback, mask) };
  }

  /** Exact jet: ∂_k m = q'_k Π_{j≠k} q_j, Δm = Σ_k q''_k Π_{j≠k} q_j; with `pullback`, its reverse pass. */
  jet(x: Tensor2D, options: JetOptions = {}): Jet {
    const u = baseJet(this.base, x, options);
    const out = tf.tidy(() => {
      const d = this.inputDim;
      const { q, dq, d2q } = this.#factors(x);
      const others = (k: number) =>
        q.reduce((acc: Tensor, t, j) => (j === k ? acc : tf.mul(acc, t)), tf.onesLike(q[0]));
      const m = q.reduce((a, b) => tf.mul(a, b));
      const gm = Array.from({ length: d }, (_, k) => tf.mul(dq[k], others(k)));
      const lm = Array.from({ length: d }, (_, k) => tf.mul(d2q[k], others(k))).reduce((a, b) =>
        tf.add(a, b)
      );
      const gradM = tf.stack(gm) as Tensor3D; // [d, B, 1]
      return {
        value: tf.mul(u.value, m) as Tensor2D,
        grad: tf.add(tf.mul(u.grad, m), tf.mul(gradM, u.value)) as Tensor3D,
        lap: tf.add(
          tf.add(tf.mul(u.lap, m), tf.mul(2, tf.sum(tf.mul(u.grad, gradM), 0))),
          tf.mul(u.value, lm),
        ) as Tensor2D,
        // Kept past any enclosing tidy, like the base model's own.
        ...(u.pullback ? { mask: tf.keep(m as Tensor2D) } : {}),
      } as { value: Tensor2D; grad: Tensor3D; lap: Tensor2D; mask?: Tensor2D };
    });
    tf.dispose([u.value, u.grad, u.lap]);
    const { value, grad, lap, mask } = out;
    if (!u.pullback) return { value, grad, lap };
    return { value, grad, lap, pullback: scaledPullback(u.pullback, mask!) };
  }

  /** Evaluates points given as rows of numbers. */
  predict(inputs: number[][] | number[]): number[][] {
    return predictPoints(this, inputs);
  }

  /** Re-draws output `mode` of the base model. */
  reinitializeOutput(
    mode: number,
    rng: Rng,
    options: ReinitializeOptions = {},
  ): (Tensor | null)[] {
    return reinitializeBase(this.base, mode, rng, options);
  }

  /** Frees the base model. */
  dispose(): void {
    this.base.dispose();
  }
}
