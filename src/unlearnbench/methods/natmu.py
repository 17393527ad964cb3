"""NatMU, "Towards Natural Machine Unlearning" (He et al., TPAMI 2025, arXiv 2405.15495).

Each forget image is blended in pixel space with one retain image of each of its four most confusable other
classes, through four triangular masks; each hybrid carries its retain image's true label. Fine-tuning on the retain
set plus the hybrids (AdamW, per-step cosine decay to 0) makes the model use the injected retain information and
suppress the forget information. For full-class forgetting the head is re-initialised first. Official code:
ZhengbaoHe/NatMU. Deviations: docs/deviations.md, "NatMU".
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from .. import UserError
from ..data import to_float
from ..splits import rank_within_class
from ..train import predict_logits
from ..values import Interval, NonNegative, Positive, PositiveInt
from .registry import Paper, register_method
from .relabel import reinit_head as reinit_natmu_head
from .task import Subset, UnlearnTask

NATMU = Paper("He et al., TPAMI 2025", "Towards Natural Machine Unlearning", arxiv="2405.15495", code="ZhengbaoHe/NatMU",
              implements="hybrid forget/retain samples through four triangular masks, fine-tuning (the official code)")
N_HYBRIDS = 4  # one hybrid per mask


def natmu_masks(size: int, delta: float) -> torch.Tensor:
    """The four forget-image weights ``M_k = clip(m_k + delta, 0, 1)``, shape ``[4, size, size]``.

    ``m_0``/``m_1`` are triangles along rows/columns, ``r(t) = min(t, size - 1 - t) / b`` with ``b = size // 2``
    (0 at the edges, ``(b - 1) / b`` at the centre); ``m_2``/``m_3`` are their inversions ``(b - 1) / b - r``.
    The retain image gets ``1 - M_k``.
    """
    b = size // 2
    t = torch.arange(size, dtype=torch.float32)
    ramp = torch.minimum(t, size - 1 - t) / b
    rows, cols = ramp[:, None].expand(size, size), ramp[None, :].expand(size, size)
    top = (b - 1) / b
    return (torch.stack([rows, cols, top - rows, top - cols]) + delta).clamp(0, 1)


def confusable_ranking(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Every other class of each sample, most probable first under the original model (its own class excluded)."""
    probs = logits.softmax(1).scatter(1, labels[:, None], -1.0)
    return probs.argsort(dim=1, descending=True, stable=True)[:, :-1]


def assign_classes(ranking: torch.Tensor, capacity: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The classes ``[n, 4]`` of the hybrids: each sample's top-4 of ``ranking``, at most ``capacity[c]`` per class.

    Where a class is asked for more often than it has retain images, a random choice of its requests keeps it and the
    others walk down their sample's ranking to the next class with images left (as the official difficult-sample
    script does), so that partners can be drawn without replacement. Slot ``k`` keeps mask ``k``.
    """
    n, num_classes = len(ranking), len(capacity)
    chosen = torch.full((n, N_HYBRIDS), -1, dtype=torch.long)
    remaining = capacity.clone()
    while (open_slots := chosen < 0).any():
        # column num_classes is a sink for the open slots
        taken = torch.zeros(n, num_classes + 1, dtype=torch.bool).scatter_(1, torch.where(chosen >= 0, chosen, num_classes), True)
        available = (~taken[:, :num_classes] & (remaining > 0)).gather(1, ranking)
        need = open_slots.sum(1, keepdim=True)
        picks = available & (available.cumsum(1) <= need)
        if (picks.sum(1, keepdim=True) < need).any():
            raise UserError(
                f"NatMU needs {N_HYBRIDS} distinct retain images of other classes per forget sample, but the retain "
                f"set runs out ({capacity.sum().item()} images for {n} forget samples); use a smaller forget set"
            )
        slot_rows, slot_cols = open_slots.nonzero(as_tuple=True)  # row-major: aligned with the picks of each row
        wanted = ranking[picks]
        accepted = rank_within_class(wanted, generator) < remaining[wanted]
        chosen[slot_rows[accepted], slot_cols[accepted]] = wanted[accepted]
        remaining -= torch.bincount(wanted[accepted], minlength=num_classes)
    return chosen


def draw_partners(classes: torch.Tensor, retain_y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Positions in the retain set of one image of each requested class, uniformly without replacement."""
    flat = classes.flatten()
    shuffled = torch.randperm(len(retain_y), generator=generator)
    by_class = shuffled[torch.argsort(retain_y[shuffled], stable=True)]  # grouped by class, random within
    counts = torch.bincount(retain_y, minlength=int(flat.max()) + 1)
    if (torch.bincount(flat, minlength=len(counts)) > counts).any():
        raise UserError("NatMU asked for more retain images of a class than the retain set holds; use a smaller forget set")
    starts = counts.cumsum(0) - counts
    return by_class[starts[flat] + rank_within_class(flat)].view_as(classes)


def make_hybrids(forget_x: torch.Tensor, partner_x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``M_k * x_f + (1 - M_k) * x_r`` in [0, 1] pixels: forget ``[n, C, H, W]``, partners ``[n, 4, C, H, W]``;
    returns ``[4n, C, H, W]`` with the hybrids of each forget sample consecutive."""
    m = masks[None, :, None]  # [1, 4, 1, H, W]
    return (m * to_float(forget_x)[:, None] + (1 - m) * to_float(partner_x)).flatten(0, 1)


def natmu_hybrids(model: nn.Module, task: UnlearnTask, delta: float, generator: torch.Generator):
    """The hybrids ``[4 n_f, C, H, W]`` (float pixels), their labels (their retain partners' true labels) and the
    partners' positions in the retain set ``[n_f, 4]``."""
    retain_y = task.retain.y.cpu()
    ranking = confusable_ranking(predict_logits(model, task.forget.x, device=task.device), task.forget.y.cpu())
    classes = assign_classes(ranking, torch.bincount(retain_y, minlength=task.spec.num_classes), generator)
    partners = draw_partners(classes, retain_y, generator)
    hybrids = make_hybrids(task.forget.x.cpu(), task.retain.x.cpu()[partners], natmu_masks(task.spec.size, delta))
    return hybrids, retain_y[partners.flatten()], partners


@register_method(paper=NATMU)
def natmu(
    model: nn.Module,
    task: UnlearnTask,
    *,
    epochs: Positive = 5,
    lr: Positive = 2.8e-4,
    weight_decay: NonNegative = 0.0,
    delta: Annotated[float, Interval(-1, 1, closed="neither")] = -0.053,  # -1 or 1: masks all 0 or all 1, no blend
    batch_size: PositiveInt = 128,
    reinit_head: bool | None = None,
    augment: bool = True,
) -> nn.Module:
    """NatMU. Defaults: the official full-class CIFAR-100 script (lr 2.8e-4, wd 0, delta -0.053); other settings
    are in docs/deviations.md. ``reinit_head`` (default: only for full-class scenarios) redraws ``model.head``'s
    weight as ``xavier_normal_(gain=calculate_gain('relu'))`` after the classes are chosen. ``augment`` crops and
    flips the retain images (the official code does); the hybrids are never augmented."""
    num_classes = task.spec.num_classes
    if num_classes <= N_HYBRIDS:
        raise UserError(f"natmu needs at least {N_HYBRIDS + 1} classes (one own, {N_HYBRIDS} partners); {task.spec.name} has {num_classes}")
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size, optimizer="adamw", weight_decay=weight_decay)
    hybrids, hybrid_y, _ = natmu_hybrids(model, task, delta, torch.Generator().manual_seed(task.seed))
    if reinit_head is None:
        reinit_head = task.scenario.get("kind") == "full_class"
    if reinit_head:
        reinit_natmu_head(model)
    x = torch.cat([to_float(task.retain.x.cpu()), hybrids])
    y = torch.cat([task.retain.y.cpu(), hybrid_y])
    retain_only = torch.arange(len(x)) < len(task.retain)  # the hybrids are never augmented
    task.fit(model, task.loader(Subset(x, y), batch_size, augment=augment, augment_mask=retain_only), recipe,
             desc="natmu")
    return model
