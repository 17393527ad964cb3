"""The training recipe (``train:`` blocks in the config) and its learning-rate schedule, without torch.

Planning validates recipes from this module; ``train.fit`` runs them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from . import UserError

SCHEDULES = ("multistep", "cosine", "triangular", "constant")


@dataclass
class Recipe:
    """A training recipe. Schedules are per step; ``milestones`` and ``warmup_epochs`` are in epochs.

    ``augment: false`` trains the original model and the retrain oracle without the data set's random crop and
    flip (Fisher masking's and DEL's default); methods pick their own augmentation. ``min_lr`` is the absolute
    learning rate the cosine schedule decays to: DEL's pretraining uses ``CosineAnnealingLR(eta_min=0.01 * lr)``,
    i.e. ``min_lr: 0.001`` at ``lr: 0.1``.

    The fast net's recipe (airbench94, arXiv 2404.00498) adds: ``schedule: triangular`` (the warm-up, then a linear
    decay to ``min_lr`` at the last step); ``lookahead: k`` (every ``k`` steps the weights and BatchNorm statistics
    move to a slow copy ``slow += (1 - d) * (fast - slow)``, then ``fast = slow``, with
    ``d = lookahead_decay * (step / total_steps)**3``; training ends on the slow copy); ``norm_bias_lr_scale``
    (BatchNorm biases train at ``lr * norm_bias_lr_scale`` with ``weight_decay / norm_bias_lr_scale``, so that
    their per-step decay ``lr * weight_decay`` is that of the other weights; airbench: 64).
    """

    epochs: float
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "multistep"  # multistep | cosine | triangular | constant
    milestones: list[float] = field(default_factory=list)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = True
    min_lr: float = 0.0
    lookahead: int = 0  # steps between lookahead updates; 0: off
    lookahead_decay: float = 0.95**5  # the slow weights' largest decay, reached at the last step (airbench)
    norm_bias_lr_scale: float = 1.0  # learning-rate multiplier of BatchNorm biases (airbench: 64)

    @classmethod
    def from_dict(cls, cfg: dict) -> "Recipe":
        """The recipe of a ``train:`` block; ``preset: <name>`` (``PRESETS``) fills in the named recipe's
        hyperparameters for the block's ``epochs`` and ``batch_size``, and the block's other keys override them."""
        cfg = dict(cfg)
        if "preset" in cfg:
            preset = cfg.pop("preset")
            if preset not in PRESETS:
                raise UserError(f"unknown training preset {preset!r}; valid: {', '.join(PRESETS)}")
            if "epochs" not in cfg:
                raise UserError(f"training preset {preset!r} needs epochs")
            cfg = {**PRESETS[preset](cfg["epochs"], cfg.get("batch_size", 512)), **cfg}
        known = {f.name for f in fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise UserError(f"unknown training option(s) {sorted(unknown)}; valid: preset, {', '.join(sorted(known))}")
        recipe = cls(**cfg)
        recipe.check()
        return recipe

    def check(self) -> None:
        if self.optimizer not in ("sgd", "adamw"):
            raise UserError(f"unknown optimizer {self.optimizer!r}; valid: sgd, adamw")
        if self.schedule not in SCHEDULES:
            raise UserError(f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        if not (self.lr > 0 and self.epochs > 0 and self.batch_size > 0):
            raise UserError(f"lr, epochs and batch_size must be positive (got {self.lr}, {self.epochs}, {self.batch_size})")
        if self.min_lr and self.schedule not in ("cosine", "triangular"):
            raise UserError(f"min_lr applies to the cosine and triangular schedules only (got schedule "
                            f"{self.schedule!r}); set schedule: cosine or drop min_lr")
        if not 0 <= self.min_lr < self.lr:
            raise UserError(f"min_lr must lie in [0, lr) (got min_lr {self.min_lr}, lr {self.lr})")
        if self.lookahead < 0 or int(self.lookahead) != self.lookahead:
            raise UserError(f"lookahead must be a whole number of steps, 0 for off (got {self.lookahead})")
        if not 0 <= self.lookahead_decay <= 1:
            raise UserError(f"lookahead_decay must lie in [0, 1] (got {self.lookahead_decay})")
        if not self.norm_bias_lr_scale > 0:
            raise UserError(f"norm_bias_lr_scale must be positive (got {self.norm_bias_lr_scale})")

    def to_dict(self) -> dict:
        return asdict(self)

    def unread(self) -> set[str]:
        """The settings this recipe's schedule and optimiser never read (a multistep schedule's milestones and gamma
        under another schedule, SGD's momentum and Nesterov under AdamW): a deep-merged ``train:`` block can carry
        them from the full scale, and a caption leaves them out."""
        return (({"milestones", "gamma"} if self.schedule != "multistep" else set())
                | ({"momentum", "nesterov"} if self.optimizer != "sgd" else set()))


def airbench(epochs: float, batch_size: int) -> dict:
    """airbench94's hyperparameters (Jordan, arXiv 2404.00498) on this project's mean-loss scale. airbench sums the
    loss over the batch and states lr 11.5 per 1024 examples with momentum 0.85, scaled by
    ``1024 * (1 + 1 / (1 - momentum))``; per example that is ``lr = 11.5 * B / (1024 * 7.67)`` on the mean loss at
    batch ``B`` (0.75 at 512); its decoupled weight decay, 0.0153 per 1024 examples (each step decays the weights
    by ``0.0153 * B / (1024 * 7.67)``), is ``0.0153 / 11.5`` on the same scale; BatchNorm biases at 64x the
    learning rate, Nesterov, label smoothing 0.2, a triangular schedule peaking at 23 % of training and ending at
    0.07x, lookahead every 5 steps. The warm-up starts near 0 (airbench: 0.2x)."""
    momentum = 0.85
    lr = 11.5 * batch_size / (1024 * (1 + 1 / (1 - momentum)))
    return {"epochs": epochs, "batch_size": batch_size, "lr": lr, "momentum": momentum, "nesterov": True,
            "weight_decay": 0.0153 / 11.5, "schedule": "triangular", "warmup_epochs": 0.23 * epochs,
            "min_lr": 0.07 * lr, "label_smoothing": 0.2, "lookahead": 5, "norm_bias_lr_scale": 64.0}


PRESETS = {"airbench": airbench}  # train: {preset: <name>, epochs: ..., batch_size: ...}


def lr_factor(step: int, steps_per_epoch: int, recipe: Recipe) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then multi-step decay, cosine decay (to
    ``min_lr / lr``, the form of ``CosineAnnealingLR``'s ``eta_min``), linear decay to ``min_lr / lr`` at the
    last step (triangular) or constant."""
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
    if recipe.schedule == "triangular":
        progress = (step + 1 - warmup) / max(1, total - warmup)
        floor = recipe.min_lr / recipe.lr
        return 1 - (1 - floor) * min(1.0, progress)
    return 1.0
