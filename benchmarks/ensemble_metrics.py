"""Time the per-example ensemble scores (``unlearnbench.ensemble_metrics``) at N = 16, 32, 64, 128 models on
CIFAR-sized synthetic logits: 50,000 training samples (5,000 forget, 45,000 retain), 10,000 test samples, 10 classes.
CPU, torch-free, like the metrics job; the cost depends only on the sizes, not on the values.

- NeurIPS 2023 score: N unlearned vs N retrained models on the forget set (its per-example threshold search is the
  costly part: ~160,000 threshold pairs per example, linear in the number of examples, so ``--eps-examples`` times a
  subset and the 5,000-example figure is extrapolated from it);
- KLoM: N unlearned vs N oracles on forget, retain and test;
- U-LiRA: M = N shadow models (random halves, a tenth of each half unlearned), every model attacked in turn, on all
  60,000 samples.

    .venv/bin/python benchmarks/ensemble_metrics.py                      # full sizes (the epsilon search: minutes)
    .venv/bin/python benchmarks/ensemble_metrics.py --eps-examples 500   # time the epsilon search on 500 examples
    .venv/bin/python benchmarks/ensemble_metrics.py --results results/evaluation_cifar10-reduced  # cost per model

``--results DIR`` prints instead what a cached run's ensembles cost per model: each ensemble file's per-model
method time (the ``seconds`` its job recorded: training or unlearning, without loading and logits) and, where the
job has a Snakemake benchmark, its wall time per model, grouped by what was trained (the oracles, or a method's
unlearned models).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import numpy as np

from unlearnbench import ensemble_metrics as em

CLASSES, RETAIN, FORGET, TEST = 10, 45_000, 5_000, 10_000


def logits(rng: np.random.Generator, n_models: int, labels: np.ndarray, margin: float) -> np.ndarray:
    """float32 logits with a noisy true-class margin (the cached logits' dtype)."""
    z = rng.standard_normal((n_models, len(labels), CLASSES), dtype=np.float32)
    z[:, np.arange(len(labels)), labels] += margin + rng.standard_normal((n_models, len(labels)), dtype=np.float32)
    return z


def timed(fn, *args, **kw) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - start, out


def model_costs(results: Path) -> None:
    """Per-model seconds of the oracle and unlearned ensembles cached under ``results`` (``k*.npz`` and
    ``unlearn_seeds/j*.npz``), with the jobs' wall time per model where ``benchmarks/`` has it."""
    groups: dict[str, dict[str, list[float]]] = {}
    paths = sorted(results.glob("*/seed*/*/oracles/k*.npz")) + sorted(results.glob("*/seed*/*/*/unlearn_seeds/j*.npz"))
    for path in paths:
        exp, seed, scenario = path.relative_to(results).parts[:3]
        kind = "oracles" if path.parent.name == "oracles" else path.parent.parent.name
        method_seconds = np.load(path)["seconds"].tolist()
        group = groups.setdefault(f"{exp} {scenario} {kind}", {"method": [], "wall": []})
        group["method"] += method_seconds
        rule, where = ("oracle_ensemble", ()) if kind == "oracles" else ("unlearn_ensemble", (kind,))
        tsv = results.joinpath("benchmarks", rule, exp, seed, scenario, *where, path.with_suffix(".tsv").name)
        if tsv.exists():
            with open(tsv) as f:
                wall = float(next(csv.DictReader(f, delimiter="\t"))["s"])
            group["wall"] += [wall / len(method_seconds)] * len(method_seconds)
    if not groups:
        raise SystemExit(f"no ensemble files under {results}/<experiment>/seed*/<scenario>/")
    print(f"{'ensemble':<48} {'models':>6} {'s per model (method)':>21} {'s per model (job wall)':>23}")
    for name, group in groups.items():
        m = np.asarray(group["method"])
        wall = f"{np.mean(group['wall']):.1f}" if group["wall"] else "-"
        print(f"{name:<48} {len(m):>6} {m.mean():>14.1f} ± {m.std():<5.1f} {wall:>23}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--eps-examples", type=int, default=FORGET, help="forget examples to time the epsilon search on")
    parser.add_argument("--results", type=Path, help="a cached run's results folder: its ensembles' cost per model")
    args = parser.parse_args()
    if args.results:
        return model_costs(args.results)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; sizes: forget {FORGET}, retain {RETAIN}, test {TEST}")
    rng = np.random.default_rng(0)
    y = {"forget": rng.integers(0, CLASSES, FORGET), "retain": rng.integers(0, CLASSES, RETAIN),
         "test": rng.integers(0, CLASSES, TEST)}
    print(f"{'N':>4} {'eps s (timed)':>14} {'eps s / 5000 ex':>16} {'KLoM s':>8} {'U-LiRA s':>9}  F      "
          "KLoM P95 forget  U-LiRA AUC")
    for n in args.models:
        unl = {k: logits(rng, n, v, 3.0) for k, v in y.items()}
        ora = {k: logits(rng, n, v, 3.0 if k != "forget" else 2.0) for k, v in y.items()}
        k = args.eps_examples
        acc = (np.ones(n), np.ones(n))
        t_eps, eps = timed(em.neurips2023_score, unl["forget"][:, :k], ora["forget"][:, :k], y["forget"][:k], acc, acc)
        t_klom, kl = timed(em.klom, unl, ora, y)
        all_y = np.concatenate([y["forget"], y["retain"], y["test"]])
        shadows = np.concatenate([unl["forget"], unl["retain"], unl["test"]], axis=1)
        del unl, ora
        trained = rng.random(shadows.shape[:2]) < 0.5
        unlearned = trained & (rng.random(shadows.shape[:2]) < 0.1)
        t_ulira, ul = timed(em.ulira, shadows, all_y, unlearned, ~trained)
        print(f"{n:>4} {t_eps:>14.1f} {t_eps * FORGET / k:>16.0f} {t_klom:>8.1f} {t_ulira:>9.1f}  "
              f"{eps['forgetting_quality']:.3f}  {kl['forget']['p95']:>14.3f}  {ul['auc']:>10.3f}")


if __name__ == "__main__":
    main()
