"""Each method's wall time beside the retrain oracle's, on the same model, data and seed, from cached runs.

    python benchmarks/method_times.py [results/quick]

Reads every ``run.json`` under a results folder (the unlearn rule measures the method alone, evaluation
excluded) and prints, per experiment and scenario, the mean time of each method, the oracle's, and the speed-up
(retrain time / method time). Run the workflow first (``make quick``, or a paper's config on a GPU).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from unlearnbench.results import ORACLE
from unlearnbench.seeds import format_label, parse_label


def method_times(results: Path) -> pd.DataFrame:
    rows = []
    for path in results.glob("*/seed*/*/*/run.json"):
        method, scenario, seed, experiment = path.parts[-2], path.parts[-3], path.parts[-4], path.parts[-5]
        label = seed[len("seed"):]  # the run's seed label; its oracle's drops the unlearning seed
        rows.append({"experiment": experiment, "scenario": scenario, "seed": label, "method": method,
                     "oracle_seed": format_label(parse_label(label).oracle),
                     "seconds": json.loads(path.read_text())["seconds"]})
    if not rows:
        raise SystemExit(f"no run.json under {results}; run the workflow first (make quick)")
    runs = pd.DataFrame(rows)
    oracle = runs[runs["method"] == ORACLE].set_index(["experiment", "scenario", "seed"])["seconds"]
    runs["retrain_seconds"] = runs.set_index(["experiment", "scenario", "oracle_seed"]).index.map(oracle)
    table = runs.groupby(["experiment", "scenario", "method"], sort=False)[["seconds", "retrain_seconds"]].mean()
    table["speed_up"] = table["retrain_seconds"] / table["seconds"]
    table["fraction_of_retrain"] = table["seconds"] / table["retrain_seconds"]
    return table.reset_index().sort_values(["experiment", "scenario", "seconds"])


if __name__ == "__main__":
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "results/quick")
    print(f"method wall time vs the retrain oracle, mean over seeds, from {results}")
    print(method_times(results).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
