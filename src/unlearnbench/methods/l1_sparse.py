"""l1-sparse unlearning, "Model Sparsity Can Simplify Machine Unlearning" (Jia et al., NeurIPS 2023, Eq. 4).

Fine-tuning on the retain set with ``CE + gamma_t * ||theta||_1`` over all parameters, where the l1 weight decays
linearly over the run: ``gamma_t = alpha * (1 - t / E)`` in epoch ``t = 0 .. E - 1`` (the official ``FT_l1``).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import UserError
from ..train import cross_entropy, fit, set_seed
from . import UnlearnTask, register_method
from .baselines import _recipe


def l1_weight(alpha: float, epoch: int, epochs: float) -> float:
    """``gamma_t = alpha * (1 - t / E)`` for the 0-based epoch ``t`` of ``E`` (0 from then on)."""
    return alpha * max(0.0, 1 - epoch / epochs)


@register_method
def l1_sparse(
    model: nn.Module, task: UnlearnTask, *, epochs: float = 10, lr: float = 0.01, alpha: float = 7e-5,
    batch_size: int | None = None, augment: bool = True,
) -> nn.Module:
    """Defaults: the DEL repository's l1-sparse (alpha 7e-5, cosine learning rate) with Unlearn-Sparse's 10 epochs
    at lr 0.01 on augmented images (Unlearn-Sparse's code; DEL's code does not augment: ``augment: false``); the
    optimiser, momentum and weight decay are the original recipe's."""
    if not alpha >= 0:
        raise UserError(f"l1_sparse: alpha {alpha} must be non-negative; the DEL setting is 7e-5")
    recipe = _recipe(task, epochs, lr, batch_size)
    recipe.check()
    set_seed(task.seed)
    params, ce = list(model.parameters()), cross_entropy(recipe.label_smoothing)
    gamma = [l1_weight(alpha, 0, epochs)]  # the current epoch's l1 weight

    def loss(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ce(m, x, y) + gamma[0] * sum(p.abs().sum() for p in params)

    def decay(epoch: int, _: nn.Module) -> None:  # ``epoch`` counts from 1: the next epoch's 0-based index
        gamma[0] = l1_weight(alpha, epoch, epochs)

    fit(model, task.loader(task.retain, recipe.batch_size, augment=augment), recipe, loss_fn=loss, on_epoch_end=decay,
        compile=task.compile, desc="l1-sparse")
    return model
