"""The options NatMU's baselines need: SalUn with AdamW, and a re-initialised head for random label and Bad Teacher."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

import helpers
from unlearnbench import UserError
from unlearnbench.localize import localize
from unlearnbench.methods import get_method, run_method

ONE_STEP = {"epochs": 1, "batch_size": 10_000, "schedule": "constant", "weight_decay": 0.0, "augment": False}  # one full batch


@pytest.fixture
def original(trained_task):
    return trained_task("tiny_cnn")


def test_defaults_keep_the_existing_configs_unchanged():
    defaults = {name: {k: p.default for k, p in inspect.signature(get_method(name)).parameters.items()}
                for name in ("salun", "random_label", "bad_teacher")}
    assert defaults["salun"]["optimizer"] == "sgd"
    assert defaults["random_label"]["reinit_head"] is False and defaults["bad_teacher"]["reinit_head"] is False


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_salun_optimizer(original, optimizer):
    """Adam's first step moves every weight with a gradient by lr * sign(g); SGD's by lr * g, far less here."""
    model, task = original
    lr = 1e-3
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask = localize(copy.deepcopy(model), task.forget.x, task.forget.y, "salun", 0.5)
    net = run_method("salun", copy.deepcopy(model), task, {**ONE_STEP, "lr": lr, "optimizer": optimizer})
    moved = torch.cat([(p.detach() - before[n])[mask[n]].abs() for n, p in net.named_parameters()])
    if optimizer == "adamw":
        assert moved.max() <= lr * 1.0001 and moved.median() > 0.9 * lr
    else:
        assert moved.median() < 0.1 * lr


def test_salun_rejects_an_unknown_optimizer(original):
    model, task = original
    with pytest.raises(UserError, match="unknown optimizer 'adam'; valid: sgd, adamw"):
        run_method("salun", copy.deepcopy(model), task, {"epochs": 0.1, "optimizer": "adam"})


def natmu_head(seed: int, like: nn.Linear, draw_before=lambda: None) -> torch.Tensor:
    """NatMU's ``init_linear`` weight (Xavier-normal, ReLU gain) with the global generator seeded, after the draws
    of ``draw_before``."""
    torch.manual_seed(seed)
    draw_before()
    return nn.init.xavier_normal_(torch.empty_like(like.weight), gain=nn.init.calculate_gain("relu"))


@pytest.mark.parametrize("reinit_head", [True, False])
def test_random_label_reinit_head_draws_a_fresh_seeded_head_weight_and_keeps_the_bias(original, reinit_head):
    model, task = original
    net = run_method("random_label", copy.deepcopy(model), task, {**ONE_STEP, "lr": 1e-12, "reinit_head": reinit_head})
    expected = natmu_head(task.seed, model.head) if reinit_head else model.head.weight
    assert torch.allclose(net.head.weight, expected, atol=1e-9)
    assert torch.allclose(net.head.bias, model.head.bias, atol=1e-9)  # the trained bias is kept
    conv = dict(net.named_parameters())["backbone.conv.weight"]
    assert torch.allclose(conv, dict(model.named_parameters())["backbone.conv.weight"], atol=1e-9)  # only the head is new


def test_random_label_with_a_fresh_head_forgets_a_class(original, digits):
    model, task = original
    net = run_method("random_label", copy.deepcopy(model), task, {"epochs": 3, "lr": 3e-3, "reinit_head": True})
    after = helpers.accuracies(net, digits)
    assert after["train_forget"] < 0.05 and after["test_retain"] > 0.85


def test_bad_teacher_reinit_head_comes_after_the_competent_teacher(original, digits):
    model, task = original
    net = run_method("bad_teacher", copy.deepcopy(model), task, {"epochs": 1, "lr": 1e-12, "batch_size": 10_000, "reinit_head": True})
    spread = nn.init.calculate_gain("relu") * (2 / sum(model.head.weight.shape)) ** 0.5  # NatMU's Xavier-normal head
    assert net.head.weight.std().item() == pytest.approx(spread, rel=0.1)  # nn.Linear's default: 0.036, 3.4x less
    assert torch.allclose(net.head.bias, model.head.bias, atol=1e-9)  # the trained bias is kept
    # the retain targets come from the original's head: with a fresh head the student relearns them and forgets class 3
    net = run_method("bad_teacher", copy.deepcopy(model), task, {"epochs": 5, "lr": 1e-3, "batch_size": 32, "retain_fraction": 1.0, "reinit_head": True})
    after = helpers.accuracies(net, digits)
    assert after["train_forget"] < 0.25 and after["test_retain"] > 0.85
