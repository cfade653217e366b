/**
 * Harmonic oscillator H = −Δ + Σ_k ω_k² x_k² in any dimension, isotropic or anisotropic
 * (E = Σ_k ω_k (2n_k + 1)); learns the lowest states and compares them with products of Hermite
 * functions.
 *
 *   deno run --allow-read scripts/oscillator.ts [--preset smoke|default|paper] [--dim 3]
 *     [--omegas 1,2] [--out DIR]
 *
 * @module
 */
import { parseCli, runMain } from "../lib/cli.ts";
import { asConfig, runExperiment } from "../lib/experiment.ts";
import {
  OSCILLATOR_FLAGS,
  OSCILLATOR_PRESETS,
  oscillatorProblem,
  parseOmegas,
} from "../lib/problems.ts";

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: OSCILLATOR_FLAGS,
    presets: OSCILLATOR_PRESETS as never,
    usage: "Usage: deno run --allow-read scripts/oscillator.ts [options]\n\n" +
      "Learns the lowest eigenstates of H = −Δ + Σ ω_k² x_k² with NeuralSVD.",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as Record<string, unknown>;
  const dim = v.dim as number;
  const problem = oscillatorProblem({
    dim,
    omegas: parseOmegas(v.omegas as string, dim),
    evalQuadrature: v.evalQuadrature as string,
  });
  await runExperiment(problem, asConfig(cli.values), { preset: cli.preset });
});
