/**
 * Learns the top eigen- (or singular) vectors of a random matrix with a known, geometrically
 * decaying spectrum, and prints learned vs exact values and vector errors per mode.
 *
 *   deno run --allow-read scripts/matrix_spectrum.ts [--preset smoke] [--kind svd] [--out DIR]
 *
 * Writing outputs needs --allow-write=DIR as well.
 *
 * @module
 */
import {
  EmbeddingMlp,
  ensureWritableDir,
  initBackend,
  MatrixOperator,
  matrixWithSpectrum,
  type Model,
  Rng,
  type SpectralReport,
  SymmetricMatrixOperator,
  TabularModel,
  train,
  writeJson,
} from "../mod.ts";
import { CliError, parseCli, runMain } from "../lib/cli.ts";

const FLAGS = {
  kind: {
    type: "string",
    choices: ["evd", "svd"],
    description: "eigen- or singular decomposition",
  },
  size: { type: "integer", min: 2, description: "rows of the matrix" },
  cols: { type: "integer", min: 2, description: "columns (svd only)" },
  modes: { type: "integer", min: 1, description: "modes L to learn" },
  decay: {
    type: "number",
    min: 0,
    max: 1,
    exclusiveMin: true,
    description: "spectrum ratio: value k is 2·decay^k",
  },
  model: { type: "string", choices: ["tabular", "mlp"], description: "function model on indices" },
  nesting: { type: "string", choices: ["joint", "sequential", "none"], description: "nesting" },
  optimizer: { type: "string", choices: ["adam", "rmsprop", "sgd"], description: "optimiser" },
  lr: { type: "number", min: 0, exclusiveMin: true, description: "learning rate" },
  steps: { type: "integer", min: 1, description: "training steps" },
  batch: { type: "integer", min: 0, description: "batch size (0: the whole index set)" },
  seed: { type: "integer", min: 0, description: "random seed" },
  backend: { type: "string", choices: ["wasm", "cpu", "webgpu"], description: "tfjs backend" },
  out: { type: "string", optional: true, description: "output directory (needs --allow-write)" },
} as const;

const BASE = {
  kind: "evd",
  size: 40,
  cols: 30,
  modes: 8,
  decay: 0.8,
  model: "tabular",
  nesting: "sequential",
  optimizer: "adam",
  lr: 0.03,
  steps: 4000,
  batch: 0,
  seed: 0,
  backend: "wasm",
};

const PRESETS = {
  default: BASE,
  smoke: { ...BASE, size: 12, cols: 10, modes: 3, steps: 400 },
};

function table(report: SpectralReport): string {
  const head = "mode  exact        norm est.    Rayleigh     rel. err    subspace dist";
  const rows = report.modes.map((m) =>
    [
      String(m.mode + 1).padStart(4),
      m.target!.toPrecision(6).padStart(11),
      m.norm.toPrecision(6).padStart(12),
      m.rayleigh.toPrecision(6).padStart(12),
      m.normRelError!.toExponential(2).padStart(11),
      m.subspaceDistance!.toExponential(2).padStart(14),
    ].join(" ")
  );
  return [head, ...rows].join("\n");
}

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: PRESETS,
    usage: "Usage: deno run --allow-read scripts/matrix_spectrum.ts [options]\n\n" +
      "Learns the top modes of a random matrix with spectrum 2·decay^k by NestedLoRA.",
  });
  if (cli.help) {
    console.log(cli.helpText);
    return;
  }
  const v = cli.values as typeof BASE & { out?: string };
  if (v.modes > Math.min(v.size, v.kind === "svd" ? v.cols : v.size)) {
    throw new CliError(
      `Invalid value "${v.modes}" for --modes: at most min(size, cols) modes exist`,
    );
  }
  if (v.out) ensureWritableDir(v.out);
  const info = await initBackend({ backend: v.backend });
  const rng = new Rng(v.seed);
  const k = Math.min(v.size, v.kind === "svd" ? v.cols : v.size);
  const values = Array.from({ length: k }, (_, i) => 2 * Math.pow(v.decay, i));
  const makeModel = (n: number): Model =>
    v.model === "tabular"
      ? new TabularModel({ size: n, outputs: v.modes, rng })
      : new EmbeddingMlp({ size: n, outputs: v.modes, rng });
  const common = {
    steps: v.steps,
    batchSize: v.batch === 0 ? "population" as const : v.batch,
    nesting: v.nesting,
    optimizer: v.optimizer,
    lr: v.lr,
    rng,
    progress: true,
    csvPath: v.out ? `${v.out}/log.csv` : undefined,
  };
  let report: SpectralReport;
  const t0 = performance.now();
  if (v.kind === "evd") {
    const op = new SymmetricMatrixOperator(matrixWithSpectrum({ rows: v.size, values, rng }));
    const model = makeModel(v.size);
    await train({ operator: op, model }, common);
    report = op.report(model);
  } else {
    const op = new MatrixOperator(matrixWithSpectrum({ rows: v.size, cols: v.cols, values, rng }));
    const f = makeModel(v.size), g = makeModel(v.cols);
    await train({ operator: op, f, g }, common);
    report = op.report(f, g);
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `${v.kind.toUpperCase()} of a ${v.size}×${v.kind === "svd" ? v.cols : v.size} matrix, ` +
      `${v.modes} modes, ${v.nesting} nesting, ${v.steps} steps on ${info.backend} (${
        seconds.toFixed(1)
      } s)`,
  );
  console.log(table(report));
  console.log(
    `mean rel. error ${report.meanNormRelError!.toExponential(2)}  ` +
      `max subspace dist ${
        Math.max(...report.modes.map((m) => m.subspaceDistance!)).toExponential(2)
      }  ` +
      `orthogonality ${report.orthogonality.toExponential(2)}`,
  );
  if (v.out) {
    writeJson(`${v.out}/config.json`, { preset: cli.preset, ...v });
    writeJson(`${v.out}/summary.json`, {
      ...report,
      seconds,
      backend: info.backend,
      steps: v.steps,
    });
  }
});
