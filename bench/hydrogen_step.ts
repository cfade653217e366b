/**
 * Times the full canonical 2-D hydrogen training step — 16 modes, disjoint 3×128 softplus MLPs on
 * 256 Fourier frequencies (scale 0.1), batch 512, Gaussian sampling (s = 16), T = 100·(−H),
 * sequential nesting, RMSprop — with the `fd` and `forward` kinetic terms, and, when Debian's PyTorch
 * is installed, the same step of the PyTorch peer (../shared/peer/torch_hydrogen_step.py, 2 threads),
 * printed side by side as a ratio. Our step runs data-parallel over `--workers` replicas (default:
 * one per core, the training default). `--scaling` prints the README's scaling table instead;
 * `--default-job` times the default hydrogen2d job on one and on all replicas, with the parts of
 * the data-parallel gradient phase (`deno task bench:workers`).
 *
 *   deno run --allow-read --allow-run=/usr/bin/python3 bench/hydrogen_step.ts [--steps 10]
 *   deno run --allow-read --allow-run=/usr/bin/python3 bench/hydrogen_step.ts --scaling
 *   deno run --allow-read bench/hydrogen_step.ts --default-job --steps 30 --warmup 5
 *   deno run --allow-read --allow-run bench/hydrogen_step.ts --backend webgpu --paper \
 *     --peer-device cuda --python python3      # a GPU machine: the paper step, WebGPU vs CUDA
 *
 * @module
 */
import {
  type ExperimentConfig,
  HYDROGEN2D_PRESETS,
  hydrogen2dProblem,
  initBackend,
  type PoolTimings,
} from "../mod.ts";
import {
  canonicalStepConfig,
  defaultReplicas,
  hostProbe,
  KEPT_MALLOC,
  median,
  medianTimings,
  timeReplicated,
} from "./common.ts";
import { stepsPerReadback } from "../lib/kernel_layout.ts";
import { parseCli, runMain } from "../lib/cli.ts";

const FLAGS = {
  modes: { type: "integer", min: 1, description: "modes L" },
  batch: { type: "integer", min: 2, description: "batch size" },
  frequencies: { type: "integer", min: 1, description: "Fourier frequencies" },
  width: { type: "integer", min: 1, description: "hidden width" },
  workers: {
    type: "integer",
    min: 0,
    description: "data-parallel replicas (0: one per core, as many as split the batch)",
  },
  steps: { type: "integer", min: 1, description: "timed steps" },
  rounds: {
    type: "integer",
    min: 1,
    description: "rounds of (fd, forward, peer), each ratio taken within its round (medians shown)",
  },
  warmup: { type: "integer", min: 0, description: "untimed steps first" },
  scaling: {
    type: "boolean",
    description: "print the scaling table (batch 256…8192, modes 4…64, workers 1…2) instead",
  },
  defaultJob: {
    type: "boolean",
    description:
      "time the default hydrogen2d job on 1 and on all replicas, with where the step goes",
  },
  sweeps: {
    type: "string",
    description: "scaling table sweeps: batch, modes or both (comma-separated)",
  },
  peer: { type: "boolean", description: "also time the PyTorch peer when it is installed" },
  python: { type: "string", description: "a python3 with PyTorch (here Debian's, python3-torch)" },
  backend: {
    type: "string",
    choices: ["wasm", "webgpu", "cpu"],
    description: "engine of our step (webgpu and cpu run one replica)",
  },
  paper: {
    type: "boolean",
    description: "the paper preset's network: 36 modes, 1024 Fourier frequencies",
  },
  peerDevice: {
    type: "string",
    choices: ["cpu", "cuda"],
    description: "torch device of the PyTorch peer (cuda: through bench/torch_peer_device.py)",
  },
  peerScript: { type: "string", description: "the PyTorch peer script" },
  simdKernels: {
    type: "boolean",
    description: "the toolkit's own kernels (--no-simd-kernels: tfjs's)",
  },
  reversePass: {
    type: "boolean",
    description: "the models' own reverse pass (--no-reverse-pass: tfjs's tape)",
  },
  block: {
    type: "integer",
    min: 0,
    description: "steps per loss read-back (0: the backend's, 10 on WebGPU, 1 elsewhere)",
  },
} as const;
const DEFAULTS = {
  modes: 16,
  batch: 512,
  frequencies: 256,
  width: 128,
  workers: 0,
  steps: 10,
  rounds: 3,
  warmup: 2,
  scaling: false,
  defaultJob: false,
  sweeps: "batch,modes",
  peer: true,
  python: "/usr/bin/python3",
  backend: "wasm",
  paper: false,
  peerDevice: "cpu",
  simdKernels: true,
  reversePass: true,
  block: 0,
  peerScript: new URL("../../shared/peer/torch_hydrogen_step.py", import.meta.url).pathname,
};

/** The canonical step as an experiment config (see {@linkcode canonicalStepConfig}). */
function canonicalConfig(v: typeof DEFAULTS, kinetic: string): ExperimentConfig {
  return canonicalStepConfig({ ...v, kinetic });
}

async function ourStep(v: typeof DEFAULTS, kinetic: string): Promise<number> {
  return (await ourStepParts(v, kinetic)).ms;
}

function ourStepParts(
  v: typeof DEFAULTS,
  kinetic: string,
): Promise<{ ms: number; pool?: PoolTimings }> {
  return timeReplicated(hydrogen2dProblem(), canonicalConfig(v, kinetic), { ...v, seed: 0 });
}

async function peerStep(
  v: typeof DEFAULTS,
  options: { keptMalloc?: boolean } = {},
): Promise<{ ms: number } | { skipped: string }> {
  const peer = v.peerScript;
  try {
    Deno.statSync(peer);
  } catch {
    return { skipped: `the peer script ${peer} is not there` };
  }
  // On a GPU the peer runs through a wrapper that puts its tensors there and times each step to
  // the end of its kernels.
  const wrapper = new URL("./torch_peer_device.py", import.meta.url).pathname;
  const script = v.peerDevice === "cpu" ? [peer] : [wrapper, v.peerDevice, peer];
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(v.python, {
      args: [
        ...script,
        "--modes",
        String(v.modes),
        "--batch",
        String(v.batch),
        "--fourier",
        String(v.frequencies),
        "--hidden",
        String(v.width),
        "--steps",
        String(v.steps),
        "--warmup",
        String(v.warmup),
        "--threads",
        "2",
      ],
      stdout: "piped",
      stderr: "piped",
      ...(options.keptMalloc ? { env: KEPT_MALLOC } : {}),
    }).output();
  } catch (e) {
    return { skipped: `${v.python} could not be started (${(e as Error).message})` };
  }
  if (out.code !== 0) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    return { skipped: `PyTorch is not available to ${v.python}: ${why}` };
  }
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
  return { ms: JSON.parse(line).ms_per_step_median };
}

/**
 * The default hydrogen2d job's step on one replica (full batch and half batch) and on all of them,
 * with the parts of the data-parallel gradient phase: the speed-up and what bounds it.
 */
async function defaultJob(v: typeof DEFAULTS): Promise<void> {
  const config = { ...HYDROGEN2D_PRESETS.default, reversePass: v.reversePass };
  const time = (workers: number, batch: number) =>
    timeReplicated(hydrogen2dProblem(), { ...config, batch }, { ...v, workers, seed: 0 });
  const cores = Math.max(2, v.workers || defaultReplicas(config.batch));
  const one = await time(1, config.batch);
  const shard = await time(1, config.batch / cores);
  const all = await time(cores, config.batch);
  const p = all.pool!;
  console.log(
    `default hydrogen2d job (${config.modes} modes, 3×${config.width}, batch ${config.batch}), ` +
      `median of ${v.steps} steps:\n` +
      `  1 replica: ${one.ms.toFixed(1)} ms/step; 1 replica at batch ${config.batch / cores}: ` +
      `${shard.ms.toFixed(1)} ms/step\n` +
      `  ${cores} replicas: ${all.ms.toFixed(1)} ms/step, speed-up ${
        (one.ms / all.ms).toFixed(2)
      }×; ` +
      `main-thread shard ${p.local.toFixed(1)} ms, Worker shard ${
        p.remote.map((r) => r.toFixed(1)).join(", ")
      } ms, waiting ${p.waiting.toFixed(1)} ms, averaging ${p.averaging.toFixed(1)} ms, ` +
      `gradient phase ${p.total.toFixed(1)} ms, rest ${(all.ms - p.total).toFixed(1)} ms\n` +
      `  bound with ideal exchange (one replica's step at the shard size): ${
        (one.ms / shard.ms).toFixed(2)
      }×`,
  );
}

/** One row per configuration: ours on 1 and on all replicas (forward Laplacian) and the peer. */
async function scalingTable(v: typeof DEFAULTS): Promise<void> {
  // one count for every row: the smallest batch's
  const cores = Math.max(2, v.workers || defaultReplicas(256));
  const sweeps = v.sweeps.split(",");
  const configs = [
    ...(sweeps.includes("batch") ? [256, 512, 1024, 2048, 4096, 8192] : []).map((batch) => ({
      ...v,
      batch,
      modes: 16,
    })),
    ...(sweeps.includes("modes") ? [4, 8, 32, 64] : []).map((modes) => ({
      ...v,
      modes,
      batch: 512,
    })),
  ];
  // The last column is the host's speed before the row (`hostProbe`, ~50 when quiet): rows taken
  // while another tenant loads the host read slow and can be re-run (`--sweeps`).
  console.log(
    `| batch | modes | 1 worker (ms) | ${cores} workers (ms) | speed-up | PyTorch 2 threads, freed memory kept (ms) | ours/PyTorch | host (GFLOP/s) |`,
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const c of configs) {
    // Fewer timed steps for big steps: about the work of 10 canonical steps, at least 2.
    const work = (c.batch / 512) * (c.modes / 16);
    const run = { ...c, steps: Math.max(2, Math.round(v.steps / work)), warmup: 1 };
    const host = hostProbe();
    // One replica's forward-mode jets for more than 4096 points × 16 modes of width 128 exceed
    // tfjs-wasm's heap (it aborts the process): such rows are measured on all replicas only.
    const one = c.batch * c.modes > 4096 * 16
      ? NaN
      : await ourStep({ ...run, workers: 1 }, "forward");
    const all = await ourStep({ ...run, workers: cores }, "forward");
    const peer = v.peer ? await peerStep(run, { keptMalloc: true }) : { skipped: "--no-peer" };
    const p = "ms" in peer ? peer.ms.toFixed(1) : "—";
    const ratio = "ms" in peer ? (all / peer.ms).toFixed(2) : "—";
    console.log(
      `| ${c.batch} | ${c.modes} | ${Number.isNaN(one) ? "heap limit" : one.toFixed(1)} | ${
        all.toFixed(1)
      } | ${Number.isNaN(one) ? "—" : (one / all).toFixed(2) + "×"} | ${p} | ${ratio} | ${
        host.toFixed(1)
      } |`,
    );
  }
}

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: { default: DEFAULTS },
    usage:
      "Usage: deno run --allow-read --allow-run=/usr/bin/python3 bench/hydrogen_step.ts [options]",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as typeof DEFAULTS;
  const info = await initBackend({ backend: v.backend, simdKernels: v.simdKernels });
  // Worker replicas are WASM engines; other backends time one replica.
  if (info.backend !== "wasm") v.workers = 1;
  if (v.paper) {
    v.modes = HYDROGEN2D_PRESETS.paper.modes;
    v.frequencies = HYDROGEN2D_PRESETS.paper.frequencies;
  }
  if (v.scaling) return await scalingTable(v);
  if (v.defaultJob) return await defaultJob(v);
  v.workers ||= defaultReplicas(v.batch);
  console.log(
    `2-D hydrogen step: ${v.modes} disjoint 3×${v.width} softplus MLPs, ${v.frequencies} Fourier ` +
      `frequencies, batch ${v.batch}; ${info.backend}` +
      (info.adapter ? ` (${info.adapter})` : `, SIMD ${info.simd}`) +
      `, ${v.workers} replica(s) of ${info.threads} thread, ` +
      `${v.block || stepsPerReadback()} step(s) per loss read-back`,
  );
  const before = hostProbe();
  // Rounds of our two steps and the peer's, each ratio within its round: this host's speed drifts
  // between runs, and a ratio of runs minutes apart would carry that drift.
  // On a CPU the peer runs twice a round: as shipped, and with glibc keeping freed memory
  // (KEPT_MALLOC), its faster and steadier form; our rows show the ratio to each.
  type Round = { fd: number; forward: number; pool?: PoolTimings; peers: (number | undefined)[] };
  const peerRuns = v.peerDevice === "cpu"
    ? [{ keptMalloc: true, name: "2 threads, freed memory kept" }, {
      keptMalloc: false,
      name: "2 threads, as shipped",
    }]
    : [{ keptMalloc: false, name: v.peerDevice.toUpperCase() }];
  const rounds: Round[] = [];
  let peer: { ms: number } | { skipped: string } = { skipped: "--no-peer" };
  for (let r = 0; r < v.rounds; r++) {
    const fd = await ourStep(v, "fd");
    const { ms: forward, pool } = await ourStepParts(v, "forward");
    const peers: (number | undefined)[] = [];
    for (const run of peerRuns) {
      if (v.peer && !("skipped" in peer && r > 0)) peer = await peerStep(v, run);
      peers.push("ms" in peer ? peer.ms : undefined);
    }
    rounds.push({ fd, forward, pool, peers });
  }
  const med = (f: (x: Round) => number) => median(rounds.map(f));
  const ours: [string, (x: Round) => number][] = [
    [`neuralsvd, fd Laplacian, ${v.workers} replica(s)`, (x) => x.fd],
    [`neuralsvd, forward Laplacian (exact), ${v.workers} replica(s)`, (x) => x.forward],
  ];
  const timed = rounds.every((x) => x.peers.every((p) => p !== undefined));
  if (v.rounds > 1) console.log(`medians of ${v.rounds} rounds (ratios taken within each round):`);
  const line = (name: string, ms: number, note = "") =>
    console.log(`${name.padEnd(40)} ${ms.toFixed(1).padStart(8)} ms/step${note}`);
  for (const [name, of] of ours) {
    const ratios = timed
      ? peerRuns.map((run, i) => {
        const r = rounds.map((x) => of(x) / x.peers[i]!);
        const spread = v.rounds > 1
          ? ` (rounds ${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)}×)`
          : "";
        return `${median(r).toFixed(2)}× the peer ${
          peerRuns.length > 1 ? `(${run.name})` : ""
        }${spread}`;
      })
      : [];
    line(name, med(of), ratios.length ? `  ${ratios.join("; ")}` : "");
  }
  if (timed) {
    peerRuns.forEach((run, i) =>
      line(`PyTorch peer, fd Laplacian, ${run.name}`, med((x) => x.peers[i]!))
    );
  }
  const pools = rounds.flatMap((x) => (x.pool ? [x.pool] : []));
  const pool = pools.length > 0 ? medianTimings(pools) : undefined;
  const forward = med((x) => x.forward);
  if ("skipped" in peer) console.log(`PyTorch peer skipped: ${peer.skipped}`);
  console.log(
    `host speed (a 2560×128·128×128 product on one thread): ${before.toFixed(1)} GFLOP/s before, ` +
      `${hostProbe().toFixed(1)} after (~50 on a quiet host here; lower means the figures are too)`,
  );
  if (pool) {
    console.log(
      `forward step on ${v.workers} replicas (medians): main-thread shard ${
        pool.local.toFixed(1)
      } ms, ` +
        `Worker shard${pool.remote.length > 1 ? "s" : ""} ${
          pool.remote.map((r) => r.toFixed(1)).join(", ")
        } ms, waiting for them ${pool.waiting.toFixed(1)} ms, averaging ${
          pool.averaging.toFixed(1)
        } ms, gradient phase ${pool.total.toFixed(1)} ms, rest of the step ${
          (forward - pool.total).toFixed(1)
        } ms (sampling, optimiser, EMA)`,
    );
  }
});
