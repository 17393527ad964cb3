"""Time the vectorised per-sample importance against a per-example loop that gives the same numbers, and SSD.

    .venv/bin/python benchmarks/importance.py [--width 16] [--samples 64] [--threads 1] [--device cpu]

Both estimators run on a CIFAR-style ResNet-18 (3x32x32 inputs, 10 classes) in eval mode with random weights and
random images; the loop does one backward pass per sample. SSD is then timed on a small full-class task.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from unlearnbench.data import get_spec
from unlearnbench.importance import cross_entropy, per_sample_gradient_importance
from unlearnbench.methods import Subset, UnlearnTask, run_method
from unlearnbench.models import create_model
from unlearnbench.train import Recipe


def per_example_loop(model, x, y):
    """The reference: mean over samples of squared gradients, one backward pass per sample."""
    model.eval()
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(x)):
        grads = torch.autograd.grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), params)
        for t, g in zip(total, grads):
            t += g.square()
    return [t / len(x) for t in total]


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16, help="ResNet-18 first-stage width (64 = full)")
    parser.add_argument("--samples", type=int, default=64, help="samples for the per-sample comparison")
    parser.add_argument("--ssd-samples", type=int, default=1024, help="training-set size for the SSD timing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model("resnet18", "cifar10", width=args.width).to(device)
    x = torch.rand(args.samples, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.samples,), device=device)
    batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, len(x), 32)]

    vectorised, t_vec = timed(lambda: per_sample_gradient_importance(model, batches, cross_entropy), device)
    looped, t_loop = timed(lambda: per_example_loop(model, x, y), device)
    worst = max(((v - r).abs().max() / r.abs().max().clamp_min(1e-30)).item() for v, r in zip(vectorised.values(), looped))
    print(f"ResNet-18 width {args.width}, 32x32, {args.samples} samples, {device}, {args.threads} thread(s)")
    print(f"  per-sample squared gradients, vmap: {t_vec:7.2f} s")
    print(f"  per-example loop:                   {t_loop:7.2f} s   speed-up {t_loop / t_vec:.1f}x, max relative difference {worst:.1e}")

    n = args.ssd_samples
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(n) % 10
    forget = labels == 0
    task = UnlearnTask(
        forget=Subset(images[forget], labels[forget]), retain=Subset(images[~forget], labels[~forget]),
        spec=get_spec("cifar10"), recipe=Recipe(epochs=1), initial_state=None, model_config={}, device=device,
        scenario={"kind": "full_class", "classes": [0]},
    )
    print(f"SSD on {n} training images (forget {int(forget.sum())}), full-class:")
    for method, estimator in [("ssd", "batch_mean"), ("ssd", "per_sample"), ("lfssd", "batch_mean")]:
        _, seconds = timed(lambda: run_method(method, copy.deepcopy(model), task, {"estimator": estimator}), device)
        print(f"  {method:5s} {estimator:10s}: {seconds:6.2f} s")


if __name__ == "__main__":
    main()
