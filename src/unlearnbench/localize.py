"""Parameter localization: which scalar parameters a localized unlearning method may change.

A mask is ``{name: bool tensor}`` over ``model.named_parameters()``. Every strategy scores each scalar parameter
and keeps exactly ``floor(budget * N)`` of the ``N`` scalars with the highest scores, ranked globally over all
parameter tensors (convolutions, normalisation layers, biases and the head compete with each other):

- ``del``: DEL's criticality (Torkzadehmahani et al. 2025, Sec. 3 / Alg. 1), ``|theta * sum_i grad CE_i|`` over
  the forget set, aggregated per output channel: every entry of a weight tensor gets the mean of the top-``h``
  entries of its output channel's row, ``h = floor(top_fraction * C_out)`` (the official code's definition: a
  fraction of the number of output channels, not of the row length). Tensors with one dimension (biases, norm
  layers) keep per-entry scores.
- ``salun``: SalUn's weight saliency (Fan et al. 2024, Eq. 6), ``|sum_i grad CE_i|`` per entry.
- ``grad_channel`` and ``weighted_grad_param``: the other two cells of DEL's criterion x granularity ablation.
- ``random``: a uniformly random set of the same size (seeded).
- ``deepest`` / ``shallowest``: the last / first scalars in registration order of ``named_parameters`` (forward
  order for the ResNets, the head last), so the boundary tensor is cut at a whole number of leading entries.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import UserError
from .data import InMemoryLoader

Mask = dict[str, torch.Tensor]

GRADIENT_STRATEGIES = {  # name: (weight the gradient by theta, aggregate per output channel)
    "del": (True, True),
    "salun": (False, False),
    "grad_channel": (False, True),
    "weighted_grad_param": (True, False),
}
STRATEGIES = (*GRADIENT_STRATEGIES, "random", "deepest", "shallowest")


def check_budget(budget: float) -> None:
    if not 0 < budget <= 1:
        raise UserError(f"localization budget must be in (0, 1] (a fraction of all parameters), got {budget}")


def forget_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """``sum_i grad_theta CE(f(x_i), y_i)`` over the given samples, in eval mode (BN running statistics), as both
    official codes compute it. The official codes sum per-batch *means*; the sum over samples ranks the same up to
    the weight of a smaller last batch."""
    model.eval()
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    for xb, yb in InMemoryLoader(x, y, batch_size=batch_size, device=device):
        F.cross_entropy(model(xb), yb, reduction="sum").backward()
    grads = {n: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return grads


def channel_scores(score: torch.Tensor, top_fraction: float | None = 0.1) -> torch.Tensor:
    """Every entry of row ``c`` of ``score.reshape(C_out, -1)`` gets the mean of that row's top-``h`` entries,
    ``h = max(1, floor(top_fraction * C_out))`` (capped at the row length); ``None`` takes the plain row mean (the
    official code's choice for ViTs). One-dimensional tensors are returned unchanged."""
    if score.ndim <= 1:
        return score
    rows = score.reshape(len(score), -1)
    if top_fraction is None:
        per_row = rows.mean(1)
    else:
        h = min(rows.shape[1], max(1, int(top_fraction * len(score))))
        per_row = rows.topk(h, dim=1).values.mean(1)
    return per_row[:, None].expand_as(rows).reshape(score.shape)


def criticality(params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], *, weighted: bool, channel: bool,
                top_fraction: float | None = 0.1) -> dict[str, torch.Tensor]:
    """Per-entry scores ``|theta * g|`` or ``|g|``, optionally aggregated per output channel."""
    scores = {n: (params[n] * g if weighted else g).abs() for n, g in grads.items()}
    return {n: channel_scores(s, top_fraction) for n, s in scores.items()} if channel else scores


def top_budget(scores: dict[str, torch.Tensor], budget: float) -> Mask:
    """True for the ``floor(budget * N)`` highest scores over all tensors together (ties broken by ``topk``)."""
    check_budget(budget)
    flat = torch.cat([s.detach().flatten() for s in scores.values()])
    k = int(budget * len(flat))
    if k == 0:
        raise UserError(f"budget {budget} selects none of the {len(flat)} parameters; raise the budget")
    chosen = torch.zeros(len(flat), dtype=torch.bool, device=flat.device)
    chosen[flat.topk(k).indices] = True
    return {n: part.view_as(s) for (n, s), part in zip(scores.items(), chosen.split([s.numel() for s in scores.values()]))}


def localize(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, strategy: str, budget: float, *,
             top_fraction: float | None = 0.1, seed: int = 0, batch_size: int = 256) -> Mask:
    """The mask of ``strategy`` with ``budget``; gradient strategies use the samples ``x`` with labels ``y``."""
    check_budget(budget)
    params = dict(model.named_parameters())
    if strategy in GRADIENT_STRATEGIES:
        if y is None:
            raise UserError(f"localization {strategy!r} needs the forget labels; use random, deepest or shallowest")
        weighted, channel = GRADIENT_STRATEGIES[strategy]
        scores = criticality(params, forget_gradient(model, x, y, batch_size), weighted=weighted, channel=channel,
                             top_fraction=top_fraction)
    elif strategy in ("random", "deepest", "shallowest"):
        sizes = [p.numel() for p in params.values()]
        order = torch.arange(sum(sizes), dtype=torch.float64)  # registration order: later is deeper
        if strategy == "random":
            flat = torch.rand(sum(sizes), generator=torch.Generator().manual_seed(seed))
        else:
            flat = order if strategy == "deepest" else -order
        scores = {n: part.view_as(p) for (n, p), part in zip(params.items(), flat.split(sizes))}
    else:
        raise UserError(f"unknown localization {strategy!r}; valid: {', '.join(STRATEGIES)}")
    return {n: m.to(params[n].device) for n, m in top_budget(scores, budget).items()}


def with_head(model: nn.Module, mask: Mask) -> Mask:
    """The mask with every entry of the classifier head (``model.head``) added."""
    head = {f"backbone.{model.head_name}.{n}" for n, _ in model.head.named_parameters()}
    return {n: torch.ones_like(m) if n in head else m for n, m in mask.items()}


@torch.no_grad()
def reset(model: nn.Module, mask: Mask, source: dict[str, torch.Tensor]) -> None:
    """``theta <- theta * (1 - m) + theta_source * m`` (DEL's reset step) over the named parameters."""
    for n, p in model.named_parameters():
        p.copy_(torch.where(mask[n], source[n].to(p), p))


def restrict_training(model: nn.Module, mask: Mask) -> tuple[list[nn.Parameter], Callable[[], None]]:
    """``fit``'s ``params`` and ``after_step`` so that training changes only the masked entries.

    Tensors without a masked entry are left out of the optimiser; in the others the unmasked entries are put back
    after every step. SGD and AdamW update each entry from its own gradient history, so this gives the same
    masked entries as multiplying the gradients by the mask, and weight decay cannot move the unmasked ones.
    """
    params = [(n, p) for n, p in model.named_parameters() if mask[n].any()]
    frozen = {n: p.detach().clone() for n, p in params if not mask[n].all()}

    @torch.no_grad()
    def restore() -> None:
        for n, p in params:
            if n in frozen:
                p.copy_(torch.where(mask[n], p, frozen[n]))

    return [p for _, p in params], restore
