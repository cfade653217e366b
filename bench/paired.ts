/**
 * Paired step timings in one run: two trainers take turns of `--block` steps, so that the shared
 * host's swings in speed (it halves for minutes at a time on this project's machine) hit both
 * alike, and the median of the turn pairs' ratios holds where runs minutes apart do not. A trainer
 * with Workers takes the last step of its turn without handing them the next batch, so that none
 * of its work runs in the other side's turn (that step is timed as Workers waiting for their
 * requests would take it: a turn of one step measures that alone). It pairs
 * - one replica with `--workers` replicas (the data-parallel speed-up; the default);
 * - with `--against DIR`, another checkout's step (a `git worktree` of an earlier commit, say) with
 *   this checkout's, and says whether their losses agreed at every step;
 * - with `--peer`, the PyTorch peer's canonical step (../shared/peer/torch_hydrogen_step.py, fd
 *   Laplacian, 2 threads, glibc keeping freed memory; driven step by step through
 *   bench/torch_peer_paced.py) with this checkout's `--job fd` or `forward` step.
 *
 * With `--against`, both builds register their kernels on the main thread under the same names,
 * and this checkout's (registered last) serve both there: it compares the code around the kernels,
 * and the Worker replicas' own builds. Compare changes to a kernel itself with separate runs.
 *
 *   deno run --allow-read bench/paired.ts                    # default job: 1 vs all replicas
 *   deno run --allow-read bench/paired.ts --job fd --steps 20 --against ../neuralsvd-before
 *   deno run --allow-read --allow-run=/usr/bin/python3 bench/paired.ts --job fd --peer
 *
 * @module
 */
import * as library from "../mod.ts";
import * as common from "./common.ts";
import { canonicalStepConfig, defaultReplicas, hostProbe, KEPT_MALLOC, median } from "./common.ts";
import { CliError, parseCli, runMain } from "../lib/cli.ts";

const FLAGS = {
  job: {
    type: "string",
    choices: ["default", "fd", "forward"],
    description:
      "the default hydrogen2d job, or the canonical step with the fd or forward Laplacian",
  },
  batch: { type: "integer", min: 2, description: "batch size" },
  workers: {
    type: "integer",
    min: 0,
    description:
      "replicas of this checkout's trainer (0: one per core, as many as split the batch)",
  },
  steps: { type: "integer", min: 1, description: "timed turn pairs" },
  block: { type: "integer", min: 1, description: "steps per turn" },
  warmup: { type: "integer", min: 0, description: "untimed turn pairs first" },
  against: {
    type: "string",
    description: "another checkout's root: time its step against this one's (same --workers)",
  },
  peer: {
    type: "boolean",
    description: "time the PyTorch peer's step against this one's (--job fd or forward)",
  },
  python: { type: "string", description: "a python3 with PyTorch (here Debian's, python3-torch)" },
  peerScript: { type: "string", description: "the PyTorch peer script" },
} as const;

const DEFAULTS = {
  job: "default",
  batch: 512,
  workers: 0,
  steps: 30,
  block: 4,
  warmup: 2,
  against: "",
  peer: false,
  python: "/usr/bin/python3",
  peerScript: new URL("../../shared/peer/torch_hydrogen_step.py", import.meta.url).pathname,
};

type Library = typeof library;
type Common = typeof common;

/** One side of a pair: takes a turn of steps when asked and says how long they took. */
interface Stepper {
  name: string;
  /** Milliseconds per step over a turn of `steps` steps. */
  turn(steps: number): Promise<number>;
  /** Each step's loss so far, where the side records them. */
  losses?(): number[];
  close(): void | Promise<void>;
}

function jobConfig(v: typeof DEFAULTS, workers: number, lib: Library = library) {
  if (v.job === "default") return { ...lib.HYDROGEN2D_PRESETS.default, batch: v.batch, workers };
  return canonicalStepConfig({
    modes: 16,
    batch: v.batch,
    frequencies: 256,
    width: 128,
    kinetic: v.job,
    workers,
  });
}

async function trainerSide(
  name: string,
  v: typeof DEFAULTS,
  options: { workers: number; lib?: Library; common?: Common },
): Promise<Stepper> {
  const lib = options.lib ?? library;
  const { trainer, close } = await (options.common ?? common).replicatedTrainer(
    lib.hydrogen2dProblem(),
    jobConfig(v, options.workers, lib),
    { workers: options.workers, seed: 0 },
  );
  // A pool that takes the next batch with each update (an older checkout's may not).
  const pool = trainer.options.gradientSource as { prefetches?: boolean } | undefined;
  const prefetching = pool?.prefetches === true;
  return {
    name,
    turn: async (steps) => {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) {
        if (prefetching) pool!.prefetches = i < steps - 1;
        await trainer.step();
      }
      return (performance.now() - t0) / steps;
    },
    losses: () => trainer.history.map((r) => r.loss),
    close,
  };
}

/** The other checkout's library and benchmark helpers, loaded from its root. */
async function loadCheckout(root: string): Promise<{ lib: Library; common: Common }> {
  try {
    Deno.statSync(`${root}/mod.ts`);
  } catch {
    throw new CliError(`Invalid --against ${root}: it has no mod.ts (give a checkout's root)`);
  }
  const url = (path: string) => new URL(path, `file://${Deno.realPathSync(root)}/`).href;
  return { lib: await import(url("mod.ts")), common: await import(url("bench/common.ts")) };
}

/** The PyTorch peer's canonical step, one step per request (bench/torch_peer_paced.py). */
async function peerSide(v: typeof DEFAULTS): Promise<Stepper> {
  if (v.job === "default") {
    throw new CliError("Invalid --job default with --peer: the peer runs the canonical step (fd)");
  }
  try {
    Deno.statSync(v.peerScript);
  } catch {
    throw new CliError(`Invalid --peer-script ${v.peerScript}: the file is not there`);
  }
  const wrapper = new URL("./torch_peer_paced.py", import.meta.url).pathname;
  const args = [wrapper, v.peerScript, "--batch", String(v.batch), "--threads", "2"];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(v.python, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: KEPT_MALLOC,
    }).spawn();
  } catch (e) {
    throw new CliError(`Cannot start ${v.python} for the peer: ${(e as Error).message}`);
  }
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  let buffered = "";
  const nextLine = async (): Promise<string | null> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) return null;
      buffered += value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
  const failed = async () => {
    const err = (await new Response(child.stderr).text()).trim().split("\n").pop();
    return new Error(`The PyTorch peer stopped: ${err || `${v.python} exited without a message`}`);
  };
  if ((await nextLine()) !== "ready") throw await failed();
  return {
    name: "PyTorch peer (fd, 2 threads)",
    turn: async (steps) => {
      let ms = 0;
      for (let i = 0; i < steps; i++) {
        await writer.write(encoder.encode("step\n"));
        const line = await nextLine();
        if (line === null) throw await failed();
        ms += Number(line);
      }
      return ms / steps;
    },
    close: async () => {
      await writer.write(encoder.encode("quit\n")).catch(() => {});
      await writer.close().catch(() => {});
      await lines.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status;
    },
  };
}

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: { default: DEFAULTS },
    usage: "Usage: deno run --allow-read [--allow-run=/usr/bin/python3] bench/paired.ts [options]",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as typeof DEFAULTS;
  v.workers ||= defaultReplicas(v.batch);
  if (v.peer && v.against) throw new CliError("Invalid flags: give --peer or --against, not both");
  const other = v.against ? await loadCheckout(v.against) : null;
  // The other build first, so that this checkout's kernels are the ones registered last.
  if (other) await other.lib.initBackend({ backend: "wasm", threads: 1 });
  await library.initBackend({ backend: "wasm", threads: 1 });
  const job = v.job === "default"
    ? `default hydrogen2d job, batch ${v.batch}`
    : `canonical step (${v.job} Laplacian), batch ${v.batch}`;
  const probe = hostProbe();
  const sides: Stepper[] = [];
  try {
    if (v.peer) {
      sides.push(await peerSide(v));
      sides.push(await trainerSide(`neuralsvd, ${v.workers} replica(s)`, v, v));
    } else if (other) {
      sides.push(await trainerSide(v.against, v, { ...v, ...other }));
      sides.push(await trainerSide("this checkout", v, v));
    } else {
      sides.push(await trainerSide("1 replica", v, { workers: 1 }));
      sides.push(await trainerSide(`${v.workers} replicas`, v, v));
    }
    const times: number[][] = [[], []];
    const ratios: number[] = [];
    for (let i = 0; i < v.warmup + v.steps; i++) {
      // Alternate which goes first, so neither always follows the other.
      const order = i % 2 === 0 ? [0, 1] : [1, 0];
      const pair = [0, 0];
      for (const k of order) pair[k] = await sides[k].turn(v.block);
      if (i < v.warmup) continue;
      times[0].push(pair[0]);
      times[1].push(pair[1]);
      ratios.push(pair[0] / pair[1]);
    }
    const [a, b] = times.map(median);
    console.log(
      `${job}: ${sides[0].name} against ${sides[1].name}, ${v.steps} pairs of ` +
        `${v.block}-step turns ` +
        `(host ${probe.toFixed(1)} → ${hostProbe().toFixed(1)} GFLOP/s)`,
    );
    for (const [i, s] of sides.entries()) {
      console.log(`  ${s.name.padEnd(30)} ${[a, b][i].toFixed(2)} ms/step (median)`);
    }
    const [what, ratio, ofMedians] = v.peer
      ? ["ours/PyTorch", median(ratios.map((r) => 1 / r)), b / a]
      : [other ? "that/this" : "speed-up", median(ratios), a / b];
    console.log(
      `  ${what}: ${ratio.toFixed(3)}× (median of the turn pairs' ratios; ratio of the medians ` +
        `${ofMedians.toFixed(3)}×)`,
    );
    if (other) {
      const [x, y] = sides.map((s) => s.losses!());
      const same = x.length === y.length && x.every((l, i) => l === y[i]);
      console.log(`  losses the same bit for bit at every step: ${same ? "yes" : "no"}`);
    }
  } finally {
    for (const s of sides) await s.close();
  }
});
