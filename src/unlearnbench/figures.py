"""Figures from the metrics records, as the config's ``report.figures`` describe them, plus the leaderboard's
heatmap and the reported-vs-reproduced scatter.

A figure spec names a ``kind`` and which runs and metrics it shows (``experiments``, ``scenarios``, ``methods``,
``metrics``; each defaults to all). Every kind turns the runs into one long table (one row per run, metric and
x value) and draws it with one seaborn call, mean ± sd over seeds:

- ``bars``: one bar per metric and method (Δ columns ``delta_<metric>`` included), the summary of a grid;
- ``sweep``: a metric against a hyperparameter read from each run's config, ``x: method.rho`` (the method entry)
  or ``x: experiment.mnemonic.t_mix`` (the experiment), e.g. a mask-ratio or t_mix sweep;
- ``history``: a metric against the epoch of a method's own record (``run.json`` ``record.history``), e.g.
  Fisher masking's accuracies during fine-tuning, with the ``references`` methods' final values as dashed lines
  (default: the retrain oracle).

``x``, ``hue``, ``col`` and ``row`` choose among the long table's columns (``metric``, ``method``,
``scenario``, ``experiment``, ``panel`` = experiment / scenario); each kind has sensible defaults.
matplotlib and seaborn are imported when a figure is drawn (``pyplot``), so that tables never load them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .io import atomic_path
from .metrics import METRICS
from .results import KEYS, ORACLE, SEEDS, fmt, runs_frame, with_deltas

DEFAULTS = {
    "bars": {"x": "metric", "hue": "method", "col": "panel", "row": None},
    "sweep": {"x": "x", "hue": "metric", "col": "panel", "row": None},
    "history": {"x": "epoch", "hue": "method", "col": "metric", "row": "panel"},
}


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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


def records_frame(kind: str, spec: dict, records: list[dict], experiments: dict) -> pd.DataFrame:
    """One row per run (and epoch, for ``history``) and metric, with its value."""
    if kind == "history":
        rows = [{**{k: r[k] for k in KEYS + ["seed"]}, **point}
                for r in records for point in r.get("run", {}).get("record", {}).get("history", [])]
        wide, ids = pd.DataFrame(rows), KEYS + ["seed", "epoch"]
    else:
        wide, ids = with_deltas(runs_frame(records)), KEYS + SEEDS
        if kind == "sweep":
            wide["x"] = [lookup(spec["x"], r, experiments) for r in records]
            wide, ids = wide.dropna(subset=["x"]), ids + ["x"]
    if wide.empty:
        return pd.DataFrame(columns=ids + ["metric", "value", "panel"])
    metrics = [m for m in spec.get("metrics") or wide.columns.difference(ids) if m in wide.columns]
    long = wide.melt(id_vars=ids, value_vars=metrics, var_name="metric", value_name="value").dropna(subset=["value"])
    return select(long, spec)


def draw_figure(spec: dict, records: list[dict], experiments: dict, out_png: str, out_pdf: str) -> None:
    """Draw the figure ``spec`` (see the module docstring) of the metrics ``records``; save it as PNG and PDF."""
    plt = pyplot()
    import seaborn as sns

    kind = spec["kind"]
    long = records_frame(kind, spec, records, experiments)
    axes = {k: spec.get(k, v) for k, v in DEFAULTS[kind].items()}
    if kind == "sweep":  # the spec's x is where to read the hyperparameter; the plotted column is "x"
        axes["x"] = "x"
    sns.set_theme(style="whitegrid", context="paper")
    if long.empty:
        message = "no run of this figure's experiments, scenarios and methods has these metrics"
        save(empty_figure(plt, message), out_png, out_pdf, title(spec))
        return
    wrap = {"col_wrap": min(3, long[axes["col"]].nunique())} if axes["col"] and not axes["row"] else {}
    facets = dict(data=long, x=axes["x"], y="value", hue=axes["hue"], col=axes["col"], row=axes["row"], height=3.0,
                  aspect=1.3, **wrap)
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
    refs = records_frame("bars", {**spec, "methods": spec.get("references", [ORACLE])}, records, {})
    facets = [a for a in (axes["row"], axes["col"]) if a]
    for key, ax in grid.axes_dict.items():
        facet = refs
        for axis, name in zip(facets, key if isinstance(key, tuple) else (key,)):
            facet = facet[facet[axis] == name]
        styles = ("--", ":", "-.", (0, (5, 5)))
        for (method, value), style in zip(facet.groupby("method", sort=False)["value"].mean().items(), styles):
            ax.axhline(value, ls=style, c="grey", lw=1.2, label=method)
        if len(facet):
            ax.legend(fontsize=7, title="final value", title_fontsize=7)


def empty_figure(plt, message: str):
    """A figure that says why it is empty (a selection without runs), so that a target never goes missing."""
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
    for out in (out_png, out_pdf):
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=Path(out).suffix[1:], dpi=150, bbox_inches="tight",
                        metadata={"Title": title} if title else None)
    pyplot().close(fig)


def leaderboard_heatmap(ranked: pd.DataFrame, order: list[str], score: str, out_png: str, out_pdf: str) -> None:
    """Methods (best mean rank first) × scenarios, coloured by rank and annotated with the score and the rank ('='
    after a rank not distinguishable from a neighbour's, ``tables.intervals``)."""
    plt = pyplot()
    import seaborn as sns

    ranks = ranked.pivot(index="entry", columns="scenario", values="rank").reindex(order)
    scores = ranked.pivot(index="entry", columns="scenario", values="mean").reindex(order)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * ranks.shape[1], 0.8 + 0.35 * len(order)))
    tied = ranked.pivot(index="entry", columns="scenario", values="tied").reindex(order).fillna(False).astype(bool)
    labels = (scores.map(lambda v: fmt(v, scale=METRICS[score].scale))
              + ranks.map(lambda r: f" (#{r:.0f}" if pd.notna(r) else "") + tied.map(lambda t: "=" if t else "")
              + ranks.map(lambda r: ")" if pd.notna(r) else ""))
    sns.heatmap(ranks, annot=labels.where(ranks.notna(), ""), fmt="", cmap="viridis_r",
                cbar_kws={"label": "rank (1 = best)"}, linewidths=0.5, ax=ax)
    ax.set(xlabel="", ylabel="", title=f"{score} per scenario (cells), coloured by rank ('=': not distinguishable)")
    save(fig, out_png, out_pdf)


def reported_scatter(table: pd.DataFrame, out_png: str, out_pdf: str) -> None:
    """Reproduced against reported (percentages; ``reported.compare``'s table), ± their spreads, with the
    diagonal of perfect agreement."""
    plt = pyplot()
    import seaborn as sns

    points = table[(table["unit"] == "%") & table["reproduced"].notna()] if len(table) else table
    if points.empty:
        save(empty_figure(plt, "no reported percentage has a reproduced value in this grid"), out_png, out_pdf)
        return
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.errorbar(points["reported"], points["reproduced"], xerr=points["reported_spread"].fillna(0),
                yerr=points["reproduced_std"].fillna(0), fmt="none", ecolor="lightgrey", zorder=1)
    sns.scatterplot(data=points, x="reported", y="reproduced", hue="metric", style="verdict", ax=ax, zorder=2)
    ax.plot([0, 100], [0, 100], ls="--", c="grey", lw=1)
    ax.set(xlim=(-2, 102), ylim=(-2, 102), xlabel="reported (%)", ylabel="reproduced (%)")
    ax.legend(fontsize=7, loc="lower right")
    save(fig, out_png, out_pdf)
