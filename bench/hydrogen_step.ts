/**
 * Times the full canonical 2-D hydrogen training step — 16 modes, disjoint 3×128 softplus MLPs on
 * 256 Fourier frequencies (scale 0.1), batch 512, Gaussian sampling (s = 16), T = 100·(−H),
 * sequential nesting, RMSprop — with the `fd` and `forward` kinetic terms, and, when Debian's PyTorch
 * is installed, the same step of the PyTorch peer (../shared/peer/torch_hydrogen_step.py, 2 threads),
 * printed side by side as a ratio.
 *
 *   deno run --allow-read --allow-run=/usr/bin/python3 bench/hydrogen_step.ts [--steps 10]
 *
 * @module
 */
import {
  coulombPotential,
  gaussianDensity,
  initBackend,
  Mlp,
  Rng,
  SchrodingerOperator,
  Trainer,
} from "../mod.ts";
import { parseCli, runMain } from "../lib/cli.ts";

const FLAGS = {
  modes: { type: "integer", min: 1, description: "modes L" },
  batch: { type: "integer", min: 2, description: "batch size" },
  frequencies: { type: "integer", min: 1, description: "Fourier frequencies" },
  width: { type: "integer", min: 1, description: "hidden width" },
  steps: { type: "integer", min: 1, description: "timed steps" },
  warmup: { type: "integer", min: 0, description: "untimed steps first" },
  peer: { type: "boolean", description: "also time the PyTorch peer when it is installed" },
  python: { type: "string", description: "Debian's system python3 with python3-torch" },
} as const;
const DEFAULTS = {
  modes: 16,
  batch: 512,
  frequencies: 256,
  width: 128,
  steps: 10,
  warmup: 2,
  peer: true,
  python: "/usr/bin/python3",
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function ourStep(v: typeof DEFAULTS, kinetic: string): Promise<number> {
  const rng = new Rng(0);
  const model = new Mlp({
    inputDim: 2,
    outputs: v.modes,
    hidden: [v.width, v.width, v.width],
    disjoint: true,
    fourier: { frequencies: v.frequencies, scale: 0.1 },
    rng,
  });
  const op = new SchrodingerOperator({
    dim: 2,
    potential: coulombPotential(),
    density: gaussianDensity({ dim: 2, std: 16 }),
    scale: 100,
    kinetic,
    fdEpsilon: 0.01,
  });
  const trainer = new Trainer({ operator: op, model }, {
    steps: 1000,
    batchSize: v.batch,
    nesting: "sequential",
    optimizer: { name: "rmsprop", alpha: 0.999, epsilon: 1e-10 },
    lr: 1e-4,
    rng,
  });
  const times: number[] = [];
  for (let i = 0; i < v.warmup + v.steps; i++) {
    const t0 = performance.now();
    await trainer.step();
    if (i >= v.warmup) times.push(performance.now() - t0);
  }
  trainer.dispose();
  model.dispose();
  return median(times);
}

async function peerStep(v: typeof DEFAULTS): Promise<{ ms: number } | { skipped: string }> {
  const peer = new URL("../../shared/peer/torch_hydrogen_step.py", import.meta.url);
  try {
    Deno.statSync(peer);
  } catch {
    return { skipped: `the peer script ${peer.pathname} is not there` };
  }
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(v.python, {
      args: [
        peer.pathname,
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

await runMain(async () => {
  const cli = parseCli(Deno.args, {
    flags: FLAGS,
    presets: { default: DEFAULTS },
    usage:
      "Usage: deno run --allow-read --allow-run=/usr/bin/python3 bench/hydrogen_step.ts [options]",
  });
  if (cli.help) return console.log(cli.helpText);
  const v = cli.values as typeof DEFAULTS;
  const info = await initBackend();
  console.log(
    `2-D hydrogen step: ${v.modes} disjoint 3×${v.width} softplus MLPs, ${v.frequencies} Fourier ` +
      `frequencies, batch ${v.batch}; ${info.backend}, SIMD ${info.simd}, ${info.threads} thread`,
  );
  const fd = await ourStep(v, "fd");
  const forward = await ourStep(v, "forward");
  const peer = v.peer ? await peerStep(v) : { skipped: "--no-peer" };
  const rows: [string, number][] = [["neuralsvd, fd Laplacian", fd], [
    "neuralsvd, forward Laplacian (exact)",
    forward,
  ]];
  if ("ms" in peer) rows.push(["PyTorch peer, fd Laplacian, 2 threads", peer.ms]);
  for (const [name, ms] of rows) {
    const ratio = "ms" in peer ? `  (${(ms / peer.ms).toFixed(2)}× the peer)` : "";
    console.log(`${name.padEnd(40)} ${ms.toFixed(1).padStart(8)} ms/step${ratio}`);
  }
  if ("skipped" in peer) console.log(`PyTorch peer skipped: ${peer.skipped}`);
});
