import math

import pytest
import torch

from unlearnbench import UserError
from unlearnbench.data import training_loader
from unlearnbench.models import create_model
from unlearnbench.train import Recipe, fit, lr_factor, predict_logits


def _accuracy(model, data):
    return (predict_logits(model, data["train_x"]).argmax(1) == data["train_y"]).float().mean().item()


def test_loss_falls_and_accuracy_rises_on_digits(digits, digits_spec):
    model = create_model("resnet18", "digits", width=4)
    before = _accuracy(model, digits)
    loader = training_loader(digits["train_x"], digits["train_y"], digits_spec, 64, seed=0, device="cpu")
    history = fit(model, loader, Recipe(epochs=8, lr=0.05, schedule="cosine"))
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert _accuracy(model, digits) > max(0.8, before + 0.5)
    assert not model.training  # fit leaves the model in eval mode


def test_training_is_deterministic_given_the_seed(digits, digits_spec):
    def run():
        torch.manual_seed(1)
        model = create_model("resnet18", "digits", width=4)
        fit(model, training_loader(digits["train_x"], digits["train_y"], digits_spec, 128, seed=1, device="cpu"), Recipe(epochs=1, lr=0.05))
        return model.state_dict()

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_params_and_after_step_restrict_what_changes(digits, digits_spec):
    model = create_model("resnet18", "digits", width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = training_loader(digits["train_x"][:128], digits["train_y"][:128], digits_spec, 64, seed=0, device="cpu")
    calls = []
    fit(model, loader, Recipe(epochs=1, lr=0.1), params=model.head.parameters(), after_step=lambda: calls.append(1))
    after = model.state_dict()
    assert not torch.equal(before["backbone.fc.weight"], after["backbone.fc.weight"])
    assert torch.equal(before["backbone.conv1.weight"], after["backbone.conv1.weight"])
    assert len(calls) == 2


def test_fractional_epochs_stop_mid_epoch(digits, digits_spec):
    model = create_model("resnet18", "digits", width=4)
    loader = training_loader(digits["train_x"][:256], digits["train_y"][:256], digits_spec, 32, seed=0, device="cpu")
    steps = []
    fit(model, loader, Recipe(epochs=0.5, lr=0.01), after_step=lambda: steps.append(1))
    assert len(steps) == 4


def test_schedules():
    r = Recipe(epochs=10, lr=1.0, schedule="multistep", milestones=[5, 8], gamma=0.1, warmup_epochs=1)
    assert lr_factor(0, 10, r) == pytest.approx(0.1) and lr_factor(9, 10, r) == pytest.approx(1.0)
    assert lr_factor(49, 10, r) == 1.0 and lr_factor(50, 10, r) == pytest.approx(0.1) and lr_factor(85, 10, r) == pytest.approx(0.01)
    c = Recipe(epochs=10, lr=1.0, schedule="cosine")
    assert lr_factor(0, 10, c) == 1.0 and lr_factor(50, 10, c) == pytest.approx(0.5) and lr_factor(100, 10, c) == pytest.approx(0.0)
    assert lr_factor(37, 10, Recipe(epochs=10, schedule="constant")) == 1.0


def test_nan_loss_is_a_clear_error(digits, digits_spec):
    model = create_model("resnet18", "digits", width=4)
    loader = training_loader(digits["train_x"][:64], digits["train_y"][:64], digits_spec, 64, seed=0, device="cpu")
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit(model, loader, Recipe(epochs=1), loss_fn=lambda m, x, y: m(x).sum() * math.inf)


def test_recipe_validation():
    with pytest.raises(UserError, match=r"unknown training option\(s\) \['lrate'\]"):
        Recipe.from_dict({"epochs": 1, "lrate": 0.1})
    with pytest.raises(UserError, match="valid: sgd, adamw"):
        Recipe.from_dict({"epochs": 1, "optimizer": "adam"})
    with pytest.raises(UserError, match="must be positive"):
        Recipe.from_dict({"epochs": 1, "lr": 0})
