"""The results layer's data: metrics.json records → one row per run, Δ to the oracle, mean ± std over seeds.

Pure pandas, no drawing and no writing (``tables`` and ``figures`` build on this module). Every aggregated number
is mean ± std (ddof=1) over a method's runs, with their number and the seeds they span on each axis (training,
forget-set and unlearning seed, ``seeds``). DEL's Δ = oracle − method is paired by training and forget-set seed
(each run against the retrain oracle of its own seeds and scenario): Δ > 0 means below the oracle, and the smaller
|Δ| the better.
"""

from __future__ import annotations

import pandas as pd

from .io import load_json
from .metrics import METRICS
from .seeds import all_seeds

ORACLE = "retrain"  # the retrain oracle's method entry: every experiment runs it, every Δ is taken against it
KEYS = ["experiment", "scenario", "method"]
SEEDS = ["seed", "forget_seed", "unlearn_seed"]  # a run's training, forget-set and unlearning seed
TIED = "tied"  # an axis on which every run's seed is its training seed
SPANS = ["seeds", "forget_seeds", "unlearn_seeds"]  # the summary's columns: the seeds its rows span on each axis
ARROW = {"higher": "↑", "lower": "↓", "oracle": "≈oracle"}
UNIT = {"fraction": " %", "seconds": " s", "ratio": "", "nats": " nats", "epochs": " epochs"}
# scale -> (factor, decimals) of a printed value; "reported": a number already in a paper's unit (%, s)
FORMATS = {"fraction": (100, 1), "seconds": (1, 2), "ratio": (1, 3), "nats": (1, 3), "epochs": (1, 2),
           "reported": (1, 2)}


def load_records(paths: list[str]) -> list[dict]:
    return [load_json(p, "metrics file") for p in paths]


def load_runs(paths: list[str]) -> pd.DataFrame:
    """One row per run: experiment, scenario, method, its three seeds and every metric."""
    return runs_frame(load_records(paths))


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per record (a seed it does not name is tied to its training seed: ``seeds.all_seeds``)."""
    return pd.DataFrame([{"experiment": r["experiment"], "scenario": r["scenario"], "method": r["method"],
                          **all_seeds(r), **r["metrics"]} for r in records])


def with_seed_axes(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with every column of ``SEEDS``: one that is missing tied to the training seed."""
    return runs.assign(**{c: runs["seed"] for c in SEEDS if c not in runs.columns})


def seed_span(runs: pd.DataFrame, column: str) -> str:
    """The seeds some runs span on one axis of ``SEEDS``, sorted (``"0 1 2"``), or ``TIED`` where each run's
    forget-set or unlearning seed is its training seed."""
    if column != "seed" and (runs[column] == runs["seed"]).all():
        return TIED
    return " ".join(map(str, sorted(set(runs[column]))))


def provenance_table(records: list[dict]) -> pd.DataFrame:
    """How many runs each code version produced (git commit, package and torch versions, from metrics.json)."""
    rows = pd.DataFrame([r.get("provenance", {}) for r in records]).fillna("unknown")
    return rows.value_counts().rename("runs").reset_index()


def oracle_deltas(runs: pd.DataFrame) -> pd.DataFrame:
    """DEL's Δ = oracle − method per run, for every fraction-scaled metric that is not itself relative to the
    oracle, against the retrain oracle of the same experiment, scenario, training seed and forget-set seed, whatever
    the run's unlearning seed (NaN where it is missing)."""
    runs = with_seed_axes(runs)
    names = [m for m in METRICS
             if m in runs.columns and METRICS[m].scale == "fraction" and "oracle" not in METRICS[m].needs]
    pair = ["experiment", "scenario", "seed", "forget_seed"]
    oracle = runs.loc[runs["method"] == ORACLE, pair + names]
    merged = runs[KEYS + SEEDS + names].merge(oracle, on=pair, how="left", suffixes=("", "_oracle"))
    deltas = {f"delta_{m}": merged[f"{m}_oracle"].astype(float) - merged[m].astype(float) for m in names}
    return pd.concat([merged[KEYS + SEEDS], pd.DataFrame(deltas)], axis=1)


def with_deltas(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with their Δ to the oracle as ``delta_<metric>`` columns."""
    runs = with_seed_axes(runs)
    return runs.merge(oracle_deltas(runs), on=KEYS + SEEDS, how="left")


def metric_columns(runs: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in runs.columns] + [c for c in runs.columns if c.startswith("delta_")]


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (ddof=1; NaN for one run), the number of runs and the seeds they span on each axis
    (``seeds``: training seeds; ``forget_seeds``, ``unlearn_seeds``: ``seed_span``) per (experiment, scenario,
    method) of every metric and every Δ to the oracle, in the order the runs list the methods."""
    runs = with_deltas(runs)
    order = {m: i for i, m in enumerate(dict.fromkeys(runs["method"]))}
    grouped = runs.groupby(KEYS, sort=False)
    table = grouped[metric_columns(runs)].agg(["mean", "std"])
    table.columns = [f"{m}_{stat}" for m, stat in table.columns]
    table.insert(0, "n", grouped.size())
    for position, (column, name) in enumerate(zip(SEEDS, SPANS), 1):
        table.insert(position, name, grouped[SEEDS].apply(lambda g, c=column: seed_span(g, c)))
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
