"""A tiny CNN trained on digits and a full-class forgetting task on it, shared by the DEL / SalUn / random-label
tests (a few seconds on one core)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from unlearnbench.checkpoint import model_config
from unlearnbench.data import get_spec, training_loader
from unlearnbench.methods import Subset, UnlearnTask
from unlearnbench.models import ImageClassifier
from unlearnbench.train import Recipe, fit, predict_logits

FORGET_CLASS = 3


def tiny_cnn() -> ImageClassifier:
    """conv(1->16) - BN - ReLU - 4x4 pool - fc(256->10): 4-D, 2-D and 1-D parameters, a head named ``fc``."""
    spec = get_spec("digits")
    net = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(1, 16, 3, padding=1), bn=nn.BatchNorm2d(16), relu=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(4),
        flat=nn.Flatten(), fc=nn.Linear(256, spec.num_classes),
    ))
    return ImageClassifier(net, "fc", spec)


def trained_task(digits: dict) -> tuple[ImageClassifier, UnlearnTask]:
    """The trained tiny CNN and the task of forgetting every training image of class 3."""
    torch.manual_seed(0)
    model = tiny_cnn()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = Recipe(epochs=10, batch_size=64, lr=0.1, schedule="cosine")
    fit(model, training_loader(digits["train_x"], digits["train_y"], get_spec("digits"), 64, seed=0, device="cpu"), recipe)
    forget = digits["train_y"] == FORGET_CLASS
    task = UnlearnTask(
        forget=Subset(digits["train_x"][forget], digits["train_y"][forget], torch.nonzero(forget).flatten()),
        retain=Subset(digits["train_x"][~forget], digits["train_y"][~forget], torch.nonzero(~forget).flatten()),
        spec=get_spec("digits"), recipe=recipe, initial_state=initial,
        model_config=model_config("resnet18", "digits", {"width": 2}),  # only used to draw fresh weights
        scenario={"kind": "full_class", "classes": [str(FORGET_CLASS)]},
    )
    return model, task


def accuracies(model: nn.Module, digits: dict) -> dict[str, float]:
    """Accuracy on the forget class and on the other classes of the training and test sets."""
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
