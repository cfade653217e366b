import assert from "node:assert/strict";
import { checkTiling, DEFAULT_TILING } from "../lib/webgpu_kernels.ts";

const fixture = new URL("./fixtures/backend_losses.ts", import.meta.url).pathname;

async function losses(
  backend: string,
  job = "smoke",
): Promise<{ code: number; losses?: number[]; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-read", fixture, backend, job],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", XDG_RUNTIME_DIR: "/tmp" },
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  const stderr = new TextDecoder().decode(out.stderr);
  return { code: out.code, losses: out.code === 0 ? JSON.parse(text) : undefined, stderr };
}

// Deno offers navigator.gpu without flags; on a machine without a GPU, Mesa's software adapter
// (packages mesa-vulkan-drivers, libvulkan1; .ci/run installs them) provides one.
const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;

for (const job of ["smoke", "paper"]) {
  Deno.test({
    name: `WebGPU: 20 steps of the ${job} hydrogen job match WASM's losses to 1e-4`,
    ignore: !adapter,
    fn: async () => {
      const [webgpu, wasm] = [await losses("webgpu", job), await losses("wasm", job)];
      assert.equal(webgpu.code, 0, webgpu.stderr);
      assert.equal(wasm.code, 0, wasm.stderr);
      assert.equal(webgpu.losses!.length, 20);
      webgpu.losses!.forEach((l, i) => {
        const w = wasm.losses![i];
        assert.ok(Math.abs(l - w) <= 1e-4 * Math.abs(w), `step ${i + 1}: webgpu ${l}, wasm ${w}`);
      });
    },
  });
}

Deno.test({
  name: "initBackend names WebGPU's absence and suggests wasm (machines without an adapter)",
  ignore: adapter !== null,
  fn: async () => {
    const r = await losses("webgpu");
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /(No WebGPU adapter was found|WebGPU is not available).*use --backend wasm/,
    );
  },
});

const matMulFixture = new URL("./fixtures/webgpu_matmul.ts", import.meta.url).pathname;

for (const tiling of [undefined, { bm: 64, bn: 32, bk: 16, tm: 4, tn: 4 }]) {
  Deno.test({
    name: `useGpuMatMul: the tiled product matches float64 for all transposes and broadcasts (${
      tiling ? "64×32 tiles" : "default tiles"
    })`,
    ignore: !adapter,
    fn: async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          "--allow-read",
          matMulFixture,
          ...(tiling ? [JSON.stringify(tiling)] : []),
        ],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp" },
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
      assert.equal(r.active, true);
      assert.equal(r.errors.length, 9);
      r.errors.forEach((e: number, i: number) =>
        assert.ok(e < 2e-6, `case ${i}: relative error ${e}`)
      );
    },
  });
}

Deno.test("checkTiling names a tiling whose threads do not divide the staging work", () => {
  assert.doesNotThrow(() => checkTiling(DEFAULT_TILING));
  assert.throws(
    () => checkTiling({ bm: 128, bn: 128, bk: 8, tm: 3, tn: 8 }),
    /Invalid matMul tiling \{"bm":128,"bn":128,"bk":8,"tm":3,"tn":8\}: tm must divide bm/,
  );
  assert.throws(
    () => checkTiling({ bm: 16, bn: 16, bk: 1, tm: 1, tn: 1 }),
    /Invalid matMul tiling/,
  );
});
