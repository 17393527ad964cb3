"""UNSIR, "Fast Yet Effective Machine Unlearning" (Tarun et al., IEEE TNNLS 2023).

1. Error-maximising noise: for each forget class ``c`` a batch of noise images ``n`` maximises the original model's
   loss on ``c`` under an l2 penalty, ``min_n -CE(f(n), c) + lambda * mean ||n||^2`` (Adam on ``n``).
2. Impair: one epoch on the noise (repeated, labelled ``c``) together with a retain subset, at a high loss.
3. Repair: one epoch on the retain subset alone.

The noise lives in normalised units (as in the official code, whose data are normalised): the model sees
``n * std + mean`` in pixels, so the l2 penalty and its weight mean what they mean there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import UserError
from ..data import InMemoryLoader, to_float
from ..train import autocast, fit, set_seed
from . import UnlearnTask, register_method
from .baselines import _recipe
from .natmu import rank_within_class


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


@register_method(scenarios=("full_class", "sub_class"))  # the noise is learnt for whole forget classes
def unsir(
    model: nn.Module,
    task: UnlearnTask,
    *,
    noise_steps: int = 25,
    noise_lr: float = 0.1,
    noise_l2: float = 0.1,
    noise_batch: int = 32,
    noise_copies: int = 80,
    retain_per_class: int = 500,
    lr: float = 1e-4,
    impair_epochs: float = 1,
    repair_epochs: float = 1,
    repair_batch_size: int = 128,
    retain_groups: str = "label",  # first retain_per_class images of each training "label" or each "fine" label
    augment: bool = False,
) -> nn.Module:
    """Defaults: the SSD repository's full-class UNSIR (25 noise steps at Adam lr 0.1, l2 weight 0.1, 80 copies of
    a noise batch of 32, the first 500 retain images of each class, impair batch 32 and repair batch 128 at Adam
    lr 1e-4, no augmentation); its sub-class runs use ``noise_steps: 250``. ``augment: true`` crops and flips the
    retain images in both steps (never the noise)."""
    if min(noise_steps, noise_batch, noise_copies, retain_per_class) < 1 or not noise_lr > 0:
        raise UserError("unsir: noise_steps, noise_batch, noise_copies, retain_per_class and noise_lr must be positive")
    impair = _recipe(task, impair_epochs, lr, noise_batch, "constant", optimizer="adamw", weight_decay=0.0)
    repair = _recipe(task, repair_epochs, lr, repair_batch_size, "constant", optimizer="adamw", weight_decay=0.0)
    impair.check()
    repair.check()
    if retain_groups not in ("label", "fine"):
        raise UserError(f"unsir: retain_groups must be 'label' or 'fine', got {retain_groups!r}")
    if retain_groups == "fine" and task.retain.fine is None:
        raise UserError("unsir: retain_groups: fine needs fine labels (the cifar20 data set)")
    set_seed(task.seed)
    retain_y = task.retain.y.cpu()
    # SSD's sub-class UNSIR groups by fine class: 500 of each of the 99 others, i.e. the whole CIFAR-20 retain set
    keep = first_per_class(retain_y if retain_groups == "label" else task.retain.fine.cpu(), retain_per_class)
    retain_x, retain_y = to_float(task.retain.x.cpu()[keep]), retain_y[keep]
    classes = task.forget.y.cpu().unique()

    noise = error_maximising_noise(model, classes, task, batch=noise_batch, steps=noise_steps, lr=noise_lr, l2=noise_l2)
    noise_x = noise.cpu().repeat(noise_copies, 1, 1, 1)
    noise_y = classes.repeat_interleave(noise_batch).repeat(noise_copies)
    crop = {"crop_padding": task.spec.crop_padding if augment else 0, "flip": task.spec.flip and augment}
    retain_only = torch.arange(len(noise_x) + len(retain_x)) >= len(noise_x)  # the noise is never augmented
    impair_loader = InMemoryLoader(
        torch.cat([noise_x, retain_x]), torch.cat([noise_y, retain_y]), augment_mask=retain_only, **crop,
        batch_size=noise_batch, shuffle=True, drop_last=True, seed=task.seed, device=task.device,
    )
    fit(model, impair_loader, impair, compile=task.compile, desc="unsir impair")
    repair_loader = InMemoryLoader(
        retain_x, retain_y, batch_size=repair_batch_size, shuffle=True, drop_last=True, seed=task.seed + 1, device=task.device,
        **crop,
    )
    fit(model, repair_loader, repair, compile=task.compile, desc="unsir repair")
    return model
