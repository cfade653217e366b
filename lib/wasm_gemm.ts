/**
 * A WebAssembly SIMD matrix product C = A·B (float32, row-major), built at run time with
 * {@linkcode encodeModule} on a given linear memory. It uses relaxed SIMD's fused multiply-add where
 * the engine has it (V8 in Deno 2.x does), which XNNPACK's build inside tfjs-wasm 4.22 predates.
 *
 * Layout: A's rows are packed MR (five) at a time into a contiguous [K][MR] panel (`packA`), B into
 * 8-column panels (`packB`), then one call of `gemm<mr>` computes C's mr rows across all N columns,
 * 8 at a time.
 * A may be transposed (it is read through strides while packing); N must be a multiple of 4 (four
 * columns left over from the 8-column panels take a half-width kernel).
 *
 * @module
 */
import {
  addTo,
  encodeModule,
  Op,
  subtractFrom,
  type ValueType,
  type WasmFunction,
  whileLoop,
} from "./wasm_encoder.ts";

/** Rows of C one microkernel call computes (the largest variant). */
export const GEMM_MR = 5;
/** Columns of C per inner block: two 4-lane vectors. */
export const GEMM_NR = 8;

const get = Op.localGet;
const set = Op.localSet;

/** `f32x4.relaxed_madd` (a·b + c, fused where the hardware has FMA). */
const RELAXED_MADD = Op.f32x4RelaxedMadd;

/** Whether this engine validates relaxed SIMD's f32x4.relaxed_madd. */
export function hasRelaxedSimd(): boolean {
  const bytes = encodeModule({ shared: false }, [{
    name: "f",
    params: [],
    results: [],
    locals: ["v128"],
    body: [...get(0), ...get(0), ...get(0), ...RELAXED_MADD, ...set(0)],
  }]);
  return WebAssembly.validate(bytes as BufferSource);
}

/**
 * `packA(src, dst, mr, K, rowStride, kStride)`: copies A[r, k] (at src + r·rowStride + k·kStride
 * bytes) for r < mr, k < K into dst as [K][mr] floats.
 */
function packAFunction(): WasmFunction {
  const [SRC, DST, MR, K, RS, KS, KK, R, P] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  return {
    name: "packA",
    params: ["i32", "i32", "i32", "i32", "i32", "i32"],
    results: [],
    locals: ["i32", "i32", "i32"],
    body: [
      ...Op.i32Const(0),
      ...set(KK),
      ...whileLoop([
        ...get(KK),
        ...get(K),
        ...Op.i32GeU,
      ], [
        ...get(SRC),
        ...set(P),
        ...Op.i32Const(0),
        ...set(R),
        ...whileLoop([
          ...get(R),
          ...get(MR),
          ...Op.i32GeU,
        ], [
          ...get(DST),
          ...get(P),
          ...Op.f32Load(),
          ...Op.f32Store(),
          ...addTo(DST, Op.i32Const(4)),
          ...addTo(P, get(RS)),
          ...addTo(R, Op.i32Const(1)),
        ]),
        ...addTo(SRC, get(KS)),
        ...addTo(KK, Op.i32Const(1)),
      ]),
    ],
  };
}

/**
 * A 4×4 transpose of the vectors in locals `rows` (row r's four values): `store(q, column)` gets
 * code pushing column q, [rows[0][q], rows[1][q], rows[2][q], rows[3][q]], and returns code that
 * consumes it. Overwrites `rows` and the two locals `tmp`.
 */
function transpose4(
  rows: [number, number, number, number],
  tmp: [number, number],
  store: (q: number, column: number[]) => number[],
): number[] {
  const [R0, R1, R2, R3] = rows, [T0, T1] = tmp;
  const shuffle = (a: number, b: number, lanes: number[]) => [
    ...get(a),
    ...get(b),
    ...Op.f32x4Shuffle(lanes),
  ];
  return [
    // rows a, b, c, d → [a0 b0 a1 b1], [a2 b2 a3 b3], [c0 d0 c1 d1], [c2 d2 c3 d3] → columns
    ...shuffle(R0, R1, [0, 4, 1, 5]),
    ...set(T0),
    ...shuffle(R0, R1, [2, 6, 3, 7]),
    ...set(T1),
    ...shuffle(R2, R3, [0, 4, 1, 5]),
    ...set(R0),
    ...shuffle(R2, R3, [2, 6, 3, 7]),
    ...set(R1),
    ...store(0, shuffle(T0, R0, [0, 1, 4, 5])),
    ...store(1, shuffle(T0, R0, [2, 3, 6, 7])),
    ...store(2, shuffle(T1, R1, [0, 1, 4, 5])),
    ...store(3, shuffle(T1, R1, [2, 3, 6, 7])),
  ];
}

/**
 * `packA<mr>Rows(src, dst, K4, rowStride)` for mr = 4 or 5: packA for mr rows of a row-major A (k
 * stride one float) and K4 (a multiple of 4) steps, four k at a time: the first four rows as four
 * vector loads, a 4×4 transpose by shuffles and four vector stores (4·mr bytes apart), a fifth
 * row's four values stored one by one.
 */
function packARowsFunction(mr: 4 | 5): WasmFunction {
  const [SRC, DST, K4, RS, KK, P1, P2, P3] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [R0, R1, R2, R3, T0, T1] = [8, 9, 10, 11, 12, 13];
  const row = (p: number, r: number) => [...get(p), ...Op.v128Load(0), ...set(r)];
  const step = 4 * mr; // bytes per k step in the panel
  const fifth: number[] = [];
  if (mr === 5) {
    // row 4 = row 3's pointer plus a row; its four values to offsets 16, 16 + step, …
    fifth.push(...get(P3), ...get(RS), ...Op.i32Add, ...Op.v128Load(0), ...set(T0));
    for (let q = 0; q < 4; q++) {
      fifth.push(...get(DST), ...get(T0), ...Op.f32x4ExtractLane(q), ...Op.f32Store(16 + q * step));
    }
  }
  return {
    name: `packA${mr}Rows`,
    params: ["i32", "i32", "i32", "i32"],
    results: [],
    locals: [...Array<ValueType>(4).fill("i32"), ...Array<ValueType>(6).fill("v128")],
    body: [
      ...Op.i32Const(0),
      ...set(KK),
      ...whileLoop([...get(KK), ...get(K4), ...Op.i32GeU], [
        ...get(SRC),
        ...get(RS),
        ...Op.i32Add,
        ...set(P1),
        ...get(P1),
        ...get(RS),
        ...Op.i32Add,
        ...set(P2),
        ...get(P2),
        ...get(RS),
        ...Op.i32Add,
        ...set(P3),
        ...row(SRC, R0),
        ...row(P1, R1),
        ...row(P2, R2),
        ...row(P3, R3),
        ...transpose4([R0, R1, R2, R3], [T0, T1], (q, column) => [
          ...get(DST),
          ...column,
          ...Op.v128Store(q * step),
        ]),
        ...fifth,
        ...addTo(DST, Op.i32Const(4 * step)),
        ...addTo(SRC, Op.i32Const(16)),
        ...addTo(KK, Op.i32Const(4)),
      ]),
    ],
  };
}

/**
 * `packA<mr>Columns(src, dst, K, kStride)` for mr = 4 or 5: packA for mr rows of a transposed A
 * (the values of a k step adjacent, k steps `kStride` bytes apart): a vector copy per k, and a
 * float for a fifth row.
 */
function packAColumnsFunction(mr: 4 | 5): WasmFunction {
  const [SRC, DST, K, KS] = [0, 1, 2, 3];
  return {
    name: `packA${mr}Columns`,
    params: ["i32", "i32", "i32", "i32"],
    results: [],
    locals: [],
    body: [
      ...whileLoop([...get(K), ...Op.i32Eqz], [
        ...get(DST),
        ...get(SRC),
        ...Op.v128Load(0),
        ...Op.v128Store(0),
        ...(mr === 5 ? [...get(DST), ...get(SRC), ...Op.f32Load(16), ...Op.f32Store(16)] : []),
        ...addTo(DST, Op.i32Const(4 * mr)),
        ...addTo(SRC, get(KS)),
        ...subtractFrom(K, Op.i32Const(1)),
      ]),
    ],
  };
}

/**
 * `packBTransposed<half>(src, dst, K, N, rowBytes)`: packB for a B stored transposed (N rows of K
 * floats, `rowBytes` apart: B[k, j] is row j's k-th value): the panels `packB` (or `packBHalf`)
 * makes, built four k at a time by 4×4 transposes of four rows' vectors, the last K % 4 steps one
 * float at a time.
 */
function packBTransposedFunction(halves: 1 | 2): WasmFunction {
  const [SRC, DST, K, N, LDB, P, KK, S, D, C, K4] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [R0, R1, R2, R3, T0, T1] = [11, 12, 13, 14, 15, 16];
  const width = 16 * halves; // bytes of a panel row
  const rowsOf = (h: number) =>
    [R0, R1, R2, R3].flatMap((r, c) => [
      ...get(S),
      ...get(LDB),
      ...Op.i32Const(4 * h + c),
      ...Op.i32Mul,
      ...Op.i32Add,
      ...get(KK),
      ...Op.i32Const(2),
      ...Op.i32Shl,
      ...Op.i32Add,
      ...Op.v128Load(0),
      ...set(r),
    ]);
  // dst row of k step KK + q in this panel: D + (KK + q)·width
  const storeAt = (h: number) => (q: number, column: number[]) => [
    ...get(D),
    ...get(KK),
    ...Op.i32Const(width),
    ...Op.i32Mul,
    ...Op.i32Add,
    ...column,
    ...Op.v128Store(q * width + 16 * h),
  ];
  return {
    name: halves === 2 ? "packBTransposed" : "packBTransposedHalf",
    params: ["i32", "i32", "i32", "i32", "i32"],
    results: [],
    locals: [...Array<ValueType>(6).fill("i32"), ...Array<ValueType>(6).fill("v128")],
    body: [
      ...get(K),
      ...get(K),
      ...Op.i32Const(3),
      ...Op.i32And,
      ...Op.i32Sub,
      ...set(K4),
      // for (p = 0; p < N; p += 4·halves): one panel, rows p … of the stored matrix
      ...Op.i32Const(0),
      ...set(P),
      ...whileLoop([...get(P), ...get(N), ...Op.i32GeU], [
        ...get(SRC),
        ...get(P),
        ...get(LDB),
        ...Op.i32Mul,
        ...Op.i32Add,
        ...set(S),
        ...get(DST),
        ...get(P),
        ...get(K),
        ...Op.i32Mul,
        ...Op.i32Const(2),
        ...Op.i32Shl,
        ...Op.i32Add,
        ...set(D),
        ...Op.i32Const(0),
        ...set(KK),
        ...whileLoop([...get(KK), ...get(K4), ...Op.i32GeU], [
          ...Array.from({ length: halves }, (_, h) => [
            ...rowsOf(h),
            ...transpose4([R0, R1, R2, R3], [T0, T1], storeAt(h)),
          ]).flat(),
          ...addTo(KK, Op.i32Const(4)),
        ]),
        // the last K % 4 steps: one float per column
        ...whileLoop([...get(KK), ...get(K), ...Op.i32GeU], [
          ...Op.i32Const(0),
          ...set(C),
          ...whileLoop([...get(C), ...Op.i32Const(4 * halves), ...Op.i32GeU], [
            ...get(D),
            ...get(KK),
            ...Op.i32Const(width),
            ...Op.i32Mul,
            ...Op.i32Add,
            ...get(C),
            ...Op.i32Const(2),
            ...Op.i32Shl,
            ...Op.i32Add,
            ...get(S),
            ...get(C),
            ...get(LDB),
            ...Op.i32Mul,
            ...Op.i32Add,
            ...get(KK),
            ...Op.i32Const(2),
            ...Op.i32Shl,
            ...Op.i32Add,
            ...Op.f32Load(0),
            ...Op.f32Store(0),
            ...addTo(C, Op.i32Const(1)),
          ]),
          ...addTo(KK, Op.i32Const(1)),
        ]),
        ...addTo(P, Op.i32Const(4 * halves)),
      ]),
    ],
  };
}

/**
 * `packB(src, dst, K, N, rowBytes)`: copies the first N columns (N % 8 = 0) of row-major B (K rows
 * `rowBytes` apart at src) into dst as N/8 panels of [K][8] floats, so the kernels read B at
 * constant offsets; `packBHalf(src, dst, K, 4, rowBytes)` copies four columns as one [K][4] panel.
 */
function packBFunction(halves: 1 | 2): WasmFunction {
  const [SRC, DST, K, N, LDB, P, KK, S] = [0, 1, 2, 3, 4, 5, 6, 7];
  const width = 16 * halves; // bytes of a panel row
  const copy = Array.from({ length: halves }, (_, h) => [
    ...get(DST),
    ...get(S),
    ...Op.v128Load(16 * h),
    ...Op.v128Store(16 * h),
  ]).flat();
  return {
    name: halves === 2 ? "packB" : "packBHalf",
    params: ["i32", "i32", "i32", "i32", "i32"],
    results: [],
    locals: ["i32", "i32", "i32"],
    body: [
      // for (p = 0; p < 4N; p += width): for (k = 0; k < K; k++) copy a panel row
      ...Op.i32Const(0),
      ...set(P),
      ...whileLoop([
        ...get(P),
        ...get(N),
        ...Op.i32Const(2),
        ...Op.i32Shl,
        ...Op.i32GeU,
      ], [
        ...get(SRC),
        ...get(P),
        ...Op.i32Add,
        ...set(S),
        ...get(K),
        ...set(KK),
        ...whileLoop([
          ...get(KK),
          ...Op.i32Eqz,
        ], [
          ...copy,
          ...addTo(DST, Op.i32Const(width)),
          ...addTo(S, get(LDB)),
          ...subtractFrom(KK, Op.i32Const(1)),
        ]),
        ...addTo(P, Op.i32Const(width)),
      ]),
    ],
  };
}

/**
 * k steps per iteration of the microkernels' main loop (the rest go one at a time): 8 measured
 * ~5% faster than 4 and ~10% faster than 2 (and than 16).
 *
 * Five rows: A's first four values of a k step as one vector load, the fifth as a broadcast load.
 * V8 in Deno guards every WebAssembly memory access with an explicit bounds check (the kernel
 * alone ran at 57.6 GFLOP/s under `--no-wasm-bounds-checks`, 41.9 with the checks), so the kernel
 * is built to load as little as it can: 4 loads per 10 multiply-adds, where six rows of broadcast
 * loads took 14 per 12 (41.9 GFLOP/s, their best row count). The four rows are not broadcast lane
 * by lane but rotated (A's vector itself and three rotations: 3 shuffles per k step instead of 4),
 * which leaves C skewed in the accumulators until the store. Ten accumulators rather than eight
 * keep more multiply-adds in flight (four cycles of latency, two per cycle): kernel alone, K =
 * 512, N = 128, one core, quiet host: 55.2 GFLOP/s against 51.5 for the same four rotated rows
 * alone (49.0 with four broadcasts), against a register-only peak of 58.7; whole 2560×512·512×128
 * products 47 → 51.5. It is the widest tile that fits: 10 accumulators, 2 B vectors, A's vector,
 * a rotation and the fifth row's broadcast are 15 vector registers, all x64 gives V8 (16, one kept
 * as scratch); twelve columns or six shuffled rows spill (27 GFLOP/s).
 */
const K_UNROLL = 8;

/**
 * `gemm<mr>(a, b, c, K, N, ldc)`: C[r, j] = Σ_k A[k][r]·B[k, j] for r < mr, j < N, with A a packed
 * [K][mr] panel, B packed by `packB`, C's row r at c + r·ldc bytes; N % 8 = 0. With `halves` 1,
 * `gemm<mr>Half` does the same for four columns (N = 4) of B packed by `packBHalf`.
 */
function gemmFunction(mr: number, fma: boolean, halves: 1 | 2 = 2): WasmFunction {
  const [A, B, C, K, N, LDC] = [0, 1, 2, 3, 4, 5];
  const [J, PA, PB, KK, PC] = [6, 7, 8, 9, 10];
  const B0 = 11, B1 = 12;
  const acc = (r: number, h: number) => 13 + 2 * r + h;
  const AV = 13 + 2 * mr, SPLAT = AV + 1;
  const pair = (r: number) => SPLAT + 1 + r;
  const FIFTH = SPLAT + 5;
  const rotated = mr >= 4;
  const locals: ValueType[] = [
    ...Array<ValueType>(5).fill("i32"),
    ...Array<ValueType>(9 + 2 * mr).fill("v128"),
  ];
  const madd = (r: number, h: number) =>
    fma ? [...get(h === 0 ? B0 : B1), ...get(acc(r, h)), ...RELAXED_MADD, ...set(acc(r, h))] : [
      ...get(h === 0 ? B0 : B1),
      ...Op.f32x4Mul,
      ...get(acc(r, h)),
      ...Op.f32x4Add,
      ...set(acc(r, h)),
    ];
  const bRow = 16 * halves; // bytes of packed B per k step
  /** Row r's multiply-adds for each half of the columns with the vector on the stack's local. */
  const madds = (v: number, r: number) =>
    Array.from({ length: halves }, (_, h) => [...get(v), ...madd(r, h)]).flat();
  /** One k step at constant offsets u steps past PA and PB. */
  const kStep = (u: number) => {
    const out = Array.from({ length: halves }, (_, h) => [
      ...get(PB),
      ...Op.v128Load(bRow * u + 16 * h),
      ...set(h === 0 ? B0 : B1),
    ]).flat();
    if (rotated) {
      // one load of A[k][0..3] and its three rotations: accumulator s holds, in lane j, the
      // products of row (j + s) mod 4 (unskewed when stored)
      out.push(...get(PA), ...Op.v128Load(4 * mr * u), ...set(AV), ...madds(AV, 0));
      for (let r = 1; r < 4; r++) {
        const lanes = [0, 1, 2, 3].map((j) => (j + r) % 4);
        out.push(...get(AV), ...get(AV), ...Op.f32x4Shuffle(lanes), ...set(SPLAT));
        out.push(...madds(SPLAT, r));
      }
      if (mr === 5) {
        // the fifth row by a broadcast load (its own register: 15 vectors live in all)
        out.push(...get(PA), ...Op.v128Load32Splat(4 * mr * u + 16), ...set(FIFTH));
        out.push(...madds(FIFTH, 4));
      }
      return out;
    }
    for (let r = 0; r < mr; r++) {
      const splat = [...get(PA), ...Op.v128Load32Splat(4 * (mr * u + r))];
      // re-loading the splat measured as fast as keeping it in a local
      out.push(...splat, ...madd(r, 0), ...splat, ...madd(r, 1));
    }
    return out;
  };
  /** A loop doing `steps` k steps per iteration while at least `steps` remain. */
  const kLoop = (steps: number) => [
    ...whileLoop([
      ...get(KK),
      ...Op.i32Const(steps),
      ...Op.i32LtU,
    ], [
      ...Array.from({ length: steps }, (_, u) => kStep(u)).flat(),
      ...addTo(PA, Op.i32Const(4 * mr * steps)),
      ...addTo(PB, Op.i32Const(bRow * steps)),
      ...subtractFrom(KK, Op.i32Const(steps)),
    ]),
  ];
  const zero: number[] = [];
  for (let r = 0; r < mr; r++) {
    for (let h = 0; h < halves; h++) zero.push(...Op.i32x4Const(0), ...set(acc(r, h)));
  }
  const store: number[] = [...get(C), ...get(J), ...Op.i32Add, ...set(PC)];
  const rowOf = (r: number, h: number): number[] => {
    if (!rotated) return get(acc(r, h));
    // row r, lane j is lane j of accumulator (r − j) mod 4
    const p = pair((r + 3) % 4);
    return [...get(pair(r)), ...get(p), ...Op.f32x4Shuffle([0, 5, 2, 7])];
  };
  for (let h = 0; h < halves && rotated; h++) {
    // pair r: lanes 0, 1 of accumulator r and lanes 2, 3 of accumulator r + 2
    for (let r = 0; r < 4; r++) {
      store.push(...get(acc(r, h)), ...get(acc((r + 2) % 4, h)), ...Op.f32x4Shuffle([0, 1, 6, 7]));
      store.push(...set(pair(r)));
    }
    for (let r = 0; r < 4; r++) store.push(...rowOf(r, h), ...set(acc(r, h)));
  }
  for (let r = 0; r < mr; r++) {
    for (let h = 0; h < halves; h++) {
      store.push(...get(PC), ...get(acc(r, h)), ...Op.v128Store(16 * h));
    }
    if (r < mr - 1) store.push(...get(PC), ...get(LDC), ...Op.i32Add, ...set(PC));
  }
  return {
    name: halves === 2 ? `gemm${mr}` : `gemm${mr}Half`,
    params: ["i32", "i32", "i32", "i32", "i32", "i32"],
    results: [],
    locals,
    body: [
      // for (j = 0, PB = b; j < 4N; j += 32): one 8-column panel of C
      ...Op.i32Const(0),
      ...set(J),
      ...get(B),
      ...set(PB),
      ...whileLoop([
        ...get(J),
        ...get(N),
        ...Op.i32Const(2),
        ...Op.i32Shl,
        ...Op.i32GeU,
      ], [
        ...zero,
        ...get(A),
        ...set(PA),
        ...get(K),
        ...set(KK),
        ...kLoop(K_UNROLL),
        ...kLoop(1),
        ...store,
        ...addTo(J, Op.i32Const(bRow)),
      ]),
    ],
  };
}

/**
 * `matvec(a, b, c, M, K)`: c[r] = Σ_k A[r, k]·b[k] for a row-major M×K matrix A at `a` and a vector
 * of K floats at `b` (K % 4 = 0): four rows at a time share each load of b, and their four
 * accumulators are reduced by a 4×4 transpose-add into one store.
 */
function matvecFunction(fma: boolean): WasmFunction {
  const [A, B, C, M, K] = [0, 1, 2, 3, 4];
  const [I, KK, P, KB] = [5, 6, 7, 8];
  const [BV, T0, T1] = [9, 10, 11];
  const ACC = (r: number) => 12 + r;
  const madd = (r: number, offset: number) => [
    ...get(P),
    ...Op.v128Load(offset),
    ...get(BV),
    ...(fma ? [...get(ACC(r)), ...RELAXED_MADD] : [...Op.f32x4Mul, ...get(ACC(r)), ...Op.f32x4Add]),
    ...set(ACC(r)),
  ];
  /** The loop over k for `rows` rows starting at P (rows KB bytes apart). */
  const kLoop = (rows: number) => [
    ...Array.from({ length: rows }, (_, r) => [...Op.i32x4Const(0), ...set(ACC(r))]).flat(),
    ...Op.i32Const(0),
    ...set(KK),
    ...whileLoop([...get(KK), ...get(KB), ...Op.i32GeU], [
      ...get(B),
      ...get(KK),
      ...Op.i32Add,
      ...Op.v128Load(0),
      ...set(BV),
      ...Array.from({ length: rows }, (_, r) => [
        ...(r === 0 ? [] : [...get(P), ...get(KB), ...Op.i32Add, ...set(P)]),
        ...madd(r, 0),
      ]).flat(),
      // back to row 0, one vector on
      ...get(P),
      ...get(KB),
      ...Op.i32Const(rows - 1),
      ...Op.i32Mul,
      ...Op.i32Sub,
      ...Op.i32Const(16),
      ...Op.i32Add,
      ...set(P),
      ...addTo(KK, Op.i32Const(16)),
    ]),
  ];
  const shuffleAdd = (x: number, y: number, lo: number[], hi: number[]) => [
    ...get(x),
    ...get(y),
    ...Op.f32x4Shuffle(lo),
    ...get(x),
    ...get(y),
    ...Op.f32x4Shuffle(hi),
    ...Op.f32x4Add,
  ];
  /** P = row I of A; the output address c + 4I on the stack; I += rows. */
  const rowStart = [...get(A), ...get(I), ...get(KB), ...Op.i32Mul, ...Op.i32Add, ...set(P)];
  const output = [...get(C), ...get(I), ...Op.i32Const(2), ...Op.i32Shl, ...Op.i32Add];
  const advance = (rows: number) => [...get(I), ...Op.i32Const(rows), ...Op.i32Add, ...set(I)];
  return {
    name: "matvec",
    params: ["i32", "i32", "i32", "i32", "i32"],
    results: [],
    locals: [...Array<ValueType>(4).fill("i32"), ...Array<ValueType>(7).fill("v128")],
    body: [
      ...get(K),
      ...Op.i32Const(2),
      ...Op.i32Shl,
      ...set(KB),
      ...Op.i32Const(0),
      ...set(I),
      // four rows at a time
      ...whileLoop([...get(I), ...Op.i32Const(4), ...Op.i32Add, ...get(M), ...Op.i32GtU], [
        ...rowStart,
        ...kLoop(4),
        // [Σ row 0, Σ row 1, Σ row 2, Σ row 3] by two rounds of pairwise shuffles and adds
        ...shuffleAdd(ACC(0), ACC(1), [0, 4, 1, 5], [2, 6, 3, 7]),
        ...set(T0),
        ...shuffleAdd(ACC(2), ACC(3), [0, 4, 1, 5], [2, 6, 3, 7]),
        ...set(T1),
        ...output,
        ...shuffleAdd(T0, T1, [0, 1, 4, 5], [2, 3, 6, 7]),
        ...Op.v128Store(0),
        ...advance(4),
      ]),
      // the last rows one at a time
      ...whileLoop([...get(I), ...get(M), ...Op.i32GeU], [
        ...rowStart,
        ...kLoop(1),
        ...shuffleAdd(ACC(0), ACC(0), [0, 1, 2, 3], [2, 3, 0, 1]),
        ...set(T0),
        ...output,
        ...shuffleAdd(T0, T0, [0, 1, 2, 3], [1, 0, 3, 2]),
        ...Op.f32x4ExtractLane(0),
        ...Op.f32Store(0),
        ...advance(1),
      ]),
    ],
  };
}

/** The matrix-product functions, instantiated on one linear memory. */
export interface GemmFunctions {
  /** Whether the products use fused multiply-adds (relaxed SIMD). */
  fma: boolean;
  /**
   * C = A·B for one matrix: A is M×K read at byte offset `a` with element strides (in floats)
   * `rowStride` and `kStride` (K and 1 row-major, 1 and M when A is stored transposed), B is K×N
   * row-major at `b` (or stored transposed, N×K, with `bTransposed`), C is M×N row-major at `c`; `scratch` holds at least (5 + N)·K floats.
   * N % 4 = 0. `options.panel(row, rows)`, if given, runs after each row panel of C (rows row …
   * row + rows − 1, at most five) is final, while it is still in cache; with `options.packedA` (A
   * packed by `packA` there) A is not read or packed again.
   */
  matmul(
    a: number,
    b: number,
    c: number,
    shape: {
      m: number;
      k: number;
      n: number;
      rowStride: number;
      kStride: number;
      bTransposed?: boolean;
    },
    scratch: number,
    options?: {
      panel?: (row: number, rows: number) => void;
      packedA?: number;
    },
  ): void;
  /**
   * Packs all of A (M×K at byte offset `a`, strides as in `matmul`) into M·K floats at `dst` for
   * `matmul`'s `packedA`: a matrix multiplied by several others is packed once.
   */
  packA(
    a: number,
    dst: number,
    shape: { m: number; k: number; rowStride: number; kStride: number },
  ): void;
  /**
   * c = A·b for a row-major M×K matrix A at byte offset `a` and a vector b of K floats at `b`
   * (K % 4 = 0), into M floats at `c`.
   */
  matvec(a: number, b: number, c: number, shape: { m: number; k: number }): void;
}

/**
 * Instantiates the matrix product on `memory`, with fused multiply-adds where the engine has relaxed
 * SIMD unless `options.fma` is false (separate multiply and add: the only choice elsewhere).
 *
 * @example A 2×3 by 3×8 product in a fresh memory
 * ```ts
 * import { gemmFunctions } from "./wasm_gemm.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4, 5, 6]); // A at 0
 * f.set(Array.from({ length: 24 }, (_, i) => i), 8); // B at byte 32
 * gemmFunctions(memory).matmul(0, 32, 256, { m: 2, k: 3, n: 8, rowStride: 3, kStride: 1 }, 512);
 * console.log(f[64], f[72]); // 64 (= 1·0 + 2·8 + 3·16) and 136
 * ```
 */
export function gemmFunctions(
  memory: WebAssembly.Memory,
  options: { fma?: boolean } = {},
): GemmFunctions {
  const shared = typeof SharedArrayBuffer !== "undefined" &&
    memory.buffer instanceof SharedArrayBuffer;
  const fma = (options.fma ?? true) && hasRelaxedSimd();
  const functions = [
    packAFunction(),
    packARowsFunction(4),
    packARowsFunction(5),
    packAColumnsFunction(4),
    packAColumnsFunction(5),
    packBFunction(2),
    packBFunction(1),
    packBTransposedFunction(2),
    packBTransposedFunction(1),
    matvecFunction(fma),
  ];
  for (let mr = 1; mr <= GEMM_MR; mr++) {
    functions.push(gemmFunction(mr, fma), gemmFunction(mr, fma, 1));
  }
  const bytes = encodeModule(
    shared ? { shared: true, maximumPages: 65536 } : { shared: false },
    functions,
  );
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource), {
    env: { memory },
  });
  const ex = instance.exports as Record<string, (...args: number[]) => void>;
  const kernels = Array.from({ length: GEMM_MR + 1 }, (_, mr) => ex[`gemm${mr}`]);
  const halfKernels = Array.from({ length: GEMM_MR + 1 }, (_, mr) => ex[`gemm${mr}Half`]);
  const packColumns = Array.from({ length: GEMM_MR + 1 }, (_, mr) => ex[`packA${mr}Columns`]);
  const packRows = Array.from({ length: GEMM_MR + 1 }, (_, mr) => ex[`packA${mr}Rows`]);
  /**
   * A's rows src… (mr of them) as one [K][mr] panel at dst. Called once per five rows of every
   * product, so plain numbers (an options object per call cost more than the packing of a small
   * panel) and the packing functions looked up once.
   */
  const packPanel = (
    src: number,
    dst: number,
    mr: number,
    k: number,
    rowStride: number,
    kStride: number,
  ) => {
    const k4 = k - (k % 4);
    if (mr >= 4 && rowStride === 1) {
      packColumns[mr](src, dst, k, 4 * kStride);
    } else if (mr >= 4 && kStride === 1) {
      packRows[mr](src, dst, k4, 4 * rowStride);
      if (k4 < k) ex.packA(src + 4 * k4, dst + 4 * mr * k4, mr, k - k4, 4 * rowStride, 4);
    } else {
      ex.packA(src, dst, mr, k, 4 * rowStride, 4 * kStride);
    }
  };
  return {
    fma,
    matvec(a, b, c, { m, k }) {
      if (k % 4 !== 0) throw new RangeError(`Invalid length ${k}: must be a multiple of 4`);
      ex.matvec(a, b, c, m, k);
    },
    packA(a, dst, { m, k, rowStride, kStride }) {
      for (let i = 0; i < m; i += GEMM_MR) {
        packPanel(
          a + 4 * i * rowStride,
          dst + 4 * i * k,
          Math.min(GEMM_MR, m - i),
          k,
          rowStride,
          kStride,
        );
      }
    },
    matmul(a, b, c, { m, k, n, rowStride, kStride, bTransposed = false }, scratch, options = {}) {
      if (n % 4 !== 0) {
        throw new RangeError(`Invalid column count ${n}: must be a multiple of 4`);
      }
      // 8-column panels, then four columns left over as one half panel
      const full = n - (n % GEMM_NR), half = n - full;
      const packedB = scratch + 4 * GEMM_MR * k, packedHalf = packedB + 4 * k * full;
      if (bTransposed) {
        // B's columns are rows of k floats
        ex.packBTransposed(b, packedB, k, full, 4 * k);
        if (half > 0) ex.packBTransposedHalf(b + 4 * k * full, packedHalf, k, half, 4 * k);
      } else {
        ex.packB(b, packedB, k, full, 4 * n);
        if (half > 0) ex.packBHalf(b + 4 * full, packedHalf, k, half, 4 * n);
      }
      const { panel, packedA } = options;
      for (let i = 0; i < m; i += GEMM_MR) {
        const mr = Math.min(GEMM_MR, m - i);
        if (packedA === undefined) {
          packPanel(a + 4 * i * rowStride, scratch, mr, k, rowStride, kStride);
        }
        const pa = packedA === undefined ? scratch : packedA + 4 * i * k;
        if (full > 0) kernels[mr](pa, packedB, c + 4 * i * n, k, full, 4 * n);
        if (half > 0) halfKernels[mr](pa, packedHalf, c + 4 * (i * n + full), k, half, 4 * n);
        panel?.(i, mr);
      }
    },
  };
}
