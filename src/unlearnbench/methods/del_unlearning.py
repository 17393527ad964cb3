"""DEL (Torkzadehmahani et al., TMLR 2025): localize the parameters critical to the forget set, reset them to
their initial values and fine-tune them, with the classifier head, on the retain set.

The same method runs the paper's localization comparisons: ``localization`` picks the mask (DEL's, SalUn's,
random, deepest, shallowest, or the criterion x granularity ablations; see ``unlearnbench.localize``) at the same
``budget``, and ``unlearn`` picks what happens inside it (``reset_finetune`` or ``random_label``).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import UserError
from ..checkpoint import build_model
from ..localize import STRATEGIES, localize, reset, restrict_training, with_head
from ..train import fit, set_seed
from . import UnlearnTask, register_method
from .baselines import _recipe
from .random_label import check_labels, train_on_random_labels

UNLEARN = ("reset_finetune", "random_label")
RESET_TO = ("initial", "fresh")


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


def check_options(localization: str, unlearn: str, reset_to: str, labels: str, top_fraction: float | None) -> None:
    for value, valid, what in ((localization, STRATEGIES, "localization"), (unlearn, UNLEARN, "unlearn"), (reset_to, RESET_TO, "reset_to")):
        if value not in valid:
            raise UserError(f"del: unknown {what} {value!r}; valid: {', '.join(valid)}")
    check_labels(labels)
    if top_fraction is not None and not 0 < top_fraction <= 1:
        raise UserError(f"del: top_fraction must be in (0, 1] or null (plain channel mean), got {top_fraction}")


@register_method(name="del")
def del_unlearning(
    model: nn.Module, task: UnlearnTask, *, localization: str = "del", budget: float = 0.3, top_fraction: float | None = 0.1,
    unlearn: str = "reset_finetune", reset_to: str = "initial", labels: str = "any", epochs: float = 30, lr: float = 0.015,
    momentum: float = 0.9, weight_decay: float = 0.0, augment: bool = False, batch_size: int | None = None,
) -> nn.Module:
    """DEL: mask ``m`` = top-``budget`` channel criticality ``|theta * sum grad CE|`` on the forget set (``h`` =
    ``floor(top_fraction * C_out)``), ``theta <- theta (1 - m) + theta_0 m``, then fine-tuning of the masked
    entries and the whole head on the retain set (SGD, cosine to 0.01·lr). Defaults: the official CIFAR-10 /
    ResNet-18 script (30 epochs, lr 0.015, momentum 0.9, no weight decay, no augmentation).

    ``unlearn: random_label`` skips the reset and trains the masked entries (not the whole head) on the retain set
    plus the forget set with random ``labels``, cosine to 0.5·lr, as the official relabeling branch does.
    """
    check_options(localization, unlearn, reset_to, labels, top_fraction)
    floor = 0.5 if unlearn == "random_label" else 0.01  # the official CosineAnnealingLR(eta_min=floor * lr)
    recipe = _recipe(task, epochs, lr, batch_size, optimizer="sgd", momentum=momentum, weight_decay=weight_decay, min_lr=floor * lr)
    recipe.check()
    mask = localize(model, task.forget.x, task.forget.y, localization, budget, top_fraction=top_fraction, seed=task.seed)
    if unlearn == "random_label":
        return train_on_random_labels(model, task, recipe, labels=labels, augment=augment, mask=mask, desc=f"{localization}+RL")
    reset(model, mask, reset_values(task, reset_to))
    params, after_step = restrict_training(model, with_head(model, mask))
    set_seed(task.seed)
    fit(model, task.loader(task.retain, recipe.batch_size, augment=augment), recipe, params=params, after_step=after_step,
        compile=task.compile, desc=f"{localization}+reset+finetune")
    return model
