import copy
from dataclasses import replace

import pytest
import torch

import helpers
from unlearnbench import UserError
from unlearnbench.checkpoint import build_model
from unlearnbench.localize import STRATEGIES, localize, with_head
from unlearnbench.methods import del_unlearning as del_module
from unlearnbench.methods import run_method
from unlearnbench.methods import task as task_module


@pytest.fixture
def original(trained_task):
    return trained_task("tiny_cnn")


def _del_mask(model, task, **kw):
    return localize(copy.deepcopy(model), task.forget.x, task.forget.y, kw.pop("localization", "del"), kw.pop("budget", 0.3), **kw)


def test_reset_puts_the_initial_weights_into_the_mask_before_fine_tuning(original, monkeypatch):
    model, task = original
    mask = _del_mask(model, task)
    trained = {n: p.detach().clone() for n, p in model.named_parameters()}
    seen = {}

    def fake_fit(net, loader, recipe, *, params, after_step, **kw):
        seen.update(state={n: p.detach().clone() for n, p in net.named_parameters()}, params={id(p) for p in params}, recipe=recipe)

    monkeypatch.setattr(task_module, "fit", fake_fit)  # what task.fit calls
    net = copy.deepcopy(model)
    run_method("del", net, task, {"epochs": 1, "lr": 0.01})
    for n, p in seen["state"].items():
        assert torch.equal(p[mask[n]], task.initial_state[n][mask[n]]), n
        assert torch.equal(p[~mask[n]], trained[n][~mask[n]]), n
    assert sum(int(m.sum()) for m in mask.values()) == int(0.3 * sum(m.numel() for m in mask.values()))
    head = {id(p) for p in net.head.parameters()}
    assert head <= seen["params"]  # the whole head is trained even where it was not selected
    assert seen["recipe"].optimizer == "sgd" and seen["recipe"].weight_decay == 0 and seen["recipe"].schedule == "cosine"


def test_fresh_reset_draws_new_weights_of_the_model_itself_and_still_forgets(original, digits):
    model, task = original
    fresh = del_module.reset_values(task, "fresh")
    assert fresh.keys() == model.state_dict().keys()  # drawn from the task's model_config: the model's own
    assert all(v.shape == model.state_dict()[k].shape for k, v in fresh.items())
    key = "backbone.conv.weight"
    assert torch.equal(fresh[key], del_module.reset_values(task, "fresh")[key])  # seeded
    torch.manual_seed(task.seed)  # the draw that made the original model's initial weights
    assert not torch.equal(fresh[key], build_model(task.model_config).state_dict()[key])
    after = helpers.accuracies(run_method("del", copy.deepcopy(model), task, {"reset_to": "fresh", "epochs": 2, "lr": 0.05}),
                               digits)
    assert after["train_forget"] < 0.05 and after["test_forget"] < 0.05 and after["test_retain"] > 0.9
    with pytest.raises(UserError, match="reset_to: fresh"):
        del_module.reset_values(replace(task, initial_state=None), "initial")


def test_only_the_selected_entries_and_the_head_change_even_with_weight_decay(original):
    model, task = original
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    allowed = with_head(model, _del_mask(model, task))
    net = run_method("del", copy.deepcopy(model), task, {"epochs": 1, "lr": 0.05, "weight_decay": 5e-3})
    assert helpers.unchanged_outside(before, net, allowed)
    assert not torch.equal(net.head.weight, model.head.weight)
    assert not torch.equal(net.backbone.conv.weight, model.backbone.conv.weight)


def test_del_forgets_a_full_class_and_keeps_the_rest(original, digits):
    model, task = original
    before = helpers.accuracies(model, digits)
    after = helpers.accuracies(run_method("del", copy.deepcopy(model), task, {"epochs": 2, "lr": 0.05}), digits)
    assert before["train_forget"] > 0.9 and after["train_forget"] < 0.05 and after["test_forget"] < 0.05
    assert after["test_retain"] > 0.9


@pytest.mark.parametrize("localization", [s for s in STRATEGIES if s != "del"])
@pytest.mark.parametrize("unlearn", ["reset_finetune", "random_label"])
def test_every_localization_combines_with_both_unlearning_steps(original, localization, unlearn):
    model, task = original
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask = _del_mask(model, task, localization=localization, seed=task.seed)
    allowed = with_head(model, mask) if unlearn == "reset_finetune" else mask
    net = run_method("del", copy.deepcopy(model), task, {"localization": localization, "unlearn": unlearn, "epochs": 0.5, "lr": 0.05})
    assert helpers.unchanged_outside(before, net, allowed)
    assert any(not torch.equal(p[allowed[n]], before[n][allowed[n]]) for n, p in net.named_parameters())


@pytest.mark.parametrize("hparams, message", [
    ({"budget": 0.0}, r"\(0, 1\]"),
    ({"budget": 1.2}, r"\(0, 1\]"),
    ({"lr": 0.0}, "must be positive"),
    ({"localization": "middle"}, "valid: del, salun"),
    ({"unlearn": "prune"}, "valid: reset_finetune, random_label"),
    ({"reset_to": "zero"}, "valid: initial, fresh"),
    ({"top_fraction": 0.0}, "top_fraction"),
    ({"labels": "wrong"}, "valid: other, any"),
])
def test_bad_hyperparameters_are_user_errors(original, hparams, message):
    model, task = original
    with pytest.raises(UserError, match=message):
        run_method("del", copy.deepcopy(model), task, {"epochs": 0.1, **hparams})
