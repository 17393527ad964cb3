"""DEL (Torkzadehmahani et al., TMLR 2025): localize the parameters critical to the forget set, reset them to
their initial values and fine-tune them, with the classifier head, on the retain set.

The same method runs the paper's localization comparisons: ``localization`` picks the mask (DEL's, SalUn's,
random, deepest, shallowest, or the criterion x granularity ablations; see ``unlearnbench.localize``) at the same
``budget``, and ``unlearn`` picks what happens inside it (``reset_finetune`` or ``random_label``).

arXiv 2412.02432; official code: reihaneh-torkzadehmahani/DEL-Unlearning. Deviations: docs/deviations.md, "DEL".
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .. import UserError
from ..checkpoint import build_model
from ..localize import localize, reset, restrict_training, with_head
from ..values import Fraction, NonNegative, Positive, PositiveInt
from .registry import Paper, register_method
from .relabel import train_on_random_labels
from .task import UnlearnTask

DEL = Paper("Torkzadehmahani et al., TMLR 2025", "Improved Localized Machine Unlearning Through the Lens of "
            "Memorization", arxiv="2412.02432", code="reihaneh-torkzadehmahani/DEL-Unlearning",
            implements="channel-criticality localization, reset to initial values, fine-tuning (the official code)")


def reset_values(task: UnlearnTask, reset_to: str) -> dict[str, torch.Tensor]:
    """``initial``: the original model's stored initial weights; ``fresh``: a new draw of the model's default
    initialisation with seed ``task.seed + 1`` (the official code's behaviour; ``+ 1`` so that it differs from
    the initial weights, which are drawn with the training seed)."""
    if reset_to == "initial":
        if task.initial_state is None:
            raise UserError("DEL's reset_to: initial needs the original model's initial weights, which its checkpoint lacks; "
                            "retrain the original or use reset_to: fresh")
        return task.initial_state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(task.seed + 1)
        return build_model(task.model_config).state_dict()


@register_method(name="del", paper=DEL)
def del_unlearning(
    model: nn.Module, task: UnlearnTask, *,
    localization: Literal["del", "salun", "grad_channel", "weighted_grad_param", "random", "deepest",
                          "shallowest"] = "del",
    budget: Fraction = 0.3, top_fraction: Fraction | None = 0.1,
    unlearn: Literal["reset_finetune", "random_label"] = "reset_finetune",
    reset_to: Literal["initial", "fresh"] = "initial", labels: Literal["other", "any"] = "any", epochs: Positive = 30,
    lr: Positive = 0.015, momentum: NonNegative = 0.9, weight_decay: NonNegative = 0.0, augment: bool = False,
    batch_size: PositiveInt | None = None,
) -> nn.Module:
    """DEL: mask ``m`` = top-``budget`` channel criticality ``|theta * sum grad CE|`` on the forget set (``h`` =
    ``floor(top_fraction * C_out)``), ``theta <- theta (1 - m) + theta_0 m``, then fine-tuning of the masked
    entries and the whole head on the retain set (SGD, cosine to 0.01·lr). Defaults: the official CIFAR-10 /
    ResNet-18 script (30 epochs, lr 0.015, momentum 0.9, no weight decay, no augmentation).

    ``unlearn: random_label`` skips the reset and trains the masked entries (not the whole head) on the retain set
    plus the forget set with random ``labels``, cosine to 0.5·lr, as the official relabeling branch does.
    """
    floor = 0.5 if unlearn == "random_label" else 0.01  # the official CosineAnnealingLR(eta_min=floor * lr)
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size, optimizer="sgd", momentum=momentum,
                         weight_decay=weight_decay, min_lr=floor * lr)
    mask = localize(model, task.forget.x, task.forget.y, localization, budget, top_fraction=top_fraction, seed=task.seed)
    if unlearn == "random_label":
        return train_on_random_labels(model, task, recipe, labels=labels, augment=augment, mask=mask, desc=f"{localization}+RL")
    reset(model, mask, reset_values(task, reset_to))
    params, after_step = restrict_training(model, with_head(model, mask))
    task.fit(model, task.loader(task.retain, recipe.batch_size, augment=augment), recipe, params=params,
             after_step=after_step, desc=f"{localization}+reset+finetune")
    return model
