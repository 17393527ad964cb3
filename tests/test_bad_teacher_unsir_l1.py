"""Bad Teacher, UNSIR and l1-sparse: their pieces by hand, bad input, and forgetting a digit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import helpers
from unlearnbench import UserError
from unlearnbench.methods import run_method
from unlearnbench.methods.l1_sparse import l1_weight
from unlearnbench.methods.unsir import error_maximising_noise, first_per_class
from unlearnbench.train import predict_logits


# settings that forget on the width-4 fixture (the quick preset's, except l1_sparse's lr: 0.05 on width 8)
FORGETTING = {
    "bad_teacher": {"epochs": 5, "lr": 1e-3, "batch_size": 32},
    "unsir": {"lr": 3e-3, "repair_epochs": 3, "noise_copies": 20},
    "l1_sparse": {"epochs": 10, "lr": 0.01},
}


@pytest.mark.parametrize("method", FORGETTING)
def test_each_method_forgets_a_digit_and_keeps_the_rest(trained_task, method):
    model, task = trained_task("resnet18_w4")
    before = helpers.accuracy(model, task.retain)
    assert helpers.accuracy(model, task.forget) > 0.8
    run_method(method, model, task, FORGETTING[method])
    assert helpers.accuracy(model, task.forget) < 0.25
    assert helpers.accuracy(model, task.retain) > before - 0.05


def test_l1_weight_decays_linearly_per_epoch():
    assert [l1_weight(8.0, t, 4) for t in range(5)] == [8.0, 6.0, 4.0, 2.0, 0.0]
    assert l1_weight(8.0, 3, 2.5) == 0.0


def test_l1_sparse_without_penalty_is_finetuning_and_the_penalty_shrinks_the_weights(trained_task):
    norms = {}
    for name, hparams in (("finetune", {}), ("l1_sparse", {"alpha": 0.0}), ("l1_sparse", {"alpha": 1e-3})):
        model, task = trained_task("resnet18_w4")
        run_method(name, model, task, {"epochs": 1, "lr": 0.01, **hparams})
        norms[name, hparams.get("alpha")] = sum(p.abs().sum() for p in model.parameters()).item()
    assert norms["l1_sparse", 0.0] == pytest.approx(norms["finetune", None], rel=1e-5)
    # in each of the 18 SGD steps (1,170 retain images, batch 64) the l1 gradient alpha * sign(w) moves a weight
    # by lr * alpha towards 0 (more with momentum); allow half of that for weights that cross 0
    n_params = sum(p.numel() for p in model.parameters())
    assert norms["finetune", None] - norms["l1_sparse", 1e-3] > 0.5 * 18 * 0.01 * 1e-3 * n_params


def test_first_per_class_keeps_the_first_images_of_each_class_in_order():
    labels = torch.tensor([2, 0, 2, 1, 0, 2, 0, 1])
    assert first_per_class(labels, 2).tolist() == [0, 1, 2, 3, 4, 7]
    assert first_per_class(labels, 1).tolist() == [0, 1, 3]


def test_error_maximising_noise_raises_the_forget_class_loss(trained_task):
    model, task = trained_task("resnet18_w4")
    classes = torch.tensor([3])
    start = error_maximising_noise(model, classes, task, batch=16, steps=0, lr=0.1, l2=0.1)
    noise = error_maximising_noise(model, classes, task, batch=16, steps=25, lr=0.1, l2=0.1)
    assert noise.shape == (16, 1, 8, 8)
    ce = lambda x: torch.nn.functional.cross_entropy(predict_logits(model, x), torch.full((16,), 3))  # noqa: E731
    assert ce(noise) > ce(start) + 1.0


@pytest.mark.parametrize("method, hparams, message", [
    ("bad_teacher", {"retain_fraction": 0.0}, "retain_fraction"),
    ("bad_teacher", {"temperature": 0.0}, "temperature"),
    ("bad_teacher", {"lr": -1.0}, "lr"),
    ("bad_teacher", {"schedule": "linear"}, "schedule"),
    ("unsir", {"noise_steps": 0}, "positive"),
    ("unsir", {"lr": 0.0}, "lr"),
    ("l1_sparse", {"alpha": -1e-4}, "alpha"),
    ("l1_sparse", {"lr": 0.0}, "lr"),
])
def test_bad_hyperparameters_are_user_errors(trained_task, method, hparams, message):
    model, task = trained_task("resnet18_w4")
    with pytest.raises(UserError, match=message):
        run_method(method, model, task, hparams)


def test_unsir_refuses_random_forgetting(trained_task):
    model, task = trained_task("resnet18_w4")
    random = dataclasses.replace(task, scenario={"kind": "random", "fraction": 0.1})
    with pytest.raises(UserError, match="applies to full_class, sub_class scenarios, not random"):
        run_method("unsir", model, random, {})



@pytest.mark.parametrize("groups", ["label", "fine"])
def test_unsir_repairs_on_the_first_images_of_each_label_or_fine_label(trained_task, monkeypatch, groups):
    # SSD's sub-class UNSIR takes the first 500 retain images of each fine class (the whole CIFAR-20 retain set),
    # not of each superclass. Here superclass = digit // 3 over the digits 0-8 (3 is forgotten), fine label = digit.
    import unlearnbench.methods.task as task_module
    from unlearnbench.data import to_float

    model, task = trained_task("resnet18_w4")
    keep = task.retain.y < 9
    fine = task.retain.y[keep]
    retain = dataclasses.replace(task.retain, x=task.retain.x[keep], y=fine // 3, index=None, fine=fine)
    task = dataclasses.replace(task, retain=retain, forget=dataclasses.replace(task.forget, y=task.forget.y // 3))
    loaders = []
    monkeypatch.setattr(task_module, "fit", lambda model, loader, *a, **k: loaders.append(loader))
    run_method("unsir", model, task, {"noise_steps": 1, "noise_copies": 1, "retain_per_class": 2, "retain_groups": groups})
    key = retain.y if groups == "label" else fine
    firsts = torch.cat([torch.nonzero(key == c).flatten()[:2] for c in key.unique()]).sort().values
    assert len(firsts) == (6 if groups == "label" else 16)  # 3 superclasses or 8 digits, 2 images each
    torch.testing.assert_close(loaders[-1].x.cpu(), to_float(retain.x[firsts]), rtol=0, atol=0)  # the repair set
    torch.testing.assert_close(loaders[-1].y.cpu(), retain.y[firsts])  # trained on the superclass labels


def test_unsir_retain_groups_bad_input(trained_task):
    model, task = trained_task("resnet18_w4")
    with pytest.raises(UserError, match="fine labels"):
        run_method("unsir", model, task, {"retain_groups": "fine"})
    with pytest.raises(UserError, match="unknown retain_groups 'superclass'; valid: label, fine"):
        run_method("unsir", model, task, {"retain_groups": "superclass"})
