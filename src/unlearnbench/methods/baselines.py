"""The reference points every paper compares against: the original model, the retrain oracle, fine-tuning on
the retain set, gradient ascent on the forget set and NegGrad+ (Kurmanji et al., NeurIPS 2023, Eq. 5)."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import build_model
from ..train import Recipe, fit, set_seed
from . import UnlearnTask, register_method


@register_method
def original(model: nn.Module, task: UnlearnTask) -> nn.Module:
    """No unlearning: the original model, as the upper bound on utility and the lower bound on forgetting."""
    return model


@register_method
def retrain(model: nn.Module, task: UnlearnTask, *, from_initial: bool = True) -> nn.Module:
    """The oracle: training from scratch on the retain set with the original model's recipe.

    ``from_initial`` starts from the original model's stored initial weights (as NatMU's retrain does), so that
    the oracle differs from the original only by the forget set; ``False`` draws fresh weights with the seed.
    """
    set_seed(task.seed)
    fresh = build_model(task.model_config)
    if from_initial and task.initial_state is not None:
        fresh.load_state_dict(task.initial_state)
    loader = task.loader(task.retain, task.recipe.batch_size, augment=task.recipe.augment)
    fit(fresh, loader, task.recipe, compile=task.compile, desc="retrain")
    return fresh


def _recipe(task: UnlearnTask, epochs: float, lr: float, batch_size: int | None, schedule: str = "cosine", *,
            min_lr: float = 0.0, **kw) -> Recipe:
    """The original recipe's optimiser settings with a method's epochs, learning rate and schedule (no warm-up or
    milestones; the cosine floor is the method's own ``min_lr``, not the original's)."""
    batch_size = task.recipe.batch_size if batch_size is None else batch_size
    return replace(task.recipe, epochs=epochs, lr=lr, batch_size=batch_size,
                   schedule=schedule, milestones=[], warmup_epochs=0.0, min_lr=min_lr, **kw)


@register_method
def finetune(
    model: nn.Module, task: UnlearnTask, *, epochs: float = 10, lr: float = 0.02, batch_size: int | None = None,
    augment: bool = True,
) -> nn.Module:
    """Fine-tune on the retain set only, relying on catastrophic forgetting of the forget set. ``augment`` applies
    the data set's crop and flip (SalUn's code does; SSD's, DEL's and Fisher masking's code do not)."""
    set_seed(task.seed)
    loader = task.loader(task.retain, task.recipe.batch_size if batch_size is None else batch_size, augment=augment)
    fit(model, loader, _recipe(task, epochs, lr, batch_size), compile=task.compile, desc="finetune")
    return model


@register_method
def gradient_ascent(
    model: nn.Module, task: UnlearnTask, *, epochs: float = 1, lr: float = 1e-4, batch_size: int | None = None,
    augment: bool = True,
) -> nn.Module:
    """Gradient ascent on the forget set: minimise the negative cross-entropy of the forget samples (``augment``:
    as in ``finetune``)."""
    set_seed(task.seed)
    loader = task.loader(task.forget, task.recipe.batch_size if batch_size is None else batch_size, augment=augment)
    fit(model, loader, _recipe(task, epochs, lr, batch_size, "constant"),
        loss_fn=lambda m, x, y: -F.cross_entropy(m(x), y), compile=task.compile, desc="gradient ascent")
    return model


@register_method
def neggrad_plus(
    model: nn.Module, task: UnlearnTask, *, epochs: float = 5, lr: float = 0.01, alpha: float = 0.99,
    batch_size: int | None = None, augment: bool = True,
) -> nn.Module:
    """NegGrad+: ``alpha * CE(retain batch) - (1 - alpha) * CE(forget batch)`` over the retain set, the forget set
    cycled alongside (Kurmanji et al. 2023, Eq. 5); ``augment`` applies to both sets."""
    set_seed(task.seed)
    bs = task.recipe.batch_size if batch_size is None else batch_size
    forget_batches = task.loader(task.forget, bs, augment=augment).forever()

    def loss(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xf, yf = next(forget_batches)
        return alpha * F.cross_entropy(m(x), y) - (1 - alpha) * F.cross_entropy(m(xf), yf)

    fit(model, task.loader(task.retain, bs, augment=augment), _recipe(task, epochs, lr, batch_size), loss_fn=loss,
        compile=task.compile, desc="neggrad+")
    return model


def reinit_head(model: nn.Module) -> None:
    """NatMU's ``-i`` (its ``init_linear``): a fresh Xavier-normal head weight with ReLU gain, the trained bias kept."""
    nn.init.xavier_normal_(model.head.weight, gain=nn.init.calculate_gain("relu"))
