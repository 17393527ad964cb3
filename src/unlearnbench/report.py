"""Tables, built only from the metrics JSON artifacts: the summary of a grid and the leaderboard of its methods.

Every aggregated number is mean ± std (ddof=1) over seeds, with the number of seeds and which ones went in.
The summary holds each metric per method, and DEL's Δ = oracle − method paired by seed (each run minus nothing but
the retrain oracle of its own seed and scenario): Δ > 0 means below the oracle, and the smaller |Δ| the better.
Each table is written as CSV (full precision), Markdown and LaTeX (``write_tables``).
"""

from __future__ import annotations

import pandas as pd

from . import UserError
from .io import atomic_path, load_json
from .metrics import METRICS

KEYS = ["experiment", "scenario", "method"]
ARROW = {"higher": "↑", "lower": "↓", "oracle": "≈oracle"}
ORACLE = "retrain"
UNIT = {"fraction": " %", "seconds": " s", "ratio": "", "nats": " nats", "epochs": " epochs"}


def load_records(paths: list[str]) -> list[dict]:
    return [load_json(p, "metrics file") for p in paths]


def load_runs(paths: list[str]) -> pd.DataFrame:
    """One row per run: experiment, scenario, method, seed and every metric."""
    return runs_frame(load_records(paths))


def runs_frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"experiment": r["experiment"], "scenario": r["scenario"], "method": r["method"], "seed": r["seed"], **r["metrics"]}
                         for r in records])


def provenance_table(records: list[dict]) -> pd.DataFrame:
    """How many runs each code version produced (git commit, package and torch versions, from metrics.json)."""
    rows = pd.DataFrame([r.get("provenance", {}) for r in records]).fillna("unknown")
    return rows.value_counts().rename("runs").reset_index()


def oracle_deltas(runs: pd.DataFrame) -> pd.DataFrame:
    """DEL's Δ = oracle − method per run, for every fraction-scaled metric that is not itself relative to the
    oracle, against the retrain oracle of the same experiment, scenario and seed (NaN where it is missing)."""
    names = [m for m in METRICS if m in runs.columns and METRICS[m].scale == "fraction" and "oracle" not in METRICS[m].needs]
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
    """'mean ± std' (fractions as %), '–' where the value is missing."""
    factor, digits = (100, 1) if scale == "fraction" else (1, 3 if scale in ("ratio", "nats") else 2)
    if pd.isna(mean):
        return "–"
    return f"{mean * factor:.{digits}f}" + ("" if pd.isna(std) else f" ± {std * factor:.{digits}f}")


def cells(table: pd.DataFrame, column: str) -> list[str]:
    scale = metric_scale(column)
    return [fmt(m, s, scale) for m, s in zip(table[f"{column}_mean"], table[f"{column}_std"])]


def display_tables(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The summary as printed: every metric (header with unit and direction), then Δ = oracle − method."""
    columns = [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]
    summary, delta = table[KEYS + ["n", "seeds"]].copy(), table[KEYS + ["n", "seeds"]].copy()
    for column in columns:
        if column.startswith("delta_"):
            delta[f"Δ {column[len('delta_'):]} %"] = cells(table, column)
        else:
            spec = METRICS[column]
            summary[f"{column}{UNIT[spec.scale]} {ARROW[spec.direction]}"] = cells(table, column)
    return [
        ("Mean ± std over seeds (n, seeds); ↑ higher is better, ↓ lower is better, ≈oracle closest to the retrain oracle.", summary),
        ("Δ = oracle − method, paired by seed (DEL's convention: Δ > 0 is below the oracle; the smaller |Δ| the better).",
         delta[delta["method"] != ORACLE]),
    ]


LATEX_SYMBOLS = {"±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "≈": r"$\approx$", "Δ": r"$\Delta$", "–": "--", "−": "-"}


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    """A booktabs tabular (LaTeX needs ``\\usepackage{booktabs}``) with the caption as a comment above it."""
    text = f"% {caption}\n" + frame.to_latex(index=False, escape=True)
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return text


def write_tables(csv: pd.DataFrame, parts: list[tuple[str, pd.DataFrame]], out_csv: str, out_md: str, out_tex: str) -> None:
    """The full-precision ``csv`` frame, and the captioned display ``parts`` as Markdown and LaTeX."""
    with atomic_path(out_csv) as tmp:
        csv.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        tmp.write_text("\n\n".join(f"{caption}\n\n{frame.to_markdown(index=False)}" for caption, frame in parts) + "\n")
    with atomic_path(out_tex) as tmp:
        tmp.write_text("\n".join(to_latex(frame, caption) for caption, frame in parts))


def write_summary(metrics_paths: list[str], out_csv: str, out_md: str, out_tex: str) -> pd.DataFrame:
    """The summary tables, and which code produced the runs."""
    records = load_records(metrics_paths)
    table = summarise(runs_frame(records))
    parts = display_tables(table) + [("Provenance: the code that produced the runs (metrics.json).", provenance_table(records))]
    write_tables(table, parts, out_csv, out_md, out_tex)
    return table


# --- leaderboard ------------------------------------------------------------------------------------------------


def rank_methods(runs: pd.DataFrame, score: str) -> pd.DataFrame:
    """Each method's score (mean ± std over seeds) and rank (1 = best, ties share the best rank) per scenario,
    against every other method on that scenario, whichever experiment ran it (a method that needs its own
    original, like mnemonic code, competes with the rest; each is scored against its own experiment's oracle).
    A method that several experiments run is listed once per experiment, as ``method [experiment]``.
    The retrain oracle is the reference and is not ranked."""
    runs = runs[runs["method"] != ORACLE]
    scores = runs.groupby(KEYS, sort=False)[score].agg(["mean", "std", "size"]).reset_index().rename(columns={"size": "n"})
    shared = scores.groupby("method")["experiment"].transform("nunique") > 1
    scores["entry"] = scores["method"].where(~shared, scores["method"] + " [" + scores["experiment"] + "]")
    ascending = METRICS[score].direction == "lower"
    scores["rank"] = scores.groupby("scenario")["mean"].rank(method="min", ascending=ascending)
    return scores


def leaderboard(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per method entry: its mean rank over the scenarios it ran on, sorted best first."""
    wide = ranked.pivot(index="entry", columns="scenario", values="rank")
    board = pd.DataFrame({"mean_rank": wide.mean(axis=1), "scenarios": wide.notna().sum(axis=1)})
    return board.sort_values(["mean_rank", "scenarios"], ascending=[True, False]).reset_index()


def write_leaderboard(metrics_paths: list[str], score: str, out_csv: str, out_md: str, out_tex: str, out_png: str, out_pdf: str) -> pd.DataFrame:
    """The leaderboard as a table (per-scenario score and rank, mean rank) and as a heatmap of ranks."""
    runs = load_runs(metrics_paths)
    if score not in runs.columns:
        raise UserError(f"the leaderboard's score {score!r} was not computed; add it to the config's metrics")
    ranked = rank_methods(runs, score)
    board = leaderboard(ranked)
    shown = board[["entry"]].rename(columns={"entry": "method"}).assign(**{"mean rank": board["mean_rank"].map("{:.2f}".format)})
    scale = METRICS[score].scale
    for scenario, group in ranked.groupby("scenario", sort=False):
        by_entry = group.set_index("entry")
        shown[scenario] = [
            f"{fmt(by_entry.at[e, 'mean'], by_entry.at[e, 'std'], scale)} (#{by_entry.at[e, 'rank']:.0f})" if e in by_entry.index else "–"
            for e in board["entry"]
        ]
    caption = (f"Methods ranked by {score} ({ARROW[METRICS[score].direction]}), mean ± std over seeds, rank per scenario in "
               f"brackets, among all methods on that scenario; sorted by mean rank over the scenarios each method applies to. "
               f"The retrain oracle is the reference, not ranked.")
    write_tables(ranked, [(caption, shown)], out_csv, out_md, out_tex)
    from .plots import leaderboard_heatmap

    leaderboard_heatmap(ranked, board["entry"].tolist(), score, out_png, out_pdf)
    return board
