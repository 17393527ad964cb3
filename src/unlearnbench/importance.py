"""Parameter importances: one non-negative number per parameter entry, estimated from gradients on batches.

Every estimator is an independent function ``(model, batches, ...) -> Importance``, where ``batches`` yields
``(x, y)`` pairs (``y`` may be ``None`` for label-free losses; ``task.loader(subset, bs, shuffle=False,
augment=False)`` gives them) and ``Importance`` maps each ``model.named_parameters()`` name to a tensor of the
parameter's shape. Estimators put the model in eval mode (BatchNorm uses its running statistics and its buffers
are never updated), compute in float32 (autocast off, whatever the training precision), and leave the weights and their ``.grad`` untouched. Per-sample
gradients come from ``torch.func`` (``vmap`` over ``grad``), never from a loop over single samples.

To add an estimator, add a function with the same shape of signature and a docstring citing its equation.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jacrev, vmap

Importance = dict[str, torch.Tensor]
Batches = Iterable[tuple[torch.Tensor, torch.Tensor | None]]
Loss = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]  # (logits [n, C], labels [n] or None) -> mean


def cross_entropy(logits: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy with the given labels (SSD's loss)."""
    return F.cross_entropy(logits, y)


def squared_logit_norm(logits: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared L2 norm of the logits, ``mean_i ||f(x_i)||_2^2``; reads no labels (LFSSD's loss)."""
    return logits.pow(2).sum(dim=1).mean()


def _float32(estimator: Callable[..., Importance]) -> Callable[..., Importance]:
    """Run ``estimator`` with autocast off, so an enclosing bf16 autocast cannot round the gradients."""

    @functools.wraps(estimator)
    def wrapped(model: nn.Module, *args, **kwargs) -> Importance:
        with torch.autocast(next(model.parameters()).device.type, enabled=False):
            return estimator(model, *args, **kwargs)

    return wrapped


def _parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    return dict(model.named_parameters())


def _zeros(params: dict[str, torch.Tensor]) -> Importance:
    return {k: torch.zeros_like(p, dtype=torch.float32) for k, p in params.items()}


def _functional(model: nn.Module) -> tuple[dict, Callable[[dict, torch.Tensor], torch.Tensor]]:
    """Detached parameters and ``logits(params, x)`` for a single sample ``x`` (no batch dimension)."""
    params = {k: p.detach() for k, p in model.named_parameters()}
    buffers = {k: b.detach() for k, b in model.named_buffers()}

    def logits(params: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (params, buffers), (x.unsqueeze(0),)).squeeze(0)

    return params, logits


@_float32
def batch_gradient_importance(model: nn.Module, batches: Batches, loss: Loss, *, power: float = 2) -> Importance:
    """``(1/B) sum_b |grad_theta L_b|^power`` with ``L_b`` the loss averaged over batch ``b``.

    With ``cross_entropy`` and ``power=2`` this is SSD's importance as the official code computes it (the square of
    each mini-batch's mean gradient, averaged over batches; Foster et al. 2024); with
    ``squared_logit_norm`` and ``power=1`` it is LFSSD's. The value depends on the batch size and composition, and
    a ragged last batch counts as much as a full one, as in the official code.
    """
    model.eval()
    params = _parameters(model)
    total, count = _zeros(params), 0
    for x, y in batches:
        grads = torch.autograd.grad(loss(model(x).float(), y), list(params.values()), allow_unused=True)
        for (name, _), g in zip(params.items(), grads):
            if g is not None:
                total[name] += g.abs().pow(power)
        count += 1
    return {k: v / max(count, 1) for k, v in total.items()}


@_float32
def per_sample_gradient_importance(
    model: nn.Module, batches: Batches, loss: Loss, *, power: float = 2, chunk_size: int | None = None
) -> Importance:
    """``(1/N) sum_i |grad_theta L(x_i, y_i)|^power``: the mean over samples of per-sample gradient magnitudes.

    With ``cross_entropy`` and ``power=2`` it is the diagonal of the empirical Fisher information; with
    ``squared_logit_norm`` and ``power=1`` it is MAS's sensitivity (Aljundi et al. 2018, with the squared norm as
    in LFSSD). It does not depend on how samples are batched. ``chunk_size`` bounds how many per-sample
    gradients are held in memory at once (``None``: a whole batch).
    """
    model.eval()
    params, logits = _functional(model)
    total, count = _zeros(params), 0

    def sample_loss(params: dict, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return loss(logits(params, x).float().unsqueeze(0), None if y is None else y.unsqueeze(0))

    for x, y in batches:
        per_sample = vmap(grad(sample_loss), in_dims=(None, 0, None if y is None else 0), chunk_size=chunk_size)
        for name, g in per_sample(params, x, y).items():
            total[name] += g.abs().pow(power).sum(0)
        count += len(x)
    return {k: v / max(count, 1) for k, v in total.items()}


@_float32
def fisher_diagonal(model: nn.Module, batches: Batches, *, per_sample: bool = True, chunk_size: int | None = None) -> Importance:
    """Diagonal of the (true) Fisher information, with labels drawn from the model's own predictions.

    ``per_sample=True``: ``(1/N) sum_i sum_y p(y|x_i) (d log p(y|x_i) / d theta)^2`` (the Fisher of Golatkar
    et al. 2020, computed with batch size 1 in their code). ``per_sample=False``: the Fisher-masking code's
    batch estimate ``(1/B) sum_b sum_y pbar_{b,y} (d/d theta mean_{i in b} log p(y|x_i))^2`` with ``pbar_{b,y}``
    the mean probability of ``y`` over batch ``b``. Labels in ``batches`` are ignored.
    """
    model.eval()
    params, logits = _functional(model)
    total, count = _zeros(params), 0
    per_class_grads = vmap(jacrev(lambda p, x: logits(p, x).float().log_softmax(-1)), in_dims=(None, 0), chunk_size=chunk_size)
    for x, _ in batches:
        if per_sample:
            with torch.no_grad():
                probs = model(x).float().softmax(-1)  # [n, C]
            for name, jac in per_class_grads(params, x).items():  # jac: [n, C, *shape]
                total[name] += torch.einsum("nc,nc...->...", probs, jac.square())
            count += len(x)
        else:
            log_probs = model(x).float().log_softmax(-1)  # [n, C]
            weights, eye = log_probs.detach().exp().mean(0), torch.eye(log_probs.shape[1], device=x.device)
            grads = torch.autograd.grad(log_probs.mean(0), list(model.parameters()), grad_outputs=eye, is_grads_batched=True)
            for name, g in zip(params, grads):  # g: [C, *shape], the gradient of mean_i log p(y|x_i) for each y
                total[name] += torch.einsum("c,c...->...", weights, g.square())
            count += 1
    return {k: v / max(count, 1) for k, v in total.items()}
