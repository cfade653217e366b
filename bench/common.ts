/**
 * Shared by the benchmarks: a Trainer for an experiment config, data-parallel over `workers`
 * replicas, and the median.
 *
 * @module
 */
import { stepsPerReadback } from "../lib/kernel_layout.ts";
import {
  buildModel,
  buildOperator,
  type ExperimentConfig,
  type PoolTimings,
  Rng,
  type SchrodingerProblem,
  Trainer,
  trainerOptions,
  WorkerPool,
} from "../mod.ts";

/** A Trainer for `config` (seeded with `seed`), with a WorkerPool when `workers` > 1. */
export async function replicatedTrainer(
  problem: SchrodingerProblem,
  config: ExperimentConfig,
  options: { workers: number; seed: number },
): Promise<{ trainer: Trainer; close: () => void }> {
  const rng = new Rng(options.seed);
  const model = buildModel(problem, config, rng);
  const trainer = new Trainer(
    { operator: buildOperator(problem, config), model },
    trainerOptions(config, rng),
  );
  const pool = options.workers > 1
    ? await WorkerPool.create(trainer, { workers: options.workers, spec: problem.spec!, config })
    : null;
  if (pool) trainer.useGradientSource(pool);
  return {
    trainer,
    close: () => {
      pool?.close();
      trainer.dispose();
      model.dispose();
    },
  };
}

/**
 * Median step time over `steps` steps after `warmup` untimed ones and, on a Worker pool, the median
 * of each part of its gradient phase. With `block` > 1 (default: the backend's steps per read-back,
 * 10 on a GPU) it times `steps` blocks of that many steps ({@linkcode Trainer.steps}) instead.
 */
export async function timedSteps(
  trainer: Trainer,
  options: { warmup: number; steps: number; block?: number },
): Promise<{ ms: number; pool?: PoolTimings }> {
  const times: number[] = [], parts: PoolTimings[] = [];
  const pool = trainer.options.gradientSource as WorkerPool | undefined;
  const block = options.block || stepsPerReadback();
  if (block > 1 && !pool) {
    // Blocks of steps with one read-back each, as training runs there; the time per step.
    for (let i = 0; i < options.warmup + options.steps; i++) {
      const t0 = performance.now();
      await trainer.steps(block);
      if (i >= options.warmup) times.push((performance.now() - t0) / block);
    }
    return { ms: median(times) };
  }
  for (let i = 0; i < options.warmup + options.steps; i++) {
    const t0 = performance.now();
    await trainer.step();
    if (i < options.warmup) continue;
    times.push(performance.now() - t0);
    if (pool?.lastTimings) parts.push(pool.lastTimings);
  }
  if (parts.length === 0) return { ms: median(times) };
  return { ms: median(times), pool: medianTimings(parts) };
}

/** Each part's median over several steps' (or runs') timings of the gradient phase. */
export function medianTimings(parts: PoolTimings[]): PoolTimings {
  return {
    local: median(parts.map((p) => p.local)),
    remote: parts[0].remote.map((_, i) => median(parts.map((p) => p.remote[i]))),
    averaging: median(parts.map((p) => p.averaging)),
    total: median(parts.map((p) => p.total)),
  };
}

/** {@linkcode timedSteps} of a fresh {@linkcode replicatedTrainer}, closed afterwards. */
export async function timeReplicated(
  problem: SchrodingerProblem,
  config: ExperimentConfig,
  options: { workers: number; seed: number; warmup: number; steps: number; block?: number },
): Promise<{ ms: number; pool?: PoolTimings }> {
  const { trainer, close } = await replicatedTrainer(problem, config, options);
  try {
    return await timedSteps(trainer, options);
  } finally {
    close();
  }
}

/** The median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
