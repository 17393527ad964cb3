"""The CIFAR ResNet-18 (He et al. 2016, with a 3x3 stride-1 stem and no max-pool) without importing torchvision.

The modules, their names (hence every ``state_dict`` key), the forward pass and the initialisation are those of
torchvision's ``ResNet(BasicBlock, [2, 2, 2, 2])`` with the stem and stages rebuilt at ``width``, which is how the
model was built before; ``cifar_resnet18`` also draws the random numbers that building first consumed, so a seed
gives the same initial weights as before (``tests/test_overhead.py`` compares both builders). Importing torchvision
costs about 1.6 CPU seconds per job (its ``ops`` import ``torch._dynamo``), more than some methods take.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

_PARITY_DRAWS = ContextVar("parity_draws", default=True)


def _conv(n_in: int, n_out: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, kernel_size=kernel, stride=stride, padding=kernel // 2, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a shortcut (a strided 1x1 convolution where the shape changes)."""

    def __init__(self, n_in: int, n_out: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv(n_in, n_out, 3, stride)
        self.bn1 = nn.BatchNorm2d(n_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv(n_out, n_out, 3)
        self.bn2 = nn.BatchNorm2d(n_out)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 with a ``stem``x``stem`` first convolution of ``stride`` and an optional 3x3 max-pool."""

    def __init__(
        self, in_channels: int, width: int, num_classes: int, stem: int = 3, stride: int = 1, pool: bool = False
    ):
        super().__init__()
        self.conv1 = _conv(in_channels, width, stem, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if pool else nn.Identity()
        widths = [width, 2 * width, 4 * width, 8 * width]
        n_in = width
        for i, n_out in enumerate(widths, start=1):
            self.add_module(f"layer{i}", self._stage(n_in, n_out, stride=1 if i == 1 else 2))
            n_in = n_out
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _stage(n_in: int, n_out: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or n_in != n_out:  # created before the blocks, as torchvision does (the order of draws)
            downsample = nn.Sequential(_conv(n_in, n_out, 1, stride), nn.BatchNorm2d(n_out))
        return nn.Sequential(BasicBlock(n_in, n_out, stride, downsample), BasicBlock(n_out, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def cifar_resnet18(in_channels: int, width: int, num_classes: int) -> ResNet18:
    """The CIFAR ResNet-18. It first builds (and drops) torchvision's default ImageNet ResNet-18, as the former
    builder did, so that the weights drawn afterwards are the same (not inside ``weights_loaded_next``)."""
    if _PARITY_DRAWS.get():
        ResNet18(3, 64, num_classes, stem=7, stride=2, pool=True)
    return ResNet18(in_channels, width, num_classes)


@contextmanager
def weights_loaded_next():
    """Builds whose every weight is overwritten next (a checkpoint's ``load_state_dict``) skip the throwaway
    ImageNet ResNet-18 that only consumes random draws (about 0.1 CPU s per job; the global generator is seeded
    again before anything random runs: ``run_method``, ``relearn``)."""
    token = _PARITY_DRAWS.set(False)
    try:
        yield
    finally:
        _PARITY_DRAWS.reset(token)
