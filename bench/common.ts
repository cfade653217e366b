/**
 * Shared by the benchmarks: a Trainer for an experiment config, data-parallel over `workers`
 * replicas, and the median.
 *
 * @module
 */
import {
  buildModel,
  buildOperator,
  type ExperimentConfig,
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

/** The median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
