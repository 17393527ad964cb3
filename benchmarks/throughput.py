"""Training throughput of ResNet-18 at 32x32 on the current device, and the quick preset's wall time.

    python benchmarks/throughput.py [--steps 10] [--skip-quick]

Prints images/s for the full-width ResNet-18 (width 64) and the CPU width (16), with the device, threads, batch
size and precision (bf16 autocast + channels_last on CUDA, with and without torch.compile).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from unlearnbench.data import get_spec, training_loader
from unlearnbench.models import create_model
from unlearnbench.train import Recipe, fit

REPO = Path(__file__).resolve().parents[1]


def throughput(width: int, batch_size: int, steps: int, device: torch.device, compile: bool) -> float:
    spec = get_spec("cifar10")
    n = batch_size * (steps + 2)  # two warm-up steps
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (n,))
    model = create_model("resnet18", "cifar10", width=width)
    loader = training_loader(x, y, spec, batch_size, seed=0, device=device)
    history = fit(model, loader, Recipe(epochs=1, batch_size=batch_size, lr=0.01), compile=compile, desc=f"width {width}")
    # the epoch's rate includes the warm-up (and compilation); re-run to measure steady state
    start = time.perf_counter()
    fit(model, loader, Recipe(epochs=1, batch_size=batch_size, lr=0.01), compile=compile, desc=f"width {width}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start) if history else float("nan")


def quick_wall_time() -> float:
    config = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    config["name"] = "benchmark-quick"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(config, f)
    shutil.rmtree(REPO / "results" / "benchmark-quick", ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--configfile", f.name, "--cores", "all", "--quiet", "all"], cwd=REPO, check=True)
    seconds = time.perf_counter() - start
    shutil.rmtree(REPO / "results" / "benchmark-quick", ignore_errors=True)
    shutil.rmtree(REPO / "figures" / "benchmark-quick", ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--skip-quick", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {os.cpu_count()} CPUs")
    batch = 256 if device.type == "cuda" else 64
    for width in (64, 16):
        for compile in ((False, True) if device.type == "cuda" else (False,)):
            rate = throughput(width, batch, args.steps, device, compile)
            label = "bf16+channels_last" + ("+compile" if compile else "") if device.type == "cuda" else "fp32"
            print(f"ResNet-18 width {width:>2} at 32x32, batch {batch}, {label}: {rate:,.0f} images/s")
    if not args.skip_quick:
        print(f"quick preset (config/quick.yaml, --cores all): {quick_wall_time():.0f} s wall time")


if __name__ == "__main__":
    main()
