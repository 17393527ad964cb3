"""Time the metrics suite on one CIFAR-sized run: 50,000 retain + 5,000 forget training samples, 10,000 test
samples, 10 classes, with the retrain oracle, an incompetent model and 4 U-LiRA oracles (synthetic logits; the
attacks' cost depends only on the sizes). Runs on the CPU, torch-free, like the metrics job.

    .venv/bin/python benchmarks/metrics.py                 # every logit-based metric (mia_entropy_svc takes minutes)
    .venv/bin/python benchmarks/metrics.py --default-only  # the schema's default list
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml

from unlearnbench.metrics import METRICS, Evaluation

CLASSES, RETAIN, FORGET, TEST = 10, 50_000, 5_000, 10_000


def synthetic(rng: np.random.Generator, margin_train: float, margin_test: float, y_train: np.ndarray, y_test: np.ndarray, split: dict) -> Evaluation:
    """Logits with a true-class margin: larger on training samples, as a model that fits its training set."""
    def logits(y, margin):
        z = rng.normal(0, 1, (len(y), CLASSES)).astype(np.float32)
        z[np.arange(len(y)), y] += rng.normal(margin, 1.5, len(y))
        return z

    return Evaluation(logits(y_train, margin_train), logits(y_test, margin_test), y_train, y_test, split, {"seconds": 60.0}, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--default-only", action="store_true", help="time the schema's default metric list only")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, CLASSES, RETAIN + FORGET), rng.integers(0, CLASSES, TEST)
    forget = np.sort(rng.choice(RETAIN + FORGET, FORGET, replace=False))
    split = {"forget": forget, "retain": np.setdiff1d(np.arange(RETAIN + FORGET), forget),
             "test_forget": np.arange(0), "test_retain": np.arange(TEST)}
    ev = synthetic(rng, 6.0, 4.0, y_train, y_test, split)
    ev.oracle = synthetic(rng, 6.0, 4.0, y_train, y_test, split)
    ev.oracle.run = {"seconds": 600.0}
    ev.incompetent = synthetic(rng, 0.0, 0.0, y_train, y_test, split)
    ev.ulira_oracles = [synthetic(rng, 6.0, 4.0, y_train, y_test, split) for _ in range(4)]
    if args.default_only:
        schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
        names = schema["properties"]["metrics"]["default"]
    else:
        names = [m for m in METRICS if "relearn" not in METRICS[m].needs]
    print(f"{RETAIN} retain, {FORGET} forget, {TEST} test samples, {CLASSES} classes; {len(names)} metrics")
    total = 0.0
    for name in names:
        start = time.perf_counter()
        value = ev.value(name)
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{name:28s} {seconds:8.2f} s   value {value}", flush=True)
    print(f"{'whole suite':28s} {total:8.2f} s")


if __name__ == "__main__":
    main()
