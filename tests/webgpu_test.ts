import assert from "node:assert/strict";

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
