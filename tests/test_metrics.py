"""Metrics against hand-computed values on tiny distributions, gap and Δ sign conventions, the metrics step on
cached files, the tables, and the training-based evaluations (relearn time, incompetent model) on a tiny model."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from unlearnbench import UserError
from unlearnbench.metrics import METRICS, NEEDS, Evaluation, compute, js_bad_teacher_code, js_rows, kl_rows, needs_of
from unlearnbench.results import oracle_deltas, summarise
from unlearnbench.steps.evaluate import evaluate_run
from unlearnbench.steps.report import write_summary
from unlearnbench.tables import display_tables


def evaluation(train_p, test_p, y_train, y_test, forget, test_forget=(), seconds=1.0) -> Evaluation:
    """An Evaluation from probability rows (logits = log p)."""
    train_p, test_p = np.asarray(train_p, float), np.asarray(test_p, float)
    forget, test_forget = np.asarray(forget, int), np.asarray(test_forget, int)
    split = {"forget": forget, "retain": np.setdiff1d(np.arange(len(train_p)), forget),
             "test_forget": test_forget, "test_retain": np.setdiff1d(np.arange(len(test_p)), test_forget)}
    return Evaluation(np.log(train_p), np.log(test_p), np.asarray(y_train), np.asarray(y_test), split, {"seconds": seconds})


def test_every_metric_states_direction_scale_and_source():
    for m in METRICS.values():
        assert m.direction in ("higher", "lower", "oracle") and set(m.needs) <= set(NEEDS)
        assert m.doc and any(word in m.doc for word in ("better", "oracle")), m.name


def test_divergences_by_hand():
    p, q = np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])
    # m = (0.75, 0.25): KL(p||m) = ln(4/3); KL(q||m) = (ln(2/3) + ln 2) / 2
    expected = (math.log(4 / 3) + (math.log(2 / 3) + math.log(2)) / 2) / 2
    assert np.isclose(js_rows(p, q)[0], expected) and np.isclose(js_rows(q, p)[0], expected)
    assert np.isclose(kl_rows(q, np.array([[0.25, 0.75]]))[0], 0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    assert js_rows(q, q)[0] == 0 and np.isclose(js_rows(np.eye(2)[:1], np.eye(2)[1:])[0], math.log(2))
    # the bad-teacher code: (KL(m||p) + KL(m||q)) / 2, summed over rows and divided by rows x classes
    p, q = np.array([[0.8, 0.2]]), np.array([[0.5, 0.5]])
    kl_mp = 0.65 * math.log(0.65 / 0.8) + 0.35 * math.log(0.35 / 0.2)
    kl_mq = 0.65 * math.log(0.65 / 0.5) + 0.35 * math.log(0.35 / 0.5)
    assert np.isclose(js_bad_teacher_code(p, q), (kl_mp + kl_mq) / 2 / 2)


def forget_pair(model_rows, other_rows):
    """Run and comparison model that agree everywhere except on the forget set (the first rows)."""
    n = len(model_rows)
    rest = np.full((4, 2), 0.5)
    ev = evaluation(np.r_[model_rows, rest], rest, np.zeros(n + 4, int), np.zeros(4, int), forget=np.arange(n))
    other = evaluation(np.r_[other_rows, rest], rest, np.zeros(n + 4, int), np.zeros(4, int), forget=np.arange(n))
    return ev, other


def test_zrf_activation_distance_and_kl_by_hand():
    ev, other = forget_pair([[1 - 1e-12, 1e-12], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]])
    ev.incompetent = ev.oracle = other
    js_first = (math.log(4 / 3) + (math.log(2 / 3) + math.log(2)) / 2) / 2
    assert np.isclose(METRICS["zrf"].fn(ev), 1 - js_first / 2, atol=1e-9)
    assert np.isclose(METRICS["js_to_oracle"].fn(ev), js_first / 2, atol=1e-9)
    assert np.isclose(METRICS["activation_distance"].fn(ev), (math.sqrt(0.5 ** 2 * 2) + 0) / 2)
    # KL(oracle || model): oracle (0.5, 0.5) against (1, 0) on the first row = (ln(0.5/1) + ln(0.5/1e-12)) / 2
    assert np.isclose(METRICS["kl_to_oracle"].fn(ev), (math.log(0.5) + math.log(0.5 / 1e-12)) / 2 / 2, rtol=1e-6)
    same, _ = forget_pair([[0.3, 0.7]], [[0.3, 0.7]])
    same.incompetent = same.oracle = same
    assert METRICS["zrf"].fn(same) == 1 and METRICS["zrf_code"].fn(same) == 1
    assert METRICS["kl_to_oracle"].fn(same) == 0 and METRICS["activation_distance"].fn(same) == 0


def accuracy_pair():
    """Four training samples (forget = the first two) and four test samples of two classes; the run gets both
    forget samples right, the oracle neither; the run gets 3/4 test samples right, the oracle all."""
    right, wrong = [0.9, 0.1], [0.1, 0.9]
    y = np.zeros(4, int)
    ev = evaluation([right, right, right, right], [right, right, right, wrong], y, y, forget=[0, 1], seconds=3.0)
    ev.oracle = evaluation([wrong, wrong, right, right], [right] * 4, y, y, forget=[0, 1], seconds=12.0)
    return ev


def test_gap_metrics_are_absolute_differences_to_the_oracle():
    ev = accuracy_pair()
    # |test| 0.25, |retain| 0, |forget| 1, |mia_entropy_lr| computed by the metric itself
    mia_gap = abs(METRICS["mia_entropy_lr"].fn(ev) - METRICS["mia_entropy_lr"].fn(ev.oracle))
    assert np.isclose(METRICS["avg_gap"].fn(ev), (0.25 + 0 + 1 + mia_gap) / 4)
    ev.oracle.oracle = ev.oracle  # the oracle's own run compares with itself
    assert METRICS["avg_gap"].fn(ev.oracle) == 0 and METRICS["avg_gap_salun"].fn(ev.oracle) == 0
    assert METRICS["rte"].fn(ev) == 0.25


def test_oracle_metrics_without_the_oracle_are_a_clear_error():
    ev = accuracy_pair()
    ev.oracle = None
    with pytest.raises(UserError, match="oracle"):
        compute(ev, ["kl_to_oracle"])


def test_needs_lists_only_what_the_metrics_use():
    assert needs_of(["retain_acc", "mia_efficacy"]) == set()
    assert needs_of(["avg_gap", "zrf", "relearn_epochs", "ulira_auc"]) == {"oracle", "incompetent", "relearn", "ulira_oracles"}


def runs_frame():
    """Two seeds of the oracle and one method: Δ = oracle − method is +0.1 (seed 0) and +0.3 (seed 1) on test
    accuracy and −0.5 / −0.7 on forget accuracy (the method forgets less than the oracle)."""
    rows = []
    for seed, (test_m, forget_m) in enumerate([(0.8, 0.5), (0.6, 0.7)]):
        rows.append({"experiment": "e", "scenario": "s", "method": "retrain", "seed": seed, "test_acc": 0.9, "forget_acc": 0.0, "method_seconds": 10.0})
        rows.append({"experiment": "e", "scenario": "s", "method": "ft", "seed": seed, "test_acc": test_m, "forget_acc": forget_m, "method_seconds": 1.0})
    return pd.DataFrame(rows)


def test_delta_is_oracle_minus_method_paired_by_seed():
    deltas = oracle_deltas(runs_frame()).set_index(["method", "seed"])
    assert np.allclose(deltas.loc[("ft", 0), ["delta_test_acc", "delta_forget_acc"]], [0.1, -0.5])
    assert np.allclose(deltas.loc[("ft", 1), ["delta_test_acc", "delta_forget_acc"]], [0.3, -0.7])
    assert (deltas.loc["retrain"][["delta_test_acc", "delta_forget_acc"]] == 0).all().all()
    assert "delta_method_seconds" not in deltas  # only fractions get a Δ


def test_summary_has_mean_std_n_and_seeds_and_the_markdown_says_directions():
    table = summarise(runs_frame()).set_index("method")
    assert table.loc["ft", "n"] == 2 and table.loc["ft", "seeds"] == "0 1"
    assert np.isclose(table.loc["ft", "delta_test_acc_mean"], 0.2) and np.isclose(table.loc["ft", "delta_test_acc_std"], math.sqrt(0.02))
    assert np.isclose(table.loc["ft", "test_acc_mean"], 0.7)
    md = "\n".join(caption + frame.to_markdown() for caption, frame in display_tables(summarise(runs_frame())))
    assert "test_acc % ↑" in md and "forget_acc % ≈oracle" in md and "method_seconds s ↓" in md
    assert "Δ test_acc %" in md and "oracle − method" in md and "20.0 ± 14.1" in md and "-60.0 ± 14.1" in md


def write_run(folder, ev: Evaluation, seed=0):
    folder.mkdir(parents=True)
    np.savez(folder / "logits.npz", train_logits=ev.train_logits, test_logits=ev.test_logits, train_y=ev.train_y, test_y=ev.test_y)
    (folder / "run.json").write_text(json.dumps({**ev.run, "seed": seed}))


def test_evaluate_run_reads_cached_files_and_the_table_aggregates_them(tmp_path):
    ev = accuracy_pair()
    write_run(tmp_path / "ft", ev)
    write_run(tmp_path / "retrain", ev.oracle)
    np.savez(tmp_path / "split.npz", **ev.split)
    names = ["forget_acc", "test_acc", "avg_gap", "rte"]
    paths = []
    for method in ("ft", "retrain"):
        out = tmp_path / method / "metrics.json"
        evaluate_run(str(tmp_path / method / "logits.npz"), str(tmp_path / "split.npz"), str(tmp_path / method / "run.json"), names,
                     {"experiment": "e", "scenario": "s", "method": method, "seed": 0}, str(out),
                     oracle_logits_path=str(tmp_path / "retrain" / "logits.npz"), oracle_run_path=str(tmp_path / "retrain" / "run.json"))
        paths.append(str(out))
    record = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert record["metrics"]["forget_acc"] == 1.0 and record["metrics"]["rte"] == 0.25 and "provenance" in record
    oracle_record = json.loads((tmp_path / "retrain" / "metrics.json").read_text())["metrics"]
    assert oracle_record["avg_gap"] == 0 and oracle_record["rte"] == 1
    table = write_summary(paths, *(str(tmp_path / f"t.{ext}") for ext in ("csv", "md", "tex"))).set_index("method")
    assert table.loc["ft", "delta_forget_acc_mean"] == -1.0 and table.loc["ft", "delta_test_acc_mean"] == 0.25
    assert "Δ forget_acc" in (tmp_path / "t.md").read_text()
    assert "| git_commit" in (tmp_path / "t.md").read_text()  # which code produced the runs
    assert r"$\Delta$ forget\_acc" in (tmp_path / "t.tex").read_text() and "\\toprule" in (tmp_path / "t.tex").read_text()


# --- training-based evaluations on a tiny model -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_artifacts(tmp_path_factory, digits):
    from unlearnbench.checkpoint import build_model, model_config, save_checkpoint
    from unlearnbench.data import save_dataset
    from unlearnbench.splits import make_split, save_split

    folder = tmp_path_factory.mktemp("oracles")
    data = {**digits, "train_x": digits["train_x"][:300], "train_y": digits["train_y"][:300],
            "test_x": digits["test_x"][:100], "test_y": digits["test_y"][:100]}
    save_dataset(data, folder / "data.pt")
    save_split(make_split({"kind": "full_class", "classes": ["3"]}, data, seed=0), folder / "split.npz")
    model = {"name": "resnet18", "dataset": "digits", "options": {"width": 4}}
    save_checkpoint(folder / "model.pt", build_model(model_config(**model)), model_config(**model))
    return folder, model


def test_incompetent_logits_are_seeded_and_cover_both_sets(tiny_artifacts, tmp_path):
    from unlearnbench.steps.references import incompetent_logits

    folder, model = tiny_artifacts
    for name in ("a", "b"):
        incompetent_logits(str(folder / "data.pt"), model, 0, str(tmp_path / f"{name}.npz"), device="cpu")
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert a["train_logits"].shape == (300, 10) and a["test_logits"].shape == (100, 10)
    assert np.array_equal(a["train_logits"], b["train_logits"])


def test_relearn_counts_epochs_until_the_threshold(tiny_artifacts, tmp_path):
    from unlearnbench.steps.references import relearn

    folder, _ = tiny_artifacts
    paths = [str(folder / n) for n in ("model.pt", "data.pt", "split.npz", "model.pt")]  # its own original
    train = {"epochs": 1, "batch_size": 16}
    relearn(*paths, train, 0, str(tmp_path / "zero.json"), device="cpu")  # at the original's level already
    assert json.loads((tmp_path / "zero.json").read_text())["epochs"] == 0
    relearn(*paths, train, 0, str(tmp_path / "r.json"), threshold=0.95, absolute=True, max_epochs=3, lr=0.05, device="cpu")
    record = json.loads((tmp_path / "r.json").read_text())
    assert len(record["forget_acc"]) == record["epochs"] + 1 and record["reached"] == (record["forget_acc"][-1] >= 0.95)
    assert record["epochs"] == 3 or record["reached"]
    assert record["forget_acc"][-1] > record["forget_acc"][0]  # fine-tuning on one class teaches it
    ev = Evaluation(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1, int), np.zeros(1, int), {}, relearn=record)
    assert METRICS["relearn_epochs"].fn(ev) == record["epochs"]


def test_relearn_threshold_is_relative_to_the_original_forget_accuracy(trained_task, tmp_path):
    """A model that forgot some of D_f but stays above 0.9 (as a retrain oracle does on random forgetting) must
    relearn: an absolute 0.9 read 0 epochs for every such model."""
    import torch

    from unlearnbench.checkpoint import save_checkpoint
    from unlearnbench.data import save_dataset
    from unlearnbench.steps.references import relearn
    from unlearnbench.steps.unlearn import save_logits
    from unlearnbench.splits import save_split
    from unlearnbench.train import predict_logits

    original, task = trained_task("resnet18_w4")
    x = torch.cat([task.retain.x, task.forget.x])
    y = torch.cat([task.retain.y, task.forget.y])
    logits = predict_logits(original, x)
    right = logits.argmax(1) == y
    # D_f: 57 correctly classified images of other classes and 3 of class 5, so the original scores 1.0 on it
    others = torch.nonzero(right & (y != 5)).flatten()[:57]
    fives = torch.nonzero(right & (y == 5)).flatten()[:3]
    forget = torch.cat([others, fives])
    retain = torch.tensor(sorted(set(range(len(y))) - set(forget.tolist())))
    data = {"train_x": x, "train_y": y, "test_x": x[:10], "test_y": y[:10]}
    save_dataset(data, tmp_path / "data.pt")
    save_split({"forget": forget, "retain": retain, "test_forget": torch.zeros(0, dtype=torch.long),
                "test_retain": torch.arange(10)}, tmp_path / "split.npz")
    save_checkpoint(tmp_path / "original.pt", original, task.model_config)
    save_logits(original, data, str(tmp_path / "original.npz"), torch.device("cpu"))  # the `original` run's cache
    # "forgetting": lower class 5's logit just enough that the three fives go to their runner-up class
    fives_logits = logits[fives]
    runner_up = fives_logits.clone()
    runner_up[:, 5] = -float("inf")
    with torch.no_grad():
        original.head.bias[5] -= float((fives_logits[:, 5] - runner_up.max(1).values).max()) + 0.5
    save_checkpoint(tmp_path / "forgot.pt", original, task.model_config)
    paths = [str(tmp_path / n) for n in ("forgot.pt", "data.pt", "split.npz", "original.pt")]
    train = {"epochs": 1, "batch_size": 16}
    relearn(*paths, train, 0, str(tmp_path / "r.json"), max_epochs=5, lr=0.1, device="cpu")
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["original_forget_acc"] == 1.0 and record["threshold"] == 1.0
    assert record["forget_acc"][0] == pytest.approx(57 / 60)  # above the old absolute 0.9, below the original
    assert record["epochs"] >= 1
    relearn(*paths[:3], str(tmp_path / "original.npz"), train, 0, str(tmp_path / "npz.json"), max_epochs=5, lr=0.1, device="cpu")
    assert json.loads((tmp_path / "npz.json").read_text())["forget_acc"] == record["forget_acc"]
    relearn(*paths, train, 0, str(tmp_path / "abs.json"), threshold=0.9, absolute=True, device="cpu")
    assert json.loads((tmp_path / "abs.json").read_text())["epochs"] == 0  # the former rule, kept as an option


@pytest.mark.parametrize("args, message", [
    (("up",), "direction 'up'"), (("higher", "percent"), "scale 'percent'"),
    (("higher", "fraction", ("teacher",)), r"needs \['teacher'\]"),
])
def test_metric_refuses_a_bad_declaration(args, message):
    from unlearnbench.metrics import metric

    with pytest.raises(ValueError, match=message):
        metric(*args)


def test_metric_refuses_a_name_registered_twice():
    from unlearnbench.metrics import metric

    original = METRICS["forget_acc"]
    with pytest.raises(ValueError, match="metric 'forget_acc' is registered twice"):
        metric("higher", name="forget_acc")(lambda ev: 0.0)
    assert METRICS["forget_acc"] is original
