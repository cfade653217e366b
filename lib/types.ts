/**
 * Names for the TensorFlow.js types that appear in the public API. They are the tfjs types
 * themselves (any tfjs tensor or variable can be passed), under this package's own documented names.
 *
 * @module
 */
import type * as tf from "npm:@tensorflow/tfjs@4.22.0";

/** A TensorFlow.js tensor of any rank. */
export type Tensor = tf.Tensor;
/** A rank-0 TensorFlow.js tensor. */
export type Scalar = tf.Scalar;
/** A rank-1 TensorFlow.js tensor. */
export type Tensor1D = tf.Tensor1D;
/** A rank-2 TensorFlow.js tensor (rows × columns). */
export type Tensor2D = tf.Tensor2D;
/** A rank-3 TensorFlow.js tensor. */
export type Tensor3D = tf.Tensor3D;
/** A trainable (or state) TensorFlow.js variable. */
export type Variable = tf.Variable;
