import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { initBackend } from "../mod.ts";
import { encodeModule, Op, sleb, uleb } from "../lib/wasm_encoder.ts";
import { simdFunctions, TRIG_SIMD_LIMIT, useSimdKernels } from "../lib/wasm_kernels.ts";
import { Rng } from "../lib/random.ts";

const softplus64 = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

/** Runs `name` of a fresh instance on `xs` (rounded to float32) and returns the outputs. */
function runSimd(name: "softplus" | "sin" | "cos", xs: number[]): { out: Float32Array; ok: boolean } {
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
