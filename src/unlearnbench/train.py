"""The one training loop: original models, retrain oracles and every fine-tuning unlearning method use ``fit``.

Precision (``precision: auto | bf16 | fp32``; ``auto`` is bf16 autocast on CUDA and fp32 elsewhere) and
``torch.compile`` are explicit settings that work on every device (inductor compiles CPU kernels with the
machine's C++ compiler). Convolution models use channels_last memory where it is correct (``uses_channels_last``).
Logits for metrics (``predict_logits``) are always computed in fp32.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import time
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import UserError
from .data import InMemoryLoader
from .recipe import Recipe, lr_factor  # noqa: F401  (public here too)

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]

PRECISIONS = ("auto", "bf16", "fp32")
CHECK_EVERY = 50  # steps between fit's host synchronisations (non-finite loss check, progress bar)
_PRECISION = contextvars.ContextVar("precision", default="auto")


def make_optimizer(params: Iterable[nn.Parameter], recipe: Recipe, norm_biases: Iterable[nn.Parameter] = ()) -> torch.optim.Optimizer:
    """The recipe's optimiser; ``norm_biases`` (BatchNorm biases) form a second group at ``lr * norm_bias_lr_scale``
    and ``weight_decay / norm_bias_lr_scale`` (the same decay per step)."""
    special = {id(p) for p in norm_biases}
    params = [p for p in params if p.requires_grad]
    groups = [{"params": [p for p in params if id(p) not in special]}]
    if special:
        scale = recipe.norm_bias_lr_scale
        groups.append({"params": [p for p in params if id(p) in special], "lr": recipe.lr * scale,
                       "weight_decay": recipe.weight_decay / scale})
    groups = [g for g in groups if g["params"]]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(groups, lr=recipe.lr, weight_decay=recipe.weight_decay)


def norm_biases(model: nn.Module) -> list[nn.Parameter]:
    return [m.bias for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase) and m.bias is not None]


class Lookahead:
    """airbench's lookahead (``Recipe``): a slow copy of the floating-point tensors of ``state`` (a model's
    ``state_dict()``: weights and BatchNorm statistics), which ``update`` moves towards ``state`` and copies back."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self.slow = {k: v.detach().clone() for k, v in state.items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, state: dict[str, torch.Tensor], decay: float) -> None:
        for name, slow in self.slow.items():
            slow.lerp_(state[name], 1 - decay)
            state[name].copy_(slow)


def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    return loss


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def uses_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Whether ``model`` runs in channels_last memory on ``device``: convolution models on CUDA, and on the CPU those
    without a strided 1x1 convolution (oneDNN trains the fast net about twice as fast in that layout on one core;
    torch 2.14's CPU backward of a strided 1x1 convolution in it is wrong: docs/deviations.md, "Known library
    issues"). So ResNets stay NCHW on the CPU."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs or device.type not in ("cuda", "cpu"):
        return False
    return device.type == "cuda" or not any(m.kernel_size == (1, 1) and m.stride != (1, 1) for m in convs)


def prepare_for_device(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to ``device``, in channels_last memory where ``uses_channels_last``."""
    model.to(device)
    if uses_channels_last(model, device):
        model.to(memory_format=torch.channels_last)
    return model


@contextlib.contextmanager
def precision_scope(precision: str):
    """Make ``precision`` the default of ``fit`` and ``autocast`` inside the block (``run_method`` sets the task's)."""
    check_precision(precision)
    token = _PRECISION.set(precision)
    try:
        yield
    finally:
        _PRECISION.reset(token)


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")


def uses_bf16(device: torch.device, precision: str | None = None) -> bool:
    """Whether training runs under bf16 autocast: ``bf16``, or ``auto`` on CUDA (``None``: the scope's default)."""
    precision = precision or _PRECISION.get()
    check_precision(precision)
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(device: torch.device, precision: str | None = None):
    """bf16 autocast where ``uses_bf16``, a no-op otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, precision))


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
    precision: str | None = None,
    desc: str = "train",
) -> list[dict]:
    """Train ``model`` in place on ``loader`` with ``recipe``; returns one record per epoch.

    ``loss_fn(model, x, y)`` replaces the cross-entropy (gradient ascent, NegGrad+, distillation);
    ``params`` restricts the optimised parameters; ``after_step`` runs after each optimiser step (e.g. to
    re-impose a mask); ``on_epoch_end(epoch, model)`` records per-epoch metrics (epoch counts from 1).
    A fractional ``recipe.epochs`` stops mid-epoch. ``compile`` wraps the model in ``torch.compile`` on any
    device; ``precision`` (``auto | bf16 | fp32``, ``None``: the ``precision_scope`` default) sets autocast.
    A non-finite loss is detected on the device and raised every ``CHECK_EVERY`` steps and at the end of each
    epoch, so that the step loop never waits for the device.
    """
    device = loader.device
    prepare_for_device(model, device)
    loss_fn = loss_fn or cross_entropy(recipe.label_smoothing)
    special = norm_biases(model) if recipe.norm_bias_lr_scale != 1 else ()
    optimizer = make_optimizer(params if params is not None else model.parameters(), recipe, special)
    lookahead = Lookahead(model.state_dict()) if recipe.lookahead else None
    steps_per_epoch = len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps_per_epoch, recipe))
    forward_model = torch.compile(model) if compile else model
    bf16 = uses_bf16(device, precision)
    channels_last = uses_channels_last(model, device)
    total_steps = math.ceil(recipe.epochs * steps_per_epoch)
    history, step = [], 0
    counter = torch.zeros((), device=device)  # ``step`` on the device
    model.train()
    for epoch in range(1, math.ceil(recipe.epochs) + 1):
        start, seen = time.perf_counter(), 0
        loss_sum = torch.zeros((), device=device)
        first_bad = torch.full((2,), -1.0, device=device)  # (step, loss) of the first non-finite loss
        bar = tqdm(loader, desc=f"{desc} {epoch}/{math.ceil(recipe.epochs)}", leave=False, disable=None)
        for x, y in bar:
            if step >= total_steps:
                break
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(forward_model, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if after_step is not None:
                after_step()
            if lookahead is not None and (step + 1) % recipe.lookahead == 0:
                lookahead.update(model.state_dict(), recipe.lookahead_decay * ((step + 1) / total_steps) ** 3)
            detached = loss.detach().float()
            new_bad = (first_bad[0] < 0) & ~torch.isfinite(detached)
            first_bad = torch.where(new_bad, torch.stack([counter, detached]), first_bad)
            counter += 1
            step += 1
            seen += len(x)
            loss_sum += detached * len(x)
            if step % CHECK_EVERY == 0:
                _check_finite(first_bad, desc)
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", img_s=f"{seen / (time.perf_counter() - start):.0f}")
        _check_finite(first_bad, desc)
        if lookahead is not None and epoch == math.ceil(recipe.epochs):
            lookahead.update(model.state_dict(), 1.0)  # training ends on the slow weights
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


def _check_finite(first_bad: torch.Tensor, desc: str) -> None:
    """Raise if ``fit`` recorded a non-finite loss (one host synchronisation)."""
    step, value = first_bad.tolist()
    if step >= 0:
        raise FloatingPointError(f"{desc}: loss became {value} at step {int(step)}; lower the learning rate")


CUDA_INFERENCE_BATCH = 1024  # not yet measured on a GPU
CPU_INFERENCE_PIXELS = 64 * 32 * 32  # images x pixels per batch; fastest measured on a 2-core CPU (README, Overhead)


def inference_batch_size(x: torch.Tensor, device: torch.device) -> int:
    """The default batch of inference passes: 1024 on a GPU; on the CPU, as many images as fill 64 images of 32x32
    (64 at 32x32, 1024 at 8x8), between 64 and 1024. It sets the speed, not the logits (eval mode; bit for bit
    at batches of 32 and more on the CPUs measured, else to float32 rounding: tests/test_overhead.py)."""
    if device.type != "cpu":
        return CUDA_INFERENCE_BATCH
    return max(64, min(1024, CPU_INFERENCE_PIXELS // (x.shape[-2] * x.shape[-1])))


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: torch.Tensor, *, batch_size: int | None = None, device: torch.device | str | None = None,
    tta: bool = False,
) -> torch.Tensor:
    """Logits of ``model`` (eval mode) for uint8 or float images, as float32 on the CPU.
    ``tta`` (off by default; the workflow's cached logits and every metric never use it) averages airbench's
    flip + translate test-time augmentation (``tta_logits``), for data sets whose training flips.
    ``batch_size``: ``inference_batch_size(x, device)`` unless given.

    Always computed in fp32, whatever the training precision and any enclosing autocast, with cuDNN's TF32
    convolutions off: the loss- and likelihood-ratio attacks read log-probabilities of confident samples, which
    bf16's 8-bit mantissa would round (docs/deviations.md, Foundation).
    """
    device = torch.device(device) if device is not None else device_of(model)
    prepare_for_device(model, device).eval()
    batch_size = inference_batch_size(x, device) if batch_size is None else batch_size
    loader = InMemoryLoader(x, None, batch_size=batch_size, device=device)
    out = []
    cudnn = torch.backends.cudnn
    flags = dict(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic, allow_tf32=False)
    with torch.autocast(device.type, enabled=False), cudnn.flags(**flags):
        for xb, _ in loader:
            out.append(tta_logits(model, xb) if tta else model(xb).float())
    return torch.cat(out).cpu()


def tta_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """airbench's test-time augmentation: half the mean logits of ``x`` and its mirror image, plus half the mean
    over the mirror pairs of ``x`` shifted one pixel up-left and one pixel down-right (reflected borders)."""
    def mirrored(images):
        return (model(images).float() + model(images.flip(-1)).float()) / 2

    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    shifted = (mirrored(padded[..., :h, :w]) + mirrored(padded[..., 2:, 2:])) / 2
    return (mirrored(x) + shifted) / 2


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for but no CUDA GPU is visible; set device: auto or cpu")
    return torch.device(name)
