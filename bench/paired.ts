/**
 * Paired step timings in one process: two trainers take steps in turn, so that the shared host's
 * swings in speed (it halves for minutes at a time on this project's machine) hit both alike, and
 * the median of the step pairs' ratios holds where runs minutes apart do not. It pairs one replica
 * with `--workers` replicas (the data-parallel speed-up), or, with `--against DIR`, another
 * checkout's step (a `git worktree` of an earlier commit, say) with this checkout's, and says
 * whether their losses agree bit for bit.
 *
 * With `--against`, both builds register their kernels on the main thread under the same names,
 * and this checkout's (registered last) serve both there: it compares the code around the kernels,
 * and the Worker replicas' own builds. Compare changes to a kernel itself with separate runs.
 *
 *   deno run --allow-read bench/paired.ts                    # default job: 1 vs all replicas
 *   deno run --allow-read bench/paired.ts --job fd --steps 20 --against ../neuralsvd-before
 *
 * @module
 */
import * as library from "../mod.ts";
import * as common from "./common.ts";
import { canonicalStepConfig, hostProbe, median } from "./common.ts";
import { CliError, parseCli, runMain } from "../lib/cli.ts";

const FLAGS = {
  job: {
    type: "string",
    choices: ["default", "fd", "forward"],
    description:
      "the default hydrogen2d job, or the canonical step with the fd or forward Laplacian",
  },
  batch: { type: "integer", min: 2, description: "batch size" },
  workers: { type: "integer", min: 1, description: "replicas of the second trainer" },
  steps: { type: "integer", min: 1, description: "timed step pairs" },
  warmup: { type: "integer", min: 0, description: "untimed step pairs first" },
  against: {
    type: "string",
    description: "another checkout's root: time its step against this one's (same --workers)",
  },
} as const;

const DEFAULTS = {
  job: "default",
  batch: 512,
  workers: Math.max(1, navigator.hardwareConcurrency ?? 1),
  steps: 60,
  warmup: 5,
  against: "",
};

type Library = typeof import("../mod.ts");
type Common = typeof import("./common.ts");

function jobConfig(lib: Library, v: typeof DEFAULTS, workers: number) {
  if (v.job === "default") return { ...lib.HYDROGEN2D_PRESETS.default, batch: v.batch, workers };
  return canonicalStepConfig({
    modes: 16,
    batch: v.batch,
    frequencies: 256,
    width: 128,
    kinetic: v.job,
    workers,
  });
}

/** The other checkout's library and benchmark helpers, loaded from its root. */
async function loadCheckout(root: string): Promise<{ lib: Library; common: Common }> {
  const url = (path: string) => new URL(path, `file://${Deno.realPathSync(root)}/`).href;
  try {
    Deno.statSync(`${root}/mod.ts`);
  } catch {
    throw new CliError(`Invalid --against ${root}: it has no mod.ts (give a checkout's root)`);
  }
  return { lib: await import(url("mod.ts")), common: await import(url("bench/common.ts")) };
}

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: { default: DEFAULTS },
    usage: "Usage: deno run --allow-read bench/paired.ts [options]",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as typeof DEFAULTS;
  const other = v.against ? await loadCheckout(v.against) : null;
  // The other build first, so that this checkout's kernels are the ones registered last.
  if (other) await other.lib.initBackend({ backend: "wasm", threads: 1 });
  await library.initBackend({ backend: "wasm", threads: 1 });
  const ours = { lib: library, common };
  const sides = other
    ? [
      { name: v.against, build: other, workers: v.workers },
      { name: "this checkout", build: ours, workers: v.workers },
    ]
    : [
      { name: "1 replica", build: ours, workers: 1 },
      { name: `${v.workers} replicas`, build: ours, workers: v.workers },
    ];
  const job = v.job === "default"
    ? `default hydrogen2d job, batch ${v.batch}`
    : `canonical step (${v.job} Laplacian), batch ${v.batch}`;
  const probe = hostProbe();
  const trainers = [];
  try {
    for (const s of sides) {
      trainers.push(
        await s.build.common.replicatedTrainer(
          s.build.lib.hydrogen2dProblem(),
          jobConfig(s.build.lib, v, s.workers),
          { workers: s.workers, seed: 0 },
        ),
      );
    }
    const times: number[][] = [[], []];
    const ratios: number[] = [];
    for (let i = 0; i < v.warmup + v.steps; i++) {
      // Alternate which goes first, so neither always follows the other.
      const order = i % 2 === 0 ? [0, 1] : [1, 0];
      const pair = [0, 0];
      for (const k of order) {
        const t0 = performance.now();
        await trainers[k].trainer.step();
        pair[k] = performance.now() - t0;
      }
      if (i < v.warmup) continue;
      times[0].push(pair[0]);
      times[1].push(pair[1]);
      ratios.push(pair[0] / pair[1]);
    }
    const [a, b] = times.map(median);
    console.log(
      `${job}: ${sides[0].name} against ${sides[1].name}, ${v.steps} step pairs in turn ` +
        `(host ${probe.toFixed(1)} → ${hostProbe().toFixed(1)} GFLOP/s)`,
    );
    for (const [i, s] of sides.entries()) {
      console.log(`  ${s.name.padEnd(24)} ${[a, b][i].toFixed(2)} ms/step (median)`);
    }
    const what = other ? "that/this" : "speed-up";
    console.log(
      `  ${what}: ${median(ratios).toFixed(3)}× (median of the pairs' ratios; ratio of the ` +
        `medians ${(a / b).toFixed(3)}×)`,
    );
    if (other) {
      const losses = trainers.map((t) => t.trainer.history.map((r) => r.loss));
      const same = losses[0].length === losses[1].length &&
        losses[0].every((l, i) => l === losses[1][i]);
      console.log(`  losses the same bit for bit at every step: ${same ? "yes" : "no"}`);
    }
  } finally {
    for (const t of trainers) t.close();
  }
});
