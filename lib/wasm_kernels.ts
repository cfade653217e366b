/**
 * The toolkit's own WASM kernels for the parts of a training step where tfjs-wasm 4.22 is slow:
 * `Softplus` (a scalar libm call per element: a quarter of the canonical hydrogen step), `Sin` and
 * `Cos` (the Fourier features; also scalar), and `BatchMatMul` (XNNPACK's build there predates
 * relaxed SIMD's fused multiply-add; see lib/wasm_gemm.ts), `Sum` over leading axes, `Slice` and
 * `SplitV` (tfjs-wasm walks those element by element or transposes first). They are WebAssembly SIMD
 * loops built at run time ({@linkcode encodeModule}) that import tfjs-wasm's own linear memory, and
 * block copies on that memory, so they read and write tensors in place; they replace those kernels
 * of the `wasm` backend in tfjs's kernel registry. Inputs they do not cover (other dtypes, column
 * counts that are neither 1 nor a multiple of 4, other reductions) go to tfjs's kernel. Gradients
 * are unchanged (tfjs registers them separately: Softplus's is `dy·sigmoid(x)`, Sin's
 * `dy·cos(x)`; BatchMatMul's is lib/gradients.ts).
 *
 * Accuracy (float32 in, float32 out, against float64 references; tested):
 * - softplus(x) = max(x, 0) + log1p(exp(−|x|)): exp by range reduction to [−ln2/2, ln2/2] and a
 *   degree-6 polynomial, log1p(u) = u·q(u) with a degree-8 polynomial q fitted on [0, 1] (no
 *   division: 2.4 → 1.7 ns per element on one core); relative error below 3e-7. Where exp(−|x|) underflows (|x| > 87.3) the log term is 0, so softplus(x < −87.3)
 *   is 0 instead of a value below 1.2e-38.
 * - sin, cos: reduction by π/2 in three parts (exact quotient times the leading part up to
 *   |x| = 8192) and Taylor polynomials of degrees 9 and 10 on [−π/4, π/4]; absolute error below
 *   2e-7 for |x| ≤ 8192. A tensor with any |x| > 8192 (or ±Infinity) is computed with `Math.sin` /
 *   `Math.cos` instead, element by element.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  addTo,
  encodeModule,
  Op,
  type ValueType,
  type WasmFunction,
  whileLoop,
} from "./wasm_encoder.ts";
import { GEMM_MR, type GemmFunctions, gemmFunctions, hasRelaxedSimd } from "./wasm_gemm.ts";

/** The kernels this module replaces on the `wasm` backend. */
export const SIMD_KERNEL_NAMES = [
  "Softplus",
  "Sin",
  "Cos",
  "BatchMatMul",
  "Slice",
  "SplitV",
  "Concat",
  "Sum",
] as const;

type UnaryKernelName = Exclude<
  SimdKernelName,
  "BatchMatMul" | "Slice" | "SplitV" | "Concat" | "Sum"
>;

/** Name of a kernel this module can replace. */
export type SimdKernelName = typeof SIMD_KERNEL_NAMES[number];

/** Largest |x| the vectorised sin/cos reduce accurately; larger inputs take the scalar path. */
export const TRIG_SIMD_LIMIT = 8192;

// Locals of every map function: 0 src, 1 dst, 2 byte count (params), 3 end, 4 flag, then UNROLL
// register sets (x and its temporaries), then one local per distinct constant.
const SRC = 0, DST = 1, BYTES = 2, END = 3, FLAG = 4;
const TEMPORARIES = 8;
/**
 * Vectors per loop iteration: 2 or 4 independent chains per iteration measured no faster (the loops
 * are bound by instruction throughput, not by the polynomials' latency), so 1.
 */
const UNROLL = 1;
const FIRST_CONSTANT = FLAG + 1 + UNROLL * (1 + TEMPORARIES);

/** The locals one copy of a loop body works in. */
interface Registers {
  /** The input vector. */
  x: number;
  /** Lanes OR-ed in here make the function return 1. */
  flag: number;
  /** Temporaries. */
  t: number[];
}

function registers(copy: number): Registers {
  const base = FLAG + 1 + copy * (1 + TEMPORARIES);
  return { x: base, flag: FLAG, t: Array.from({ length: TEMPORARIES }, (_, i) => base + 1 + i) };
}

const get = Op.localGet;
const set = Op.localSet;

/** Pushes the i32 sum of locals `a` and `b` (a base address plus an offset). */
function localSum(a: number, b: number): number[] {
  return [...get(a), ...get(b), ...Op.i32Add];
}

/**
 * Collects a function's vector constants into locals set once before its loop: V8 materialises an
 * inline `v128.const` with several instructions each time, which made the polynomials ~3× slower.
 */
class ConstantPool {
  readonly values: { bits: number[]; local: number }[] = [];
  /** `base`: the index of the first local the constants take. */
  constructor(readonly base = FIRST_CONSTANT) {}
  /** Pushes the float `v` in all four lanes. */
  f32 = (v: number): number[] => this.#local(Op.f32x4Const(v));
  /** Pushes the integer `v` in all four lanes. */
  i32 = (v: number): number[] => this.#local(Op.i32x4Const(v));
  #local(bits: number[]): number[] {
    const key = bits.join(",");
    let entry = this.values.find((e) => e.bits.join(",") === key);
    if (entry === undefined) {
      entry = { bits, local: this.base + this.values.length };
      this.values.push(entry);
    }
    return get(entry.local);
  }
}

/**
 * Whether the polynomials use relaxed SIMD's fused multiply-add (as the matMul does): a Horner step
 * is then one instruction instead of two, which made softplus 2.8 → 2.3 ns per element (one core;
 * the same accuracy against float64, ~2e-7 relative). Engines without it get a multiply and an add.
 */
const FUSED_POLYNOMIALS = hasRelaxedSimd();

/** Horner evaluation of Σ coefficients[i]·v^(n−1−i) (highest degree first). */
function horner(k: ConstantPool, v: number, coefficients: number[]): number[] {
  const out = [...k.f32(coefficients[0])];
  for (const a of coefficients.slice(1)) {
    if (FUSED_POLYNOMIALS) out.push(...get(v), ...k.f32(a), ...Op.f32x4RelaxedMadd);
    else out.push(...get(v), ...Op.f32x4Mul, ...k.f32(a), ...Op.f32x4Add);
  }
  return out;
}

/**
 * A function `(src, dst, bytes) → i32` that maps 4·UNROLL floats per iteration from `src` to `dst`
 * (`bytes` a multiple of 16·UNROLL); `compute` gets the constant pool and a register set, leaves the
 * result for the input in `r.x` on the stack, and may OR lanes into `r.flag`; the function returns
 * whether any flagged lane was seen.
 */
function mapFunction(
  name: string,
  compute: (k: ConstantPool, r: Registers) => number[],
): WasmFunction {
  const k = new ConstantPool();
  const copies = Array.from({ length: UNROLL }, (_, i) => {
    const r = registers(i);
    return [
      ...get(DST),
      ...get(SRC),
      ...Op.v128Load(16 * i),
      ...set(r.x),
      ...compute(k, r),
      ...Op.v128Store(16 * i),
    ];
  });
  const locals: ValueType[] = [
    "i32",
    ...Array<ValueType>(FIRST_CONSTANT - FLAG + k.values.length).fill("v128"),
  ];
  const step = 16 * UNROLL;
  const body = [
    ...k.values.flatMap((e) => [...e.bits, ...set(e.local)]),
    ...get(SRC),
    ...get(BYTES),
    ...Op.i32Add,
    ...set(END),
    ...whileLoop([
      ...get(SRC),
      ...get(END),
      ...Op.i32GeU,
    ], [
      ...copies.flat(),
      ...addTo(SRC, Op.i32Const(step)),
      ...addTo(DST, Op.i32Const(step)),
    ]),
    ...get(FLAG),
    ...Op.v128AnyTrue,
  ];
  return { name, params: ["i32", "i32", "i32"], results: ["i32"], locals, body };
}

const LOG2E = Math.LOG2E;
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;
const EXP_LOW = -87.33;
const ROUNDING_MAGIC = 12582912;
/**
 * exp(r) on [−ln2/2, ln2/2] by a degree-6 polynomial (highest degree first), fitted for relative
 * error: 2e-9 in exact arithmetic, 7e-8 evaluated in float32.
 */
const EXP_POLYNOMIAL = [
  1.3836867874488235e-3,
  8.374804630875587e-3,
  4.166822507977486e-2,
  1.6666419804096222e-1,
  4.9999991059303284e-1,
  1,
  1,
];
/**
 * log1p(u)/u on [0, 1] by a degree-8 polynomial, fitted for relative error: 3e-8 in exact
 * arithmetic, 2.3e-7 for u·q(u) evaluated in float32. One polynomial over the whole interval (the
 * singularity at u = −1 is far enough away) replaces a division and an atanh series.
 */
const LOG1P_QUOTIENT = [
  5.2323597483336926e-3,
  -2.9503412544727325e-2,
  7.822204381227493e-2,
  -1.366281807422638e-1,
  1.910574585199356e-1,
  -2.4842894077301025e-1,
  3.3319079875946045e-1,
  -4.999949336051941e-1,
  9.999999403953552e-1,
];

/** a·b + c of the code pushing a, b and c (fused where relaxed SIMD is, else a multiply and an add). */
function multiplyAdd(a: number[], b: number[], c: number[]): number[] {
  return FUSED_POLYNOMIALS
    ? [...a, ...b, ...c, ...Op.f32x4RelaxedMadd]
    : [...a, ...b, ...Op.f32x4Mul, ...c, ...Op.f32x4Add];
}

/** c − a·b of the code pushing a, b and c. */
function negatedMultiplyAdd(a: number[], b: number[], c: number[]): number[] {
  return FUSED_POLYNOMIALS
    ? [...a, ...b, ...c, ...Op.f32x4RelaxedNmadd]
    : [...c, ...a, ...b, ...Op.f32x4Mul, ...Op.f32x4Sub];
}

/**
 * softplus(x) of the vector in local `X` as statements (each leaves the stack as it found it), the
 * result in `t[7]` and exp(−|x|) (zero where it underflows) in `t[5]`; `t` are eight v128
 * temporaries. As statements, two vectors' chains can be interleaved (`interleaved`): each constant
 * is then loaded once for both, which made the softplus layers ~9% faster (the loop is bound by
 * instructions, and the constants outnumber the registers).
 */
function softplusStatements(k: ConstantPool, X: number, t: number[]): number[][] {
  const [A, Y, M, N, R, U, P, OUT] = t;
  /** acc = Σ c[i]·v^(n−1−i) by Horner's rule, one statement per step. */
  const horner = (acc: number, v: number, c: number[]) => [
    [...multiplyAdd(k.f32(c[0]), get(v), k.f32(c[1])), ...set(acc)],
    ...c.slice(2).map((a) => [...multiplyAdd(get(acc), get(v), k.f32(a)), ...set(acc)]),
  ];
  return [
    // y = max(−|x|, −87.33); n = nearest(y·log2 e) by adding 1.5·2²³, whose float's low mantissa
    // bits then hold n; r = y − n·ln 2 (in two parts)
    [...get(X), ...Op.f32x4Abs, ...set(A)],
    [...get(A), ...Op.f32x4Neg, ...k.f32(EXP_LOW), ...Op.f32x4Pmax, ...set(Y)],
    [...multiplyAdd(get(Y), k.f32(LOG2E), k.f32(ROUNDING_MAGIC)), ...set(M)],
    [...get(M), ...k.f32(ROUNDING_MAGIC), ...Op.f32x4Sub, ...set(N)],
    [...negatedMultiplyAdd(get(N), k.f32(LN2_HI), get(Y)), ...set(R)],
    [...negatedMultiplyAdd(get(N), k.f32(LN2_LO), get(R)), ...set(R)],
    // u = exp(r)·2ⁿ; 2ⁿ's bits are (n + 127) << 23, and the magic float's bits shifted by 23 are
    // n << 23. u is zeroed where exp(−|x|) underflows.
    ...horner(P, R, EXP_POLYNOMIAL),
    [
      ...get(P),
      ...get(M),
      ...Op.i32Const(23),
      ...Op.i32x4Shl,
      ...k.i32(0x3f800000),
      ...Op.i32x4Add,
      ...Op.f32x4Mul,
      ...k.f32(-EXP_LOW),
      ...get(A),
      ...Op.f32x4Ge,
      ...Op.v128And,
      ...set(U),
    ],
    // softplus = max(x, 0) + u·q(u) with q(u) = log1p(u)/u. q's argument is floored at 1e-15:
    // products of smaller u would be subnormal, which x86 computes ~100× slower (q(1e-15) = q(0)).
    [...get(U), ...k.f32(1e-15), ...Op.f32x4Pmax, ...set(Y)],
    ...horner(P, Y, LOG1P_QUOTIENT),
    [...multiplyAdd(get(U), get(P), [...get(X), ...k.f32(0), ...Op.f32x4Pmax]), ...set(OUT)],
  ];
}

/** Code leaving softplus(x) of the vector in local `X` on the stack (see `softplusStatements`). */
function softplusCode(k: ConstantPool, X: number, t: number[]): number[] {
  return [...softplusStatements(k, X, t).flat(), ...get(t[7])];
}

/** Statement lists of equal length, statement by statement: independent chains side by side. */
function interleaved(chains: number[][][]): number[] {
  return chains[0].flatMap((_, i) => chains.flatMap((c) => c[i]));
}

function softplusFunction(): WasmFunction {
  return mapFunction("softplus", (k, { x, t }) => softplusCode(k, x, t));
}

/**
 * `for (i = 0; i < rows; i++) { row = i·rowBytes; for (j = 0; j < rowBytes; j += …) inner }` over
 * the locals given (`inner` advances j itself), with `wide` (advancing j by `wide.bytes`) first
 * while that many bytes of the row are left.
 */
function rowLoops(
  at: { i: number; rows: number; row: number; j: number; rowBytes: number },
  inner: number[],
  wide?: { bytes: number; body: number[] },
): number[] {
  return [
    ...Op.i32Const(0),
    ...set(at.i),
    ...whileLoop([...get(at.i), ...get(at.rows), ...Op.i32GeU], [
      ...get(at.i),
      ...get(at.rowBytes),
      ...Op.i32Mul,
      ...set(at.row),
      ...Op.i32Const(0),
      ...set(at.j),
      ...(wide
        ? whileLoop([
          ...get(at.j),
          ...Op.i32Const(wide.bytes),
          ...Op.i32Add,
          ...get(at.rowBytes),
          ...Op.i32GtU,
        ], wide.body)
        : []),
      ...whileLoop([...get(at.j), ...get(at.rowBytes), ...Op.i32GeU], inner),
      ...get(at.i),
      ...Op.i32Const(1),
      ...Op.i32Add,
      ...set(at.i),
    ]),
  ];
}

/**
 * The logistic sigmoid of zv from u = e^(−|zv|) (which softplus computes anyway), left on the
 * stack: with q = 1/(1 + u), s = q where zv ≥ 0 and u·q elsewhere. Leaves q and u·q in the locals
 * given.
 */
function sigmoidCode(
  k: ConstantPool,
  at: { u: number; zv: number; q: number; uq: number },
): number[] {
  return [
    ...k.f32(1),
    ...k.f32(1),
    ...get(at.u),
    ...Op.f32x4Add,
    ...Op.f32x4Div,
    ...Op.localTee(at.q),
    ...get(at.u),
    ...get(at.q),
    ...Op.f32x4Mul,
    ...Op.localTee(at.uq),
    ...get(at.zv),
    ...k.f32(0),
    ...Op.f32x4Ge,
    ...Op.v128Bitselect,
  ];
}

/**
 * Code for one vector of a row loop (locals given): off = row + j, zv = z[off] + bias[j], out[off] =
 * softplus(zv), leaving e^(−|zv|) in `temps[5]` (see `softplusCode`).
 */
function biasedSoftplus(
  k: ConstantPool,
  at: {
    z: number;
    bias: number;
    out: number;
    row: number;
    j: number;
    off: number;
    zv: number;
    temps: number[];
  },
): number[] {
  return [
    ...localSum(at.row, at.j),
    ...set(at.off),
    ...localSum(at.z, at.off),
    ...Op.v128Load(),
    ...localSum(at.bias, at.j),
    ...Op.v128Load(),
    ...Op.f32x4Add,
    ...set(at.zv),
    ...localSum(at.out, at.off),
    ...softplusCode(k, at.zv, at.temps),
    ...Op.v128Store(),
  ];
}

/**
 * `biasSoftplus(z, bias, out, rows, rowBytes, slope, slopeRows)`: out = softplus(z + b) for a
 * [rows, rowBytes/4] matrix (rowBytes a multiple of 16), and the slope σ'(z + b) of its first
 * `slopeRows` rows into `slope` (same row stride) — a hidden layer of a forward pass that keeps what
 * its reverse pass needs, in one pass.
 */
function biasSoftplusFunction(): WasmFunction {
  const [Z, BIAS, OUT, ROWS, W4, SLOPE, SLOPE_ROWS] = [0, 1, 2, 3, 4, 5, 6];
  const [I, J, OFF, ROW] = [7, 8, 9, 10];
  // two vectors' registers: zv, q, u·q and eight temporaries each
  const [ZV, Q, UQ] = [11, 12, 13];
  const temps = [14, 15, 16, 17, 18, 19, 20, 21];
  const [ZV2, Q2, UQ2] = [22, 23, 24];
  const temps2 = [25, 26, 27, 28, 29, 30, 31, 32];
  const k = new ConstantPool(33);
  /** The slope of the vectors given (bytes past OFF) where row I < SLOPE_ROWS. */
  const slopes = (
    vectors: { offset: number; zv: number; t: number[]; q: number; uq: number }[],
  ) => [
    ...Op.block,
    ...get(I),
    ...get(SLOPE_ROWS),
    ...Op.i32GeU,
    ...Op.brIf(0),
    ...vectors.flatMap((v) => [
      ...localSum(SLOPE, OFF),
      ...sigmoidCode(k, { u: v.t[5], zv: v.zv, q: v.q, uq: v.uq }),
      ...Op.v128Store(v.offset),
    ]),
    ...Op.end,
  ];
  const inner = [
    ...biasedSoftplus(k, { z: Z, bias: BIAS, out: OUT, row: ROW, j: J, off: OFF, zv: ZV, temps }),
    ...slopes([{ offset: 0, zv: ZV, t: temps, q: Q, uq: UQ }]),
    ...addTo(J, Op.i32Const(16)),
  ];
  // two vectors at a time, their softplus chains interleaved (see `softplusStatements`)
  const pair = [{ offset: 0, zv: ZV, t: temps, q: Q, uq: UQ }, {
    offset: 16,
    zv: ZV2,
    t: temps2,
    q: Q2,
    uq: UQ2,
  }];
  const wide = [
    ...localSum(ROW, J),
    ...set(OFF),
    ...pair.flatMap((v) => [
      ...localSum(Z, OFF),
      ...Op.v128Load(v.offset),
      ...localSum(BIAS, J),
      ...Op.v128Load(v.offset),
      ...Op.f32x4Add,
      ...set(v.zv),
    ]),
    ...interleaved(pair.map((v) => softplusStatements(k, v.zv, v.t))),
    ...pair.flatMap((v) => [...localSum(OUT, OFF), ...get(v.t[7]), ...Op.v128Store(v.offset)]),
    ...slopes(pair),
    ...addTo(J, Op.i32Const(32)),
  ];
  const loops = rowLoops({ i: I, rows: ROWS, row: ROW, j: J, rowBytes: W4 }, inner, {
    bytes: 32,
    body: wide,
  });
  return {
    name: "biasSoftplus",
    params: ["i32", "i32", "i32", "i32", "i32", "i32", "i32"],
    results: [],
    locals: [
      ...Array<ValueType>(4).fill("i32"),
      ...Array<ValueType>(22 + k.values.length).fill("v128"),
    ],
    body: [...k.values.flatMap((e) => [...e.bits, ...set(e.local)]), ...loops],
  };
}

/**
 * `softplusJet(z, bias, out, points, rowBytes, dim, slope)`: one hidden layer of the forward-mode jet for
 * softplus (see `Mlp.jet`). z holds the linear layer's rows [value; ∂₁; …; ∂_d; Δ], each block of
 * `points` rows of `rowBytes` (a multiple of 16); out gets [σ(z + b); σ'·∂_k z; σ'·Δz + σ''·Σ_k (∂_k z)²]
 * with σ = softplus, σ' = s = 1/(1 + e^(−z)) and σ'' = s·(1 − s), taken as e^(−|z|)/(1 + e^(−|z|))²
 * (tfjs's 1 − s loses most digits where s is near 1) — the work of ~14 tfjs kernels in one pass,
 * with e^(−|z|) shared by softplus and the sigmoid.
 */
function softplusJetFunction(): WasmFunction {
  const [Z, BIAS, OUT, B, W4, D, SLOPE] = [0, 1, 2, 3, 4, 5, 6];
  const [I, J, K, OFF, ROW, BLOCK, D1] = [7, 8, 9, 10, 11, 12, 13];
  const [ZV, S, S2, SQ, G] = [14, 15, 16, 17, 18];
  const temps = [19, 20, 21, 22, 23, 24, 25, 26];
  const U = temps[5];
  const k = new ConstantPool(27);
  const inner = [
    // zv = z + b; out = softplus(zv), u = e^(−|zv|)
    ...biasedSoftplus(k, { z: Z, bias: BIAS, out: OUT, row: ROW, j: J, off: OFF, zv: ZV, temps }),
    // s = σ'(zv), and s2 = s·(1 − s) = u·q² (no cancellation in 1 − s where s is near 1)
    ...sigmoidCode(k, { u: U, zv: ZV, q: G, uq: S2 }),
    ...set(S),
    // the slope σ' of the value rows, kept for a reverse pass where asked (slope ≠ 0)
    ...Op.block,
    ...get(SLOPE),
    ...Op.i32Eqz,
    ...Op.brIf(0),
    ...localSum(SLOPE, OFF),
    ...get(S),
    ...Op.v128Store(),
    ...Op.end,
    ...get(S2),
    ...get(G),
    ...Op.f32x4Mul,
    ...set(S2),
    // the derivative rows: out = g·s, sq = Σ g²
    ...k.f32(0),
    ...set(SQ),
    ...Op.i32Const(1),
    ...set(K),
    ...whileLoop([...get(K), ...get(D1), ...Op.i32GeU], [
      ...addTo(OFF, get(BLOCK)),
      ...localSum(Z, OFF),
      ...Op.v128Load(),
      ...set(G),
      ...localSum(OUT, OFF),
      ...get(G),
      ...get(S),
      ...Op.f32x4Mul,
      ...Op.v128Store(),
      ...get(SQ),
      ...get(G),
      ...get(G),
      ...Op.f32x4Mul,
      ...Op.f32x4Add,
      ...set(SQ),
      ...addTo(K, Op.i32Const(1)),
    ]),
    // the Laplacian row: out = s·Δz + s2·sq
    ...addTo(OFF, get(BLOCK)),
    ...localSum(OUT, OFF),
    ...get(S),
    ...localSum(Z, OFF),
    ...Op.v128Load(),
    ...Op.f32x4Mul,
    ...get(S2),
    ...get(SQ),
    ...Op.f32x4Mul,
    ...Op.f32x4Add,
    ...Op.v128Store(),
    ...addTo(J, Op.i32Const(16)),
  ];
  const loops = [
    ...get(B),
    ...get(W4),
    ...Op.i32Mul,
    ...set(BLOCK),
    ...get(D),
    ...Op.i32Const(1),
    ...Op.i32Add,
    ...set(D1),
    ...rowLoops({ i: I, rows: B, row: ROW, j: J, rowBytes: W4 }, inner),
  ];
  return {
    name: "softplusJet",
    params: ["i32", "i32", "i32", "i32", "i32", "i32", "i32"],
    results: [],
    locals: [
      ...Array<ValueType>(7).fill("i32"),
      ...Array<ValueType>(13 + k.values.length).fill("v128"),
    ],
    body: [...k.values.flatMap((e) => [...e.bits, ...set(e.local)]), ...loops],
  };
}

// π/2 in three parts; the first has 8 significant bits so k·PIO2_1 is exact for |k| < 2¹⁶.
const PIO2_1 = 1.5703125;
const PIO2_2 = 4.837512969970703125e-4;
const PIO2_3 = 7.54978995489188216e-8;

/** sin (quarter turn 0) or cos (quarter turn 1): sin(x + q·π/2). */
function trigFunction(name: string, quarterTurns: number): WasmFunction {
  return mapFunction(name, (k, { x: X, flag: FLAG, t: [K, R, Z, Q, S] }) => [
    // flag |x| > limit (and ±Infinity)
    ...get(FLAG),
    ...get(X),
    ...Op.f32x4Abs,
    ...k.f32(TRIG_SIMD_LIMIT),
    ...Op.f32x4Gt,
    ...Op.v128Or,
    ...set(FLAG),
    // k = nearest(x·2/π); r = x − k·π/2 (three parts); q = k + quarterTurns
    ...get(X),
    ...k.f32(2 / Math.PI),
    ...Op.f32x4Mul,
    ...Op.f32x4Nearest,
    ...set(K),
    ...get(X),
    ...get(K),
    ...k.f32(PIO2_1),
    ...Op.f32x4Mul,
    ...Op.f32x4Sub,
    ...get(K),
    ...k.f32(PIO2_2),
    ...Op.f32x4Mul,
    ...Op.f32x4Sub,
    ...get(K),
    ...k.f32(PIO2_3),
    ...Op.f32x4Mul,
    ...Op.f32x4Sub,
    ...set(R),
    ...get(R),
    ...get(R),
    ...Op.f32x4Mul,
    ...set(Z),
    ...get(K),
    ...Op.i32x4TruncSatF32x4S,
    ...k.i32(quarterTurns),
    ...Op.i32x4Add,
    ...set(Q),
    // sin r = r + r·z·(−1/6 + z/120 − …), stored in S
    ...get(R),
    ...get(R),
    ...get(Z),
    ...Op.f32x4Mul,
    ...horner(k, Z, [1 / 362880, -1 / 5040, 1 / 120, -1 / 6]),
    ...Op.f32x4Mul,
    ...Op.f32x4Add,
    ...set(S),
    // cos r = 1 − z/2 + z²·(1/24 − z/720 + …)
    ...horner(k, Z, [-1 / 3628800, 1 / 40320, -1 / 720, 1 / 24, -1 / 2, 1]),
    // odd quarter turns take cos r, quarter turns 2 and 3 (mod 4) flip the sign
    ...get(S),
    ...get(Q),
    ...Op.i32Const(31),
    ...Op.i32x4Shl,
    ...Op.i32Const(31),
    ...Op.i32x4ShrS,
    ...Op.v128Bitselect,
    ...get(Q),
    ...Op.i32Const(30),
    ...Op.i32x4Shl,
    ...k.i32(-0x80000000),
    ...Op.v128And,
    ...Op.v128Xor,
  ]);
}

/**
 * `sumRows(src, dst, rows, bytes)`: dst = Σ_r row r of a [rows, bytes/4] float matrix at src (bytes a
 * multiple of 16, rows ≥ 1), row by row so both stream through memory.
 */
function sumRowsFunction(): WasmFunction {
  const [SRC, DST, ROWS, BYTES, J, R] = [0, 1, 2, 3, 4, 5];
  /** for (j = 0; j < bytes; j += 16) dst[j] = body (which reads j) */
  const overRow = (value: number[]) => [
    ...Op.i32Const(0),
    ...set(J),
    ...whileLoop([
      ...get(J),
      ...get(BYTES),
      ...Op.i32GeU,
    ], [
      ...get(DST),
      ...get(J),
      ...Op.i32Add,
      ...value,
      ...Op.v128Store(),
      ...addTo(J, Op.i32Const(16)),
    ]),
  ];
  const at = (base: number) => [...localSum(base, J), ...Op.v128Load()];
  return {
    name: "sumRows",
    params: ["i32", "i32", "i32", "i32"],
    results: [],
    locals: ["i32", "i32"],
    body: [
      ...overRow(at(SRC)),
      ...Op.i32Const(1),
      ...set(R),
      ...whileLoop([
        ...get(R),
        ...get(ROWS),
        ...Op.i32GeU,
      ], [
        ...addTo(SRC, get(BYTES)),
        ...overRow([...at(DST), ...at(SRC), ...Op.f32x4Add]),
        ...addTo(R, Op.i32Const(1)),
      ]),
    ],
  };
}

/**
 * `sumSquares(src, bytes) → f32`: Σ x² over the floats at src (bytes a multiple of 64), in four
 * vector accumulators (sixteen partial sums) added at the end.
 */
function sumSquaresFunction(): WasmFunction {
  const [SRC, BYTES, END] = [0, 1, 2];
  const acc = (i: number) => 3 + i;
  const step = (i: number) => [
    ...get(acc(i)),
    ...get(SRC),
    ...Op.v128Load(16 * i),
    ...Op.localTee(7),
    ...get(7),
    ...Op.f32x4Mul,
    ...Op.f32x4Add,
    ...set(acc(i)),
  ];
  const lanes = [0, 1, 2, 3].flatMap((l) => [
    ...get(acc(0)),
    ...Op.f32x4ExtractLane(l),
    ...(l > 0 ? Op.f32Add : []),
  ]);
  return {
    name: "sumSquares",
    params: ["i32", "i32"],
    results: ["f32"],
    locals: ["i32", ...Array<ValueType>(5).fill("v128")],
    body: [
      ...get(SRC),
      ...get(BYTES),
      ...Op.i32Add,
      ...set(END),
      ...whileLoop([...get(SRC), ...get(END), ...Op.i32GeU], [
        ...step(0),
        ...step(1),
        ...step(2),
        ...step(3),
        ...addTo(SRC, Op.i32Const(64)),
      ]),
      ...get(acc(0)),
      ...get(acc(1)),
      ...Op.f32x4Add,
      ...get(acc(2)),
      ...get(acc(3)),
      ...Op.f32x4Add,
      ...Op.f32x4Add,
      ...set(acc(0)),
      ...lanes,
    ],
  };
}

/** What a lane-wise formula's code can refer to (each pushes a v128 on the stack). */
interface Lanes {
  /** Input i, loaded for this iteration. */
  input(i: number): number[];
  /** Scalar j, splat to all lanes. */
  scalar(j: number): number[];
  /** Temporary t, set by an earlier statement. */
  temp(t: number): number[];
}

/** One statement of a lane-wise function: set a temporary, or store to an output. */
type LaneStatement = { temp: number; value: number[] } | { output: number; value: number[] };

/**
 * A function `(in₀ … in_{a−1}, out₀ … out_{b−1}, bytes, s₀ … s_{c−1})` that runs `statements` on
 * each 16-byte vector of float32 inputs (byte offsets; `bytes` a multiple of 16), the scalars
 * splat once before the loop. Fused optimiser updates are such functions: one pass over memory
 * instead of one per tfjs kernel.
 */
function lanewiseFunction(
  name: string,
  counts: { inputs: number; outputs: number; scalars: number; temps: number },
  statements: (lanes: Lanes) => LaneStatement[],
): WasmFunction {
  const { inputs, outputs, scalars, temps } = counts;
  const BYTES = inputs + outputs, I = BYTES + 1 + scalars;
  const splat0 = I + 1, input0 = splat0 + scalars, temp0 = input0 + inputs;
  const lanes: Lanes = {
    input: (i) => get(input0 + i),
    scalar: (j) => get(splat0 + j),
    temp: (t) => get(temp0 + t),
  };
  const at = (base: number) => localSum(base, I);
  return {
    name,
    params: [
      ...Array<ValueType>(inputs + outputs + 1).fill("i32"),
      ...Array<ValueType>(scalars).fill("f32"),
    ],
    results: [],
    locals: ["i32", ...Array<ValueType>(scalars + inputs + temps).fill("v128")],
    body: [
      ...Array.from({ length: scalars }, (_, j) => [
        ...get(BYTES + 1 + j),
        ...Op.f32x4Splat,
        ...set(splat0 + j),
      ]).flat(),
      ...Op.i32Const(0),
      ...set(I),
      ...whileLoop([...get(I), ...get(BYTES), ...Op.i32GeU], [
        ...Array.from({ length: inputs }, (_, i) => [
          ...at(i),
          ...Op.v128Load(),
          ...set(input0 + i),
        ]).flat(),
        ...statements(lanes).flatMap((st) =>
          "temp" in st
            ? [...st.value, ...set(temp0 + st.temp)]
            : [...at(inputs + st.output), ...st.value, ...Op.v128Store()]
        ),
        ...addTo(I, Op.i32Const(16)),
      ]),
    ],
  };
}

const { f32x4Add: ADD, f32x4Sub: SUB, f32x4Mul: MUL, f32x4Div: DIV, f32x4Sqrt: SQRT } = Op;

/**
 * RMSprop (inputs p, g, v; outputs p', v'; scalars lr, α, 1 − α, ε) in tfjs's operation order:
 * v' = v·α + (g·g)·(1 − α), p' = p − (g / (√v' + ε))·lr — each step rounded to float32, so the
 * result equals the chain of kernels bit for bit.
 */
function rmspropFunction(): WasmFunction {
  return lanewiseFunction("rmsprop", { inputs: 3, outputs: 2, scalars: 4, temps: 1 }, (l) => [
    {
      temp: 0,
      value: [
        ...l.input(2),
        ...l.scalar(1),
        ...MUL,
        ...l.input(1),
        ...l.input(1),
        ...MUL,
        ...l.scalar(2),
        ...MUL,
        ...ADD,
      ],
    },
    { output: 1, value: l.temp(0) },
    {
      output: 0,
      value: [
        ...l.input(0),
        ...l.input(1),
        ...l.temp(0),
        ...SQRT,
        ...l.scalar(3),
        ...ADD,
        ...DIV,
        ...l.scalar(0),
        ...MUL,
        ...SUB,
      ],
    },
  ]);
}

/**
 * Adam (inputs p, g, m, v; outputs p', m', v'; scalars β₁, 1 − β₁, β₂, 1 − β₂, c₂, ε, lr/c₁) in
 * tfjs's operation order: m' = m·β₁ + g·(1 − β₁), v' = v·β₂ + (g·g)·(1 − β₂),
 * p' = p − (m' / (√(v'/c₂) + ε))·(lr/c₁), each step rounded to float32.
 */
function adamFunction(): WasmFunction {
  return lanewiseFunction("adam", { inputs: 4, outputs: 3, scalars: 7, temps: 2 }, (l) => [
    {
      temp: 0,
      value: [...l.input(2), ...l.scalar(0), ...MUL, ...l.input(1), ...l.scalar(1), ...MUL, ...ADD],
    },
    {
      temp: 1,
      value: [
        ...l.input(3),
        ...l.scalar(2),
        ...MUL,
        ...l.input(1),
        ...l.input(1),
        ...MUL,
        ...l.scalar(3),
        ...MUL,
        ...ADD,
      ],
    },
    { output: 1, value: l.temp(0) },
    { output: 2, value: l.temp(1) },
    {
      output: 0,
      value: [
        ...l.input(0),
        ...l.temp(0),
        ...l.temp(1),
        ...l.scalar(4),
        ...DIV,
        ...SQRT,
        ...l.scalar(5),
        ...ADD,
        ...DIV,
        ...l.scalar(6),
        ...MUL,
        ...SUB,
      ],
    },
  ]);
}

/**
 * Exponential moving average (inputs shadow, θ; output shadow'; scalars d, 1 − d) in tfjs's order:
 * shadow' = shadow·d + θ·(1 − d), rounded to float32 at each step.
 */
function emaFunction(): WasmFunction {
  return lanewiseFunction("ema", { inputs: 2, outputs: 1, scalars: 2, temps: 0 }, (l) => [
    {
      output: 0,
      value: [...l.input(0), ...l.scalar(0), ...MUL, ...l.input(1), ...l.scalar(1), ...MUL, ...ADD],
    },
  ]);
}

/**
 * `copyRows(src, dst, rows, rowBytes, srcStride, dstStride)`: copies `rows` rows of `rowBytes`
 * bytes (a multiple of 4), row r from src + r·srcStride to dst + r·dstStride — 16 bytes at a time,
 * then 4. A strided block copy in one call: JavaScript's `copyWithin` per row costs ~30 ns each,
 * which a concat of 16 one-column [2560, 1] tensors (41k rows) pays 1.1 ms for.
 */
function copyRowsFunction(): WasmFunction {
  const [SRC, DST, ROWS, BYTES, SS, DS, R, J] = [0, 1, 2, 3, 4, 5, 6, 7];
  const copy = (step: number, load: number[], store: number[]) =>
    whileLoop([...get(J), ...Op.i32Const(step), ...Op.i32Add, ...get(BYTES), ...Op.i32GtU], [
      ...get(DST),
      ...get(J),
      ...Op.i32Add,
      ...get(SRC),
      ...get(J),
      ...Op.i32Add,
      ...load,
      ...store,
      ...addTo(J, Op.i32Const(step)),
    ]);
  return {
    name: "copyRows",
    params: ["i32", "i32", "i32", "i32", "i32", "i32"],
    results: [],
    locals: ["i32", "i32"],
    body: [
      ...Op.i32Const(0),
      ...set(R),
      ...whileLoop([...get(R), ...get(ROWS), ...Op.i32GeU], [
        ...Op.i32Const(0),
        ...set(J),
        ...copy(16, Op.v128Load(), Op.v128Store()),
        ...copy(4, Op.f32Load(), Op.f32Store()),
        ...addTo(SRC, get(SS)),
        ...addTo(DST, get(DS)),
        ...addTo(R, Op.i32Const(1)),
      ]),
    ],
  };
}

/**
 * `rowProducts(a, b, out, scale, rows, bytes, aStride, bStride, outStride, scaleStride)`: out row r
 * = (a row r · scale[r]) ⊙ b row r over `bytes` (a multiple of 16) per row, each operand at its own
 * byte stride, scale[r] one float (stride 0 and a 1 give a plain element-wise product, with the same
 * rounding). In a reverse pass: ∂z = ∂a ⊙ σ'(z), and for a one-output layer ∂z = (∂y·w) ⊙ σ'(z),
 * the outer product and the slope in one pass.
 */
function rowProductsFunction(): WasmFunction {
  const [A, B, OUT, SCALE, ROWS, BYTES, AS, BS, OS, SS] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [R, J, C] = [10, 11, 12];
  const at = (base: number) => localSum(base, J);
  return {
    name: "rowProducts",
    params: Array<ValueType>(10).fill("i32"),
    results: [],
    locals: ["i32", "i32", "v128"],
    body: [
      ...Op.i32Const(0),
      ...set(R),
      ...whileLoop([...get(R), ...get(ROWS), ...Op.i32GeU], [
        ...get(SCALE),
        ...Op.v128Load32Splat(),
        ...set(C),
        ...Op.i32Const(0),
        ...set(J),
        ...whileLoop([...get(J), ...get(BYTES), ...Op.i32GeU], [
          ...at(OUT),
          ...at(A),
          ...Op.v128Load(),
          ...get(C),
          ...Op.f32x4Mul,
          ...at(B),
          ...Op.v128Load(),
          ...Op.f32x4Mul,
          ...Op.v128Store(),
          ...addTo(J, Op.i32Const(16)),
        ]),
        ...addTo(A, get(AS)),
        ...addTo(B, get(BS)),
        ...addTo(OUT, get(OS)),
        ...addTo(SCALE, get(SS)),
        ...addTo(R, Op.i32Const(1)),
      ]),
    ],
  };
}

/**
 * `averageSlots(dst, first, rest, stride, count, bytes, divisor)`: dst = (first + rest₀ + … +
 * rest_{count−1}) / divisor over `bytes` (a multiple of 16) of floats, summed in that order (rest_s
 * at rest + s·stride) — the replicas' gradients averaged in one pass — and returns Σ dst² (summed
 * in four float32 lanes): the global norm comes with the average instead of a second pass over it.
 * `averageSlotsScaled` takes the reciprocal instead and multiplies: the same numbers where the
 * divisor is a power of two, and 0.4 ms less of the 1.1 the canonical step's 1.58M values took
 * with the division.
 */
function averageSlotsFunction(divide: boolean): WasmFunction {
  const [DST, FIRST, REST, STRIDE, COUNT, BYTES, DIVISOR] = [0, 1, 2, 3, 4, 5, 6];
  const [I, S, P, ACC, DIV, SQ] = [7, 8, 9, 10, 11, 12];
  return {
    name: divide ? "averageSlots" : "averageSlotsScaled",
    params: ["i32", "i32", "i32", "i32", "i32", "i32", "f32"],
    results: ["f32"],
    locals: ["i32", "i32", "i32", "v128", "v128", "v128"],
    body: [
      ...get(DIVISOR),
      ...Op.f32x4Splat,
      ...set(DIV),
      ...Op.i32Const(0),
      ...set(I),
      ...whileLoop([...get(I), ...get(BYTES), ...Op.i32GeU], [
        ...get(FIRST),
        ...get(I),
        ...Op.i32Add,
        ...Op.v128Load(),
        ...set(ACC),
        ...get(REST),
        ...get(I),
        ...Op.i32Add,
        ...set(P),
        ...Op.i32Const(0),
        ...set(S),
        ...whileLoop([...get(S), ...get(COUNT), ...Op.i32GeU], [
          ...get(ACC),
          ...get(P),
          ...Op.v128Load(),
          ...Op.f32x4Add,
          ...set(ACC),
          ...addTo(P, get(STRIDE)),
          ...addTo(S, Op.i32Const(1)),
        ]),
        ...get(DST),
        ...get(I),
        ...Op.i32Add,
        ...get(ACC),
        ...get(DIV),
        ...(divide ? Op.f32x4Div : Op.f32x4Mul),
        ...Op.localTee(ACC),
        ...Op.v128Store(),
        ...get(SQ),
        ...get(ACC),
        ...get(ACC),
        ...Op.f32x4Mul,
        ...Op.f32x4Add,
        ...set(SQ),
        ...addTo(I, Op.i32Const(16)),
      ]),
      ...[0, 1, 2, 3].flatMap((l) => [
        ...get(SQ),
        ...Op.f32x4ExtractLane(l),
        ...(l > 0 ? Op.f32Add : []),
      ]),
    ],
  };
}

type MapExport = (src: number, dst: number, bytes: number) => number;

/** The vectorised functions, instantiated on one linear memory. */
export interface SimdFunctions {
  /** softplus of `n` floats (any `n`) from byte offset `src` to `dst`. */
  softplus(src: number, dst: number, n: number): void;
  /** dst = the sum of the `rows` rows of a row-major [rows, cols] matrix at src; cols % 4 = 0. */
  sumRows(src: number, dst: number, rows: number, cols: number): void;
  /** Σ x² over the `n` floats at byte offset `src` (any `n`), summed in float32. */
  sumSquares(src: number, n: number): number;
  /** sin of `n` floats; returns false (and writes nothing useful) when a |x| > 8192 was seen. */
  sin(src: number, dst: number, n: number): boolean;
  /** cos of `n` floats; as `sin`. */
  cos(src: number, dst: number, n: number): boolean;
  /**
   * RMSprop on `n` floats at byte offsets p, g, v into outP, outV: v' = v·α + g²·(1 − α),
   * p' = p − g/(√v' + ε)·lr, rounded like tfjs's chain of float32 kernels.
   */
  rmsprop(
    at: { p: number; g: number; v: number; outP: number; outV: number },
    n: number,
    options: { lr: number; alpha: number; epsilon: number },
  ): void;
  /**
   * Adam on `n` floats: m' = m·β₁ + g·(1 − β₁), v' = v·β₂ + g²·(1 − β₂),
   * p' = p − m'/(√(v'/c₂) + ε)·rate (rate = lr/c₁), rounded like tfjs's chain of float32 kernels.
   */
  adam(
    at: { p: number; g: number; m: number; v: number; outP: number; outM: number; outV: number },
    n: number,
    options: { beta1: number; beta2: number; c2: number; epsilon: number; rate: number },
  ): void;
  /**
   * One softplus layer of the forward-mode jet: z's rows [value; ∂₁…∂_d; Δ] (blocks of `points`
   * rows of `width` floats, width % 4 = 0) plus `bias` → out's rows [σ; σ'∂_k; σ'Δ + σ''Σ∂_k²],
   * and where `at.slope` is given, σ' of the value rows there (`points` rows, for a reverse pass).
   */
  softplusJet(
    at: { z: number; bias: number; out: number; slope?: number },
    shape: { points: number; width: number; dim: number },
  ): void;
  /**
   * The per-panel functions as plain exports (byte offsets and byte lengths, no checks), for
   * callbacks that run once per five rows of a product: objects per call there cost ~1.5 ms of the
   * canonical fd step.
   */
  panels: {
    /** `biasSoftplus(z, bias, out, rows, rowBytes, slope, slopeRows)` (see `biasSoftplus`). */
    biasSoftplus(...args: number[]): void;
    /** `rowProducts(a, b, out, scale, rows, rowBytes, aStride, bStride, outStride, scaleStride)`. */
    rowProducts(...args: number[]): void;
  };
  /**
   * softplus(z + bias) of a [rows, width] matrix (width % 4 = 0) into out, and where `at.slope` is
   * given σ'(z + bias) of its first `slopeRows` rows there.
   */
  biasSoftplus(
    at: { z: number; bias: number; out: number; slope?: number },
    shape: { rows: number; width: number; slopeRows: number },
  ): void;
  /**
   * Copies `rows` rows of `rowBytes` bytes (a multiple of 4), row r from `at.src` + r·srcStride to
   * `at.dst` + r·dstStride (byte offsets and strides).
   */
  copyRows(
    at: { src: number; dst: number },
    shape: { rows: number; rowBytes: number; srcStride: number; dstStride: number },
  ): void;
  /**
   * out row r = (a row r · scale[r]) ⊙ b row r for `rows` rows of `rowBytes` bytes (a multiple of
   * 16), the operands' rows `strides.a`, `strides.b` and `strides.out` bytes apart and scale[r] at
   * `at.scale` + r·strides.scale (stride 0 on a 1: a plain element-wise product).
   */
  rowProducts(
    at: { a: number; b: number; out: number; scale: number },
    shape: {
      rows: number;
      rowBytes: number;
      strides: { a: number; b: number; out: number; scale: number };
    },
  ): void;
  /**
   * `n` floats at `at.dst` = (at.first + at.rest[0] + … + at.rest[count − 1]) / divisor, summed in
   * that order (at.rest[s] = at.rest + s·stride bytes): averages of equally shaped slots. Returns
   * the sum of the averages' squares, summed in float32.
   */
  averageSlots(
    at: { dst: number; first: number; rest: number },
    shape: { n: number; count: number; stride: number; divisor: number },
  ): number;
  /** EMA on `n` floats: shadow' = shadow·d + θ·(1 − d), rounded like tfjs's chain of kernels. */
  ema(at: { shadow: number; value: number; outShadow: number }, n: number, options: {
    decay: number;
  }): void;
}

const SCALAR: Record<UnaryKernelName, (x: number) => number> = {
  Softplus: (x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))),
  Sin: Math.sin,
  Cos: Math.cos,
};

/**
 * Instantiates the vectorised functions on `memory` (a tfjs-wasm heap, or any memory for tests).
 *
 * @example softplus of four floats in a fresh memory
 * ```ts
 * import { simdFunctions } from "./wasm_kernels.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f32 = new Float32Array(memory.buffer);
 * f32.set([-2, 0, 1, 30]);
 * simdFunctions(memory).softplus(0, 64, 4);
 * console.log(Array.from(f32.subarray(16, 20))); // ≈ [0.127, 0.693, 1.313, 30]
 * ```
 */
export function simdFunctions(memory: WebAssembly.Memory): SimdFunctions {
  const shared = typeof SharedArrayBuffer !== "undefined" &&
    memory.buffer instanceof SharedArrayBuffer;
  const bytes = encodeModule(
    shared ? { shared: true, maximumPages: 65536 } : { shared: false },
    [
      softplusFunction(),
      trigFunction("sin", 0),
      trigFunction("cos", 1),
      sumRowsFunction(),
      sumSquaresFunction(),
      rmspropFunction(),
      adamFunction(),
      emaFunction(),
      softplusJetFunction(),
      biasSoftplusFunction(),
      copyRowsFunction(),
      rowProductsFunction(),
      averageSlotsFunction(true),
      averageSlotsFunction(false),
    ],
  );
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource), {
    env: { memory },
  });
  const exports = instance.exports as Record<"softplus" | "sin" | "cos", MapExport> & {
    sumRows: (src: number, dst: number, rows: number, bytes: number) => void;
    sumSquares: (src: number, bytes: number) => number;
    rmsprop: (...args: number[]) => void;
    adam: (...args: number[]) => void;
    ema: (...args: number[]) => void;
    softplusJet: (...args: number[]) => void;
    biasSoftplus: (...args: number[]) => void;
    copyRows: (...args: number[]) => void;
    rowProducts: (...args: number[]) => void;
    averageSlots: (...args: number[]) => number;
    averageSlotsScaled: (...args: number[]) => number;
  };
  const f = Math.fround;
  const run = (kernel: UnaryKernelName, fn: MapExport) => (src: number, dst: number, n: number) => {
    const vectorised = n - (n % (4 * UNROLL));
    if (fn(src, dst, vectorised * 4) !== 0) return false;
    if (vectorised < n) {
      const heap = new Float32Array(memory.buffer);
      for (let i = vectorised; i < n; i++) heap[dst / 4 + i] = SCALAR[kernel](heap[src / 4 + i]);
    }
    return true;
  };
  const softplus = run("Softplus", exports.softplus);
  return {
    softplus: (src, dst, n) => void softplus(src, dst, n),
    sin: run("Sin", exports.sin),
    cos: run("Cos", exports.cos),
    sumRows: (src, dst, rows, cols) => {
      if (cols % 4 !== 0 || rows < 1) {
        throw new RangeError(`Invalid sumRows shape [${rows}, ${cols}]: rows ≥ 1, cols % 4 = 0`);
      }
      exports.sumRows(src, dst, rows, 4 * cols);
    },
    sumSquares: (src, n) => {
      const vectorised = n - (n % 16);
      let total = exports.sumSquares(src, 4 * vectorised);
      const heap = new Float32Array(memory.buffer);
      for (let i = vectorised; i < n; i++) {
        const x = heap[src / 4 + i];
        total = f(total + f(x * x));
      }
      return total;
    },
    rmsprop: (at, n, { lr, alpha, epsilon }) => {
      const [a, oma, rate, eps] = [f(alpha), f(1 - alpha), f(lr), f(epsilon)];
      const vectorised = n - (n % 4);
      exports.rmsprop(at.p, at.g, at.v, at.outP, at.outV, 4 * vectorised, rate, a, oma, eps);
      const heap = new Float32Array(memory.buffer);
      for (let i = vectorised; i < n; i++) {
        const g = heap[at.g / 4 + i];
        const w = f(f(heap[at.v / 4 + i] * a) + f(f(g * g) * oma));
        heap[at.outV / 4 + i] = w;
        heap[at.outP / 4 + i] = f(heap[at.p / 4 + i] - f(f(g / f(f(Math.sqrt(w)) + eps)) * rate));
      }
    },
    adam: (at, n, o) => {
      const [b1, omb1, b2, omb2] = [f(o.beta1), f(1 - o.beta1), f(o.beta2), f(1 - o.beta2)];
      const [c2, eps, rate] = [f(o.c2), f(o.epsilon), f(o.rate)];
      const vectorised = n - (n % 4);
      exports.adam(
        at.p,
        at.g,
        at.m,
        at.v,
        at.outP,
        at.outM,
        at.outV,
        4 * vectorised,
        b1,
        omb1,
        b2,
        omb2,
        c2,
        eps,
        rate,
      );
      const heap = new Float32Array(memory.buffer);
      for (let i = vectorised; i < n; i++) {
        const g = heap[at.g / 4 + i];
        const m = f(f(heap[at.m / 4 + i] * b1) + f(g * omb1));
        const v = f(f(heap[at.v / 4 + i] * b2) + f(f(g * g) * omb2));
        heap[at.outM / 4 + i] = m;
        heap[at.outV / 4 + i] = v;
        const denom = f(f(Math.sqrt(f(v / c2))) + eps);
        heap[at.outP / 4 + i] = f(heap[at.p / 4 + i] - f(f(m / denom) * rate));
      }
    },
    averageSlots: (at, { n, count, stride, divisor }) => {
      const vectorised = n - (n % 4);
      // x·(1/d) is x/d exactly when d is a power of two
      const exact = Number.isInteger(Math.log2(divisor));
      const run = exact ? exports.averageSlotsScaled : exports.averageSlots;
      let squares = run(
        at.dst,
        at.first,
        at.rest,
        stride,
        count,
        4 * vectorised,
        exact ? 1 / divisor : divisor,
      );
      const heap = new Float32Array(memory.buffer);
      for (let i = vectorised; i < n; i++) {
        let sum = heap[at.first / 4 + i];
        for (let j = 0; j < count; j++) sum = f(sum + heap[(at.rest + j * stride) / 4 + i]);
        const average = heap[at.dst / 4 + i] = f(sum / divisor);
        squares = f(squares + f(average * average));
      }
      return squares;
    },
    panels: { biasSoftplus: exports.biasSoftplus, rowProducts: exports.rowProducts },
    rowProducts: (at, { rows, rowBytes, strides }) => {
      if (rowBytes % 16 !== 0) {
        throw new RangeError(`Invalid row length ${rowBytes} bytes: it must be a multiple of 16`);
      }
      exports.rowProducts(
        at.a,
        at.b,
        at.out,
        at.scale,
        rows,
        rowBytes,
        strides.a,
        strides.b,
        strides.out,
        strides.scale,
      );
    },
    copyRows: (at, { rows, rowBytes, srcStride, dstStride }) => {
      if (rowBytes % 4 !== 0) {
        throw new RangeError(`Invalid row length ${rowBytes} bytes: it must be a multiple of 4`);
      }
      exports.copyRows(at.src, at.dst, rows, rowBytes, srcStride, dstStride);
    },
    biasSoftplus: (at, { rows, width, slopeRows }) => {
      if (width % 4 !== 0) {
        throw new RangeError(`Invalid biasSoftplus width ${width}: it must be a multiple of 4`);
      }
      exports.biasSoftplus(at.z, at.bias, at.out, rows, 4 * width, at.slope ?? 0, slopeRows);
    },
    softplusJet: (at, { points, width, dim }) => {
      if (width % 4 !== 0) {
        throw new RangeError(`Invalid softplusJet width ${width}: it must be a multiple of 4`);
      }
      exports.softplusJet(at.z, at.bias, at.out, points, 4 * width, dim, at.slope ?? 0);
    },
    ema: (at, n, { decay }) => {
      const [d, omd] = [f(decay), f(1 - decay)];
      const vectorised = n - (n % 4);
      exports.ema(at.shadow, at.value, at.outShadow, 4 * vectorised, d, omd);
      const heap = new Float32Array(memory.buffer);
      for (let i = vectorised; i < n; i++) {
        heap[at.outShadow / 4 + i] = f(
          f(heap[at.shadow / 4 + i] * d) + f(heap[at.value / 4 + i] * omd),
        );
      }
    },
  };
}

interface WasmTensorData {
  memoryOffset: number;
}

interface WasmBackendLike {
  wasm: {
    asm?: { memory?: WebAssembly.Memory };
    wasmMemory?: WebAssembly.Memory;
    _malloc(bytes: number): number;
    _free(pointer: number): void;
  };
  dataIdMap: { get(dataId: unknown): WasmTensorData };
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
}

/** What one tfjs-wasm backend instance gets: its memory's functions and a scratch buffer. */
interface BackendState {
  simd: SimdFunctions;
  gemm: GemmFunctions;
  memory: WebAssembly.Memory;
  scratch: { pointer: number; bytes: number };
  /** The left operand packed whole for the matMul, and which one it is (see `packedOperand`). */
  packed: { pointer: number; bytes: number; key: PackKey | null };
  /** Left operands seen once lately. */
  seen: PackKey[];
  /** Working buffers of the fused reverse pass (`simdMlpReverse`). */
  work: { pointer: number; bytes: number };
}

/** A left operand of the matMul in one layout. */
interface PackKey {
  dataId: unknown;
  m: number;
  k: number;
  rowStride: number;
  kStride: number;
}

/**
 * Smallest A (m·k floats) kept packed between products. A disjoint network's first layer multiplies
 * the same features (2560×512 for the fd step) by every mode chunk's weights, 16 products a step,
 * and packing A took ~8% of each.
 */
const PACK_CACHE_MIN = 1 << 16;

/**
 * The byte offset of `a` packed whole for `gemm.matmul` when it is worth keeping, else undefined
 * (then each panel is packed as it goes). An operand is packed into the cache on its second product
 * among the last few (up to four operands remembered), so one-off operands never evict the one that
 * repeats. tfjs tensors are immutable and a dataId is never reused, so a key match means the same
 * numbers.
 */
function packedOperand(
  backend: WasmBackendLike,
  state: BackendState,
  a: tf.TensorInfo,
  shape: { m: number; k: number; rowStride: number; kStride: number },
): number | undefined {
  if (shape.m * shape.k < PACK_CACHE_MIN) return undefined;
  const key: PackKey = { dataId: a.dataId, ...shape };
  const same = (x: PackKey | null) =>
    x !== null && x.dataId === key.dataId && x.m === key.m && x.k === key.k &&
    x.rowStride === key.rowStride && x.kStride === key.kStride;
  if (same(state.packed.key)) return state.packed.pointer;
  if (!state.seen.some(same)) {
    state.seen = [key, ...state.seen].slice(0, 4);
    return undefined;
  }
  const bytes = 4 * shape.m * shape.k;
  if (state.packed.bytes < bytes) {
    if (state.packed.bytes > 0) backend.wasm._free(state.packed.pointer);
    state.packed = { pointer: backend.wasm._malloc(bytes) >>> 0, bytes, key: null };
  }
  state.gemm.packA(backend.dataIdMap.get(a.dataId).memoryOffset, state.packed.pointer, shape);
  state.packed.key = key;
  return state.packed.pointer;
}

const states = new WeakMap<object, BackendState>();

function stateFor(backend: WasmBackendLike): BackendState {
  let state = states.get(backend);
  if (state === undefined) {
    const memory = backend.wasm.asm?.memory ?? backend.wasm.wasmMemory;
    if (memory === undefined) throw new Error("The wasm backend exposes no linear memory");
    state = {
      simd: simdFunctions(memory),
      gemm: gemmFunctions(memory),
      memory,
      scratch: { pointer: 0, bytes: 0 },
      packed: { pointer: 0, bytes: 0, key: null },
      seen: [],
      work: { pointer: 0, bytes: 0 },
    };
    states.set(backend, state);
  }
  return state;
}

/**
 * Copies float32 tensors' values one after another into `out`, on the WASM backend straight from
 * its heap (one block copy per tensor), elsewhere through `dataSync`. `dataSync` on tfjs-wasm
 * allocates a fresh copy per tensor first: for the canonical step's 1.58M gradient values 2.55 ms
 * against 0.19, on the critical path of every data-parallel step, in each replica.
 */
export function readTensorsInto(tensors: tf.Tensor[], out: Float32Array<ArrayBufferLike>): void {
  const total = tensors.reduce((n, t) => n + t.size, 0);
  if (out.length < total) {
    throw new RangeError(`Mismatched output: ${out.length} floats for ${total} tensor values`);
  }
  const backend = tf.getBackend() === "wasm"
    ? tf.backend() as unknown as WasmBackendLike
    : undefined;
  const memory = backend && (backend.wasm.asm?.memory ?? backend.wasm.wasmMemory);
  let o = 0;
  for (const t of tensors) {
    if (memory && t.dtype === "float32" && t.size > 0) {
      const at = backend!.dataIdMap.get(t.dataId).memoryOffset;
      out.set(new Float32Array(memory.buffer, at, t.size), o);
    } else {
      out.set(t.dataSync() as Float32Array, o);
    }
    o += t.size;
  }
}

/** A scratch buffer of at least `bytes` on the backend's heap (kept and grown, never shrunk). */
function scratchFor(backend: WasmBackendLike, state: BackendState, bytes: number): number {
  if (state.scratch.bytes < bytes) {
    if (state.scratch.bytes > 0) backend.wasm._free(state.scratch.pointer);
    const size = Math.max(bytes, 2 * state.scratch.bytes);
    state.scratch = { pointer: backend.wasm._malloc(size) >>> 0, bytes: size };
  }
  return state.scratch.pointer;
}

const originals = new Map<SimdKernelName, tf.KernelConfig>();

/** Names of the fused optimiser kernels (registered with the own kernels on wasm). */
const RMSPROP_KERNEL = "NeuralsvdRmsprop",
  ADAM_KERNEL = "NeuralsvdAdam",
  EMA_KERNEL = "NeuralsvdEma";

type OptimizerRun = (
  simd: SimdFunctions,
  at: Record<string, number>,
  n: number,
  attrs: Record<string, number>,
) => void;

/** The kernel of a fused optimiser update: same-shape float32 inputs, one output per state. */
function optimizerKernel(outputs: string[], run: OptimizerRun): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackendLike;
    const inputs = args.inputs as Record<string, tf.TensorInfo>;
    const shape = Object.values(inputs)[0].shape;
    const made = outputs.map(() => backend.makeOutput(shape, "float32"));
    const n = sizeOf(shape);
    if (n === 0) return made;
    const at: Record<string, number> = {};
    for (const [name, x] of Object.entries(inputs)) {
      at[name] = backend.dataIdMap.get(x.dataId).memoryOffset;
    }
    outputs.forEach((name, i) => (at[name] = backend.dataIdMap.get(made[i].dataId).memoryOffset));
    run(stateFor(backend).simd, at, n, args.attrs as unknown as Record<string, number>);
    return made;
  };
}

type RmspropArgs = Parameters<SimdFunctions["rmsprop"]>;
type AdamArgs = Parameters<SimdFunctions["adam"]>;
type EmaArgs = Parameters<SimdFunctions["ema"]>;

const OPTIMIZER_KERNELS: tf.KernelConfig[] = [
  {
    kernelName: RMSPROP_KERNEL,
    backendName: "wasm",
    kernelFunc: optimizerKernel(
      ["outP", "outV"],
      (simd, at, n, a) => simd.rmsprop(at as RmspropArgs[0], n, a as RmspropArgs[2]),
    ),
  },
  {
    kernelName: ADAM_KERNEL,
    backendName: "wasm",
    kernelFunc: optimizerKernel(
      ["outP", "outM", "outV"],
      (simd, at, n, a) => simd.adam(at as AdamArgs[0], n, a as AdamArgs[2]),
    ),
  },
  {
    kernelName: EMA_KERNEL,
    backendName: "wasm",
    kernelFunc: optimizerKernel(
      ["outShadow"],
      (simd, at, n, a) => simd.ema(at as EmaArgs[0], n, a as EmaArgs[2]),
    ),
  },
];

/** Runs a fused optimiser kernel, or returns undefined where the own WASM kernels are off. */
function fusedUpdate(
  kernelName: string,
  inputs: Record<string, tf.Tensor>,
  attrs: Record<string, number>,
): tf.Tensor[] | undefined {
  if (originals.size === 0 || tf.getBackend() !== "wasm") return undefined;
  const shape = Object.values(inputs)[0].shape.join();
  if (Object.values(inputs).some((x) => x.dtype !== "float32" || x.shape.join() !== shape)) {
    return undefined;
  }
  return tf.engine().runKernel(
    kernelName,
    inputs,
    attrs as unknown as tf.NamedAttrMap,
  ) as unknown as tf.Tensor[];
}

/**
 * The RMSprop update of one tensor in one pass — v' = v·α + g²·(1 − α), p' = p − g/(√v' + ε)·lr —
 * equal bit for bit to tfjs's chain of nine float32 kernels (which pass over the tensor nine times);
 * [p', v'], or undefined where the own WASM kernels are not in use (then take the chain).
 */
export function simdRmsprop(
  inputs: { p: tf.Tensor; g: tf.Tensor; v: tf.Tensor },
  options: { lr: number; alpha: number; epsilon: number },
): [tf.Tensor, tf.Tensor] | undefined {
  return fusedUpdate(RMSPROP_KERNEL, inputs, options) as [tf.Tensor, tf.Tensor] | undefined;
}

/** Name of the fused softplus jet-layer kernel (registered with the own kernels on wasm). */
const SOFTPLUS_JET_KERNEL = "NeuralsvdSoftplusJet";

const SOFTPLUS_JET_CONFIG: tf.KernelConfig = {
  kernelName: SOFTPLUS_JET_KERNEL,
  backendName: "wasm",
  kernelFunc: (args) => {
    const { z, bias } = args.inputs as Record<"z" | "bias", tf.TensorInfo>;
    const { points, dim, slope } = args.attrs as unknown as {
      points: number;
      dim: number;
      slope: boolean;
    };
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(z.shape, "float32");
    const slopes = slope ? backend.makeOutput([points, z.shape[1]], "float32") : undefined;
    const at = (x: tf.TensorInfo) => backend.dataIdMap.get(x.dataId).memoryOffset;
    stateFor(backend).simd.softplusJet(
      { z: at(z), bias: at(bias), out: at(out), slope: slopes && at(slopes) },
      { points, width: z.shape[1], dim },
    );
    return slopes ? [out, slopes] : out;
  },
};

/**
 * One hidden softplus layer of the forward-mode jet in one pass (untaped: it has no gradient): from
 * the linear layer's rows z = [value; ∂₁; …; ∂_d; Δ] (d + 2 blocks of `points` rows) and the bias,
 * the next rows [σ(z + b); σ'·∂_k z; σ'·Δz + σ''·Σ_k (∂_k z)²]. Undefined where the own WASM kernels
 * are not in use or the width is not a multiple of 4 (then take tfjs's kernels).
 */
export function simdSoftplusJet(
  z: tf.Tensor2D,
  bias: tf.Tensor,
  shape: { points: number; dim: number },
): tf.Tensor2D | undefined {
  return softplusJetKernel(z, bias, { ...shape, slope: false }) as tf.Tensor2D | undefined;
}

/**
 * {@linkcode simdSoftplusJet} that also returns the slope σ'(z + b) of the value rows
 * ([points, width]), which a reverse pass through the layer needs: [rows, slope].
 */
export function simdSoftplusJetWithSlope(
  z: tf.Tensor2D,
  bias: tf.Tensor,
  shape: { points: number; dim: number },
): [tf.Tensor2D, tf.Tensor2D] | undefined {
  return softplusJetKernel(z, bias, { ...shape, slope: true }) as
    | [tf.Tensor2D, tf.Tensor2D]
    | undefined;
}

function softplusJetKernel(
  z: tf.Tensor2D,
  bias: tf.Tensor,
  attrs: { points: number; dim: number; slope: boolean },
): tf.Tensor | tf.Tensor[] | undefined {
  if (originals.size === 0 || tf.getBackend() !== "wasm") return undefined;
  const [rows, width] = z.shape;
  if (
    width % 4 !== 0 || rows !== (attrs.dim + 2) * attrs.points || bias.size !== width ||
    z.dtype !== "float32" || bias.dtype !== "float32"
  ) return undefined;
  return tf.engine().runKernel(
    SOFTPLUS_JET_KERNEL,
    { z, bias },
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor | tf.Tensor[];
}

const BIAS_SOFTPLUS_KERNEL = "NeuralsvdBiasSoftplus";

const BIAS_SOFTPLUS_CONFIG: tf.KernelConfig = {
  kernelName: BIAS_SOFTPLUS_KERNEL,
  backendName: "wasm",
  kernelFunc: (args) => {
    const { z, bias } = args.inputs as Record<"z" | "bias", tf.TensorInfo>;
    const { slopeRows } = args.attrs as unknown as { slopeRows: number };
    const backend = args.backend as unknown as WasmBackendLike;
    const [rows, width] = z.shape;
    const out = backend.makeOutput(z.shape, "float32");
    const slope = slopeRows > 0 ? backend.makeOutput([slopeRows, width], "float32") : undefined;
    const at = (x: tf.TensorInfo) => backend.dataIdMap.get(x.dataId).memoryOffset;
    stateFor(backend).simd.biasSoftplus(
      { z: at(z), bias: at(bias), out: at(out), slope: slope && at(slope) },
      { rows, width, slopeRows },
    );
    return slope ? [out, slope] : out;
  },
};

/**
 * softplus(z + bias) of a hidden layer in one pass (untaped: it has no gradient), with the slope
 * σ'(z + bias) of its first `slopeRows` rows, which a reverse pass through the layer needs:
 * [activation, slope]; undefined where the own WASM kernels are not in use or the width is not a
 * multiple of 4 (then take tfjs's kernels).
 */
export function simdBiasSoftplus(
  z: tf.Tensor2D,
  bias: tf.Tensor,
  options: { slopeRows: number },
): [tf.Tensor2D, tf.Tensor2D] | undefined {
  if (originals.size === 0 || tf.getBackend() !== "wasm") return undefined;
  const [rows, width] = z.shape;
  const slopeRows = options.slopeRows;
  if (
    width % 4 !== 0 || bias.size !== width || z.dtype !== "float32" || bias.dtype !== "float32" ||
    !(slopeRows >= 1 && slopeRows <= rows)
  ) return undefined;
  return tf.engine().runKernel(BIAS_SOFTPLUS_KERNEL, { z, bias }, { slopeRows }) as [
    tf.Tensor2D,
    tf.Tensor2D,
  ];
}

const LINEAR_SOFTPLUS_KERNEL = "NeuralsvdLinearSoftplus";

const LINEAR_SOFTPLUS_CONFIG: tf.KernelConfig = {
  kernelName: LINEAR_SOFTPLUS_KERNEL,
  backendName: "wasm",
  kernelFunc: (args) => {
    const { a, w, bias } = args.inputs as Record<"a" | "w" | "bias", tf.TensorInfo>;
    const { slopeRows } = args.attrs as unknown as { slopeRows: number };
    const backend = args.backend as unknown as WasmBackendLike;
    const [m, k] = a.shape, n = w.shape[1];
    const out = backend.makeOutput([m, n], "float32");
    const slope = backend.makeOutput([slopeRows, n], "float32");
    const state = stateFor(backend);
    const scratch = scratchFor(backend, state, 4 * (GEMM_MR + n) * k);
    const packedA = packedOperand(backend, state, a, { m, k, rowStride: k, kStride: 1 });
    const at = (x: tf.TensorInfo) => backend.dataIdMap.get(x.dataId).memoryOffset;
    const [pOut, pBias, pSlope] = [at(out), at(bias), at(slope)];
    // each row panel of the product, while in cache, becomes softplus(c + b) in place
    const biasSoftplus = state.simd.panels.biasSoftplus;
    const panel = (row: number, rows: number) => {
      const at = pOut + 4 * row * n;
      const slopes = Math.max(0, Math.min(rows, slopeRows - row));
      biasSoftplus(at, pBias, at, rows, 4 * n, pSlope + 4 * row * n, slopes);
    };
    state.gemm.matmul(at(a), at(w), pOut, { m, k, n, rowStride: k, kStride: 1 }, scratch, {
      panel,
      packedA,
    });
    return [out, slope];
  },
};

/**
 * A whole softplus layer of a forward pass in one kernel (untaped: it has no gradient):
 * softplus(a·w + bias), with the slope σ'(a·w + bias) of the first `slopeRows` rows, which a reverse
 * pass through the layer needs — bias and activation go over each row panel of the product (five
 * rows) right after the matMul kernel wrote it, in place, while it is in the core's L1 cache. Returns [activation, slope], or
 * undefined where the own WASM kernels do not take it (then use `tf.matMul` and
 * {@linkcode simdBiasSoftplus}): not on tfjs's threaded wasm build (its matMul is XNNPACK's on all
 * threads), `w`'s columns not a multiple of 4, other dtypes or shapes.
 */
export function simdLinearSoftplus(
  a: tf.Tensor2D,
  w: tf.Tensor2D,
  bias: tf.Tensor,
  options: { slopeRows: number },
): [tf.Tensor2D, tf.Tensor2D] | undefined {
  if (originals.size === 0 || tf.getBackend() !== "wasm") return undefined;
  if (isThreaded(tf.backend() as unknown as WasmBackendLike)) return undefined;
  const [rows, k] = a.shape, n = w.shape[1];
  const slopeRows = options.slopeRows;
  if (
    w.shape[0] !== k || n % 4 !== 0 || bias.size !== n || a.dtype !== "float32" ||
    w.dtype !== "float32" || bias.dtype !== "float32" || !(slopeRows >= 1 && slopeRows <= rows)
  ) return undefined;
  return tf.engine().runKernel(LINEAR_SOFTPLUS_KERNEL, { a, w, bias }, { slopeRows }) as [
    tf.Tensor2D,
    tf.Tensor2D,
  ];
}

const MLP_REVERSE_KERNEL = "NeuralsvdMlpReverse";

/** `bytes` of working memory for the fused reverse pass, kept between calls (grown as needed). */
function workFor(backend: WasmBackendLike, state: BackendState, bytes: number): number {
  if (state.work.bytes < bytes) {
    if (state.work.bytes > 0) backend.wasm._free(state.work.pointer);
    state.work = { pointer: backend.wasm._malloc(bytes) >>> 0, bytes };
  }
  return state.work.pointer;
}

const MLP_REVERSE_CONFIG: tf.KernelConfig = {
  kernelName: MLP_REVERSE_KERNEL,
  backendName: "wasm",
  kernelFunc: (args) => {
    const inputs = args.inputs as Record<string, tf.TensorInfo>;
    const { layers: n, groups: G, shapes } = args.attrs as unknown as {
      layers: number;
      groups: number;
      shapes: number[][];
    };
    const backend = args.backend as unknown as WasmBackendLike;
    const state = stateFor(backend);
    const { simd, gemm } = state;
    const [R, L] = inputs.g.shape, F = inputs.features.shape[1];
    // widths[k]: layer k's input width (k ≥ 1); m: each group's outputs
    const widths = Array.from({ length: n }, (_, k) => (k === 0 ? F : inputs[`w${k}`].shape[1]));
    const m = L / G, h1 = widths[1];
    const outs = shapes.map((shape) => backend.makeOutput(shape, "float32"));
    const at = (x: tf.TensorInfo) => backend.dataIdMap.get(x.dataId).memoryOffset;
    const widest = Math.max(m, ...widths.slice(1));
    // Z and Z2: ∂z of the current layer and the next; DA: ∂a; DZ0: the first layer's ∂z, all groups
    const work = workFor(backend, state, 4 * (3 * R * widest + R * G * h1 + 4));
    let [Z, Z2] = [work, work + 4 * R * widest];
    const DA = work + 8 * R * widest, DZ0 = DA + 4 * R * widest, ONE = DZ0 + 4 * R * G * h1;
    const heap = () => new Float32Array(state.memory.buffer);
    heap()[ONE / 4] = 1;
    const scratchBytes = 4 * (GEMM_MR + Math.max(G * h1, widest)) * Math.max(R, widest);
    const scratch = scratchFor(backend, state, scratchBytes);
    for (let c = 0; c < G; c++) {
      simd.copyRows({ src: at(inputs.g) + 4 * c * m, dst: Z }, {
        rows: R,
        rowBytes: 4 * m,
        srcStride: 4 * L,
        dstStride: 4 * m,
      });
      let N = m; // columns of ∂z
      for (let k = n - 1; k >= 1; k--) {
        const h = widths[k], a = at(inputs[`input${c}_${k}`]);
        const w = at(inputs[`w${k}`]) + 4 * c * h * N;
        const dW = at(outs[2 * k]) + 4 * c * h * N, db = at(outs[2 * k + 1]) + 4 * c * N;
        if (N === 1) {
          // (∂zᵀa)ᵀ: the same numbers as aᵀ∂z, with a as the wide operand
          gemm.matmul(Z, a, dW, { m: 1, k: R, n: h, rowStride: 1, kStride: 1 }, scratch);
          const f = heap();
          let sum = 0;
          for (let r = 0; r < R; r++) sum = Math.fround(sum + f[Z / 4 + r]);
          f[db / 4] = sum;
        } else {
          gemm.matmul(a, Z, dW, { m: h, k: R, n: N, rowStride: 1, kStride: h }, scratch);
          simd.sumRows(Z, db, R, N);
        }
        // ∂z of layer k − 1 = (∂z·Wᵀ) ⊙ σ'; the first layer's goes to its columns of DZ0
        const slope = at(inputs[`slope${c}_${k - 1}`]);
        const [target, stride] = k === 1 ? [DZ0 + 4 * c * h, 4 * G * h] : [Z2, 4 * h];
        if (N === 1) {
          simd.rowProducts({ a: w, b: slope, out: target, scale: Z }, {
            rows: R,
            rowBytes: 4 * h,
            strides: { a: 0, b: 4 * h, out: stride, scale: 4 },
          });
        } else {
          const rowProducts = simd.panels.rowProducts;
          const panel = (row: number, rows: number) =>
            rowProducts(
              DA + 4 * row * h,
              slope + 4 * row * h,
              target + row * stride,
              ONE,
              rows,
              4 * h,
              4 * h,
              4 * h,
              stride,
              0,
            );
          gemm.matmul(
            Z,
            w,
            DA,
            {
              m: R,
              k: N,
              n: h,
              rowStride: N,
              kStride: 1,
              bTransposed: true,
            },
            scratch,
            { panel },
          );
        }
        [Z, Z2] = [Z2, Z];
        N = h;
      }
    }
    const shape = { m: F, k: R, n: G * h1, rowStride: 1, kStride: F };
    gemm.matmul(at(inputs.features), DZ0, at(outs[0]), shape, scratch, {
      packedA: packedOperand(backend, state, inputs.features, shape),
    });
    simd.sumRows(DZ0, at(outs[1]), R, G * h1);
    return outs;
  },
};

/**
 * The reverse pass of disjoint MLPs evaluated one group at a time (`Mlp.applyWithPullback`, `jet`
 * with pullback) in one kernel (untaped): from the output gradient g [R, G·m] and each group c's
 * kept layer inputs `inputs[c][k − 1]` (layer k ≥ 1) and slopes `slopes[c][k]` σ'(z) (layers k <
 * n − 1), the gradients of all weights and biases, shaped like `shapes` (w₀, b₀, w₁, b₁, …). The
 * features, inputs and slopes may have more rows than g (a whole evaluation): their first R rows are
 * read in place. Per layer ∂W = aᵀ∂z, ∂b = Σ_rows ∂z, ∂a = ∂z·Wᵀ, then ∂z = ∂a ⊙ σ'(z) over each
 * five-row panel of the product while it is in cache, the first layer's ∂W as one product for all
 * groups. The products run
 * the matMul kernel as the op-by-op pass does, so the numbers are the same; what goes is ~12 tfjs
 * kernels per group (splits, reshapes, concats, sums, products, multiplies) and their tensors.
 * Undefined where the own kernels are not in use (then take the op-by-op pass): tfjs's threaded
 * build, hidden widths not a multiple of 4, m neither 1 nor a multiple of 4, or weights not
 * [G, h, h'] after the first layer.
 */
export function simdMlpReverse(
  g: tf.Tensor2D,
  trace: {
    features: tf.Tensor2D;
    weights: tf.Tensor[];
    inputs: tf.Tensor2D[][];
    slopes: tf.Tensor2D[][];
    shapes: number[][];
  },
): tf.Tensor[] | undefined {
  if (originals.size === 0 || tf.getBackend() !== "wasm") return undefined;
  if (isThreaded(tf.backend() as unknown as WasmBackendLike)) return undefined;
  const { features, weights, inputs, slopes, shapes } = trace;
  const n = weights.length, G = inputs.length, [R, L] = g.shape;
  if (n < 2 || G < 1 || L % G !== 0 || features.shape[0] < R) return undefined;
  const m = L / G;
  if (m !== 1 && m % 4 !== 0) return undefined;
  const all = [g, features, ...weights, ...inputs.flat(), ...slopes.flat()];
  if (all.some((t) => t.dtype !== "float32")) return undefined;
  for (let k = 1; k < n; k++) {
    const w = weights[k];
    const [groups, h, h2] = w.shape;
    if (
      w.rank !== 3 || groups !== G || h % 4 !== 0 ||
      h2 !== (k === n - 1 ? m : weights[k + 1].shape[1])
    ) {
      return undefined;
    }
  }
  if (weights[0].shape[1] !== G * weights[1].shape[1]!) return undefined;
  const named: Record<string, tf.Tensor> = { g, features };
  for (let k = 1; k < n; k++) named[`w${k}`] = weights[k];
  for (let c = 0; c < G; c++) {
    if (inputs[c].length !== n - 1 || slopes[c].length !== n - 1) return undefined;
    for (let k = 1; k < n; k++) {
      const [input, slope] = [inputs[c][k - 1], slopes[c][k - 1]];
      const h = weights[k].shape[1]!;
      if (
        input.shape[0] < R || input.shape[1] !== h || slope.shape[0] < R || slope.shape[1] !== h
      ) {
        return undefined;
      }
      named[`input${c}_${k}`] = input;
      named[`slope${c}_${k - 1}`] = slope;
    }
  }
  const attrs = { layers: n, groups: G, shapes } as unknown as tf.NamedAttrMap;
  return tf.engine().runKernel(MLP_REVERSE_KERNEL, named, attrs) as tf.Tensor[];
}

const SUM_OF_SQUARES_KERNEL = "NeuralsvdSumOfSquares";

const SUM_OF_SQUARES_CONFIG: tf.KernelConfig = {
  kernelName: SUM_OF_SQUARES_KERNEL,
  backendName: "wasm",
  kernelFunc: (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput([], "float32");
    const state = stateFor(backend);
    const total = sizeOf(x.shape) === 0
      ? 0
      : state.simd.sumSquares(backend.dataIdMap.get(x.dataId).memoryOffset, sizeOf(x.shape));
    new Float32Array(state.memory.buffer, backend.dataIdMap.get(out.dataId).memoryOffset, 1)[0] =
      total;
    return out;
  },
};

/**
 * Σ x² of a float32 tensor in one pass (untaped: it has no gradient), a scalar; undefined where the
 * own WASM kernels are not in use. tfjs squares into a full-size tensor and then sums it: for the
 * canonical step's gradients (1.58M values) the gradient norm took 2.0 ms that way.
 */
export function simdSumOfSquares(x: tf.Tensor): tf.Scalar | undefined {
  if (originals.size === 0 || tf.getBackend() !== "wasm" || x.dtype !== "float32") return undefined;
  return tf.engine().runKernel(SUM_OF_SQUARES_KERNEL, { x }) as tf.Scalar;
}

/**
 * One EMA step of a tensor in one pass — shadow' = shadow·d + θ·(1 − d) — equal bit for bit to
 * tfjs's chain of three kernels, or undefined where the own WASM kernels are not in use.
 */
export function simdEma(
  inputs: { shadow: tf.Tensor; value: tf.Tensor },
  options: { decay: number },
): tf.Tensor | undefined {
  return fusedUpdate(EMA_KERNEL, inputs, options)?.[0];
}

/**
 * The Adam update of one tensor in one pass — m' = m·β₁ + g·(1 − β₁), v' = v·β₂ + g²·(1 − β₂),
 * p' = p − m'/(√(v'/c₂) + ε)·rate with rate = lr/c₁ — equal bit for bit to tfjs's chain of kernels;
 * [p', m', v'], or undefined where the own WASM kernels are not in use.
 */
export function simdAdam(
  inputs: { p: tf.Tensor; g: tf.Tensor; m: tf.Tensor; v: tf.Tensor },
  options: { beta1: number; beta2: number; c2: number; epsilon: number; rate: number },
): [tf.Tensor, tf.Tensor, tf.Tensor] | undefined {
  return fusedUpdate(ADAM_KERNEL, inputs, options) as
    | [tf.Tensor, tf.Tensor, tf.Tensor]
    | undefined;
}

function unaryKernelConfig(
  kernelName: UnaryKernelName,
  original: tf.KernelConfig,
): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype !== "float32") return original.kernelFunc(args) as tf.TensorInfo;
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(x.shape, "float32");
    const n = sizeOf(x.shape);
    if (n === 0) return out;
    const src = backend.dataIdMap.get(x.dataId).memoryOffset;
    const dst = backend.dataIdMap.get(out.dataId).memoryOffset;
    const { simd, memory } = stateFor(backend);
    if (kernelName === "Softplus") {
      simd.softplus(src, dst, n);
    } else if (!(kernelName === "Sin" ? simd.sin : simd.cos)(src, dst, n)) {
      const heap = new Float32Array(memory.buffer);
      const scalar = SCALAR[kernelName];
      for (let i = 0; i < n; i++) heap[dst / 4 + i] = scalar(heap[src / 4 + i]);
    }
    return out;
  };
  return { ...original, kernelFunc };
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The shapes of a matrix product `simdMatMulHandles` accepted. */
interface MatMulPlan {
  m: number;
  k: number;
  n: number;
  batch: number;
  batchA: number;
  batchB: number;
  outShape: number[];
}

function matMulPlan(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): MatMulPlan | undefined {
  if (aShape.length < 2 || aShape.length !== bShape.length) return undefined;
  const r = aShape.length;
  const m = transposeA ? aShape[r - 1] : aShape[r - 2];
  const k = transposeA ? aShape[r - 2] : aShape[r - 1];
  const n = transposeB ? bShape[r - 2] : bShape[r - 1];
  const kB = transposeB ? bShape[r - 1] : bShape[r - 2];
  // one column: a matrix-vector product (row-major A only, whose rows it reads as vectors; a
  // transposed one-column B is the same vector)
  const vector = n === 1 && !transposeA && k % 4 === 0;
  if (kB !== k || (n % 4 !== 0 && !vector) || m * k * n < MATMUL_MIN_WORK) return undefined;
  const batchShapeA = aShape.slice(0, r - 2), batchShapeB = bShape.slice(0, r - 2);
  const batchA = sizeOf(batchShapeA), batchB = sizeOf(batchShapeB);
  const same = batchShapeA.every((d, i) => d === batchShapeB[i]);
  if (!same && batchA !== 1 && batchB !== 1) return undefined;
  const batchShape = batchA >= batchB ? batchShapeA : batchShapeB;
  return {
    m,
    k,
    n,
    batch: Math.max(batchA, batchB),
    batchA,
    batchB,
    outShape: [...batchShape, m, n],
  };
}

/**
 * Smallest m·k·n the SIMD matrix product takes; smaller products stay with tfjs's kernel, where
 * the call overhead is about the same.
 */
const MATMUL_MIN_WORK = 4096;

/**
 * Whether the vectorised BatchMatMul kernel runs `a·b` (with tfjs's transpose flags) on the active
 * backend: the kernels are in use on wasm, both operands are float32 of equal rank (batch dimensions
 * equal, or one side's all 1), op(b) has a multiple of 4 columns (or one column, with a row-major
 * `a` of a multiple of 4 columns: a matrix-vector product), and m·k·n ≥ 4096. Either operand may be
 * transposed: the kernel reads a transposed A through strides and packs a transposed B by 4×4
 * transposes. Callers use it to pick a product with transpose flags over an explicit transpose,
 * which tfjs's own kernel runs 15–25× slower. (tfjs's threaded build keeps XNNPACK's
 * multi-threaded product, so there it is false.)
 */
export function simdMatMulHandles(
  aShape: readonly number[],
  bShape: readonly number[],
  options: { transposeA?: boolean; transposeB?: boolean } = {},
): boolean {
  return originals.size > 0 && tf.getBackend() === "wasm" &&
    !isThreaded(tf.backend() as unknown as WasmBackendLike) &&
    matMulPlan(aShape, bShape, options.transposeA ?? false, options.transposeB ?? false) !==
      undefined;
}

/**
 * Whether the backend is tfjs's threaded build (its memory is shared): there XNNPACK's matMul runs
 * on all its threads, so it keeps the product.
 */
function isThreaded(backend: WasmBackendLike): boolean {
  return typeof SharedArrayBuffer !== "undefined" &&
    stateFor(backend).memory.buffer instanceof SharedArrayBuffer;
}

function matMulKernelConfig(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const a = args.inputs.a as tf.TensorInfo, b = args.inputs.b as tf.TensorInfo;
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const backend = args.backend as unknown as WasmBackendLike;
    const plan = a.dtype === "float32" && b.dtype === "float32" && !isThreaded(backend)
      ? matMulPlan(a.shape, b.shape, transposeA, transposeB)
      : undefined;
    if (plan === undefined) return original.kernelFunc(args) as tf.TensorInfo;
    const { m, k, n } = plan;
    const out = backend.makeOutput(plan.outShape, "float32");
    if (m === 0 || n === 0) return out;
    const state = stateFor(backend);
    const pa = backend.dataIdMap.get(a.dataId).memoryOffset;
    const pb = backend.dataIdMap.get(b.dataId).memoryOffset;
    const pc = backend.dataIdMap.get(out.dataId).memoryOffset;
    if (n === 1) {
      for (let i = 0; i < plan.batch; i++) {
        state.gemm.matvec(
          pa + 4 * m * k * (plan.batchA === 1 ? 0 : i),
          pb + 4 * k * (plan.batchB === 1 ? 0 : i),
          pc + 4 * m * i,
          { m, k },
        );
      }
      return out;
    }
    const scratch = scratchFor(backend, state, 4 * (GEMM_MR + n) * k);
    const shape = transposeA
      ? { m, k, n, rowStride: 1, kStride: m, bTransposed: transposeB }
      : { m, k, n, rowStride: k, kStride: 1, bTransposed: transposeB };
    const packedA = plan.batch === 1 ? packedOperand(backend, state, a, shape) : undefined;
    for (let i = 0; i < plan.batch; i++) {
      state.gemm.matmul(
        pa + 4 * m * k * (plan.batchA === 1 ? 0 : i),
        pb + 4 * k * n * (plan.batchB === 1 ? 0 : i),
        pc + 4 * m * n * i,
        shape,
        scratch,
        { packedA },
      );
    }
    return out;
  };
  return { ...original, kernelFunc };
}

/** Element types the block copies move (4 bytes each). */
const FOUR_BYTE_DTYPES = new Set(["float32", "int32"]);

/**
 * Copies the block `begin`…`begin + size` of a row-major tensor of `shape` at byte offset `src` to
 * a dense tensor at `dst` (or, with `into`, the dense tensor at `dst` into that block of `src`): the
 * trailing axes the block spans whole are one contiguous run with the first partial axis before
 * them, and the runs along the axis before that are one strided `copyRows` call.
 */
function copyBlock(
  simd: SimdFunctions,
  src: number,
  shape: readonly number[],
  at: { begin: readonly number[]; size: readonly number[]; dst: number; into?: boolean },
): void {
  const { begin, size, into = false } = at;
  const rank = shape.length;
  let d = rank - 1; // the outermost axis of the contiguous run
  while (d > 0 && size[d] === shape[d]) d--;
  let run = 1;
  for (let i = d; i < rank; i++) run *= size[i];
  if (run === 0) return;
  const strides = Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  let offset = src;
  for (let i = 0; i < rank; i++) offset += 4 * begin[i] * strides[i];
  // axis d − 1 (if any) is the strided one; the axes before it are walked here
  const rows = d > 0 ? size[d - 1] : 1, stride = d > 0 ? 4 * strides[d - 1] : 0;
  const outer = size.slice(0, Math.max(0, d - 1)), index = Array<number>(outer.length).fill(0);
  let out = at.dst;
  for (;;) {
    let from = offset;
    for (let i = 0; i < outer.length; i++) from += 4 * index[i] * strides[i];
    const shapeOf = { rows, rowBytes: 4 * run };
    if (into) {
      simd.copyRows({ src: out, dst: from }, { ...shapeOf, srcStride: 4 * run, dstStride: stride });
    } else {simd.copyRows({ src: from, dst: out }, {
        ...shapeOf,
        srcStride: stride,
        dstStride: 4 * run,
      });}
    out += 4 * rows * run;
    let i = outer.length - 1;
    while (i >= 0 && ++index[i] === outer[i]) index[i--] = 0;
    if (i < 0) return;
  }
}

/** `Slice` as block copies (tfjs-wasm's walks the elements: ~0.5 ms for a 512×128 column block). */
function sliceKernelConfig(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!FOUR_BYTE_DTYPES.has(x.dtype)) return original.kernelFunc(args) as tf.TensorInfo;
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    tf.slice_util.assertParamsValid(x as tf.Tensor, begin_, size_);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(size_, x.dtype);
    if (sizeOf(size_) === 0) return out;
    copyBlock(stateFor(backend).simd, backend.dataIdMap.get(x.dataId).memoryOffset, x.shape, {
      begin: begin_,
      size: size_,
      dst: backend.dataIdMap.get(out.dataId).memoryOffset,
    });
    return out;
  };
  return { ...original, kernelFunc };
}

/** `SplitV` as one block copy per part (tfjs-wasm's took ~200 ms for 16 column blocks of 2560×2048). */
function splitKernelConfig(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!FOUR_BYTE_DTYPES.has(x.dtype)) return original.kernelFunc(args) as tf.TensorInfo[];
    const { numOrSizeSplits, axis } = args.attrs as {
      numOrSizeSplits: number | number[];
      axis: number;
    };
    const $axis = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
    const backend = args.backend as unknown as WasmBackendLike;
    const { simd } = stateFor(backend);
    const src = backend.dataIdMap.get(x.dataId).memoryOffset;
    const begin = x.shape.map(() => 0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[$axis] = s;
      const out = backend.makeOutput(size, x.dtype);
      const dst = backend.dataIdMap.get(out.dataId).memoryOffset;
      if (sizeOf(size) > 0) copyBlock(simd, src, x.shape, { begin, size, dst });
      begin[$axis] += s;
      return out;
    });
  };
  return { ...original, kernelFunc };
}

/** `Concat` as one block copy per input (tfjs-wasm's copies row by row in JavaScript). */
function concatKernelConfig(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const inputs = (args.inputs as unknown as tf.TensorInfo[]).filter((t) => sizeOf(t.shape) > 0);
    const dtype = inputs[0]?.dtype;
    if (
      inputs.length === 0 || !FOUR_BYTE_DTYPES.has(dtype) || inputs.some((t) => t.dtype !== dtype)
    ) return original.kernelFunc(args) as tf.TensorInfo;
    const { axis } = args.attrs as { axis: number };
    const $axis = tf.util.parseAxisParam(axis, inputs[0].shape)[0];
    const shape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), $axis);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(shape, dtype);
    const { simd } = stateFor(backend);
    const dst = backend.dataIdMap.get(out.dataId).memoryOffset;
    const begin = shape.map(() => 0);
    for (const t of inputs) {
      const from = backend.dataIdMap.get(t.dataId).memoryOffset;
      copyBlock(simd, dst, shape, { begin, size: t.shape, dst: from, into: true });
      begin[$axis] += t.shape[$axis];
    }
    return out;
  };
  return { ...original, kernelFunc };
}

/**
 * `Sum` over leading axes (a bias gradient's batch axis, the forward Laplacian's Σ_k over its
 * derivative blocks) as row additions; tfjs-wasm transposes such reductions first, ~15× slower.
 * Other reductions, and trailing sizes that are not a multiple of 4, go to tfjs's kernel.
 */
function sumKernelConfig(original: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.every((a, i) => a === i);
    const rows = sizeOf(x.shape.slice(0, axes.length));
    const cols = sizeOf(x.shape.slice(axes.length));
    if (x.dtype !== "float32" || !leading || rows === 0 || cols % 4 !== 0) {
      return original.kernelFunc(args) as tf.TensorInfo;
    }
    const backend = args.backend as unknown as WasmBackendLike;
    const shape = keepDims
      ? x.shape.map((d, i) => (i < axes.length ? 1 : d))
      : x.shape.slice(axes.length);
    const out = backend.makeOutput(shape, "float32");
    if (cols === 0) return out;
    stateFor(backend).simd.sumRows(
      backend.dataIdMap.get(x.dataId).memoryOffset,
      backend.dataIdMap.get(out.dataId).memoryOffset,
      rows,
      cols,
    );
    return out;
  };
  return { ...original, kernelFunc };
}

/**
 * Replaces (`enabled` true, the default state after {@linkcode initBackend}) or restores (`false`)
 * tfjs-wasm's Softplus, Sin and Cos kernels with the vectorised ones. Returns the previous state.
 *
 * @example Time the step with tfjs's own kernels, then switch back
 * ```ts
 * import { useSimdKernels } from "./wasm_kernels.ts";
 * const before = useSimdKernels(false);
 * useSimdKernels(before);
 * ```
 */
export function useSimdKernels(enabled: boolean): boolean {
  const active = originals.size > 0;
  if (enabled === active) return active;
  for (
    const config of [
      ...OPTIMIZER_KERNELS,
      SOFTPLUS_JET_CONFIG,
      BIAS_SOFTPLUS_CONFIG,
      LINEAR_SOFTPLUS_CONFIG,
      MLP_REVERSE_CONFIG,
      SUM_OF_SQUARES_CONFIG,
    ]
  ) {
    if (tf.getKernel(config.kernelName, "wasm") === undefined) tf.registerKernel(config);
  }
  for (const kernelName of SIMD_KERNEL_NAMES) {
    const current = tf.getKernel(kernelName, "wasm");
    if (current === undefined) continue;
    tf.unregisterKernel(kernelName, "wasm");
    if (enabled) {
      originals.set(kernelName, current);
      tf.registerKernel(
        kernelName === "BatchMatMul"
          ? matMulKernelConfig(current)
          : kernelName === "Slice"
          ? sliceKernelConfig(current)
          : kernelName === "SplitV"
          ? splitKernelConfig(current)
          : kernelName === "Concat"
          ? concatKernelConfig(current)
          : kernelName === "Sum"
          ? sumKernelConfig(current)
          : unaryKernelConfig(kernelName, current),
      );
    } else {
      tf.registerKernel(originals.get(kernelName)!);
    }
  }
  if (!enabled) originals.clear();
  return active;
}
