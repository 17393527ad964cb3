"""Tables, figures, the leaderboard and the reported-vs-reproduced comparison, from hand-made metrics.json files."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml

from unlearnbench import UserError
from unlearnbench.config import check_report
from unlearnbench.figures import records_frame
from unlearnbench.reported import compare, match, scenario_setting, verdict
from unlearnbench.results import fmt, load_records, load_runs
from unlearnbench.steps.report import write_comparison, write_figure, write_leaderboard
from unlearnbench.tables import rank_methods

# forget accuracy and average gap per (experiment, scenario, method), the same for both seeds but a ± 0.01 wobble
GRID = {
    ("e", "cls0", "retrain"): (0.00, 0.00), ("e", "cls0", "a"): (0.10, 0.05), ("e", "cls0", "b"): (0.50, 0.20),
    ("e", "rand", "retrain"): (0.80, 0.00), ("e", "rand", "a"): (0.90, 0.08), ("e", "rand", "b"): (0.85, 0.02),
    ("m", "cls0", "retrain"): (0.00, 0.00), ("m", "cls0", "a"): (0.30, 0.10), ("m", "cls0", "mc"): (0.05, 0.01),
}
METHOD_CONFIG = {"a": {"method": "fisher_masking", "rho": 0.02}, "b": {"method": "finetune"}, "mc": {"method": "mnemonic_code"},
                 "retrain": {"method": "retrain"}}


@pytest.fixture
def metrics_paths(tmp_path):
    paths = []
    for (exp, scenario, method), (forget, gap) in GRID.items():
        for seed, wobble in ((0, -0.01), (1, 0.01)):
            record = {"experiment": exp, "scenario": scenario, "method": method, "seed": seed, "method_config": METHOD_CONFIG[method],
                      "metrics": {"forget_acc": forget + wobble, "avg_gap": gap + wobble / 10, "method_seconds": 2.0},
                      "run": {"record": {"history": [{"epoch": e, "forget_acc": forget * e / 2, "retain_acc": 0.9} for e in range(3)]}
                              if method == "a" else {}}}
            path = tmp_path / exp / str(seed) / scenario / method / "metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(record))
            paths.append(str(path))
    return paths


def test_leaderboard_ranks_per_scenario_without_the_oracle_and_splits_shared_methods(metrics_paths, tmp_path):
    ranked = rank_methods(load_runs(metrics_paths), "avg_gap").set_index(["scenario", "entry"])
    assert "retrain" not in ranked.index.get_level_values("entry")
    # "a" runs in two experiments: one entry per experiment, all ranked together on cls0
    assert ranked.loc[("cls0", "mc"), "rank"] == 1 and ranked.loc[("cls0", "a [e]"), "rank"] == 2
    assert ranked.loc[("cls0", "a [m]"), "rank"] == 3 and ranked.loc[("cls0", "b"), "rank"] == 4
    assert ranked.loc[("rand", "b"), "rank"] == 1 and ranked.loc[("rand", "a [e]"), "rank"] == 2
    outs = [str(tmp_path / f"board.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")]
    board = write_leaderboard(metrics_paths, "avg_gap", *outs)
    assert board["entry"].tolist()[:2] == ["mc", "a [e]"] and board.set_index("entry").loc["b", "mean_rank"] == 2.5
    md = (tmp_path / "board.md").read_text()
    assert "| mc " in md and "1.0 ± 0.1 [0.9, 1.1] (#1)" in md and "–" in md  # mc did not run on 'rand'


def test_leaderboard_needs_its_score(metrics_paths, tmp_path):
    with pytest.raises(UserError, match="score 'zrf' was not computed"):
        write_leaderboard(metrics_paths, "zrf", *(str(tmp_path / f"b.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")))


def test_records_frames_of_each_figure_kind(metrics_paths):
    records = load_records(metrics_paths)
    bars = records_frame("bars", {"metrics": ["forget_acc", "delta_forget_acc"], "experiments": ["e"]}, records, {})
    delta = bars[(bars["metric"] == "delta_forget_acc") & (bars["method"] == "b") & (bars["scenario"] == "cls0")]
    assert delta["value"].round(6).tolist() == [-0.5, -0.5]  # oracle − method, paired by seed
    sweep = records_frame("sweep", {"x": "method.rho", "metrics": ["forget_acc"]}, records, {})
    assert set(sweep["method"]) == {"a"} and set(sweep["x"]) == {0.02}  # only runs whose entry has rho
    by_experiment = records_frame("sweep", {"x": "experiment.mnemonic.t_mix", "metrics": ["forget_acc"]}, records,
                                  {"m": {"mnemonic": {"t_mix": 0.3}}})
    assert set(by_experiment["experiment"]) == {"m"} and set(by_experiment["x"]) == {0.3}
    history = records_frame("history", {"methods": ["a"], "scenarios": ["cls0"]}, records, {})
    assert len(history) == 2 * 2 * 3 * 2  # experiments x seeds x epochs x metrics
    assert history.query("experiment == 'e' and epoch == 2 and metric == 'forget_acc'")["value"].round(6).tolist() == [0.1, 0.1]


@pytest.mark.parametrize("spec", [
    {"kind": "bars", "metrics": ["forget_acc", "avg_gap"]},
    {"kind": "sweep", "x": "method.rho", "metrics": ["forget_acc"], "log_x": True},
    {"kind": "history", "methods": ["a"], "references": ["retrain", "b"]},
    {"kind": "bars", "methods": ["nobody"]},  # an empty selection still draws (a figure that says so)
], ids=["bars", "sweep", "history", "empty"])
def test_every_figure_kind_writes_png_and_pdf(metrics_paths, tmp_path, spec):
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    write_figure(metrics_paths, str(png), str(pdf), spec, {})
    assert png.stat().st_size > 3_000 and pdf.read_bytes().startswith(b"%PDF")


def test_scenario_settings_are_class_indices():
    assert scenario_setting({"kind": "full_class", "classes": ["bird", "airplane"]}, "cifar10") == \
        {"dataset": "cifar10", "scenario": "full_class", "classes": [0, 2]}
    assert scenario_setting({"kind": "random", "fraction": 0.1, "classes": ["dog", "bird"]}, "cifar10") == \
        {"dataset": "cifar10", "scenario": "random", "fraction": 0.1, "forget_from_classes": [2, 5]}
    assert scenario_setting({"kind": "sub_class", "subclass": "rocket"}, "cifar20")["subclass"] == 69


def record(table="T1", method="a", metric="forget_acc", value=10.0, spread=None, **setting):
    setting = {"dataset": "cifar10", "model": "resnet18", "scenario": "full_class", "classes": [0], **setting}
    return {"table": table, "row": method, "setting": setting, "method": method, "metric": metric, "value": value, "unit": "%", "spread": spread}


SETTINGS = {"e": {"cls0": {"dataset": "cifar10", "scenario": "full_class", "classes": [0]},
                  "rand": {"dataset": "cifar10", "scenario": "random", "fraction": 0.1, "forget_from_classes": []}},
            "m": {"cls0": {"dataset": "cifar10", "scenario": "full_class", "classes": [0]}}}


def test_match_uses_settings_tables_where_methods_and_explicit_scenarios():
    records = [record(), record(classes=[1]), record(table="T5", t_mix=0.1), record(dataset="mnist"),
               record(scenario="random", fraction=0.1, classes=None), record(method="paper_name")]
    pairs = match(records, [{"experiment": "e", "tables": ["T1"], "methods": {"paper_name": "b"}},
                            {"experiment": "m", "tables": ["T5"], "where": {"t_mix": 0.1}}], SETTINGS)
    found = {(records.index(p["record"]), p["experiment"], p["scenario"], p["method"]) for p in pairs}
    assert found == {(0, "e", "cls0", "a"), (4, "e", "rand", "a"), (5, "e", "cls0", "b"), (2, "m", "cls0", "a")}
    explicit = match([record(scenario="random", fraction=0.01)], [{"experiment": "e", "scenario": "rand"}], SETTINGS)
    assert [(p["scenario"], p["method"]) for p in explicit] == [("rand", "a")]  # e.g. an index-file forget set


def test_verdict_uses_both_spreads():
    assert verdict(1.0, 0.5, math.nan) == "agrees" and verdict(1.1, 0.5, math.nan) == "differs"
    assert verdict(2.5, 1.0, 0.8) == "agrees"  # 2 * sqrt(1 + 0.64) = 2.56
    assert verdict(0.0, math.nan, math.nan) == "no spread"


def test_compare_converts_units_and_says_what_is_missing(metrics_paths):
    from unlearnbench.results import summarise

    summary = summarise(load_runs(metrics_paths))
    records = [record(value=10.0, spread=1.0), record(value=20.0, spread=1.0), record(method="c"), record(metric="zrf")]
    table = compare([{"record": r, "experiment": "e", "scenario": "cls0", "method": r["method"]} for r in records], summary)
    assert table.loc[0, "reproduced"] == pytest.approx(10.0) and table.loc[0, "n"] == 2 and table.loc[0, "verdict"] == "agrees"
    assert table.loc[1, "difference"] == pytest.approx(-10.0) and table.loc[1, "verdict"] == "differs"
    assert table["verdict"].tolist()[2:] == ["not run", "not computed"]


def test_write_comparison_names_what_lies_outside_the_grid(metrics_paths, tmp_path):
    paper = {"paper": {"title": "P", "arxiv": "0000.00000"}, "unknown": [{"table": "Table 9", "reason": "unread"}],
             "values": [record(value=10.0, spread=1.0), record(dataset="cub40")]}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(paper))
    outs = [str(tmp_path / f"cmp.{ext}") for ext in ("csv", "md", "tex", "png", "pdf")]
    write_comparison(metrics_paths, str(tmp_path / "p.yaml"), [{"experiment": "e"}], SETTINGS, *outs)
    table = pd.read_csv(outs[0])
    assert len(table) == 1 and table.loc[0, "verdict"] == "agrees"
    md = (tmp_path / "cmp.md").read_text()
    assert "1 reported values have no counterpart in this grid (their data sets: cub40)" in md and "Table 9" in md and "10.00 ± 1.00" in md
    assert (tmp_path / "cmp.png").stat().st_size > 3_000


CONFIG = {"experiments": {"e": {"scenarios": ["cls0"], "methods": ["a", "retrain"]}}, "scenarios": {"cls0": {}}, "methods": {"a": None, "retrain": None},
          "metrics": ["forget_acc", "avg_gap"]}


@pytest.mark.parametrize("report, message", [
    ({"figures": {"f": {"kind": "bars", "methods": ["zz"]}}}, r"report figure 'f' names methods \['zz'\]"),
    ({"figures": {"f": {"kind": "bars", "metrics": ["zrf"]}}}, r"draws metric\(s\) \['zrf'\] that the config does not compute"),
    ({"figures": {"f": {"kind": "sweep", "x": "rho"}}}, "set x to method.<hyperparameter>"),
    ({"reported": "nowhere.yaml"}, "report.reported file 'nowhere.yaml' not found"),
    ({"match": [{"experiment": "zz"}]}, "report.match names experiment 'zz'"),
    ({"match": [{"experiment": "e", "scenario": "zz"}]}, "not a scenario of experiment 'e'"),
    ({"leaderboard": {"score": "zrf"}}, "the leaderboard's score 'zrf' is not in the config's metrics"),
], ids=["method", "metric", "sweep-x", "reported", "match-exp", "match-scenario", "score"])
def test_report_block_errors_name_the_problem(report, message, tmp_path):
    with pytest.raises(UserError, match=message):
        check_report({**CONFIG, "report": report}, tmp_path)
    check_report({**CONFIG, "report": {"figures": {"f": {"kind": "bars", "metrics": ["delta_forget_acc"]}}, "leaderboard": {"score": "avg_gap"}}})


def test_fmt_scales():
    assert fmt(0.1234, 0.01) == "12.3 ± 1.0" and fmt(12.345, scale="reported") == "12.35"  # reported: as given
    assert fmt(1.23456, scale="ratio") == "1.235" and fmt(float("nan")) == "–"
    with pytest.raises(ValueError, match="unknown scale 'plain'"):
        fmt(1.0, scale="plain")


def test_every_table_names_each_experiments_substrate(metrics_paths, tmp_path):
    """A reduced-scale table must say which model, data and recipe produced it: the fast substrate is not the paper's."""
    from unlearnbench.steps.report import write_summary

    for path in metrics_paths:
        record = json.loads(open(path).read())
        record |= {"model": {"name": "airbench", "dataset": "cifar10", "options": {"widths": [32, 64, 64]}},
                   "dataset": {"name": "cifar10", "source": "imagefolder", "train_size": 10000},
                   "train": {"preset": "airbench", "epochs": 8}, "provenance": {"git": "abc"}}
        open(path, "w").write(json.dumps(record))
    out = {ext: str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex")}
    expected = ("e: airbench (widths [32, 64, 64]) on cifar10 (imagefolder, 10,000 training images), "
                "recipe preset airbench, epochs 8")
    write_summary(metrics_paths, out["csv"], out["md"], out["tex"])
    assert expected in open(out["md"]).read() and expected in open(out["tex"]).read()
    write_leaderboard(metrics_paths, "avg_gap", *(str(tmp_path / f"l.{e}") for e in ("csv", "md", "tex", "png", "pdf")))
    assert expected in open(tmp_path / "l.md").read()


def test_substrate_note_leaves_out_settings_the_recipe_never_reads():
    """A cosine AdamW recipe inherits milestones, gamma and momentum from a multistep SGD block by deep merge; the
    caption must not list them as if they shaped the model."""
    from unlearnbench.tables import setup_note

    record = {"experiment": "vit", "model": {"name": "vit_small"}, "dataset": {"name": "cifar10", "source": "imagefolder"},
              "train": {"epochs": 6, "batch_size": 64, "lr": 0.001, "momentum": 0.9, "milestones": [7], "gamma": 0.2,
                        "optimizer": "adamw", "schedule": "cosine", "warmup_epochs": 1}}
    note = setup_note([record])
    assert "recipe epochs 6, batch_size 64, lr 0.001, optimizer adamw, schedule cosine, warmup_epochs 1." in note
    assert "milestones" not in note and "gamma" not in note and "momentum" not in note
    record["train"] |= {"optimizer": "sgd", "schedule": "multistep"}
    assert "momentum 0.9, milestones [7], gamma 0.2" in setup_note([record])
