"""Test helpers, imported as a module (``import helpers``): the trained digits models that conftest's
``trained_task`` factory serves, fresh copies of them, and accuracies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FORGET_CLASS = 3  # every trained task forgets all of digits' class 3 (a full-class scenario)

# key -> (registered model, its options, the original's recipe); the model's own config travels with the task
TRAINED = {
    "resnet18_w4": ("resnet18", {"width": 4}, {"epochs": 12, "lr": 0.05, "warmup_epochs": 1}),
    "resnet18_w8": ("resnet18", {"width": 8}, {"epochs": 12, "lr": 0.05, "warmup_epochs": 1}),  # the quick preset's
    "tiny_cnn": ("tiny_cnn", {}, {"epochs": 10, "lr": 0.1}),
}


def subset(digits: dict, keep: torch.Tensor):
    """The training images and labels where ``keep`` holds, with their training-set indices."""
    from unlearnbench.methods import Subset

    return Subset(digits["train_x"][keep], digits["train_y"][keep], torch.nonzero(keep).flatten())


def train(key: str, digits: dict) -> tuple[dict, object]:
    """Train model ``key`` of ``TRAINED`` on all of digits (seed 0): ``(state_dict, task)``, the task forgetting
    every training image of ``FORGET_CLASS``, with the initial weights and the model's own ``model_config``."""
    from unlearnbench.checkpoint import build_model, model_config
    from unlearnbench.data import get_spec
    from unlearnbench.methods import UnlearnTask
    from unlearnbench.train import Recipe, fit, set_seed

    name, options, recipe = TRAINED[key]
    config = model_config(name, "digits", options)
    recipe = Recipe(batch_size=64, schedule="cosine", **recipe)
    set_seed(0)
    model = build_model(config)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    forget = digits["train_y"] == FORGET_CLASS
    task = UnlearnTask(
        forget=subset(digits, forget), retain=subset(digits, ~forget), spec=get_spec("digits"), recipe=recipe,
        initial_state=initial, model_config=config, seed=0,
        scenario={"kind": "full_class", "classes": [str(FORGET_CLASS)]},
    )
    fit(model, task.loader(subset(digits, torch.ones_like(forget)), recipe.batch_size), recipe)
    return {k: v.clone() for k, v in model.state_dict().items()}, task


def fresh_copy(state: dict, task) -> tuple[nn.Module, object]:
    """A new model (in eval mode, as the workflow loads it) with the weights ``state``, and a copy of ``task`` a
    test may change (its precision, record, ...) without touching the cached one."""
    from unlearnbench.checkpoint import build_model

    model = build_model(task.model_config)
    model.load_state_dict(state)
    return model.eval(), replace(task, record={}, untimed_seconds=0.0)


def accuracy(model: nn.Module, subset) -> float:
    """Accuracy of ``model`` on a ``Subset``."""
    from unlearnbench.train import predict_logits

    return (predict_logits(model, subset.x).argmax(1) == subset.y).float().mean().item()


def accuracies(model: nn.Module, digits: dict) -> dict[str, float]:
    """Accuracy on ``FORGET_CLASS`` and on the other classes, of the training set (= the forget and retain sets of
    the trained tasks) and of the test set."""
    from unlearnbench.train import predict_logits

    out = {}
    for split in ("train", "test"):
        y = digits[f"{split}_y"]
        right = predict_logits(model, digits[f"{split}_x"]).argmax(1) == y
        out[f"{split}_forget"] = right[y == FORGET_CLASS].float().mean().item()
        out[f"{split}_retain"] = right[y != FORGET_CLASS].float().mean().item()
    return out


def unchanged_outside(before: dict[str, torch.Tensor], model: nn.Module, allowed: dict[str, torch.Tensor]) -> bool:
    """Whether every parameter entry outside ``allowed`` still equals ``before``."""
    return all(torch.equal(p[~allowed[n]], before[n][~allowed[n]]) for n, p in model.named_parameters())


def registry_mismatch(read: dict, registered: dict) -> str | None:
    """What differs between the methods read from the source (``catalog.method_entries()``) and those imported
    (``methods.METHODS``), said as the fix; None where they agree."""
    for name in sorted(set(read) - set(registered)):
        module = read[name].module.rpartition(".")[2]
        return (f"methods/{module}.py registers {name!r} but methods/__init__.py does not import it: add {module} to "
                "its `from . import (...)` list")
    for name in sorted(set(registered) - set(read)):
        return f"{name!r} is registered by {registered[name].module}, which the catalog does not read (methods/*.py)"
    for name in sorted(read):
        if read[name] != registered[name]:
            return f"method {name!r}: the catalog reads {read[name]} but the registry holds {registered[name]}"
    return None
