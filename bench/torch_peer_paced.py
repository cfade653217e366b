#!/usr/bin/env python3
"""Runs the PyTorch peer script's training step on command, for paired timings.

    python3 bench/torch_peer_paced.py PEER_SCRIPT [peer options...]

Loads the peer (its setup and one step, whose output is dropped), prints "ready", then for each
line "step" on standard input takes one more step and prints its time in milliseconds; "quit" or
the end of the input ends it. `deno task bench:paired --peer` drives it, a step of ours and a step
of the peer's in turn.
"""
import contextlib, io, runpy, sys, time

if len(sys.argv) < 2:
    raise SystemExit("Usage: torch_peer_paced.py PEER_SCRIPT [peer options...]")
script, options = sys.argv[1], sys.argv[2:]
# The peer's own timed loop runs once, as a warm-up; the last --steps and --warmup win.
sys.argv = [script, *options, "--steps", "1", "--warmup", "0"]
with contextlib.redirect_stdout(io.StringIO()):
    peer = runpy.run_path(script, run_name="__main__")
step = peer.get("step")
if not callable(step):
    raise SystemExit(f"The peer script {script} defines no step() to call")
print("ready", flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "quit":
        break
    if command != "step":
        raise SystemExit(f"Unknown command {command!r}: expected step or quit")
    t0 = time.perf_counter()
    step()
    print(f"{(time.perf_counter() - t0) * 1e3:.3f}", flush=True)
