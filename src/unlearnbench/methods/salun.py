"""SalUn (Fan et al., ICLR 2024, arXiv 2310.12508): weight saliency (Eq. 6) plus random-label unlearning restricted
to the salient weights (Eq. 7). Official code: OPTML-Group/Unlearn-Saliency. Deviations: docs/deviations.md,
"SalUn ... and random-label / Amnesiac"."""

from __future__ import annotations

from typing import Literal

from torch import nn

from ..localize import localize
from ..values import Fraction, NonNegative, Positive, PositiveInt
from .registry import Paper, register_method
from .relabel import train_on_random_labels
from .task import UnlearnTask

SALUN = Paper("Fan et al., ICLR 2024", "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in "
              "Both Image Classification and Generation", arxiv="2310.12508", code="OPTML-Group/Unlearn-Saliency",
              implements="saliency mask (Eq. 6), random-label training of the masked weights (Eq. 7)")


@register_method(paper=SALUN)
def salun(
    model: nn.Module, task: UnlearnTask, *, budget: Fraction = 0.5, epochs: Positive = 10, lr: Positive = 0.013,
    optimizer: Literal["sgd", "adamw"] = "sgd", momentum: NonNegative = 0.9, weight_decay: NonNegative = 5e-4,
    schedule: Literal["multistep", "cosine", "constant"] = "constant", labels: Literal["other", "any"] = "any",
    augment: bool = True, batch_size: PositiveInt = 256,
) -> nn.Module:
    """Saliency mask ``m_S = 1[|grad_theta L_f(theta_o)| >= gamma]`` (Eq. 6), ``gamma`` the threshold that keeps the
    top ``budget`` fraction of all weights (the paper's default sparsity: 50 %), then random-label training of the
    masked weights only (Eq. 7). Defaults: the official CIFAR-10 command (SGD, lr 0.013, 10 epochs, wd 5e-4, batch
    256 (its ``arg_parser`` default), augmented images, the learning rate constant because its step milestones lie
    beyond 10 epochs); NatMU's baseline uses ``optimizer: adamw`` (momentum then unused)."""
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size, schedule=schedule, optimizer=optimizer,
                         momentum=momentum, weight_decay=weight_decay)
    mask = localize(model, task.forget.x, task.forget.y, "salun", budget, seed=task.seed)
    return train_on_random_labels(model, task, recipe, labels=labels, augment=augment, mask=mask, desc="salun")
