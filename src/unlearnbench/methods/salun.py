"""SalUn (Fan et al., ICLR 2024): weight saliency plus random-label unlearning restricted to the salient weights."""

from __future__ import annotations

from torch import nn

from ..localize import localize
from . import UnlearnTask, register_method
from .baselines import _recipe
from .random_label import check_labels, train_on_random_labels


@register_method
def salun(
    model: nn.Module, task: UnlearnTask, *, budget: float = 0.5, epochs: float = 10, lr: float = 0.013,
    optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 5e-4, schedule: str = "constant",
    labels: str = "any", augment: bool = True, batch_size: int = 256,
) -> nn.Module:
    """Saliency mask ``m_S = 1[|grad_theta L_f(theta_o)| >= gamma]`` (Eq. 6), ``gamma`` the threshold that keeps the
    top ``budget`` fraction of all weights (the paper's default sparsity: 50 %), then random-label training of the
    masked weights only (Eq. 7). Defaults: the official CIFAR-10 command (SGD, lr 0.013, 10 epochs, wd 5e-4, batch
    256 (its ``arg_parser`` default), augmented images, the learning rate constant because its step milestones lie
    beyond 10 epochs); NatMU's baseline uses ``optimizer: adamw`` (momentum then unused)."""
    check_labels(labels)
    recipe = _recipe(task, epochs, lr, batch_size, schedule, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay)
    recipe.check()
    mask = localize(model, task.forget.x, task.forget.y, "salun", budget, seed=task.seed)
    return train_on_random_labels(model, task, recipe, labels=labels, augment=augment, mask=mask, desc="salun")
