"""Figures, drawn only from the metrics JSON artifacts, as the config's ``report.figures`` describe them.

A figure spec names a ``kind`` and which runs and metrics it shows (``experiments``, ``scenarios``, ``methods``,
``metrics``; each defaults to all). Every kind turns the runs into one long table (one row per run, metric and
x value) and draws it with one seaborn call, mean ± sd over seeds:

- ``bars``: one bar per metric and method (Δ columns ``delta_<metric>`` included), the summary of a grid;
- ``sweep``: a metric against a hyperparameter read from each run's config, ``x: method.rho`` (the method entry)
  or ``x: experiment.mnemonic.t_mix`` (the experiment), e.g. a mask-ratio or t_mix sweep;
- ``history``: a metric against the epoch of a method's own record (``run.json`` ``record.history``), e.g.
  Fisher masking's accuracies during fine-tuning, with the ``references`` methods' final values as dashed lines.

``x``, ``hue``, ``col`` and ``row`` choose among the long table's columns (``metric``, ``method``,
``scenario``, ``experiment``, ``panel`` = experiment / scenario); each kind has sensible defaults.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .io import atomic_path
from .report import KEYS, load_records, runs_frame, with_deltas

DEFAULTS = {
    "bars": {"x": "metric", "hue": "method", "col": "panel", "row": None},
    "sweep": {"x": "x", "hue": "metric", "col": "panel", "row": None},
    "history": {"x": "epoch", "hue": "method", "col": "metric", "row": "panel"},
}


def select(frame: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """The rows of the spec's experiments, scenarios and methods, methods in the spec's order."""
    for key, column in (("experiments", "experiment"), ("scenarios", "scenario"), ("methods", "method")):
        if spec.get(key):
            frame = frame[frame[column].isin(spec[key])]
    if frame.empty:
        return frame
    return frame.assign(panel=frame["experiment"] + " / " + frame["scenario"])


def lookup(path: str, record: dict, experiments: dict):
    """``method.<key>`` from the run's method entry or ``experiment.<key>.<key>`` from its experiment's config."""
    head, *keys = path.split(".")
    value = record["method_config"] if head == "method" else experiments.get(record["experiment"], {})
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def long_frame(kind: str, spec: dict, metrics_paths: list[str], experiments: dict) -> pd.DataFrame:
    """One row per run (and epoch, for ``history``) and metric, with its value."""
    return records_frame(kind, spec, load_records(metrics_paths), experiments)


def records_frame(kind: str, spec: dict, records: list[dict], experiments: dict) -> pd.DataFrame:
    """``long_frame`` of records already read."""
    if kind == "history":
        rows = [{**{k: r[k] for k in KEYS + ["seed"]}, **point}
                for r in records for point in r.get("run", {}).get("record", {}).get("history", [])]
        wide, ids = pd.DataFrame(rows), KEYS + ["seed", "epoch"]
    else:
        wide, ids = with_deltas(runs_frame(records)), KEYS + ["seed"]
        if kind == "sweep":
            wide["x"] = [lookup(spec["x"], r, experiments) for r in records]
            wide, ids = wide.dropna(subset=["x"]), ids + ["x"]
    if wide.empty:
        return pd.DataFrame(columns=ids + ["metric", "value", "panel"])
    metrics = [m for m in spec.get("metrics") or wide.columns.difference(ids) if m in wide.columns]
    long = wide.melt(id_vars=ids, value_vars=metrics, var_name="metric", value_name="value").dropna(subset=["value"])
    return select(long, spec)


def write_figure(metrics_paths: list[str], out_png: str, out_pdf: str, spec: dict, experiments: dict | None = None) -> None:
    """Draw the figure ``spec`` (see the module docstring) and save it as PNG and PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    kind = spec["kind"]
    records = load_records(metrics_paths)
    long = records_frame(kind, spec, records, experiments or {})
    axes = {k: spec.get(k, v) for k, v in DEFAULTS[kind].items()}
    if kind == "sweep":  # the spec's x is where to read the hyperparameter; the plotted column is "x"
        axes["x"] = "x"
    sns.set_theme(style="whitegrid", context="paper")
    if long.empty:
        save(empty_figure("no run of this figure's experiments, scenarios and methods has these metrics"), out_png, out_pdf,
             title(spec))
        return
    wrap = {"col_wrap": min(3, long[axes["col"]].nunique())} if axes["col"] and not axes["row"] else {}
    facets = dict(data=long, x=axes["x"], y="value", hue=axes["hue"], col=axes["col"], row=axes["row"], height=3.0, aspect=1.3, **wrap)
    if kind == "bars":
        grid = sns.catplot(kind="bar", errorbar="sd", sharey=False, **facets)
        grid.tick_params(axis="x", labelrotation=25)
    else:
        grid = sns.relplot(kind="line", errorbar="sd", marker="o", facet_kws={"sharey": False}, **facets)
    grid.set_titles(template="{row_name} | {col_name}" if axes["row"] else "{col_name}")
    grid.set_axis_labels(spec.get("x_label", spec.get("x", axes["x"])), spec.get("y_label", "value"))
    grid.set(**{f"{axis}scale": "log" for axis in ("x", "y") if spec.get(f"log_{axis}")})
    if kind == "history":
        draw_references(grid, spec, records, axes)
        for ax in grid.axes.flat:
            ax.xaxis.get_major_locator().set_params(integer=True)
    save(grid.figure, out_png, out_pdf, title(spec))


def draw_references(grid, spec: dict, records: list[dict], axes: dict) -> None:
    """Dashed lines at the final value of each reference method (default: the retrain oracle) in each facet."""
    refs = records_frame("bars", {**spec, "methods": spec.get("references", ["retrain"])}, records, {})
    facets = [a for a in (axes["row"], axes["col"]) if a]
    for key, ax in grid.axes_dict.items():
        facet = refs
        for axis, name in zip(facets, key if isinstance(key, tuple) else (key,)):
            facet = facet[facet[axis] == name]
        for (method, value), style in zip(facet.groupby("method", sort=False)["value"].mean().items(), ("--", ":", "-.", (0, (5, 5)))):
            ax.axhline(value, ls=style, c="grey", lw=1.2, label=method)
        if len(facet):
            ax.legend(fontsize=7, title="final value", title_fontsize=7)


def empty_figure(message: str):
    """A figure that says why it is empty (a selection without runs), so that a target never goes missing."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def title(spec: dict) -> str | None:
    """The figure's title metadata: the paper's table(s) or figure(s) it reproduces, then its caption."""
    reproduces = spec.get("reproduces") or []
    reproduces = ", ".join([reproduces] if isinstance(reproduces, str) else reproduces)
    return " ".join(t for t in (reproduces and f"Reproduces {reproduces}.", spec.get("caption")) if t) or None


def save(fig, out_png: str, out_pdf: str, title: str | None = None) -> None:
    """PNG and PDF, with ``title`` in their metadata."""
    import matplotlib.pyplot as plt

    for out in (out_png, out_pdf):
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=Path(out).suffix[1:], dpi=150, bbox_inches="tight",
                        metadata={"Title": title} if title else None)
    plt.close(fig)


def leaderboard_heatmap(ranked: pd.DataFrame, order: list[str], score: str, out_png: str, out_pdf: str) -> None:
    """Methods (best mean rank first) × scenarios, coloured by rank and annotated with the score and the rank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    ranks = ranked.pivot(index="entry", columns="scenario", values="rank").reindex(order)
    scores = ranked.pivot(index="entry", columns="scenario", values="mean").reindex(order)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * ranks.shape[1], 0.8 + 0.35 * len(order)))
    from .metrics import METRICS
    from .report import fmt

    labels = scores.map(lambda v: fmt(v, scale=METRICS[score].scale)) + ranks.map(lambda r: f" (#{r:.0f})" if pd.notna(r) else "")
    sns.heatmap(ranks, annot=labels.where(ranks.notna(), ""), fmt="", cmap="viridis_r",
                cbar_kws={"label": "rank (1 = best)"}, linewidths=0.5, ax=ax)
    ax.set(xlabel="", ylabel="", title=f"{score} per scenario (cells), coloured by rank")
    save(fig, out_png, out_pdf)
