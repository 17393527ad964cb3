"""Random-label unlearning (Amnesiac, Graves et al., AAAI 2021, arXiv 2010.10981): give every forget sample a random
label and fine-tune on the relabelled forget set together with the retain set. SalUn and DEL's "localization + RL"
run the same step restricted to a mask (``relabel.train_on_random_labels``). Deviations: docs/deviations.md,
"SalUn ... and random-label / Amnesiac"."""

from __future__ import annotations

from typing import Literal

from torch import nn

from ..values import NonNegative, Positive, PositiveInt
from .registry import Paper, register_method
from .relabel import reinit_head as reinit_natmu_head
from .relabel import train_on_random_labels
from .task import UnlearnTask

AMNESIAC = Paper("Graves et al., AAAI 2021", "Amnesiac Machine Learning", arxiv="2010.10981",
                 implements="relabelling the forget set at random and fine-tuning (the random-label baseline)")


@register_method(paper=AMNESIAC)
def random_label(
    model: nn.Module, task: UnlearnTask, *, labels: Literal["other", "any"] = "other", epochs: Positive = 5,
    lr: Positive = 1.45e-4, optimizer: Literal["sgd", "adamw"] = "adamw", weight_decay: NonNegative = 8e-5,
    schedule: Literal["multistep", "cosine", "constant"] = "cosine", augment: bool = False,
    batch_size: PositiveInt | None = None, reinit_head: bool = False,
) -> nn.Module:
    """Amnesiac / random-label fine-tuning of all parameters. The defaults are NatMU's full-class baseline (AdamW,
    5 epochs, cosine, no augmentation); SSD's is ``epochs: 3, lr: 1e-4, weight_decay: 0, schedule: constant``.
    ``reinit_head`` draws a fresh classifier head weight first (NatMU's ``-i``, its sub-class script: Xavier-normal
    with ReLU gain, the bias kept)."""
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size, schedule=schedule, optimizer=optimizer,
                         weight_decay=weight_decay)
    if reinit_head:
        reinit_natmu_head(model)
    return train_on_random_labels(model, task, recipe, labels=labels, augment=augment, desc="random label")
