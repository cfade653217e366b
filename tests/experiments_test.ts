import assert from "node:assert/strict";
import {
  asConfig,
  buildModel,
  buildOperator,
  EXPERIMENT_FLAGS,
  HYDROGEN2D_PRESETS,
  hydrogen2dProblem,
  HYDROGEN3D_PRESETS,
  hydrogen3dProblem,
  OSCILLATOR_FLAGS,
  OSCILLATOR_PRESETS,
  oscillatorProblem,
  parseCli,
  parseOmegas,
  Rng,
  Trainer,
  trainerOptions,
  validateConfig,
} from "../mod.ts";
import { runDeno, setup } from "./helpers.ts";
import { replicaCount } from "../lib/experiment.ts";

await setup();

const root = new URL("../", import.meta.url);
const script = (name: string) => new URL(`scripts/${name}.ts`, root).pathname;

const SCRIPTS = [
  {
    name: "hydrogen2d",
    flags: EXPERIMENT_FLAGS,
    presets: HYDROGEN2D_PRESETS,
    problem: () => hydrogen2dProblem(),
  },
  {
    name: "hydrogen3d",
    flags: EXPERIMENT_FLAGS,
    presets: HYDROGEN3D_PRESETS,
    problem: () => hydrogen3dProblem(),
  },
  {
    name: "oscillator",
    flags: OSCILLATOR_FLAGS,
    presets: OSCILLATOR_PRESETS,
    problem: (v: Record<string, unknown>) =>
      oscillatorProblem({
        dim: v.dim as number,
        omegas: parseOmegas(v.omegas as string, v.dim as number),
        evalQuadrature: v.evalQuadrature as string,
      }),
  },
];

Deno.test("Every preset of every Schrödinger script parses, builds and takes a step", async (t) => {
  for (const s of SCRIPTS) {
    for (const preset of Object.keys(s.presets)) {
      await t.step(`${s.name} --preset ${preset}`, async () => {
        // parseCli fails on any flag a preset does not set, so presets cannot drift from the flags.
        const cli = parseCli(["--preset", preset, "--batch", "8"], {
          flags: s.flags,
          presets: s.presets as never,
          usage: s.name,
        });
        const config = asConfig(cli.values);
        const problem = s.problem(cli.values as Record<string, unknown>);
        validateConfig(problem, config);
        const rng = new Rng(0);
        const model = buildModel(problem, config, { rng });
        const op = buildOperator(problem, config);
        const trainer = new Trainer({ operator: op, model }, {
          steps: config.steps,
          batchSize: 8,
          nesting: config.nesting,
          optimizer: config.optimizer,
          lr: config.lr,
          rng,
        });
        const rec = await trainer.step();
        assert.ok(Number.isFinite(rec.loss));
        assert.equal(rec.norms.length, config.modes);
        trainer.dispose();
        model.dispose();
      });
    }
  }
});

Deno.test("Schrödinger scripts' smoke runs write config, log, summary and pictures", async (t) => {
  for (const s of SCRIPTS) {
    await t.step(s.name, async () => {
      const dir = await Deno.makeTempDir();
      const r = await runDeno([
        "run",
        "--no-prompt",
        "--allow-read",
        `--allow-write=${dir}`,
        script(s.name),
        "--preset",
        "smoke",
        "--out",
        dir,
        // The oscillator's run also trains an extra mode it does not report.
        ...(s.name === "oscillator" ? ["--modes", "4", "--eval-modes", "3"] : []),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /mean relative energy error: Rayleigh \d/);
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
      for (
        const key of [
          "problem",
          "preset",
          "backend",
          "steps",
          "seconds",
          "modes",
          "meanRayleighRelError",
          "meanNormRelError",
          "meanRitzRelError",
          "subspaceDistanceAvg",
          "subspaceDistanceAll",
          "orthogonality",
        ]
      ) assert.ok(key in summary, `summary.json lacks ${key}`);
      assert.equal(summary.problem, s.name);
      assert.equal(
        summary.modes.length,
        s.name === "oscillator" ? 3 : (s.presets as Record<string, { modes: number }>).smoke.modes,
      );
      assert.equal(summary.steps, (s.presets as Record<string, { steps: number }>).smoke.steps);
      for (const m of summary.modes) {
        for (
          const k of [
            "targetEnergy",
            "energyRayleigh",
            "energyNorm",
            "rayleighRelError",
            "energyRitz",
            "ritzRelError",
            "subspaceDistance",
          ]
        ) {
          assert.ok(Number.isFinite(m[k]), `${k} of mode ${m.mode}`);
        }
      }
      const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
      assert.equal(config.preset, "smoke");
      const log = (await Deno.readTextFile(`${dir}/log.csv`)).trim().split("\n");
      assert.equal(log.length, summary.steps + 1);
      const pictures = [
        "spectrum.png",
        "loss.png",
        "orthogonality.png",
        ...(s.name === "hydrogen3d" ? [] : ["eigenfunctions.png"]),
      ];
      for (const p of pictures) {
        const bytes = await Deno.readFile(`${dir}/${p}`);
        assert.deepEqual([...bytes.subarray(1, 4)], [80, 78, 71], `${p} is a PNG`);
      }
      await Deno.remove(dir, { recursive: true });
    });
  }
});

Deno.test("Schrödinger scripts exit 2 on bad input, naming the flag", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["hydrogen2d", ["--modes=-1"], /Invalid value "-1" for --modes: expected an integer ≥ 1/],
    [
      "hydrogen2d",
      ["--batch", "7"],
      /Invalid value "7" for --batch: split halves need an even batch size/,
    ],
    ["hydrogen2d", ["--lr", "NaN"], /Invalid value "NaN" for --lr: expected a number > 0/],
    [
      "hydrogen2d",
      ["--workers", "2", "--batch", "66"],
      /Invalid value "66" for --batch: with 2 replicas it must be a multiple of 4/,
    ],
    [
      "hydrogen2d",
      ["--backend", "cpu", "--workers", "2"],
      /Invalid value "2" for --workers: Worker replicas run on wasm; --backend cpu trains in one/,
    ],
    [
      "hydrogen2d",
      ["--beta2", "1"],
      /Invalid value "1" for --beta2: expected a number ≥ 0 and < 1/,
    ],
    [
      "hydrogen2d",
      ["--modes-per-network", "3"],
      /Invalid value "3" for --modes-per-network: it needs --disjoint and must divide --modes \(16\)/,
    ],
    [
      "hydrogen2d",
      ["--modes-per-network", "4", "--revive-every", "100"],
      /Invalid value "100" for --revive-every: reviving re-draws one mode's network, which serves 4/,
    ],
    [
      "hydrogen2d",
      ["--revive-from", "best"],
      /Invalid value "best" for --revive-from: allowed values are init, previous/,
    ],
    [
      "hydrogen2d",
      ["--kinetic", "spectral"],
      /Invalid value "spectral" for --kinetic: allowed values are forward, fd, autodiff/,
    ],
    [
      "hydrogen2d",
      ["--out", "/proc/neuralsvd"],
      /Cannot write to output directory "\/proc\/neuralsvd"/,
    ],
    ["hydrogen3d", ["--potential", "yukawa"], /Unknown flag --potential/],
    [
      "hydrogen3d",
      ["--sampling", "sobol"],
      /Invalid value "sobol" for --sampling: allowed values are random, quasirandom/,
    ],
    [
      "hydrogen2d",
      ["--deflation", "0.5"],
      /Invalid value "0.5" for --deflation: expected a number ≥ 1/,
    ],
    [
      "oscillator",
      ["--omegas", "1,2,3"],
      /Invalid value "1,2,3" for --omegas: give one frequency or 2/,
    ],
    [
      "oscillator",
      ["--omegas", "1,-2"],
      /Invalid value "1,-2" for --omegas: expected positive numbers/,
    ],
    ["oscillator", ["--shift", "10"], /Invalid value "10" for --shift: mode 36 has energy 16/],
    [
      "oscillator",
      ["--shift-final", "12"],
      /Invalid value "12" for --shift-final: mode 36 has energy 16/,
    ],
    [
      "hydrogen2d",
      ["--shift-final", "2", "--shift-start", "0.8", "--shift-end", "0.5"],
      /Invalid value "0.5" for --shift-end: it must not be below --shift-start \(0.8\)/,
    ],
    [
      "oscillator",
      ["--disjoint", "false"],
      /Unexpected argument "false" after --disjoint: a switch takes no value; write --disjoint or --no-disjoint/,
    ],
    [
      "hydrogen2d",
      ["--shift-start", "1.5"],
      /Invalid value "1.5" for --shift-start: expected a number ≥ 0 and ≤ 1/,
    ],
    ["oscillator", ["--eval-modes", "37"], /Invalid value "37" for --eval-modes: at most --modes/],
    [
      "oscillator",
      ["--dim", "3", "--eval-quadrature", "grid"],
      /Invalid value "grid" for --eval-quadrature: the grid is for d ≤ 2 \(d = 3\)/,
    ],
    [
      "oscillator",
      ["--eval-quadrature", "simpson"],
      /Invalid value "simpson" for --eval-quadrature: allowed values are auto, grid, gauss-hermite/,
    ],
    [
      "oscillator",
      ["--preset", "huge"],
      /Unknown preset "huge": allowed values are default, smoke, paper/,
    ],
  ];
  for (const [name, args, pattern] of cases) {
    await t.step(`${name} ${args.join(" ")}`, async () => {
      const r = await runDeno([
        "run",
        "--no-prompt",
        "--allow-read",
        "--allow-write=/proc",
        script(name),
        // Should a case ever become valid input, it stops after one step instead of training.
        "--stop-after=1",
        ...args,
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
    });
  }
});

Deno.test("Sandbox profile: the smoke hydrogen job runs through mod.ts with only --allow-read in 512 MB", async () => {
  const fixture = new URL("./fixtures/sandbox_hydrogen.ts", import.meta.url).pathname;
  const r = await runDeno([
    "run",
    "--no-prompt",
    "--allow-read",
    "--v8-flags=--max-old-space-size=512",
    fixture,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.equal(out.energies.length, 4);
  assert.ok(out.energies.every(Number.isFinite));
  assert.ok(out.peakRss <= 512 * 1024 * 1024, `peak RSS ${(out.peakRss / 2 ** 20).toFixed(0)} MB`);
});

Deno.test("An interrupted and resumed run reproduces the uninterrupted run's losses", async () => {
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  const base = [
    "run",
    "--no-prompt",
    "--allow-read",
    script("hydrogen2d"),
    "--preset",
    "smoke",
    "--ema",
    "0.9",
  ];
  const full = await runDeno([
    ...base.slice(0, 3),
    `--allow-write=${a}`,
    ...base.slice(3),
    "--out",
    a,
  ]);
  assert.equal(full.code, 0, full.stderr);
  const first = await runDeno([
    ...base.slice(0, 3),
    `--allow-write=${b}`,
    ...base.slice(3),
    "--out",
    b,
    "--stop-after",
    "8",
  ]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /stopped after step 8 of 20/);
  const second = await runDeno([
    ...base.slice(0, 3),
    `--allow-write=${b}`,
    ...base.slice(3),
    "--out",
    b,
    "--resume",
    b,
  ]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /resumed from .*latest at step 8/);
  const losses = async (dir: string) =>
    (await Deno.readTextFile(`${dir}/log.csv`)).trim().split("\n").slice(1).map((l) =>
      l.split(",")[1]
    );
  const la = await losses(a), lb = await losses(b);
  assert.equal(la.length, 20);
  assert.deepEqual(lb, la);
  const sa = JSON.parse(await Deno.readTextFile(`${a}/summary.json`));
  const sb = JSON.parse(await Deno.readTextFile(`${b}/summary.json`));
  assert.deepEqual(
    sb.modes.map((m: { energyRayleigh: number }) => m.energyRayleigh),
    sa.modes.map((m: { energyRayleigh: number }) => m.energyRayleigh),
  );
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
});

Deno.test("A corrupt latest checkpoint is skipped with a warning when resuming", async () => {
  const dir = await Deno.makeTempDir();
  const args = [
    "run",
    "--no-prompt",
    "--allow-read",
    `--allow-write=${dir}`,
    script("hydrogen2d"),
    "--preset",
    "smoke",
  ];
  assert.equal((await runDeno([...args, "--out", dir, "--stop-after", "5"])).code, 0);
  assert.equal(
    (await runDeno([...args, "--out", dir, "--resume", dir, "--stop-after", "5"])).code,
    0,
  );
  const weights = `${dir}/checkpoints/latest/weights.bin`;
  const bytes = await Deno.readFile(weights);
  bytes[10] ^= 0xff;
  await Deno.writeFile(weights, bytes);
  const r = await runDeno([...args, "--out", dir, "--resume", dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Skipping checkpoint ".*latest": .*checksum/);
  assert.match(r.stdout, /resumed from .*previous at step 5/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("The paper preset runs and checkpoints (one step)", async () => {
  const dir = await Deno.makeTempDir();
  const r = await runDeno([
    "run",
    "--no-prompt",
    "--allow-read",
    `--allow-write=${dir}`,
    script("hydrogen2d"),
    "--preset",
    "paper",
    "--batch",
    "8",
    "--stop-after",
    "1",
    "--out",
    dir,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/checkpoints/latest/model.json`));
  assert.equal(manifest.userDefinedMetadata.step, 1);
  assert.equal(manifest.userDefinedMetadata.config.modes, 36);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("hydrogen2d.ts with one replica per core (--workers 0) uses as many as split the batch", async () => {
  const script = new URL("../scripts/hydrogen2d.ts", import.meta.url).pathname;
  const r = await runDeno([
    ...["run", "--no-prompt", "--allow-read", script, "--preset", "smoke", "--steps", "2"],
    ...["--workers", "0", "--batch", "66"],
  ]);
  assert.equal(r.code, 0, r.stderr);
  const cores = navigator.hardwareConcurrency ?? 1;
  if (cores > 1) {
    assert.match(
      r.stdout + r.stderr,
      new RegExp(`note: 1 replica\\(s\\) for ${cores} cores: batch 66 is a multiple of 2·replicas`),
    );
  }
  assert.match(r.stdout, /hydrogen2d \(smoke\): 2 steps/);
});

Deno.test("replicaCount: one replica per core on wasm that splits the batch, one on other backends", () => {
  const base = HYDROGEN2D_PRESETS.default;
  const cores = Math.max(1, navigator.hardwareConcurrency ?? 1);
  assert.equal(replicaCount({ ...base, workers: 0 }), cores);
  assert.equal(replicaCount({ ...base, workers: 0, backend: "webgpu" }), 1);
  assert.equal(replicaCount({ ...base, workers: 0, backend: "cpu" }), 1);
  assert.equal(replicaCount({ ...base, workers: 3 }), 3);
  // One per core where the batch splits into 2·replicas halves, else the most that do.
  const batch512 = { ...base, workers: 0, batch: 512 };
  assert.deepEqual(
    [1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 24, 32].map((c) => replicaCount(batch512, c)),
    [1, 2, 2, 4, 4, 8, 8, 8, 8, 16, 16, 32],
  );
  assert.equal(replicaCount({ ...base, workers: 0, batch: 96 }, 12), 12);
  assert.equal(replicaCount({ ...base, workers: 0, batch: 100 }, 4), 2);
  assert.equal(replicaCount({ ...base, workers: 0, batch: 7 }, 4), 1);
  // A count given on the command line stays as given (the batch is checked against it later).
  assert.equal(replicaCount({ ...base, workers: 12, batch: 512 }, 2), 12);
});

Deno.test("parseCli switches: --flag and --no-flag, with a clear error for a value", () => {
  const options = {
    usage: "demo",
    flags: { radial: { type: "boolean" as const, description: "append |x|" } },
    presets: { default: { radial: false }, on: { radial: true } },
  };
  assert.equal(parseCli(["--radial"], options).values.radial, true);
  assert.equal(parseCli(["--preset", "on", "--no-radial"], options).values.radial, false);
  assert.match(parseCli([], options).helpText, /--radial, --no-radial/);
  assert.throws(
    () => parseCli(["--radial", "true"], options),
    /Unexpected argument "true" after --radial: a switch takes no value; write --radial or --no-radial$/,
  );
  assert.throws(
    () => parseCli(["--radial=false"], options),
    /Invalid value for --radial: a switch takes no value; write --radial or --no-radial$/,
  );
});

Deno.test("parseCli names a flag left without its value, and a value no preset sets", () => {
  const options = {
    usage: "demo",
    flags: {
      batch: { type: "integer" as const, min: 1, description: "batch size" },
      name: { type: "string" as const, description: "a label" },
    },
    presets: { default: { batch: 4, name: "a" }, bare: { name: "b" } },
  };
  assert.throws(
    () => parseCli(["--name", "x", "--batch"], options),
    /^CliError: Missing value for --batch: it takes an integer \(--batch VALUE\)$/,
  );
  assert.throws(
    () => parseCli(["--name"], options),
    /Missing value for --name: it takes a string \(--name VALUE\)$/,
  );
  assert.throws(
    () => parseCli(["--preset", "bare"], options),
    /Missing value for --batch: preset bare does not set it$/,
  );
});

Deno.test("trainerOptions passes --beta1 and --beta2 to Adam", () => {
  const values = parseCli(["--beta1", "0.8", "--beta2", "0.99"], {
    flags: EXPERIMENT_FLAGS,
    presets: HYDROGEN2D_PRESETS as never,
    usage: "hydrogen2d",
  }).values;
  const betas = (config: typeof HYDROGEN2D_PRESETS.default) => {
    const options = trainerOptions(config, new Rng(0)).optimizer;
    assert.ok(typeof options === "object");
    return [options.beta1, options.beta2];
  };
  assert.deepEqual(betas(asConfig(values)), [0.8, 0.99]);
  assert.deepEqual(betas(HYDROGEN2D_PRESETS.default), [0.9, 0.999]);
});
