/**
 * 3-D hydrogen atom, H = −Δ − 1/|x| (E_n = −1/(4n²), degeneracy n²): learns the lowest shells and
 * compares them with the analytic eigenfunctions on a spherical quadrature.
 *
 *   deno run --allow-read scripts/hydrogen3d.ts [--preset smoke|default|paper] [--out DIR]
 *
 * @module
 */
import { parseCli, runMain } from "../lib/cli.ts";
import { asConfig, EXPERIMENT_FLAGS, runExperiment } from "../lib/experiment.ts";
import { HYDROGEN3D_PRESETS, hydrogen3dProblem } from "../lib/problems.ts";

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: EXPERIMENT_FLAGS,
    presets: HYDROGEN3D_PRESETS as never,
    usage: "Usage: deno run --allow-read scripts/hydrogen3d.ts [options]\n\n" +
      "Learns the lowest eigenstates of the 3-D hydrogen atom H = −Δ − 1/|x| with NeuralSVD.",
  });
  if (cli.help) return console.log(cli.helpText);
  await runExperiment(hydrogen3dProblem(), asConfig(cli.values), { preset: cli.preset });
});
