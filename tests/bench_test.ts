// The benchmark tasks run at tiny sizes: each exits 0 and prints its figures as finite numbers.
// (bench/paired.ts has its own test in scripts_test.ts; bench/webgpu_matmul.ts needs a real GPU to
// finish in reasonable time and is left out.)
import assert from "node:assert/strict";
import { runDeno } from "./helpers.ts";

const root = new URL("../", import.meta.url);
const bench = (name: string) => new URL(`bench/${name}`, root).pathname;
const tiny = ["--modes", "2", "--batch", "16", "--frequencies", "8", "--width", "16"];

/** Every number captured by `pattern` (global) in `text`, checked finite and positive. */
function figures(text: string, pattern: RegExp): number[] {
  const values = [...text.matchAll(pattern)].map((m) => Number(m[1]));
  assert.ok(values.length > 0, `no ${pattern} in:\n${text}`);
  for (const v of values) assert.ok(Number.isFinite(v) && v > 0, `${v} in:\n${text}`);
  return values;
}

Deno.test("benchmark tasks run at tiny sizes and print their figures", async (t) => {
  await t.step("bench/canonical_step.ts (deno task bench)", async () => {
    const r = await runDeno([
      ...["run", "--no-prompt", "--allow-read", bench("canonical_step.ts"), ...tiny],
      ...["--steps", "1", "--warmup", "0"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /canonical step: 2 disjoint 3×16 softplus MLPs, 8 Fourier frequencies/);
    assert.equal(figures(r.stdout, /(\S+) ms\/step/g).length, 3);
  });
  await t.step("bench/hydrogen_step.ts without the peer (deno task bench:peer)", async () => {
    const r = await runDeno([
      ...["run", "--no-prompt", "--allow-read", bench("hydrogen_step.ts"), ...tiny],
      ...["--batch", "64", "--no-peer", "--rounds", "1", "--steps", "1", "--warmup", "0"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /PyTorch peer skipped: --no-peer/);
    assert.match(r.stdout, /fd Laplacian, 2 replica\(s\)/);
    assert.match(r.stdout, /forward Laplacian \(exact\), 2 replica\(s\)/);
    figures(r.stdout, /(\S+) ms\/step/g);
    figures(r.stdout, /main-thread shard (\S+) ms, Worker shard (\S+) ms/g);
  });
  await t.step("bench/hydrogen_step.ts --default-job (deno task bench:workers)", async () => {
    const r = await runDeno([
      ...["run", "--no-prompt", "--allow-read", bench("hydrogen_step.ts"), "--default-job"],
      ...["--steps", "2", "--warmup", "1"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /default hydrogen2d job \(16 modes, 3×128, batch 512\)/);
    figures(r.stdout, /speed-up (\S+)×/g);
    figures(r.stdout, /ideal exchange[^:]*: (\S+)×/g);
  });
  await t.step(
    "bench/memory.ts (deno task bench:memory): the tensor count stays flat",
    async () => {
      const r = await runDeno([
        ...["run", "--no-prompt", "--allow-read", bench("memory.ts")],
        ...["--steps", "20", "--every", "10"],
      ]);
      assert.equal(r.code, 0, r.stderr);
      const rows = [...r.stdout.matchAll(/^\| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$/gm)]
        .map((m) => m.slice(1).map(Number));
      assert.deepEqual(rows.map((row) => row[0]), [1, 10, 20], r.stdout);
      // Steps 1 and 10 hold the batch drawn ahead for the next step; the run's last one does not.
      const tensors = rows.map((row) => row[4]);
      assert.deepEqual(tensors, [tensors[0], tensors[0], tensors[0] - 1], r.stdout);
      // The WASM heap does not grow after the first step.
      assert.ok(rows.every((row) => row[3] === rows[0][3]), r.stdout);
    },
  );
  await t.step("bench/kernels.ts (deno task bench:kernels)", async () => {
    const r = await runDeno([
      ...["run", "--no-prompt", "--allow-read", bench("kernels.ts")],
      ...["--steps", "1", "--warmup", "0", "--workers", "1"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const speedUps = figures(r.stdout, /\| (\S+)× \|$/gm);
    assert.ok(speedUps.length >= 5, r.stdout);
  });
  await t.step("bench/threads.ts (deno task bench:threads)", async () => {
    const r = await runDeno([
      ...["run", "--no-prompt", "--allow-read", "--allow-run", bench("threads.ts"), ...tiny],
      ...["--steps", "1", "--warmup", "0", "--no-matmul"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(figures(r.stdout, /wasm \d threads? +(\S+) ms\/step/g).length, 2);
    figures(r.stdout, /speed-up with 2 threads: step (\S+)×/g);
  });
});
