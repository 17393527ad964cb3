"""Mnemonic codes (Yamashita, Yamada, Shibata, "One-Shot Machine Unlearning with Mnemonic Code", ACML 2024).

Each class ``c`` gets one fixed random image ``xi_c`` (its mnemonic code), drawn once from a seeded generator.
During training every image is replaced by its class's code with probability ``t_mix`` (Algorithm 1; the training
distribution of Eq. 1 is ``t_mix p_xi + (1 - t_mix) p_data``); forgetting later needs only the codes.

Codes live in the network's input space, after normalisation, as in both the paper (N(0, 1), like standardised
images) and the official code (U[0, 1) inserted after ``Normalize``). Models here normalise inside ``forward``, so
``code_pixels`` maps a code to the pixel input that the model's normalisation turns back into the code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import UserError
from .data import DatasetSpec
from .train import LossFn

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
