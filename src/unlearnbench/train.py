"""The one training loop: original models, retrain oracles and every fine-tuning unlearning method use ``fit``.

On CUDA it runs under bf16 autocast with channels_last memory and, optionally, ``torch.compile``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import UserError
from .data import InMemoryLoader

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


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


def make_optimizer(params: Iterable[nn.Parameter], recipe: Recipe) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


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


def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    return loss


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def prepare_for_device(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to ``device``; on CUDA use channels_last memory for convolution models."""
    model.to(device)
    if device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    return model


def autocast(device: torch.device):
    """bf16 autocast on CUDA, a no-op elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def fit(
    model: nn.Module,
    loader: InMemoryLoader,
    recipe: Recipe,
    *,
    loss_fn: LossFn | None = None,
    params: Iterable[nn.Parameter] | None = None,
    after_step: Callable[[], None] | None = None,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
    compile: bool = False,
    desc: str = "train",
) -> list[dict]:
    """Train ``model`` in place on ``loader`` with ``recipe``; returns one record per epoch.

    ``loss_fn(model, x, y)`` replaces the cross-entropy (gradient ascent, NegGrad+, distillation);
    ``params`` restricts the optimised parameters; ``after_step`` runs after each optimiser step (e.g. to
    re-impose a mask); ``on_epoch_end(epoch, model)`` records per-epoch metrics (epoch counts from 1).
    A fractional ``recipe.epochs`` stops mid-epoch.
    """
    device = loader.device
    prepare_for_device(model, device)
    loss_fn = loss_fn or cross_entropy(recipe.label_smoothing)
    optimizer = make_optimizer(params if params is not None else model.parameters(), recipe)
    steps_per_epoch = len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps_per_epoch, recipe))
    forward_model = torch.compile(model) if compile and device.type == "cuda" else model
    total_steps = math.ceil(recipe.epochs * steps_per_epoch)
    history, step = [], 0
    model.train()
    for epoch in range(1, math.ceil(recipe.epochs) + 1):
        start, seen, loss_sum = time.perf_counter(), 0, torch.zeros((), device=device)
        bar = tqdm(loader, desc=f"{desc} {epoch}/{math.ceil(recipe.epochs)}", leave=False, disable=None)
        for x, y in bar:
            if step >= total_steps:
                break
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                loss = loss_fn(forward_model, x, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()} at step {step}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if after_step is not None:
                after_step()
            step += 1
            seen += len(x)
            loss_sum += loss.detach() * len(x)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{seen / (time.perf_counter() - start):.0f}")
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "loss": (loss_sum / max(seen, 1)).item(), "seconds": seconds, "images_per_s": seen / seconds}
        history.append(record)
        log.info("%s epoch %d: loss %.4f, %.0f images/s", desc, epoch, record["loss"], record["images_per_s"])
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
            model.train()
    model.eval()
    return history


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024, device: torch.device | str | None = None) -> torch.Tensor:
    """Logits of ``model`` (eval mode, no augmentation) for uint8 or float images, as float32 on the CPU."""
    device = torch.device(device) if device is not None else device_of(model)
    prepare_for_device(model, device).eval()
    loader = InMemoryLoader(x, None, batch_size=batch_size, device=device)
    out = []
    for xb, _ in loader:
        with autocast(device):
            out.append(model(xb).float().cpu())
    return torch.cat(out)


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for but no CUDA GPU is visible; set device: auto or cpu")
    return torch.device(name)
