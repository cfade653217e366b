import assert from "node:assert/strict";
import { runDeno } from "./helpers.ts";

const root = new URL("../", import.meta.url);
const script = new URL("scripts/matrix_spectrum.ts", root).pathname;

Deno.test("matrix_spectrum.ts smoke run prints the learned spectrum", async () => {
  const r = await runDeno(["run", "--no-prompt", "--allow-read", script, "--preset", "smoke"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /EVD of a 12×12 matrix, 3 modes, sequential nesting, 400 steps on wasm/);
  const err = Number(r.stdout.match(/mean rel\. error (\S+)/)![1]);
  assert.ok(err < 1e-2, `mean relative error ${err}`);
});

Deno.test("matrix_spectrum.ts writes config, log and summary under --out", async () => {
  const dir = await Deno.makeTempDir();
  const r = await runDeno([
    "run",
    "--no-prompt",
    "--allow-read",
    `--allow-write=${dir}`,
    script,
    "--preset",
    "smoke",
    "--kind",
    "svd",
    "--steps",
    "50",
    "--out",
    dir,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
  assert.equal(summary.modes.length, 3);
  assert.equal(summary.steps, 50);
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  assert.equal(config.kind, "svd");
  const log = (await Deno.readTextFile(`${dir}/log.csv`)).trim().split("\n");
  assert.equal(log.length, 51);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("matrix_spectrum.ts exits 2 on bad flags with a message naming them", async (t) => {
  const cases: [string[], RegExp][] = [
    [["--lr", "abc"], /Invalid value "abc" for --lr: expected a number > 0/],
    [["--lr", "NaN"], /Invalid value "NaN" for --lr/],
    [["--modes=-3"], /Invalid value "-3" for --modes: expected an integer ≥ 1/],
    [["--modes", "-3"], /Ambiguous value for --modes: write --modes=VALUE/],
    [
      ["--nesting", "deep"],
      /Invalid value "deep" for --nesting: allowed values are joint, sequential, none/,
    ],
    [["--optimizer", "lbfgs"], /allowed values are adam, rmsprop, sgd/],
    [["--frobnicate"], /Unknown flag --frobnicate: run with --help/],
    [["--preset", "huge"], /Unknown preset "huge": allowed values are default, smoke/],
    [["--modes", "50"], /Invalid value "50" for --modes: at most min\(size, cols\) modes exist/],
    [["--out", "/proc/neuralsvd-out"], /Cannot write to output directory "\/proc\/neuralsvd-out"/],
  ];
  for (const [args, pattern] of cases) {
    await t.step(args.join(" "), async () => {
      const r = await runDeno([
        "run",
        "--no-prompt",
        "--allow-read",
        "--allow-write=/proc",
        script,
        ...args,
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
    });
  }
});

Deno.test("matrix_spectrum.ts --help lists every flag with its preset values", async () => {
  const r = await runDeno(["run", "--no-prompt", "--allow-read", script, "--help"]);
  assert.equal(r.code, 0);
  for (
    const flag of [
      "--kind",
      "--size",
      "--modes",
      "--nesting",
      "--optimizer",
      "--lr",
      "--steps",
      "--out",
    ]
  ) {
    assert.ok(r.stdout.includes(flag), flag);
  }
  assert.match(r.stdout, /--steps INTEGER .*\[default=4000 smoke=400\]/);
});

Deno.test("A script served over HTTP runs with only --allow-read", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path.includes("..")) return new Response("no", { status: 400 });
    try {
      const body = await Deno.readFile(new URL(`.${path}`, root));
      return new Response(body, { headers: { "content-type": "application/typescript" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    const r = await runDeno([
      "run",
      "--no-prompt",
      `--reload=${base}`,
      "--allow-read",
      `${base}/scripts/matrix_spectrum.ts`,
      "--preset",
      "smoke",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /EVD of a 12×12 matrix/);
    assert.match(r.stdout, /mean rel\. error \d/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("bench/paired.ts times two sides' turns: replicas, two checkouts, the PyTorch peer", async (t) => {
  const bench = new URL("bench/paired.ts", root).pathname;
  const base = [
    ...["run", "--no-prompt", "--allow-read", bench, "--batch", "64", "--steps", "3"],
    ...["--block", "2"],
  ];
  await t.step("1 replica against 2", async () => {
    const r = await runDeno([...base, "--warmup", "1", "--workers", "2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /default hydrogen2d job, batch 64: 1 replica against 2 replicas/);
    const speedUp = Number(r.stdout.match(/speed-up: (\S+)×/)![1]);
    assert.ok(speedUp > 0 && Number.isFinite(speedUp), r.stdout);
  });
  await t.step("this checkout against itself: the same losses", async () => {
    // Two replicas: each turn's last step hands the Workers no next batch, and the losses agree.
    const r = await runDeno([
      ...base,
      "--warmup",
      "0",
      "--workers",
      "2",
      "--against",
      root.pathname,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /losses the same bit for bit at every step: yes/);
  });
  // Where Debian's PyTorch and the peer script are (CI has neither: the step is reported as ignored).
  const peerScript = new URL("../shared/peer/torch_hydrogen_step.py", root).pathname;
  const torch = await Deno.stat(peerScript).then(() => true, () => false) &&
    await new Deno.Command("/usr/bin/python3", { args: ["-c", "import torch"] })
      .output().then((o) => o.code === 0, () => false);
  await t.step({
    name: "the PyTorch peer in turn",
    ignore: !torch,
    fn: async () => {
      const r = await runDeno([
        "run",
        "--no-prompt",
        "--allow-read",
        "--allow-run=/usr/bin/python3",
        bench,
        "--job",
        "fd",
        "--peer",
        "--batch",
        "64",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--workers",
        "1",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /PyTorch peer \(fd, 2 threads\) against neuralsvd, 1 replica\(s\)/);
      const ratio = Number(r.stdout.match(/ours\/PyTorch: (\S+)×/)![1]);
      assert.ok(ratio > 0 && Number.isFinite(ratio), r.stdout);
    },
  });
  await t.step("flags that do not go together", async () => {
    for (
      const [args, pattern] of [
        [["--peer"], /Invalid --job default with --peer: the peer runs the canonical step \(fd\)/],
        [["--peer", "--against", "/tmp"], /Invalid flags: give --peer or --against, not both/],
      ] as const
    ) {
      const r = await runDeno([...base, ...args]);
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stderr, pattern);
    }
  });
  await t.step("a directory without mod.ts", async () => {
    const r = await runDeno([...base, "--against", "/tmp"]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /Invalid --against \/tmp: it has no mod\.ts \(give a checkout's root\)/);
  });
});
