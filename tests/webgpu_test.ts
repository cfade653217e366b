import assert from "node:assert/strict";
import { checkTiling, DEFAULT_TILING, fusedElementwise } from "../lib/webgpu_kernels.ts";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { setup } from "./helpers.ts";

await setup();

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

/**
 * Whether this machine has a WebGPU adapter. Deno offers navigator.gpu without flags; on a machine
 * without a GPU, Mesa's software adapter (packages mesa-vulkan-drivers, libvulkan1; .ci/run installs
 * them) provides one. Asked in a subprocess, as every GPU test here runs: a test process that held
 * an adapter until it exited aborted now and then in the teardown (glibc: "corrupted size vs.
 * prev_size", ~1 run in 7 here) after all its tests had passed.
 */
async function hasAdapter(): Promise<boolean> {
  const code = "const a = await navigator.gpu?.requestAdapter().catch(() => null);" +
    "console.log(a ? 'adapter' : 'none');";
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp" },
  }).output();
  return new TextDecoder().decode(out.stdout).trim().endsWith("adapter");
}
const adapter = await hasAdapter();

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
  ignore: adapter,
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

/** Runs a fixture with only --allow-read, asserts it exits 0, and parses its last line as JSON. */
async function fixtureJson(path: string, args: string[] = []) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-read", path, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp" },
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
}

for (const tiling of [undefined, { bm: 64, bn: 32, bk: 16, tm: 4, tn: 4 }]) {
  Deno.test({
    name: `useGpuMatMul: the tiled product matches float64 for all transposes and broadcasts (${
      tiling ? "64×32 tiles" : "default tiles"
    })`,
    ignore: !adapter,
    fn: async () => {
      const r = await fixtureJson(matMulFixture, tiling ? [JSON.stringify(tiling)] : []);
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

Deno.test({
  name: "fusedElementwise computes a formula in one kernel, guarded, and names bad shapes",
  ignore: !adapter,
  fn: async () => {
    const fixture = new URL("./fixtures/webgpu_fused.ts", import.meta.url).pathname;
    const r = await fixtureJson(fixture);
    const close = (a: (number | null)[], b: (number | null)[]) =>
      a.forEach((x, i) =>
        assert.ok(x === b[i] || Math.abs(x! - b[i]!) < 1e-6, `entry ${i}: ${x} against ${b[i]}`)
      );
    close(r.moment, [0.55, 0.625, 1.8, null]);
    close(r.applied, [0, 1.25, -0.5, null]);
    close(r.kept, [0.5, 0.25, 1, 2]);
    assert.match(
      r.mismatch,
      /Mismatched input 1 \(float32 \[3\]\): fused element-wise inputs must be float32 of one shape \[4\]/,
    );
  },
});

Deno.test({
  name: "WebGPU: the models' own reverse pass (batched layout) gives the tape's gradients",
  ignore: !adapter,
  fn: async () => {
    const fixture = new URL("./fixtures/webgpu_pullback.ts", import.meta.url).pathname;
    const r = await fixtureJson(fixture);
    for (const kinetic of ["forward", "fd"]) {
      assert.ok(r[kinetic] < 1e-4, `${kinetic}: worst relative error ${r[kinetic]}`);
    }
  },
});

Deno.test("fusedElementwise names the backend it needs", () => {
  assert.throws(
    () => fusedElementwise("x0", [tf.zeros([2])]),
    /Unsupported backend (wasm|cpu): fused element-wise kernels run on webgpu/,
  );
});

Deno.test({
  name: "hydrogen2d.ts --backend webgpu: the smoke run (blocks of 10 steps) matches WASM's summary",
  ignore: !adapter,
  fn: async () => {
    const script = new URL("../scripts/hydrogen2d.ts", import.meta.url).pathname;
    const run = async (backend: string) => {
      const dir = await Deno.makeTempDir();
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          "--allow-read",
          `--allow-write=${dir}`,
          script,
          "--preset",
          "smoke",
          "--backend",
          backend,
          "--out",
          dir,
        ],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", XDG_RUNTIME_DIR: "/tmp" },
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
      const rows = (await Deno.readTextFile(`${dir}/log.csv`)).trim().split("\n").length - 1;
      await Deno.remove(dir, { recursive: true });
      return { summary, rows };
    };
    const [gpu, wasm] = [await run("webgpu"), await run("wasm")];
    assert.equal(gpu.summary.backend, "webgpu");
    assert.equal(gpu.summary.steps, 20);
    assert.equal(gpu.rows, 20);
    const [a, b] = [gpu.summary.meanRayleighRelError, wasm.summary.meanRayleighRelError];
    assert.ok(Math.abs(a - b) <= 1e-3 * Math.abs(b), `webgpu ${a}, wasm ${b}`);
  },
});
