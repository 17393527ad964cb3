"""Shared fixtures: the embedded digits data set and the trained-model factory ``trained_task`` (models and helpers
in helpers.py, imported as a module)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models: threads cost more than they give (set before torch loads)

import helpers  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from unlearnbench.data import get_spec, prepare_dataset


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
def trained_task(digits):
    """``trained_task(key)`` -> ``(model, task)``: a model of ``helpers.TRAINED`` ("resnet18_w4", "resnet18_w8",
    "tiny_cnn") trained on digits once per session, and the task of forgetting class 3. Each call gives a fresh
    model and task copy (methods change the model in place)."""
    cache = {}

    def get(key: str):
        if key not in cache:
            cache[key] = helpers.train(key, digits)
        return helpers.fresh_copy(*cache[key])

    return get
