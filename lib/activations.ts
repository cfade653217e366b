/**
 * Activation functions with their first and second derivatives as tensor functions, so that
 * forward-mode propagation of value, gradient and Laplacian needs no higher-order autodiff.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor } from "./types.ts";
import { parseChoice } from "./checks.ts";

/** The activations the models accept. */
export const ACTIVATION_NAMES = ["softplus", "silu", "tanh", "sin"] as const;

/** Name of an activation. */
export type ActivationName = typeof ACTIVATION_NAMES[number];

/** An activation σ with σ' and σ''. */
export interface Activation {
  /** Its name. */
  name: ActivationName;
  /** σ(z). */
  fn(z: Tensor): Tensor;
  /** σ'(z). */
  d1(z: Tensor): Tensor;
  /** σ''(z). */
  d2(z: Tensor): Tensor;
  /**
   * Whether tfjs 4.22's nested gradients of σ are right: not for ops whose gradient uses their
   * saved output (tanh, sigmoid), whose second derivative comes out wrong.
   */
  secondOrderAutodiffSafe: boolean;
}

const ACTIVATIONS: Record<ActivationName, Activation> = {
  softplus: {
    name: "softplus",
    fn: (z) => tf.softplus(z),
    d1: (z) => tf.sigmoid(z),
    d2: (z) => {
      const s = tf.sigmoid(z);
      return tf.mul(s, tf.sub(1, s));
    },
    secondOrderAutodiffSafe: true,
  },
  // SiLU z·s(z), s the logistic sigmoid: built from tfjs-wasm's vectorised Sigmoid kernel, whereas
  // its Softplus is a scalar libm loop (≈ 9× slower per element, a quarter of a hydrogen step).
  silu: {
    name: "silu",
    fn: (z) => tf.mul(z, tf.sigmoid(z)),
    d1: (z) => {
      const s = tf.sigmoid(z);
      return tf.mul(s, tf.add(1, tf.mul(z, tf.sub(1, s))));
    },
    d2: (z) => {
      const s = tf.sigmoid(z);
      return tf.mul(tf.mul(s, tf.sub(1, s)), tf.add(2, tf.mul(z, tf.sub(1, tf.mul(2, s)))));
    },
    secondOrderAutodiffSafe: false,
  },
  tanh: {
    name: "tanh",
    fn: (z) => tf.tanh(z),
    d1: (z) => tf.sub(1, tf.square(tf.tanh(z))),
    d2: (z) => {
      const t = tf.tanh(z);
      return tf.mul(-2, tf.mul(t, tf.sub(1, tf.square(t))));
    },
    secondOrderAutodiffSafe: false,
  },
  sin: {
    name: "sin",
    fn: (z) => tf.sin(z),
    d1: (z) => tf.cos(z),
    d2: (z) => tf.neg(tf.sin(z)),
    secondOrderAutodiffSafe: true,
  },
};

/**
 * Looks up an activation; throws naming the allowed ones.
 *
 * @example softplus and its derivatives at 0: ln 2, ½, ¼
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs@4.22.0";
 * import { activation, initBackend } from "../mod.ts";
 * await initBackend();
 * const softplus = activation("softplus");
 * const z = tf.scalar(0);
 * const values = tf.tidy(() =>
 *   [softplus.fn(z), softplus.d1(z), softplus.d2(z)].map((t) => t.dataSync()[0])
 * );
 * console.log(values.map((x) => x.toFixed(4))); // [ "0.6931", "0.5000", "0.2500" ]
 * z.dispose();
 * ```
 */
export function activation(name: string): Activation {
  return ACTIVATIONS[parseChoice(name, { what: "activation", allowed: ACTIVATION_NAMES })];
}
