import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { backendInfo, initBackend, MAX_WASM_THREADS } from "../mod.ts";
import { assertThreadsPossible } from "../lib/wasm_threads.ts";
import { runDeno } from "./helpers.ts";

const fixture = new URL("./fixtures/init_backend.ts", import.meta.url).pathname;
const threadsFixture = new URL("./fixtures/wasm_threads.ts", import.meta.url).pathname;

Deno.test("initBackend selects wasm with SIMD by default", async () => {
  const info = await initBackend();
  assert.deepEqual(info, { backend: "wasm", simd: true, threads: 1, simdKernels: true });
  assert.equal(tf.getBackend(), "wasm");
  assert.deepEqual(backendInfo(), info);
});

Deno.test("initBackend rejects unknown backend names, listing the allowed ones", async () => {
  const err = await initBackend({ backend: "webgl" }).catch((e) => e);
  assert.match(err.message, /Unknown backend "webgl": allowed backends are wasm, webgpu, cpu/);
});

Deno.test("initBackend names --allow-read when read permission is missing", async () => {
  const r = await runDeno(["run", "--no-prompt", fixture]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /The wasm backend must read its \.wasm files from .*: run Deno with --allow-read/,
  );
});

Deno.test("initBackend runs in a subprocess with only --allow-read", async () => {
  const r = await runDeno(["run", "--no-prompt", "--allow-read", fixture, "wasm"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    backend: "wasm",
    simd: true,
    threads: 1,
    simdKernels: true,
  });
  const cpu = await runDeno(["run", "--no-prompt", "--allow-read", fixture, "cpu"]);
  assert.deepEqual(JSON.parse(cpu.stdout), {
    backend: "cpu",
    simd: false,
    threads: 1,
    simdKernels: false,
  });
});

Deno.test("initBackend says when WebGPU has no adapter", async () => {
  const nav = navigator as unknown as { gpu?: { requestAdapter: () => Promise<unknown> } };
  const original = nav.gpu;
  const fake = { requestAdapter: () => Promise.resolve(null) };
  Object.defineProperty(navigator, "gpu", { value: fake, configurable: true });
  try {
    const err = await initBackend({ backend: "webgpu" }).catch((e) => e);
    assert.match(err.message, /No WebGPU adapter was found on this machine: use --backend wasm/);
    Object.defineProperty(navigator, "gpu", { value: undefined, configurable: true });
    const err2 = await initBackend({ backend: "webgpu" }).catch((e) => e);
    assert.match(err2.message, /WebGPU is not available .*: use --backend wasm/);
  } finally {
    Object.defineProperty(navigator, "gpu", { value: original, configurable: true });
  }
  assert.equal(tf.getBackend(), "wasm");
});

/** Runs `deno ARGS…` like runDeno, but kills it (failing the test) if it runs past `ms`. */
async function runDenoWithin(
  args: string[],
  ms: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
      signal: abort.signal,
    }).output();
    const dec = new TextDecoder();
    const stderr = dec.decode(out.stderr) + (abort.signal.aborted ? `\nkilled after ${ms} ms` : "");
    return { code: out.code, stdout: dec.decode(out.stdout), stderr };
  } finally {
    clearTimeout(timer);
  }
}

type ThreadsRun = {
  info: { threads: number };
  values: number[];
  restored: Record<string, boolean>;
  ownMatMul: boolean;
  before?: number[];
};

function assertClose(a: number[], b: number[], rel: number): void {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => {
    const err = Math.abs(x - b[i]) / Math.max(Math.abs(b[i]), 1e-12);
    assert.ok(err <= rel, `value ${i}: ${x} vs ${b[i]} (relative error ${err})`);
  });
}

Deno.test("initBackend with threads: 2 runs 2 wasm threads and matches 1 thread", async () => {
  const args = ["run", "--no-prompt", "--allow-read", threadsFixture];
  const [one, two] = await Promise.all([
    runDenoWithin([...args, "1"], 60_000),
    runDenoWithin([...args, "2"], 60_000),
  ]);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(two.code, 0, two.stderr);
  const r1 = JSON.parse(one.stdout) as ThreadsRun;
  const r2 = JSON.parse(two.stdout) as ThreadsRun;
  assert.deepEqual(r1.info, { backend: "wasm", simd: true, threads: 1, simdKernels: true });
  assert.deepEqual(r2.info, { backend: "wasm", simd: true, threads: 2, simdKernels: true });
  assertClose(r2.values, r1.values, 1e-5);
  assert.equal(r1.ownMatMul, true);
  assert.equal(r2.ownMatMul, false);
  const all = { node: true, hardwareConcurrency: true, worker: true, warn: true, flag: true };
  assert.deepEqual(r2.restored, all);
  assert.deepEqual(r1.restored, all);
  assert.equal(two.stderr.includes("Blocking on the main thread"), false, two.stderr);
});

Deno.test("a script using wasm threads exits by itself; shutdownBackend switches counts", async () => {
  // The fixture computes with 1 thread, shuts down, computes with 2 and ends without cleanup.
  const r = await runDenoWithin(
    ["run", "--no-prompt", "--allow-read", threadsFixture, "2", "switch"],
    60_000,
  );
  assert.equal(r.code, 0, r.stderr);
  const run = JSON.parse(r.stdout) as ThreadsRun;
  assert.equal(run.info.threads, 2);
  assertClose(run.values, run.before!, 1e-5);
});

Deno.test("initBackend rejects bad thread counts, naming the value and what is allowed", async () => {
  await initBackend();
  for (const bad of [0, -1, 1.5, MAX_WASM_THREADS + 1, NaN, Infinity]) {
    const err = await initBackend({ threads: bad }).catch((e) => e);
    assert.equal(
      err.message,
      `Invalid thread count ${bad}: allowed thread counts are integers from 1 to 8`,
    );
  }
  const cpu = await initBackend({ backend: "cpu", threads: 2 }).catch((e) => e);
  assert.equal(
    cpu.message,
    "Invalid thread count 2: the cpu backend runs 1 thread, only wasm runs more",
  );
  const busy = await initBackend({ threads: 2 }).catch((e) => e);
  assert.equal(
    busy.message,
    "Invalid thread count 2: the wasm backend of this process already runs 1 thread; " +
      "call shutdownBackend() first",
  );
  assert.equal(tf.getBackend(), "wasm");
  assert.deepEqual(backendInfo(), { backend: "wasm", simd: true, threads: 1, simdKernels: true });
});

Deno.test("wasm threads say what is missing: read permission, SharedArrayBuffer", async () => {
  const r = await runDenoWithin(["run", "--no-prompt", threadsFixture, "2"], 60_000);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /Invalid thread count 2: the threaded build must read .*tfjs-backend-wasm-threaded-simd\.wasm: run Deno with --allow-read/,
  );
  const original = Object.getOwnPropertyDescriptor(globalThis, "SharedArrayBuffer")!;
  delete (globalThis as Record<string, unknown>).SharedArrayBuffer;
  try {
    const dir = new URL("./", import.meta.resolve("npm:@tensorflow/tfjs-backend-wasm@4.22.0"));
    assert.throws(
      () => assertThreadsPossible(4, dir),
      /^Error: Invalid thread count 4: this runtime has no SharedArrayBuffer\/Atomics; only 1 thread is possible$/,
    );
  } finally {
    Object.defineProperty(globalThis, "SharedArrayBuffer", original);
  }
});
