"""One-shot class forgetting with mnemonic codes (Yamashita, Yamada, Shibata, "One-Shot Machine Unlearning with
Mnemonic Code", ACML 2024, arXiv 2306.05670; official code: tomyamkum/OneShotMU-with-MNCode): the codes, the
training loss and the method in one file. Deviations: docs/deviations.md, "Mnemonic code".

Codes (Algorithm 1). Each class ``c`` gets one fixed random image ``xi_c`` (its mnemonic code), drawn once from a
seeded generator. During training every image is replaced by its class's code with probability ``t_mix`` (the
training distribution of Eq. 1 is ``t_mix p_xi + (1 - t_mix) p_data``); forgetting later needs only the codes.
Codes live in the network's input space, after normalisation, as in both the paper (N(0, 1), like standardised
images) and the official code (U[0, 1) inserted after ``Normalize``). Models here normalise inside ``forward``, so
``code_pixels`` maps a code to the pixel input that the model's normalisation turns back into the code.

Forgetting (``experiments.<exp>.mnemonic`` must be set; checked at parse time). One backward pass per class on its
code gives per-class squared gradients; every parameter moves by ``alpha_l * eta_i`` with ``eta_i = f_F,i / f_R,i``
(Eq. 6) and ``alpha_l = min(lambda1, lambda2 / max_l eta)`` per parameter tensor (Eq. 7); both signs are tried
(Eq. 5) and the one with the better score on the codes, ``(1 - acc on forgotten codes) + acc on remaining codes``,
is kept.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import UserError
from ..datasets import DatasetSpec
from ..importance import cross_entropy, per_sample_gradient_importance
from ..splits import class_index
from ..train import LossFn, predict_logits
from ..values import NonNegativeInt, Positive, PositiveInt
from .registry import Needs, Paper, register_method
from .task import Subset, UnlearnTask

log = logging.getLogger(__name__)

MNEMONIC_CODE = Paper("Yamashita et al., ACML 2024", "One-Shot Machine Unlearning with Mnemonic Code",
                      arxiv="2306.05670", code="tomyamkum/OneShotMU-with-MNCode",
                      implements="codes in training (Alg. 1), Fisher ratio shift (Eqs. 5-7)")
NEEDS_CODES = Needs("mnemonic", unless="images_per_class",
                    hint="set experiments.<exp>.mnemonic: {t_mix: 0.1} so that the original is trained with codes "
                         "(or images_per_class > 0 for the ours-w-data ablation)")

# ----------------------------------------------------------------------------------------------------------------
# The codes and the training loss (Algorithm 1)

DISTRIBUTIONS = ("normal", "uniform")


def mnemonic_settings(mnemonic: dict, seed: int) -> dict:
    """The ``experiments.<exp>.mnemonic`` entry with defaults: ``t_mix``, ``distribution`` (normal), ``seed``
    (the training seed)."""
    settings = {"distribution": "normal", "seed": seed, **mnemonic}
    if set(settings) != {"t_mix", "distribution", "seed"}:
        raise UserError(f"mnemonic settings {sorted(mnemonic)} are wrong; give t_mix and optionally distribution and seed")
    if not 0 < settings["t_mix"] <= 1:
        raise UserError(f"mnemonic t_mix must lie in (0, 1], got {settings['t_mix']}; the paper uses 0.1 (0.3 on CIFAR-10)")
    if settings["distribution"] not in DISTRIBUTIONS:
        raise UserError(f"unknown mnemonic distribution {settings['distribution']!r}; valid: {', '.join(DISTRIBUTIONS)}")
    return settings


def make_codes(num_classes: int, shape: tuple[int, ...], *, distribution: str = "normal", seed: int = 0) -> torch.Tensor:
    """One code per class, ``[num_classes, *shape]``: N(0, 1) (the paper) or U[0, 1) (the official code)."""
    gen = torch.Generator().manual_seed(seed)
    draw = torch.randn if distribution == "normal" else torch.rand
    return draw((num_classes, *shape), generator=gen)


def code_pixels(codes: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """The float pixel inputs that the model's normalisation maps onto ``codes``."""
    mean = torch.tensor(spec.mean).view(-1, 1, 1)
    std = torch.tensor(spec.std).view(-1, 1, 1)
    return codes * std + mean


def mnemonic_loss(pixels: torch.Tensor, t_mix: float, *, seed: int, label_smoothing: float = 0.0) -> LossFn:
    """Cross-entropy after replacing each (already augmented) image by its class's code with probability ``t_mix``.

    The replacement draws come from their own seeded generator, fresh at every step.
    """
    gen = torch.Generator(device=pixels.device).manual_seed(seed)

    def loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        replace = torch.rand(len(x), device=x.device, generator=gen) < t_mix
        x = torch.where(replace[:, None, None, None], pixels[y], x)
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    return loss


# ----------------------------------------------------------------------------------------------------------------
# Forgetting (Eqs. 5-7)

EPS = 1e-16  # the official code starts each summed Fisher at 1e-16 and then divides by the number of classes


def with_eps(mean: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """The official Fisher ``(eps + sum_i g_i^2) / n`` from the mean ``(1/n) sum_i g_i^2``: ``mean + eps / n``.

    Where ``g_i`` is exactly 0 for every sample this is ``eps / n``, so the ratio there is ``n_R / n_F`` times
    larger than with ``eps`` added after averaging (the paper does not say; the official ``get_fishers`` does this).
    """
    return {k: v + EPS / n for k, v in mean.items()}


def log_fisher_ratio(f_forget: torch.Tensor, f_remain: torch.Tensor) -> torch.Tensor:
    """``log eta = log f_F - log f_R`` with NaN -> 0 and +-inf -> the largest / smallest finite value."""
    r = f_forget.log() - f_remain.log()
    finite = r[r.isfinite()]
    if finite.numel() == 0:
        return torch.zeros_like(r)
    return r.nan_to_num(nan=0.0, posinf=finite.max().item(), neginf=finite.min().item())


def shifts(f_forget: dict[str, torch.Tensor], f_remain: dict[str, torch.Tensor], lambda1: float, lambda2: float) -> dict[str, torch.Tensor]:
    """``alpha_l * eta`` per parameter tensor (Eqs. 6-7) from Fishers that already hold their ``eps``, computed in
    log space: at most ``lambda2``, never inf or NaN."""
    out = {}
    for name, ff in f_forget.items():
        r = log_fisher_ratio(ff, f_remain[name])
        log_alpha = min(math.log(lambda1), math.log(lambda2) - r.max().item())
        out[name] = (r + log_alpha).exp()
    return out


def code_score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, forget: torch.Tensor, device) -> float:
    """``(1 - accuracy on the forgotten classes' inputs) + accuracy on the remaining classes' inputs``."""
    correct = (predict_logits(model, x, device=device).argmax(1) == y).float()
    return (1 - correct[forget].mean() + correct[~forget].mean()).item()


def forget_classes(task: UnlearnTask) -> torch.Tensor:
    return torch.tensor([class_index(c, task.spec.classes) for c in task.scenario["classes"]])


def fisher_inputs(task: UnlearnTask, images_per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The mnemonic codes with their classes, or ``images_per_class`` seeded training images of every class."""
    if images_per_class == 0:  # run_method checked that the task has codes (NEEDS_CODES)
        codes = task.mnemonic["codes"]
        return code_pixels(codes, task.spec), torch.arange(len(codes))
    x = torch.cat([task.forget.x, task.retain.x])
    y = torch.cat([task.forget.y, task.retain.y])
    k = min(images_per_class, int(torch.bincount(y, minlength=task.spec.num_classes).min()))
    gen = torch.Generator().manual_seed(task.seed)
    chosen = torch.cat([idx[torch.randperm(len(idx), generator=gen)[:k]] for idx in (torch.nonzero(y == c).flatten() for c in range(task.spec.num_classes))])
    return x[chosen], y[chosen]


@register_method(scenarios=("full_class",), paper=MNEMONIC_CODE, needs=(NEEDS_CODES,))  # the paper's only setting
def mnemonic_code(
    model: nn.Module, task: UnlearnTask, *, lambda1: Positive = 1e-3, lambda2: Positive = 10.0,
    images_per_class: NonNegativeInt = 0, batch_size: PositiveInt = 64,
) -> nn.Module:
    """Move every parameter by ``+-alpha_l * f_F / f_R`` (Eqs. 5-7); the Fisher diagonals are per-class squared
    gradients of the cross-entropy on each class's mnemonic code, averaged over the forgotten and over the
    remaining classes (Eq. 6). ``images_per_class`` > 0 is the paper's "ours-w-data" ablation: the same from that
    many real training images per class (the same number for every class), which needs no codes. The sign is
    chosen on the same inputs; ties keep the minus sign, as in the official code.
    """
    classes = forget_classes(task)
    if len(classes) == task.spec.num_classes:
        raise UserError("mnemonic_code: the scenario forgets every class, so no remaining class is left to compare with; forget fewer classes")
    x, y = fisher_inputs(task, images_per_class)
    forget = torch.isin(y, classes)

    def fisher(mask: torch.Tensor) -> dict[str, torch.Tensor]:
        batches = task.loader(Subset(x[mask], y[mask]), batch_size, shuffle=False, augment=False)
        return with_eps(per_sample_gradient_importance(model, batches, cross_entropy), int(mask.sum()))

    shift = shifts(fisher(forget), fisher(~forget), lambda1, lambda2)
    params = dict(model.named_parameters())
    original = {n: p.detach().clone() for n, p in params.items()}

    @torch.no_grad()
    def move(sign: int) -> None:
        for n, p in params.items():
            p.copy_(original[n] + sign * shift[n])

    scores = {}
    for sign in (1, -1):
        move(sign)
        scores[sign] = code_score(model, x, y, forget, task.device)
    best = 1 if scores[1] > scores[-1] else -1
    move(best)
    log.info("mnemonic_code: score %.3f with +, %.3f with -; kept %s", scores[1], scores[-1], "+" if best == 1 else "-")
    return model
