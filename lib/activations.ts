/**
 * Activation functions with their first and second derivatives as tensor functions, so that
 * forward-mode propagation of value, gradient and Laplacian needs no higher-order autodiff.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor } from "./types.ts";

/** The activations the models accept. */
export const ACTIVATION_NAMES = ["softplus", "tanh", "sin"] as const;

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
  },
  tanh: {
    name: "tanh",
    fn: (z) => tf.tanh(z),
    d1: (z) => tf.sub(1, tf.square(tf.tanh(z))),
    d2: (z) => {
      const t = tf.tanh(z);
      return tf.mul(-2, tf.mul(t, tf.sub(1, tf.square(t))));
    },
  },
  sin: {
    name: "sin",
    fn: (z) => tf.sin(z),
    d1: (z) => tf.cos(z),
    d2: (z) => tf.neg(tf.sin(z)),
  },
};

/** Looks up an activation; throws naming the allowed ones. */
export function activation(name: string): Activation {
  if (!(ACTIVATION_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(
      `Unknown activation "${name}": allowed values are ${ACTIVATION_NAMES.join(", ")}`,
    );
  }
  return ACTIVATIONS[name as ActivationName];
}
