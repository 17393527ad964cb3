"""The prepared device check: one command, one table, non-zero exit on any failure (about 8 minutes on one H100).

    python benchmarks/gpu_check.py                       # CUDA, full sizes (`make gpu-check`)
    python benchmarks/gpu_check.py --device cpu --tiny   # the same code on tiny sizes (tests/test_precision.py)

Rows: ResNet-18 training images/s at 32x32 (fp32 eager vs bf16 + channels_last + torch.compile, batch 512), ViT-B/16
training images/s at 224x224 (random weights, bf16), per-sample importance throughput (torch.func, fp32), 8 fast
nets (airbench94's widths) trained one after another and at once (``ensemble.fit_stacked``: the oracle ensemble's
``evaluation.stacked``), in images/s over all members, and the quick preset end to end through Snakemake with the
device set (every method, the tables built), each with its peak GPU memory (the end-to-end run: device-wide memory
in use, sampled every half second, over the idle baseline). Throughput is the second epoch's, so compilation and
warm-up are excluded. ``--tiny`` shrinks every size (ResNet-18 width 4, a small ViT at 32x32 instead of ViT-B/16, a
shorter quick preset) to test the script; on the CPU it leaves out compilation, which tests/test_precision.py tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import torch
import yaml

from unlearnbench.data import get_spec, training_loader
from unlearnbench.ensemble import fit_stacked
from unlearnbench.importance import cross_entropy, per_sample_gradient_importance
from unlearnbench.models import create_model
from unlearnbench.train import Recipe, fit

REPO = Path(__file__).resolve().parents[1]


def _data(n: int, size: int, device: torch.device):
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
    return x, torch.randint(0, 10, (n,))


def train_rate(model: torch.nn.Module, size: int, batch: int, steps: int, device, *, compile: bool, precision: str) -> float:
    """Images/s of ``fit`` in its second epoch of ``steps`` steps (the first compiles and warms up)."""
    x, y = _data(batch * steps, size, device)
    loader = training_loader(x, y, get_spec("cifar10"), batch, seed=0, device=device, augment=size == 32)
    history = fit(model, loader, Recipe(epochs=2, batch_size=batch, lr=0.01), compile=compile, precision=precision, desc="check")
    return history[-1]["images_per_s"]


def ensemble_rate(members: int, widths: tuple, batch: int, steps: int, device, *, stacked: bool) -> float:
    """Images/s over all ``members`` fast nets in their second epoch of ``steps`` steps (bf16 on a GPU, fp32 on the
    CPU), trained one after another with ``fit`` or at once with ``fit_stacked``."""
    x, y = _data(batch * steps, 32, device)
    precision = "bf16" if device.type == "cuda" else "fp32"
    recipe = Recipe.from_dict({"preset": "airbench", "epochs": 2, "batch_size": batch})
    models, loaders = [], []
    for seed in range(members):
        torch.manual_seed(seed)
        models.append(create_model("airbench", "cifar10", widths=widths))
        models[-1].init_from_data(x[:1000])
        loaders.append(training_loader(x, y, get_spec("cifar10"), batch, seed=seed, device=device))
    if stacked:
        return fit_stacked(models, loaders, recipe, precision=precision)[-1]["images_per_s"]
    seconds = sum(fit(model, loader, recipe, precision=precision, desc="check")[-1]["seconds"]
                  for model, loader in zip(models, loaders))
    return members * batch * steps / seconds


def importance_rate(width: int, samples: int, chunk: int, device) -> float:
    """Samples/s of the per-sample (vmap) cross-entropy importance on ResNet-18 at 32x32, after one warm-up batch."""
    model = create_model("resnet18", "cifar10", width=width).to(device)
    x, y = _data(samples, 32, device)
    batches = [(x[i : i + chunk].to(device).float() / 255, y[i : i + chunk].to(device)) for i in range(0, samples, chunk)]
    per_sample_gradient_importance(model, batches[:1], cross_entropy)
    _sync(device)
    start = time.perf_counter()
    per_sample_gradient_importance(model, batches, cross_entropy)
    _sync(device)
    return samples / (time.perf_counter() - start)


def quick_preset(device: str, tiny: bool) -> float:
    """Run config/quick.yaml through Snakemake into results/gpu-check (removed afterwards); returns seconds."""
    config = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    if tiny:  # one scenario, narrower and shorter originals, smaller ensembles; every method still runs
        for exp in config["experiments"].values():
            if "width" in exp["model"].get("options", {}):
                exp["model"]["options"]["width"] = 4
            exp["train"]["epochs"] = 2
        config["experiments"]["digits_resnet"]["scenarios"] = ["class_3"]
        if "evaluation" in config:
            config["evaluation"].update(oracles=4, unlearn_seeds=2)
    name = "gpu-check"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(config, f)
    for folder in (REPO / "results" / name, REPO / "figures" / name):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    start = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, "-m", "snakemake", "--configfile", f.name, "--config", f"name={name}", f"device={device}",
             "--cores", "all", "--quiet", "all"],
            cwd=REPO, check=True,
        )
        summary = REPO / "figures" / name / "summary.csv"
        if not summary.is_file() or len(summary.read_text().splitlines()) < 2:
            raise RuntimeError(f"the quick preset built no summary table ({summary})")
        return time.perf_counter() - start
    finally:
        Path(f.name).unlink()
        for folder in (REPO / "results" / name, REPO / "figures" / name):
            subprocess.run(["rm", "-rf", str(folder)], check=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class DevicePeak:
    """Peak device-wide GPU memory in use (MiB) over the baseline, sampled in a thread (for child processes)."""

    def __init__(self, device: torch.device):
        self.device, self.peak, self.running = device, 0.0, True
        if device.type == "cuda":
            self.base = self._used()
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()

    def _used(self) -> float:
        free, total = torch.cuda.mem_get_info(self.device)
        return (total - free) / 2**20

    def _poll(self) -> None:
        while self.running:
            self.peak = max(self.peak, self._used() - self.base)
            time.sleep(0.5)

    def stop(self) -> float | None:
        self.running = False
        return self.peak if self.device.type == "cuda" else None


def run_check(rows: list, name: str, setting: str, unit: str, fn, device: torch.device) -> None:
    """Run one check and add its row: name, setting, rate, peak GPU MiB, seconds, status."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    peak = DevicePeak(device) if name == "quick preset" else None
    try:
        value, status = fn(), "ok"
    except Exception as err:  # noqa: BLE001 - every failure is a row, and the exit status
        traceback.print_exc()
        value, status = None, f"FAILED: {type(err).__name__}: {str(err).splitlines()[0][:80] if str(err) else ''}"
    memory = peak.stop() if peak else (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None)
    rows.append((name, setting, "-" if value is None else f"{value:,.0f} {unit}", "-" if memory is None else f"{memory:,.0f}",
                 f"{time.perf_counter() - start:.0f}", status))
    print(f"{name} | {setting} | {rows[-1][2]} | {status}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and a short quick preset (tests the script)")
    parser.add_argument("--skip-quick", action="store_true", help="leave out the end-to-end quick preset")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU visible; run with --device cpu --tiny to test the script", file=sys.stderr)
        return 1
    tiny = args.tiny
    width, batch, steps = (4, 16, 3) if tiny else (64, 512, 30)
    # inductor takes minutes to compile on a busy CPU; tests/test_precision.py covers compile there
    compile = not (tiny and device.type == "cpu")
    fast = "bf16" + ("+channels_last" if device.type == "cuda" else "") + ("+compile" if compile else "")
    torch.manual_seed(0)
    rows: list = []
    for label, compile, precision in (("fp32", False, "fp32"), (fast, compile, "bf16")):
        run_check(rows, "ResNet-18 train, 32x32", f"{label}, batch {batch}", "img/s",
                  lambda c=compile, p=precision: train_rate(create_model("resnet18", "cifar10", width=width), 32, batch,
                                                            steps, device, compile=c, precision=p), device)
    if tiny:
        vit, vit_size, vit_name, vit_batch, vit_steps = (
            lambda: create_model("vit_small", "cifar10", depth=2, dim=32, heads=2, mlp_dim=64), 32, "small ViT, 32x32", 8, 2)
    else:
        vit, vit_size, vit_name, vit_batch, vit_steps = (
            lambda: create_model("vit_b_16", "cifar10", weights="none"), 224, "ViT-B/16 train, 224x224", 128, 10)
    run_check(rows, vit_name, f"bf16, batch {vit_batch}", "img/s",
              lambda: train_rate(vit(), vit_size, vit_batch, vit_steps, device, compile=False, precision="bf16"), device)
    samples, chunk = (32, 16) if tiny else (4096, 512)
    run_check(rows, "per-sample importance", f"ResNet-18 width {width}, fp32, vmap {chunk}", "samples/s",
              lambda: importance_rate(width, samples, chunk, device), device)
    members, widths, e_batch, e_steps = (2, (4, 8, 8), 16, 3) if tiny else (8, (64, 256, 256), 512, 30)
    for stacked in (False, True):
        run_check(rows, f"{members} fast nets, " + ("at once" if stacked else "one after another"),
                  f"airbench {'/'.join(map(str, widths))}, batch {e_batch}", "img/s",
                  lambda s=stacked: ensemble_rate(members, widths, e_batch, e_steps, device, stacked=s), device)
    if not args.skip_quick:
        run_check(rows, "quick preset", f"snakemake, device {device.type}" + (", tiny" if tiny else ""), "s",
                  lambda: quick_preset(args.device, tiny), device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\ndevice: {gpu}; torch {torch.__version__}\n")
    header = ("check", "setting", "rate", "peak GPU MiB", "seconds", "status")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if all(row[-1] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
