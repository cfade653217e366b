/**
 * The toolkit's single source of randomness: a seeded xoshiro128** generator used for weight
 * initialisation, sampling and batch splits, so that a seed fixes a whole run bit for bit.
 *
 * @module
 */

import { assertPositiveInteger } from "./checks.ts";

/** Serialisable state of a {@linkcode Rng}: four 32-bit words plus a cached normal deviate. */
export interface RngState {
  /** The xoshiro128** state words. */
  words: [number, number, number, number];
  /** A Box–Muller deviate waiting to be returned, or null. */
  spare: number | null;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * Seeded pseudo-random generator (xoshiro128**), with uniform, normal and integer draws.
 *
 * @example
 * ```ts
 * import { Rng } from "./random.ts";
 * const a = new Rng(7), b = new Rng(7);
 * console.log(a.normal() === b.normal()); // true
 * ```
 */
export class Rng {
  #s: Uint32Array = new Uint32Array(4);
  #spare: number | null = null;

  /** Creates a generator from a non-negative integer seed. */
  constructor(seed = 0) {
    if (!Number.isInteger(seed) || seed < 0) {
      throw new RangeError(`Invalid seed ${seed}: the seed must be a non-negative integer`);
    }
    const mix = splitmix32(seed ^ Math.floor(seed / 0x100000000));
    for (let i = 0; i < 4; i++) this.#s[i] = mix();
  }

  /** Next raw 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform draw in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Standard normal draw (Box–Muller, one deviate cached). */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    assertPositiveInteger(n, "range");
    return Math.floor(this.uniform() * n);
  }

  /** `n` normal draws with standard deviation `options.std` (default 1) and mean `options.mean` (0). */
  normals(n: number, options: { std?: number; mean?: number } = {}): Float32Array {
    const { std = 1, mean = 0 } = options;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** `n` uniform draws in [low, high), by default [0, 1). */
  uniforms(n: number, options: { low?: number; high?: number } = {}): Float32Array {
    const { low: lo = 0, high: hi = 1 } = options;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.uniform();
    return out;
  }

  /** `n` integers drawn uniformly from [0, range). */
  ints(n: number, range: number): Int32Array {
    // the range is checked once for the batch, not once per draw
    if (n > 0) assertPositiveInteger(range, "range");
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.uniform() * range);
    return out;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** A copy of the generator's state, for checkpoints. */
  getState(): RngState {
    return { words: [this.#s[0], this.#s[1], this.#s[2], this.#s[3]], spare: this.#spare };
  }

  /** Restores a state obtained from {@linkcode Rng.getState}. */
  setState(state: RngState): void {
    if (!state || !Array.isArray(state.words) || state.words.length !== 4) {
      throw new TypeError("Invalid generator state: expected four 32-bit words");
    }
    for (let i = 0; i < 4; i++) this.#s[i] = state.words[i] >>> 0;
    this.#spare = state.spare ?? null;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
