"""The training recipe (``train:`` blocks in the config) and its learning-rate schedule, without torch.

Planning validates recipes from this module; ``train.fit`` runs them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from . import UserError


@dataclass
class Recipe:
    """A training recipe. Schedules are per step; ``milestones`` and ``warmup_epochs`` are in epochs.

    ``augment: false`` trains the original model and the retrain oracle without the data set's random crop and
    flip (Fisher masking's and DEL's default); methods pick their own augmentation. ``min_lr`` is the absolute
    learning rate the cosine schedule decays to: DEL's pretraining uses ``CosineAnnealingLR(eta_min=0.01 * lr)``,
    i.e. ``min_lr: 0.001`` at ``lr: 0.1``.
    """

    epochs: float
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "multistep"  # multistep | cosine | constant
    milestones: list[float] = field(default_factory=list)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = True
    min_lr: float = 0.0

    @classmethod
    def from_dict(cls, cfg: dict) -> "Recipe":
        known = {f.name for f in fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise UserError(f"unknown training option(s) {sorted(unknown)}; valid: {', '.join(sorted(known))}")
        recipe = cls(**cfg)
        recipe.check()
        return recipe

    def check(self) -> None:
        if self.optimizer not in ("sgd", "adamw"):
            raise UserError(f"unknown optimizer {self.optimizer!r}; valid: sgd, adamw")
        if self.schedule not in ("multistep", "cosine", "constant"):
            raise UserError(f"unknown schedule {self.schedule!r}; valid: multistep, cosine, constant")
        if not (self.lr > 0 and self.epochs > 0 and self.batch_size > 0):
            raise UserError(f"lr, epochs and batch_size must be positive (got {self.lr}, {self.epochs}, {self.batch_size})")
        if self.min_lr and self.schedule != "cosine":
            raise UserError(f"min_lr applies to the cosine schedule only (got schedule {self.schedule!r}); set schedule: cosine or drop min_lr")
        if not 0 <= self.min_lr < self.lr:
            raise UserError(f"min_lr must lie in [0, lr) (got min_lr {self.min_lr}, lr {self.lr})")

    def to_dict(self) -> dict:
        return asdict(self)


def lr_factor(step: int, steps_per_epoch: int, recipe: Recipe) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then multi-step decay, cosine decay (to
    ``min_lr / lr``, the form of ``CosineAnnealingLR``'s ``eta_min``) or constant."""
    total = max(1, math.ceil(recipe.epochs * steps_per_epoch))
    warmup = round(recipe.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    if recipe.schedule == "multistep":
        epoch = step / steps_per_epoch
        return recipe.gamma ** sum(epoch >= m for m in recipe.milestones)
    if recipe.schedule == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        floor = recipe.min_lr / recipe.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return 1.0
