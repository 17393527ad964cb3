"""The results layer's data: metrics.json records → one row per run, Δ to the oracle, mean ± std over seeds.

Pure pandas, no drawing and no writing (``tables`` and ``figures`` build on this module). Every aggregated number
is mean ± std (ddof=1) over seeds, with the number of seeds and which ones went in. DEL's Δ = oracle − method is
paired by seed (each run against the retrain oracle of its own seed and scenario): Δ > 0 means below the oracle,
and the smaller |Δ| the better.
"""

from __future__ import annotations

import pandas as pd

from .io import load_json
from .metrics import METRICS

ORACLE = "retrain"  # the retrain oracle's method entry: every experiment runs it, every Δ is taken against it
KEYS = ["experiment", "scenario", "method"]
ARROW = {"higher": "↑", "lower": "↓", "oracle": "≈oracle"}
UNIT = {"fraction": " %", "seconds": " s", "ratio": "", "nats": " nats", "epochs": " epochs"}
# scale -> (factor, decimals) of a printed value; "reported": a number already in a paper's unit (%, s)
FORMATS = {"fraction": (100, 1), "seconds": (1, 2), "ratio": (1, 3), "nats": (1, 3), "epochs": (1, 2),
           "reported": (1, 2)}


def load_records(paths: list[str]) -> list[dict]:
    return [load_json(p, "metrics file") for p in paths]


def load_runs(paths: list[str]) -> pd.DataFrame:
    """One row per run: experiment, scenario, method, seed and every metric."""
    return runs_frame(load_records(paths))


def runs_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"experiment": r["experiment"], "scenario": r["scenario"], "method": r["method"],
                          "seed": r["seed"], **r["metrics"]} for r in records])


def provenance_table(records: list[dict]) -> pd.DataFrame:
    """How many runs each code version produced (git commit, package and torch versions, from metrics.json)."""
    rows = pd.DataFrame([r.get("provenance", {}) for r in records]).fillna("unknown")
    return rows.value_counts().rename("runs").reset_index()


def oracle_deltas(runs: pd.DataFrame) -> pd.DataFrame:
    """DEL's Δ = oracle − method per run, for every fraction-scaled metric that is not itself relative to the
    oracle, against the retrain oracle of the same experiment, scenario and seed (NaN where it is missing)."""
    names = [m for m in METRICS
             if m in runs.columns and METRICS[m].scale == "fraction" and "oracle" not in METRICS[m].needs]
    pair = ["experiment", "scenario", "seed"]
    oracle = runs.loc[runs["method"] == ORACLE, pair + names]
    merged = runs[KEYS + ["seed"] + names].merge(oracle, on=pair, how="left", suffixes=("", "_oracle"))
    deltas = {f"delta_{m}": merged[f"{m}_oracle"].astype(float) - merged[m].astype(float) for m in names}
    return pd.concat([merged[KEYS + ["seed"]], pd.DataFrame(deltas)], axis=1)


def with_deltas(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with their Δ to the oracle as ``delta_<metric>`` columns."""
    return runs.merge(oracle_deltas(runs), on=KEYS + ["seed"], how="left")


def metric_columns(runs: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in runs.columns] + [c for c in runs.columns if c.startswith("delta_")]


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (ddof=1; NaN for one seed) and seeds per (experiment, scenario, method) of every
    metric and every Δ to the oracle, in the order the runs list the methods."""
    runs = with_deltas(runs)
    order = {m: i for i, m in enumerate(dict.fromkeys(runs["method"]))}
    grouped = runs.groupby(KEYS, sort=False)
    table = grouped[metric_columns(runs)].agg(["mean", "std"])
    table.columns = [f"{m}_{stat}" for m, stat in table.columns]
    table.insert(0, "n", grouped.size())
    table.insert(1, "seeds", grouped["seed"].agg(lambda s: " ".join(map(str, sorted(s)))))
    table = table.reset_index()
    return table.sort_values(KEYS, key=lambda c: c.map(order) if c.name == "method" else c, kind="stable")


def metric_scale(column: str) -> str:
    return "fraction" if column.startswith("delta_") else METRICS[column].scale


def fmt(mean, std=float("nan"), scale: str = "fraction") -> str:
    """'mean ± std' in the scale's unit and precision (``FORMATS``; fractions as %); '–' where the value is
    missing."""
    if scale not in FORMATS:
        raise ValueError(f"unknown scale {scale!r}; scales: {', '.join(FORMATS)}")
    factor, digits = FORMATS[scale]
    if pd.isna(mean):
        return "–"
    return f"{mean * factor:.{digits}f}" + ("" if pd.isna(std) else f" ± {std * factor:.{digits}f}")
