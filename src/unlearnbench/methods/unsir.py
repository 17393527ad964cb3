"""UNSIR, "Fast Yet Effective Machine Unlearning" (Tarun et al., IEEE TNNLS 2023).

1. Error-maximising noise: for each forget class ``c`` a batch of noise images ``n`` maximises the original model's
   loss on ``c`` under an l2 penalty, ``min_n -CE(f(n), c) + lambda * mean ||n||^2`` (Adam on ``n``).
2. Impair: one epoch on the noise (repeated, labelled ``c``) together with a retain subset, at a high loss.
3. Repair: one epoch on the retain subset alone.

The noise lives in normalised units (as in the official code, whose data are normalised): the model sees
``n * std + mean`` in pixels, so the l2 penalty and its weight mean what they mean there. arXiv 2111.08947; the
defaults follow the SSD repository's UNSIR. Deviations: docs/deviations.md, "Bad Teacher, UNSIR, l1-sparse".
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .. import UserError
from ..data import to_float
from ..splits import rank_within_class
from ..train import autocast
from ..values import Positive, PositiveInt
from .registry import Paper, register_method
from .task import Subset, UnlearnTask

UNSIR = Paper("Tarun et al., IEEE TNNLS 2023", "Fast Yet Effective Machine Unlearning", arxiv="2111.08947",
              implements="error-maximising noise, impair and repair steps")


def first_per_class(labels: torch.Tensor, count: int) -> torch.Tensor:
    """Positions of the first ``count`` samples of each class, in order (the official ``classwise[c][:500]``)."""
    return torch.nonzero(rank_within_class(labels) < count).flatten()


def error_maximising_noise(
    model: nn.Module, classes: torch.Tensor, task: UnlearnTask, *, batch: int, steps: int, lr: float, l2: float
) -> torch.Tensor:
    """``batch`` noise images per class in ``classes``, as pixels ``[len(classes) * batch, C, H, W]``."""
    spec, device = task.spec, task.device
    mean = torch.tensor(spec.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, -1, 1, 1)
    labels = classes.to(device).repeat_interleave(batch)
    noise = torch.randn(len(labels), spec.channels, spec.size, spec.size, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([noise], lr=lr)
    model.eval()
    for _ in range(steps):
        with autocast(device):
            loss = -F.cross_entropy(model(noise * std + mean), labels) + l2 * noise.square().sum((1, 2, 3)).mean()
        (grad,) = torch.autograd.grad(loss, noise)  # the model's gradients are not needed
        noise.grad = grad
        optimizer.step()
    return (noise * std + mean).detach()


@register_method(scenarios=("full_class", "sub_class"), paper=UNSIR)  # the noise is learnt for whole classes
def unsir(
    model: nn.Module,
    task: UnlearnTask,
    *,
    noise_steps: PositiveInt = 25,
    noise_lr: Positive = 0.1,
    noise_l2: float = 0.1,
    noise_batch: PositiveInt = 32,
    noise_copies: PositiveInt = 80,
    retain_per_class: PositiveInt = 500,
    lr: Positive = 1e-4,
    impair_epochs: Positive = 1,
    repair_epochs: Positive = 1,
    repair_batch_size: PositiveInt = 128,
    retain_groups: Literal["label", "fine"] = "label",  # first retain_per_class images of each "label" or "fine" label
    augment: bool = False,
) -> nn.Module:
    """Defaults: the SSD repository's full-class UNSIR (25 noise steps at Adam lr 0.1, l2 weight 0.1, 80 copies of
    a noise batch of 32, the first 500 retain images of each class, impair batch 32 and repair batch 128 at Adam
    lr 1e-4, no augmentation); its sub-class runs use ``noise_steps: 250``. ``augment: true`` crops and flips the
    retain images in both steps (never the noise)."""
    adam = {"schedule": "constant", "optimizer": "adamw", "weight_decay": 0.0}
    impair = task.recipe(epochs=impair_epochs, lr=lr, batch_size=noise_batch, **adam)
    repair = task.recipe(epochs=repair_epochs, lr=lr, batch_size=repair_batch_size, **adam)
    if retain_groups == "fine" and task.retain.fine is None:
        raise UserError("unsir: retain_groups: fine needs fine labels (the cifar20 data set)")
    retain_y = task.retain.y.cpu()
    # SSD's sub-class UNSIR groups by fine class: 500 of each of the 99 others, i.e. the whole CIFAR-20 retain set
    keep = first_per_class(retain_y if retain_groups == "label" else task.retain.fine.cpu(), retain_per_class)
    retain_x, retain_y = to_float(task.retain.x.cpu()[keep]), retain_y[keep]
    classes = task.forget.y.cpu().unique()

    noise = error_maximising_noise(model, classes, task, batch=noise_batch, steps=noise_steps, lr=noise_lr, l2=noise_l2)
    noise_x = noise.cpu().repeat(noise_copies, 1, 1, 1)
    noise_y = classes.repeat_interleave(noise_batch).repeat(noise_copies)
    retain_only = torch.arange(len(noise_x) + len(retain_x)) >= len(noise_x)  # the noise is never augmented
    impair_set = Subset(torch.cat([noise_x, retain_x]), torch.cat([noise_y, retain_y]))
    task.fit(model, task.loader(impair_set, noise_batch, augment=augment, augment_mask=retain_only), impair,
             desc="unsir impair")
    repair_loader = task.loader(Subset(retain_x, retain_y), repair_batch_size, augment=augment, seed=task.seed + 1)
    task.fit(model, repair_loader, repair, desc="unsir repair")
    return model
