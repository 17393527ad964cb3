"""Many models of one architecture trained at once: a stacked ensemble (``torch.func.stack_module_state`` + ``vmap``).

Each member keeps its own initial weights and its own data order (its own loader). One step runs the N forward
and backward passes as one batched computation (vmap turns the N convolutions into one grouped convolution) and
one optimiser step on the stacked tensors. SGD and AdamW act elementwise, so this is each member's own step: the
result equals training the members one after another with ``train.fit`` up to float rounding. BatchNorm in
training mode updates its running statistics in place on the stacked buffers, member by member.

Measured on the 2-core CPU in NCHW memory (airbench 32/64/64, 4 members x 1,024 images, batch 128): 1.55x the time
of 4 sequential ``fit`` runs while the machine was quiet (0.60x while other jobs loaded it), so on a CPU it saves
nothing; the gain it is for is on a GPU, where one small model leaves the device idle (not yet measured: ``make
gpu-check``). The oracle ensemble trains with it there (``train_oracles``, ``evaluation.stacked``).
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import UserError
from .checkpoint import build_model
from .data import DatasetSpec, InMemoryLoader, training_loader
from .train import Lookahead, Recipe, autocast, lr_factor, make_optimizer, norm_biases, prepare_for_device, set_seed


def fit_stacked(models: list[nn.Module], loaders: list[InMemoryLoader], recipe: Recipe, *,
                precision: str | None = None) -> list[dict]:
    """Train ``models`` in place, member ``i`` on ``loaders[i]``, with ``recipe`` and cross-entropy (the recipe's
    label smoothing), as ``train.fit`` would one by one; returns one record per epoch (mean loss over members)."""
    if len(models) != len(loaders) or not models:
        raise UserError(f"fit_stacked needs one loader per model (got {len(models)} models, {len(loaders)} loaders)")
    if len({len(loader) for loader in loaders}) > 1:
        raise UserError("fit_stacked: the members' loaders must give the same number of batches")
    device = loaders[0].device
    for model in models:
        prepare_for_device(model, device).train()
    params, buffers = stack_module_state(models)
    template = copy.deepcopy(models[0]).to("meta")
    by_id = {id(p): name for name, p in models[0].named_parameters()}
    special = [params[by_id[id(p)]] for p in norm_biases(models[0])] if recipe.norm_bias_lr_scale != 1 else ()
    optimizer = make_optimizer(params.values(), recipe, special)
    steps_per_epoch = len(loaders[0])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps_per_epoch, recipe))
    state = {**params, **buffers}
    lookahead = Lookahead(state) if recipe.lookahead else None

    def member_loss(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(template, (p, b), (x,)), y, label_smoothing=recipe.label_smoothing)

    losses_of = vmap(member_loss, randomness="different")
    total_steps = math.ceil(recipe.epochs * steps_per_epoch)
    history, step = [], 0
    for epoch in range(1, math.ceil(recipe.epochs) + 1):
        start, loss_sum, seen = time.perf_counter(), torch.zeros((), device=device), 0
        for batches in zip(*loaders):
            if step >= total_steps:
                break
            x = torch.stack([xb for xb, _ in batches])
            y = torch.stack([yb for _, yb in batches])
            with autocast(device, precision):
                losses = losses_of(params, buffers, x, y)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            scheduler.step()
            step += 1
            if lookahead is not None and step % recipe.lookahead == 0:
                lookahead.update(state, recipe.lookahead_decay * (step / total_steps) ** 3)
            loss_sum += losses.detach().float().mean() * x.shape[1]
            seen += x.shape[1]
        if lookahead is not None and epoch == math.ceil(recipe.epochs):
            lookahead.update(state, 1.0)
        loss = (loss_sum / max(seen, 1)).item()
        if not math.isfinite(loss):
            raise FloatingPointError(f"stacked training: loss became {loss} in epoch {epoch}; lower the learning rate")
        seconds = time.perf_counter() - start
        history.append({"epoch": epoch, "loss": loss, "seconds": seconds, "images_per_s": len(models) * seen / seconds})
    with torch.no_grad():
        for i, model in enumerate(models):
            model.load_state_dict({name: state[name][i] for name in model.state_dict()})
            model.eval()
    return history


def train_oracles(model_config: dict, retain_x: torch.Tensor, retain_y: torch.Tensor, spec: DatasetSpec, recipe: Recipe,
                  seeds: list[int], device: torch.device, precision: str | None = None) -> list[nn.Module]:
    """Retrain oracles from fresh weights, one per seed, trained at once: member ``i`` is what the ``retrain``
    method with ``from_initial=False`` and seed ``seeds[i]`` trains (weights drawn after seeding the global
    generator, the fast net's whitening from the retain images, batches in the seed's order), up to float rounding."""
    models, loaders = [], []
    for seed in seeds:
        set_seed(seed)
        model = build_model(model_config)
        model.init_from_data(retain_x)
        models.append(model)
        loaders.append(training_loader(retain_x, retain_y, spec, recipe.batch_size, seed=seed, device=device,
                                       augment=recipe.augment))
    fit_stacked(models, loaders, recipe, precision=precision)
    return models
