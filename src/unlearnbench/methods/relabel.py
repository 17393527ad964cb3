"""Kit shared by random-label unlearning (Amnesiac), SalUn and DEL's relabeling branch: the retain set plus the
randomly relabelled forget set, and training on it, optionally restricted to a mask; and NatMU's head
re-initialisation, which its random-label and Bad Teacher baselines reuse. Deviations: docs/deviations.md."""

from __future__ import annotations

import torch
from torch import nn

from .. import UserError
from ..localize import Mask, restrict_training
from ..recipe import Recipe
from .task import Subset, UnlearnTask


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


def train_on_random_labels(model: nn.Module, task: UnlearnTask, recipe: Recipe, *, labels: str, augment: bool,
                           mask: Mask | None = None, desc: str = "random label") -> nn.Module:
    """Fine-tune on the shuffled union of the retain set and the randomly relabelled forget set; with ``mask``
    only its entries change (SalUn, Eq. 7: ``theta_u = m * (theta_o + delta) + (1 - m) * theta_o``)."""
    params, after_step = restrict_training(model, mask) if mask is not None else (None, None)
    loader = task.loader(relabelled_union(task, labels), recipe.batch_size, augment=augment)
    task.fit(model, loader, recipe, params=params, after_step=after_step, desc=desc)
    return model


def reinit_head(model: nn.Module) -> None:
    """NatMU's ``-i`` (its ``init_linear``): a fresh Xavier-normal head weight with ReLU gain, the trained bias kept."""
    nn.init.xavier_normal_(model.head.weight, gain=nn.init.calculate_gain("relu"))
