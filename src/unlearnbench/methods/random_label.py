"""Random-label unlearning (Amnesiac, Graves et al., AAAI 2021): give every forget sample a random label and
fine-tune on the relabelled forget set together with the retain set. SalUn and DEL's "localization + RL" run the
same step restricted to a mask (``train_on_random_labels``)."""

from __future__ import annotations

import torch
from torch import nn

from .. import UserError
from ..localize import Mask, restrict_training
from ..train import Recipe, fit, set_seed
from . import Subset, UnlearnTask, register_method
from .baselines import _recipe, reinit_head as reinit_natmu_head

LABELS = ("other", "any")


def random_labels(y: torch.Tensor, candidates: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each label in ``y``, one of ``candidates`` other than itself, uniformly at random."""
    allowed = (candidates[None, :] != y[:, None]).float()
    if not allowed.any(1).all():
        raise UserError(
            f"random labels need a class other than the forget sample's own among the classes with retain images "
            f"({candidates.tolist()}); use labels: any, or a scenario that keeps another class"
        )
    return candidates[torch.multinomial(allowed, 1, generator=generator).squeeze(1)]


def relabelled_union(task: UnlearnTask, labels: str) -> Subset:
    """The retain set plus the forget images with random labels, drawn once with the task's seed.

    ``other``: uniform over the classes that still have retain images, never the sample's own (Amnesiac; NatMU's
    and SSD's baselines); ``any``: uniform over all classes, own label included (SalUn's and DEL's code).
    """
    generator = torch.Generator().manual_seed(task.seed)
    n = len(task.forget)
    if labels == "any":
        new = torch.randint(task.spec.num_classes, (n,), generator=generator)
    else:
        if task.forget.y is None or task.retain.y is None:
            raise UserError("labels: other needs the forget and retain labels; use labels: any")
        new = random_labels(task.forget.y.cpu(), task.retain.y.unique().cpu(), generator)
    return Subset(torch.cat([task.retain.x, task.forget.x]), torch.cat([task.retain.y, new.to(task.retain.y)]))


def check_labels(labels: str) -> None:
    if labels not in LABELS:
        raise UserError(f"unknown random-label choice {labels!r}; valid: {', '.join(LABELS)}")


def train_on_random_labels(model: nn.Module, task: UnlearnTask, recipe: Recipe, *, labels: str, augment: bool,
                           mask: Mask | None = None, desc: str = "random label") -> nn.Module:
    """Fine-tune on the shuffled union of the retain set and the randomly relabelled forget set; with ``mask``
    only its entries change (SalUn, Eq. 7: ``theta_u = m * (theta_o + delta) + (1 - m) * theta_o``)."""
    check_labels(labels)
    recipe.check()
    set_seed(task.seed)
    params, after_step = restrict_training(model, mask) if mask is not None else (None, None)
    loader = task.loader(relabelled_union(task, labels), recipe.batch_size, augment=augment)
    fit(model, loader, recipe, params=params, after_step=after_step, compile=task.compile, desc=desc)
    return model


@register_method
def random_label(
    model: nn.Module, task: UnlearnTask, *, labels: str = "other", epochs: float = 5, lr: float = 1.45e-4,
    optimizer: str = "adamw", weight_decay: float = 8e-5, schedule: str = "cosine", augment: bool = False,
    batch_size: int | None = None, reinit_head: bool = False,
) -> nn.Module:
    """Amnesiac / random-label fine-tuning of all parameters. The defaults are NatMU's full-class baseline (AdamW,
    5 epochs, cosine, no augmentation); SSD's is ``epochs: 3, lr: 1e-4, weight_decay: 0, schedule: constant``.
    ``reinit_head`` draws a fresh classifier head weight first (NatMU's ``-i``, its sub-class script: Xavier-normal
    with ReLU gain, the bias kept)."""
    recipe = _recipe(task, epochs, lr, batch_size, schedule, optimizer=optimizer, weight_decay=weight_decay)
    if reinit_head:
        set_seed(task.seed)
        reinit_natmu_head(model)
    return train_on_random_labels(model, task, recipe, labels=labels, augment=augment, desc="random label")
