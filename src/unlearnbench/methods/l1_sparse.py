"""l1-sparse unlearning, "Model Sparsity Can Simplify Machine Unlearning" (Jia et al., NeurIPS 2023, Eq. 4).

Fine-tuning on the retain set with ``CE + gamma_t * ||theta||_1`` over all parameters, where the l1 weight decays
linearly over the run: ``gamma_t = alpha * (1 - t / E)`` in epoch ``t = 0 .. E - 1`` (the official ``FT_l1``).
arXiv 2304.04934; official code: OPTML-Group/Unlearn-Sparse. Deviations: docs/deviations.md, "Bad Teacher, UNSIR,
l1-sparse".
"""

from __future__ import annotations

import torch
from torch import nn

from ..train import cross_entropy
from ..values import NonNegative, Positive, PositiveInt
from .registry import Paper, register_method
from .task import UnlearnTask

L1_SPARSE = Paper("Jia et al., NeurIPS 2023", "Model Sparsity Can Simplify Machine Unlearning", arxiv="2304.04934",
                  code="OPTML-Group/Unlearn-Sparse",
                  implements="l1-regularised fine-tuning with a decaying weight (Eq. 4)")


def l1_weight(alpha: float, epoch: int, epochs: float) -> float:
    """``gamma_t = alpha * (1 - t / E)`` for the 0-based epoch ``t`` of ``E`` (0 from then on)."""
    return alpha * max(0.0, 1 - epoch / epochs)


@register_method(paper=L1_SPARSE)
def l1_sparse(
    model: nn.Module, task: UnlearnTask, *, epochs: Positive = 10, lr: Positive = 0.01, alpha: NonNegative = 7e-5,
    batch_size: PositiveInt | None = None, augment: bool = True,
) -> nn.Module:
    """Defaults: the DEL repository's l1-sparse (alpha 7e-5, cosine learning rate) with Unlearn-Sparse's 10 epochs
    at lr 0.01 on augmented images (Unlearn-Sparse's code; DEL's code does not augment: ``augment: false``); the
    optimiser, momentum and weight decay are the original recipe's."""
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size)
    params, ce = list(model.parameters()), cross_entropy(recipe.label_smoothing)
    gamma = [l1_weight(alpha, 0, epochs)]  # the current epoch's l1 weight

    def loss(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ce(m, x, y) + gamma[0] * sum(p.abs().sum() for p in params)

    def decay(epoch: int, _: nn.Module) -> None:  # ``epoch`` counts from 1: the next epoch's 0-based index
        gamma[0] = l1_weight(alpha, epoch, epochs)

    task.fit(model, task.loader(task.retain, recipe.batch_size, augment=augment), recipe, loss_fn=loss,
             on_epoch_end=decay, desc="l1-sparse")
    return model
