/**
 * Small row-wise tensor helpers shared by the models (internal: not re-exported by mod.ts).
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor2D } from "./types.ts";

/** The first `rows` rows of x (a clone of x when that is all of them). */
export function rowBlock(x: Tensor2D, rows: number): Tensor2D {
  return rows === x.shape[0] ? tf.clone(x) : tf.slice(x, [0, 0], [rows, -1]) as Tensor2D;
}

/** |x| per row as [B, 1], kept off zero so that x/|x| stays finite at the origin. */
export function radius(x: Tensor2D): Tensor2D {
  return tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12)) as Tensor2D;
}
