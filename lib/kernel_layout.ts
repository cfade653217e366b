/**
 * Which arrangement of kernels pays on the active backend. On WASM (and the plain CPU backend) many
 * small kernels on cache-sized blocks win: per-mode 2-D matMuls, mode chunks that fit in a core's
 * cache, transposes made explicit for flag-free matMuls. On a GPU every kernel is a dispatch with a
 * fixed cost, so fewer, bigger kernels win: one batched matMul per layer over all modes, no chunks,
 * and matMuls that read transposed operands through their flags. A read-back from a GPU waits at
 * least ~10 ms under Deno, so training there reads its losses once per block of steps.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";

/** Whether the active backend prefers few batched kernels (a GPU) to many cache-sized ones. */
export function prefersBatchedKernels(): boolean {
  return tf.getBackend() === "webgpu";
}

/**
 * Steps per read-back of the training losses on the active backend: 10 on a GPU (a read-back waits
 * ≥ 10 ms under Deno 2.9, as if its WebGPU polled the device every 10 ms), 1 elsewhere (free on
 * WASM).
 */
export function stepsPerReadback(): number {
  return prefersBatchedKernels() ? 10 : 1;
}
