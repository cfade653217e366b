/** Shared test helpers: backend setup and float64 reference losses. */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { initBackend, type Matrix, type NestingMasks } from "../mod.ts";

/** Initialises the default (wasm) backend once. */
export async function setup(): Promise<typeof tf> {
  await initBackend({ backend: "wasm" });
  return tf;
}

/** Float64 product a·b. */
export function mm(a: Matrix, b: Matrix): Matrix {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
}

/** Float64 Gram aᵀb / rows. */
export function gram64(a: Matrix, b: Matrix): Matrix {
  const n = a.length;
  return a[0].map((_, l) => b[0].map((_, k) => a.reduce((s, r, i) => s + r[l] * b[i][k], 0) / n));
}

/**
 * Float64 masked loss −2 Σ m_l P_ll + Σ M ⊙ Λf ⊙ Λg with P_ll = mean_i F_il (TG)_il,
 * Λf = FᵀF/n_x, Λg = GᵀG/n_y.
 */
export function maskedLoss64(f: Matrix, tg: Matrix, g: Matrix, masks: NestingMasks): number {
  const L = f[0].length, n = f.length;
  let p = 0;
  for (let l = 0; l < L; l++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += f[i][l] * tg[i][l];
    p += masks.vector[l] * s / n;
  }
  const lf = gram64(f, f), lg = gram64(g, g);
  let q = 0;
  for (let l = 0; l < L; l++) {
    for (let k = 0; k < L; k++) q += masks.matrix[l][k] * lf[l][k] * lg[l][k];
  }
  return -2 * p + q;
}

/** Largest absolute entry of a − b divided by the largest absolute entry of b. */
export function relMaxDiff(a: number[][], b: number[][]): number {
  let d = 0, s = 0;
  a.forEach((row, i) =>
    row.forEach((x, j) => {
      d = Math.max(d, Math.abs(x - b[i][j]));
      s = Math.max(s, Math.abs(b[i][j]));
    })
  );
  return d / s;
}

/** Runs `fn` and returns the error it throws (fails if none). */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("Expected an error, none was thrown");
}

/** Runs `deno ARGS…` without colours or backtraces and returns exit code, stdout and stderr. */
export async function runDeno(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
