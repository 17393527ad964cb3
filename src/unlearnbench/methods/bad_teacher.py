"""Bad Teacher: "Can Bad Teaching Induce Forgetting?" (Chundawat et al., AAAI 2023).

The student (the original model) is distilled, with temperature ``T``, towards an incompetent teacher (randomly
initialised) on the forget samples and towards the competent teacher (the original model) on a random subset of
the retain samples (Eq. 3-4): ``KL(t(x) || s(x))`` with ``t`` the incompetent teacher's softened output where the
sample is to be forgotten and the competent teacher's elsewhere. arXiv 2205.08096; the defaults follow the SSD
repository's run. Deviations: docs/deviations.md, "Bad Teacher, UNSIR, l1-sparse".
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import build_model
from ..train import predict_logits
from ..values import Fraction, NonNegative, Positive, PositiveInt
from .registry import Paper, register_method
from .relabel import reinit_head as reinit_natmu_head
from .task import Subset, UnlearnTask

BAD_TEACHER = Paper("Chundawat et al., AAAI 2023", "Can Bad Teaching Induce Forgetting? Unlearning in Deep Networks "
                    "using an Incompetent Teacher", arxiv="2205.08096",
                    implements="distillation from the incompetent and the competent teacher (Eq. 3-4)")


INCOMPETENT_SEED_OFFSET = 1_000_000  # the incompetent teacher of seed s is drawn with seed s + this offset


def incompetent_teacher(model_config: dict, seed: int) -> nn.Module:
    """The incompetent teacher of run seed ``seed``: a freshly initialised model of the experiment, drawn with its
    own seed (independent of the original's initial weights, as the official code's second draw is) and without
    touching the global generator. Bad Teacher distils from it and ZRF compares with it (``references``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + INCOMPETENT_SEED_OFFSET)
        return build_model(model_config)


@register_method(paper=BAD_TEACHER)
def bad_teacher(
    model: nn.Module,
    task: UnlearnTask,
    *,
    epochs: Positive = 1,
    lr: Positive = 1e-4,
    temperature: Positive = 1.0,
    retain_fraction: Fraction = 0.3,
    batch_size: PositiveInt = 256,
    weight_decay: NonNegative = 0.0,
    schedule: Literal["multistep", "cosine", "constant"] = "constant",
    reinit_head: bool = False,
) -> nn.Module:
    """Defaults: the SSD repository's blindspot run (1 epoch, Adam lr 1e-4, T = 1, 30 % of the retain set,
    batch 256, no augmentation). NatMU's baseline: ``retain_fraction: 1.0``, 5 epochs, batch 128, ``schedule: cosine``
    and its per-setting lr / weight decay / temperature; ``reinit_head`` (NatMU's ``-i``, its full-class script) gives
    the student a fresh classifier head after the competent teacher's outputs are taken from the original."""
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size, schedule=schedule, optimizer="adamw",
                         weight_decay=weight_decay)
    incompetent = incompetent_teacher(task.model_config, task.seed)
    generator = torch.Generator().manual_seed(task.seed)
    keep = torch.randperm(len(task.retain), generator=generator)[: max(1, round(retain_fraction * len(task.retain)))]
    retain_x = task.retain.x[keep.to(task.retain.x.device)]

    # The teachers are fixed and the images are not augmented: their softened outputs are computed once.
    teacher_logits = torch.cat([
        predict_logits(incompetent, task.forget.x, device=task.device),
        predict_logits(model, retain_x, device=task.device),
    ])
    targets = F.softmax(teacher_logits / temperature, dim=1)
    if reinit_head:
        reinit_natmu_head(model)  # drawn after the seeded incompetent teacher
    x = torch.cat([task.forget.x.cpu(), retain_x.cpu()])
    loader = task.loader(Subset(x, targets), batch_size, augment=False)

    def loss(m: nn.Module, xb: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(m(xb) / temperature, dim=1), teacher, reduction="batchmean")

    task.fit(model, loader, recipe, loss_fn=loss, desc="bad teacher")
    return model
