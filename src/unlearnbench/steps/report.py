"""Steps of ``workflow/rules/report.smk``: tables and figures from the runs' metrics.json files (no torch)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from .. import UserError
from ..figures import draw_figure, leaderboard_heatmap, reported_scatter
from ..metrics import METRICS
from ..reported import compare, match
from ..results import load_records, provenance_table, runs_frame, summarise
from ..tables import (comparison_display, display_tables, ensemble_note, leaderboard, leaderboard_display,
                      rank_methods, seed_note, setup_note, write_tables)


def write_summary(metrics_paths: list[str], out_csv: str, out_md: str, out_tex: str) -> pd.DataFrame:
    """The summary tables (mean ± std over seeds of every metric, Δ to the oracle), and which code produced the
    runs."""
    records = load_records(metrics_paths)
    runs = runs_frame(records)
    table = summarise(runs)
    provenance = ("Provenance: the code that produced the runs (metrics.json).", provenance_table(records))
    note = seed_note(runs) + setup_note(records) + ensemble_note(records)
    write_tables(table, display_tables(table, note) + [provenance], out_csv, out_md, out_tex)
    return table


def write_figure(metrics_paths: list[str], out_png: str, out_pdf: str, spec: dict,
                 experiments: dict | None = None) -> None:
    """One of the config's ``report.figures`` (``figures`` module), as PNG and PDF."""
    draw_figure(spec, load_records(metrics_paths), experiments or {}, out_png, out_pdf)


def write_leaderboard(metrics_paths: list[str], score: str, out_csv: str, out_md: str, out_tex: str, out_png: str,
                      out_pdf: str) -> pd.DataFrame:
    """The leaderboard as a table (per-scenario score and rank, mean rank) and as a heatmap of ranks."""
    records = load_records(metrics_paths)
    runs = runs_frame(records)
    if score not in runs.columns:
        raise UserError(f"the leaderboard's score {score!r} was not computed; add it to the config's metrics")
    ranked = rank_methods(runs, score)
    board = leaderboard(ranked)
    ensembles = {"ensembles", "ulira_shadows"} & set(METRICS[score].needs)
    note = seed_note(runs) + setup_note(records) + (ensemble_note(records) if ensembles else "")
    write_tables(ranked, [leaderboard_display(ranked, board, score, note)], out_csv, out_md, out_tex)
    leaderboard_heatmap(ranked, board["entry"].tolist(), score, out_png, out_pdf)
    return board


def write_comparison(metrics_paths: list[str], reported_path: str, rules: list[dict], settings: dict,
                     out_csv: str, out_md: str, out_tex: str, out_png: str, out_pdf: str) -> pd.DataFrame:
    """The paper's reported values beside ours (``reported``): a table (CSV, Markdown, LaTeX) and a scatter."""
    paper = yaml.safe_load(Path(reported_path).read_text())
    pairs = match(paper["values"], rules, settings)
    records = load_records(metrics_paths)
    runs = runs_frame(records)
    table = compare(pairs, summarise(runs))
    write_tables(table, [comparison_display(table, paper, pairs, seed_note(runs) + setup_note(records))], out_csv,
                 out_md, out_tex)
    reported_scatter(table, out_png, out_pdf)
    return table
