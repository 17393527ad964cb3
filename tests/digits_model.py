"""A narrow ResNet-18 trained once per test session on scikit-learn's digits, with a full-class forget task, for
the end-to-end forgetting tests of the SSD, LFSSD and Fisher-forgetting methods."""

from __future__ import annotations

import functools

import pytest
import torch

from unlearnbench.checkpoint import build_model, model_config
from unlearnbench.data import get_spec, prepare_dataset, training_loader
from unlearnbench.methods import Subset, UnlearnTask
from unlearnbench.splits import make_split
from unlearnbench.train import Recipe, fit, predict_logits, set_seed

FORGET_CLASS = 3


@functools.lru_cache(maxsize=1)
def _trained() -> tuple[dict, UnlearnTask, dict]:
    data = prepare_dataset("digits", "sklearn")
    config = model_config("resnet18", "digits", {"width": 8})
    recipe = Recipe(epochs=12, batch_size=64, lr=0.05, schedule="cosine", warmup_epochs=1)  # the quick preset's
    set_seed(0)
    model = build_model(config)
    fit(model, training_loader(data["train_x"], data["train_y"], get_spec("digits"), 64, seed=0, device="cpu"), recipe)
    scenario = {"kind": "full_class", "classes": [str(FORGET_CLASS)]}
    split = make_split(scenario, data, seed=0)
    task = UnlearnTask(
        forget=Subset(data["train_x"][split["forget"]], data["train_y"][split["forget"]], torch.as_tensor(split["forget"])),
        retain=Subset(data["train_x"][split["retain"]], data["train_y"][split["retain"]], torch.as_tensor(split["retain"])),
        spec=get_spec("digits"), recipe=recipe, initial_state=None, model_config=config, scenario=scenario,
    )
    return model.state_dict(), task, data


@pytest.fixture(scope="module")
def trained_digits_task():
    """``(model, task)``: the original model and its task (tests run with one CPU thread: see conftest.py)."""
    state, task, _ = _trained()
    model = build_model(task.model_config)
    model.load_state_dict(state)
    return model.eval(), task


def accuracies(model: torch.nn.Module) -> dict[str, float]:
    """Training accuracy on the forget and retain sets and test accuracy on the forgotten and other classes."""
    _, task, data = _trained()

    def acc(x, y):
        return (predict_logits(model, x).argmax(1) == y).float().mean().item()

    test_forget = data["test_y"] == FORGET_CLASS
    return {
        "forget": acc(task.forget.x, task.forget.y),
        "retain": acc(task.retain.x, task.retain.y),
        "test_forget": acc(data["test_x"][test_forget], data["test_y"][test_forget]),
        "test_retain": acc(data["test_x"][~test_forget], data["test_y"][~test_forget]),
    }
