"""Tables and figures, built only from the metrics JSON artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .io import atomic_path
from .metrics import METRICS

KEYS = ["experiment", "scenario", "method"]
ARROW = {"higher": "↑", "lower": "↓", "oracle": "≈oracle"}


def load_runs(paths: list[str]) -> pd.DataFrame:
    """One row per run: experiment, scenario, method, seed and every metric."""
    rows = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        rows.append({"experiment": record["experiment"], "scenario": record["scenario"], "method": record["method"],
                     "seed": record["seed"], **record["metrics"]})
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (ddof=1; NaN for one seed) and seeds per (experiment, scenario, method)."""
    metric_cols = [m for m in METRICS if m in runs.columns]
    order = {m: i for i, m in enumerate(dict.fromkeys(runs["method"]))}
    grouped = runs.groupby(KEYS, sort=False)
    table = grouped[metric_cols].agg(["mean", "std"])
    table.columns = [f"{m}_{stat}" for m, stat in table.columns]
    table.insert(0, "n", grouped.size())
    table.insert(1, "seeds", grouped["seed"].agg(lambda s: " ".join(map(str, sorted(s)))))
    table = table.reset_index()
    return table.sort_values(["experiment", "scenario", "method"], key=lambda c: c.map(order) if c.name == "method" else c, kind="stable")


def to_markdown(table: pd.DataFrame) -> str:
    """Fractions as %, mean ± std; the header says each metric's direction."""
    metric_names = [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]
    out = table[KEYS + ["n", "seeds"]].copy()
    for name in metric_names:
        spec = METRICS[name]
        factor, digits = (100, 1) if spec.scale == "fraction" else (1, 2)
        mean, std = table[f"{name}_mean"] * factor, table[f"{name}_std"] * factor
        cells = [("–" if pd.isna(m) else f"{m:.{digits}f}" + ("" if pd.isna(s) else f" ± {s:.{digits}f}")) for m, s in zip(mean, std)]
        unit = " %" if spec.scale == "fraction" else " s"
        out[f"{name}{unit} {ARROW[spec.direction]}"] = cells
    return out.to_markdown(index=False)


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
