"""Separate seed axes: training seed t (`seeds`), forget-set seed f and unlearning seed u (`seed_axes`),
each axis left out tied to t. A config without `seed_axes` plans the very runs and paths it always did."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import REPO
from test_bad_input import TINY, plan_check, variant
from test_bad_input import snakemake as snakemake_in
from unlearnbench import UserError
from unlearnbench.config import method_config, pairings
from unlearnbench.catalog import supports
from unlearnbench.references import oracle_seed, unlearn_seed
from unlearnbench.results import oracle_deltas, runs_frame, summarise
from unlearnbench.seeds import LABEL, RunSeeds, all_seeds, format_label, parse_label, seed_grid
from unlearnbench.tables import display_tables, seed_note

QUICK = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())


# --- the label ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seeds, label", [(RunSeeds(0), "0"), (RunSeeds(3, 1), "3f1"), (RunSeeds(0, None, 2), "0u2"),
                                          (RunSeeds(12, 0, 7), "12f0u7")])
def test_label_round_trip(seeds, label):
    assert format_label(seeds) == label and parse_label(label) == seeds
    assert re.fullmatch(LABEL, label)


def test_tied_axes_take_the_training_seed_and_the_oracle_drops_the_unlearning_seed():
    assert (RunSeeds(2).forget_seed, RunSeeds(2).unlearn_seed) == (2, 2)
    assert (RunSeeds(2, 0, 5).forget_seed, RunSeeds(2, 0, 5).unlearn_seed) == (0, 5)
    assert RunSeeds(2, 0, 5).oracle == RunSeeds(2, 0) and RunSeeds(2, None, 5).oracle == RunSeeds(2)
    assert RunSeeds(2).record() == {"seed": 2}  # the metrics context of a config without seed_axes, as before
    assert RunSeeds(2, None, 5).record() == {"seed": 2, "unlearn_seed": 5}
    assert all_seeds(RunSeeds(2, None, 5).record()) == {"seed": 2, "forget_seed": 2, "unlearn_seed": 5}  # metrics.json's


@pytest.mark.parametrize("label", ["", "f1", "0u1f2", "-1", "0f", "0x1", "0 f1"])
def test_a_malformed_label_is_refused(label):
    assert not re.fullmatch(LABEL, label)
    with pytest.raises(ValueError, match="not a seed label"):
        parse_label(label)


def test_seed_grid_is_training_seed_major_and_ties_absent_axes():
    assert seed_grid({"seeds": [0, 1]}) == [RunSeeds(0), RunSeeds(1)]
    assert seed_grid({"seeds": [0, 1], "seed_axes": {"unlearn": [5, 6]}}) == [
        RunSeeds(0, None, 5), RunSeeds(0, None, 6), RunSeeds(1, None, 5), RunSeeds(1, None, 6)]
    assert len(seed_grid({"seeds": [0, 1, 2], "seed_axes": {"forget": [0, 1], "unlearn": [0, 1]}})) == 12


# --- config errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axes, message", [
    ({"forget": [0, -1]}, r"seed_axes.forget lists -1; seeds are integers >= 0"),
    ({"unlearn": [1, 1]}, r"seed_axes.unlearn lists \[1\] more than once"),
    ({"forget": []}, r"seed_axes.forget is an empty list; list at least one seed, or remove the key"),
    ({"train": [0]}, r"'train' was unexpected"),
    ({"unlearn": ["1"]}, r"'1' is not of type 'integer'"),
])
def test_bad_axes_are_one_line_config_errors(axes, message):
    with pytest.raises(UserError, match=message) as err:
        plan_check(variant(lambda c: c.update(seed_axes=axes)))
    assert "\n" not in str(err.value)


def test_planning_refuses_bad_axes_before_any_job(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**TINY, "seed_axes": {"unlearn": [0, 0]}}))
    run = snakemake_in(path, tmp_path, "-n")
    lines = [line for line in (run.stderr + run.stdout).splitlines() if "config error" in line]
    assert run.returncode != 0 and len(lines) == 1 and "seed_axes.unlearn lists [0] more than once" in lines[0]
    assert not (tmp_path / "results").exists()


# --- what the workflow plans (dry runs) ---------------------------------------------------------------------------


def planned(output: str) -> list[dict]:
    """The jobs of a dry run's log: rule, input and output paths, wildcards."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output)[1:]:
        fields = dict(re.findall(r"^    (input|output|wildcards): (.*)$", block, re.M))
        jobs.append({"rule": re.match(r"(?:local)?rule (\w+):", block)[1],
                     **{k: fields.get(k, "").split(", ") if fields.get(k) else [] for k in ("input", "output")},
                     "wildcards": dict(w.split("=", 1) for w in fields.get("wildcards", "").split(", ") if w)})
    return jobs


def dry_run(config: dict, tmp_path) -> list[dict]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    run = snakemake_in(path, tmp_path, "-n", "--forceall", timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    return planned(run.stdout)


def outputs(jobs: list[dict], rule: str) -> list[str]:
    return sorted(p for j in jobs if j["rule"] == rule for p in j["output"])


def test_a_config_without_seed_axes_plans_todays_runs_and_paths(tmp_path):
    """The quick preset: every run, split and original at today's seed<t> paths, nothing more."""
    config = {**copy.deepcopy(QUICK), "name": "axes-default"}
    jobs = dry_run(config, tmp_path)
    run = f"results/{config['name']}"
    runs = [(exp, t, s, m) for exp, e in config["experiments"].items() for t in config["seeds"]
            for s, m in pairings(e) if supports(method_config(config, m)["method"], config["scenarios"][s]["kind"])]
    assert outputs(jobs, "metrics") == sorted(f"{run}/{e}/seed{t}/{s}/{m}/metrics.json" for e, t, s, m in runs)
    assert outputs(jobs, "train_original") == sorted(f"{run}/{e}/seed{t}/original.pt" for e in config["experiments"]
                                                     for t in config["seeds"])
    scenarios = {s for e in config["experiments"].values() for s, _ in pairings(e)}
    assert outputs(jobs, "split") == sorted(f"{run}/splits/digits/{s}/seed{t}.npz" for s in scenarios for t in config["seeds"])
    assert all(j["wildcards"].get("seed", "0").isdigit() for j in jobs)  # no f/u part anywhere


def test_seed_axes_plan_one_original_per_t_one_split_per_f_one_oracle_per_t_f(tmp_path):
    config = copy.deepcopy(QUICK)
    config["name"] = "axes"
    config["seeds"], config["seed_axes"] = [0, 1], {"forget": [0, 1], "unlearn": [0, 1]}
    config["experiments"] = {"digits_resnet": {**QUICK["experiments"]["digits_resnet"], "methods": ["original", "retrain", "finetune"]}}
    config["metrics"] += ["relearn_epochs", "ulira_shadows_auc"]
    config["evaluation"] |= {"ulira_shadows": 6}
    jobs = dry_run(config, tmp_path)
    count = lambda rule: sum(j["rule"] == rule for j in jobs)  # noqa: E731
    grid = 2 * 2 * 2  # (t, f, u)
    assert count("train_original") == 2 and count("incompetent") == 2 and count("shadow_membership") == 2
    assert count("split") == 2 * 2  # scenarios x forget seeds
    assert count("unlearn") == count("metrics") == count("relearn") == 2 * (2 * grid + 4)  # methods per (t, f, u); oracle per (t, f)
    assert count("oracle_ensemble") == 2 * 4 * 2  # scenarios x (t, f) x 2 jobs of 4 oracles
    assert count("unlearn_ensemble") == 2 * grid  # finetune's runs (original is not evaluated), one job of 3 seeds
    assert count("shadow_original") == 2 * 6 and count("shadow_unlearn") == 2 * (grid + 4) * 2  # finetune and retrain runs
    run = "results/axes/digits_resnet"
    for job in jobs:
        if job["rule"] not in ("unlearn", "metrics", "relearn"):
            continue
        s = parse_label(job["wildcards"]["seed"])
        method, scenario = job["wildcards"]["method"], job["wildcards"]["scenario"]
        if job["rule"] == "relearn":  # the threshold: the `original` run of the same seeds, or the checkpoint
            original = (f"{run}/seed{s.train}/original.pt" if method == "retrain"
                        else f"{run}/seed{job['wildcards']['seed']}/{scenario}/original/logits.npz")
            assert original in job["input"]
            continue
        assert (s.unlearn is None) == (method == "retrain")  # the oracle's label has no unlearning seed
        assert s.forget is not None
        assert f"results/axes/splits/digits/{scenario}/seed{s.forget}.npz" in job["input"]
        if job["rule"] == "unlearn":
            assert f"{run}/seed{s.train}/original.pt" in job["input"]
            continue
        oracle = f"{run}/seed{s.train}f{s.forget}/{scenario}"
        assert f"{oracle}/retrain/logits.npz" in job["input"]  # the oracle of its own (t, f)
        assert f"{run}/seed{s.train}/incompetent/logits.npz" in job["input"]
        if method == "original":  # not evaluated: no ensembles, no shadows
            continue
        assert f"{oracle}/oracles/k0-4.npz" in job["input"] and f"{run}/seed{s.train}/shadows/membership.npz" in job["input"]
        assert f"{run}/seed{job['wildcards']['seed']}/{scenario}/shadows/{method}/s0-4.npz" in job["input"]
    assert outputs(jobs, "split") == sorted(f"results/axes/splits/digits/{s}/seed{f}.npz"
                                            for s in ("class_3", "random_5pct") for f in (0, 1))


# --- results: pairing and what each ± spans -----------------------------------------------------------------------


def records(forget_axis=True, unlearn_axis=True) -> list[dict]:
    """Training seeds 0, 1 x forget seeds 0, 1 x unlearning seeds 0, 1 of a method; the oracle once per (t, f), its
    test accuracy 0.9 + 0.01 t + 0.001 f; the method's 0.5 + 0.01 t + 0.001 f + 0.1 u."""
    out = []
    for t in (0, 1):
        for f in (0, 1) if forget_axis else (t,):
            out.append({"experiment": "e", "scenario": "s", "method": "retrain", "seed": t, "forget_seed": f,
                        "unlearn_seed": t, "metrics": {"test_acc": 0.9 + 0.01 * t + 0.001 * f}})
            for u in (0, 1) if unlearn_axis else (t,):
                out.append({"experiment": "e", "scenario": "s", "method": "ft", "seed": t, "forget_seed": f,
                            "unlearn_seed": u, "metrics": {"test_acc": 0.5 + 0.01 * t + 0.001 * f + 0.1 * u}})
    return out


def test_oracle_deltas_pair_on_training_and_forget_seed_not_on_unlearning_seed():
    runs = runs_frame(records())
    assert list(runs.columns[:6]) == ["experiment", "scenario", "method", "seed", "forget_seed", "unlearn_seed"]
    deltas = oracle_deltas(runs)
    ft = deltas[deltas["method"] == "ft"]
    assert len(ft) == 8 and len(deltas) == 12  # one row per run, no oracle row duplicated
    expected = [0.4 - 0.1 * u for u in ft["unlearn_seed"]]  # the oracle's t and f terms cancel
    assert ft["delta_test_acc"].tolist() == pytest.approx(expected)
    assert (deltas.loc[deltas["method"] == "retrain", "delta_test_acc"] == 0).all()


def test_old_records_without_the_new_keys_read_as_tied():
    old = [{k: v for k, v in r.items() if k not in ("forget_seed", "unlearn_seed")} for r in records(False, False)]
    runs = runs_frame(old)
    assert (runs["forget_seed"] == runs["seed"]).all() and (runs["unlearn_seed"] == runs["seed"]).all()
    table = summarise(runs).set_index("method")
    assert table.loc["ft", "seeds"] == "0 1" and table.loc["ft", "forget_seeds"] == table.loc["ft", "unlearn_seeds"] == "tied"


def test_summary_says_which_axes_each_plus_minus_spans():
    table = summarise(runs_frame(records())).set_index("method")
    assert table.loc["ft", "n"] == 8 and table.loc["retrain", "n"] == 4
    assert (table.loc["ft", "seeds"], table.loc["ft", "forget_seeds"], table.loc["ft", "unlearn_seeds"]) == ("0 1", "0 1", "0 1")
    assert table.loc["retrain", "unlearn_seeds"] == "tied"
    note = seed_note(runs_frame(records()))
    assert note == (" Each ± spans training seeds 0 1; forget-set seeds 0 1; unlearning seeds 0 1 (the retrain "
                    "oracle's: its training seed).")
    assert seed_note(runs_frame(records(forget_axis=False))) == (
        " Each ± spans training seeds 0 1; forget-set seed tied to the training seed; unlearning seeds 0 1 (the "
        "retrain oracle's: its training seed).")
    tied = runs_frame(records(False, False))
    assert seed_note(tied) == (" Each ± spans training seeds 0 1; forget-set seed tied to the training seed; "
                               "unlearning seed tied to the training seed.")
    (caption, shown), _ = display_tables(summarise(runs_frame(records())), note)
    assert note in caption and "unlearn_seeds" in shown
    (caption, shown), _ = display_tables(summarise(tied), seed_note(tied))
    assert "tied to the training seed" in caption and "unlearn_seeds" not in shown  # no column when every axis is tied


@pytest.mark.slow
def test_a_small_run_with_both_axes_records_its_seeds(tmp_path):
    """One training seed, forget seeds 0 and 1, unlearning seed 1, on a tiny CNN: the method runs with u, the oracle
    with t, the ensembles with seeds from t (oracles) and u (unlearned), and metrics.json, the summary and its
    caption say so."""
    config = copy.deepcopy(TINY) | {"name": "axes-real", "seed_axes": {"forget": [0, 1], "unlearn": [1]},
                                    "metrics": ["forget_acc", "kl_to_oracle", "neurips_score"],
                                    "evaluation": {"oracles": 4, "unlearn_seeds": 2, "methods": ["retrain", "finetune"],
                                                   "models_per_job": 2}}
    config["experiments"]["e"] |= {"model": {"name": "tiny_cnn"}, "scenarios": ["r5"], "methods": ["retrain", "finetune"]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    run = snakemake_in(path, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "results" / "axes-real"
    for f in (0, 1):
        method = json.loads((out / "e" / f"seed0f{f}u1" / "r5" / "finetune" / "metrics.json").read_text())
        oracle = json.loads((out / "e" / f"seed0f{f}" / "r5" / "retrain" / "metrics.json").read_text())
        assert (method["seed"], method["forget_seed"], method["unlearn_seed"], method["run"]["seed"]) == (0, f, 1, 1)
        assert (oracle["seed"], oracle["forget_seed"], oracle["unlearn_seed"], oracle["run"]["seed"]) == (0, f, 0, 0)
        assert method["ensemble"]["n_models"] == 2 and "neurips_score" in method["metrics"]
        oracles = np.load(out / "e" / f"seed0f{f}" / "r5" / "oracles" / "k2-4.npz")["seeds"]
        unlearned = np.load(out / "e" / f"seed0f{f}u1" / "r5" / "finetune" / "unlearn_seeds" / "j1-2.npz")["seeds"]
        assert list(oracles) == [oracle_seed(0, 2), oracle_seed(0, 3)] and list(unlearned) == [unlearn_seed(1, 1)]
    assert sorted(p.name for p in (out / "splits" / "digits" / "r5").iterdir()) == ["seed0.npz", "seed1.npz"]
    assert sorted(p.name for p in (out / "e").iterdir()) == ["seed0", "seed0f0", "seed0f0u1", "seed0f1", "seed0f1u1"]
    table = pd.read_csv(tmp_path / "figures" / "axes-real" / "summary.csv").set_index("method")
    assert table.loc["finetune", "n"] == 2 and table.loc["finetune", "forget_seeds"] == "0 1"
    assert str(table.loc["finetune", "unlearn_seeds"]) == "1" and table.loc["retrain", "unlearn_seeds"] == "tied"
    caption = (tmp_path / "figures" / "axes-real" / "summary.md").read_text()
    assert ("Each ± spans training seeds 0; forget-set seeds 0 1; unlearning seeds 1 (the retrain oracle's: its "
            "training seed).") in caption
