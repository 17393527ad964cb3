"""A fast CIFAR-10 network in the style of airbench94 (K. Jordan, "94% on CIFAR-10 in 3.29 seconds on a single
GPU", arXiv 2404.00498; descends from hlb-CIFAR10 and D. Page's ResNet-9 work), written from the paper's description.

The network, in order:

1. a frozen 2x2 patch-whitening convolution (``Whitening``): its filters are the eigenvectors of the covariance of
   2x2 patches of training images, scaled by the inverse square root of their eigenvalues, each used with both
   signs; its bias is learned. ``init_from_data`` sets the filters; until then they are random.
2. three conv groups ``conv 3x3 -> max-pool 2 -> BatchNorm -> GELU -> conv 3x3 -> BatchNorm -> GELU`` with
   ``widths`` channels (airbench94: 64/256/256). Convolutions have no bias and start as identity maps on their first
   ``in_channels`` filters (``dirac``); BatchNorms have no learned scale (their ``weight`` is a buffer of ones, so no
   method ever sees it as a parameter) and airbench's running-statistics momentum 0.4 (PyTorch's convention).
3. a global max-pool and a linear ``head`` without bias whose output is multiplied by ``1 / 9`` (``scale``).

Deviations: the whitening bias is learned throughout training (airbench: only for the first 3 epochs); pooling
rounds down as airbench's on 32x32 images and rounds up only where rounding down would shrink the image to nothing
(8x8 digits), so the net also runs on small test images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BN_MOMENTUM = 0.4  # airbench's batchnorm_momentum 0.6 in PyTorch's convention (weight of the new batch)
WHITEN_EPS = 5e-4  # added to the patch covariance's eigenvalues before the inverse square root (airbench)
HEAD_SCALE = 1 / 9  # airbench's scaling_factor on the logits
WHITEN_IMAGES = 5000  # the whitening reads the first 5,000 training images (airbench)


class Whitening(nn.Module):
    """A frozen ``kernel x kernel`` convolution with ``2 * in_channels * kernel**2`` outputs and a learned bias."""

    def __init__(self, in_channels: int, kernel: int = 2):
        super().__init__()
        self.kernel = kernel
        out_channels = 2 * in_channels * kernel**2
        weight = torch.empty(out_channels, in_channels, kernel, kernel)
        nn.init.kaiming_uniform_(weight, a=5**0.5)  # nn.Conv2d's default, until ``init_from_data``
        self.register_buffer("weight", weight)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, eps: float = WHITEN_EPS) -> None:
        """Set the filters from normalised images ``x`` (N, C, H, W): eigenvectors ``v`` of the covariance of all
        ``kernel x kernel`` patches, as filters ``v / sqrt(lambda + eps)`` and their negatives."""
        c, k = x.shape[1], self.kernel
        moments = torch.zeros(c * k * k + 1, c * k * k + 1, dtype=torch.float64)
        for chunk in x.split(500):  # sums of products of (patch, 1), in float64
            patches = chunk.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
            patches = torch.cat([patches, torch.ones(len(patches), 1)], 1).double()
            moments += patches.T @ patches
        n, mean = moments[-1, -1], moments[-1, :-1] / moments[-1, -1]
        covariance = moments[:-1, :-1] / n - torch.outer(mean, mean)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = (eigenvectors / (eigenvalues + eps).sqrt()).T.reshape(-1, c, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight))


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with a learned shift and a fixed scale of 1 (the ``weight`` becomes a buffer of ones)."""
    bn = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
    del bn.weight
    bn.register_buffer("weight", torch.ones(channels))
    return bn


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: min(in_channels, out_channels)])
    return conv


class ConvGroup(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, ceil_pool: bool):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels)
        self.pool = nn.MaxPool2d(2, ceil_mode=ceil_pool)
        self.norm1 = batch_norm(out_channels)
        self.act1 = nn.GELU()
        self.conv2 = conv3x3(out_channels, out_channels)
        self.norm2 = batch_norm(out_channels)
        self.act2 = nn.GELU()


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class FastNet(nn.Sequential):
    """The airbench-style backbone for ``size x size`` images with ``channels`` channels (module docstring)."""

    def __init__(self, channels: int, size: int, num_classes: int, widths: tuple[int, ...] = (64, 256, 256)):
        super().__init__()
        self.whiten = Whitening(channels)
        self.act = nn.GELU()
        size, in_channels = size - self.whiten.kernel + 1, self.whiten.out_channels
        for i, width in enumerate(widths, start=1):
            ceil_pool = size // 2 == 0
            self.add_module(f"group{i}", ConvGroup(in_channels, width, ceil_pool))
            size, in_channels = -(-size // 2) if ceil_pool else size // 2, width
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(in_channels, num_classes, bias=False)
        self.scale = Scale(HEAD_SCALE)

    init_images = WHITEN_IMAGES

    def init_from_data(self, x: torch.Tensor) -> None:
        """The data-dependent initialisation: the whitening filters from normalised training images."""
        self.whiten.init_from_data(x)
