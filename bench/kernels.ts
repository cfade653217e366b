/**
 * The toolkit's own WASM kernels against tfjs-wasm's, in one run: Softplus, Sin, Slice, SplitV, Sum
 * and the matrix products of the canonical hydrogen step (medians, ms and ratio), then the canonical step itself
 * (16 disjoint 3×128 softplus MLPs, 256 Fourier frequencies, batch 512, fd Laplacian, RMSprop) on
 * one and on all replicas with each set of kernels (`deno task bench:kernels`).
 *
 *   deno run --allow-read bench/kernels.ts [--steps 6] [--warmup 2]
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { HYDROGEN2D_PRESETS, hydrogen2dProblem, initBackend } from "../mod.ts";
import { useSimdKernels } from "../lib/wasm_kernels.ts";
import { hasRelaxedSimd } from "../lib/wasm_gemm.ts";
import { defaultReplicas, median, timeReplicated } from "./common.ts";
import { parseCli, runMain } from "../lib/cli.ts";

const FLAGS = {
  steps: { type: "integer", min: 1, description: "timed steps of the canonical step" },
  warmup: { type: "integer", min: 0, description: "untimed steps first" },
  workers: {
    type: "integer",
    min: 0,
    description: "replicas of the all-cores rows (0: one per core, as many as split the batch)",
  },
} as const;
const DEFAULTS = {
  steps: 6,
  warmup: 2,
  workers: 0,
};

/** Median ms of `fn` (which returns a tensor, read back and disposed) over `reps` runs. */
function timeOp(fn: () => tf.Tensor, reps: number): number {
  // (tidy must not return the array: it would walk its million elements looking for tensors)
  const run = () => tf.tidy(() => void fn().dataSync());
  for (let i = 0; i < 2; i++) run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function row(name: string, theirs: number, ours: number): string {
  return `| ${name} | ${theirs.toFixed(2)} | ${ours.toFixed(2)} | ${(theirs / ours).toFixed(2)}× |`;
}

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: { default: DEFAULTS },
    usage: "Usage: deno run --allow-read bench/kernels.ts [--steps N] [--warmup N] [--workers N]",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as typeof DEFAULTS;
  await initBackend();
  console.log(`relaxed-SIMD fused multiply-add: ${hasRelaxedSimd()}`);
  const z = tf.randomNormal([512, 2048], 0, 3, "float32", 1);
  const u = tf.randomNormal([2560, 256], 0, 20, "float32", 2);
  const a = tf.randomNormal([2560, 512], 0, 1, "float32", 3);
  const w = tf.randomNormal([512, 128], 0, 1, "float32", 4);
  const h = tf.randomNormal([2560, 128], 0, 1, "float32", 5);
  const w2 = tf.randomNormal([128, 128], 0, 1, "float32", 6);
  const j = tf.randomNormal([2, 512, 128], 0, 1, "float32", 7);
  const ops: [string, () => tf.Tensor, () => tf.Tensor][] = [
    ["softplus, 512×2048", () => tf.softplus(z), () => tf.softplus(z)],
    ["sin, 2560×256 (|x| ≲ 80)", () => tf.sin(u), () => tf.sin(u)],
    ["matMul 2560×512 · 512×128", () => tf.matMul(a, w), () => tf.matMul(a, w)],
    ["matMul 2560×128 · 128×128", () => tf.matMul(h, w2), () => tf.matMul(h, w2)],
    [
      "slice 512×128 of 512×2048 (a chunk's weights)",
      () => tf.slice(z, [0, 128], [512, 128]),
      () => tf.slice(z, [0, 128], [512, 128]),
    ],
    ["split 2560×256 into 2 column blocks", () => tf.split(u, 2, 1)[1], () => tf.split(u, 2, 1)[1]],
    ["sum 2×512×128 over axis 0 (forward Laplacian)", () => tf.sum(j, 0), () => tf.sum(j, 0)],
    [
      "2560×512ᵀ · 2560×128 (weight gradient; tfjs: transpose, then matMul)",
      () => tf.matMul(tf.transpose(a), h),
      () => tf.matMul(a, h, true, false),
    ],
  ];
  const results = ops.map(([name, theirs, ours]) => {
    useSimdKernels(false);
    const t = timeOp(theirs, 15);
    useSimdKernels(true);
    return row(name, t, timeOp(ours, 15));
  });
  tf.dispose([z, u, a, w, h, w2, j]);
  console.log("| kernel | tfjs-wasm (ms) | neuralsvd (ms) | speed-up |");
  console.log("|---|---|---|---|");
  for (const r of results) console.log(r);

  const config = {
    ...HYDROGEN2D_PRESETS.paper,
    modes: 16,
    batch: 512,
    frequencies: 256,
    width: 128,
    kinetic: "fd",
    ema: 0,
    steps: 1000,
  };
  const step = async (workers: number, simdKernels: boolean) => {
    useSimdKernels(simdKernels);
    const r = await timeReplicated(hydrogen2dProblem(), { ...config, workers, simdKernels }, {
      ...v,
      workers,
      seed: 0,
    });
    useSimdKernels(true);
    return r.ms;
  };
  console.log("| canonical step, fd Laplacian | tfjs-wasm (ms) | neuralsvd (ms) | speed-up |");
  console.log("|---|---|---|---|");
  for (const workers of [...new Set([1, v.workers || defaultReplicas(config.batch)])]) {
    const theirs = await step(workers, false);
    const ours = await step(workers, true);
    console.log(row(`${workers} replica${workers === 1 ? "" : "s"}`, theirs, ours));
  }
});
