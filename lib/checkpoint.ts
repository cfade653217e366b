/**
 * Checkpoints of a training run in TensorFlow.js's weights format: a directory holding `model.json`
 * (a tfjs weights manifest plus the run's counters, generator state and caller metadata) and
 * `weights.bin` (every float32 tensor, concatenated in manifest order): the trainable variables,
 * the optimiser's slots and the EMA shadows. Writes are atomic, reads are validated in full before
 * anything is assigned, and a {@linkcode CheckpointScheduler} saves on a wall-clock period and on
 * Ctrl-C, keeping the previous checkpoint until the new one is complete.
 *
 * @module
 */
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { basename, dirname, join } from "node:path";
import type { Variable } from "./types.ts";
import type { RngState } from "./random.ts";
import { type Trainer, TrainingDivergedError, type TrainRecord } from "./train.ts";

/** The `format` field of a checkpoint's `model.json`. */
export const CHECKPOINT_FORMAT = "neuralsvd-checkpoint";

/** The checkpoint format version this toolkit writes and reads. */
export const CHECKPOINT_VERSION = 1;

const MANIFEST_FILE = "model.json";
const WEIGHTS_FILE = "weights.bin";
const RESERVED_KEYS = [
  "step",
  "elapsedSeconds",
  "rng",
  "optimizer",
  "ema",
  "last",
  "byteLength",
  "checksum",
];

/**
 * Thrown when a checkpoint cannot be loaded (missing, partial, corrupt or not matching the trainer)
 * or cannot be saved (non-finite values, a diverged run). Nothing is changed when it is thrown.
 *
 * @example
 * ```ts
 * import { CheckpointError } from "../mod.ts";
 * const e = new CheckpointError('Invalid checkpoint "run/latest": model.json is missing', {
 *   path: "run/latest",
 *   reason: "model.json is missing",
 * });
 * console.log(e.reason); // "model.json is missing"
 * ```
 */
export class CheckpointError extends Error {
  /** The checkpoint directory concerned. */
  readonly path: string;
  /** What is wrong, without the path (e.g. `weights.bin fails its checksum`). */
  readonly reason: string;

  /** Creates the error. */
  constructor(message: string, options: { path: string; reason: string }) {
    super(message);
    this.name = "CheckpointError";
    this.path = options.path;
    this.reason = options.reason;
  }
}

function invalid(path: string, reason: string): CheckpointError {
  return new CheckpointError(`Invalid checkpoint "${path}": ${reason}`, { path, reason });
}

function cannotSave(path: string, reason: string): CheckpointError {
  return new CheckpointError(`Cannot save checkpoint "${path}": ${reason}`, { path, reason });
}

/** One tensor of a checkpoint's weights manifest (the tfjs `WeightsManifestEntry` layout). */
export interface CheckpointWeight {
  /** `model/<name>` (or `f/…`, `g/…`), `optimizer/<i>` or `ema/<variable>`. */
  name: string;
  /** The tensor's shape. */
  shape: number[];
  /** Always `float32`. */
  dtype: "float32";
}

/** The run state a checkpoint stores in `userDefinedMetadata`, with the caller's own keys. */
export interface CheckpointMetadata {
  /** Steps completed. */
  step: number;
  /** Seconds spent stepping. */
  elapsedSeconds: number;
  /** The run's generator state. */
  rng: RngState;
  /** The optimiser's name and iteration count. */
  optimizer: { name: string; iterations: number };
  /** The EMA's update count and decay, or null without EMA. */
  ema: { updates: number; decay: number } | null;
  /** The record of the last step, when known. */
  last: TrainRecord | null;
  /** Size of `weights.bin` in bytes. */
  byteLength: number;
  /** Checksum of `weights.bin`: `crc32:` and eight hex digits. */
  checksum: string;
  /** Caller metadata (e.g. the run's config). */
  [key: string]: unknown;
}

/** The content of a checkpoint's `model.json`. */
export interface CheckpointManifest {
  /** {@linkcode CHECKPOINT_FORMAT}. */
  format: typeof CHECKPOINT_FORMAT;
  /** {@linkcode CHECKPOINT_VERSION}. */
  version: number;
  /** The writer, with the TensorFlow.js version. */
  generatedBy: string;
  /** One group: `weights.bin` and its tensors in order. */
  weightsManifest: { paths: string[]; weights: CheckpointWeight[] }[];
  /** The run state and caller metadata. */
  userDefinedMetadata: CheckpointMetadata;
}

/** A checkpoint that validated against a trainer. */
export interface CheckpointInfo {
  /** Its directory. */
  dir: string;
  /** Steps completed when it was saved. */
  step: number;
  /** Seconds spent stepping when it was saved. */
  elapsedSeconds: number;
  /** Its full metadata, caller keys included. */
  metadata: CheckpointMetadata;
}

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Extra JSON metadata (e.g. the run's config); the run-state keys are reserved. */
  metadata?: Record<string, unknown>;
  /**
   * Keep the checkpoint being replaced under this path (replacing what is there) instead of
   * deleting it; then a complete checkpoint exists under `dir` or `previous` at every instant.
   */
  previous?: string;
}

/** Options of {@linkcode findResumableCheckpoint}. */
export interface FindCheckpointOptions {
  /** Sub-directories of the root to try, newest first; default `["latest", "previous"]`. */
  names?: string[];
}

let crcTable: Uint32Array | undefined;

function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const table = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function checksumOf(bytes: Uint8Array): string {
  return `crc32:${crc32(bytes).toString(16).padStart(8, "0")}`;
}

/** The trainer's tensors in checkpoint order, with their names. */
function checkpointTensors(trainer: Trainer): { name: string; variable: Variable }[] {
  const p = trainer.problem;
  const models = "model" in p ? [["model", p.model] as const] : [
    ["f", p.f] as const,
    ["g", p.g] as const,
  ];
  const names: string[] = [];
  for (const [prefix, model] of models) {
    if (model.variableNames.length !== model.variables.length) {
      throw new RangeError(
        `Mismatched variable names of model ${prefix}: ` +
          `${model.variableNames.length} names for ${model.variables.length} variables`,
      );
    }
    names.push(...model.variableNames.map((n) => `${prefix}/${n}`));
  }
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) {
      throw new RangeError(`Duplicate variable name "${n}": checkpoints need unique names`);
    }
    seen.add(n);
  }
  const out = trainer.variables.map((variable, i) => ({ name: names[i], variable }));
  trainer.optimizer.stateTensors().forEach((variable, i) => {
    out.push({ name: `optimizer/${i}`, variable });
  });
  trainer.ema?.shadow.forEach((variable, i) => out.push({ name: `ema/${names[i]}`, variable }));
  return out;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function shapeText(shape: number[]): string {
  return `[${shape.join(", ")}]`;
}

function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

function splitDir(dir: string): { parent: string; base: string } {
  const base = basename(dir);
  if (base === "" || base === "." || base === "..") {
    throw new RangeError(`Invalid checkpoint directory "${dir}": it must name a directory`);
  }
  return { parent: dirname(dir), base };
}

/**
 * Removes temporary siblings of `dir` left by an interrupted save, and backups of replaced
 * checkpoints once `dir` itself is in place.
 */
async function removeStaleSiblings(parent: string, base: string, dir: string): Promise<void> {
  const prefixes = [`.${base}.partial-`];
  if (await exists(dir)) prefixes.push(`.${base}.old-`);
  for await (const entry of Deno.readDir(parent)) {
    if (prefixes.some((p) => entry.name.startsWith(p))) {
      await removeIfPresent(join(parent, entry.name));
    }
  }
}

/**
 * Saves the trainer's full state to the checkpoint directory `dir`, atomically: everything is
 * written into a temporary sibling directory, which then replaces `dir` by renames; the
 * checkpoint being replaced is kept (under `options.previous`, or briefly under a hidden name)
 * until the new one is complete. Throws a {@linkcode CheckpointError}, leaving `dir` as it was,
 * when any tensor holds NaN or ±Infinity, so a diverged run never overwrites the last good
 * checkpoint.
 *
 * @example Save and reload (run with --allow-read --allow-write)
 * ```ts
 * import { initBackend, loadCheckpoint, Rng, saveCheckpoint } from "../mod.ts";
 * import { SymmetricMatrixOperator, TabularModel, Trainer } from "../mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[3, 0, 0], [0, 2, 0], [0, 0, 1]]);
 * const model = new TabularModel({ size: 3, outputs: 2, rng: new Rng(1) });
 * const trainer = new Trainer({ operator: op, model }, {
 *   steps: 10,
 *   batchSize: 2,
 *   optimizer: "rmsprop",
 * });
 * await trainer.step();
 * const dir = `${Deno.makeTempDirSync()}/latest`;
 * await saveCheckpoint(dir, trainer, { metadata: { config: { lr: 1e-3 } } });
 * const info = await loadCheckpoint(dir, trainer);
 * console.log(info.step, info.metadata.config); // 1 { lr: 0.001 }
 * trainer.dispose();
 * model.dispose();
 * ```
 */
export async function saveCheckpoint(
  dir: string,
  trainer: Trainer,
  options: SaveCheckpointOptions = {},
): Promise<CheckpointInfo> {
  const { parent, base } = splitDir(dir);
  if (options.previous !== undefined && join(options.previous) === join(dir)) {
    throw new RangeError(
      `Invalid previous checkpoint directory "${options.previous}": it must differ from "${dir}"`,
    );
  }
  const extra = options.metadata ?? {};
  for (const key of Object.keys(extra)) {
    if (RESERVED_KEYS.includes(key)) {
      throw new RangeError(
        `Reserved checkpoint metadata key "${key}": choose another name for caller metadata`,
      );
    }
  }
  const tensors = checkpointTensors(trainer);
  const values = await Promise.all(tensors.map((t) => t.variable.data()));
  const weights: CheckpointWeight[] = [];
  let total = 0;
  tensors.forEach(({ name, variable }, i) => {
    if (variable.dtype !== "float32") {
      throw cannotSave(
        dir,
        `tensor "${name}" has dtype ${variable.dtype}, only float32 is supported`,
      );
    }
    const data = values[i] as Float32Array;
    for (let k = 0; k < data.length; k++) {
      if (!Number.isFinite(data[k])) {
        throw cannotSave(
          dir,
          `tensor "${name}" holds non-finite values (NaN or Infinity); ` +
            "the last good checkpoint is kept",
        );
      }
    }
    weights.push({ name, shape: [...variable.shape], dtype: "float32" });
    total += data.length;
  });
  const floats = new Float32Array(total);
  let offset = 0;
  for (const data of values) {
    floats.set(data as Float32Array, offset);
    offset += data.length;
  }
  const bytes = new Uint8Array(floats.buffer);
  const progress = trainer.getProgress();
  const metadata: CheckpointMetadata = {
    ...extra,
    step: progress.step,
    elapsedSeconds: progress.elapsedSeconds,
    rng: trainer.rng.getState(),
    optimizer: { name: trainer.optimizer.name, iterations: trainer.optimizer.iterations },
    ema: trainer.ema ? { updates: trainer.ema.updates, decay: trainer.ema.decay } : null,
    last: progress.last ?? null,
    byteLength: bytes.byteLength,
    checksum: checksumOf(bytes),
  };
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    generatedBy: `neuralsvd (TensorFlow.js ${tf.version_core})`,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights }],
    userDefinedMetadata: metadata,
  };
  const json = JSON.stringify(manifest, null, 2) + "\n";

  await Deno.mkdir(parent, { recursive: true });
  await removeStaleSiblings(parent, base, dir);
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: `.${base}.partial-` });
  try {
    await Deno.writeFile(join(tmp, WEIGHTS_FILE), bytes);
    await Deno.writeTextFile(join(tmp, MANIFEST_FILE), json);
    if (await exists(dir)) {
      if (options.previous !== undefined) {
        await removeIfPresent(options.previous);
        await Deno.mkdir(dirname(options.previous), { recursive: true });
        await Deno.rename(dir, options.previous);
        await Deno.rename(tmp, dir);
      } else {
        const old = join(parent, `.${base}.old-${crypto.randomUUID()}`);
        await Deno.rename(dir, old);
        await Deno.rename(tmp, dir);
        await removeIfPresent(old);
      }
    } else {
      await Deno.rename(tmp, dir);
    }
  } catch (e) {
    await removeIfPresent(tmp).catch(() => {});
    throw e;
  }
  return { dir, step: metadata.step, elapsedSeconds: metadata.elapsedSeconds, metadata };
}

/** A checkpoint read and validated against a trainer, ready to assign. */
interface CheckpointPlan {
  info: CheckpointInfo;
  tensors: { variable: Variable; data: Float32Array }[];
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x) && x >= 0;
}

function checkMetadata(dir: string, m: unknown): CheckpointMetadata {
  const bad = (field: string) => invalid(dir, `model.json has an invalid ${field}`);
  if (!isObject(m)) throw bad("userDefinedMetadata");
  if (!isCount(m.step)) throw bad("step");
  const elapsed = m.elapsedSeconds;
  if (typeof elapsed !== "number" || !Number.isFinite(elapsed) || elapsed < 0) {
    throw bad("elapsedSeconds");
  }
  const rng = m.rng;
  if (
    !isObject(rng) || !Array.isArray(rng.words) || rng.words.length !== 4 ||
    !rng.words.every((w) => isCount(w) && w < 2 ** 32) || rng.words.every((w) => w === 0) ||
    !(rng.spare === null || (typeof rng.spare === "number" && Number.isFinite(rng.spare)))
  ) {
    throw bad("generator state");
  }
  const opt = m.optimizer;
  if (!isObject(opt) || typeof opt.name !== "string" || !isCount(opt.iterations)) {
    throw bad("optimizer state");
  }
  const ema = m.ema;
  if (ema !== null && (!isObject(ema) || !isCount(ema.updates))) throw bad("EMA state");
  if (m.last !== undefined && m.last !== null && (!isObject(m.last) || !isCount(m.last.step))) {
    throw bad("last record");
  }
  if (!isCount(m.byteLength)) throw bad("byte length");
  if (typeof m.checksum !== "string" || !/^crc32:[0-9a-f]{8}$/.test(m.checksum)) {
    throw bad("checksum");
  }
  return m as CheckpointMetadata;
}

function checkWeights(dir: string, manifest: Record<string, unknown>): CheckpointWeight[] {
  const groups = manifest.weightsManifest;
  const bad = invalid(dir, "model.json has a malformed weights manifest");
  if (!Array.isArray(groups) || groups.length !== 1 || !isObject(groups[0])) throw bad;
  const { paths, weights } = groups[0];
  if (!Array.isArray(paths) || paths.length !== 1 || paths[0] !== WEIGHTS_FILE) throw bad;
  if (!Array.isArray(weights)) throw bad;
  for (const w of weights) {
    if (
      !isObject(w) || typeof w.name !== "string" || !Array.isArray(w.shape) ||
      !w.shape.every(isCount)
    ) {
      throw bad;
    }
    if (w.dtype !== "float32") {
      throw invalid(dir, `tensor "${w.name}" has dtype ${w.dtype}, only float32 is supported`);
    }
  }
  return weights as CheckpointWeight[];
}

/** Reads the checkpoint in `dir` and validates all of it against `trainer`; assigns nothing. */
async function readPlan(dir: string, trainer: Trainer): Promise<CheckpointPlan> {
  try {
    const stat = await Deno.stat(dir);
    if (!stat.isDirectory) throw invalid(dir, "it is not a directory");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw invalid(dir, "it does not exist");
    throw e;
  }
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, MANIFEST_FILE));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw invalid(dir, "model.json is missing");
    if (isPermissionError(e)) throw e;
    throw invalid(dir, `model.json cannot be read (${(e as Error).message})`);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch {
    throw invalid(dir, "model.json is not valid JSON");
  }
  if (!isObject(manifest)) throw invalid(dir, "model.json is not a JSON object");
  if (manifest.format !== CHECKPOINT_FORMAT) {
    throw invalid(
      dir,
      `model.json has format ${JSON.stringify(manifest.format)}, expected "${CHECKPOINT_FORMAT}"`,
    );
  }
  if (manifest.version !== CHECKPOINT_VERSION) {
    throw invalid(
      dir,
      `it has format version ${
        JSON.stringify(manifest.version)
      }, this toolkit reads version ${CHECKPOINT_VERSION}`,
    );
  }
  const weights = checkWeights(dir, manifest);
  const metadata = checkMetadata(dir, manifest.userDefinedMetadata);

  const optimizer = trainer.optimizer.name;
  if (metadata.optimizer.name !== optimizer) {
    throw invalid(
      dir,
      `it was saved with the ${metadata.optimizer.name} optimizer, the trainer uses ${optimizer}`,
    );
  }
  if (metadata.ema && !trainer.ema) {
    throw invalid(dir, "it has EMA shadows, the trainer has no EMA");
  }
  if (!metadata.ema && trainer.ema) {
    throw invalid(dir, "it has no EMA shadows, the trainer uses EMA");
  }
  const expected = checkpointTensors(trainer);
  const byName = new Map(weights.map((w, i) => [w.name, i]));
  for (const { name, variable } of expected) {
    const i = byName.get(name);
    if (i === undefined) throw invalid(dir, `tensor "${name}" is missing`);
    const shape = weights[i].shape;
    if (shape.length !== variable.shape.length || shape.some((s, k) => s !== variable.shape[k])) {
      throw invalid(
        dir,
        `tensor "${name}" has shape ${shapeText(shape)}, the trainer's is ${
          shapeText(variable.shape)
        }`,
      );
    }
  }
  const wanted = new Set(expected.map((t) => t.name));
  const extra = weights.find((w) => !wanted.has(w.name));
  if (extra) throw invalid(dir, `it has an unexpected tensor "${extra.name}"`);
  if (weights.length !== expected.length || weights.some((w, i) => w.name !== expected[i].name)) {
    throw invalid(dir, "its tensors are duplicated or out of order");
  }
  const floats = weights.reduce((s, w) => s + sizeOf(w.shape), 0);
  if (metadata.byteLength !== 4 * floats) {
    throw invalid(
      dir,
      `model.json gives a byte length of ${metadata.byteLength}, its tensors need ${4 * floats}`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(join(dir, WEIGHTS_FILE));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw invalid(dir, "weights.bin is missing");
    if (isPermissionError(e)) throw e;
    throw invalid(dir, `weights.bin cannot be read (${(e as Error).message})`);
  }
  if (bytes.byteLength < metadata.byteLength) {
    throw invalid(
      dir,
      `weights.bin is truncated (${bytes.byteLength} of ${metadata.byteLength} bytes)`,
    );
  }
  if (bytes.byteLength > metadata.byteLength) {
    throw invalid(
      dir,
      `weights.bin is too long (${bytes.byteLength} bytes, expected ${metadata.byteLength})`,
    );
  }
  const sum = checksumOf(bytes);
  if (sum !== metadata.checksum) {
    throw invalid(dir, `weights.bin fails its checksum (${sum}, expected ${metadata.checksum})`);
  }
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const all = new Float32Array(aligned.buffer, aligned.byteOffset, floats);
  let offset = 0;
  const tensors = expected.map(({ name, variable }) => {
    const data = all.subarray(offset, offset + variable.size);
    offset += variable.size;
    for (let k = 0; k < data.length; k++) {
      if (!Number.isFinite(data[k])) throw invalid(dir, `tensor "${name}" holds non-finite values`);
    }
    return { variable, data };
  });
  return {
    info: { dir, step: metadata.step, elapsedSeconds: metadata.elapsedSeconds, metadata },
    tensors,
  };
}

function applyPlan(plan: CheckpointPlan, trainer: Trainer): void {
  const m = plan.info.metadata;
  tf.tidy(() => {
    for (const { variable, data } of plan.tensors) {
      variable.assign(tf.tensor(data, variable.shape, "float32"));
    }
  });
  trainer.optimizer.setIterations(m.optimizer.iterations);
  if (trainer.ema && m.ema) trainer.ema.setUpdates(m.ema.updates);
  trainer.rng.setState(m.rng);
  trainer.restoreProgress({ step: m.step, elapsedSeconds: m.elapsedSeconds, last: m.last });
}

/**
 * Reads the checkpoint in `dir` and checks all of it against `trainer` (format, version, byte
 * length, checksum, every tensor's name and shape, optimiser and EMA), without assigning anything.
 * Throws a {@linkcode CheckpointError} naming the first problem.
 *
 * @example
 * ```ts
 * import {
 *   CheckpointError, initBackend, Rng, SymmetricMatrixOperator, TabularModel, Trainer,
 *   validateCheckpoint,
 * } from "../mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[2, 0], [0, 1]]);
 * const model = new TabularModel({ size: 2, outputs: 1, rng: new Rng(0) });
 * const trainer = new Trainer({ operator: op, model }, { steps: 5, batchSize: 2 });
 * try {
 *   await validateCheckpoint(Deno.makeTempDirSync(), trainer);
 * } catch (e) {
 *   console.log((e as CheckpointError).reason); // "model.json is missing"
 * }
 * trainer.dispose();
 * model.dispose();
 * ```
 */
export async function validateCheckpoint(dir: string, trainer: Trainer): Promise<CheckpointInfo> {
  return (await readPlan(dir, trainer)).info;
}

/**
 * Loads the checkpoint in `dir` into `trainer`. Everything is validated first (as
 * {@linkcode validateCheckpoint} does); only then are the variables, optimiser slots and EMA
 * shadows assigned and the optimiser's iteration count, the EMA's update count, the generator
 * state and the trainer's step and elapsed time restored. On any problem it throws a
 * {@linkcode CheckpointError} and changes nothing.
 *
 * @example Resume a run from where it was saved (run with --allow-read --allow-write)
 * ```ts
 * import { initBackend, loadCheckpoint, Rng, saveCheckpoint } from "../mod.ts";
 * import { SymmetricMatrixOperator, TabularModel, Trainer } from "../mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[3, 0, 0], [0, 2, 0], [0, 0, 1]]);
 * const make = () => {
 *   const model = new TabularModel({ size: 3, outputs: 2, rng: new Rng(1) });
 *   return { model, trainer: new Trainer({ operator: op, model }, { steps: 20, batchSize: 2 }) };
 * };
 * const a = make();
 * for (let i = 0; i < 5; i++) await a.trainer.step();
 * const dir = `${Deno.makeTempDirSync()}/latest`;
 * await saveCheckpoint(dir, a.trainer);
 * const b = make();
 * await loadCheckpoint(dir, b.trainer);
 * console.log(b.trainer.stepCount); // 5
 * console.log((await a.trainer.step()).loss === (await b.trainer.step()).loss); // true
 * for (const { model, trainer } of [a, b]) {
 *   trainer.dispose();
 *   model.dispose();
 * }
 * ```
 */
export async function loadCheckpoint(dir: string, trainer: Trainer): Promise<CheckpointInfo> {
  const plan = await readPlan(dir, trainer);
  applyPlan(plan, trainer);
  return plan.info;
}

async function findPlan(
  root: string,
  trainer: Trainer,
  options: FindCheckpointOptions,
): Promise<CheckpointPlan | null> {
  for (const name of options.names ?? ["latest", "previous"]) {
    const dir = join(root, name);
    if (!(await exists(dir))) continue;
    try {
      return await readPlan(dir, trainer);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      console.warn(`Skipping checkpoint "${dir}": ${e.reason}`);
    }
  }
  return null;
}

/**
 * The newest checkpoint under the run's checkpoint root (`latest/`, then `previous/`) that
 * validates against `trainer`, or null when there is none. A corrupt or partial checkpoint is
 * skipped with a warning naming it and the reason, never loaded; missing ones are skipped silently.
 * Loads nothing: pass the result's `dir` to {@linkcode loadCheckpoint}, or use
 * {@linkcode CheckpointScheduler.resume}.
 *
 * @example
 * ```ts
 * import {
 *   findResumableCheckpoint, initBackend, Rng, SymmetricMatrixOperator, TabularModel, Trainer,
 * } from "../mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[2, 0], [0, 1]]);
 * const model = new TabularModel({ size: 2, outputs: 1, rng: new Rng(0) });
 * const trainer = new Trainer({ operator: op, model }, { steps: 5, batchSize: 2 });
 * console.log(await findResumableCheckpoint(Deno.makeTempDirSync(), trainer)); // null
 * trainer.dispose();
 * model.dispose();
 * ```
 */
export async function findResumableCheckpoint(
  root: string,
  trainer: Trainer,
  options: FindCheckpointOptions = {},
): Promise<CheckpointInfo | null> {
  return (await findPlan(root, trainer, options))?.info ?? null;
}

/** Options of {@linkcode CheckpointScheduler}. */
export interface CheckpointSchedulerOptions {
  /** Save every this many minutes of wall-clock time (Infinity: only on demand); default 10. */
  everyMinutes?: number;
  /** Caller metadata stored in every checkpoint (e.g. the run's config). */
  metadata?: Record<string, unknown>;
  /** Clock in milliseconds; default `performance.now`. */
  clock?: () => number;
}

/** Options of {@linkcode CheckpointScheduler.installInterruptHandler}. */
export interface InterruptHandlerOptions {
  /** Called with 130 after the interrupt's checkpoint is saved; default `Deno.exit`. */
  exit?: (code: number) => void;
}

/**
 * Checkpoints a training loop under `root`: `latest/` holds the newest checkpoint and `previous/`
 * the one before, kept until the new one is complete. Call {@linkcode CheckpointScheduler.step}
 * in place of `trainer.step()` (or {@linkcode CheckpointScheduler.afterStep} after it, e.g. from
 * `onStep`): it saves every `everyMinutes` of wall-clock time and, once
 * {@linkcode CheckpointScheduler.installInterruptHandler} is in place, saves and exits with status
 * 130 after the step during which Ctrl-C was pressed (a second Ctrl-C quits without saving).
 * After a {@linkcode TrainingDivergedError} it refuses to save, so the last good checkpoint stays
 * in place.
 *
 * @example Resumable training loop (run with --allow-read --allow-write)
 * ```ts
 * import {
 *   CheckpointScheduler, initBackend, Rng, SymmetricMatrixOperator, TabularModel, Trainer,
 * } from "../mod.ts";
 * await initBackend();
 * const op = new SymmetricMatrixOperator([[3, 0, 0], [0, 2, 0], [0, 0, 1]]);
 * const model = new TabularModel({ size: 3, outputs: 2, rng: new Rng(1) });
 * const trainer = new Trainer({ operator: op, model }, { steps: 50, batchSize: 2 });
 * const root = `${Deno.makeTempDirSync()}/checkpoints`;
 * const checkpoints = new CheckpointScheduler(root, trainer, { everyMinutes: 5 });
 * await checkpoints.resume(); // null on a fresh run
 * checkpoints.installInterruptHandler();
 * try {
 *   while (trainer.stepCount < 50) await checkpoints.step();
 * } finally {
 *   checkpoints.removeInterruptHandler();
 * }
 * console.log((await checkpoints.save()).step); // 50
 * trainer.dispose();
 * model.dispose();
 * ```
 */
export class CheckpointScheduler {
  /** The run's checkpoint root. */
  readonly root: string;
  /** The trainer checkpointed. */
  readonly trainer: Trainer;
  /** Minutes of wall-clock time between periodic saves. */
  readonly everyMinutes: number;
  /** The last checkpoint saved or resumed from, if any. */
  last: CheckpointInfo | null = null;
  #metadata: Record<string, unknown>;
  #clock: () => number;
  #lastSaveAt: number;
  #lastYieldAt = 0;
  #listener: (() => void) | null = null;
  #exit: (code: number) => void = (code) => Deno.exit(code);
  #interrupted = false;
  #diverged: TrainingDivergedError | null = null;

  /** Sets up the schedule; the first periodic save comes `everyMinutes` from now. */
  constructor(root: string, trainer: Trainer, options: CheckpointSchedulerOptions = {}) {
    const every = options.everyMinutes ?? 10;
    if (!(every > 0)) {
      throw new RangeError(
        `Invalid checkpoint period ${every}: it must be a positive number of minutes`,
      );
    }
    this.root = root;
    this.trainer = trainer;
    this.everyMinutes = every;
    this.#metadata = options.metadata ?? {};
    this.#clock = options.clock ?? (() => performance.now());
    this.#lastSaveAt = this.#clock();
  }

  /** Directory of the newest checkpoint. */
  get latestDir(): string {
    return join(this.root, "latest");
  }

  /** Directory of the checkpoint before it. */
  get previousDir(): string {
    return join(this.root, "previous");
  }

  /** Whether an interrupt is waiting for the end of the current step. */
  get interrupted(): boolean {
    return this.#interrupted;
  }

  /**
   * Loads the newest valid checkpoint under the root into the trainer (see
   * {@linkcode findResumableCheckpoint}; invalid ones are skipped with a warning) and returns it,
   * or returns null when there is none.
   */
  async resume(): Promise<CheckpointInfo | null> {
    const plan = await findPlan(this.root, this.trainer, {});
    if (!plan) return null;
    applyPlan(plan, this.trainer);
    this.last = plan.info;
    this.#lastSaveAt = this.#clock();
    return plan.info;
  }

  /**
   * Saves a checkpoint now into `latest/`, moving the one there to `previous/`. Throws a
   * {@linkcode CheckpointError} (and keeps the last good checkpoint) after a divergence or when a
   * tensor is not finite.
   */
  async save(): Promise<CheckpointInfo> {
    if (this.#diverged) {
      throw cannotSave(
        this.latestDir,
        `training diverged at step ${this.#diverged.step}; the last good checkpoint is kept`,
      );
    }
    const info = await saveCheckpoint(this.latestDir, this.trainer, {
      metadata: this.#metadata,
      previous: this.previousDir,
    });
    this.last = info;
    this.#lastSaveAt = this.#clock();
    return info;
  }

  /**
   * Takes one training step, then runs {@linkcode CheckpointScheduler.afterStep}. A
   * {@linkcode TrainingDivergedError} is rethrown and blocks later saves.
   */
  async step(): Promise<TrainRecord> {
    return (await this.steps(1))[0];
  }

  /**
   * Takes up to `count` steps with one read-back ({@linkcode Trainer.steps}), then runs
   * {@linkcode CheckpointScheduler.afterStep}. A {@linkcode TrainingDivergedError} is rethrown and
   * blocks later saves.
   */
  async steps(count: number): Promise<TrainRecord[]> {
    let records: TrainRecord[];
    try {
      records = count === 1 ? [await this.trainer.step()] : await this.trainer.steps(count);
    } catch (e) {
      if (e instanceof TrainingDivergedError) this.#diverged = e;
      throw e;
    }
    await this.afterStep();
    return records;
  }

  /**
   * Call after every completed step: saves when the period has elapsed, and on a pending interrupt
   * saves, removes the handler and exits with status 130. With the handler installed it yields to
   * the event loop every 50 ms so that the signal can be delivered. Returns whether it saved.
   */
  async afterStep(): Promise<boolean> {
    // Signals arrive through the event loop, which a loop of resolved awaits never reaches.
    if (this.#listener && performance.now() - this.#lastYieldAt >= 50) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      this.#lastYieldAt = performance.now();
    }
    if (this.#interrupted) {
      const exit = this.#exit;
      this.removeInterruptHandler();
      this.#interrupted = false;
      try {
        const info = await this.save();
        console.error(`Interrupted: saved a checkpoint of step ${info.step} to "${info.dir}"`);
      } catch (e) {
        console.error(`Interrupted: no checkpoint saved (${(e as Error).message})`);
      }
      exit(130);
      return true;
    }
    if (this.#clock() - this.#lastSaveAt >= this.everyMinutes * 60_000) {
      await this.save();
      return true;
    }
    return false;
  }

  /**
   * Requests what Ctrl-C does: save after the current step and exit with status 130 (handled by the
   * next {@linkcode CheckpointScheduler.afterStep}).
   */
  interrupt(): void {
    this.#interrupted = true;
  }

  /**
   * Installs a SIGINT (Ctrl-C) listener that requests a save and exit after the current step; a
   * second Ctrl-C exits at once without saving. Returns false, installing nothing, where the
   * platform has no signal listeners. Remove it with
   * {@linkcode CheckpointScheduler.removeInterruptHandler} when the loop ends: a listener left
   * installed swallows Ctrl-C for the rest of the process.
   */
  installInterruptHandler(options: InterruptHandlerOptions = {}): boolean {
    if (this.#listener) return true;
    if (typeof Deno.addSignalListener !== "function") return false;
    const exit = options.exit ?? ((code: number) => Deno.exit(code));
    const listener = () => {
      if (this.#interrupted) {
        console.error("Interrupted again: exiting without saving");
        this.removeInterruptHandler();
        exit(130);
        return;
      }
      console.error(
        "Interrupted: saving a checkpoint after the current step " +
          "(press Ctrl-C again to quit without saving)",
      );
      this.interrupt();
    };
    try {
      Deno.addSignalListener("SIGINT", listener);
    } catch {
      return false;
    }
    this.#listener = listener;
    this.#exit = exit;
    this.#lastYieldAt = performance.now();
    return true;
  }

  /** Removes the SIGINT listener, if installed. */
  removeInterruptHandler(): void {
    if (!this.#listener) return;
    Deno.removeSignalListener("SIGINT", this.#listener);
    this.#listener = null;
  }
}
