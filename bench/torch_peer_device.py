#!/usr/bin/env python3
"""Runs the PyTorch peer script on another torch device, e.g. a CUDA GPU.

    python3 bench/torch_peer_device.py DEVICE PEER_SCRIPT [peer options...]

The peer creates its tensors with PyTorch's defaults, so setting the default device moves its whole
step there. GPU kernels run asynchronously: the peer's timer (time.perf_counter) is made to wait for
the device first, so each timed step covers its kernels, as our WebGPU step covers its own (it reads
its loss back every step). Prints the peer's JSON line with the device added.
"""
import contextlib, io, json, runpy, sys, time

if len(sys.argv) < 3:
    raise SystemExit("Usage: torch_peer_device.py DEVICE PEER_SCRIPT [peer options...]")
device, script, options = sys.argv[1], sys.argv[2], sys.argv[3:]

import torch

if device.startswith("cuda") and not torch.cuda.is_available():
    raise SystemExit(f"Device {device} is not available to PyTorch {torch.__version__}: "
                     "use --peer-device cpu")
if hasattr(torch, "set_default_device"):
    torch.set_default_device(device)
elif device != "cpu":  # PyTorch before 2.0
    torch.set_default_tensor_type(torch.cuda.FloatTensor)

clock = time.perf_counter


def synchronized_clock():
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return clock()


time.perf_counter = synchronized_clock
sys.argv = [script, *options]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    runpy.run_path(script, run_name="__main__")
result = json.loads(out.getvalue().strip().splitlines()[-1])
result["device"] = torch.cuda.get_device_name() if device.startswith("cuda") else device
print(json.dumps(result))
