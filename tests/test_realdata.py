"""Reduced-scale run on the real CIFAR-10 copy in ../shared/data (skipped, with the reason, where it is absent)."""

from __future__ import annotations

import pytest
import torch

from helpers import SHARED_DATA
from unlearnbench.data import get_spec, prepare_dataset, training_loader
from unlearnbench.methods import Subset, UnlearnTask, run_method
from unlearnbench.checkpoint import build_model, model_config
from unlearnbench.splits import make_split
from unlearnbench.train import Recipe, fit, predict_logits

ARCHIVE = SHARED_DATA / "cifar10-jpeg.tar.gz"
pytestmark = pytest.mark.skipif(not ARCHIVE.exists(), reason=f"real CIFAR-10 copy not found at {ARCHIVE}")


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory):
    return prepare_dataset("cifar10", "imagefolder", path=ARCHIVE, root=tmp_path_factory.mktemp("data"), train_size=2000, test_size=1000)


def test_real_cifar10_subset_decodes_balanced(cifar10):
    assert cifar10["train_x"].shape == (2000, 3, 32, 32) and cifar10["train_x"].dtype == torch.uint8
    assert torch.bincount(cifar10["train_y"]).tolist() == [200] * 10
    assert torch.bincount(cifar10["test_y"]).tolist() == [100] * 10
    mean = cifar10["train_x"].float().mean((0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor(get_spec("cifar10").mean), atol=0.03)  # CIFAR-10's channel means


@pytest.mark.slow
def test_reduced_scale_training_and_class_forgetting(cifar10):
    spec = get_spec("cifar10")
    config = model_config("resnet18", "cifar10", {"width": 8})
    recipe = Recipe(epochs=6, batch_size=64, lr=0.05, schedule="cosine", warmup_epochs=1)
    torch.manual_seed(0)
    model = build_model(config)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, training_loader(cifar10["train_x"], cifar10["train_y"], spec, 64, seed=0, device="cpu"), recipe)
    test_acc = (predict_logits(model, cifar10["test_x"]).argmax(1) == cifar10["test_y"]).float().mean().item()
    assert test_acc > 0.3  # well above chance (0.1) after a few epochs on 2,000 images

    split = make_split({"kind": "full_class", "classes": ["airplane"]}, cifar10, seed=0)
    x, y = cifar10["train_x"], cifar10["train_y"]
    task = UnlearnTask(Subset(x[split["forget"]], y[split["forget"]]), Subset(x[split["retain"]], y[split["retain"]]),
                       spec, recipe, initial, config)
    forget_before = (predict_logits(model, task.forget.x).argmax(1) == task.forget.y).float().mean().item()
    run_method("neggrad_plus", model, task, {"epochs": 2, "lr": 0.02, "alpha": 0.9})
    forget_after = (predict_logits(model, task.forget.x).argmax(1) == task.forget.y).float().mean().item()
    assert forget_after < forget_before / 2
