/**
 * Times the canonical 2-D hydrogen training step (16 modes, disjoint 3×128 softplus MLPs on 256
 * Fourier frequencies, batch 512, Gaussian sampling s = 16, T = 100·(−H) with the forward-mode
 * Laplacian, sequential nesting, RMSprop) on the WASM backend with 1 thread and with `--threads`
 * threads, each in its own subprocess (one after the other, so they do not share the cores), and
 * prints the median ms/step of each and their ratio; also a [4096×256]·[256×256] matMul.
 *
 *   deno run --allow-read --allow-run bench/threads.ts [--threads 2] [--steps 15] [--warmup 5]
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  coulombPotential,
  gaussianDensity,
  initBackend,
  MAX_WASM_THREADS,
  Mlp,
  Rng,
  SchrodingerOperator,
  Trainer,
} from "../mod.ts";
import { median, timedSteps } from "./common.ts";
import { parseCli, runMain } from "../lib/cli.ts";

const FLAGS = {
  threads: { type: "integer", min: 2, max: MAX_WASM_THREADS, description: "threads to compare" },
  modes: { type: "integer", min: 1, description: "modes L" },
  batch: { type: "integer", min: 2, description: "batch size" },
  frequencies: { type: "integer", min: 1, description: "Fourier frequencies" },
  width: { type: "integer", min: 1, description: "hidden width" },
  steps: { type: "integer", min: 1, description: "timed steps" },
  warmup: { type: "integer", min: 0, description: "untimed steps first" },
  matmul: { type: "boolean", description: "also time a [4096×256]·[256×256] matMul" },
  child: {
    type: "integer",
    min: 1,
    max: MAX_WASM_THREADS,
    optional: true,
    description: "internal: time this thread count in this process and print JSON",
  },
} as const;
const DEFAULTS = {
  threads: 2,
  modes: 16,
  batch: 512,
  frequencies: 256,
  width: 128,
  steps: 15,
  warmup: 5,
  matmul: true,
  child: undefined as number | undefined,
};

type Result = { threads: number; stepMs: number; matmulMs?: number };

async function hydrogenStep(v: typeof DEFAULTS): Promise<number> {
  const rng = new Rng(0);
  const model = new Mlp({
    inputDim: 2,
    outputs: v.modes,
    hidden: [v.width, v.width, v.width],
    disjoint: true,
    fourier: { frequencies: v.frequencies, scale: 0.1 },
    rng,
  });
  const op = new SchrodingerOperator({
    dim: 2,
    potential: coulombPotential(),
    density: gaussianDensity({ dim: 2, std: 16 }),
    scale: 100,
    kinetic: "forward",
  });
  const trainer = new Trainer({ operator: op, model }, {
    steps: 1000,
    batchSize: v.batch,
    nesting: "sequential",
    optimizer: { name: "rmsprop", alpha: 0.999, epsilon: 1e-10 },
    lr: 1e-4,
    rng,
  });
  const { ms } = await timedSteps(trainer, v);
  trainer.dispose();
  model.dispose();
  return ms;
}

function matMul(v: typeof DEFAULTS): number {
  const a = tf.randomNormal([4096, 256], 0, 1, "float32", 1);
  const b = tf.randomNormal([256, 256], 0, 1, "float32", 2);
  const times: number[] = [];
  for (let i = 0; i < v.warmup + v.steps; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
    if (i >= v.warmup) times.push(performance.now() - t0);
  }
  tf.dispose([a, b]);
  return median(times);
}

/** Child mode: one thread count, printed as one JSON line. */
async function child(v: typeof DEFAULTS, threads: number): Promise<void> {
  const info = await initBackend({ backend: "wasm", threads });
  const result: Result = { threads: info.threads, stepMs: await hydrogenStep(v) };
  if (v.matmul) result.matmulMs = matMul(v);
  console.log(JSON.stringify(result));
}

async function runChild(v: typeof DEFAULTS, threads: number): Promise<Result> {
  const args = [
    "run",
    "--allow-read",
    new URL(import.meta.url).pathname,
    `--child=${threads}`,
    ...(["modes", "batch", "frequencies", "width", "steps", "warmup"] as const).map((k) =>
      `--${k}=${v[k]}`
    ),
    v.matmul ? "--matmul" : "--no-matmul",
  ];
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  if (out.code !== 0) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    throw new Error(`The ${threads}-thread run failed: ${why}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: { default: DEFAULTS },
    usage: "Usage: deno run --allow-read --allow-run bench/threads.ts [options]",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as typeof DEFAULTS;
  if (v.child !== undefined) return await child(v, v.child);
  console.log(
    `2-D hydrogen step, forward Laplacian: ${v.modes} disjoint 3×${v.width} softplus MLPs, ` +
      `${v.frequencies} Fourier frequencies, batch ${v.batch}; wasm SIMD, ${v.warmup} warm-up + ` +
      `${v.steps} timed steps per thread count (median)`,
  );
  const one = await runChild(v, 1);
  const many = await runChild(v, v.threads);
  for (const r of [one, many]) {
    const mm = r.matmulMs === undefined ? "" : `   matMul ${r.matmulMs.toFixed(1).padStart(6)} ms`;
    console.log(
      `wasm ${r.threads} thread${r.threads === 1 ? " " : "s"}  ${
        r.stepMs.toFixed(1).padStart(8)
      } ms/step${mm}`,
    );
  }
  const mmRatio = one.matmulMs !== undefined && many.matmulMs !== undefined
    ? `, matMul ${(one.matmulMs / many.matmulMs).toFixed(2)}×`
    : "";
  const stepRatio = (one.stepMs / many.stepMs).toFixed(2);
  console.log(`speed-up with ${many.threads} threads: step ${stepRatio}×${mmRatio}`);
});
