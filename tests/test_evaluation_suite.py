"""The ensemble evaluation in the DAG: the oracle and unlearned ensembles as jobs, the registered scores
(NeurIPS 2023 challenge score, KLoM) with N recorded, and the leaderboard's bootstrap intervals and ties."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from unlearnbench import ensemble_metrics as em
from unlearnbench.metrics import METRICS, Ensembles, Evaluation, compute, needs_of
from unlearnbench.references import batches, oracle_seed, shadow_membership, shadow_seed, ulira_seed, unlearn_seed
from unlearnbench.tables import ensemble_note, leaderboard, leaderboard_display, rank_methods

SCORES = ["neurips_score", "neurips_forgetting_quality", "klom_p95_forget", "klom_mean_retain", "klom_p05_test"]


def test_seeds_and_batches():
    assert batches(0, 10, 4) == [(0, 4), (4, 8), (8, 10)] and batches(1, 4, 4) == [(1, 4)] and batches(1, 1, 4) == []
    assert ulira_seed is oracle_seed and oracle_seed(0, 0) == 1000  # U-LiRA's oracles: the ensemble's first ones
    assert unlearn_seed(3, 0) == 3 and len({unlearn_seed(s, j) for s in range(5) for j in range(8)}) == 40


def test_shadow_membership_puts_every_example_in_half_the_shadows():
    keep = shadow_membership(50, 8, 0)
    assert keep.shape == (8, 50) and (keep.sum(0) == 4).all() and not np.array_equal(keep, shadow_membership(50, 8, 1))
    assert len({shadow_seed(s, m) for s in range(5) for m in range(8)} | {oracle_seed(s, k) for s in range(5)
                                                                        for k in range(8)}) == 80


def test_ulira_shadows_separate_remembered_examples_and_not_forgotten_ones():
    """Shadows whose confidence on D_f stays high where they saw it (a method that forgets nothing): AUC near 1;
    confidence independent of membership (perfect unlearning): AUC near 0.5."""
    rng = np.random.default_rng(4)
    ev, _, _ = synthetic(4, 0.0, rng)
    in_train = shadow_membership(len(ev.train_y), 8, 0)
    aucs = []
    for effect in (4.0, 0.0):
        logits = rng.normal(0, 0.3, (8, len(ev.train_y), 3))
        logits[np.arange(8)[:, None], np.arange(len(ev.train_y)), ev.train_y] += 1 + effect * in_train
        ev.shadows, ev.scores, ev.values = {"in_train": in_train, "train_logits": logits}, {}, {}
        aucs.append(compute(ev, ["ulira_shadows_auc", "ulira_shadows_tpr_1pct"]))
    assert aucs[0]["ulira_shadows_auc"] > 0.95 and aucs[0]["ulira_shadows_tpr_1pct"] > 0.5
    assert 0.3 < aucs[1]["ulira_shadows_auc"] < 0.7


def test_scores_are_registered_with_their_artifact():
    assert needs_of(SCORES) == {"ensembles"}
    assert {f"klom_{s}_{p}" for s in ("p95", "mean", "p05") for p in ("forget", "retain", "test")} <= set(METRICS)
    assert METRICS["neurips_score"].direction == "higher" and METRICS["klom_p95_forget"].direction == "lower"


def synthetic(n_models: int, shift: float, rng, n=60, classes=3):
    """Train/test logits of a run plus oracle and unlearned stacks; the unlearned margins are shifted by ``shift``."""
    train_y, test_y = rng.integers(0, classes, n), rng.integers(0, classes, n // 2)

    def stack(k, delta):
        tr, te = rng.normal(0, 1, (k, n, classes)), rng.normal(0, 1, (k, n // 2, classes))
        tr[np.arange(k)[:, None], np.arange(n), train_y] += 3 + delta
        te[np.arange(k)[:, None], np.arange(n // 2), test_y] += 3 + delta
        return {"train_logits": tr, "test_logits": te}

    oracles, unlearned = stack(2 * n_models, 0.0), stack(n_models, shift)
    split = {"forget": np.arange(10), "retain": np.arange(10, n), "test_forget": np.arange(0),
             "test_retain": np.arange(n // 2)}
    ev = Evaluation(unlearned["train_logits"][0], unlearned["test_logits"][0], train_y, test_y, split)
    return ev, oracles, unlearned


def test_identical_ensembles_score_near_the_floor_and_disjoint_ones_hit_the_caps():
    rng = np.random.default_rng(0)
    ev, oracles, unlearned = synthetic(16, 0.0, rng)
    ev.ensembles = Ensembles(oracles, unlearned, 16)
    same = compute(ev, SCORES)
    far, oracles2, unlearned2 = synthetic(16, 40.0, np.random.default_rng(0))
    far.ensembles = Ensembles(oracles2, unlearned2, 16)
    apart = compute(far, SCORES)
    assert apart["neurips_forgetting_quality"] == 0.0 and apart["neurips_score"] == 0.0  # every epsilon at the cap
    assert same["neurips_forgetting_quality"] > 0.1
    assert apart["klom_p95_forget"] > 0.8 * em.klom_cap() and same["klom_p95_forget"] < 0.5 * em.klom_cap()
    # the scores are ensemble_metrics' functions of N unlearned models against oracles N..2N-1
    direct = em.klom({"forget": unlearned["train_logits"][:, :10]}, {"forget": oracles["train_logits"][16:, :10]},
                     {"forget": ev.train_y[:10]})
    assert same["klom_p95_forget"] == pytest.approx(direct["forget"]["p95"])
    assert ev.ensembles.record()["n_models"] == 16 and ev.ensembles.record()["epsilon_cap"] == em.epsilon_cap(16)


def test_identical_unlearned_models_above_every_oracle_fall_out_of_evalpys_bins():
    """A deterministic method gives N identical models; at the pooled maximum eval.py's binning drops them (KLoM 0),
    the closed top bin (``klom_top_edge``) puts them in a bin the oracles leave empty (KLoM ln 1e5)."""
    ev, oracles, _ = synthetic(4, 0.0, np.random.default_rng(3))
    same = {k: np.repeat(v[:1] + 50.0 * np.eye(3)[None, None, 0], 4, axis=0) for k, v in oracles.items()}
    ev.train_y = np.zeros_like(ev.train_y)  # class 0's logit +50: a margin above every oracle's
    values = {}
    for top in (False, True):
        ev.ensembles, ev.scores, ev.values = Ensembles(oracles, same, 4, klom_top_edge=top), {}, {}
        values[top] = compute(ev, ["klom_p95_forget"])["klom_p95_forget"]
    assert values[False] == 0.0 and values[True] == pytest.approx(em.klom_cap())


def test_the_retrain_row_is_oracle_against_oracle_and_a_run_without_ensembles_scores_none():
    rng = np.random.default_rng(1)
    ev, oracles, _ = synthetic(4, 0.0, rng)
    ev.ensembles = Ensembles(oracles, None, 4)
    unl, ref = ev.ensembles.sides()
    assert np.array_equal(unl["train_logits"], oracles["train_logits"][:4])
    assert np.array_equal(ref["train_logits"], oracles["train_logits"][4:8])
    assert ev.ensembles.record()["reference"] == "oracle vs oracle"
    plain, _, _ = synthetic(4, 0.0, rng)
    assert all(v is None for v in compute(plain, SCORES).values())


def test_evaluate_step_stacks_the_run_and_its_ensemble_files_and_records_n(tmp_path):
    from unlearnbench.steps.evaluate import evaluate_run

    rng = np.random.default_rng(2)
    ev, oracles, unlearned = synthetic(4, 0.0, rng)
    np.savez(tmp_path / "split.npz", **ev.split)
    np.savez(tmp_path / "logits.npz", train_logits=unlearned["train_logits"][0],
             test_logits=unlearned["test_logits"][0], train_y=ev.train_y, test_y=ev.test_y)
    (tmp_path / "run.json").write_text(json.dumps({"seconds": 1.0, "seed": 0}))
    for a, b in batches(0, 8, 3):
        np.savez(tmp_path / f"k{a}-{b}.npz", **{k: v[a:b] for k, v in oracles.items()})
    np.savez(tmp_path / "j1-4.npz", **{k: v[1:4] for k, v in unlearned.items()})
    out = tmp_path / "metrics.json"
    evaluate_run(str(tmp_path / "logits.npz"), str(tmp_path / "split.npz"), str(tmp_path / "run.json"),
                 SCORES + ["ulira_auc"], {"method": "m"}, str(out),
                 oracle_ensemble_paths=[str(tmp_path / f"k{a}-{b}.npz") for a, b in batches(0, 8, 3)], ulira_oracles=4,
                 unlearned_paths=[str(tmp_path / "j1-4.npz")], ensemble={"n": 4, "unlearned": True, "recipe": None})
    record = json.loads(out.read_text())
    assert record["ensemble"] == {"n_models": 4, "oracles": 8, "reference": "unlearned vs oracle",
                                  "epsilon_cap": 2.0, "recipe": "experiment", "klom_top_edge": False}
    ev.ensembles = Ensembles(oracles, unlearned, 4)
    assert record["metrics"]["klom_p95_forget"] == pytest.approx(compute(ev, ["klom_p95_forget"])["klom_p95_forget"])
    assert 0 <= record["metrics"]["ulira_auc"] <= 1
    assert "N = 4 unlearned models per run against N of 8 retrain oracles" in ensemble_note([record])
    assert "EVALUATION-ONLY" in ensemble_note([{**record, "ensemble": {**record["ensemble"], "recipe": {"epochs": 2}}}])


def test_leaderboard_shows_bootstrap_intervals_and_marks_indistinguishable_ranks():
    rows = [("a", s, 0.90 + 0.01 * s) for s in range(4)] + [("b", s, 0.905 + 0.01 * s) for s in range(4)]
    rows += [("c", s, 0.10 + 0.01 * s) for s in range(4)]
    runs = pd.DataFrame([{"experiment": "e", "scenario": "s", "method": m, "seed": s, "test_acc": v}
                         for m, s, v in rows])
    ranked = rank_methods(runs, "test_acc").set_index("entry")
    assert ranked.loc["a", "ci_low"] < ranked.loc["a", "mean"] < ranked.loc["a", "ci_high"]
    assert ranked.loc["a", "tied"] and ranked.loc["b", "tied"] and not ranked.loc["c", "tied"]
    caption, shown = leaderboard_display(ranked.reset_index(), leaderboard(ranked.reset_index()), "test_acc")
    cells = dict(zip(shown["method"], shown["s"]))
    assert cells["b"].endswith("(#1=)") and cells["c"].endswith("(#3)") and "[" in cells["c"]
    assert "bootstrap" in caption
    one_seed = rank_methods(runs[runs["seed"] == 0], "test_acc").set_index("entry")
    assert one_seed["ci_low"].isna().all() and one_seed["tied"].all()  # nothing can be told apart with one seed


def test_a_method_without_the_score_is_left_off_the_leaderboard():
    """The ensemble scores skip `original` (evaluation.methods' default): it has no rank, not a rank of nan."""
    runs = pd.DataFrame([{"experiment": "e", "scenario": "s", "method": m, "seed": 0, "neurips_score": v}
                         for m, v in (("original", float("nan")), ("a", 0.2), ("b", 0.1))])
    ranked = rank_methods(runs, "neurips_score")
    assert list(ranked.dropna(subset=["rank"]).sort_values("rank")["entry"]) == ["a", "b"]
    caption, shown = leaderboard_display(ranked, leaderboard(ranked), "neurips_score")
    assert list(shown["method"]) == ["a", "b"] and "nan" not in shown.to_string()
    assert "original" in caption  # named as left out


def test_quick_preset_plans_the_ensemble_jobs(tmp_path):
    """Dry run: one oracle job per 4 oracles and scenario, one unlearned job per evaluated run (3 more seeds)."""
    from test_workflow import QUICK, planned_jobs, snakemake

    config = json.loads(json.dumps(QUICK)) | {"name": "test-ensemble-plan"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    run = snakemake(path, "-n", "--forceall", timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    jobs = planned_jobs(run.stdout)
    ev = QUICK["evaluation"]
    scenarios = 2 + 1  # digits_resnet's two, digits_mnemonic's one (its retrain row is evaluated)
    assert jobs["oracle_ensemble"] == scenarios * ev["oracles"] // ev["models_per_job"]
    assert jobs["unlearn_ensemble"] == 3 * 2  # finetune, ssd, salun on digits_resnet's two scenarios
    config["evaluation"] = {"oracles": 4, "unlearn_seeds": 4}
    path.write_text(yaml.safe_dump(config))
    run = snakemake(path, "-n", timeout=120)
    assert run.returncode != 0 and "evaluation.oracles >= 2 N" in run.stdout + run.stderr


def test_ulira_shadow_jobs_plan_per_experiment_and_per_evaluated_run(tmp_path):
    from test_workflow import QUICK, planned_jobs, snakemake

    config = json.loads(json.dumps(QUICK)) | {"name": "test-shadow-plan", "metrics": ["avg_gap", "ulira_shadows_auc"]}
    config["evaluation"] = {"ulira_shadows": 6, "methods": ["retrain", "finetune"]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    run = snakemake(path, "-n", "--forceall", timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    jobs = planned_jobs(run.stdout)
    assert jobs["shadow_membership"] == 2 and jobs["shadow_original"] == 2 * 6  # per experiment and seed
    assert jobs["shadow_unlearn"] == 2 * (2 * 2 + 1)  # 2 jobs of 4 + 2 shadows: retrain, finetune on 2; retrain on 1
    assert "oracle_ensemble" not in jobs and "unlearn_ensemble" not in jobs
    config["evaluation"]["ulira_shadows"] = 4
    path.write_text(yaml.safe_dump(config))
    run = snakemake(path, "-n", timeout=120)
    assert run.returncode != 0 and "evaluation.ulira_shadows M >= 6" in run.stdout + run.stderr


def test_ensemble_step_on_digits_keeps_logits_only_and_matches_a_single_run(digits, tmp_path):
    """Two tiny-CNN oracles in one job: stacked logits, one per seed, each equal to the plain unlearn step's."""
    from unlearnbench.data import save_dataset
    from unlearnbench.splits import make_split, save_split
    from unlearnbench.steps.references import ensemble
    from unlearnbench.steps.train import train_original
    from unlearnbench.steps.unlearn import unlearn

    model, train = {"name": "tiny_cnn", "dataset": "digits"}, {"epochs": 1, "batch_size": 64, "lr": 0.05}
    scenario = {"kind": "full_class", "classes": ["3"]}
    data, split, original = tmp_path / "d.pt", tmp_path / "s.npz", tmp_path / "o.pt"
    save_dataset(digits, data)
    save_split(make_split(scenario, digits, seed=0), split)
    train_original(str(data), model, train, 0, str(original), device="cpu")
    method, seeds = {"method": "retrain", "from_initial": False}, [oracle_seed(0, k) for k in range(2)]
    ensemble(str(original), str(data), str(split), method, model, train, scenario, seeds, str(tmp_path / "k0-2.npz"),
             device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pt", "k0-2.npz", "o.pt", "s.npz"]  # no checkpoint
    stacked = np.load(tmp_path / "k0-2.npz")
    assert stacked["train_logits"].shape == (2, len(digits["train_y"]), 10) and list(stacked["seeds"]) == seeds
    assert not np.allclose(stacked["train_logits"][0], stacked["train_logits"][1])  # two training seeds
    single = tmp_path / "single"
    unlearn(str(original), str(data), str(split), method, model, train, scenario, seeds[1], str(single / "m.pt"),
            str(single / "run.json"), str(single / "logits.npz"), device="cpu")
    np.testing.assert_allclose(stacked["test_logits"][1], np.load(single / "logits.npz")["test_logits"], atol=1e-5)


def test_stacked_oracle_ensemble_equals_the_sequential_one(digits, tmp_path):
    """The oracle ensemble trained at once (``stacked: true``, the default on a GPU) gives the oracles that training
    them one after another gives, to float tolerance; another method's ensemble stays sequential."""
    from unlearnbench.data import save_dataset
    from unlearnbench.splits import make_split, save_split
    from unlearnbench.steps.references import ensemble
    from unlearnbench.steps.train import train_original

    model = {"name": "airbench", "dataset": "digits", "options": {"widths": [4, 8, 8]}}
    train = {"preset": "airbench", "epochs": 1.5, "batch_size": 64}
    scenario = {"kind": "random", "fraction": 0.1}
    data, split, original = tmp_path / "d.pt", tmp_path / "s.npz", tmp_path / "o.pt"
    save_dataset(digits, data)
    save_split(make_split(scenario, digits, seed=0), split)
    train_original(str(data), model, train, 0, str(original), device="cpu")
    method, seeds = {"method": "retrain", "from_initial": False}, [oracle_seed(0, k) for k in range(3)]
    for stacked in (False, True):
        ensemble(str(original), str(data), str(split), method, model, train, scenario, seeds,
                 str(tmp_path / f"{stacked}.npz"), device="cpu", stacked=stacked)
    sequential, at_once = np.load(tmp_path / "False.npz"), np.load(tmp_path / "True.npz")
    for key in ("train_logits", "test_logits"):
        scale = np.abs(sequential[key]).max()
        np.testing.assert_allclose(at_once[key], sequential[key], atol=1e-4 * scale)
    assert not np.allclose(at_once["test_logits"][0], at_once["test_logits"][1])  # three training seeds
    assert list(at_once["seeds"]) == seeds and at_once["seconds"].shape == (3,)


def test_ulira_shadow_steps_on_digits(digits, tmp_path):
    """Membership, 6 tiny-CNN shadow originals on their halves, each fine-tuned on its part of D_f: the metrics job
    reads them and records M."""
    from unlearnbench.data import save_dataset
    from unlearnbench.splits import make_split, save_split
    from unlearnbench.steps.evaluate import evaluate_run
    from unlearnbench.steps.references import shadow_membership as membership_step
    from unlearnbench.steps.references import shadow_original, shadow_unlearn
    from unlearnbench.steps.unlearn import unlearn

    model, train = {"name": "tiny_cnn", "dataset": "digits"}, {"epochs": 1, "batch_size": 64, "lr": 0.05}
    scenario = {"kind": "random", "fraction": 0.1}
    data, split, member = tmp_path / "d.pt", tmp_path / "s.npz", tmp_path / "membership.npz"
    save_dataset(digits, data)
    save_split(make_split(scenario, digits, seed=0), split)
    membership_step(str(data), 6, 0, str(member))
    in_train = np.load(member)["in_train"]
    method = {"method": "finetune", "epochs": 1}
    originals = [str(tmp_path / f"shadow{m}.pt") for m in range(6)]
    for m in range(6):
        shadow_original(str(data), str(member), m, model, train, shadow_seed(0, m), originals[m], device="cpu")
    paths = [str(tmp_path / "s0-4.npz"), str(tmp_path / "s4-6.npz")]  # two jobs of the rule
    for (a, b), path in zip(batches(0, 6, 4), paths):
        shadow_unlearn(originals[a:b], str(data), str(split), str(member), list(range(a, b)), method, model, train,
                       scenario, [shadow_seed(0, m) for m in range(a, b)], path, device="cpu")
    assert np.load(paths[1])["train_logits"].shape == (2, len(digits["train_y"]), 10)
    import torch
    assert torch.load(tmp_path / "shadow0.pt", weights_only=False)["meta"]["seed"] == shadow_seed(0, 0)
    assert in_train.shape == (6, len(digits["train_y"]))
    run = tmp_path / "run"
    unlearn(str(tmp_path / "shadow0.pt"), str(data), str(split), method, model, train, scenario, 0, str(run / "m.pt"),
            str(run / "run.json"), str(run / "logits.npz"), device="cpu")
    out = tmp_path / "metrics.json"
    names = ["ulira_shadows_auc", "ulira_shadows_tpr_1pct"]
    evaluate_run(str(run / "logits.npz"), str(split), str(run / "run.json"), names, {}, str(out),
                 membership_path=str(member), shadow_paths=paths)
    record = json.loads(out.read_text())
    assert record["ulira_shadows"] == {"n_models": 6, "recipe": "experiment"}
    assert 0 <= record["metrics"]["ulira_shadows_auc"] <= 1 and "M = 6 shadow models" in ensemble_note([record])
