/**
 * neuralsvd: learn the top-L ordered singular (or eigen) functions of operators with neural
 * networks, by nested low-rank approximation (NestedLoRA), on TensorFlow.js under Deno.
 *
 * @example Top eigenvalues of a symmetric matrix, learned in order
 * ```ts
 * import { initBackend, Rng, SymmetricMatrixOperator, TabularModel, train } from "./mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[4, 1, 0], [1, 3, 0], [0, 0, 1]]);
 * const model = new TabularModel({ size: 3, outputs: 2, rng: new Rng(0) });
 * await train({ operator: op, model }, { steps: 3000, batchSize: "population", nesting: "sequential", lr: 0.02 });
 * console.log(op.report(model).modes.map((m) => m.norm.toFixed(3))); // ≈ eigenvalues 4.618, 2.382
 * ```
 *
 * @module
 */
export * from "./lib/backend.ts";
export * from "./lib/random.ts";
export * from "./lib/quasirandom.ts";
export * from "./lib/linalg.ts";
export * from "./lib/nesting.ts";
export * from "./lib/nested_lora.ts";
export * from "./lib/activations.ts";
export * from "./lib/models.ts";
export * from "./lib/optimizers.ts";
export * from "./lib/operator.ts";
export * from "./lib/train.ts";
export * from "./lib/evaluate.ts";
export * from "./lib/progress.ts";
export * from "./lib/io.ts";
export * from "./lib/densities.ts";
export * from "./lib/envelope.ts";
export * from "./lib/quadrature.ts";
export * from "./lib/experiment.ts";
export * from "./lib/problems.ts";
export * from "./operators/matrix.ts";
export * from "./operators/schrodinger.ts";
export * from "./operators/analytic.ts";
export * from "./lib/types.ts";
export * from "./lib/checkpoint.ts";
export * from "./lib/cli.ts";
export { WorkerPool, workersUnavailable } from "./lib/parallel.ts";
export type { PoolTimings, WorkerPoolOptions } from "./lib/parallel.ts";
