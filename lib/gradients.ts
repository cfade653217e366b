/**
 * Gradient overrides registered on TensorFlow.js's global registry.
 *
 * tfjs's own BatchMatMul gradient uses the `transposeA`/`transposeB` flags, which the WASM backend
 * runs 15–25× slower than a plain matMul. The gradient below forms the same products with an
 * explicit transpose followed by a flag-free matMul: same numbers, several times faster on WASM.
 * Where the toolkit's own WASM matMul kernel runs (lib/wasm_kernels.ts), aᵀ·b keeps the flag: that
 * kernel reads a transposed A directly.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor, Tensor3D } from "./types.ts";
import { simdMatMulHandles } from "./wasm_kernels.ts";

/** Transposes the last two axes (rank 2 or 3). */
export function swapLastAxes(x: Tensor): Tensor {
  return x.rank === 2 ? tf.transpose(x) : tf.transpose(x, [0, 2, 1]);
}

/** Plain matMul without transpose flags, on rank-2 or equal-batch rank-3 tensors. */
function mm(a: Tensor, b: Tensor): Tensor {
  return tf.matMul(a as Tensor3D, b as Tensor3D);
}

/**
 * aᵀ·b: with the `transposeA` flag where the vectorised WASM kernel runs it (it reads A through
 * strides, saving the transpose), with an explicit transpose elsewhere.
 */
function mmTransposeA(a: Tensor, b: Tensor): Tensor {
  return simdMatMulHandles(a.shape, b.shape, { transposeA: true })
    ? tf.matMul(a as Tensor3D, b as Tensor3D, true, false)
    : mm(swapLastAxes(a), b);
}

let registered = false;

/** Registers the flag-free BatchMatMul gradient once per process. */
export function registerFastGradients(): void {
  if (registered) return;
  registered = true;
  tf.registerGradient({
    kernelName: "BatchMatMul",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      const t = swapLastAxes;
      const dyt = dy as Tensor;
      if (!transposeA && !transposeB) {
        return { a: () => mm(dyt, t(b)), b: () => mmTransposeA(a, dyt) };
      }
      if (!transposeA && transposeB) {
        return { a: () => mm(dyt, b), b: () => mmTransposeA(dyt, a) };
      }
      if (transposeA && !transposeB) {
        return { a: () => mm(b, t(dyt)), b: () => mm(a, dyt) };
      }
      return { a: () => mm(t(b), t(dyt)), b: () => mm(t(dyt), t(a)) };
    },
  });
}
