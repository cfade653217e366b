import assert from "node:assert/strict";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { backendInfo, initBackend } from "../mod.ts";
import { runDeno } from "./helpers.ts";

const fixture = new URL("./fixtures/init_backend.ts", import.meta.url).pathname;

Deno.test("initBackend selects wasm with SIMD by default", async () => {
  const info = await initBackend();
  assert.deepEqual(info, { backend: "wasm", simd: true, threads: 1 });
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
  assert.deepEqual(JSON.parse(r.stdout), { backend: "wasm", simd: true, threads: 1 });
  const cpu = await runDeno(["run", "--no-prompt", "--allow-read", fixture, "cpu"]);
  assert.deepEqual(JSON.parse(cpu.stdout), { backend: "cpu", simd: false, threads: 1 });
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
