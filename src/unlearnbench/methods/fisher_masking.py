"""Fisher masking (Liu, Sun, Wu, Zhou, "Unlearning with Fisher Masking", arXiv 2310.05331).

Score every input-to-output connection of the network by how much more the forget set than the remain set relies
on it, ``F_f - F_r`` (diagonal Fisher information with model-predicted labels), zero the top ``rho`` fraction in
one global ranking, then optionally fine-tune on the remain set. Conv weights are scored per ``(out, in)`` kernel
slice (the Fisher averaged over the kh x kw kernel), linear weights per element; biases and norm layers are never
masked. The paper's comparison masks with the same budget are the ``mask`` option (random, gradient magnitude,
activation). The accuracy-vs-epoch curves are recorded on the test split, as the official code's, outside the
method's timed wall time. Official code: Yufang-Liu/fisher_unlearning. Deviations: docs/deviations.md, "Fisher
masking".
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from torch import nn

from .. import UserError
from ..importance import batch_gradient_importance, cross_entropy, fisher_diagonal
from ..train import predict_logits
from ..values import Interval, NonNegative, Positive, PositiveInt
from .registry import Paper, register_method
from .task import Subset, UnlearnTask

FISHER_MASKING = Paper("Liu et al., arXiv 2023", "Unlearning with Fisher Masking", arxiv="2310.05331",
                       code="Yufang-Liu/fisher_unlearning",
                       implements="F_f - F_r connection scores, global top-rho masking, optional fine-tuning")


def maskable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights Fisher masking scores: every Conv2d and Linear weight and attention input projection."""
    weights = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            weights[f"{name}.weight"] = module.weight
        elif isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
            weights[f"{name}.in_proj_weight"] = module.in_proj_weight
    return weights


def following_batchnorm(model: nn.Module) -> dict[str, nn.BatchNorm2d]:
    """The BatchNorm registered right after each layer with as many channels (it normalises that layer in a ResNet),
    looking past a max-pool in between (the fast net's ``conv -> pool -> BatchNorm``; pooling commutes with zeroing)."""
    modules = [(n, m) for n, m in model.named_modules() if not any(m.children()) and not isinstance(m, nn.MaxPool2d)]
    return {name: after for (name, module), (_, after) in zip(modules, modules[1:])
            if isinstance(after, nn.BatchNorm2d) and getattr(module, "out_channels", None) == after.num_features}


@torch.no_grad()
def mean_channel_activation(
    model: nn.Module, x: torch.Tensor, batch_size: int, device, after_bn: bool = True,
) -> dict[str, torch.Tensor]:
    """Per output channel of every conv and linear layer but the classifier (as in the official code), the mean
    of ``relu(output)`` over images and positions; ``after_bn``: a conv's output is read after the BatchNorm that
    follows it (the official ``get_sequential_output``), else straight from the conv."""
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m is not model.head}
    if after_bn:
        layers.update({n: bn for n, bn in following_batchnorm(model).items() if n in layers})
    sums = {}  # layers whose forward never runs (attention's out_proj is called functionally) stay out

    def hook(name):
        def record(module, inputs, out):
            out = out.relu().float()
            per_image = out.mean((2, 3)) if out.ndim == 4 else out.reshape(len(out), -1, out.shape[-1]).mean(1)
            sums[name] = sums.get(name, 0) + per_image.sum(0)

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    try:
        predict_logits(model, x, batch_size=batch_size, device=device)
    finally:
        for h in handles:
            h.remove()
    return {f"{n}.weight": s / len(x) for n, s in sums.items()}


def slice_scores(per_weight: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Scores per ``(out, in)`` connection: conv scores averaged over the kernel, linear scores unchanged."""
    return {n: per_weight[n].flatten(2).mean(2) if w.ndim > 2 else per_weight[n] for n, w in weights.items()}


def top_fraction(scores: dict[str, torch.Tensor], rho: float) -> dict[str, torch.Tensor]:
    """Boolean masks marking the ``floor(rho * N)`` largest of all ``N`` scores (one global ranking)."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    k = math.floor(rho * len(flat))
    if k == 0:
        raise UserError(f"rho={rho} masks none of the {len(flat)} scored units; raise rho to at least {1 / len(flat):.2g}")
    chosen = torch.zeros(len(flat), dtype=torch.bool, device=flat.device)
    chosen[flat.float().topk(k).indices] = True
    return dict(zip(scores, chosen.split([s.numel() for s in scores.values()])))


@torch.no_grad()
def zero_connections(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
    """Zero the selected ``(out, in)`` slices (whole kernels for convs, single weights for linear layers)."""
    for n, m in masks.items():
        weights[n][m.view(weights[n].shape[:2])] = 0


@torch.no_grad()
def zero_channels(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Silence the selected output channels: their filters, biases and the affine of the BatchNorm that follows
    (``following_batchnorm``)."""
    after = following_batchnorm(model)
    for name, module in model.named_modules():
        mask = masks.get(f"{name}.weight")
        if mask is None:
            continue
        module.weight[mask] = 0
        if module.bias is not None:
            module.bias[mask] = 0
        if name in after:
            after[name].weight[mask] = 0
            after[name].bias[mask] = 0


def accuracy(model: nn.Module, subset: Subset, device) -> float:
    return (predict_logits(model, subset.x, device=device).argmax(1) == subset.y).float().mean().item()


@register_method(paper=FISHER_MASKING)
def fisher_masking(
    model: nn.Module,
    task: UnlearnTask,
    *,
    rho: Annotated[float, Interval(0, 1, closed="neither")] = 0.02,
    mask: Literal["fisher", "random", "gradient", "activation"] = "fisher",
    use_remain: bool = True,
    activation_after_bn: bool = True,
    fisher_batch_size: PositiveInt = 128,
    finetune_epochs: NonNegative = 0,
    lr: Positive = 0.1,
    batch_size: PositiveInt | None = None,
) -> nn.Module:
    """Zero the top-``rho`` connections by ``F_f - F_r``, then fine-tune on the remain set for ``finetune_epochs``.

    ``mask``: ``fisher`` (the paper), or a comparison mask with the same ``rho``: ``random`` (uniformly random
    connections), ``gradient`` (``|grad|`` of the forget loss per connection), ``activation`` (whole output
    channels by mean ``relu`` activation on the forget set minus the remain set); the last two never touch the
    classifier. ``activation_after_bn``: the activation mask reads each conv's channels after its BatchNorm (the
    official code), else before it. ``use_remain=False`` scores by ``F_f`` alone (the official ``only_forget``
    ablation).
    ``fisher_batch_size``: 128 is the official code's estimate from squared batch-mean gradients, 1 the
    per-sample Fisher. Fine-tuning (SGD on the unaugmented remain set, all weights free to
    regrow, learning rate x0.1 at 50% and 75% of the epochs, as in the official code). After masking (epoch 0) and
    after every fine-tuning epoch, ``task.record["history"]`` (saved in run.json) gets the official curves, the
    test accuracy on the remaining and on the forgotten classes (``test_retain_acc``, ``test_forget_acc``; where
    the task has those splits, the latter only where it is not empty), and the accuracy on D_f (``forget_acc``),
    all inside ``task.untimed()``.
    """
    device, weights = task.device, maskable_weights(model)
    bs = task.recipe.batch_size if batch_size is None else batch_size

    def fisher_of(subset: Subset) -> dict[str, torch.Tensor]:
        batches = task.loader(subset, bs if fisher_batch_size == 1 else fisher_batch_size, shuffle=False, augment=False)
        return fisher_diagonal(model, batches, per_sample=fisher_batch_size == 1)

    if mask == "activation":
        score = mean_channel_activation(model, task.forget.x, bs, device, activation_after_bn)
        if use_remain:
            remain = mean_channel_activation(model, task.retain.x, bs, device, activation_after_bn)
            score = {n: s - remain[n] for n, s in score.items()}
        zero_channels(model, top_fraction(score, rho))
    else:
        if mask == "fisher":
            score = fisher_of(task.forget)
            if use_remain:
                remain = fisher_of(task.retain)
                score = {n: s - remain[n] for n, s in score.items()}
        elif mask == "gradient":  # mean over forget batches of |batch gradient|; no classifier, as in the official code
            weights = {n: w for n, w in weights.items() if w is not model.head.weight}
            score = batch_gradient_importance(model, task.loader(task.forget, bs, shuffle=False, augment=False), cross_entropy, power=1)
        else:
            gen = torch.Generator().manual_seed(task.seed)
            score = {n: torch.rand(w.shape, generator=gen).to(w.device) for n, w in weights.items()}
        zero_connections(weights, top_fraction(slice_scores(score, weights), rho))

    history = []

    def record(epoch: int, m: nn.Module) -> None:
        with task.untimed():
            point = {"epoch": epoch, "forget_acc": accuracy(m, task.forget, device)}
            for key, subset in (("test_retain_acc", task.test_retain), ("test_forget_acc", task.test_forget)):
                if subset is not None and len(subset):
                    point[key] = accuracy(m, subset, device)
            history.append(point)

    record(0, model)
    if finetune_epochs > 0:
        recipe = task.recipe(epochs=finetune_epochs, lr=lr, batch_size=batch_size, schedule="multistep",
                             milestones=[0.5 * finetune_epochs, 0.75 * finetune_epochs])
        task.fit(model, task.loader(task.retain, bs, augment=False), recipe, on_epoch_end=record,
                 desc="fisher masking")
    task.record["history"] = history
    return model
