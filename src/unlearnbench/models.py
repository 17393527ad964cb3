"""Models by name: CIFAR ResNet-18 (with a width option), a small ViT for 32x32, torchvision's ViT-B/16, an MLP.

Every model is an ``ImageClassifier``: it takes float pixels in [0, 1], resizes them when the backbone needs a
fixed input size (ViT-B/16 at 224), normalises them with the data set's statistics and runs the backbone.
``model.head`` is the final linear classifier (DEL fine-tunes it, NatMU re-initialises it).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from itertools import pairwise
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import UserError
from .data import DatasetSpec, get_spec, to_float
from .fastnet import FastNet
from .resnet import cifar_resnet18  # torchvision's ResNet-18, without importing torchvision

MODELS: dict[str, Callable[..., "ImageClassifier"]] = {}


def register_model(fn):
    """Register a model builder ``fn(spec, **options) -> ImageClassifier`` under its name; a name registered twice
    (by another function) is an error, as for methods."""
    if fn.__name__ in MODELS and MODELS[fn.__name__] is not fn:
        first = MODELS[fn.__name__].__module__
        raise ValueError(f"model {fn.__name__!r} is registered twice ({first}, {fn.__module__})")
    MODELS[fn.__name__] = fn
    return fn


class ImageClassifier(nn.Module):
    pretrained: dict | None = None  # which pretrained weights the builder loaded (``vit_b_16``), else None

    def __init__(self, backbone: nn.Module, head_name: str, spec: DatasetSpec, input_size: int | None = None, in_channels: int | None = None):
        super().__init__()
        self.backbone = backbone
        self.head_name = head_name
        self.input_size = input_size
        self.repeat_channels = (in_channels or spec.channels) // spec.channels
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1), persistent=False)

    @property
    def head(self) -> nn.Linear:
        return self.backbone.get_submodule(self.head_name)

    def init_from_data(self, x: torch.Tensor) -> dict | None:
        """Run the backbone's data-dependent initialisation (``fastnet``'s whitening) on training images ``x``
        (uint8 or float in [0, 1]); returns what was done for the checkpoint's meta, None for other backbones."""
        if not hasattr(self.backbone, "init_from_data"):
            return None
        x = x[: getattr(self.backbone, "init_images", len(x))]
        self.backbone.init_from_data((to_float(x.cpu()) - self.mean.cpu()) / self.std.cpu())
        return {"init_from_data": type(self.backbone).__name__, "images": len(x)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if self.repeat_channels > 1:
            x = x.repeat(1, self.repeat_channels, 1, 1)
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self.backbone(x)


def create_model(name: str, dataset: str, **kwargs) -> ImageClassifier:
    """Build a registered model for a data set; ``kwargs`` are the model's options (e.g. ``width``)."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    try:
        return MODELS[name](get_spec(dataset), **kwargs)
    except TypeError as err:
        raise UserError(f"model {name!r}: {err}; fix the model options in the config") from None


@register_model
def resnet18(spec: DatasetSpec, width: int = 64) -> ImageClassifier:
    """ResNet-18, CIFAR variant: 3x3 stride-1 stem, no max-pool; ``width`` channels in the first stage (64 = full)."""
    return ImageClassifier(cifar_resnet18(spec.channels, width, spec.num_classes), "fc", spec)


@register_model
def airbench(spec: DatasetSpec, widths: tuple[int, ...] = (64, 256, 256)) -> ImageClassifier:
    """The airbench94-style fast net (``fastnet``): frozen patch whitening, conv groups of ``widths`` channels
    (64/256/256 as airbench94; e.g. 32/64/64 for a small one). Call ``init_from_data`` before training."""
    if not widths or any(int(w) != w or w < 1 for w in widths):
        raise UserError(f"airbench: widths must be positive integers (got {widths})")
    return ImageClassifier(FastNet(spec.channels, spec.size, spec.num_classes, tuple(widths)), "head", spec)


@register_model
def tiny_cnn(spec: DatasetSpec, channels: int = 16) -> ImageClassifier:
    """One convolution: conv 3x3 (``channels``) - BatchNorm - ReLU - 4x4 average pool - linear head ``fc``. Not a
    paper's model: it trains in seconds on digits (tests, trying a method out)."""
    net = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(spec.channels, channels, 3, padding=1), bn=nn.BatchNorm2d(channels), relu=nn.ReLU(),
        pool=nn.AdaptiveAvgPool2d(4), flat=nn.Flatten(), fc=nn.Linear(16 * channels, spec.num_classes),
    ))
    return ImageClassifier(net, "fc", spec)


ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}


@register_model
def mlp(spec: DatasetSpec, hidden: tuple[int, ...] = (1000,), activation: str = "sigmoid") -> ImageClassifier:
    """A fully connected net on the flattened image: ``fc1 .. fcN`` (widths ``hidden``, each followed by
    ``activation``) and the linear ``head``, PyTorch's default initialisation. The defaults are the MNIST model of
    Yamashita et al. (mnemonic code, App. A): 784-1000-10 with a sigmoid."""
    if activation not in ACTIVATIONS:
        raise UserError(f"mlp: unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    widths = [spec.channels * spec.size**2, *hidden]
    layers = [("flatten", nn.Flatten())]
    for i, (n_in, n_out) in enumerate(pairwise(widths), start=1):
        layers += [(f"fc{i}", nn.Linear(n_in, n_out)), (f"act{i}", ACTIVATIONS[activation]())]
    layers.append(("head", nn.Linear(widths[-1], spec.num_classes)))
    return ImageClassifier(nn.Sequential(OrderedDict(layers)), "head", spec)


@register_model
def vit_small(
    spec: DatasetSpec, patch_size: int = 4, depth: int = 6, dim: int = 256, heads: int = 8, mlp_dim: int = 512, dropout: float = 0.0
) -> ImageClassifier:
    """A small ViT trained from scratch at the data set's resolution (patch 4 on 32x32 gives 64 tokens)."""
    from torchvision.models import vision_transformer as tv_vit  # imported by the builders that use it only

    if spec.size % patch_size:
        raise UserError(f"vit_small: patch_size {patch_size} does not divide the image size {spec.size}")
    net = tv_vit.VisionTransformer(
        image_size=spec.size, patch_size=patch_size, num_layers=depth, num_heads=heads,
        hidden_dim=dim, mlp_dim=mlp_dim, dropout=dropout, num_classes=spec.num_classes,
    )
    net.conv_proj = nn.Conv2d(spec.channels, dim, kernel_size=patch_size, stride=patch_size)
    return ImageClassifier(net, "heads.head", spec)


@register_model
def vit_b_16(spec: DatasetSpec, weights: str = "imagenet") -> ImageClassifier:
    """torchvision's ViT-B/16 at 224x224 with a new head; ``weights``: ``imagenet`` (torchvision's
    ``IMAGENET1K_V1``: its cache, else a download), ``none`` or a local .pth path. ``model.pretrained`` records
    what was loaded (``pretrained_record``)."""
    from torchvision.models import vision_transformer as tv_vit

    net = tv_vit.vit_b_16()
    record = None
    if weights != "none":
        state, record = _vit_b_16_state(weights)
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise UserError(f"ViT-B/16 weights {weights} do not fit torchvision's vit_b_16 "
                            f"({str(err).splitlines()[0]})") from None
    net.heads.head = nn.Linear(net.hidden_dim, spec.num_classes)
    model = ImageClassifier(net, "heads.head", spec, input_size=224, in_channels=3)
    model.pretrained = record
    return model


def pretrained_record(path: str | Path) -> dict:
    """What a weights file is, for a checkpoint's meta: its name and the first 16 hex digits of its sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"source": "file", "weights": Path(path).name, "sha256": digest.hexdigest()[:16]}


def _vit_b_16_state(weights: str) -> tuple[dict, dict]:
    """The ImageNet state dict of ViT-B/16 and its ``pretrained_record``; every failure is one line."""
    from torchvision.models import vision_transformer as tv_vit

    enum = tv_vit.ViT_B_16_Weights.IMAGENET1K_V1
    file_name = enum.url.rsplit("/", 1)[-1]
    if weights != "imagenet":
        if not Path(weights).is_file():
            raise UserError(f"ViT-B/16 weights file {weights} does not exist; give the path of {file_name} "
                            "(model option weights) or use weights: imagenet")
        try:
            return torch.load(weights, map_location="cpu", weights_only=True), pretrained_record(weights)
        except Exception as err:  # noqa: BLE001
            first_line = (str(err).splitlines() or [""])[0]
            raise UserError(f"cannot read ViT-B/16 weights at {weights} ({type(err).__name__}: {first_line}); "
                            f"give the path of {file_name}") from None
    try:
        state = enum.get_state_dict(progress=False)
    except Exception as err:  # noqa: BLE001 - no network, proxy, checksum
        raise UserError(
            f"cannot fetch ViT-B/16 ImageNet weights ({type(err).__name__}); download {enum.url} where there is "
            "internet into $TORCH_HOME/hub/checkpoints/, or set the model option weights: /path/to/the.pth"
        ) from None
    return state, {"source": "torchvision", "weights": f"{type(enum).__name__}.{enum.name}"}
