import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import {
  CHECKPOINT_FORMAT,
  CheckpointError,
  type CheckpointManifest,
  CheckpointScheduler,
  EmbeddingMlp,
  findResumableCheckpoint,
  loadCheckpoint,
  MatrixOperator,
  matrixWithSpectrum,
  type Model,
  type OperatorBatch,
  Rng,
  saveCheckpoint,
  SymmetricMatrixOperator,
  TabularModel,
  Trainer,
  TrainingDivergedError,
  type TrainOptions,
  validateCheckpoint,
} from "../mod.ts";
import { setup } from "./helpers.ts";

await setup();

const evdOp = new SymmetricMatrixOperator(
  matrixWithSpectrum({ rows: 16, values: [2, 1.5, 1, 0.5, 0.2], rng: new Rng(1) }),
);
const svdOp = new MatrixOperator(
  matrixWithSpectrum({ rows: 12, cols: 10, values: [3, 2, 1, 0.5], rng: new Rng(2) }),
);

/** RMSprop, EMA, clipping and random minibatches: every piece of state matters for a resume. */
const settings: TrainOptions = {
  steps: 40,
  batchSize: 8,
  optimizer: "rmsprop",
  ema: 0.9,
  lr: 0.01,
  clipNorm: 5,
};

interface Run {
  trainer: Trainer;
  models: Model[];
}

function makeRun(kind: "evd" | "svd", seed: number, extra: Partial<TrainOptions> = {}): Run {
  const rng = new Rng(seed);
  const options = { ...settings, rng, ...extra };
  if (kind === "evd") {
    const model = new EmbeddingMlp({ size: 16, outputs: 3, embeddingDim: 4, hidden: [8], rng });
    return { trainer: new Trainer({ operator: evdOp, model }, options), models: [model] };
  }
  const f = new TabularModel({ size: 12, outputs: 3, rng });
  const g = new EmbeddingMlp({ size: 10, outputs: 3, embeddingDim: 4, hidden: [8], rng });
  return { trainer: new Trainer({ operator: svdOp, f, g }, options), models: [f, g] };
}

function disposeRun(run: Run): void {
  run.trainer.dispose();
  run.models.forEach((m) => m.dispose());
}

/** Everything a resume must restore, except the elapsed time. */
function snapshot(trainer: Trainer) {
  const values = (vs: tf.Variable[]) => vs.map((v) => Array.from(v.dataSync()));
  return {
    variables: values(trainer.variables),
    slots: values(trainer.optimizer.stateTensors()),
    shadows: trainer.ema ? values(trainer.ema.shadow) : null,
    rng: trainer.rng.getState(),
    iterations: trainer.optimizer.iterations,
    updates: trainer.ema?.updates ?? null,
    step: trainer.stepCount,
  };
}

async function losses(trainer: Trainer, steps: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push((await trainer.step()).loss);
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error("Expected a rejection, none came");
}

/** Runs `fn` with console.warn (or console.error) captured; returns what it printed. */
async function capture<T>(
  channel: "warn" | "error",
  fn: () => Promise<T>,
): Promise<{ value: T; lines: string[] }> {
  const original = console[channel];
  const lines: string[] = [];
  console[channel] = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  try {
    return { value: await fn(), lines };
  } finally {
    console[channel] = original;
  }
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    await Deno.copyFile(join(from, entry.name), join(to, entry.name));
  }
}

async function readManifest(dir: string): Promise<CheckpointManifest> {
  return JSON.parse(await Deno.readTextFile(join(dir, "model.json")));
}

async function editManifest(dir: string, edit: (m: CheckpointManifest) => void): Promise<void> {
  const m = await readManifest(dir);
  edit(m);
  await Deno.writeTextFile(join(dir, "model.json"), JSON.stringify(m));
}

Deno.test("A resumed run equals the uninterrupted run bit for bit", async (t) => {
  for (const kind of ["evd", "svd"] as const) {
    await t.step(kind === "evd" ? "EVD (one model)" : "SVD (f and g)", async () => {
      const a = makeRun(kind, 7);
      const lossesA = await losses(a.trainer, 40);

      const root = await Deno.makeTempDir();
      const dir = join(root, "latest");
      const b = makeRun(kind, 7);
      const first = await losses(b.trainer, 20);
      const saved = await saveCheckpoint(dir, b.trainer, { metadata: { config: { kind } } });
      assert.equal(saved.step, 20);
      disposeRun(b);

      // A fresh trainer built from another seed: only the checkpoint can make it match.
      const c = makeRun(kind, 99);
      const info = await loadCheckpoint(dir, c.trainer);
      assert.equal(info.step, 20);
      assert.deepEqual(info.metadata.config, { kind });
      assert.equal(c.trainer.stepCount, 20);
      assert.equal(c.trainer.history.length, 1);
      assert.equal(c.trainer.history[0].loss, first[19]);
      const rest: number[] = [];
      for (let i = 0; i < 20; i++) {
        const record = await c.trainer.step();
        assert.equal(record.step, 21 + i);
        rest.push(record.loss);
      }
      assert.deepEqual([...first, ...rest], lossesA);
      assert.deepEqual(snapshot(c.trainer), snapshot(a.trainer));
      assert.ok(c.trainer.getProgress().elapsedSeconds >= info.elapsedSeconds);

      const manifest = await readManifest(dir);
      const names = manifest.weightsManifest[0].weights.map((w) => w.name);
      const prefixes = kind === "evd" ? ["model/"] : ["f/", "g/"];
      assert.ok(names[0].startsWith(prefixes[0]));
      assert.ok(names.some((n) => n.startsWith(prefixes[prefixes.length - 1] + "layer0")));
      assert.ok(names.includes("optimizer/0"));
      assert.ok(names.includes(`ema/${names[0]}`));
      disposeRun(a);
      disposeRun(c);
      await Deno.remove(root, { recursive: true });
    });
  }
});

Deno.test("A checkpoint is a tfjs weights manifest that tfjs can decode", async () => {
  const run = makeRun("svd", 3);
  await losses(run.trainer, 3);
  const dir = join(await Deno.makeTempDir(), "latest");
  await saveCheckpoint(dir, run.trainer);
  const manifest = await readManifest(dir);
  assert.equal(manifest.format, CHECKPOINT_FORMAT);
  assert.equal(manifest.version, 1);
  assert.match(manifest.generatedBy, /^neuralsvd/);
  assert.deepEqual(manifest.weightsManifest[0].paths, ["weights.bin"]);
  const meta = manifest.userDefinedMetadata;
  assert.equal(meta.step, 3);
  assert.deepEqual(meta.optimizer, { name: "rmsprop", iterations: 3 });
  assert.deepEqual(meta.ema, { updates: 3, decay: 0.9 });
  assert.deepEqual(meta.rng, run.trainer.rng.getState());
  assert.match(meta.checksum, /^crc32:[0-9a-f]{8}$/);
  const bytes = await Deno.readFile(join(dir, "weights.bin"));
  assert.equal(meta.byteLength, bytes.byteLength);
  const decoded = tf.io.decodeWeights(bytes.buffer, manifest.weightsManifest[0].weights);
  const f = run.trainer.problem as { f: Model; g: Model };
  assert.deepEqual(
    Array.from(decoded["g/layer0.weight"].dataSync()),
    Array.from(f.g.variables[f.g.variableNames.indexOf("layer0.weight")].dataSync()),
  );
  assert.deepEqual(
    Array.from(decoded["ema/f/table"].dataSync()),
    Array.from(run.trainer.ema!.shadow[0].dataSync()),
  );
  tf.dispose(Object.values(decoded));
  disposeRun(run);
  await Deno.remove(dirname(dir), { recursive: true });
});

const corruptions: [string, (dir: string) => Promise<void>, RegExp][] = [
  [
    "truncated weights.bin",
    async (dir) => {
      const bytes = await Deno.readFile(join(dir, "weights.bin"));
      await Deno.writeFile(join(dir, "weights.bin"), bytes.subarray(0, 100));
    },
    /weights\.bin is truncated \(100 of \d+ bytes\)$/,
  ],
  [
    "flipped byte",
    async (dir) => {
      const bytes = await Deno.readFile(join(dir, "weights.bin"));
      bytes[37] ^= 0x10;
      await Deno.writeFile(join(dir, "weights.bin"), bytes);
    },
    /weights\.bin fails its checksum \(crc32:[0-9a-f]{8}, expected crc32:[0-9a-f]{8}\)$/,
  ],
  [
    "deleted model.json",
    (dir) => Deno.remove(join(dir, "model.json")),
    /model\.json is missing$/,
  ],
  [
    "deleted weights.bin",
    (dir) => Deno.remove(join(dir, "weights.bin")),
    /weights\.bin is missing$/,
  ],
  [
    "garbage JSON",
    (dir) => Deno.writeTextFile(join(dir, "model.json"), '{"format": "neuralsvd-checkpoint", '),
    /model\.json is not valid JSON$/,
  ],
  [
    "changed shape",
    (dir) => editManifest(dir, (m) => void (m.weightsManifest[0].weights[0].shape = [64])),
    /tensor "model\/embedding" has shape \[64\], the trainer's is \[16, 4\]$/,
  ],
  [
    "other optimizer",
    (dir) => editManifest(dir, (m) => void (m.userDefinedMetadata.optimizer.name = "adam")),
    /it was saved with the adam optimizer, the trainer uses rmsprop$/,
  ],
  [
    "newer version",
    (dir) => editManifest(dir, (m) => void (m.version = 2)),
    /it has format version 2, this toolkit reads version 1$/,
  ],
  [
    "wrong byte length",
    (dir) => editManifest(dir, (m) => void (m.userDefinedMetadata.byteLength += 4)),
    /model\.json gives a byte length of \d+, its tensors need \d+$/,
  ],
];

Deno.test("A corrupt or partial checkpoint is skipped with a warning, never loaded", async (t) => {
  const source = await Deno.makeTempDir();
  const writer = makeRun("evd", 5);
  const scheduler = new CheckpointScheduler(source, writer.trainer, { everyMinutes: Infinity });
  await losses(writer.trainer, 3);
  await scheduler.save();
  await losses(writer.trainer, 3);
  await scheduler.save();
  disposeRun(writer);

  const target = makeRun("evd", 11);
  const before = snapshot(target.trainer);
  for (const [name, corrupt, reason] of corruptions) {
    await t.step(name, async () => {
      const root = await Deno.makeTempDir();
      const latest = join(root, "latest"), previous = join(root, "previous");
      await copyDir(join(source, "latest"), latest);
      await copyDir(join(source, "previous"), previous);
      await corrupt(latest);

      const error = await rejection(loadCheckpoint(latest, target.trainer));
      assert.ok(error instanceof CheckpointError, String(error));
      assert.match(error.message, new RegExp(`^Invalid checkpoint "${latest}": `));
      assert.match(error.message, reason);
      assert.equal(error.path, latest);
      assert.deepEqual(snapshot(target.trainer), before);

      const found = await capture("warn", () => findResumableCheckpoint(root, target.trainer));
      assert.equal(found.value?.dir, previous);
      assert.equal(found.value?.step, 3);
      assert.equal(found.lines.length, 1);
      assert.match(found.lines[0], new RegExp(`^Skipping checkpoint "${latest}": `));
      assert.match(found.lines[0], reason);
      assert.deepEqual(snapshot(target.trainer), before);

      await corrupt(previous);
      const none = await capture("warn", () => findResumableCheckpoint(root, target.trainer));
      assert.equal(none.value, null);
      assert.equal(none.lines.length, 2);
      assert.match(none.lines[1], new RegExp(`^Skipping checkpoint "${previous}": `));
      assert.deepEqual(snapshot(target.trainer), before);
      await Deno.remove(root, { recursive: true });
    });
  }

  await t.step("resume() falls back to previous/", async () => {
    const root = await Deno.makeTempDir();
    await copyDir(join(source, "latest"), join(root, "latest"));
    await copyDir(join(source, "previous"), join(root, "previous"));
    await Deno.writeTextFile(join(root, "latest", "model.json"), "garbage");
    const resumer = makeRun("evd", 12);
    const scheduler = new CheckpointScheduler(root, resumer.trainer);
    const resumed = await capture("warn", () => scheduler.resume());
    assert.equal(resumed.value?.step, 3);
    assert.equal(resumer.trainer.stepCount, 3);
    assert.equal(resumed.lines.length, 1);
    disposeRun(resumer);
    await Deno.remove(root, { recursive: true });
  });

  await t.step("a trainer without EMA or with other models is refused", async () => {
    const plain = makeRun("evd", 13, { ema: undefined });
    const error = await rejection(loadCheckpoint(join(source, "latest"), plain.trainer));
    assert.match(error.message, /it has EMA shadows, the trainer has no EMA$/);
    disposeRun(plain);
    const svd = makeRun("svd", 13);
    const other = await rejection(loadCheckpoint(join(source, "latest"), svd.trainer));
    assert.ok(other instanceof CheckpointError);
    assert.match(other.message, /tensor "f\/table" is missing$/);
    disposeRun(svd);
    const missing = await rejection(validateCheckpoint(join(source, "nowhere"), target.trainer));
    assert.match(missing.message, /it does not exist$/);
  });

  assert.deepEqual(snapshot(target.trainer), before);
  disposeRun(target);
  await Deno.remove(source, { recursive: true });
});

Deno.test("Saving refuses non-finite weights and a diverged run", async () => {
  const root = await Deno.makeTempDir();
  const model = new TabularModel({ size: 16, outputs: 2, rng: new Rng(0) });
  let poison = false;
  const poisoned = {
    kind: "evd" as const,
    sample: (rng: Rng, b: number): OperatorBatch => evdOp.sample(rng, b),
    evaluate: (m: Model, batch: OperatorBatch) => {
      const e = evdOp.evaluate(m, batch);
      if (!poison) return e;
      const bad = tf.mul(e.tf, NaN) as tf.Tensor2D;
      e.tf.dispose();
      return { f: e.f, tf: bad };
    },
  };
  const trainer = new Trainer({ operator: poisoned, model }, { ...settings, seed: 1 });
  const scheduler = new CheckpointScheduler(root, trainer, { everyMinutes: Infinity });
  await scheduler.step();
  await scheduler.step();
  await scheduler.save();
  const good = await Deno.readFile(join(root, "latest", "weights.bin"));

  const saved = model.variables[0].clone();
  model.variables[0].assign(tf.fill([16, 2], NaN));
  const nan = await rejection(scheduler.save());
  assert.ok(nan instanceof CheckpointError);
  assert.match(
    nan.message,
    /^Cannot save checkpoint ".*latest": tensor "model\/table" holds non-finite values \(NaN or /,
  );
  assert.match(nan.message, /Infinity\); the last good checkpoint is kept$/);
  assert.equal(nan.path, join(root, "latest"));
  model.variables[0].assign(saved);
  saved.dispose();

  poison = true;
  assert.ok(await rejection(scheduler.step()) instanceof TrainingDivergedError);
  const diverged = await rejection(scheduler.save());
  assert.ok(diverged instanceof CheckpointError);
  assert.match(diverged.message, /training diverged at step 3; the last good checkpoint is kept$/);

  assert.deepEqual(await Deno.readFile(join(root, "latest", "weights.bin")), good);
  assert.equal((await validateCheckpoint(join(root, "latest"), trainer)).step, 2);
  assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["latest"]);
  trainer.dispose();
  model.dispose();
  await Deno.remove(root, { recursive: true });
});

Deno.test("An interrupted save never leaves only a partial checkpoint", async () => {
  const root = await Deno.makeTempDir();
  const run = makeRun("evd", 21);
  const scheduler = new CheckpointScheduler(root, run.trainer, { everyMinutes: Infinity });
  await losses(run.trainer, 2);
  await scheduler.save();
  await losses(run.trainer, 2);

  // A crash while writing the temporary directory: latest/ is untouched and still loads.
  const partial = join(root, ".latest.partial-crash");
  await Deno.mkdir(partial);
  await Deno.writeFile(join(partial, "weights.bin"), new Uint8Array(10));
  const found = await capture("warn", () => findResumableCheckpoint(root, run.trainer));
  assert.equal(found.value?.step, 2);
  assert.deepEqual(found.lines, []);
  await scheduler.save();
  const names = () => [...Deno.readDirSync(root)].map((e) => e.name).sort();
  assert.deepEqual(names(), ["latest", "previous"]);
  assert.equal((await validateCheckpoint(join(root, "latest"), run.trainer)).step, 4);
  assert.equal((await validateCheckpoint(join(root, "previous"), run.trainer)).step, 2);

  // A crash between the renames: latest/ moved to previous/, the new one still hidden.
  await Deno.remove(join(root, "previous"), { recursive: true });
  await Deno.rename(join(root, "latest"), join(root, "previous"));
  await Deno.mkdir(join(root, ".latest.partial-crash2"));
  const fallback = await capture("warn", () => findResumableCheckpoint(root, run.trainer));
  assert.equal(fallback.value?.dir, join(root, "previous"));
  assert.equal(fallback.value?.step, 4);
  assert.deepEqual(fallback.lines, []);
  await losses(run.trainer, 1);
  await scheduler.save();
  assert.equal((await validateCheckpoint(join(root, "latest"), run.trainer)).step, 5);
  assert.equal((await validateCheckpoint(join(root, "previous"), run.trainer)).step, 4);

  // Without `previous`, the replaced checkpoint is removed once the new one is in place.
  const single = join(root, "single");
  await saveCheckpoint(single, run.trainer);
  await losses(run.trainer, 1);
  await saveCheckpoint(single, run.trainer);
  assert.equal((await validateCheckpoint(single, run.trainer)).step, 6);
  assert.deepEqual(names(), ["latest", "previous", "single"]);
  const reserved = await rejection(saveCheckpoint(single, run.trainer, { metadata: { step: 1 } }));
  assert.match(reserved.message, /Reserved checkpoint metadata key "step"/);
  disposeRun(run);
  await Deno.remove(root, { recursive: true });
});

Deno.test("CheckpointScheduler saves on its wall-clock period", async () => {
  const root = await Deno.makeTempDir();
  const run = makeRun("evd", 31);
  let now = 0;
  const scheduler = new CheckpointScheduler(root, run.trainer, {
    everyMinutes: 1,
    clock: () => now,
    metadata: { config: { seed: 31 } },
  });
  const savedAt: number[] = [];
  for (let i = 0; i < 6; i++) {
    now += 25_000;
    await run.trainer.step();
    if (await scheduler.afterStep()) savedAt.push(run.trainer.stepCount);
  }
  assert.deepEqual(savedAt, [3, 6]);
  assert.equal(scheduler.last?.step, 6);
  const info = await validateCheckpoint(scheduler.latestDir, run.trainer);
  assert.deepEqual(info.metadata.config, { seed: 31 });
  assert.equal((await validateCheckpoint(scheduler.previousDir, run.trainer)).step, 3);
  assert.throws(
    () => new CheckpointScheduler(root, run.trainer, { everyMinutes: 0 }),
    /Invalid checkpoint period 0: it must be a positive number of minutes/,
  );
  disposeRun(run);
  await Deno.remove(root, { recursive: true });
});

Deno.test("The interrupt handler installs and removes its SIGINT listener cleanly", async () => {
  const root = await Deno.makeTempDir();
  const run = makeRun("evd", 41);
  const scheduler = new CheckpointScheduler(root, run.trainer, { everyMinutes: Infinity });
  const exits: number[] = [];
  const exit = (code: number) => void exits.push(code);
  assert.equal(scheduler.installInterruptHandler({ exit }), true);
  assert.equal(scheduler.installInterruptHandler({ exit }), true);
  scheduler.removeInterruptHandler();
  scheduler.removeInterruptHandler();

  // What Ctrl-C requests: save after the step, remove the listener, exit with 130.
  assert.equal(scheduler.installInterruptHandler({ exit }), true);
  await scheduler.step();
  scheduler.interrupt();
  assert.equal(scheduler.interrupted, true);
  const out = await capture("error", () => scheduler.step());
  assert.deepEqual(exits, [130]);
  assert.equal(scheduler.interrupted, false);
  assert.match(out.lines[0], /^Interrupted: saved a checkpoint of step 2 to ".*latest"$/);
  assert.equal((await validateCheckpoint(scheduler.latestDir, run.trainer)).step, 2);
  disposeRun(run);
  await Deno.remove(root, { recursive: true });
});

const canSpawn = Deno.permissions.querySync({ name: "run" }).state === "granted" &&
  Deno.build.os !== "windows";

Deno.test({
  name: "Ctrl-C saves a checkpoint and exits with status 130 (subprocess)",
  ignore: !canSpawn,
  async fn() {
    const root = await Deno.makeTempDir();
    const fixture = new URL("./fixtures/train_forever.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--allow-read", `--allow-write=${root}`, fixture, root],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    let stdout = "";
    let signalled = false;
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      stdout += chunk;
      if (!signalled && stdout.includes("ready\n")) {
        child.kill("SIGINT");
        signalled = true;
      }
    }
    const status = await child.status;
    clearTimeout(timer);
    const err = await stderr;
    assert.ok(signalled, `the fixture never got ready: ${err}`);
    assert.equal(status.code, 130, err);
    assert.match(err, /Interrupted: saved a checkpoint of step \d+ to ".*latest"/);

    const rng = new Rng(8);
    const model = new TabularModel({ size: 16, outputs: 3, rng });
    const trainer = new Trainer({
      operator: new SymmetricMatrixOperator(
        matrixWithSpectrum({ rows: 16, values: [2, 1.5, 1, 0.5], rng: new Rng(1) }),
      ),
      model,
    }, { steps: 1e9, batchSize: 8, rng, optimizer: "rmsprop", ema: 0.99, schedule: "constant" });
    const info = await loadCheckpoint(join(root, "latest"), trainer);
    assert.ok(info.step >= 50, `step ${info.step}`);
    assert.equal(info.metadata.fixture, "train_forever");
    trainer.dispose();
    model.dispose();
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test({
  name: "A removed interrupt handler restores the default Ctrl-C action (subprocess)",
  ignore: !canSpawn,
  async fn() {
    const root = await Deno.makeTempDir();
    const fixture = new URL("./fixtures/train_forever.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--allow-read",
        `--allow-write=${root}`,
        fixture,
        root,
        "--install-remove",
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 130, new TextDecoder().decode(out.stderr));
    assert.doesNotMatch(stdout, /still alive/);
    await Deno.remove(root, { recursive: true });
  },
});
