"""Shared fixtures: the embedded digits data set, a tiny trained model, and paths to the repository and ../shared."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models: threads cost more than they give (set before torch loads)

import pytest  # noqa: E402
import torch

from unlearnbench.data import get_spec, prepare_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def digits() -> dict:
    return prepare_dataset("digits", "sklearn")


@pytest.fixture(scope="session")
def digits_spec():
    return get_spec("digits")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits_class3_task(digits, digits_spec):
    """A ResNet-18 of width 4 trained on digits, and the task of forgetting all of class 3: ``(state_dict, task)``.

    Methods change the model in place: build a fresh one per test with ``build_model`` and ``load_state_dict``.
    """
    from unlearnbench.checkpoint import build_model, model_config
    from unlearnbench.methods import Subset, UnlearnTask
    from unlearnbench.train import Recipe, fit, set_seed

    set_seed(0)
    config = model_config("resnet18", "digits", {"width": 4})
    model = build_model(config)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = Recipe(epochs=12, batch_size=64, lr=0.05, schedule="cosine", warmup_epochs=1)
    forget = digits["train_y"] == 3
    subset = lambda keep: Subset(digits["train_x"][keep], digits["train_y"][keep], torch.nonzero(keep).flatten())  # noqa: E731
    task = UnlearnTask(
        forget=subset(forget), retain=subset(~forget), spec=digits_spec, recipe=recipe, initial_state=initial,
        model_config=config, seed=0, scenario={"kind": "full_class", "classes": ["3"]},
    )
    fit(model, task.loader(Subset(digits["train_x"], digits["train_y"]), recipe.batch_size), recipe)
    return model.state_dict(), task


def trained(state_task):
    """A fresh model carrying the weights of a ``(state_dict, task)`` fixture such as ``digits_class3_task``."""
    from unlearnbench.checkpoint import build_model

    state, task = state_task
    model = build_model(task.model_config)
    model.load_state_dict(state)
    return model, task


def accuracy(model, subset) -> float:
    """Accuracy of ``model`` on a ``Subset``."""
    from unlearnbench.train import predict_logits

    return (predict_logits(model, subset.x).argmax(1) == subset.y).float().mean().item()
