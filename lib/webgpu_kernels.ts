/**
 * The toolkit's own WebGPU kernels: a tiled matMul and a fused element-wise kernel.
 *
 * tfjs-backend-webgpu 4.22 multiplies in 32×32 tiles with 16 outputs per thread: 5.2 TFLOP/s on
 * the paper hydrogen step's big first-layer product ([5B, 2048]·[2048, 36·128]) on an H200, against
 * 13.1 for this kernel (`bench/webgpu_matmul.ts`). This kernel computes a BM×BN tile per workgroup, TM×TN outputs per thread
 * held in registers, with BK-deep slices of A and B staged in workgroup memory; a thread's rows and
 * columns are strided across the tile so that neighbouring threads read neighbouring words (no bank
 * conflicts) and write neighbouring outputs (coalesced). Transposed operands are read through their
 * strides while a slice is staged, so every flag combination runs the same inner loop.
 *
 * The shader is generated with the register loops unrolled, and runs through tfjs-webgpu's program
 * interface (its bindings, uniforms and pipeline cache), registered over tfjs's `BatchMatMul` on
 * the `webgpu` backend by {@linkcode useGpuMatMul}; products it does not take (small ones, int32)
 * stay with tfjs's kernel.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";

/** Tile shape of the matMul: workgroup tile BM×BN, BK-deep slices, TM×TN outputs per thread. */
export interface MatMulTiling {
  /** Rows of C per workgroup. */
  bm: number;
  /** Columns of C per workgroup. */
  bn: number;
  /** Depth of the A and B slices staged in workgroup memory. */
  bk: number;
  /** Rows of C per thread. */
  tm: number;
  /** Columns of C per thread. */
  tn: number;
}

/**
 * The default tiling: 128×128 tiles, 8×8 outputs per thread (256 threads), 8-deep slices (8 KiB of
 * workgroup memory).
 */
export const DEFAULT_TILING: MatMulTiling = { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 };

/** Smallest m·n·k the tiled matMul takes (below it tfjs's kernel, dispatch-bound anyway, keeps it). */
const GPU_MATMUL_MIN_WORK = 2 ** 18;

/** Throws unless the tiling is consistent (threads divide the staging work evenly). */
export function checkTiling(t: MatMulTiling): void {
  const threads = (t.bm / t.tm) * (t.bn / t.tn);
  const ok = [t.bm, t.bn, t.bk, t.tm, t.tn].every((v) => Number.isInteger(v) && v > 0) &&
    t.bm % t.tm === 0 && t.bn % t.tn === 0 && threads <= 1024 &&
    (t.bm * t.bk) % threads === 0 && (t.bk * t.bn) % threads === 0;
  if (!ok) {
    throw new RangeError(
      `Invalid matMul tiling ${JSON.stringify(t)}: tm must divide bm, tn divide bn, ` +
        `and the (bm/tm)·(bn/tn) ≤ 1024 threads must divide bm·bk and bk·bn`,
    );
  }
}

/**
 * WGSL body (tfjs-webgpu's `main`) of the tiled product C[b] = op(A[b])·op(B[b]) for one tiling
 * and transpose flags. Uniforms: dimM, dimN, dimK, and the batch strides of A and B (0 broadcasts).
 */
export function tiledMatMulSource(
  t: MatMulTiling,
  flags: { transposeA: boolean; transposeB: boolean },
): string {
  checkTiling(t);
  const wx = t.bn / t.tn, wy = t.bm / t.tm, threads = wx * wy;
  const lines: string[] = [];
  const add = (s: string) => lines.push(s);
  // Staging loads: consecutive threads take consecutive addresses of the operand in memory.
  const aLoads = (t.bm * t.bk) / threads, bLoads = (t.bk * t.bn) / threads;
  const aIndex = flags.transposeA
    ? { kk: `i / ${t.bm}`, m: `i % ${t.bm}`, at: `offA + gk * uniforms.dimM + gm` }
    : { kk: `i % ${t.bk}`, m: `i / ${t.bk}`, at: `offA + gm * uniforms.dimK + gk` };
  const bIndex = flags.transposeB
    ? { kk: `i % ${t.bk}`, n: `i / ${t.bk}`, at: `offB + gn * uniforms.dimK + gk` }
    : { kk: `i / ${t.bn}`, n: `i % ${t.bn}`, at: `offB + gk * uniforms.dimN + gn` };
  add(`var<workgroup> tileA : array<f32, ${t.bk * t.bm}>;`);
  add(`var<workgroup> tileB : array<f32, ${t.bk * t.bn}>;`);
  add(`fn main() {`);
  add(`  let tx = i32(localId.x);`);
  add(`  let ty = i32(localId.y);`);
  add(`  let tid = ty * ${wx} + tx;`);
  add(`  let row0 = i32(workgroupId.y) * ${t.bm};`);
  add(`  let col0 = i32(workgroupId.x) * ${t.bn};`);
  add(`  let batch = i32(workgroupId.z);`);
  add(`  let offA = batch * uniforms.strideA;`);
  add(`  let offB = batch * uniforms.strideB;`);
  for (let i = 0; i < t.tm; i++) {
    for (let j = 0; j < t.tn; j++) add(`  var c${i}_${j} = 0.0;`);
  }
  add(`  for (var k0 = 0; k0 < uniforms.dimK; k0 = k0 + ${t.bk}) {`);
  for (let l = 0; l < aLoads; l++) {
    add(`    {`);
    add(`      let i = tid + ${l * threads};`);
    add(`      let kk = ${aIndex.kk}; let m = ${aIndex.m};`);
    add(`      let gm = row0 + m; let gk = k0 + kk;`);
    add(`      var v = 0.0;`);
    add(`      if (gm < uniforms.dimM && gk < uniforms.dimK) { v = A[${aIndex.at}]; }`);
    add(`      tileA[kk * ${t.bm} + m] = v;`);
    add(`    }`);
  }
  for (let l = 0; l < bLoads; l++) {
    add(`    {`);
    add(`      let i = tid + ${l * threads};`);
    add(`      let kk = ${bIndex.kk}; let n = ${bIndex.n};`);
    add(`      let gn = col0 + n; let gk = k0 + kk;`);
    add(`      var v = 0.0;`);
    add(`      if (gn < uniforms.dimN && gk < uniforms.dimK) { v = B[${bIndex.at}]; }`);
    add(`      tileB[kk * ${t.bn} + n] = v;`);
    add(`    }`);
  }
  add(`    workgroupBarrier();`);
  add(`    for (var kk = 0; kk < ${t.bk}; kk = kk + 1) {`);
  for (let i = 0; i < t.tm; i++) add(`      let a${i} = tileA[kk * ${t.bm} + ty + ${i * wy}];`);
  for (let j = 0; j < t.tn; j++) add(`      let b${j} = tileB[kk * ${t.bn} + tx + ${j * wx}];`);
  for (let i = 0; i < t.tm; i++) {
    for (let j = 0; j < t.tn; j++) add(`      c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`);
  }
  add(`    }`);
  add(`    workgroupBarrier();`);
  add(`  }`);
  add(`  let offC = batch * uniforms.dimM * uniforms.dimN;`);
  for (let i = 0; i < t.tm; i++) {
    add(`  {`);
    add(`    let gm = row0 + ty + ${i * wy};`);
    add(`    if (gm < uniforms.dimM) {`);
    for (let j = 0; j < t.tn; j++) {
      add(`      { let gn = col0 + tx + ${j * wx};`);
      add(
        `        if (gn < uniforms.dimN) { result[offC + gm * uniforms.dimN + gn] = c${i}_${j}; } }`,
      );
    }
    add(`    }`);
    add(`  }`);
  }
  add(`}`);
  return lines.join("\n");
}

/** The parts of tfjs-webgpu's program interface this kernel fills in. */
class TiledMatMulProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [2], y: [1], z: [0] };
  dispatch: [number, number, number];
  variableNames = ["A", "B"];
  uniforms = "dimM : i32, dimN : i32, dimK : i32, strideA : i32, strideB : i32,";
  workgroupSize: [number, number, number];
  #source: string;

  constructor(
    shape: { batch: number; m: number; n: number },
    tiling: MatMulTiling,
    flags: { transposeA: boolean; transposeB: boolean },
  ) {
    this.outputShape = [shape.batch, shape.m, shape.n];
    this.workgroupSize = [tiling.bn / tiling.tn, tiling.bm / tiling.tm, 1];
    this.dispatch = [
      Math.ceil(shape.n / tiling.bn),
      Math.ceil(shape.m / tiling.bm),
      shape.batch,
    ];
    const { bm, bn, bk, tm, tn } = tiling;
    this.shaderKey =
      `neuralsvdMatMul_${bm}_${bn}_${bk}_${tm}_${tn}_${flags.transposeA}_${flags.transposeB}`;
    this.#source = tiledMatMulSource(tiling, flags);
  }

  getUserCode(): string {
    return this.#source;
  }
}

/** What the kernel needs of tfjs-webgpu's backend. */
interface WebGpuBackendLike {
  runWebGPUProgram(
    program: unknown,
    inputs: tf.TensorInfo[],
    dtype: string,
    uniforms: { type: string; data: number[] }[],
  ): tf.TensorInfo;
}

/** Sizes of a batched product op(a)·op(b), or undefined when the batch shapes do not broadcast. */
function productShape(
  aShape: readonly number[],
  bShape: readonly number[],
  flags: { transposeA: boolean; transposeB: boolean },
) {
  const ra = aShape.length, rb = bShape.length;
  if (ra < 2 || rb < 2) return undefined;
  const m = flags.transposeA ? aShape[ra - 1] : aShape[ra - 2];
  const k = flags.transposeA ? aShape[ra - 2] : aShape[ra - 1];
  const n = flags.transposeB ? bShape[rb - 2] : bShape[rb - 1];
  const kb = flags.transposeB ? bShape[rb - 1] : bShape[rb - 2];
  if (k !== kb) return undefined;
  const size = (s: readonly number[]) => s.reduce((p, v) => p * v, 1);
  const batchShapeA = aShape.slice(0, -2), batchShapeB = bShape.slice(0, -2);
  const batchA = size(batchShapeA), batchB = size(batchShapeB);
  const same = batchShapeA.length === batchShapeB.length &&
    batchShapeA.every((d, i) => d === batchShapeB[i]);
  if (!same && batchA !== 1 && batchB !== 1) return undefined;
  const batchShape = batchA >= batchB ? batchShapeA : batchShapeB;
  return {
    m,
    k,
    n,
    batchA,
    batchB,
    batch: Math.max(batchA, batchB),
    outShape: [...batchShape, m, n],
  };
}

let tiling: MatMulTiling = DEFAULT_TILING;
let original: tf.KernelConfig | undefined;

function tiledMatMulConfig(fallback: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const a = args.inputs.a as tf.TensorInfo, b = args.inputs.b as tf.TensorInfo;
    const flags = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const p = a.dtype === "float32" && b.dtype === "float32"
      ? productShape(a.shape, b.shape, flags)
      : undefined;
    if (p === undefined || p.m * p.n * p.k < GPU_MATMUL_MIN_WORK) {
      return fallback.kernelFunc(args) as tf.TensorInfo;
    }
    const backend = args.backend as unknown as WebGpuBackendLike;
    // Rank-3 views of the operands (same data): the program indexes them itself.
    const view = (x: tf.TensorInfo, batch: number, rows: number, cols: number) => ({
      dataId: x.dataId,
      dtype: x.dtype,
      shape: [batch, rows, cols],
    });
    const [ra, ca] = flags.transposeA ? [p.k, p.m] : [p.m, p.k];
    const [rb, cb] = flags.transposeB ? [p.n, p.k] : [p.k, p.n];
    const program = new TiledMatMulProgram(p, tiling, flags);
    const out = backend.runWebGPUProgram(
      program,
      [view(a, p.batchA, ra, ca), view(b, p.batchB, rb, cb)],
      "float32",
      [
        { type: "int32", data: [p.m] },
        { type: "int32", data: [p.n] },
        { type: "int32", data: [p.k] },
        { type: "int32", data: [p.batchA === 1 ? 0 : p.m * p.k] },
        { type: "int32", data: [p.batchB === 1 ? 0 : p.k * p.n] },
      ],
    );
    // The output owns its buffer; a reshape is a new shape on the same data.
    return { dataId: out.dataId, dtype: out.dtype, shape: p.outShape };
  };
  return { ...fallback, kernelFunc };
}

/**
 * Registers (or, with `enabled` false, removes) the tiled matMul over tfjs-webgpu's `BatchMatMul`
 * kernel; `options.tiling` changes the tile shape (benchmarks). Returns whether it was in use.
 * Needs tfjs-backend-webgpu loaded (`initBackend({ backend: "webgpu" })` does it).
 *
 * @example Compare the tiled matMul with tfjs's own on WebGPU
 * ```ts ignore
 * import { initBackend } from "./backend.ts";
 * import { useGpuMatMul } from "./webgpu_kernels.ts";
 * await initBackend({ backend: "webgpu" }); // registers the tiled matMul
 * useGpuMatMul(false); // tfjs's kernel from here on
 * ```
 */
export function useGpuMatMul(enabled: boolean, options: { tiling?: MatMulTiling } = {}): boolean {
  const active = original !== undefined;
  if (options.tiling) {
    checkTiling(options.tiling);
    tiling = options.tiling;
  }
  if (enabled === active) return active;
  const current = tf.getKernel("BatchMatMul", "webgpu");
  if (current === undefined) return active;
  tf.unregisterKernel("BatchMatMul", "webgpu");
  if (enabled) {
    original = current;
    tf.registerKernel(tiledMatMulConfig(current));
  } else {
    tf.registerKernel(original!);
    original = undefined;
  }
  return active;
}

/** Name of the fused element-wise kernel (WebGPU only; see {@linkcode fusedElementwise}). */
const FUSED_KERNEL = "NeuralsvdFusedElementwise";

/** One WGSL element-wise expression over same-shape float32 inputs, with f32 uniforms. */
class FusedElementwiseProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  variableNames: string[];
  uniforms: string;
  workgroupSize: [number, number, number] = [128, 1, 1];
  size = true;
  #source: string;

  constructor(shape: number[], expr: string, inputs: number, scalars: number, guard: boolean) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    const size = shape.reduce((p, v) => p * v, 1);
    this.dispatch = [Math.ceil(size / this.workgroupSize[0]), 1, 1];
    this.variableNames = [
      ...Array.from({ length: inputs }, (_, i) => `X${i}`),
      ...(guard ? ["G"] : []),
    ];
    this.uniforms = Array.from({ length: scalars }, (_, i) => `s${i} : f32,`).join(" ");
    this.shaderKey = `neuralsvdFused_${inputs}_${scalars}_${guard}_${expr}`;
    const reads = Array.from({ length: inputs }, (_, i) => `let x${i} = X${i}[index];`);
    const names = Array.from({ length: scalars }, (_, i) => `let s${i} = uniforms.s${i};`);
    this.#source = `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${reads.join(" ")}
          ${names.join(" ")}
          let guard = ${guard ? "G[0] != 0" : "true"};
          setOutputAtIndex(index, ${expr});
        }
      }`;
  }

  getUserCode(): string {
    return this.#source;
  }
}

function fusedKernel(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo {
  const { expr, scalars } = args.attrs as unknown as { expr: string; scalars: number[] };
  const names = Object.keys(args.inputs).filter((k) => k !== "guard").sort((a, b) =>
    Number(a.slice(1)) - Number(b.slice(1))
  );
  const inputs = names.map((k) => args.inputs[k] as tf.TensorInfo);
  const guard = args.inputs.guard as tf.TensorInfo | undefined;
  const program = new FusedElementwiseProgram(
    [...inputs[0].shape],
    expr,
    inputs.length,
    scalars.length,
    guard !== undefined,
  );
  return (args.backend as unknown as WebGpuBackendLike).runWebGPUProgram(
    program,
    guard ? [...inputs, guard] : inputs,
    "float32",
    scalars.map((v) => ({ type: "float32", data: [v] })),
  );
}

/** Whether {@linkcode fusedElementwise} can run on the active backend (WebGPU). */
export function fusedElementwiseAvailable(): boolean {
  if (tf.getBackend() !== "webgpu") return false;
  if (tf.getKernel(FUSED_KERNEL, "webgpu") === undefined) {
    tf.registerKernel({ kernelName: FUSED_KERNEL, backendName: "webgpu", kernelFunc: fusedKernel });
  }
  return true;
}

/**
 * One WebGPU kernel for an element-wise formula (an optimiser update, an EMA step) that would
 * otherwise take one kernel per operation — on a GPU each is a dispatch the host pays for. `expr`
 * is a WGSL f32 expression over the inputs `x0, x1, …` (float32, all of one shape), the scalars
 * `s0, s1, …` (uniforms, so new values need no new shader) and `guard` (a bool: the boolean scalar
 * tensor `options.guard`, or true). No gradient; WebGPU only ({@linkcode fusedElementwiseAvailable}).
 *
 * @example RMSprop's second-moment update in one kernel
 * ```ts ignore
 * const vNext = fusedElementwise("select(x1, s0 * x1 + (1.0 - s0) * x0 * x0, guard)", [g, v], {
 *   scalars: [0.999],
 * });
 * ```
 */
export function fusedElementwise(
  expr: string,
  inputs: tf.Tensor[],
  options: { scalars?: number[]; guard?: tf.Tensor } = {},
): tf.Tensor {
  if (!fusedElementwiseAvailable()) {
    throw new Error(
      `Unsupported backend ${tf.getBackend()}: fused element-wise kernels run on webgpu`,
    );
  }
  const shape = inputs[0]?.shape;
  inputs.forEach((x, i) => {
    if (x.dtype !== "float32" || x.shape.join() !== shape.join()) {
      throw new RangeError(
        `Mismatched input ${i} (${x.dtype} [${x.shape.join(", ")}]): fused element-wise inputs ` +
          `must be float32 of one shape [${shape.join(", ")}]`,
      );
    }
  });
  const named: tf.NamedTensorMap = {};
  inputs.forEach((x, i) => (named[`x${i}`] = x));
  if (options.guard) named.guard = options.guard;
  return tf.engine().runKernel(FUSED_KERNEL, named, {
    expr,
    scalars: options.scalars ?? [],
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}
