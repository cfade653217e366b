/**
 * 2-D hydrogen atom, H = −Δ − 1/|x|: learns the lowest shells (E_n = −1/(4(n+½)²), degeneracy 2n+1)
 * and compares them with the analytic eigenfunctions.
 *
 *   deno run --allow-read scripts/hydrogen2d.ts [--preset smoke|default|paper] [--out DIR]
 *
 * Writing outputs needs --allow-write=DIR as well.
 *
 * @module
 */
import { parseCli, runMain } from "../lib/cli.ts";
import { asConfig, EXPERIMENT_FLAGS, runExperiment } from "../lib/experiment.ts";
import { HYDROGEN2D_PRESETS, hydrogen2dProblem } from "../lib/problems.ts";

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: EXPERIMENT_FLAGS,
    presets: HYDROGEN2D_PRESETS as never,
    usage: "Usage: deno run --allow-read scripts/hydrogen2d.ts [options]\n\n" +
      "Learns the lowest eigenstates of the 2-D hydrogen atom H = −Δ − 1/|x| with NeuralSVD.",
  });
  if (cli.help) return console.log(cli.helpText);
  await runExperiment(hydrogen2dProblem(), asConfig(cli.values), { preset: cli.preset });
});
