/**
 * A minimal WebAssembly binary encoder: enough to build small SIMD kernels at run time (one module,
 * an imported linear memory, exported functions over i32/f32/v128 locals). Building the bytes from
 * TypeScript keeps the kernels' source readable and reviewable, and a script run from a URL needs no
 * extra file or read permission for them.
 *
 * Instructions are plain byte arrays ({@linkcode Op}); {@linkcode encodeModule} wraps function bodies
 * into a module. Opcodes follow the WebAssembly 2.0 core specification (SIMD prefix 0xFD).
 *
 * @module
 */

/** A value type of the encoder: 32-bit integer, 32-bit float or 128-bit vector. */
export type ValueType = "i32" | "f32" | "v128";

const VALUE_TYPE_CODE: Record<ValueType, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b };

/** One function of a module built by {@linkcode encodeModule}. */
export interface WasmFunction {
  /** Export name. */
  name: string;
  /** Parameter types; parameters are locals 0…params.length−1. */
  params: ValueType[];
  /** Result types (at most one used here). */
  results: ValueType[];
  /** Types of the further locals, numbered after the parameters. */
  locals: ValueType[];
  /** The body's instructions, without the final `end`. */
  body: number[];
}

/** The linear memory a module imports as `env.memory`. */
export interface ImportedMemory {
  /** Whether the memory is shared (a threaded build's); shared memories need a maximum. */
  shared: boolean;
  /** Maximum pages, required when shared. */
  maximumPages?: number;
}

/** Unsigned LEB128. */
export function uleb(value: number): number[] {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`Unsigned LEB128 needs a non-negative integer, got ${value}`);
  }
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(value: number): number[] {
  if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) {
    throw new RangeError(`Signed LEB128 needs a 32-bit integer, got ${value}`);
  }
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function name(text: string): number[] {
  const bytes = new TextEncoder().encode(text);
  return [...uleb(bytes.length), ...bytes];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function simd(opcode: number): number[] {
  return [0xfd, ...uleb(opcode)];
}

/** The instructions the kernels use, as byte sequences. */
export const Op = {
  localGet: (i: number): number[] => [0x20, ...uleb(i)],
  localSet: (i: number): number[] => [0x21, ...uleb(i)],
  localTee: (i: number): number[] => [0x22, ...uleb(i)],
  i32Const: (v: number): number[] => [0x41, ...sleb(v)],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32And: [0x71],
  i32Shl: [0x74],
  i32GeU: [0x4f],
  i32GtU: [0x4b],
  i32LtU: [0x49],
  i32Eqz: [0x45],
  /** `block` with no result. */
  block: [0x02, 0x40],
  /** `loop` with no result. */
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number): number[] => [0x0c, ...uleb(depth)],
  brIf: (depth: number): number[] => [0x0d, ...uleb(depth)],
  /** `f32.load` at the address on the stack plus `offset` bytes. */
  f32Load: (offset = 0): number[] => [0x2a, 2, ...uleb(offset)],
  f32Add: [0x92],
  /** `f32.store` of (address, value) at address plus `offset` bytes. */
  f32Store: (offset = 0): number[] => [0x38, 2, ...uleb(offset)],
  /** `v128.load32_splat`: one float from address plus `offset`, in all four lanes. */
  v128Load32Splat: (offset = 0): number[] => [...simd(0x09), 2, ...uleb(offset)],
  /** `v128.load` at the address on the stack plus `offset` bytes. */
  v128Load: (offset = 0): number[] => [...simd(0x00), 4, ...uleb(offset)],
  /** `v128.store` of (address, value) at address plus `offset` bytes. */
  v128Store: (offset = 0): number[] => [...simd(0x0b), 4, ...uleb(offset)],
  /** A `v128.const` with the same float in all four lanes. */
  f32x4Const: (v: number): number[] => {
    const bytes = new Uint8Array(16);
    new Float32Array(bytes.buffer).fill(v);
    return [...simd(0x0c), ...bytes];
  },
  /** A `v128.const` with the same integer in all four lanes. */
  i32x4Const: (v: number): number[] => {
    const bytes = new Uint8Array(16);
    new Int32Array(bytes.buffer).fill(v);
    return [...simd(0x0c), ...bytes];
  },
  f32x4Splat: simd(0x13),
  f32x4ExtractLane: (lane: number): number[] => [...simd(0x1f), lane],
  f32x4Eq: simd(0x41),
  f32x4Lt: simd(0x43),
  f32x4Gt: simd(0x44),
  f32x4Ge: simd(0x46),
  v128And: simd(0x4e),
  v128Or: simd(0x50),
  v128Xor: simd(0x51),
  v128Bitselect: simd(0x52),
  v128AnyTrue: simd(0x53),
  f32x4Nearest: simd(0x6a),
  i32x4Shl: simd(0xab),
  i32x4ShrS: simd(0xac),
  i32x4Add: simd(0xae),
  i32x4Sub: simd(0xb1),
  f32x4Abs: simd(0xe0),
  f32x4Neg: simd(0xe1),
  f32x4Sqrt: simd(0xe3),
  f32x4Add: simd(0xe4),
  f32x4Sub: simd(0xe5),
  f32x4Mul: simd(0xe6),
  f32x4Div: simd(0xe7),
  f32x4Min: simd(0xe8),
  f32x4Max: simd(0xe9),
  /** Pseudo-maximum `a < b ? b : a` (one x86 instruction; a NaN `a` passes through). */
  f32x4Pmax: simd(0xeb),
  i32x4TruncSatF32x4S: simd(0xf8),
  f32x4ConvertI32x4S: simd(0xfa),
  /** `f32x4.relaxed_madd` a·b + c of the three vectors on the stack (fused where the CPU has FMA). */
  f32x4RelaxedMadd: [0xfd, 0x85, 0x02],
  /** `f32x4.relaxed_nmadd` −(a·b) + c of the three vectors on the stack (fused where it can be). */
  f32x4RelaxedNmadd: [0xfd, 0x86, 0x02],
  /**
   * `i8x16.shuffle` of the two vectors a, b on the stack by 32-bit lanes: lane i of the result is
   * lane `lanes[i]` of a (0–3) or of b (4–7).
   */
  f32x4Shuffle: (lanes: number[]): number[] => [
    ...simd(0x0d),
    ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
  ],
} as const;

/** `local += amount` for an i32 local (`amount`: code pushing an i32). */
export function addTo(local: number, amount: number[]): number[] {
  return [...Op.localGet(local), ...amount, ...Op.i32Add, ...Op.localSet(local)];
}

/** `local −= amount` for an i32 local (`amount`: code pushing an i32). */
export function subtractFrom(local: number, amount: number[]): number[] {
  return [...Op.localGet(local), ...amount, ...Op.i32Sub, ...Op.localSet(local)];
}

/**
 * `while (!exit) body`: a block around a loop that leaves when `exit` (instructions pushing an i32)
 * is non-zero, runs `body`, and branches back.
 */
export function whileLoop(exit: number[], body: number[]): number[] {
  return [
    ...Op.block,
    ...Op.loop,
    ...exit,
    ...Op.brIf(1),
    ...body,
    ...Op.br(0),
    ...Op.end,
    ...Op.end,
  ];
}

/**
 * Encodes a module that imports `env.memory` and exports `functions`.
 *
 * @example Build and run a function that adds two i32s
 * ```ts
 * import { encodeModule, Op } from "./wasm_encoder.ts";
 * const bytes = encodeModule({ shared: false }, [{
 *   name: "add",
 *   params: ["i32", "i32"],
 *   results: ["i32"],
 *   locals: [],
 *   body: [...Op.localGet(0), ...Op.localGet(1), ...Op.i32Add],
 * }]);
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
 * console.log((exports.add as (a: number, b: number) => number)(2, 3)); // 5
 * ```
 */
export function encodeModule(
  memory: ImportedMemory,
  functions: WasmFunction[],
): Uint8Array<ArrayBuffer> {
  if (memory.shared && memory.maximumPages === undefined) {
    throw new RangeError("A shared memory import needs maximumPages");
  }
  const types = functions.map((f) => [
    0x60,
    ...vector(f.params.map((t) => [VALUE_TYPE_CODE[t]])),
    ...vector(f.results.map((t) => [VALUE_TYPE_CODE[t]])),
  ]);
  const limits = memory.maximumPages === undefined
    ? [0x00, ...uleb(0)]
    : [memory.shared ? 0x03 : 0x01, ...uleb(0), ...uleb(memory.maximumPages)];
  const imports = [[...name("env"), ...name("memory"), 0x02, ...limits]];
  const exports = functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]);
  const codes = functions.map((f) => {
    const locals = vector(f.locals.map((t) => [1, VALUE_TYPE_CODE[t]]));
    const body = [...locals, ...f.body, ...Op.end];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector(types)),
    ...section(2, vector(imports)),
    ...section(3, vector(functions.map((_, i) => uleb(i)))),
    ...section(7, vector(exports)),
    ...section(10, vector(codes)),
  ]);
}
