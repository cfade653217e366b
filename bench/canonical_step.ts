/**
 * Times the canonical NeuralSVD training step on one thread: 2-D input, L disjoint 3×128 softplus
 * MLPs on fixed Fourier features (256 frequencies), batch 512 — forward, injected backward (JᵀG with a
 * fixed G) and an RMSprop update. Prints the median ms/step and the achieved GFLOP/s through the
 * model's own reverse pass (`Mlp.applyWithPullback`) and through tfjs's tape, with tfjs's own
 * BatchMatMul gradient (transposed-flag kernels) alongside for comparison.
 *
 *   deno run --allow-read bench/canonical_step.ts [--modes 16] [--batch 512] [--steps 20]
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { createOptimizer, initBackend, Mlp, Rng } from "../mod.ts";
import { median } from "./common.ts";
import { parseCli, runMain } from "../lib/cli.ts";

const FLAGS = {
  modes: { type: "integer", min: 1, description: "modes L (disjoint MLPs)" },
  batch: { type: "integer", min: 2, description: "batch size" },
  frequencies: { type: "integer", min: 1, description: "Fourier frequencies" },
  width: { type: "integer", min: 1, description: "hidden width" },
  steps: { type: "integer", min: 1, description: "timed steps" },
  warmup: { type: "integer", min: 0, description: "untimed steps first" },
  backend: { type: "string", choices: ["wasm", "cpu", "webgpu"], description: "tfjs backend" },
  builtin: { type: "boolean", description: "also time tfjs's own BatchMatMul gradient" },
} as const;
const DEFAULTS = {
  modes: 16,
  batch: 512,
  frequencies: 256,
  width: 128,
  steps: 20,
  warmup: 3,
  backend: "wasm",
  builtin: true,
};

/** Multiply-adds ×2 of the forward pass and of the backward pass (no input gradient at layer 1). */
function flopsPerStep(v: typeof DEFAULTS): number {
  const B = v.batch, L = v.modes, m = v.frequencies, h = v.width;
  const fourier = 2 * B * 2 * m;
  const first = 2 * B * (2 * m) * (L * h);
  const hidden = 2 * 2 * B * L * h * h;
  const last = 2 * B * L * h;
  return fourier + first + hidden + last + first + 2 * (hidden + last);
}

async function timeSteps(v: typeof DEFAULTS, own = false): Promise<number[]> {
  const rng = new Rng(0);
  const net = new Mlp({
    inputDim: 2,
    outputs: v.modes,
    hidden: [v.width, v.width, v.width],
    disjoint: true,
    fourier: { frequencies: v.frequencies, scale: 0.1 },
    rng,
  });
  const opt = createOptimizer(net.variables, { name: "rmsprop", alpha: 0.999, epsilon: 1e-10 });
  const x = tf.tensor2d(rng.normals(v.batch * 2, { std: 16 }), [v.batch, 2]);
  const g = tf.tensor2d(rng.normals(v.batch * v.modes, { std: 1e-3 }), [v.batch, v.modes]);
  const times: number[] = [];
  for (let i = 0; i < v.warmup + v.steps; i++) {
    const t0 = performance.now();
    if (own) {
      // The model's own reverse pass: the forward keeps what Jᵀg needs, no tape.
      const { value, pullback } = net.applyWithPullback(x);
      const grads = pullback.gradients(g);
      pullback.dispose();
      opt.step(grads, 1e-4);
      await net.variables[0].data();
      tf.dispose([value, ...grads]);
    } else {
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(net.apply(x), g)) as tf.Scalar,
        net.variables,
      );
      opt.step(net.variables.map((w) => grads[w.name]), 1e-4);
      await net.variables[0].data();
      tf.dispose([value, Object.values(grads)]);
    }
    if (i >= v.warmup) times.push(performance.now() - t0);
  }
  tf.dispose([x, g]);
  opt.dispose();
  net.dispose();
  return times;
}

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: { default: DEFAULTS },
    usage: "Usage: deno run --allow-read bench/canonical_step.ts [options]",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as typeof DEFAULTS;
  const builtinGradient = tf.getGradient("BatchMatMul");
  const info = await initBackend({ backend: v.backend });
  const gflop = flopsPerStep(v) / 1e9;
  console.log(
    `canonical step: ${v.modes} disjoint 3×${v.width} softplus MLPs, ${v.frequencies} Fourier ` +
      `frequencies, batch ${v.batch}; backend ${info.backend} (SIMD ${info.simd}, ${info.threads} thread)`,
  );
  console.log(`work per step: ${gflop.toFixed(3)} GFLOP (forward + injected backward)`);
  const own = median(await timeSteps(v, true));
  console.log(
    `the model's own reverse pass:    ${own.toFixed(1)} ms/step, ${
      (gflop / (own / 1000)).toFixed(2)
    } GFLOP/s`,
  );
  const fast = median(await timeSteps(v));
  console.log(
    `tape, plain-matMul gradient:     ${fast.toFixed(1)} ms/step, ${
      (gflop / (fast / 1000)).toFixed(2)
    } GFLOP/s`,
  );
  if (v.builtin && builtinGradient) {
    tf.registerGradient(builtinGradient);
    const slow = median(await timeSteps({ ...v, steps: Math.min(v.steps, 5), warmup: 1 }));
    console.log(
      `tfjs built-in gradient:          ${slow.toFixed(1)} ms/step, ${
        (gflop / (slow / 1000)).toFixed(2)
      } ` +
        `GFLOP/s (${(slow / fast).toFixed(2)}× slower)`,
    );
  }
});
