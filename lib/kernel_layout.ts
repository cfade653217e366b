/**
 * Which arrangement of kernels pays on the active backend. On WASM (and the plain CPU backend) many
 * small kernels on cache-sized blocks win: per-mode 2-D matMuls, mode chunks that fit in a core's
 * cache, transposes made explicit for flag-free matMuls. On a GPU every kernel is a dispatch with a
 * fixed cost, so fewer, bigger kernels win: one batched matMul per layer over all modes, no chunks,
 * and matMuls that read transposed operands through their flags.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";

/** Whether the active backend prefers few batched kernels (a GPU) to many cache-sized ones. */
export function prefersBatchedKernels(): boolean {
  return tf.getBackend() === "webgpu";
}
