"""Tables from the runs frame (``results``): the summary of a grid, the leaderboard ranking and the
reported-vs-reproduced comparison, each as a full-precision CSV frame plus captioned display tables written as
Markdown and LaTeX (``write_tables``)."""

from __future__ import annotations

import pandas as pd

from .io import atomic_path
from .metrics import METRICS
from .ranking import rank_methods as rank_with_intervals
from .recipe import Recipe
from .results import ARROW, KEYS, ORACLE, SEEDS, SPANS, TIED, UNIT, fmt, metric_scale, seed_span, with_seed_axes

LATEX_SYMBOLS = {"±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "≈": r"$\approx$", "Δ": r"$\Delta$",
                 "–": "--", "−": "-"}


def cells(table: pd.DataFrame, column: str) -> list[str]:
    scale = metric_scale(column)
    return [fmt(m, s, scale) for m, s in zip(table[f"{column}_mean"], table[f"{column}_std"])]


def setup_note(records: list[dict]) -> str:
    """The caption's sentence naming each experiment's substrate (model, training data, recipe), from the runs'
    metrics.json, so that a reduced-scale table never reads as the paper's setting."""
    def compact(value: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in value.items())

    setups = {}
    for r in records:
        if "model" in r and "dataset" in r:
            data = r["dataset"]
            size = f"{data['train_size']:,} training images" if data.get("train_size") else "all training images"
            options = f" ({compact(r['model']['options'])})" if r["model"].get("options") else ""
            train = r.get("train", {})
            unread = Recipe.from_dict(train).unread() if "epochs" in train else set()
            setups[r["experiment"]] = (f"{r['model']['name']}{options} on {data.get('name', '?')} "
                                       f"({data.get('source', '?')}, {size}), "
                                       f"recipe {compact({k: v for k, v in train.items() if k not in unread})}")
    return (" Setup: " + "; ".join(f"{exp}: {text}" for exp, text in sorted(setups.items())) + ".") if setups else ""


def ensemble_note(records: list[dict]) -> str:
    """The caption's sentence on the ensemble scores: N, the oracles, the floor and the recipe, from the
    runs' metrics.json ``ensemble`` records; empty where no run has ensemble scores."""
    def recipe(value) -> str:
        return "recipe: the experiment's" if value == "experiment" else f"EVALUATION-ONLY recipe {value}"

    infos = {(e["n_models"], e["oracles"], e["epsilon_cap"], str(e["recipe"]))
             for r in records if (e := r.get("ensemble"))}
    shadows = {(s["n_models"], str(s["recipe"])) for r in records if (s := r.get("ulira_shadows"))}
    note = ""
    if infos:
        parts = [f"N = {n} unlearned models per run against N of {k} retrain oracles (epsilon cap {cap:g}); "
                 f"{recipe(r)}" for n, k, cap, r in sorted(infos)]
        note += (" Ensemble scores (neurips_*, klom_*): " + "; ".join(parts) + ". The retrain row compares two "
                 "halves of the oracle ensemble (oracle vs oracle): the floor of each score at this N.")
    if shadows:
        note += (" U-LiRA (ulira_shadows_*): " + "; ".join(f"M = {m} shadow models; {recipe(r)}"
                                                          for m, r in sorted(shadows))
                 + "; the retrain row is the attack's floor.")
    return note


def seed_note(runs: pd.DataFrame) -> str:
    """The caption's sentence on what each ± spans: the training seeds, and the forget-set and unlearning seeds
    (or that they are tied to the training seed), from the runs frame; the retrain oracle's tied unlearning seed is
    named where the methods' is not."""
    runs = with_seed_axes(runs)
    oracle, methods = runs[runs["method"] == ORACLE], runs[runs["method"] != ORACLE]
    parts = [f"training seeds {seed_span(runs, 'seed')}"]
    for column, name in zip(SEEDS[1:], ["forget-set seed", "unlearning seed"]):
        span = seed_span(methods if len(methods) else runs, column)
        text = f"{name} tied to the training seed" if span == TIED else f"{name}s {span}"
        if span != TIED and len(oracle) and seed_span(oracle, column) == TIED:
            text += " (the retrain oracle's: its training seed)"
        parts.append(text)
    return " Each ± spans " + "; ".join(parts) + "."


def display_tables(table: pd.DataFrame, note: str = "") -> list[tuple[str, pd.DataFrame]]:
    """The summary as printed: every metric (header with unit and direction), then Δ = oracle − method; ``note``
    (``seed_note``, ``setup_note``, ``ensemble_note``) ends the first caption. The forget-set and unlearning seeds
    each row spans are columns where some row's are not tied to the training seed."""
    columns = [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]
    spans = [c for c in SPANS if c == "seeds" or (table.get(c, pd.Series(TIED)) != TIED).any()]
    summary, delta = table[KEYS + ["n"] + spans].copy(), table[KEYS + ["n"] + spans].copy()
    for column in columns:
        if column.startswith("delta_"):
            delta[f"Δ {column[len('delta_'):]} %"] = cells(table, column)
        else:
            spec = METRICS[column]
            summary[f"{column}{UNIT[spec.scale]} {ARROW[spec.direction]}"] = cells(table, column)
    return [
        ("Mean ± std over seeds (n runs, seeds); ↑ higher is better, ↓ lower is better, ≈oracle closest to the "
         "retrain oracle." + note, summary),
        ("Δ = oracle − method, paired by training and forget-set seed (DEL's convention: Δ > 0 is below the oracle; "
         "the smaller |Δ| the better).", delta[delta["method"] != ORACLE]),
    ]


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    """A booktabs tabular (LaTeX needs ``\\usepackage{booktabs}``) with the caption as a comment above it."""
    text = f"% {caption}\n" + frame.to_latex(index=False, escape=True)
    for symbol, command in LATEX_SYMBOLS.items():
        text = text.replace(symbol, command)
    return text


def write_tables(csv: pd.DataFrame, parts: list[tuple[str, pd.DataFrame]], out_csv: str, out_md: str,
                 out_tex: str) -> None:
    """The full-precision ``csv`` frame, and the captioned display ``parts`` as Markdown and LaTeX."""
    with atomic_path(out_csv) as tmp:
        csv.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        tmp.write_text("\n\n".join(f"{caption}\n\n{frame.to_markdown(index=False)}" for caption, frame in parts) + "\n")
    with atomic_path(out_tex) as tmp:
        tmp.write_text("\n".join(to_latex(frame, caption) for caption, frame in parts))


# --- leaderboard ------------------------------------------------------------------------------------------------


def rank_methods(runs: pd.DataFrame, score: str) -> pd.DataFrame:
    """Each method's score (mean ± std over seeds) and rank (1 = best, ties share the best rank) per scenario,
    against every other method on that scenario, whichever experiment ran it (a method that needs its own
    original, like mnemonic code, competes with the rest; each is scored against its own experiment's oracle).
    A method that several experiments run is listed once per experiment, as ``method [experiment]``.
    The retrain oracle is the reference and is not ranked."""
    runs = runs[runs["method"] != ORACLE]
    scores = (runs.groupby(KEYS, sort=False)[score].agg(["mean", "std", "size"]).reset_index()
              .rename(columns={"size": "n"}))
    shared = scores.groupby("method")["experiment"].transform("nunique") > 1
    scores["entry"] = scores["method"].where(~shared, scores["method"] + " [" + scores["experiment"] + "]")
    ascending = METRICS[score].direction == "lower"
    scores["rank"] = scores.groupby("scenario")["mean"].rank(method="min", ascending=ascending)
    return scores.merge(intervals(runs.merge(scores[KEYS + ["entry"]], on=KEYS), score), on=["scenario", "entry"],
                        how="left")


def intervals(runs: pd.DataFrame, score: str) -> pd.DataFrame:
    """Per scenario and entry: the 95 % bootstrap interval of the mean score over seeds (``ranking``) and whether
    its rank cannot be told apart from a neighbour's (``tied``)."""
    direction = "lower" if METRICS[score].direction == "lower" else "higher"
    parts = []
    for scenario, group in runs.groupby("scenario", sort=False):
        ranked = rank_with_intervals(group[["entry", score]].rename(columns={score: "value"}), direction, by="entry")
        parts.append(ranked.assign(scenario=scenario, tied=ranked["tied_above"] | ranked["tied_below"]))
    return pd.concat(parts)[["scenario", "entry", "ci_low", "ci_high", "tied"]]


def leaderboard(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per method entry: its mean rank over the scenarios it ran on, sorted best first; an entry without
    the score on any scenario (e.g. ``original``, which the ensemble scores skip) is left out."""
    wide = ranked.pivot(index="entry", columns="scenario", values="rank")
    board = pd.DataFrame({"mean_rank": wide.mean(axis=1), "scenarios": wide.notna().sum(axis=1)})
    board = board[board["scenarios"] > 0]
    return board.sort_values(["mean_rank", "scenarios"], ascending=[True, False]).reset_index()


def cell(row: pd.Series, scale: str) -> str:
    """'mean ± std [ci_low, ci_high] (#rank)', '=' after the rank where a neighbour's is not distinguishable."""
    low, high = fmt(row["ci_low"], scale=scale), fmt(row["ci_high"], scale=scale)
    interval = "" if pd.isna(row["ci_low"]) else f" [{low}, {high}]"
    return f"{fmt(row['mean'], row['std'], scale)}{interval} (#{row['rank']:.0f}{'=' if row['tied'] else ''})"


def leaderboard_display(ranked: pd.DataFrame, board: pd.DataFrame, score: str,
                        note: str = "") -> tuple[str, pd.DataFrame]:
    """The leaderboard as printed: mean rank, then each scenario's score, interval and rank; with its caption."""
    shown = board[["entry"]].rename(columns={"entry": "method"}).assign(
        **{"mean rank": board["mean_rank"].map("{:.2f}".format)})
    scale = METRICS[score].scale
    left_out = sorted(set(ranked["entry"]) - set(board["entry"]))
    unscored = f" Without the score, not ranked: {', '.join(left_out)}." if left_out else ""
    for scenario, group in ranked.groupby("scenario", sort=False):
        by_entry = group.set_index("entry")
        shown[scenario] = [cell(by_entry.loc[e], scale) if e in by_entry.index else "–" for e in board["entry"]]
    caption = (f"Methods ranked by {score} ({ARROW[METRICS[score].direction]}), mean ± std over seeds, its 95 % "
               f"percentile-bootstrap interval over seeds in square brackets (none with one seed), rank per scenario "
               f"in round brackets, among all methods on that scenario; '=' marks a rank not distinguishable from a "
               f"neighbour's (the bootstrap interval of the difference of their means contains 0; always so with one "
               f"seed). Sorted by mean rank over the scenarios each method applies to. The retrain oracle is the "
               f"reference, not ranked." + unscored + note)
    return caption, shown


# --- reported vs reproduced ---------------------------------------------------------------------------------------


def comparison_display(table: pd.DataFrame, paper: dict, pairs: list[dict], note: str = "") -> tuple[str, pd.DataFrame]:
    """``reported.compare``'s table as printed (values in the reported unit), with a caption that counts the
    verdicts and names the reported values (``paper``) that no rule matched (``pairs``: ``reported.match``'s)."""
    shown = pd.DataFrame()
    if len(table):
        shown = table[["table", "row", "setting", "scenario", "method", "metric", "unit"]].copy()
        shown["reported"] = [fmt(v, s, "reported") for v, s in zip(table["reported"], table["reported_spread"])]
        shown["reproduced"] = [fmt(v, s, "reported") + (f" (n={n})" if n else "")
                               for v, s, n in zip(table["reproduced"], table["reproduced_std"], table["n"])]
        shown["difference"] = [fmt(v, scale="reported") for v in table["difference"]]
        shown["verdict"] = table["verdict"]
    matched = {id(p["record"]) for p in pairs}
    outside = sorted({str(r["setting"].get("dataset")) for r in paper["values"] if id(r) not in matched})
    counts = ", ".join(f"{n} {v}" for v, n in table["verdict"].value_counts().items()) if len(table) else "none"
    caption = (f"Reported ({paper['paper']['title']}, arXiv {paper['paper']['arxiv']}) against reproduced, mean ± std "
               f"over seeds in the reported unit; difference = reproduced − reported; agrees when within "
               f"2·sqrt(reported spread² + our std²). Verdicts: {counts}. "
               f"{len(paper['values']) - len(matched)} reported values have no counterpart in this grid (their data "
               f"sets: {', '.join(outside) or 'none'}). "
               f"Tables not transcribed: {'; '.join(u['table'] for u in paper.get('unknown', [])) or 'none'}." + note)
    return caption, shown
