/**
 * Gradient overrides registered on TensorFlow.js's global registry.
 *
 * tfjs's own BatchMatMul gradient uses the `transposeA`/`transposeB` flags, which the WASM backend
 * runs 15–25× slower than a plain matMul. The gradient below forms the same products with an
 * explicit transpose followed by a flag-free matMul: same numbers, several times faster on WASM.
 * Where the toolkit's own WASM matMul kernel runs (lib/wasm_kernels.ts), aᵀ·b keeps the flag: that
 * kernel reads a transposed A directly. On a GPU (WebGPU) every product keeps its flags: there the
 * matMul reads transposes through strides and an explicit transpose is one more dispatch.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import type { Tensor, Tensor3D } from "./types.ts";
import { prefersBatchedKernels } from "./kernel_layout.ts";
import { simdMatMulHandles } from "./wasm_kernels.ts";

/** Transposes the last two axes (rank 2 or 3). */
export function swapLastAxes(x: Tensor): Tensor {
  return x.rank === 2 ? tf.transpose(x) : tf.transpose(x, [0, 2, 1]);
}

/**
 * The product op(a)·op(b), op a transpose where asked: with the matMul's own flags on a GPU and
 * where the vectorised WASM kernel takes them (it reads a transposed A through strides and packs a
 * transposed B by 4×4 transposes), with an explicit transpose followed by a flag-free matMul
 * elsewhere. Reverse passes written by hand use it too.
 */
export function transposedProduct(
  a: Tensor,
  b: Tensor,
  options: { transposeA?: boolean; transposeB?: boolean },
): Tensor {
  return product(a, b, options.transposeA ?? false, options.transposeB ?? false);
}

function product(a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean): Tensor {
  if (
    prefersBatchedKernels() ||
    ((transposeA || transposeB) && simdMatMulHandles(a.shape, b.shape, { transposeA, transposeB }))
  ) {
    return tf.matMul(a as Tensor3D, b as Tensor3D, transposeA, transposeB);
  }
  const op = (x: Tensor, t: boolean) => t ? swapLastAxes(x) : x;
  return tf.matMul(op(a, transposeA) as Tensor3D, op(b, transposeB) as Tensor3D);
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
      const dyt = dy as Tensor;
      if (!transposeA && !transposeB) {
        return { a: () => product(dyt, b, false, true), b: () => product(a, dyt, true, false) };
      }
      if (!transposeA && transposeB) {
        return { a: () => product(dyt, b, false, false), b: () => product(dyt, a, true, false) };
      }
      if (transposeA && !transposeB) {
        return { a: () => product(b, dyt, false, true), b: () => product(a, dyt, false, false) };
      }
      return { a: () => product(b, dyt, true, true), b: () => product(dyt, a, true, true) };
    },
  });
}
