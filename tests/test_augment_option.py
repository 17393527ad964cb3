"""Every method that fine-tunes through a loader has an ``augment`` hyperparameter: ``false`` trains on the stored
images exactly; its default is what the method's own paper's code does. Also NatMU's head re-initialisation."""

from __future__ import annotations

import copy
import importlib
import math

import pytest
import torch
from torch import nn

from unlearnbench.data import InMemoryLoader, to_float
from unlearnbench.methods import hyperparameters, run_method
from unlearnbench.methods.relabel import reinit_head

# method -> (module whose ``fit`` trains it, default ``augment``, short settings)
METHODS = {
    "finetune": ("baselines", True, {}),  # SalUn's code augments; SSD's, DEL's, Fisher masking's do not (configs)
    "gradient_ascent": ("baselines", True, {}),
    "neggrad_plus": ("baselines", True, {}),
    "l1_sparse": ("l1_sparse", True, {}),  # Unlearn-Sparse's code augments; DEL's does not (config)
    "salun": ("random_label", True, {}),  # SalUn's code augments; NatMU's and DEL's baselines do not (configs)
    "random_label": ("random_label", False, {}),  # NatMU's and SSD's code
    "del": ("del_unlearning", False, {}),
    "natmu": ("natmu", True, {}),  # the retain images only; hybrids never
    "unsir": ("unsir", False, {"noise_steps": 1, "noise_copies": 2}),  # SSD's code
}


@pytest.fixture
def original(trained_task):
    return trained_task("tiny_cnn")


@pytest.fixture
def loaders(monkeypatch):
    """Every ``InMemoryLoader`` built while a test runs (training itself is skipped: ``fit`` does nothing)."""
    made = []
    init = InMemoryLoader.__init__

    def record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(InMemoryLoader, "__init__", record)
    monkeypatch.setattr(importlib.import_module("unlearnbench.methods.task"), "fit", lambda *a, **k: None)  # task.fit
    return made


def altered_images(loader: InMemoryLoader) -> int:
    """How many images of one pass differ from every stored image of the loader (0: no augmentation)."""
    stored = {row.numpy().tobytes() for row in to_float(loader.x.cpu()).flatten(1)}
    return sum(row.numpy().tobytes() not in stored for x, _ in loader for row in x.cpu().flatten(1))


def test_the_defaults_are_each_papers_code():
    assert {name: hyperparameters(name)["augment"] for name in METHODS} == {n: d for n, (_, d, _) in METHODS.items()}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("augment", [False, True])
def test_augment_false_trains_on_the_stored_images(original, loaders, method, augment):
    model, task = original
    run_method(method, copy.deepcopy(model), task, {**METHODS[method][2], "augment": augment})
    training = [loader for loader in loaders if loader.shuffle]
    assert training
    if method == "neggrad_plus":
        assert len(training) == 2  # the retain batches and the forget batches cycled alongside: both follow it
    altered = [altered_images(loader) for loader in training]
    if augment:
        assert min(altered) > 0  # the digits' 1-pixel crop moves most images
    else:
        assert max(altered) == 0


def test_natmu_never_augments_its_hybrids(original, loaders):
    model, task = original
    run_method("natmu", copy.deepcopy(model), task, {"augment": True})
    (loader,) = [made for made in loaders if made.shuffle]
    n_hybrids = len(loader.x) - len(task.retain)
    hybrids = {row.numpy().tobytes() for row in to_float(loader.x[len(task.retain):]).flatten(1)}
    unchanged = sum(row.numpy().tobytes() in hybrids for x, _ in loader for row in x.flatten(1))
    assert n_hybrids - loader.batch_size < unchanged <= n_hybrids  # every hybrid drawn comes out as stored
    assert altered_images(loader) > 0  # while the retain images are cropped


def test_reinit_head_is_xavier_normal_with_relu_gain_and_keeps_the_bias():
    """NatMU's ``init_linear``: ``xavier_normal_(weight, gain=calculate_gain('relu'))``, bias untouched."""
    model = nn.Module()
    model.head = nn.Linear(512, 100)
    bias = model.head.bias.detach().clone()
    torch.manual_seed(0)
    reinit_head(model)
    expected = math.sqrt(2) * math.sqrt(2 / (512 + 100))  # 0.081, 3.2x nn.Linear's default spread (0.026)
    assert model.head.weight.std().item() == pytest.approx(expected, rel=0.02)
    assert abs(model.head.weight.mean().item()) < 0.1 * expected
    assert torch.equal(model.head.bias, bias)


@pytest.mark.parametrize("hparams, batch", [({}, 256), ({"batch_size": 64}, 64)])
def test_salun_batch_is_the_official_256_unless_given(original, loaders, hparams, batch):
    model, task = original
    assert task.recipe.batch_size == 64  # the experiment's recipe no longer sets it
    run_method("salun", copy.deepcopy(model), task, hparams)
    assert [made.batch_size for made in loaders if made.shuffle] == [batch]
