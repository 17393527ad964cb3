"""The contract every registered method keeps (methods/registry.py, docs/adding_a_method.md), checked on the tiny
CNN for each entry of the registry: finite weights out, the same weights for the same seed, the task left as it
was, its declared scenario kinds honoured, and defaults that pass their own constraints."""

from __future__ import annotations

from dataclasses import asdict, replace

import pytest
import torch

from unlearnbench import UserError
from unlearnbench.catalog import method_entries
from unlearnbench.methods import METHODS, hyperparameters, run_method
from unlearnbench.methods.mnemonic_code import make_codes
from unlearnbench.splits import KINDS

# Short settings where a method's defaults train for long: the contract is about what a method does to the model
# and the task, not how well it forgets (each method's own tests check that). A name not listed runs its defaults.
SHORT = {
    "finetune": {"epochs": 1}, "gradient_ascent": {"epochs": 1}, "neggrad_plus": {"epochs": 1},
    "l1_sparse": {"epochs": 1}, "salun": {"epochs": 1}, "random_label": {"epochs": 1}, "natmu": {"epochs": 1},
    "bad_teacher": {"epochs": 1}, "del": {"epochs": 1}, "unsir": {"noise_steps": 1, "noise_copies": 2},
}


def task_for(trained_task, name):
    model, task = trained_task("tiny_cnn")
    if "mnemonic" in {need.key for need in METHODS[name].needs}:
        task = replace(task, mnemonic={"codes": make_codes(10, (1, 8, 8), seed=0), "t_mix": 0.1,
                                       "distribution": "normal", "seed": 0})
    return model, task


def snapshot(task) -> dict:
    """What a method must not change: the forget and retain data and the original's recipe."""
    parts = {f"{s}.{k}": getattr(getattr(task, s), k) for s in ("forget", "retain") for k in ("x", "y", "index")}
    return {k: v.clone() for k, v in parts.items() if v is not None} | {"recipe": asdict(task.recipe)}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_finite_deterministic_and_the_task_untouched(trained_task, name):
    hparams = {k: v for k, v in SHORT.get(name, {}).items() if k in METHODS[name].params}
    runs = []
    for _ in range(2):
        model, task = task_for(trained_task, name)
        before = snapshot(task)
        out = run_method(name, model, task, hparams)
        state = out.state_dict()
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), name
        after = snapshot(task)
        assert after.keys() == before.keys() and after["recipe"] == before["recipe"], name
        assert all(torch.equal(after[k], v) for k, v in before.items() if k != "recipe"), name
        runs.append(state)
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0]), f"{name}: two runs with one seed differ"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_undeclared_scenario_kinds_are_refused_in_one_line(trained_task, name):
    undeclared = [kind for kind in KINDS if kind not in METHODS[name].scenarios]
    for kind in undeclared:
        model, task = task_for(trained_task, name)
        with pytest.raises(UserError, match=f"applies to .* not {kind}") as err:
            run_method(name, model, replace(task, scenario={**task.scenario, "kind": kind}))
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_defaults_pass_their_own_constraints(name):
    METHODS[name].check(hyperparameters(name))  # as registered (register_method refuses otherwise)
    method_entries()[name].check(hyperparameters(name))  # as the torch-free catalog reads them for planning
