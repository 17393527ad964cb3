"""Fisher forgetting (Golatkar et al., "Eternal Sunshine of the Spotless Net", CVPR 2020), as released in their code
and reused as a baseline by SSD's repository, Fisher masking and the mnemonic-code paper ("SFDN"): Gaussian noise
on every parameter, scaled by the inverse diagonal Fisher of the retain set, so that weights the retain set does
not pin down are scrambled.

    theta <- mu + sqrt(var) * eps,  eps ~ N(0, I)
    var    = alpha * min(1 / (F_r + 1e-8), 1e3)   (cap 1e2 on the classifier), averaged over dim 1 of matrices
    mu     = theta, except that for class forgetting the classifier rows of the forgotten classes get mu = 0
             and var = 1e-4; then var *= 10 on the classifier and on every 1-D parameter (BatchNorm, biases).

arXiv 1911.04933 (the noise as in their released code). Deviations: docs/deviations.md,
"Fisher forgetting".
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..importance import fisher_diagonal
from ..splits import class_index
from ..values import Positive, PositiveInt
from .registry import Paper, register_method
from .task import UnlearnTask

FISHER_FORGETTING = Paper("Golatkar et al., CVPR 2020", "Eternal Sunshine of the Spotless Net: Selective Forgetting in "
                          "Deep Networks", arxiv="1911.04933", code="AdityaGolatkar/SelectiveForgetting",
                          implements="Fisher-scaled Gaussian noise on the weights (the released code)")


def noise_scale(
    p: torch.Tensor, fisher: torch.Tensor, alpha: float, *, is_head: bool, forget_rows: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the noise distribution of one parameter (the code's ``get_mean_var``)."""
    var = (1.0 / (fisher + 1e-8)).clamp(max=1e2 if is_head else 1e3) * alpha
    if p.ndim > 1:
        var = var.mean(dim=1, keepdim=True).expand_as(p).clone()
    mu = p.detach().clone()
    if is_head and forget_rows:
        mu[forget_rows] = 0.0
        var[forget_rows] = 1e-4
    if is_head or p.ndim == 1:
        var = var * 10
    return mu, var


@torch.no_grad()
def _add_noise(model: nn.Module, fisher: dict[str, torch.Tensor], alpha: float, forget_rows: list[int], seed: int) -> None:
    head = {id(p) for p in model.head.parameters()}
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    for name, p in model.named_parameters():
        mu, var = noise_scale(p, fisher[name], alpha, is_head=id(p) in head, forget_rows=forget_rows)
        noise = torch.randn(p.shape, generator=generator, device=p.device, dtype=torch.float32)
        p.copy_(mu + var.sqrt() * noise)


@register_method(paper=FISHER_FORGETTING)
def fisher_forgetting(
    model: nn.Module, task: UnlearnTask, *, alpha: Positive = 1e-6,
    estimator: Literal["per_sample", "batch_mean"] = "per_sample", batch_size: PositiveInt = 128,
    forget_class_rows: bool = True,
) -> nn.Module:
    """Fisher forgetting with the Fisher of the retain set (labels drawn from the model's predictions).

    ``estimator``: ``per_sample`` (Golatkar's and SSD's code, batch size 1) or ``batch_mean`` (the Fisher-masking
    code, batches of ``batch_size``). ``forget_class_rows``: in full-class scenarios, zero the forgotten classes'
    classifier rows as Golatkar's code does (no effect in other scenarios; the copy in SSD's random-forgetting script has
    no such step).
    """
    batches = task.loader(task.retain, batch_size, shuffle=False, augment=False)
    # per-sample Jacobians take chunk x classes x parameters floats: 32 samples keep that to a few GB on ResNet-18
    fisher = fisher_diagonal(model, batches, per_sample=estimator == "per_sample", chunk_size=32)
    full_class = forget_class_rows and task.scenario.get("kind") == "full_class"
    forget_rows = [class_index(c, task.spec.classes) for c in task.scenario.get("classes", [])] if full_class else []
    _add_noise(model, fisher, alpha, forget_rows, task.seed)
    return model.eval()
