/**
 * Shared by the benchmarks: a Trainer for an experiment config, data-parallel over `workers`
 * replicas, the median, and a probe of the host's current speed.
 *
 * @module
 */
import { stepsPerReadback } from "../lib/kernel_layout.ts";
import { gemmFunctions } from "../lib/wasm_gemm.ts";
import {
  buildModel,
  buildOperator,
  type ExperimentConfig,
  HYDROGEN2D_PRESETS,
  type PoolTimings,
  replicaCount,
  Rng,
  type SchrodingerProblem,
  Trainer,
  trainerOptions,
  WorkerPool,
} from "../mod.ts";

/**
 * Replicas for `--workers 0`, as the scripts count them: one per core, or as many as split `batch`
 * into 2·replicas equal halves (8 on 12 cores at batch 512).
 */
export function defaultReplicas(batch: number): number {
  return replicaCount({ ...HYDROGEN2D_PRESETS.default, backend: "wasm", workers: 0, batch });
}

/**
 * The canonical 2-D hydrogen step as an experiment config: the reference recipe (`paper` preset)
 * without the EMA, with the given network, batch, kinetic term and replicas.
 */
export function canonicalStepConfig(v: {
  modes: number;
  batch: number;
  frequencies: number;
  width: number;
  kinetic: string;
  workers: number;
  simdKernels?: boolean;
  reversePass?: boolean;
}): ExperimentConfig {
  return {
    ...HYDROGEN2D_PRESETS.paper,
    modes: v.modes,
    batch: v.batch,
    frequencies: v.frequencies,
    width: v.width,
    kinetic: v.kinetic,
    workers: v.workers,
    simdKernels: v.simdKernels ?? true,
    reversePass: v.reversePass ?? true,
    ema: 0,
    steps: 1000,
  };
}

/**
 * glibc settings that keep the memory the peer frees instead of handing it back to the OS: as
 * shipped, PyTorch's multi-MiB temporaries are unmapped or trimmed and faulted in again every step,
 * which made the peer's step time bimodal on this project's machine (91–226 ms at batch 512), and
 * ~91 ms with these. `bench:peer` times the CPU peer both ways, the scaling table with these.
 */
export const KEPT_MALLOC = {
  GLIBC_TUNABLES: "glibc.malloc.trim_threshold=4294967296:glibc.malloc.mmap_threshold=33554432:" +
    "glibc.malloc.top_pad=268435456",
};

/** A Trainer for `config` (seeded with `seed`), with a WorkerPool when `workers` > 1. */
export async function replicatedTrainer(
  problem: SchrodingerProblem,
  config: ExperimentConfig,
  options: { workers: number; seed: number },
): Promise<{ trainer: Trainer; close: () => void }> {
  const rng = new Rng(options.seed);
  const model = buildModel(problem, config, { rng });
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
    waiting: median(parts.map((p) => p.waiting)),
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

/**
 * The host's speed right now: the median GFLOP/s of a 2560×128 · 128×128 product in the toolkit's
 * WASM kernel on one thread (its own memory, 30 runs after 10 warm-ups). On this project's machine
 * it is ~50 when the host is quiet; another tenant's load can halve it for minutes, and benchmark
 * figures taken then move with it.
 */
export function hostProbe(): number {
  const [m, k, n] = [2560, 128, 128];
  const memory = new WebAssembly.Memory({
    initial: Math.ceil((4 * (m * k + k * n + m * n) + 4 * (5 + n) * k) / 65536) + 1,
  });
  const f32 = new Float32Array(memory.buffer);
  const rng = new Rng(1);
  for (let i = 0; i < m * k + k * n; i++) f32[i] = rng.normal();
  const gemm = gemmFunctions(memory);
  const [a, b, c] = [0, 4 * m * k, 4 * (m * k + k * n)];
  const scratch = c + 4 * m * n;
  const run = () => gemm.matmul(a, b, c, { m, k, n, rowStride: k, kStride: 1 }, scratch);
  for (let i = 0; i < 10; i++) run();
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  return (2 * m * k * n) / median(times) / 1e6;
}
