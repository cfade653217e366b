/**
 * Memory of a training run: the process's resident set (and the highest value seen after a step), the
 * main thread's WASM heap and tfjs's live tensor count, sampled every `--every` steps of the default
 * 2-D hydrogen job (its preset, with `--workers` replicas). The WASM heap of tfjs only ever grows
 * (RUNTIME.md), so a flat heap after the first samples means the run's memory is bounded.
 *
 *   deno run --allow-read bench/memory.ts [--steps 600] [--every 100] [--workers 2]
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { HYDROGEN2D_PRESETS, hydrogen2dProblem, initBackend } from "../mod.ts";
import { replicatedTrainer } from "./common.ts";
import { parseCli, runMain } from "../lib/cli.ts";

const FLAGS = {
  steps: { type: "integer", min: 1, description: "training steps" },
  every: { type: "integer", min: 1, description: "sample every this many steps" },
  workers: { type: "integer", min: 1, description: "data-parallel replicas" },
} as const;
const DEFAULTS = { steps: 600, every: 100, workers: 2 };

const MiB = 1024 * 1024;

/** Bytes of the WASM backend's linear memory (main thread). */
function wasmHeapMiB(): number {
  // deno-lint-ignore no-explicit-any
  const module = (tf.backend() as any).wasm;
  return (module?.HEAPU8?.length ?? NaN) / MiB;
}

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: { default: DEFAULTS },
    usage: "Usage: deno run --allow-read bench/memory.ts [options]",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as typeof DEFAULTS;
  await initBackend();
  const problem = hydrogen2dProblem();
  const config = { ...HYDROGEN2D_PRESETS.default, steps: v.steps, workers: v.workers };
  const { trainer, close } = await replicatedTrainer(problem, config, {
    workers: v.workers,
    seed: config.seed,
  });
  console.log(
    `default hydrogen2d job, ${v.workers} replica(s); resident set covers all of them, the WASM heap` +
      " is the main thread's",
  );
  console.log("| step | resident (MiB) | highest so far (MiB) | WASM heap (MiB) | tensors |");
  console.log("|---|---|---|---|---|");
  let highest = 0;
  for (let step = 1; step <= v.steps; step++) {
    await trainer.step();
    // Sampled after every step: the kernel's own peak (/proc) would need more than --allow-read.
    const rss = Deno.memoryUsage().rss / MiB;
    highest = Math.max(highest, rss);
    if (step === 1 || step % v.every === 0) {
      const heap = wasmHeapMiB().toFixed(0);
      const row = [step, rss.toFixed(0), highest.toFixed(0), heap, tf.memory().numTensors];
      console.log(`| ${row.join(" | ")} |`);
    }
  }
  close();
});
