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

/** What {@linkcode radius} adds to |x|² to keep |x| off zero. */
const RADIUS_OFFSET = 1e-12;

/** |x| per row as [B, 1], kept off zero so that x/|x| stays finite at the origin. */
export function radius(x: Tensor2D): Tensor2D {
  return tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), RADIUS_OFFSET)) as Tensor2D;
}

/**
 * The input jet [value; ∂₁; …; ∂_d; Δ] of u = x (∂_k u = e_k, Δu = 0), with r = |x| as a last
 * column when `radial` (∂_k r = x_k/r, Δr = (d−1)/r), as (d + 2)·B stacked rows: built on the host
 * in one upload, where tensor ops took ~19 kernels, and rounded as those ops round (r as
 * {@linkcode radius} computes it). For backends whose read-back is a copy (WASM, CPU).
 */
export function hostInputJet(x: Tensor2D, options: { radial: boolean }): Tensor2D {
  const [B, d] = x.shape, w = d + (options.radial ? 1 : 0);
  const xs = x.dataSync() as Float32Array;
  const rows = new Float32Array((d + 2) * B * w);
  const f = Math.fround, offset = f(RADIUS_OFFSET);
  for (let b = 0; b < B; b++) {
    const point = xs.subarray(b * d, (b + 1) * d);
    rows.set(point, b * w);
    for (let k = 0; k < d; k++) rows[((1 + k) * B + b) * w + k] = 1;
    if (!options.radial) continue;
    let squares = 0;
    for (let k = 0; k < d; k++) squares = f(squares + f(point[k] * point[k]));
    const r = f(Math.sqrt(f(squares + offset)));
    rows[b * w + d] = r;
    for (let k = 0; k < d; k++) rows[((1 + k) * B + b) * w + d] = f(point[k] / r);
    rows[((d + 1) * B + b) * w + d] = f((d - 1) / r);
  }
  return tf.tensor2d(rows, [(d + 2) * B, w]);
}
