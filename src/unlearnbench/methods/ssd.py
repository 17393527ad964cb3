"""Selective Synaptic Dampening (SSD; Foster et al., AAAI 2024, arXiv 2308.07707) and its label-free variant
(LFSSD; Foster et al., ICLR 2024 Tiny Papers, arXiv 2402.19308): no training, one pass of importance estimation on
the forget set D_f and the full training set D = D_r + D_f, then parameters far more important to D_f than to D
are shrunk.

    select  S = { i : I_f,i > alpha * I_D,i }                           (selection)
    dampen  theta_i <- min(lambda * I_D,i / I_f,i, 1) * theta_i,  i in S  (dampening)

SSD's importance is the diagonal Fisher of the cross-entropy; LFSSD's is the absolute gradient of the squared L2
norm of the logits and reads no labels. Every named parameter is eligible (BatchNorm affine parameters and biases
included); buffers are untouched; importances are taken in eval mode without augmentation. Official code:
if-loops/selective-synaptic-dampening. Deviations: docs/deviations.md, "SSD and LFSSD".
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import nn

from .. import UserError
from ..importance import (
    Importance,
    batch_gradient_importance,
    cross_entropy,
    per_sample_gradient_importance,
    squared_logit_norm,
)
from ..values import Positive, PositiveInt
from .registry import Paper, register_method
from .task import Subset, UnlearnTask

log = logging.getLogger(__name__)

SSD = Paper("Foster et al., AAAI 2024",
            "Fast Machine Unlearning Without Retraining Through Selective Synaptic Dampening",
            arxiv="2308.07707", code="if-loops/selective-synaptic-dampening",
            implements="selection and dampening with the diagonal Fisher (the official code's ssd_tuning)")
LFSSD = Paper("Foster et al., ICLR 2024 Tiny Papers", "Loss-Free Machine Unlearning", arxiv="2402.19308",
              code="if-loops/selective-synaptic-dampening",
              implements="SSD with the gradient of the squared logit norm as importance (the README's patch)")


@torch.no_grad()
def dampen(model: nn.Module, forget_importance: Importance, full_importance: Importance, alpha: float, lambda_: float) -> float:
    """Apply SSD's selection and dampening in place; returns the fraction of parameter entries changed.

    An entry with ``I_f = 0`` is never selected (``0 > alpha * I_D`` is false for ``I_D >= 0``), so the ratio is
    only ever taken where ``I_f > 0``: no NaN or inf can reach the weights. ``I_D = 0 < I_f`` gives ``beta = 0``.
    """
    changed = total = 0
    for name, p in model.named_parameters():
        i_f, i_d = forget_importance[name], full_importance[name]
        selected = i_f > alpha * i_d
        beta = torch.where(selected, (lambda_ * i_d / torch.where(selected, i_f, 1.0)).clamp(max=1.0), 1.0)
        p.mul_(beta.to(p.dtype))
        changed += int(selected.sum())
        total += p.numel()
    return changed / total


def official_order(task: UnlearnTask) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the retain and forget samples in the order in which the official code batches them.

    Its harness builds the sets class by class, each class in storage order (``get_classwise_ds``): full-class
    forgetting groups by training label, sub-class forgetting by fine label (CIFAR-100 class); random forgetting
    takes ``random_split``'s random permutations (seeded here with the run's seed). With the batch-mean estimator,
    class-pure batches give a much larger I_D than mixed ones, so the order is part of the method. Where the key
    is missing (a label-free task without labels) the storage order is kept.
    """
    kind = task.scenario.get("kind")
    if kind == "random":
        generator = torch.Generator().manual_seed(task.seed)
        return (torch.randperm(len(task.retain), generator=generator),
                torch.randperm(len(task.forget), generator=generator))
    if kind == "sub_class" and (task.retain.fine is None or task.forget.fine is None):
        raise UserError("sub-class SSD/LFSSD groups D by fine label, but the task carries none; use the cifar20 data set")
    key = "fine" if kind == "sub_class" else "y"

    def grouped(subset: Subset) -> torch.Tensor:
        labels = getattr(subset, key)
        if labels is None:
            return torch.arange(len(subset))
        return torch.sort(labels.cpu(), stable=True).indices

    return grouped(task.retain), grouped(task.forget)


def _ssd(
    model: nn.Module, task: UnlearnTask, *, label_free: bool, alpha: float, lambda_: float, batch_size: int | None, estimator: str
) -> nn.Module:
    name = "lfssd" if label_free else "ssd"
    # The official batch sizes, to which the published alpha values are tied: 64, and 128 for random forgetting.
    batch_size = (128 if task.scenario.get("kind") == "random" else 64) if batch_size is None else batch_size
    loss, power = (squared_logit_norm, 1) if label_free else (cross_entropy, 2)

    def importance(subset: Subset) -> Importance:
        batches = task.loader(Subset(subset.x, None if label_free else subset.y), batch_size, shuffle=False, augment=False)
        if estimator == "per_sample":
            return per_sample_gradient_importance(model, batches, loss, power=power)
        return batch_gradient_importance(model, batches, loss, power=power)

    retain_order, forget_order = official_order(task)
    forget = Subset(task.forget.x[forget_order], None if label_free else task.forget.y[forget_order])
    forget_importance = importance(forget)
    # D = the retain set, then the forget set (in D_f's order), batched across the seam as the official ConcatDataset.
    full = Subset(
        torch.cat([task.retain.x[retain_order], forget.x]),
        None if label_free else torch.cat([task.retain.y[retain_order], forget.y]),
    )
    fraction = dampen(model, forget_importance, importance(full), alpha, lambda_)
    task.record["dampened_fraction"] = fraction  # saved in run.json
    log.info("%s dampened %.4f%% of the parameter entries", name, 100 * fraction)
    return model.eval()


@register_method(paper=SSD)
def ssd(
    model: nn.Module, task: UnlearnTask, *, alpha: Positive = 10.0, lambda_: Positive = 1.0,
    batch_size: PositiveInt | None = None, estimator: Literal["batch_mean", "per_sample"] = "batch_mean",
) -> nn.Module:
    """SSD with the cross-entropy diagonal Fisher. ``estimator``: ``batch_mean`` (official: squared mean gradient of
    each batch, averaged over batches) or ``per_sample`` (mean of per-sample squared gradients; needs its own
    alpha). ``batch_size`` defaults to the official 64 (128 for random forgetting)."""
    return _ssd(model, task, label_free=False, alpha=alpha, lambda_=lambda_, batch_size=batch_size, estimator=estimator)


@register_method(paper=LFSSD)
def lfssd(
    model: nn.Module, task: UnlearnTask, *, alpha: Positive = 10.0, lambda_: Positive = 1.0,
    batch_size: PositiveInt | None = None, estimator: Literal["batch_mean", "per_sample"] = "batch_mean",
) -> nn.Module:
    """LFSSD: SSD with the label-free importance ``|d/dtheta mean ||f(x)||_2^2|`` on both sets. ``estimator``:
    ``batch_mean`` (official: absolute mean gradient of each batch) or ``per_sample`` (MAS: mean of per-sample
    absolute gradients)."""
    return _ssd(model, task, label_free=True, alpha=alpha, lambda_=lambda_, batch_size=batch_size, estimator=estimator)
