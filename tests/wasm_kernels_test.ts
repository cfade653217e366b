import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { initBackend } from "../mod.ts";
import { encodeModule, Op, sleb, uleb } from "../lib/wasm_encoder.ts";
import {
  readTensorsInto,
  simdBiasSoftplus,
  simdFunctions,
  simdLinearSoftplus,
  simdMatMulHandles,
  simdMlpReverse,
  simdRmsprop,
  simdSoftplusJet,
  simdSoftplusJetWithSlope,
  simdSumOfSquares,
  TRIG_SIMD_LIMIT,
  useSimdKernels,
} from "../lib/wasm_kernels.ts";
import { gemmFunctions, hasRelaxedSimd } from "../lib/wasm_gemm.ts";
import { Rng } from "../lib/random.ts";
import { createOptimizer, ParameterEma } from "../lib/optimizers.ts";

const softplus64 = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

/** Runs `name` of a fresh instance on `xs` (rounded to float32) and returns the outputs. */
function runSimd(
  name: "softplus" | "sin" | "cos",
  xs: number[],
): { out: Float32Array; ok: boolean } {
  const memory = new WebAssembly.Memory({ initial: Math.ceil((xs.length * 8 + 64) / 65536) + 1 });
  const heap = new Float32Array(memory.buffer);
  heap.set(xs);
  const dst = xs.length * 4 + 16; // an offset that is not a multiple of 16 when xs.length is odd
  const result = simdFunctions(memory)[name](0, dst, xs.length);
  return { out: heap.slice(dst / 4, dst / 4 + xs.length), ok: result !== false };
}

function uniform(rng: Rng, n: number, lo: number, hi: number): number[] {
  return Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * rng.uniform()));
}

Deno.test("uleb and sleb encode LEB128 as the WebAssembly spec's examples", () => {
  assert.deepEqual(uleb(0), [0]);
  assert.deepEqual(uleb(624485), [0xe5, 0x8e, 0x26]);
  assert.deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78]);
  assert.deepEqual(sleb(63), [0x3f]);
  assert.deepEqual(sleb(64), [0xc0, 0x00]);
  assert.deepEqual(sleb(-64), [0x40]);
  assert.throws(() => uleb(-1), /Unsigned LEB128 needs a non-negative integer, got -1/);
});

Deno.test("encodeModule builds a module V8 validates and runs", () => {
  const bytes = encodeModule({ shared: false }, [{
    name: "mad",
    params: ["i32", "i32", "i32"],
    results: ["i32"],
    locals: [],
    body: [...Op.localGet(0), ...Op.localGet(1), ...Op.i32Mul, ...Op.localGet(2), ...Op.i32Add],
  }]);
  assert.ok(WebAssembly.validate(bytes as BufferSource));
  const memory = new WebAssembly.Memory({ initial: 1 });
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource), {
    env: { memory },
  });
  assert.equal((exports.mad as (a: number, b: number, c: number) => number)(6, 7, -2), 40);
  assert.throws(() => encodeModule({ shared: true }, []), /shared memory import needs/);
});

Deno.test("simdFunctions softplus is within 3e-7 relative of float64 softplus", () => {
  const rng = new Rng(1);
  for (const [lo, hi] of [[-5, 5], [-40, 40], [-100, 100]]) {
    const xs = uniform(rng, 4099, lo, hi);
    const { out } = runSimd("softplus", xs);
    xs.forEach((x, i) => {
      const want = softplus64(x);
      if (x < -87.33) return assert.ok(out[i] >= 0 && out[i] <= 1.2e-38, `${x}: ${out[i]}`);
      assert.ok(Math.abs(out[i] - want) <= 3e-7 * want, `softplus(${x}) = ${out[i]}, want ${want}`);
    });
  }
});

Deno.test("simdFunctions softplus handles 0, ±0, large values, ±Infinity and NaN", () => {
  const { out } = runSimd("softplus", [0, -0, 1e-30, 87.3, 88, 1e30, Infinity, -Infinity, NaN]);
  assert.ok(Math.abs(out[0] - Math.LN2) < 1e-7 && Math.abs(out[1] - Math.LN2) < 1e-7);
  assert.ok(Math.abs(out[2] - Math.LN2) < 1e-7);
  assert.equal(out[3], Math.fround(87.3));
  assert.equal(out[4], 88);
  assert.equal(out[5], Math.fround(1e30));
  assert.equal(out[6], Infinity);
  assert.equal(out[7], 0);
  assert.ok(Number.isNaN(out[8]));
});

Deno.test("simdFunctions sin and cos are within 2e-7 of float64 up to |x| = 8192", () => {
  const rng = new Rng(2);
  for (const [lo, hi] of [[-4, 4], [-300, 300], [-TRIG_SIMD_LIMIT, TRIG_SIMD_LIMIT]]) {
    const xs = uniform(rng, 4097, lo, hi);
    for (const name of ["sin", "cos"] as const) {
      const { out, ok } = runSimd(name, xs);
      assert.ok(ok);
      xs.forEach((x, i) => {
        const want = Math[name](x);
        assert.ok(Math.abs(out[i] - want) <= 2e-7, `${name}(${x}) = ${out[i]}, want ${want}`);
      });
    }
  }
  // the quadrant boundaries and exact values
  const { out } = runSimd("sin", [0, Math.PI / 2, Math.PI, -Math.PI / 2, 3 * Math.PI / 2]);
  assert.deepEqual(Array.from(out, (v) => Math.round(v * 1e6) / 1e6 + 0), [0, 1, 0, -1, -1]);
});

Deno.test("simdFunctions sin and cos report inputs beyond 8192 and Infinity", () => {
  assert.equal(runSimd("sin", [1, 2, 3, 9000]).ok, false);
  assert.equal(runSimd("cos", [1, Infinity, 3, 4]).ok, false);
  assert.ok(Number.isNaN(runSimd("cos", [NaN, 0, 0, 0]).out[0]));
});

Deno.test("useSimdKernels: tf.softplus, tf.sin and tf.cos on wasm agree with tfjs's own kernels", async () => {
  await initBackend();
  const rng = new Rng(3);
  const x = tf.tensor2d(uniform(rng, 3 * 1001, -30, 30), [3, 1001]);
  const big = tf.tensor1d([1, -2, 1e4, -5e5, 7]); // beyond the SIMD range: the scalar path
  const ops = [(t: tf.Tensor) => tf.softplus(t), (t: tf.Tensor) => tf.sin(t), tf.cos];
  const ours = ops.map((op) => [op(x).dataSync(), op(big).dataSync()]);
  try {
    assert.equal(useSimdKernels(false), true);
    const theirs = ops.map((op) => [op(x).dataSync(), op(big).dataSync()]);
    ours.forEach((pair, k) =>
      pair.forEach((a, j) =>
        a.forEach((v, i) => {
          const w = theirs[k][j][i];
          assert.ok(Math.abs(v - w) <= 4e-7 * Math.max(1, Math.abs(w)), `op ${k}: ${v} vs ${w}`);
        })
      )
    );
  } finally {
    assert.equal(useSimdKernels(true), false);
  }
  // int32 input (only reachable through runKernel) goes to tfjs's own kernel, which keeps int32
  const int = tf.tensor1d([1, 2], "int32");
  const sinInt = tf.engine().runKernel("Sin", { x: int }) as tf.Tensor;
  assert.equal(sinInt.dtype, "int32");
  // gradients stay tfjs's (softplus' = sigmoid)
  const g = tf.grad((t: tf.Tensor) => tf.softplus(t).sum())(tf.tensor1d([-1, 0, 2])).dataSync();
  [-1, 0, 2].forEach((v, i) => assert.ok(Math.abs(g[i] - 1 / (1 + Math.exp(-v))) < 1e-6));
  tf.dispose([x, big, int, sinInt]);
});

/** Float64 reference of C = op(A)·B for row-major data (A given as stored: K×M when transposed). */
function matmul64(a: Float32Array, b: Float32Array, m: number, k: number, n: number, tA: boolean) {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let q = 0; q < k; q++) {
      const aiq = tA ? a[q * m + i] : a[i * k + q];
      for (let j = 0; j < n; j++) c[i * n + j] += aiq * b[q * n + j];
    }
  }
  return c;
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

Deno.test("gemmFunctions matmul matches float64 for every row remainder, K remainder and A layout", () => {
  const memory = new WebAssembly.Memory({ initial: 64 });
  const heap = new Float32Array(memory.buffer);
  assert.equal(gemmFunctions(memory).fma, hasRelaxedSimd());
  assert.equal(gemmFunctions(memory, { fma: false }).fma, false);
  for (const gemm of [gemmFunctions(memory), gemmFunctions(memory, { fma: false })]) {
    const rng = new Rng(4);
    // m covers full five-row panels and 1…4 left-over rows (four: the rotated kernel on its own
    // panel layout); k covers 0, 1, 7 (only the single-step loop), 8 and 8 + 3, and multiples of 4
    // and not (the row-major panel packing)
    for (
      const [m, k, n] of [
        [1, 1, 8],
        [5, 7, 16],
        [13, 8, 8],
        [14, 11, 24],
        [12, 0, 8],
        [40, 37, 64],
        [7, 5, 8],
        [4, 4, 8],
        [11, 16, 16],
        [9, 12, 8],
        [10, 9, 16],
        [7, 9, 4], // a half panel alone
        [11, 16, 12], // 8 columns and a half panel
        [6, 13, 20],
      ]
    ) {
      // A row-major, stored transposed, and every other column of an m×2k matrix (any strides)
      for (const layout of ["rows", "transposed", "strided"]) {
        const transposeA = layout === "transposed";
        const a = Float32Array.from({ length: m * k }, () => rng.normal());
        const b = Float32Array.from({ length: k * n }, () => rng.normal());
        const [pa, pb, pc] = [64, 64 + 8 * m * k, 128 + 4 * (2 * m * k + k * n)];
        if (layout === "strided") {
          // the other columns hold a value that would show in any product reading them
          heap.fill(1e30, pa / 4, pa / 4 + 2 * m * k);
          a.forEach((v, i) => (heap[pa / 4 + 2 * i] = v));
        } else {
          heap.set(a, pa / 4);
        }
        heap.set(b, pb / 4);
        heap.fill(NaN, pc / 4, pc / 4 + m * n); // every output must be written
        const strides = layout === "transposed"
          ? { rowStride: 1, kStride: m }
          : layout === "strided"
          ? { rowStride: 2 * k, kStride: 2 }
          : { rowStride: k, kStride: 1 };
        gemm.matmul(pa, pb, pc, { m, k, n, ...strides }, pc + 4 * m * n + 32);
        const want = matmul64(a, b, m, k, n, transposeA);
        assertClose(
          heap.subarray(pc / 4, pc / 4 + m * n),
          want,
          2e-5 * Math.sqrt(k + 1),
          `${m}×${k}×${n}, A ${layout}`,
        );
      }
    }
  }
  assert.throws(
    () => gemmFunctions(memory).matmul(0, 0, 0, { m: 2, k: 2, n: 6, rowStride: 2, kStride: 1 }, 0),
    /Invalid column count 6: must be a multiple of 4/,
  );
  // the panel callback sees each row panel once, in order, after it is final
  const panels: [number, number, number][] = [];
  const [m, k] = [12, 3];
  heap.fill(1, 16, 16 + m * k + k * 8);
  gemmFunctions(memory).matmul(
    64,
    64 + 4 * m * k,
    1024,
    { m, k, n: 8, rowStride: k, kStride: 1 },
    4096,
    { panel: (row, rows) => panels.push([row, rows, heap[256 + 8 * row]]) },
  );
  assert.deepEqual(panels, [[0, 5, 3], [5, 5, 3], [10, 2, 3]]);
  // A packed whole once (`packA`) gives the same products as packing per panel, in both layouts
  const gemm = gemmFunctions(memory);
  const rng = new Rng(9);
  for (const transposeA of [false, true]) {
    const [m2, k2, n2] = [13, 11, 16];
    heap.set(Float32Array.from({ length: m2 * k2 + k2 * n2 }, () => rng.normal()), 16);
    const strides = transposeA ? { rowStride: 1, kStride: m2 } : { rowStride: k2, kStride: 1 };
    const shape2 = { m: m2, k: k2, n: n2, ...strides };
    const [pa, pb, perPanel, whole] = [64, 64 + 4 * m2 * k2, 2048, 4096];
    gemm.matmul(pa, pb, perPanel, shape2, 8192);
    gemm.packA(pa, 12288, shape2);
    heap.fill(NaN, whole / 4, whole / 4 + m2 * n2);
    gemm.matmul(pa, pb, whole, shape2, 8192, { packedA: 12288 });
    assert.deepEqual(
      Array.from(heap.subarray(whole / 4, whole / 4 + m2 * n2)),
      Array.from(heap.subarray(perPanel / 4, perPanel / 4 + m2 * n2)),
    );
  }
});

Deno.test("gemmFunctions matvec matches float64 for every row remainder, fused or not", () => {
  const memory = new WebAssembly.Memory({ initial: 4 });
  const f = new Float32Array(memory.buffer);
  const rng = new Rng(8);
  for (const gemm of [gemmFunctions(memory), gemmFunctions(memory, { fma: false })]) {
    for (const [m, k] of [[1, 4], [3, 8], [4, 4], [5, 12], [6, 16], [7, 4], [9, 132], [0, 4]]) {
      const a = 0, b = 4 * m * k, c = b + 4 * k;
      for (let i = 0; i < m * k + k; i++) f[i] = rng.normal();
      f.fill(Number.NaN, c / 4, c / 4 + m + 4); // every output (and nothing past it) written
      gemm.matvec(a, b, c, { m, k });
      for (let r = 0; r < m; r++) {
        let want = 0;
        for (let q = 0; q < k; q++) want += f[r * k + q] * f[b / 4 + q];
        assert.ok(Math.abs(f[c / 4 + r] - want) <= 1e-5 * k, `m ${m} k ${k} row ${r}`);
      }
      assert.ok(Number.isNaN(f[c / 4 + m]), `m ${m} k ${k}: wrote past the end`);
    }
  }
  assert.throws(
    () => gemmFunctions(memory).matvec(0, 0, 0, { m: 2, k: 6 }),
    /Invalid length 6: must be a multiple of 4/,
  );
});

Deno.test("BatchMatMul on wasm: the SIMD kernel agrees with tfjs's, batched, broadcast and transposed", async () => {
  await initBackend();
  const rng = new Rng(5);
  const t = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((x, y) => x * y) }, () => rng.normal()),
      shape,
    );
  const cases: [number[], number[], boolean, boolean][] = [
    [[67, 45], [45, 32], false, false], // rank 2
    [[67, 45], [45, 12], false, false], // an 8-column panel and a half panel
    [[45, 67], [45, 20], true, false], // the same, A transposed
    [[45, 67], [45, 32], true, false], // transposeA
    [[3, 20, 30], [3, 30, 16], false, false], // batched
    [[3, 30, 20], [1, 30, 16], true, false], // b broadcast over the batch, a transposed
    [[1, 20, 30], [2, 30, 8], false, false], // a broadcast
    [[130, 128], [128, 1], false, false], // one column: the matrix-vector product
    [[2, 67, 64], [2, 64, 1], false, false], // batched matrix-vector products
    [[67, 45], [32, 45], false, true], // transposeB (4×4-transposed packing, K % 4 = 1)
    [[67, 46], [20, 46], false, true], // transposeB with a half panel, K % 4 = 2
    [[45, 67], [12, 45], true, true], // both transposed
    [[3, 20, 31], [3, 16, 31], false, true], // batched, transposeB
    [[130, 128], [1, 128], false, true], // one column, transposeB: the same vector
  ];
  for (const [sa, sb, transposeA, transposeB] of cases) {
    const [a, b] = [t(sa), t(sb)];
    assert.ok(simdMatMulHandles(sa, sb, { transposeA, transposeB }), `${sa} · ${sb}`);
    const ours = tf.matMul(a, b, transposeA, transposeB);
    useSimdKernels(false);
    const theirs = tf.matMul(a, b, transposeA, transposeB);
    useSimdKernels(true);
    assert.deepEqual(ours.shape, theirs.shape);
    assertClose(ours.dataSync(), theirs.dataSync(), 1e-4, `${sa} · ${sb}`);
    tf.dispose([a, b, ours, theirs]);
  }
  // what stays with tfjs's kernel: columns neither 1 nor a multiple of 4, one column of a transposed
  // A or of rows whose length is not a multiple of 4, mismatched shapes, tiny products
  assert.equal(simdMatMulHandles([64, 64], [64, 2]), false);
  assert.equal(simdMatMulHandles([64, 64], [64, 6]), false);
  assert.equal(simdMatMulHandles([64, 64], [64, 1], { transposeA: true }), false);
  assert.equal(simdMatMulHandles([64, 66], [66, 1]), false);
  assert.equal(simdMatMulHandles([64, 64], [8, 60], { transposeB: true }), false);
  assert.equal(simdMatMulHandles([2, 2], [2, 8]), false);
  useSimdKernels(false);
  assert.equal(simdMatMulHandles([64, 64], [64, 64]), false);
  useSimdKernels(true);
});

Deno.test("BatchMatMul on wasm: a left operand used again is packed once and gives the same products", async () => {
  await initBackend();
  const rng = new Rng(12);
  const t = (shape: number[]) =>
    tf.tensor(Float32Array.from({ length: shape[0] * shape[1] }, () => rng.normal()), shape);
  // 300×256 is above the cache's size floor; A, then others, then A again (packed on its second
  // product), a same-shape tensor (must not match), A reshaped (must not match), A transposed
  const [a, other] = [t([300, 256]), t([300, 256])];
  // (each B its own tensor: tfjs-wasm's own matMul caches XNNPACK operators by B's dataId, and
  // aborts when it meets the same dataId in another shape)
  const bs = [t([256, 16]), t([256, 24]), t([256, 8]), t([256, 16]), t([128, 32]), t([300, 8])];
  const products = (): tf.Tensor[] => [
    tf.matMul(a, bs[0]),
    tf.matMul(other, bs[1]),
    tf.matMul(a, bs[1]),
    tf.matMul(a, bs[2]),
    tf.matMul(other, bs[3]),
    tf.matMul(a, bs[3]),
    tf.matMul(tf.reshape(a, [600, 128]), bs[4]),
    tf.matMul(a, bs[5], true, false),
    tf.matMul(a, bs[0]),
  ];
  const ours = products();
  useSimdKernels(false);
  const theirs = products();
  useSimdKernels(true);
  ours.forEach((o, i) => assertClose(o.dataSync(), theirs[i].dataSync(), 1e-3, `product ${i}`));
  // the repeated product is bit-identical to the first (the packed panels are the same numbers)
  assert.deepEqual(Array.from(ours[8].dataSync()), Array.from(ours[0].dataSync()));
  tf.dispose([a, other, ...bs, ...ours, ...theirs]);
});

Deno.test("the BatchMatMul gradient is the same with the transposeA product as with tfjs's kernels", async () => {
  await initBackend();
  const rng = new Rng(6);
  const x = tf.tensor2d(Float32Array.from({ length: 50 * 24 }, () => rng.normal()), [50, 24]);
  const w = tf.tensor2d(Float32Array.from({ length: 24 * 16 }, () => rng.normal()), [24, 16]);
  const loss = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.softplus(tf.matMul(xx, ww)));
  const g = () => tf.grads((xx: tf.Tensor, ww: tf.Tensor) => loss(xx, ww))([x, w]);
  assert.ok(simdMatMulHandles([50, 24], [50, 16], { transposeA: true }));
  const ours = g();
  useSimdKernels(false);
  const theirs = g();
  useSimdKernels(true);
  ours.forEach((o, i) => assertClose(o.dataSync(), theirs[i].dataSync(), 2e-5, `grad ${i}`));
  tf.dispose([x, w, ...ours, ...theirs]);
});

Deno.test("Slice, SplitV and Concat on wasm: block copies agree with tfjs's kernels", async () => {
  await initBackend();
  const x = tf.tensor(Float32Array.from({ length: 4 * 5 * 6 }, (_, i) => i - 0.5), [4, 5, 6]);
  const xi = tf.cast(x, "int32");
  const x4 = tf.reshape(tf.range(0, 2 * 3 * 4 * 5, 1, "float32"), [2, 3, 4, 5]);
  const column = (n: number, from: number) => tf.reshape(tf.range(from, from + n), [n, 1]);
  const concats = (): tf.Tensor[] => [
    tf.concat([x, tf.neg(x)], 0),
    tf.concat([x, tf.slice(x, [0, 0, 0], [4, 2, 6])], 1), // a middle axis
    tf.concat([x, tf.slice(x, [0, 0, 1], [4, 5, 3]), x], 2), // the last axis, rows of 6, 3, 6
    tf.concat([column(7, 0), column(7, 10), column(7, 20)], 1), // one-column rows
    tf.concat([xi, xi], 2),
    tf.concat([x, tf.zeros([4, 0, 6])], 1), // an empty part
    tf.concat([x4, x4], 3),
  ];
  const slices: [number[], number[]][] = [
    [[0, 0, 0], [-1, -1, -1]], // all: one run
    [[1, 0, 0], [2, -1, -1]], // whole trailing axes
    [[0, 1, 2], [4, 3, 3]], // partial everywhere
    [[3, 4, 5], [1, 1, 1]], // one element
    [[0, 2, 0], [4, 0, 6]], // empty
  ];
  const splits: [number | number[], number][] = [[2, 0], [[1, 3, 1], 1], [[2, -1], 2], [3, -1]];
  const run = () => [
    ...slices.flatMap(([b, s]) => [tf.slice(x, b, s), tf.slice(xi, b, s)]),
    tf.slice(x4, [1, 1, 2, 1], [1, 2, 2, 3]), // two outer axes walked, strided rows
    tf.slice(x4, [0, 1, 0, 0], [2, 2, 4, 5]),
    ...splits.flatMap(([n, axis]) => [...tf.split(x, n, axis), ...tf.split(xi, n, axis)]),
    ...tf.split(x4, [1, 3, 1], 3),
    ...concats(),
  ];
  const ours = run();
  useSimdKernels(false);
  const theirs = run();
  useSimdKernels(true);
  ours.forEach((o, i) => {
    assert.deepEqual(o.shape, theirs[i].shape);
    assert.equal(o.dtype, theirs[i].dtype);
    assert.deepEqual(Array.from(o.dataSync()), Array.from(theirs[i].dataSync()), `output ${i}`);
  });
  // bool (1 byte per element) goes to tfjs's kernel
  const b = tf.slice(tf.tensor1d([true, false, true], "bool"), [1], [2]);
  assert.deepEqual(Array.from(b.dataSync()), [0, 1]);
  tf.dispose([x, xi, x4, b, ...ours, ...theirs]);
  const simd = simdFunctions(new WebAssembly.Memory({ initial: 1 }));
  assert.throws(
    () => simd.copyRows({ src: 0, dst: 64 }, { rows: 1, rowBytes: 6, srcStride: 0, dstStride: 0 }),
    /Invalid row length 6 bytes: it must be a multiple of 4/,
  );
});

Deno.test("Sum on wasm: leading-axis row sums agree with tfjs's kernel; other reductions pass through", async () => {
  await initBackend();
  const rng = new Rng(7);
  const x = tf.tensor(Float32Array.from({ length: 3 * 5 * 8 }, () => rng.normal()), [3, 5, 8]);
  const cases: [number | number[], boolean][] = [
    [0, false],
    [0, true],
    [[1, 0], false],
    [[0, 1, 2], true],
    [2, false], // trailing axis: tfjs's kernel
    [1, true], // middle axis: tfjs's kernel
    [[0, 2], false], // not leading: tfjs's kernel
  ];
  const run = () => cases.map(([axis, keepDims]) => tf.sum(x, axis, keepDims));
  const ours = run();
  useSimdKernels(false);
  const theirs = run();
  useSimdKernels(true);
  ours.forEach((o, i) => {
    assert.deepEqual(o.shape, theirs[i].shape, `case ${i}`);
    assertClose(o.dataSync(), theirs[i].dataSync(), 1e-5, `case ${i}`);
  });
  assert.throws(
    () => simdFunctions(new WebAssembly.Memory({ initial: 1 })).sumRows(0, 64, 2, 6),
    /Invalid sumRows shape \[2, 6\]: rows ≥ 1, cols % 4 = 0/,
  );
  tf.dispose([x, ...ours, ...theirs]);
});

for (const name of ["rmsprop", "adam"]) {
  Deno.test(`Fused ${name}: the optimiser with the fused kernel equals tfjs's chain of kernels bit for bit`, async () => {
    await initBackend();
    const rng = new Rng(12);
    const shapes = [[37, 19], [64], [3, 4, 5], [1]];
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    const init = shapes.map((s) => uniform(rng, size(s), -1, 1));
    const grads = Array.from({ length: 4 }, () => shapes.map((s) => uniform(rng, size(s), -3, 3)));
    const run = (own: boolean) => {
      useSimdKernels(own);
      const vars = shapes.map((s, i) => tf.variable(tf.tensor(init[i], s)));
      const opt = createOptimizer(vars, { name, alpha: 0.999, epsilon: 1e-8 });
      for (const [t, step] of grads.entries()) {
        const g = step.map((values, i) => tf.tensor(values, shapes[i]));
        opt.step(g, 1e-3 * (t + 1));
        tf.dispose(g);
      }
      const out = [...vars, ...opt.stateTensors()].map((x) => Array.from(x.dataSync()));
      opt.dispose();
      tf.dispose(vars);
      return out;
    };
    const chain = run(false), fused = run(true);
    assert.deepEqual(fused, chain);
  });
}

Deno.test("simdRmsprop computes one update, and defers to the chain with tfjs's kernels", async () => {
  await initBackend();
  const p = tf.ones([5]), g = tf.ones([5]), v = tf.zeros([5]);
  useSimdKernels(false);
  assert.equal(simdRmsprop({ p, g, v }, { lr: 1, alpha: 0.5, epsilon: 0 }), undefined);
  useSimdKernels(true);
  const [p2, v2] = simdRmsprop({ p, g, v }, { lr: 1, alpha: 0.5, epsilon: 0 })!;
  // v' = 0.5, p' = 1 − 1/√0.5
  assert.deepEqual(Array.from(v2.dataSync()), Array(5).fill(0.5));
  assert.deepEqual(
    Array.from(p2.dataSync()),
    Array(5).fill(Math.fround(1 - Math.fround(1 / Math.fround(Math.sqrt(0.5))))),
  );
  tf.dispose([p, g, v, p2, v2]);
});

Deno.test("Fused EMA: ParameterEma with the fused kernel equals tfjs's chain of kernels bit for bit", async () => {
  await initBackend();
  const rng = new Rng(13);
  const shapes = [[37, 19], [5]];
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: 3 }, () => shapes.map((s) => uniform(rng, size(s), -2, 2)));
  const run = (own: boolean) => {
    useSimdKernels(own);
    const vars = shapes.map((s, i) => tf.variable(tf.tensor(values[0][i], s)));
    const ema = new ParameterEma(vars, 0.99);
    for (const step of values) {
      vars.forEach((v, i) => v.assign(tf.tensor(step[i], shapes[i])));
      ema.update();
    }
    const out = ema.shadow.map((x) => Array.from(x.dataSync()));
    ema.dispose();
    tf.dispose(vars);
    return out;
  };
  const chain = run(false), fused = run(true);
  assert.deepEqual(fused, chain);
  assert.ok(
    fused[0].some((x, i) => x !== values[2][0][i]),
    "the average must differ from the last values",
  );
});

Deno.test("useSimdKernels: tf.concat on wasm equals tfjs's kernel on every axis, for int32 and empty parts", async () => {
  await initBackend();
  const rng = new Rng(14);
  const cases: { shapes: number[][]; axis: number; dtype?: "int32" }[] = [
    { shapes: [[3, 5], [4, 5], [1, 5]], axis: 0 },
    { shapes: [[3, 5], [3, 2], [3, 7]], axis: 1 },
    { shapes: [[2, 3, 4], [2, 1, 4]], axis: 1 },
    { shapes: [[2, 3, 4], [2, 3, 6]], axis: -1 },
    { shapes: [[6], [0], [2]], axis: 0 },
    { shapes: [[2, 3], [2, 4]], axis: 1, dtype: "int32" },
  ];
  for (const { shapes, axis, dtype } of cases) {
    const parts = shapes.map((s) =>
      tf.tensor(uniform(rng, s.reduce((a, b) => a * b, 1), -9, 9).map(Math.round), s, dtype)
    );
    useSimdKernels(false);
    const want = tf.concat(parts, axis);
    useSimdKernels(true);
    const got = tf.concat(parts, axis);
    assert.deepEqual(got.shape, want.shape);
    assert.equal(got.dtype, want.dtype);
    assert.deepEqual(
      Array.from(got.dataSync()),
      Array.from(want.dataSync()),
      JSON.stringify(shapes),
    );
    tf.dispose([...parts, want, got]);
  }
});

Deno.test("simdSoftplusJet: one fused jet layer matches a float64 reference to float32 rounding", async () => {
  await initBackend();
  const rng = new Rng(15);
  for (const [points, width, dim] of [[37, 8, 2], [16, 132, 3], [5, 4, 1]]) {
    const rows = (dim + 2) * points;
    const zs = uniform(rng, rows * width, -30, 30), bs = uniform(rng, width, -1, 1);
    const z = tf.tensor2d(zs, [rows, width]), bias = tf.tensor1d(bs);
    const fused = simdSoftplusJet(z, bias, { points, dim })!;
    assert.deepEqual(fused.shape, [rows, width]);
    const got = fused.dataSync();
    // float64: σ(zv), σ'(zv)·∂z, σ'(zv)·Δz + σ''(zv)·Σ(∂z)², zv = z + b rounded as the kernel does
    let worst = 0;
    // errors relative to the size of the terms (a sum of terms of both signs keeps their rounding)
    const check = (row: number, j: number, want: number, scale = Math.abs(want)) => {
      const v = got[row * width + j];
      worst = Math.max(worst, Math.abs(v - want) / Math.max(1, scale));
    };
    for (let i = 0; i < points; i++) {
      for (let j = 0; j < width; j++) {
        const zv = Math.fround(zs[i * width + j] + bs[j]);
        const s = 1 / (1 + Math.exp(-zv)), s2 = s * (1 - s);
        check(i, j, softplus64(zv));
        let sq = 0;
        for (let k = 1; k <= dim; k++) {
          const g = zs[(k * points + i) * width + j];
          check(k * points + i, j, g * s);
          sq += g * g;
        }
        const zl = zs[((dim + 1) * points + i) * width + j];
        check((dim + 1) * points + i, j, s * zl + s2 * sq, Math.abs(s * zl) + s2 * sq);
      }
    }
    assert.ok(worst < 1e-6, `[${points}, ${width}, ${dim}]: ${worst}`);
    tf.dispose([z, bias, fused]);
  }
  const odd = tf.zeros([8, 6]) as tf.Tensor2D;
  assert.equal(simdSoftplusJet(odd, tf.zeros([6]), { points: 2, dim: 2 }), undefined);
  assert.equal(simdSoftplusJetWithSlope(odd, tf.zeros([6]), { points: 2, dim: 2 }), undefined);
  useSimdKernels(false);
  assert.equal(
    simdSoftplusJet(tf.zeros([8, 4]) as tf.Tensor2D, tf.zeros([4]), { points: 2, dim: 2 }),
    undefined,
  );
  useSimdKernels(true);
});

Deno.test("simdSoftplusJetWithSlope: the same rows bit for bit, and σ' of the value rows", async () => {
  await initBackend();
  const rng = new Rng(16);
  for (const [points, width, dim] of [[37, 8, 2], [9, 12, 3]]) {
    const rows = (dim + 2) * points;
    const zs = uniform(rng, rows * width, -30, 30), bs = uniform(rng, width, -1, 1);
    const z = tf.tensor2d(zs, [rows, width]), bias = tf.tensor1d(bs);
    const plain = simdSoftplusJet(z, bias, { points, dim })!;
    const [withSlope, slope] = simdSoftplusJetWithSlope(z, bias, { points, dim })!;
    assert.deepEqual(Array.from(withSlope.dataSync()), Array.from(plain.dataSync()));
    assert.deepEqual(slope.shape, [points, width]);
    const got = slope.dataSync();
    let worst = 0;
    for (let i = 0; i < points; i++) {
      for (let j = 0; j < width; j++) {
        const zv = Math.fround(zs[i * width + j] + bs[j]);
        worst = Math.max(worst, Math.abs(got[i * width + j] - 1 / (1 + Math.exp(-zv))));
      }
    }
    assert.ok(worst < 1e-7, `[${points}, ${width}, ${dim}]: ${worst}`);
    tf.dispose([z, bias, plain, withSlope, slope]);
  }
});

Deno.test("readTensorsInto: the tensors' values one after another, straight from the heap", async () => {
  await initBackend();
  const rng = new Rng(17);
  const ts = [
    tf.tensor2d(uniform(rng, 12, -1, 1), [3, 4]),
    tf.zeros([0]),
    tf.tensor1d([1, 2, 3], "int32"),
    tf.tensor3d(uniform(rng, 8, -5, 5), [2, 2, 2]),
  ];
  const out = new Float32Array(new SharedArrayBuffer(4 * 30)).fill(NaN);
  readTensorsInto(ts, out);
  const want = ts.flatMap((t) => Array.from(t.dataSync()));
  assert.deepEqual(Array.from(out.subarray(0, want.length)), want);
  assert.ok(Number.isNaN(out[want.length]));
  assert.throws(
    () => readTensorsInto(ts, new Float32Array(10)),
    /^RangeError: Mismatched output: 10 floats for 23 tensor values$/,
  );
  tf.dispose(ts);
});

Deno.test("simdSumOfSquares: Σx² in one pass matches float64 for any size", async () => {
  await initBackend();
  const rng = new Rng(18);
  for (const n of [0, 1, 5, 16, 37, 1000, 4099]) {
    const xs = uniform(rng, n, -3, 3);
    const x = tf.tensor1d(xs);
    const s = simdSumOfSquares(x)!;
    assert.deepEqual(s.shape, []);
    const want = xs.reduce((a, v) => a + v * v, 0);
    const got = s.dataSync()[0];
    assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, want), `n = ${n}: ${got} vs ${want}`);
    tf.dispose([x, s]);
  }
  assert.equal(simdSumOfSquares(tf.tensor1d([1, 2], "int32")), undefined);
  useSimdKernels(false);
  assert.equal(simdSumOfSquares(tf.zeros([4])), undefined);
  useSimdKernels(true);
});

Deno.test("simdBiasSoftplus: softplus(z + b) and σ' of the first rows in one pass", async () => {
  await initBackend();
  const rng = new Rng(19);
  for (const [rows, width, slopeRows] of [[7, 8, 3], [5, 12, 5], [1, 4, 1]]) {
    const zs = uniform(rng, rows * width, -30, 30), bs = uniform(rng, width, -1, 1);
    const z = tf.tensor2d(zs, [rows, width]), bias = tf.tensor1d(bs);
    const [act, slope] = simdBiasSoftplus(z, bias, { slopeRows })!;
    assert.deepEqual(act.shape, [rows, width]);
    assert.deepEqual(slope.shape, [slopeRows, width]);
    const a = act.dataSync(), s = slope.dataSync();
    let worst = 0;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < width; j++) {
        const zv = Math.fround(zs[i * width + j] + bs[j]);
        const want = softplus64(zv);
        worst = Math.max(worst, Math.abs(a[i * width + j] - want) / Math.max(1, want));
        if (i < slopeRows) {
          worst = Math.max(worst, Math.abs(s[i * width + j] - 1 / (1 + Math.exp(-zv))));
        }
      }
    }
    assert.ok(worst < 1e-6, `[${rows}, ${width}]: ${worst}`);
    tf.dispose([z, bias, act, slope]);
  }
  const z = tf.zeros([4, 6]) as tf.Tensor2D;
  assert.equal(simdBiasSoftplus(z, tf.zeros([6]), { slopeRows: 2 }), undefined);
  const z8 = tf.zeros([4, 8]) as tf.Tensor2D;
  assert.equal(simdBiasSoftplus(z8, tf.zeros([8]), { slopeRows: 5 }), undefined);
  tf.dispose([z, z8]);
});

Deno.test("simdLinearSoftplus: softplus over each row panel of the product equals matMul, then simdBiasSoftplus", async () => {
  await initBackend();
  const rng = new Rng(23);
  const t = (shape: number[], scale = 1) =>
    tf.tensor(
      Float32Array.from({ length: shape[0] * (shape[1] ?? 1) }, () => scale * rng.normal()),
      shape,
    );
  // row panels of 5 with remainders, slopes ending inside a panel, K not a multiple of 8, N of 8
  // and with a half panel of 4
  const cases = [[13, 37, 24, 6], [64, 128, 128, 64], [3, 20, 8, 1], [9, 64, 16, 4], [
    11,
    16,
    12,
    7,
  ]];
  for (const [m, k, n, slopeRows] of cases) {
    const a = t([m, k]) as tf.Tensor2D, w = t([k, n], 2) as tf.Tensor2D, bias = t([n]);
    const [act, slope] = simdLinearSoftplus(a, w, bias, { slopeRows })!;
    const product = tf.matMul(a, w) as tf.Tensor2D;
    const [wantAct, wantSlope] = simdBiasSoftplus(product, bias, { slopeRows })!;
    assert.deepEqual(act.shape, [m, n]);
    assert.deepEqual(slope.shape, [slopeRows, n]);
    // the same products (the smallest go to tfjs's matMul in the reference: 1-ulp differences)
    assertClose(act.dataSync(), wantAct.dataSync(), 2e-5, `activation [${m}, ${k}, ${n}]`);
    assertClose(slope.dataSync(), wantSlope.dataSync(), 1e-6, `slope [${m}, ${k}, ${n}]`);
    tf.dispose([a, w, bias, act, slope, product, wantAct, wantSlope]);
  }
  // what it does not take: columns not a multiple of 4, mismatched shapes, slope rows out of range
  const a = tf.zeros([4, 8]) as tf.Tensor2D;
  assert.equal(
    simdLinearSoftplus(a, tf.zeros([8, 6]) as tf.Tensor2D, tf.zeros([6]), { slopeRows: 1 }),
    undefined,
  );
  assert.equal(
    simdLinearSoftplus(a, tf.zeros([6, 8]) as tf.Tensor2D, tf.zeros([8]), { slopeRows: 1 }),
    undefined,
  );
  assert.equal(
    simdLinearSoftplus(a, tf.zeros([8, 8]) as tf.Tensor2D, tf.zeros([8]), { slopeRows: 5 }),
    undefined,
  );
  useSimdKernels(false);
  assert.equal(
    simdLinearSoftplus(a, tf.zeros([8, 8]) as tf.Tensor2D, tf.zeros([8]), { slopeRows: 1 }),
    undefined,
  );
  useSimdKernels(true);
  tf.dispose(a);
});

Deno.test("simdMlpReverse: the op-by-op reverse pass's numbers, bit for bit", async () => {
  await initBackend();
  const rng = new Rng(29);
  const t = (shape: number[], scale = 1) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => scale * rng.normal()),
      shape,
    );
  // 3 groups of [8 → 16 → 20 → m], m = 1 (outer products) and 4; 256 rows keep every product in
  // the SIMD matMul kernel (m·k·n ≥ 4096), as in the op-by-op pass
  for (const m of [1, 4]) {
    const [R, F, G, hs] = [256, 8, 3, [16, 20]];
    const widths = [F, ...hs, m];
    const n = widths.length - 1;
    const weights = widths.slice(0, -1).map((w, k) =>
      k === 0 ? t([F, G * hs[0]]) : t([G, w, widths[k + 1]], 0.5)
    );
    const biases = widths.slice(1).map((w) => t([G * w]));
    // with m = 4 the features and inputs are whole evaluations of more rows, read to row R
    const extra = m === 4 ? 7 : 0;
    const g = t([R, G * m]) as tf.Tensor2D, features = t([R + extra, F]) as tf.Tensor2D;
    const inputs = Array.from({ length: G }, () => hs.map((h) => t([R + extra, h]) as tf.Tensor2D));
    const slopes = Array.from({ length: G }, () => hs.map((h) => t([R, h]) as tf.Tensor2D));
    const grads = simdMlpReverse(g, {
      features,
      weights,
      inputs,
      slopes,
      shapes: weights.flatMap((w, k) => [w.shape, biases[k].shape]),
    })!;
    assert.ok(grads, `the fused kernel takes m = ${m}`);
    const want = tf.tidy(() => {
      const perGroup = Array.from({ length: G }, (_, c) => {
        let dz = tf.slice(g, [0, c * m], [R, m]) as tf.Tensor2D;
        const out: tf.Tensor[] = [];
        for (let k = n - 1; k >= 1; k--) {
          const [h, N] = [widths[k], widths[k + 1]];
          const w = tf.reshape(tf.slice(weights[k], [c, 0, 0], [1, h, N]), [h, N]) as tf.Tensor2D;
          const a = tf.slice(inputs[c][k - 1], [0, 0], [R, -1]) as tf.Tensor2D;
          out[2 * k] = N === 1
            ? tf.reshape(tf.matMul(dz, a, true, false), [1, h, 1])
            : tf.reshape(tf.matMul(a, dz, true, false), [1, h, N]);
          out[2 * k + 1] = tf.sum(dz, 0);
          dz = tf.mul(tf.matMul(dz, w, false, true), slopes[c][k - 1]) as tf.Tensor2D;
        }
        out[0] = dz;
        return out;
      });
      const dz0 = tf.concat(perGroup.map((p) => p[0]), 1) as tf.Tensor2D;
      const x = tf.slice(features, [0, 0], [R, -1]);
      const result = [tf.matMul(x, dz0, true, false), tf.sum(dz0, 0)];
      for (let j = 2; j < 2 * n; j++) result.push(tf.concat(perGroup.map((p) => p[j]), 0));
      return result;
    });
    assert.equal(grads.length, 2 * n);
    grads.forEach((got, j) => {
      assert.deepEqual(got.shape, j % 2 === 0 ? weights[j / 2].shape : biases[(j - 1) / 2].shape);
      assert.deepEqual(got.dataSync(), want[j].dataSync(), `m = ${m}, gradient ${j}`);
    });
    tf.dispose([
      g,
      features,
      ...weights,
      ...biases,
      ...inputs.flat(),
      ...slopes.flat(),
      ...grads,
      ...want,
    ]);
  }
  // what it does not take: a hidden width not a multiple of 4, 2 outputs per group, tfjs's kernels
  const case_ = (h: number, m: number) => {
    const weights = [t([4, 2 * h]), t([2, h, m])];
    const args = {
      features: t([8, 4]) as tf.Tensor2D,
      weights,
      inputs: [[t([8, h]) as tf.Tensor2D], [t([8, h]) as tf.Tensor2D]],
      slopes: [[t([8, h]) as tf.Tensor2D], [t([8, h]) as tf.Tensor2D]],
      shapes: [weights[0].shape, [2 * h], weights[1].shape, [2 * m]],
    };
    return simdMlpReverse(t([8, 2 * m]) as tf.Tensor2D, args);
  };
  assert.equal(case_(6, 1), undefined);
  assert.equal(case_(8, 2), undefined);
  assert.ok(case_(8, 4));
  useSimdKernels(false);
  assert.equal(case_(8, 4), undefined);
  useSimdKernels(true);
});
