"""Jobs and estimated GPU-hours per rule of each paper's full grid (config/papers/*.yaml), from stated throughputs.

    python benchmarks/gpu_hours.py [--scale full] [config/papers/del.yaml ...]

Jobs are counted as the DAG does (every experiment x seed x scenario x method the method applies to; the retrain
oracle always; the oracle and unlearned ensembles and U-LiRA's shadows where a metric needs them).
Hours are training images divided by an assumed H100 training throughput (bf16 + channels_last + torch.compile),
until ``benchmarks/gpu_check.py`` measures one, plus ``JOB_OVERHEAD_S`` per job (process start, data loading, compilation, logits); evaluation jobs are left
out. Read them as rough lower bounds:

- the original and every oracle: ``recipe.epochs x |train set|`` images;
- a method with an ``epochs`` hyperparameter: ``epochs x |train set|`` (an upper bound: most train on D_r or D_f);
- a method without one (SSD, Fisher forgetting, ...): one pass over the training set;
- U-LiRA's shadows train and unlearn on half the training set.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from unlearnbench.config import apply_scale, method_config, pairings, scenarios_of
from unlearnbench.catalog import hyperparameters, supports  # read from the source: no torch
from unlearnbench.results import ORACLE
from unlearnbench.seeds import seed_grid

REPO = Path(__file__).resolve().parents[1]

# Assumed training images/s on one H100 (bf16, channels_last, compiled), by model and input size: ResNet-18 at
# 32x32 ~ 25k (public CIFAR speed-runs reach more with smaller nets), ViT-B/16 at 224x224 ~ 1.2k (MLPerf-class
# figures for ViT-B training on H100 are 1-1.5k), the small ViT and the MLP from their FLOPs relative to ResNet-18.
IMAGES_PER_S = {"resnet18": 25_000, "vit_b_16": 1_200, "vit_small": 20_000, "mlp": 200_000}
TRAIN_SIZE = {"cifar10": 50_000, "cifar100": 50_000, "cifar20": 50_000, "svhn": 73_257, "mnist": 60_000,
              "fashion_mnist": 60_000, "digits": 1_300}
DEFAULT_TRAIN_SIZE = 50_000
JOB_OVERHEAD_S = 30


def _train_size(config: dict, dataset_key: str) -> int:
    dataset = config["datasets"][dataset_key] or {}
    return dataset.get("train_size") or TRAIN_SIZE.get(dataset.get("name", dataset_key), DEFAULT_TRAIN_SIZE)


def estimate(config: dict) -> dict[str, list[float]]:
    """``{rule: [jobs, GPU-hours]}`` for one resolved config."""
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    metrics, ev = config.get("metrics", []), config.get("evaluation", {})
    shadows = ev.get("ulira_shadows", 0) if any(m.startswith("ulira_shadows") for m in metrics) else 0
    ensembles = any(m.startswith(("neurips_", "klom_")) for m in metrics)
    ulira = ev.get("ulira", {}).get("oracles", 4) if any(m.startswith("ulira_") and not m.startswith(
        "ulira_shadows") for m in metrics) else 0
    oracles, n_unlearned = max(ulira, ev.get("oracles", 0) if ensembles else 0), ev.get("unlearn_seeds", 0)
    per_job = ev.get("models_per_job", 4)
    evaluated = ev.get("methods", [m for m in config["methods"] if m != "original"])

    def add(rule: str, models: int, epochs: float, jobs: int | None = None, part: float = 1.0) -> None:
        jobs = models if jobs is None else jobs
        out[rule][0] += jobs
        out[rule][1] += (models * epochs * part * n / rate + jobs * JOB_OVERHEAD_S) / 3600

    for exp in config["experiments"].values():
        n = _train_size(config, exp["dataset"])
        rate = IMAGES_PER_S.get(exp["model"]["name"], IMAGES_PER_S["resnet18"])
        for _ in config["seeds"]:
            add("train_original", 1, exp["train"]["epochs"])
            add("shadow_original", shadows, exp["train"]["epochs"], part=0.5)
        grid = seed_grid(config)  # every run's (training, forget-set, unlearning) seeds
        oracle_runs = len({run_seeds.oracle for run_seeds in grid})  # the retrain oracle: once per (t, f)
        for scenario, name in pairings(exp):
            method = method_config(config, name)
            if not supports(method["method"], config["scenarios"][scenario]["kind"]):
                continue
            epochs = exp["train"]["epochs"] if method["method"] == "retrain" else method.get(
                "epochs", hyperparameters(method["method"]).get("epochs", 1))
            runs = oracle_runs if name == ORACLE else len(grid)
            add("unlearn", runs, epochs)
            if name in evaluated:
                if ensembles and method["method"] != "retrain":
                    add("unlearn_ensemble", runs * (n_unlearned - 1), epochs, runs * -(-(n_unlearned - 1) // per_job))
                add("shadow_unlearn", runs * shadows, epochs, runs * -(-shadows // per_job), part=0.5)
        add("oracle_ensemble", oracle_runs * oracles * len(scenarios_of(exp)), exp["train"]["epochs"],
            oracle_runs * -(-oracles // per_job) * len(scenarios_of(exp)))
    return {rule: v for rule, v in out.items() if v[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--scale", default="full")
    args = parser.parse_args(argv)
    paths = args.configs or sorted((REPO / "config" / "papers").glob("*.yaml"))
    print("| paper | rule | jobs | GPU-hours |\n|---|---|---:|---:|")
    for path in paths:
        config = apply_scale({**yaml.safe_load(path.read_text()), "scale": args.scale})
        rules = estimate(config)
        for rule, (jobs, hours) in rules.items():
            print(f"| {path.stem} | {rule} | {jobs:,} | {hours:,.1f} |")
        total_jobs, total_hours = sum(j for j, _ in rules.values()), sum(h for _, h in rules.values())
        print(f"| {path.stem} | **all** | {total_jobs:,} | {total_hours:,.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
