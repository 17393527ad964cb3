"""Tables and figures, built only from the metrics JSON artifacts.

Every aggregated number is mean ± std (ddof=1) over seeds, with the number of seeds and which ones went in.
The summary table holds each metric per method; the Δ table holds DEL's Δ = oracle − method, paired by seed
(each run minus nothing but the retrain oracle of its own seed and scenario): Δ > 0 means below the oracle, and
the smaller |Δ| the better.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .io import atomic_path
from .metrics import METRICS

KEYS = ["experiment", "scenario", "method"]
ARROW = {"higher": "↑", "lower": "↓", "oracle": "≈oracle"}
ORACLE = "retrain"


def load_runs(paths: list[str]) -> pd.DataFrame:
    """One row per run: experiment, scenario, method, seed and every metric."""
    rows = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        rows.append({"experiment": record["experiment"], "scenario": record["scenario"], "method": record["method"],
                     "seed": record["seed"], **record["metrics"]})
    return pd.DataFrame(rows)


def oracle_deltas(runs: pd.DataFrame) -> pd.DataFrame:
    """DEL's Δ = oracle − method per run, for every fraction-scaled metric that is not itself relative to the
    oracle, against the retrain oracle of the same experiment, scenario and seed (NaN where it is missing)."""
    names = [m for m in METRICS if m in runs.columns and METRICS[m].scale == "fraction" and "oracle" not in METRICS[m].needs]
    pair = ["experiment", "scenario", "seed"]
    oracle = runs.loc[runs["method"] == ORACLE, pair + names]
    merged = runs[KEYS + ["seed"] + names].merge(oracle, on=pair, how="left", suffixes=("", "_oracle"))
    deltas = {f"delta_{m}": merged[f"{m}_oracle"].astype(float) - merged[m].astype(float) for m in names}
    return pd.concat([merged[KEYS + ["seed"]], pd.DataFrame(deltas)], axis=1)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (ddof=1; NaN for one seed) and seeds per (experiment, scenario, method) of every
    metric and of every Δ to the oracle (``oracle_deltas``)."""
    runs = runs.merge(oracle_deltas(runs), on=KEYS + ["seed"], how="left")
    metric_cols = [m for m in METRICS if m in runs.columns] + [c for c in runs.columns if c.startswith("delta_")]
    order = {m: i for i, m in enumerate(dict.fromkeys(runs["method"]))}
    grouped = runs.groupby(KEYS, sort=False)
    table = grouped[metric_cols].agg(["mean", "std"])
    table.columns = [f"{m}_{stat}" for m, stat in table.columns]
    table.insert(0, "n", grouped.size())
    table.insert(1, "seeds", grouped["seed"].agg(lambda s: " ".join(map(str, sorted(s)))))
    table = table.reset_index()
    return table.sort_values(["experiment", "scenario", "method"], key=lambda c: c.map(order) if c.name == "method" else c, kind="stable")


UNIT = {"fraction": " %", "seconds": " s", "ratio": "", "nats": " nats", "epochs": " epochs"}


def cells(table: pd.DataFrame, column: str, scale: str) -> list[str]:
    """'mean ± std' per row (fractions as %), '–' where the metric does not apply."""
    factor, digits = (100, 1) if scale == "fraction" else (1, 3 if scale in ("ratio", "nats") else 2)
    mean, std = table[f"{column}_mean"] * factor, table[f"{column}_std"] * factor
    return [("–" if pd.isna(m) else f"{m:.{digits}f}" + ("" if pd.isna(s) else f" ± {s:.{digits}f}")) for m, s in zip(mean, std)]


def to_markdown(table: pd.DataFrame) -> str:
    """Two tables, mean ± std over the listed seeds: every metric (the header says its unit and direction), then
    Δ = oracle − method for the methods other than the oracle."""
    columns = [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]
    summary, delta = table[KEYS + ["n", "seeds"]].copy(), table[KEYS + ["n", "seeds"]].copy()
    for column in columns:
        if column.startswith("delta_"):
            delta[f"Δ {column[len('delta_'):]} %"] = cells(table, column, "fraction")
        else:
            spec = METRICS[column]
            summary[f"{column}{UNIT[spec.scale]} {ARROW[spec.direction]}"] = cells(table, column, spec.scale)
    delta = delta[delta["method"] != ORACLE]
    return "\n\n".join([
        "Mean ± std over seeds (n, seeds); ↑ higher is better, ↓ lower is better, ≈oracle closest to the retrain oracle.",
        summary.to_markdown(index=False),
        "Δ = oracle − method, paired by seed (DEL's convention: Δ > 0 is below the oracle; the smaller |Δ| the better).",
        delta.to_markdown(index=False),
    ])


def write_table(metrics_paths: list[str], out_csv: str, out_md: str) -> pd.DataFrame:
    table = summarise(load_runs(metrics_paths))
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        tmp.write_text(to_markdown(table) + "\n")
    return table


def write_figure(metrics_paths: list[str], out_png: str, out_pdf: str, metrics: tuple[str, ...] = ("forget_acc", "retain_acc", "test_acc", "mia_entropy_lr")) -> None:
    """Grouped bars (mean ± sd over seeds) of the main metrics per method, one panel per experiment and scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    runs = load_runs(metrics_paths)
    metrics = [m for m in metrics if m in runs.columns]
    long = runs.melt(id_vars=KEYS + ["seed"], value_vars=metrics, var_name="metric", value_name="value").dropna(subset=["value"])
    long["panel"] = long["experiment"] + " / " + long["scenario"]
    sns.set_theme(style="whitegrid", context="paper")
    grid = sns.catplot(data=long, kind="bar", x="metric", y="value", hue="method", col="panel", col_wrap=min(3, long["panel"].nunique()),
                       errorbar="sd", height=3.2, aspect=1.3, order=metrics)
    grid.set_titles("{col_name}").set_axis_labels("", "fraction").set(ylim=(0, 1.05))
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=20)
    for out in (out_png, out_pdf):
        with atomic_path(out) as tmp:
            grid.savefig(tmp, format=Path(out).suffix[1:], dpi=150, bbox_inches="tight")
