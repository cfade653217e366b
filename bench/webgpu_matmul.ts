/**
 * WebGPU matMul throughput on the paper hydrogen step's products: tfjs-webgpu's kernel against the
 * toolkit's tiled one (lib/webgpu_kernels.ts) in several tilings, in GFLOP/s (median of `--reps`
 * timed batches of products, each ended by a one-number readback). Needs a WebGPU adapter.
 *
 *   deno run --allow-read bench/webgpu_matmul.ts [--reps 5]
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { initBackend } from "../mod.ts";
import { DEFAULT_TILING, type MatMulTiling, useGpuMatMul } from "../lib/webgpu_kernels.ts";
import { parseCli, runMain } from "../lib/cli.ts";
import { median } from "./common.ts";

const FLAGS = {
  reps: { type: "integer", min: 1, description: "timed batches per product" },
  inner: { type: "integer", min: 1, description: "products per timed batch" },
} as const;
const DEFAULTS = { reps: 5, inner: 10 };

/** The step's products at batch 512 (fd: 5 × 512 points), 36 modes of width 128, 1024 frequencies. */
const PRODUCTS: { name: string; a: number[]; b: number[]; transposeA?: boolean }[] = [
  { name: "first layer, fd points: 2560×2048 · 2048×4608", a: [2560, 2048], b: [2048, 4608] },
  {
    name: "first-layer gradient: (512×2048)ᵀ · 512×4608",
    a: [512, 2048],
    b: [512, 4608],
    transposeA: true,
  },
  { name: "hidden layers: 36 × (2560×128 · 128×128)", a: [36, 2560, 128], b: [36, 128, 128] },
  {
    name: "hidden gradient: 36 × (512×128)ᵀ · 512×128",
    a: [36, 512, 128],
    b: [36, 512, 128],
    transposeA: true,
  },
];

const TILINGS: MatMulTiling[] = [
  DEFAULT_TILING,
  { bm: 128, bn: 128, bk: 16, tm: 8, tn: 8 },
  { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  { bm: 128, bn: 64, bk: 16, tm: 8, tn: 4 },
  { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8 },
  { bm: 64, bn: 128, bk: 8, tm: 4, tn: 8 },
];

async function gflops(p: typeof PRODUCTS[number], v: typeof DEFAULTS): Promise<number> {
  const a = tf.randomNormal(p.a), b = tf.randomNormal(p.b);
  const run = async () => {
    const t0 = performance.now();
    let c: tf.Tensor | undefined;
    for (let i = 0; i < v.inner; i++) {
      c?.dispose();
      c = tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, p.transposeA ?? false, false);
    }
    const one = tf.slice(c!.reshape([-1]), [0], [1]);
    await one.data();
    tf.dispose([c!, one]);
    return performance.now() - t0;
  };
  await run(); // compile
  const times: number[] = [];
  for (let r = 0; r < v.reps; r++) times.push(await run());
  tf.dispose([a, b]);
  const ra = p.a.length;
  const [m, k] = p.transposeA ? [p.a[ra - 1], p.a[ra - 2]] : [p.a[ra - 2], p.a[ra - 1]];
  const n = p.b[p.b.length - 1], batch = p.a.length === 3 ? p.a[0] : 1;
  return (2 * batch * m * k * n * v.inner) / (median(times) * 1e6);
}

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: { default: DEFAULTS },
    usage: "Usage: deno run --allow-read bench/webgpu_matmul.ts [options]",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as typeof DEFAULTS;
  const info = await initBackend({ backend: "webgpu" });
  console.log(
    `WebGPU matMul on ${info.adapter}, GFLOP/s (median of ${v.reps} × ${v.inner} products)`,
  );
  const label = (t: MatMulTiling) => `${t.bm}×${t.bn}×${t.bk}, ${t.tm}×${t.tn}/thread`;
  console.log(`| product | tfjs-webgpu | ${TILINGS.map(label).join(" | ")} |`);
  console.log(`|---|---|${TILINGS.map(() => "---").join("|")}|`);
  for (const p of PRODUCTS) {
    useGpuMatMul(false);
    const cells = [(await gflops(p, v)).toFixed(0)];
    for (const tiling of TILINGS) {
      useGpuMatMul(true, { tiling });
      cells.push((await gflops(p, v)).toFixed(0));
    }
    console.log(`| ${p.name} | ${cells.join(" | ")} |`);
  }
  useGpuMatMul(true, { tiling: DEFAULT_TILING });
});
