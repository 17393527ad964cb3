import copy
from dataclasses import replace

import pytest
import torch

import helpers
from unlearnbench import UserError
from unlearnbench.localize import localize
from unlearnbench.methods import Subset, run_method
from unlearnbench.methods.relabel import random_labels, relabelled_union


@pytest.fixture
def original(trained_task):
    return trained_task("tiny_cnn")


def test_other_labels_are_never_the_own_label_and_cover_every_other_retain_class():
    y = torch.tensor([0, 1, 2] * 400)
    new = random_labels(y, torch.tensor([0, 1, 2, 4]), torch.Generator().manual_seed(0))
    assert not (new == y).any()
    for own in (0, 1, 2):
        assert set(new[y == own].tolist()) == {0, 1, 2, 4} - {own}


def test_other_labels_need_another_class_with_retain_images():
    with pytest.raises(UserError, match="labels: any"):
        random_labels(torch.tensor([3, 3]), torch.tensor([3]), torch.Generator())


def test_relabelled_union_keeps_the_retain_set_and_excludes_the_forgotten_class(original):
    _, task = original
    union = relabelled_union(task, "other")
    n = len(task.retain)
    assert len(union) == n + len(task.forget)
    assert torch.equal(union.x[:n], task.retain.x) and torch.equal(union.y[:n], task.retain.y)
    assert torch.equal(union.x[n:], task.forget.x)
    assert not (union.y[n:] == 3).any()  # class 3 has no retain images left, so it is no candidate
    anything = relabelled_union(task, "any").y[n:]
    assert (anything == 3).any() and anything.max() < 10  # SalUn's / DEL's uniform labels may hit the own class


def test_random_label_forgets_a_full_class(original, digits):
    model, task = original
    after = helpers.accuracies(run_method("random_label", copy.deepcopy(model), task, {"epochs": 2, "lr": 3e-3}), digits)
    assert after["train_forget"] < 0.05 and after["test_forget"] < 0.05 and after["test_retain"] > 0.9


def test_salun_forgets_a_full_class_changing_only_salient_weights(original, digits):
    model, task = original
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask = localize(copy.deepcopy(model), task.forget.x, task.forget.y, "salun", 0.5)
    net = run_method("salun", copy.deepcopy(model), task, {"epochs": 2, "lr": 0.05})  # weight decay 5e-4 by default
    assert helpers.unchanged_outside(before, net, mask)
    after = helpers.accuracies(net, digits)
    assert after["train_forget"] < 0.05 and after["test_forget"] < 0.05 and after["test_retain"] > 0.9


@pytest.mark.parametrize("method, hparams, message", [
    ("salun", {"budget": 0.0}, r"\(0, 1\]"),
    ("salun", {"lr": -1.0}, "must be positive"),
    ("salun", {"labels": "own"}, "valid: other, any"),
    ("random_label", {"lr": 0.0}, "must be positive"),
    ("random_label", {"optimizer": "lbfgs"}, "unknown optimizer"),
])
def test_bad_hyperparameters_are_user_errors(original, method, hparams, message):
    model, task = original
    with pytest.raises(UserError, match=message):
        run_method(method, copy.deepcopy(model), task, {"epochs": 0.1, **hparams})


def test_hidden_forget_labels_are_a_user_error_for_other_labels(original):
    model, task = original
    hidden = replace(task, forget=Subset(task.forget.x, None))
    with pytest.raises(UserError, match="labels: any"):
        run_method("random_label", copy.deepcopy(model), hidden, {"epochs": 0.1})
