/**
 * The shared runner of the Schrödinger experiment scripts: flags and presets, model and operator
 * construction, training with periodic evaluation, and the outputs (config.json, log.csv,
 * summary.json, pictures). Each script supplies its problem (potential, analytic spectrum, quadrature).
 *
 * @module
 */
import type { AnalyticSpectrum } from "../operators/analytic.ts";
import { degenerateBlocks } from "../operators/analytic.ts";
import { type Potential, SchrodingerOperator } from "../operators/schrodinger.ts";
import { ACTIVATION_NAMES } from "./activations.ts";
import { initBackend } from "./backend.ts";
import { CliError, type FlagSpec, type FlagValues } from "./cli.ts";
import {
  gaussianDensity,
  gaussianMixtureDensity,
  SAMPLING_METHODS,
  type SamplingMethod,
} from "./densities.ts";
import { EnvelopeModel } from "./envelope.ts";
import { eigenReport, type SpectralReport, weightedGram } from "./evaluate.ts";
import { ensureWritableDir, writeJson } from "./io.ts";
import { matmul, type Matrix, procrustes, svd, transpose } from "./linalg.ts";
import { Mlp, type Model } from "./models.ts";
import { stepsPerReadback } from "./kernel_layout.ts";
import { lineChart, matrixHeatmap, panelGrid, writePng } from "./plot.ts";
import type { Quadrature } from "./quadrature.ts";
import { Rng } from "./random.ts";
import { CheckpointScheduler } from "./checkpoint.ts";
import { WorkerPool, workersUnavailable } from "./parallel.ts";
import { ProgressReporter } from "./progress.ts";
import { Trainer, TrainingDivergedError, type TrainOptions, type TrainRecord } from "./train.ts";

/** A serialisable description of a built-in problem (see `problemFromSpec`). */
export interface ProblemSpec {
  /** Builder name: `hydrogen2d`, `hydrogen3d` or `oscillator`. */
  name: string;
  /** Oscillator dimension. */
  dim?: number;
  /** Oscillator frequencies. */
  omegas?: number[];
  /** Oscillator: evaluation quadrature (`auto`, `grid` or `gauss-hermite`). */
  evalQuadrature?: string;
}

/** A Schrödinger problem as the runner needs it. */
export interface SchrodingerProblem {
  /** Script name, e.g. "hydrogen2d". */
  name: string;
  /** Title for pictures. */
  title: string;
  /** Dimension. */
  dim: number;
  /** The potential V of H = −Δ + V. */
  potential: Potential;
  /** Analytic spectrum (energies and eigenfunctions). */
  spectrum: AnalyticSpectrum;
  /** Evaluation quadrature for the run's settings. */
  quadrature(config: ExperimentConfig): Quadrature;
  /** How to rebuild this problem elsewhere (a Worker): its builder's name and arguments. */
  spec?: ProblemSpec;
  /** Half-width of the square shown in eigenfunction pictures (2-D problems). */
  plotHalfWidth?: number;
}

/** The settings every Schrödinger script takes (one flag each). */
export interface ExperimentConfig {
  /** Modes L to learn. */
  modes: number;
  /** Training steps. */
  steps: number;
  /** Batch size (even: split halves). */
  batch: number;
  /** Base learning rate. */
  lr: number;
  /** `adam`, `rmsprop` or `sgd`. */
  optimizer: string;
  /** RMSprop smoothing α. */
  alpha: number;
  /** Adam β₁, the first moment's decay (default 0.9). */
  beta1?: number;
  /** Adam β₂, the second moment's decay (default 0.999). */
  beta2?: number;
  /** Optimiser ε added to the root-mean-square denominator (0: 1e-8 for Adam, 1e-10 for RMSprop). */
  epsilon?: number;
  /** `cosine` or `constant`. */
  schedule: string;
  /** Linear warm-up steps. */
  warmup: number;
  /** `sequential`, `joint` or `none`. */
  nesting: string;
  /** Sequential nesting's over-deflation δ ≥ 1 (1: the reference's masks). */
  deflation: number;
  /** Gram estimator: `split` halves (unbiased) or `full` batch (lower variance, O(1/B) bias). */
  estimator: string;
  /** Parameter EMA decay (0: off). */
  ema: number;
  /** Gradient-norm clip (0: off). */
  clip: number;
  /** Evaluate the first K modes (0: all); the Ritz values still use every trained mode. */
  evalModes: number;
  /** Revive dead modes every N steps (0: off; see `ReviveOptions`). */
  reviveEvery: number;
  /** Last step of reviving, as a fraction of the steps. */
  reviveUntil: number;
  /** Norm ratio below which a mode counts as dead (default 0.1). */
  reviveRatio?: number;
  /** Also revive the last mode when it falls below `reviveRatio` × the previous mode's norm. */
  reviveLast?: boolean;
  /** `init` (re-draw) or `previous` (copy the previous mode's features): see `ReviveOptions`. */
  reviveFrom?: string;
  /** Seed of the run's single generator. */
  seed: number;
  /** tfjs backend. */
  backend: string;
  /** Laplacian: `forward`, `fd` or `autodiff`. */
  kinetic: string;
  /** Finite-difference step of `fd`. */
  fdEps: number;
  /** T = scale·(−H) + shift. */
  scale: number;
  /** T = scale·(−H) + shift (the shift schedule's start value when `shiftFinal` is set). */
  shift: number;
  /** Shift at the end of a linear shift schedule (unset: the shift stays constant). */
  shiftFinal?: number;
  /** Fraction of the steps where the shift schedule starts. */
  shiftStart: number;
  /** Fraction of the steps where the shift schedule reaches `shiftFinal`. */
  shiftEnd: number;
  /** Sampling density N(0, s²I). */
  densityStd: number;
  /** Comma-separated standard deviations of an equal-weight Gaussian-mixture density ("" : one Gaussian). */
  densityMixture: string;
  /** `importance` (the network is f = ψ/√p) or `psi` (the network is ψ). */
  representation: string;
  /** `random` (independent draws) or `quasirandom` (randomised quasi-Monte Carlo batches). */
  sampling: string;
  /** Fourier frequencies (0: none). */
  frequencies: number;
  /** Scale of the Fourier frequencies. */
  fourierScale: number;
  /** Hidden width. */
  width: number;
  /** Scale of the last layer's initial weights (small: modes start near zero). */
  initScale: number;
  /** Hidden layers. */
  depth: number;
  /** `softplus`, `silu`, `tanh` or `sin`. */
  activation: string;
  /** One MLP per mode. */
  disjoint: boolean;
  /** With `disjoint`: consecutive modes per network (default 1; must divide `modes`). */
  modesPerNetwork?: number;
  /** Append |x| to the network input. */
  radial: boolean;
  /** `none`, `exponential` or `gaussian` per-mode envelope (with the 1/√p factor). */
  envelope: string;
  /** Initial envelope scale. */
  envelopeScale: number;
  /** Evaluate every N steps (0: only at the end). */
  evalEvery: number;
  /** Radius (or half-width) of the evaluation quadrature. */
  quadRadius: number;
  /** Output directory, if any. */
  out?: string;
  /** A previous run's output directory to resume from (its checkpoints/). */
  resume?: string;
  /** Data-parallel replicas (Workers plus the main thread); 0: one per core. */
  workers: number;
  /** WASM threads of each replica (tfjs's threaded-SIMD build; 1: the single-threaded one). */
  threads?: number;
  /**
   * The toolkit's own kernels in place of tfjs's slow ones: WASM SIMD loops, WebGPU's tiled matMul
   * (see `InitBackendOptions.simdKernels`; default true; false gives tfjs's, e.g. to compare).
   */
  simdKernels?: boolean;
  /**
   * θ-gradients from the models' own reverse pass (see `TrainOptions.modelReversePass`; default:
   * on, except on WebGPU); false: tfjs's tape, e.g. to compare.
   */
  reversePass?: boolean;
  /** Minutes between checkpoints (with an output directory). */
  checkpointMinutes: number;
  /** Stop after this many steps of this invocation, with a checkpoint (0: run to the end). */
  stopAfter: number;
}

/** The flag table shared by the Schrödinger scripts. */
export const EXPERIMENT_FLAGS: Record<string, FlagSpec> = {
  modes: { type: "integer", min: 1, description: "modes L to learn" },
  steps: { type: "integer", min: 1, description: "training steps" },
  batch: { type: "integer", min: 2, description: "batch size (even: split halves)" },
  lr: { type: "number", min: 0, exclusiveMin: true, description: "base learning rate" },
  optimizer: { type: "string", choices: ["adam", "rmsprop", "sgd"], description: "optimiser" },
  alpha: { type: "number", min: 0, max: 1, description: "RMSprop smoothing α" },
  beta1: {
    type: "number",
    min: 0,
    max: 1,
    exclusiveMax: true,
    description: "Adam β₁ (first-moment decay)",
  },
  beta2: {
    type: "number",
    min: 0,
    max: 1,
    exclusiveMax: true,
    description: "Adam β₂ (second-moment decay)",
  },
  epsilon: {
    type: "number",
    min: 0,
    description: "optimiser ε in the denominator (0: 1e-8 Adam, 1e-10 RMSprop)",
  },
  schedule: {
    type: "string",
    choices: ["cosine", "constant"],
    description: "learning-rate schedule",
  },
  warmup: { type: "integer", min: 0, description: "linear warm-up steps" },
  nesting: { type: "string", choices: ["sequential", "joint", "none"], description: "nesting" },
  deflation: {
    type: "number",
    min: 1,
    description:
      "sequential nesting: weight of learned modes in later modes' gradients (>1 repels)",
  },
  estimator: {
    type: "string",
    choices: ["split", "full"],
    description: "Gram estimator: split halves (unbiased) or the full batch",
  },
  ema: { type: "number", min: 0, max: 0.99999, description: "parameter EMA decay (0: off)" },
  clip: { type: "number", min: 0, description: "gradient-norm clip (0: off)" },
  evalModes: {
    type: "integer",
    min: 0,
    description: "evaluate the first K modes (0: all); Ritz values use every trained mode",
  },
  reviveEvery: {
    type: "integer",
    min: 0,
    description: "re-initialise modes whose norm fell below --revive-ratio × a later mode's, " +
      "every N steps (0: off; disjoint networks)",
  },
  reviveRatio: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    max: 1,
    exclusiveMax: true,
    description: "norm ratio below which --revive-every counts a mode as dead",
  },
  reviveFrom: {
    type: "string",
    choices: ["init", "previous"],
    description: "a revived mode is re-drawn (init) or takes the previous mode's features " +
      "with a fresh last layer (previous)",
  },
  reviveLast: {
    type: "boolean",
    description: "--revive-every also re-draws the last mode when its norm falls below " +
      "--revive-ratio × the previous mode's",
  },
  reviveUntil: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    max: 1,
    description: "last step of reviving, as a fraction of the steps",
  },
  seed: { type: "integer", min: 0, description: "random seed" },
  backend: { type: "string", choices: ["wasm", "cpu", "webgpu"], description: "tfjs backend" },
  kinetic: { type: "string", choices: ["forward", "fd", "autodiff"], description: "Laplacian" },
  fdEps: { type: "number", min: 0, exclusiveMin: true, description: "finite-difference step" },
  scale: { type: "number", min: 0, exclusiveMin: true, description: "T = scale·(−H) + shift" },
  shift: { type: "number", description: "T = scale·(−H) + shift" },
  shiftFinal: {
    type: "number",
    optional: true,
    description: "move the shift linearly to this value between --shift-start and --shift-end " +
      "(unset: constant)",
  },
  shiftStart: {
    type: "number",
    min: 0,
    max: 1,
    description: "fraction of the steps where the shift schedule starts",
  },
  shiftEnd: {
    type: "number",
    min: 0,
    max: 1,
    description: "fraction of the steps where the shift reaches --shift-final",
  },
  densityStd: { type: "number", min: 0, exclusiveMin: true, description: "sampling N(0, s²I)" },
  densityMixture: {
    type: "string",
    description:
      'sample from an equal mixture of N(0, s²I) with these comma-separated s ("": none)',
  },
  representation: {
    type: "string",
    choices: ["importance", "psi"],
    description: "the network is f = ψ/√p (importance) or ψ itself (psi)",
  },
  sampling: {
    type: "string",
    choices: SAMPLING_METHODS,
    description: "batches drawn independently or as randomised quasi-Monte Carlo sets",
  },
  frequencies: { type: "integer", min: 0, description: "Fourier frequencies (0: none)" },
  fourierScale: { type: "number", min: 0, exclusiveMin: true, description: "Fourier scale" },
  width: { type: "integer", min: 1, description: "hidden width" },
  initScale: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    description: "scale of the last layer's He-normal initial weights",
  },
  depth: { type: "integer", min: 1, description: "hidden layers" },
  activation: { type: "string", choices: [...ACTIVATION_NAMES], description: "activation" },
  disjoint: { type: "boolean", description: "one MLP per mode" },
  modesPerNetwork: {
    type: "integer",
    min: 1,
    description: "with --disjoint: consecutive modes read out of each network (divides --modes)",
  },
  radial: { type: "boolean", description: "append |x| to the input" },
  envelope: {
    type: "string",
    choices: ["none", "exponential", "gaussian"],
    description: "per-mode radial envelope",
  },
  envelopeScale: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    description: "initial envelope scale",
  },
  evalEvery: { type: "integer", min: 0, description: "evaluate every N steps (0: at the end)" },
  quadRadius: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    description: "evaluation radius / half-width",
  },
  out: {
    type: "string",
    optional: true,
    description: "output directory (needs --allow-write=DIR)",
  },
  resume: {
    type: "string",
    optional: true,
    description: "continue from the checkpoints of this earlier --out directory",
  },
  threads: {
    type: "integer",
    min: 1,
    max: 8,
    description:
      "WASM threads per replica (threaded XNNPACK kernels; see the README's speed notes)",
  },
  simdKernels: {
    type: "boolean",
    description:
      "the toolkit's own kernels: WASM Softplus, Sin, Cos, matMul, Slice, SplitV, Concat " +
      "and Sum, WebGPU matMul (--no-simd-kernels: tfjs's)",
  },
  reversePass: {
    type: "boolean",
    optional: true,
    description:
      "gradients from the models' own reverse pass of the operator's evaluation (default on, " +
      "off on WebGPU; --no-reverse-pass: tfjs's tape through a second evaluation)",
  },
  workers: {
    type: "integer",
    min: 0,
    description:
      "data-parallel WASM replicas: Workers plus the main thread (0: one per core on wasm, or " +
      "as many as split the batch into 2·replicas halves; one on other backends)",
  },
  checkpointMinutes: {
    type: "number",
    min: 0,
    exclusiveMin: true,
    description: "minutes between checkpoints (also saved at the end and on Ctrl-C)",
  },
  stopAfter: {
    type: "integer",
    min: 0,
    description: "stop after this many steps, saving a checkpoint (0: run to the end)",
  },
};

/** Numbers of one mode in the summary. */
export interface ModeSummary {
  /** 1-based mode index. */
  mode: number;
  /** Exact energy. */
  targetEnergy: number;
  /** Energy from the Rayleigh quotient. */
  energyRayleigh: number;
  /** Energy from the norm estimator. */
  energyNorm: number;
  /** Relative error of `energyRayleigh`. */
  rayleighRelError: number;
  /** Relative error of `energyNorm`. */
  normRelError: number;
  /**
   * Energy from the l-th Ritz value of the Rayleigh–Ritz problem in the span of all learned modes
   * (absent when their Gram matrix is singular).
   */
  energyRitz?: number;
  /** Relative error of `energyRitz`. */
  ritzRelError?: number;
  /** 1 − cos² to the exact eigenfunction. */
  subspaceDistance: number;
  /** 1 − |cos∠| after Procrustes alignment of the degenerate block. */
  angleDistance: number;
}

/** What summary.json holds. */
export interface ExperimentSummary {
  /** Problem name. */
  problem: string;
  /** Preset name. */
  preset: string;
  /** Backend used. */
  backend: string;
  /** Steps trained. */
  steps: number;
  /** Training seconds. */
  seconds: number;
  /** Seconds per step. */
  secondsPerStep: number;
  /** Evaluation quadrature. */
  quadrature: string;
  /** Per-mode numbers. */
  modes: ModeSummary[];
  /** Mean relative energy error of the Rayleigh quotients. */
  meanRayleighRelError: number;
  /** Mean relative energy error of the norm estimates. */
  meanNormRelError: number;
  /** Mean relative energy error of the Ritz values (absent when the Gram matrix is singular). */
  meanRitzRelError?: number;
  /** Subspace distance per shell of the Ritz vectors (the learned modes rotated by Rayleigh–Ritz). */
  ritzShellSubspaceDistances?: number[];
  /** Mean of `ritzShellSubspaceDistances`. */
  ritzSubspaceDistanceAvg?: number;
  /** Subspace distance averaged over the degenerate shells. */
  subspaceDistanceAvg: number;
  /** Subspace distance of all L modes. */
  subspaceDistanceAll: number;
  /** Subspace distance per shell. */
  shellSubspaceDistances: number[];
  /** Mean angle distance. */
  angleDistanceAvg: number;
  /** Mean squared entry of C − I. */
  orthogonality: number;
  /** Loss of the last step. */
  finalLoss: number;
}

/**
 * Builds the model the config describes, its initial weights drawn from `options.rng`.
 *
 * @example The smoke hydrogen model: two networks of two modes each, with an envelope
 * ```ts
 * import { buildModel, HYDROGEN2D_PRESETS, hydrogen2dProblem, initBackend, Rng } from "../mod.ts";
 * await initBackend();
 * const config = HYDROGEN2D_PRESETS.smoke;
 * const model = buildModel(hydrogen2dProblem(), config, { rng: new Rng(config.seed) });
 * console.log(model.kind, model.outputDim); // disjoint-mlp+exponential-envelope 4
 * model.dispose();
 * ```
 */
export function buildModel(
  problem: SchrodingerProblem,
  config: ExperimentConfig,
  options: { rng: Rng },
): Model {
  const { rng } = options;
  const base = new Mlp({
    inputDim: problem.dim,
    outputs: config.modes,
    hidden: new Array(config.depth).fill(config.width),
    activation: config.activation,
    disjoint: config.disjoint,
    modesPerNetwork: config.disjoint ? config.modesPerNetwork : undefined,
    radial: config.radial,
    outputScale: config.initScale,
    fourier: config.frequencies > 0
      ? { frequencies: config.frequencies, scale: config.fourierScale }
      : undefined,
    rng,
  });
  if (config.envelope === "none") return base;
  return new EnvelopeModel(base, {
    kind: config.envelope,
    scales: [config.envelopeScale],
    inverseSqrtGaussian: config.representation === "importance" ? config.densityStd : undefined,
  });
}

/**
 * Builds the operator the config describes.
 *
 * @example T = 100·(−H) + 20 sends the 2-D hydrogen ground energy −1 to 120
 * ```ts
 * import { buildOperator, HYDROGEN2D_PRESETS, hydrogen2dProblem } from "../mod.ts";
 * const op = buildOperator(hydrogen2dProblem(), HYDROGEN2D_PRESETS.smoke);
 * console.log(op.toEigenvalue(-1), op.representation); // 120 psi
 * ```
 */
export function buildOperator(
  problem: SchrodingerProblem,
  config: ExperimentConfig,
): SchrodingerOperator {
  return new SchrodingerOperator({
    dim: problem.dim,
    potential: problem.potential,
    density: mixtureStds(config).length > 0
      ? gaussianMixtureDensity({ dim: problem.dim, stds: mixtureStds(config) })
      : gaussianDensity({ dim: problem.dim, std: config.densityStd }),
    representation: config.representation,
    sampling: config.sampling as SamplingMethod,
    // Every split half of every replica's shard is made of whole blocks (see sampleBlocks).
    sampleBlocks: config.batch % (2 * replicaCount(config)) === 0 ? 2 * replicaCount(config) : 2,
    scale: config.scale,
    shift: config.shift,
    kinetic: config.kinetic,
    fdEpsilon: config.fdEps,
  });
}

/**
 * The mixture's standard deviations from `densityMixture` (empty: a single Gaussian).
 *
 * @example Hydrogen samples from a three-Gaussian mixture, the oscillator from one Gaussian
 * ```ts
 * import { HYDROGEN2D_PRESETS, mixtureStds, OSCILLATOR_PRESETS } from "../mod.ts";
 * console.log(mixtureStds(HYDROGEN2D_PRESETS.smoke)); // [1.5, 6, 20]
 * console.log(mixtureStds(OSCILLATOR_PRESETS.smoke)); // []
 * ```
 */
export function mixtureStds(config: ExperimentConfig): number[] {
  const text = config.densityMixture.trim();
  if (text === "" || text === "none") return [];
  const stds = text.split(",").map(Number);
  if (stds.some((s) => !(s > 0) || !Number.isFinite(s))) {
    throw new CliError(
      `Invalid value "${config.densityMixture}" for --density-mixture: expected positive numbers separated by commas`,
    );
  }
  return stds;
}

/**
 * The Trainer settings a config describes (shared by the main thread and Worker replicas).
 *
 * @example The smoke hydrogen preset's training settings
 * ```ts
 * import { HYDROGEN2D_PRESETS, Rng, trainerOptions } from "../mod.ts";
 * const options = trainerOptions(HYDROGEN2D_PRESETS.smoke, new Rng(0));
 * console.log(options.batchSize, options.nesting, options.ema); // 64 sequential 0.995
 * ```
 */
export function trainerOptions(config: ExperimentConfig, rng: Rng): TrainOptions {
  return {
    steps: config.steps,
    batchSize: config.batch,
    nesting: config.nesting,
    deflation: config.nesting === "sequential" ? config.deflation : undefined,
    estimator: config.estimator as "split" | "full",
    optimizer: {
      name: config.optimizer,
      alpha: config.alpha,
      beta1: config.beta1,
      beta2: config.beta2,
      epsilon: config.epsilon ? config.epsilon : config.optimizer === "rmsprop" ? 1e-10 : 1e-8,
    },
    lr: config.lr,
    schedule: config.schedule,
    warmupSteps: config.warmup,
    ema: config.ema > 0 ? config.ema : undefined,
    clipNorm: config.clip > 0 ? config.clip : undefined,
    revive: config.reviveEvery > 0
      ? {
        every: config.reviveEvery,
        until: config.reviveUntil,
        ratio: config.reviveRatio,
        last: config.reviveLast,
        from: config.reviveFrom as "init" | "previous" | undefined,
      }
      : undefined,
    shiftSchedule: config.shiftFinal !== undefined
      ? {
        from: config.shift,
        to: config.shiftFinal,
        start: config.shiftStart,
        end: config.shiftEnd,
      }
      : undefined,
    modelReversePass: config.reversePass,
    rng,
  };
}

/**
 * Replicas to use: the flag, or when it is 0 one per core on wasm — as many as split the batch into
 * 2·replicas equal halves, so that any machine runs the presets (12 cores at batch 512: 8).
 *
 * @example Batch 512 on 12 cores: 8 replicas (512 is no multiple of 2·12, 2·11, 2·10 or 2·9)
 * ```ts
 * import { HYDROGEN2D_PRESETS, replicaCount } from "../mod.ts";
 * const config = HYDROGEN2D_PRESETS.default; // batch 512, workers 0 (one per core), wasm
 * console.log(replicaCount(config, 12)); // 8
 * console.log(replicaCount({ ...config, workers: 3 }, 12)); // 3: the flag wins
 * ```
 */
export function replicaCount(
  config: ExperimentConfig,
  cores: number = navigator.hardwareConcurrency ?? 1,
): number {
  if (config.workers > 0) return config.workers;
  // Worker replicas are WASM engines; a GPU (or the plain CPU backend) trains in one.
  if (config.backend !== "wasm") return 1;
  let replicas = Math.max(1, Math.floor(cores));
  while (replicas > 1 && config.batch % (2 * replicas) !== 0) replicas--;
  return replicas;
}

async function startWorkers(
  problem: SchrodingerProblem,
  config: ExperimentConfig,
  trainer: Trainer,
  log: (line: string) => void,
): Promise<WorkerPool | null> {
  const replicas = replicaCount(config);
  const cores = navigator.hardwareConcurrency ?? 1;
  if (config.workers === 0 && config.backend === "wasm" && replicas < cores) {
    log(
      `note: ${replicas} replica(s) for ${cores} cores: batch ${config.batch} is a multiple of ` +
        `2·replicas for no more (--workers sets the count)`,
    );
  }
  if (replicas <= 1) return null;
  const why = workersUnavailable() ??
    (problem.spec ? null : "the problem cannot be rebuilt in a Worker");
  if (why) {
    log(`note: ${why}: training in one thread`);
    return null;
  }
  if (config.batch % (2 * replicas) !== 0) {
    throw new CliError(
      `Invalid value "${config.batch}" for --batch: with ${replicas} replicas it must be a multiple of ${
        2 * replicas
      }`,
    );
  }
  try {
    const pool = await WorkerPool.create(trainer, {
      workers: replicas,
      spec: problem.spec!,
      config,
    });
    trainer.useGradientSource(pool);
    return pool;
  } catch (e) {
    log(`note: Workers could not start (${(e as Error).message}): training in one thread`);
    return null;
  }
}

/**
 * Validates cross-flag constraints; throws CliError.
 *
 * @example An odd batch cannot be split into halves
 * ```ts
 * import { HYDROGEN2D_PRESETS, hydrogen2dProblem, validateConfig } from "../mod.ts";
 * const problem = hydrogen2dProblem();
 * validateConfig(problem, HYDROGEN2D_PRESETS.smoke); // passes
 * try {
 *   validateConfig(problem, { ...HYDROGEN2D_PRESETS.smoke, batch: 63 });
 * } catch (e) {
 *   console.log((e as Error).message.split(": ")[1]); // split halves need an even batch size
 * }
 * ```
 */
export function validateConfig(problem: SchrodingerProblem, config: ExperimentConfig): void {
  if (
    mixtureStds(config).length > 0 && config.representation === "importance" &&
    config.envelope !== "none"
  ) {
    throw new CliError(
      `Invalid value "${config.envelope}" for --envelope: with --density-mixture the envelope needs ` +
        `--representation psi (its 1/√p factor is for a single Gaussian)`,
    );
  }
  if (config.deflation !== 1 && config.nesting !== "sequential") {
    throw new CliError(
      `Invalid value "${config.deflation}" for --deflation: only sequential nesting over-deflates (got --nesting ${config.nesting})`,
    );
  }
  if (config.evalModes > config.modes) {
    throw new CliError(
      `Invalid value "${config.evalModes}" for --eval-modes: at most --modes (${config.modes})`,
    );
  }
  const perNetwork = config.modesPerNetwork ?? 1;
  if (perNetwork > 1 && (!config.disjoint || config.modes % perNetwork !== 0)) {
    throw new CliError(
      `Invalid value "${perNetwork}" for --modes-per-network: it needs --disjoint and must divide ` +
        `--modes (${config.modes})`,
    );
  }
  if (config.reviveEvery > 0 && perNetwork > 1) {
    throw new CliError(
      `Invalid value "${config.reviveEvery}" for --revive-every: reviving re-draws one mode's ` +
        `network, which serves ${perNetwork} modes here (--modes-per-network)`,
    );
  }
  if (config.reviveEvery > 0 && !config.disjoint) {
    throw new CliError(
      `Invalid value "${config.reviveEvery}" for --revive-every: reviving re-draws one mode's ` +
        "parameters, which needs disjoint networks (--disjoint)",
    );
  }
  if (config.batch % 2 !== 0) {
    throw new CliError(
      `Invalid value "${config.batch}" for --batch: split halves need an even batch size`,
    );
  }
  if (config.workers > 1 && config.backend !== "wasm") {
    throw new CliError(
      `Invalid value "${config.workers}" for --workers: Worker replicas run on wasm; ` +
        `--backend ${config.backend} trains in one (use --workers 1 or leave it at 0)`,
    );
  }
  const states = problem.spectrum.states(config.modes);
  const worst = states[states.length - 1].energy;
  for (
    const [flag, shift] of [["shift", config.shift], ["shift-final", config.shiftFinal]] as const
  ) {
    if (shift !== undefined && config.scale * -worst + shift <= 0) {
      throw new CliError(
        `Invalid value "${shift}" for --${flag}: mode ${config.modes} has energy ${worst}, ` +
          `so T = scale·(−H) + shift needs shift > ${config.scale * worst} for it to be learnable`,
      );
    }
  }
  if (config.shiftStart > config.shiftEnd) {
    throw new CliError(
      `Invalid value "${config.shiftEnd}" for --shift-end: it must not be below --shift-start (${config.shiftStart})`,
    );
  }
}

/**
 * Mean 1 − |cos∠| after aligning each degenerate block by orthogonal Procrustes (weighted), from
 * the weighted Grams of the learned and true columns (no copies of the quadrature-sized columns).
 */
function angleDistances(learned: Matrix, truth: Matrix, weights: number[], blocks: number[][]) {
  const ll = weightedGram(learned, learned, weights);
  const lt = weightedGram(learned, truth, weights);
  const tt = weightedGram(truth, truth, weights);
  const pick = (m: Matrix, idx: number[]) => idx.map((i) => idx.map((j) => m[i][j]));
  const out = new Array<number>(learned[0].length).fill(0);
  for (const block of blocks) {
    const cross = pick(lt, block);
    // Procrustes: R = U Vᵀ for AᵀB = U Σ Vᵀ; then the aligned columns A R against B.
    const { u, v } = svd(cross);
    const rot = matmul(u, transpose(v));
    const xy = matmul(transpose(rot), cross);
    const xx = matmul(matmul(transpose(rot), pick(ll, block)), rot);
    const yy = pick(tt, block);
    block.forEach((mode, c) => {
      out[mode] = 1 - Math.abs(xy[c][c]) / Math.sqrt(xx[c][c] * yy[c][c]);
    });
  }
  return out;
}

/**
 * Evaluates the trained model against the analytic spectrum on the problem's quadrature.
 *
 * @example An untrained smoke oscillator model against the exact energies 2, 4, 4
 * ```ts
 * import {
 *   buildModel,
 *   buildOperator,
 *   evaluateExperiment,
 *   initBackend,
 *   OSCILLATOR_PRESETS,
 *   oscillatorProblem,
 *   Rng,
 * } from "../mod.ts";
 * await initBackend();
 * const problem = oscillatorProblem({ dim: 2, evalQuadrature: "gauss-hermite" });
 * const config = OSCILLATOR_PRESETS.smoke;
 * const model = buildModel(problem, config, { rng: new Rng(config.seed) });
 * const operator = buildOperator(problem, config);
 * const { modes, quadrature } = await evaluateExperiment(problem, config, { operator, model });
 * console.log(modes.map((m) => m.targetEnergy), quadrature.points.length); // [2, 4, 4] 256
 * model.dispose();
 * ```
 */
export async function evaluateExperiment(
  problem: SchrodingerProblem,
  config: ExperimentConfig,
  trained: { operator: SchrodingerOperator; model: Model },
): Promise<{
  report: SpectralReport;
  modes: ModeSummary[];
  angle: number[];
  blocks: number[][];
  quadrature: Quadrature;
  gram: Matrix;
}> {
  const { operator: op, model } = trained;
  const states = problem.spectrum.states(config.evalModes || config.modes);
  const blocks = degenerateBlocks(states);
  const quadrature = problem.quadrature(config);
  const truth = quadrature.points.map((pt) => states.map((s) => s.fn(pt)));
  const values = states.map((s) => op.toEigenvalue(s.energy));
  const { f, tf: tfv, density } = await op.evaluateAt(model, quadrature.points);
  const psi = f.map((row, i) => row.map((v) => v * Math.sqrt(density[i])));
  const tpsi = tfv.map((row, i) => row.map((v) => v * Math.sqrt(density[i])));
  const report = eigenReport(psi, tpsi, {
    weights: quadrature.weights,
    values,
    functions: truth,
    blocks,
    reportModes: states.length,
  });
  const angle = angleDistances(psi, truth, quadrature.weights, blocks);
  const modes = report.modes.map((m, l): ModeSummary => {
    const e = states[l].energy;
    const er = op.toEnergy(m.rayleigh), en = op.toEnergy(m.norm);
    const summary: ModeSummary = {
      mode: l + 1,
      targetEnergy: e,
      energyRayleigh: er,
      energyNorm: en,
      rayleighRelError: Math.abs(er - e) / Math.abs(e),
      normRelError: Math.abs(en - e) / Math.abs(e),
      subspaceDistance: m.subspaceDistance!,
      angleDistance: angle[l],
    };
    if (m.ritz !== undefined) {
      summary.energyRitz = op.toEnergy(m.ritz);
      summary.ritzRelError = Math.abs(summary.energyRitz - e) / Math.abs(e);
    }
    return summary;
  });
  const gram = weightedGram(psi, psi, quadrature.weights);
  return { report, modes, angle, blocks, quadrature, gram };
}

/** Drops CSV rows of steps after `step` (logged after the checkpoint a run resumes from). */
function trimCsv(path: string, step: number): void {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return;
  }
  const lines = text.split("\n").filter((l) => l.length > 0);
  const kept = lines.filter((l, i) => i === 0 || Number(l.split(",")[0]) <= step);
  Deno.writeTextFileSync(path, kept.join("\n") + "\n");
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Writes the pictures: eigenfunctions (2-D), spectrum, orthogonality, loss. */
async function writePictures(
  dir: string,
  problem: SchrodingerProblem,
  op: SchrodingerOperator,
  model: Model,
  blocks: number[][],
  modes: ModeSummary[],
  history: TrainRecord[],
): Promise<void> {
  const L = modes.length;
  writePng(
    `${dir}/spectrum.png`,
    lineChart([
      {
        name: "true",
        x: modes.map((m) => m.mode),
        y: modes.map((m) => m.targetEnergy),
        marker: "cross",
      },
      {
        name: "learned (Rayleigh)",
        x: modes.map((m) => m.mode),
        y: modes.map((m) => m.energyRayleigh),
        marker: "dot",
      },
      ...(modes.every((m) => m.energyRitz !== undefined)
        ? [{
          name: "learned (Ritz)",
          x: modes.map((m) => m.mode),
          y: modes.map((m) => m.energyRitz!),
          marker: "dot" as const,
        }]
        : []),
    ], { title: `${problem.title}: energies`, xLabel: "mode", yLabel: "energy E" }),
  );
  const loss = history.filter((_, i) => i % Math.max(1, Math.floor(history.length / 400)) === 0);
  writePng(
    `${dir}/loss.png`,
    lineChart([{
      name: "loss",
      x: loss.map((r) => r.step),
      y: loss.map((r) => r.loss),
      marker: "none",
      line: true,
    }], {
      title: `${problem.title}: NestedLoRA loss`,
      xLabel: "step",
      yLabel: "loss",
    }),
  );
  if (problem.dim !== 2) return;
  const h = problem.plotHalfWidth ?? 10, n = 64;
  const pts: number[][] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      pts.push([-h + (2 * h * (j + 0.5)) / n, h - (2 * h * (i + 0.5)) / n]);
    }
  }
  const states = problem.spectrum.states(L);
  const truth = pts.map((pt) => states.map((s) => s.fn(pt)));
  const { f, density } = await op.evaluateAt(model, pts);
  let psi: Matrix = f.map((row, i) => row.map((v) => v * Math.sqrt(density[i])));
  // Align each degenerate block to the truth for display (the learned basis of a shell is any rotation).
  const aligned = psi.map((r) => r.slice());
  for (const block of blocks) {
    const a = psi.map((row) => block.map((j) => row[j]));
    const b = truth.map((row) => block.map((j) => row[j]));
    const rot = matmul(a, procrustes(a, b));
    rot.forEach((row, i) => block.forEach((mode, c) => (aligned[i][mode] = row[c])));
  }
  psi = aligned;
  const grid = (m: Matrix, l: number) =>
    Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => m[i * n + j][l]));
  const panels = [
    ...Array.from({ length: L }, (_, l) => ({ values: grid(psi, l), title: `learned ${l + 1}` })),
    ...Array.from({ length: L }, (_, l) => ({ values: grid(truth, l), title: `true ${l + 1}` })),
  ];
  writePng(
    `${dir}/eigenfunctions.png`,
    panelGrid(panels, {
      columns: L,
      title: `${problem.title}: learned (aligned per shell) vs true psi`,
    }),
  );
}

/** Orthogonality matrix |C − I| of the learned functions on the quadrature. */
/** |C − I| for the normalised Gram matrix C of the learned functions. */
function orthogonalityMatrix(gram: Matrix): Matrix {
  return gram.map((row, a) =>
    row.map((v, b) => Math.abs(v / Math.sqrt(gram[a][a] * gram[b][b]) - (a === b ? 1 : 0)))
  );
}

/**
 * Runs a Schrödinger experiment end to end and returns its summary; with `config.out` it writes
 * config.json, log.csv, summary.json and pictures there.
 *
 * @example Five steps of the smoke oscillator job (it starts `config.backend` itself)
 * ```ts
 * import { OSCILLATOR_PRESETS, oscillatorProblem, runExperiment } from "../mod.ts";
 * const problem = oscillatorProblem({ dim: 2, evalQuadrature: "gauss-hermite" });
 * const config = { ...OSCILLATOR_PRESETS.smoke, steps: 5, workers: 1 };
 * const lines: string[] = [];
 * const summary = await runExperiment(problem, config, {
 *   preset: "smoke",
 *   progress: false,
 *   log: (line) => lines.push(line), // here: the summary table
 * });
 * console.log(summary.steps, summary.modes.map((m) => m.targetEnergy)); // 5 [2, 4, 4]
 * ```
 */
export async function runExperiment(
  problem: SchrodingerProblem,
  config: ExperimentConfig,
  meta: { preset: string; progress?: boolean; log?: (line: string) => void } = { preset: "custom" },
): Promise<ExperimentSummary> {
  const log = meta.log ?? ((line: string) => console.log(line));
  validateConfig(problem, config);
  if (config.out) ensureWritableDir(config.out);
  const info = await initBackend({
    backend: config.backend,
    threads: config.threads ?? 1,
    simdKernels: config.simdKernels ?? true,
  });
  const rng = new Rng(config.seed);
  const model = buildModel(problem, config, { rng });
  const op = buildOperator(problem, config);
  if (config.out) {
    writeJson(`${config.out}/config.json`, {
      problem: problem.name,
      preset: meta.preset,
      ...config,
    });
  }
  const trainer = new Trainer({ operator: op, model }, {
    ...trainerOptions(config, rng),
    csvPath: config.out ? `${config.out}/log.csv` : undefined,
    csvAppend: config.out !== undefined && config.resume !== undefined,
  });
  const scheduler = config.out
    ? new CheckpointScheduler(`${config.out}/checkpoints`, trainer, {
      everyMinutes: config.checkpointMinutes,
      metadata: { problem: problem.name, config },
    })
    : null;
  if (config.resume) {
    const source = new CheckpointScheduler(`${config.resume}/checkpoints`, trainer, {
      everyMinutes: Infinity,
    });
    const info = await source.resume();
    if (info) {
      log(`resumed from ${info.dir} at step ${info.step}`);
      if (config.out) trimCsv(`${config.out}/log.csv`, info.step);
    } else {
      log(`warning: no valid checkpoint under ${config.resume}/checkpoints: starting from step 0`);
    }
  }
  const pool = await startWorkers(problem, config, trainer, log);
  const stopAt = config.stopAfter > 0
    ? Math.min(config.steps, trainer.stepCount + config.stopAfter)
    : config.steps;
  const progress = (meta.progress ?? true) ? new ProgressReporter({ total: config.steps }) : null;
  scheduler?.installInterruptHandler();
  try {
    while (trainer.stepCount < stopAt) {
      // Blocks end at evaluation steps (a GPU reads its losses back once per block).
      const untilEval = config.evalEvery > 0
        ? config.evalEvery - (trainer.stepCount % config.evalEvery)
        : Infinity;
      const count = Math.min(stepsPerReadback(), stopAt - trainer.stepCount, untilEval);
      const records = scheduler ? await scheduler.steps(count) : await trainer.steps(count);
      const rec = records[records.length - 1];
      progress?.update(rec.step, { loss: rec.loss.toExponential(4), lr: rec.lr.toExponential(2) });
      for (const r of records.filter((r) => r.revived)) {
        log(
          `step ${r.step}: revived mode${r.revived!.length > 1 ? "s" : ""} ` +
            `${r.revived!.map((l) => l + 1).join(", ")} (norm below ${
              config.reviveRatio ?? 0.1
            }× a later mode's${config.reviveLast ? " or, for the last, the previous one's" : ""})`,
        );
      }
      if (config.evalEvery > 0 && rec.step % config.evalEvery === 0 && rec.step < config.steps) {
        await trainer.withEvaluationWeights(async () => {
          const { modes } = await evaluateExperiment(problem, config, { operator: op, model });
          log(
            `\n[eval step ${rec.step}] mean rel. energy error (Rayleigh) ${
              mean(modes.map((m) => m.rayleighRelError)).toExponential(2)
            }, subspace ${mean(modes.map((m) => m.subspaceDistance)).toExponential(2)}`,
          );
        });
      }
    }
  } catch (e) {
    if (e instanceof TrainingDivergedError && scheduler?.last) {
      throw new TrainingDivergedError(
        e.step,
        `loss or gradient (the last good checkpoint, step ${scheduler.last.step}, is in ${scheduler.latestDir})`,
      );
    }
    throw e;
  } finally {
    progress?.done();
    scheduler?.removeInterruptHandler();
    pool?.close();
  }
  if (scheduler) await scheduler.save();
  if (trainer.stepCount < config.steps) {
    log(
      `stopped after step ${trainer.stepCount} of ${config.steps}` +
        (config.out ? `: continue with --resume ${config.out} --out ${config.out}` : ""),
    );
    const summary = null as unknown as ExperimentSummary;
    trainer.dispose();
    model.dispose();
    return summary;
  }
  trainer.ema?.copyToVariables();
  trainer.applyShiftSchedule();
  const result = {
    steps: trainer.stepCount,
    seconds: trainer.getProgress().elapsedSeconds,
    last: trainer.history[trainer.history.length - 1],
    history: trainer.history,
  };
  const { report, modes, blocks, gram, quadrature } = await evaluateExperiment(problem, config, {
    operator: op,
    model,
  });
  const summary: ExperimentSummary = {
    problem: problem.name,
    preset: meta.preset,
    backend: info.backend,
    steps: result.steps,
    seconds: result.seconds,
    secondsPerStep: result.seconds / result.steps,
    quadrature: quadrature.name,
    modes,
    meanRayleighRelError: mean(modes.map((m) => m.rayleighRelError)),
    meanNormRelError: mean(modes.map((m) => m.normRelError)),
    subspaceDistanceAvg: report.subspaceDistanceAvg!,
    subspaceDistanceAll: report.subspaceDistanceAll!,
    shellSubspaceDistances: report.blockSubspaceDistances!,
    angleDistanceAvg: mean(modes.map((m) => m.angleDistance)),
    orthogonality: report.orthogonality,
    finalLoss: result.last.loss,
  };
  if (modes.every((m) => m.ritzRelError !== undefined)) {
    summary.meanRitzRelError = mean(modes.map((m) => m.ritzRelError!));
    summary.ritzShellSubspaceDistances = report.ritzBlockSubspaceDistances;
    summary.ritzSubspaceDistanceAvg = report.ritzSubspaceDistanceAvg;
  }
  log(formatSummary(summary));
  if (config.out) {
    writeJson(`${config.out}/summary.json`, summary);
    await writePictures(config.out, problem, op, model, blocks, modes, result.history);
    writePng(
      `${config.out}/orthogonality.png`,
      matrixHeatmap(orthogonalityMatrix(gram), {
        title: "|C - I| of learned modes",
      }),
    );
  }
  trainer.dispose();
  model.dispose();
  return summary;
}

/**
 * A readable table of a summary.
 *
 * @example The table of a five-step smoke run: a title line, then one row per mode
 * ```ts
 * import { formatSummary, OSCILLATOR_PRESETS, oscillatorProblem, runExperiment } from "../mod.ts";
 * const problem = oscillatorProblem({ dim: 2, evalQuadrature: "gauss-hermite" });
 * const config = { ...OSCILLATOR_PRESETS.smoke, steps: 5, workers: 1 };
 * const meta = { preset: "smoke", progress: false, log: () => {} };
 * const summary = await runExperiment(problem, config, meta);
 * const table = formatSummary(summary).split("\n");
 * console.log(table[0].split(" in ")[0]); // oscillator (smoke): 5 steps
 * console.log(table[2].trim().split(/ +/).slice(0, 2)); // ["1", "2.00000"]: mode 1, exact energy
 * ```
 */
export function formatSummary(s: ExperimentSummary): string {
  const lines = [
    `${s.problem} (${s.preset}): ${s.steps} steps in ${s.seconds.toFixed(1)} s ` +
    `(${
      (1000 * s.secondsPerStep).toFixed(0)
    } ms/step) on ${s.backend}; evaluated on ${s.quadrature}`,
    "mode  true E        E (Rayleigh)   E (norm)      E (Ritz)     rel.err RQ  rel.err norm" +
    "  rel.err Ritz  subspace   angle",
    ...s.modes.map((m) =>
      [
        String(m.mode).padStart(4),
        m.targetEnergy.toPrecision(6).padStart(12),
        m.energyRayleigh.toPrecision(6).padStart(14),
        m.energyNorm.toPrecision(6).padStart(12),
        (m.energyRitz?.toPrecision(6) ?? "-").padStart(12),
        m.rayleighRelError.toExponential(2).padStart(11),
        m.normRelError.toExponential(2).padStart(13),
        (m.ritzRelError?.toExponential(2) ?? "-").padStart(13),
        m.subspaceDistance.toExponential(2).padStart(10),
        m.angleDistance.toExponential(2).padStart(9),
      ].join(" ")
    ),
    `mean relative energy error: Rayleigh ${s.meanRayleighRelError.toExponential(2)}, norm ${
      s.meanNormRelError.toExponential(2)
    }, Ritz ${s.meanRitzRelError?.toExponential(2) ?? "- (singular Gram matrix)"}`,
    `subspace distance: per-shell average ${s.subspaceDistanceAvg.toExponential(2)} ` +
    `[${s.shellSubspaceDistances.map((x) => x.toExponential(1)).join(", ")}], all ${
      s.subspaceDistanceAll.toExponential(2)
    }; angle distance ${s.angleDistanceAvg.toExponential(2)}; orthogonality ${
      s.orthogonality.toExponential(2)
    }`,
  ];
  if (s.ritzShellSubspaceDistances) {
    lines.push(
      `Ritz vectors: per-shell subspace distance ${s.ritzSubspaceDistanceAvg!.toExponential(2)} [${
        s.ritzShellSubspaceDistances.map((x) => x.toExponential(1)).join(", ")
      }]`,
    );
  }
  return lines.join("\n");
}

/**
 * Typed view of parsed flag values.
 *
 * @example A script's flags on top of the smoke preset
 * ```ts
 * import { asConfig, EXPERIMENT_FLAGS, HYDROGEN2D_PRESETS, parseCli } from "../mod.ts";
 * const cli = parseCli(["--steps", "50"], {
 *   usage: "demo [flags]",
 *   flags: EXPERIMENT_FLAGS,
 *   presets: { smoke: { ...HYDROGEN2D_PRESETS.smoke } },
 * });
 * const config = asConfig(cli.values);
 * console.log(config.steps, config.modes); // 50 4
 * ```
 */
export function asConfig(values: FlagValues): ExperimentConfig {
  return values as unknown as ExperimentConfig;
}
