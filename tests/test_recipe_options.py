"""Recipe options of the papers' grids: ``augment: false`` for the original and the retrain oracle, and the
cosine schedule's floor ``min_lr``."""

import math

import pytest
import torch
from torch import nn

from unlearnbench import UserError, train
from unlearnbench.checkpoint import model_config
from unlearnbench.data import save_dataset, training_loader
from unlearnbench.methods import Subset, UnlearnTask, baselines
from unlearnbench.methods import task as task_module
from unlearnbench.steps import train as train_step
from unlearnbench.train import Recipe, cross_entropy, lr_factor

N = 256  # digits images used for training


def seen_images(monkeypatch, module, run) -> torch.Tensor:
    """The uint8 images every training step of ``run()`` saw, recorded through the loss of ``module.fit``."""
    seen = []

    def recording_fit(model, loader, recipe, *, loss_fn=None, **kw):
        inner = loss_fn or cross_entropy(recipe.label_smoothing)

        def loss(m, x, y):
            seen.append((x * 255).round().to(torch.uint8))
            return inner(m, x, y)

        return train.fit(model, loader, recipe, loss_fn=loss, **kw)

    monkeypatch.setattr(module, "fit", recording_fit)
    run()
    return torch.cat(seen)


def all_unaugmented(seen: torch.Tensor, images: torch.Tensor) -> bool:
    originals = {img.numpy().tobytes() for img in images}
    return all(img.numpy().tobytes() in originals for img in seen)


@pytest.mark.parametrize("augment", [False, True])
def test_original_model_trains_on_unaugmented_pixels_iff_augment_is_false(monkeypatch, tmp_path, digits, augment):
    data = {"train_x": digits["train_x"][:N], "train_y": digits["train_y"][:N]}
    save_dataset(data, tmp_path / "data.pt")
    recipe = {"epochs": 2, "batch_size": 64, "lr": 0.05, "augment": augment}
    model = {"name": "resnet18", "dataset": "digits", "options": {"width": 4}}
    seen = seen_images(monkeypatch, train_step, lambda: train_step.train_original(
        str(tmp_path / "data.pt"), model, recipe, seed=0, out=str(tmp_path / "original.pt"), device="cpu"))
    assert len(seen) == 2 * N  # two epochs of four full batches
    assert all_unaugmented(seen, data["train_x"]) is not augment  # digits' 1-pixel crop shifts most images


def test_retrain_oracle_honours_augment_false(monkeypatch, digits, digits_spec):
    keep = digits["train_y"][:N] != 3
    retain = Subset(digits["train_x"][:N][keep], digits["train_y"][:N][keep])
    task = UnlearnTask(
        forget=Subset(digits["train_x"][:N][~keep], digits["train_y"][:N][~keep]), retain=retain, spec=digits_spec,
        recipe=Recipe(epochs=2, batch_size=64, lr=0.05, augment=False), initial_state=None,
        model_config=model_config("resnet18", "digits", {"width": 4}),
    )
    seen = seen_images(monkeypatch, task_module, lambda: baselines.retrain(None, task))
    assert len(seen) == 2 * (len(retain) // 64) * 64
    assert all_unaugmented(seen, retain.x)


def test_cosine_schedule_ends_at_min_lr(monkeypatch, digits, digits_spec):
    optimizers, make = [], train.make_optimizer

    def recording_make(params, recipe, *rest):
        optimizers.append(make(params, recipe, *rest))
        return optimizers[-1]

    monkeypatch.setattr(train, "make_optimizer", recording_make)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    loader = training_loader(digits["train_x"][:128], digits["train_y"][:128], digits_spec, 32, seed=0, device="cpu")
    train.fit(model, loader, Recipe(epochs=2, lr=0.1, schedule="cosine", min_lr=0.001))
    assert optimizers[0].param_groups[0]["lr"] == pytest.approx(0.001)  # after the last of 2 x 4 steps


def test_cosine_floor_by_hand():
    floored, plain = Recipe(epochs=1, lr=0.1, schedule="cosine", min_lr=0.001), Recipe(epochs=1, lr=0.1, schedule="cosine")
    assert lr_factor(0, 10, floored) == 1.0
    assert lr_factor(5, 10, floored) == pytest.approx(0.505)  # halfway: (0.1 + 0.001) / 2 / 0.1
    assert lr_factor(10, 10, floored) == pytest.approx(0.01)
    # without a floor the schedule is the unchanged 0.5 (1 + cos(pi t)), so existing recipes train the same
    assert [lr_factor(s, 10, plain) for s in range(11)] == [0.5 * (1 + math.cos(math.pi * s / 10)) for s in range(11)]


@pytest.mark.parametrize("schedule", ["multistep", "constant"])
def test_min_lr_with_another_schedule_is_a_user_error(schedule):
    with pytest.raises(UserError, match="cosine and triangular schedules only.*set schedule: cosine or drop min_lr"):
        Recipe.from_dict({"epochs": 1, "schedule": schedule, "min_lr": 0.001})


def test_min_lr_must_lie_below_lr():
    with pytest.raises(UserError, match=r"min_lr must lie in \[0, lr\)"):
        Recipe.from_dict({"epochs": 1, "lr": 0.01, "schedule": "cosine", "min_lr": 0.01})


def test_from_dict_round_trips_the_new_keys():
    cfg = {"epochs": 30, "lr": 0.1, "weight_decay": 0.0, "schedule": "cosine", "augment": False, "min_lr": 0.001}
    recipe = Recipe.from_dict(cfg)
    assert (recipe.augment, recipe.min_lr) == (False, 0.001)
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    defaults = Recipe.from_dict({"epochs": 1})
    assert (defaults.augment, defaults.min_lr) == (True, 0.0)


def test_methods_recipes_drop_the_originals_floor(digits_spec):
    """A method's recipe (``task.recipe(...)``) keeps its own schedule: the original's floor does not leak into it."""
    original = Recipe(epochs=30, lr=0.1, weight_decay=0.0, schedule="cosine", augment=False, min_lr=0.001)
    task = UnlearnTask(forget=None, retain=None, spec=digits_spec, recipe=original, initial_state=None, model_config={})
    constant = task.recipe(epochs=3, lr=0.01, schedule="constant")  # validated: no "cosine schedule only" error
    assert constant.min_lr == 0.0
    assert task.recipe(epochs=3, lr=0.01, min_lr=1e-4).min_lr == 1e-4


def test_the_airbench_preset_scales_with_the_batch_and_yields_to_explicit_keys():
    """airbench94's lr 11.5 per 1024 summed examples at momentum 0.85 is 0.75 on the mean loss at batch 512."""
    recipe = Recipe.from_dict({"preset": "airbench", "epochs": 4, "batch_size": 512})
    assert recipe.lr == pytest.approx(11.5 * 512 / (1024 * (1 + 1 / 0.15)))
    assert recipe.lr == pytest.approx(0.75, abs=0.001)
    assert (recipe.schedule, recipe.nesterov, recipe.lookahead, recipe.label_smoothing) == ("triangular", True, 5, 0.2)
    assert recipe.warmup_epochs == pytest.approx(0.92) and recipe.min_lr == pytest.approx(0.07 * recipe.lr)
    # airbench94's decoupled weight decay, 0.0153 per 1024 examples: each SGD step decays the weights by
    # 0.0153 * B / (1024 * (1 + 1 / (1 - momentum))) (its groups' weight_decay is that divided by their lr)
    kilostep = 1024 * (1 + 1 / 0.15)
    assert recipe.lr * recipe.weight_decay == pytest.approx(0.0153 * 512 / kilostep)
    assert Recipe.from_dict({"preset": "airbench", "epochs": 4, "batch_size": 1024}).lr == pytest.approx(2 * recipe.lr)
    assert Recipe.from_dict({"preset": "airbench", "epochs": 4, "augment": False, "lr": 0.5}).lr == 0.5
    with pytest.raises(UserError, match="unknown training preset 'airbnb'; valid: airbench"):
        Recipe.from_dict({"preset": "airbnb", "epochs": 4})
    with pytest.raises(UserError, match="needs epochs"):
        Recipe.from_dict({"preset": "airbench"})
