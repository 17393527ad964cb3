"""The reference points every paper compares against: the original model, the retrain oracle, fine-tuning on
the retain set, gradient ascent on the forget set and NegGrad+ (Kurmanji et al., NeurIPS 2023, arXiv 2302.09880,
Eq. 5). Deviations: docs/deviations.md, "Foundation (all papers)"."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import build_model
from ..values import Positive, PositiveInt
from .registry import Paper, register_method
from .task import UnlearnTask

BASELINE = Paper("common baseline", "a reference point of every paper here (no single source)")
NEGGRAD_PLUS = Paper("Kurmanji et al., NeurIPS 2023", "Towards Unbounded Machine Unlearning", arxiv="2302.09880",
                     code="meghdadk/SCRUB", implements="NegGrad+ loss (Eq. 5)")


@register_method(paper=BASELINE)
def original(model: nn.Module, task: UnlearnTask) -> nn.Module:
    """No unlearning: the original model, as the upper bound on utility and the lower bound on forgetting."""
    return model


@register_method(paper=BASELINE)
def retrain(model: nn.Module, task: UnlearnTask, *, from_initial: bool = True) -> nn.Module:
    """The oracle: training from scratch on the retain set with the original model's recipe.

    ``from_initial`` starts from the original model's stored initial weights (as NatMU's retrain does), so that
    the oracle differs from the original only by the forget set; ``False`` draws fresh weights with the seed.
    """
    fresh = build_model(task.model_config)
    if from_initial and task.initial_state is not None:
        fresh.load_state_dict(task.initial_state)
    fresh.init_from_data(task.retain.x)  # the fast net's whitening, from retain images only (no-op for other nets)
    loader = task.loader(task.retain, task.recipe.batch_size, augment=task.recipe.augment)
    task.fit(fresh, loader, task.recipe, desc="retrain")
    return fresh


@register_method(paper=BASELINE)
def finetune(
    model: nn.Module, task: UnlearnTask, *, epochs: Positive = 10, lr: Positive = 0.02,
    batch_size: PositiveInt | None = None, augment: bool = True,
) -> nn.Module:
    """Fine-tune on the retain set only, relying on catastrophic forgetting of the forget set. ``augment`` applies
    the data set's crop and flip (SalUn's code does; SSD's, DEL's and Fisher masking's code do not)."""
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size)
    task.fit(model, task.loader(task.retain, recipe.batch_size, augment=augment), recipe, desc="finetune")
    return model


@register_method(paper=BASELINE)
def gradient_ascent(
    model: nn.Module, task: UnlearnTask, *, epochs: Positive = 1, lr: Positive = 1e-4,
    batch_size: PositiveInt | None = None, augment: bool = True,
) -> nn.Module:
    """Gradient ascent on the forget set: minimise the negative cross-entropy of the forget samples (``augment``:
    as in ``finetune``)."""
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size, schedule="constant")
    task.fit(model, task.loader(task.forget, recipe.batch_size, augment=augment), recipe,
             loss_fn=lambda m, x, y: -F.cross_entropy(m(x), y), desc="gradient ascent")
    return model


@register_method(paper=NEGGRAD_PLUS)
def neggrad_plus(
    model: nn.Module, task: UnlearnTask, *, epochs: Positive = 5, lr: Positive = 0.01, alpha: float = 0.99,
    batch_size: PositiveInt | None = None, augment: bool = True,
) -> nn.Module:
    """NegGrad+: ``alpha * CE(retain batch) - (1 - alpha) * CE(forget batch)`` over the retain set, the forget set
    cycled alongside in its own seeded stream (Kurmanji et al. 2023, Eq. 5); ``augment`` applies to both sets."""
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size)
    forget_batches = task.loader(task.forget, recipe.batch_size, augment=augment, stream="forget").forever()

    def loss(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xf, yf = next(forget_batches)
        return alpha * F.cross_entropy(m(x), y) - (1 - alpha) * F.cross_entropy(m(xf), yf)

    task.fit(model, task.loader(task.retain, recipe.batch_size, augment=augment), recipe, loss_fn=loss,
             desc="neggrad+")
    return model
