"""NatMU: masks, class choice, partner draw, hybrids and labels, bad input, and forgetting a digit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import helpers
from unlearnbench import UserError
from unlearnbench.methods import run_method
from unlearnbench.methods.natmu import (
    assign_classes, confusable_ranking, draw_partners, make_hybrids, natmu_hybrids, natmu_masks,
)
from unlearnbench.train import predict_logits


@pytest.mark.parametrize("size", [8, 32])
@pytest.mark.parametrize("delta", [-0.19, -0.053, 0.0, 0.045, 0.5])
def test_masks_match_the_formula_at_edges_and_centre(size, delta):
    b = size // 2
    top = (b - 1) / b  # the ramp's value at the centre rows/columns
    clip = lambda v: min(max(v + delta, 0.0), 1.0)  # noqa: E731
    m = natmu_masks(size, delta)
    assert m.shape == (4, size, size)
    for k, along_rows in ((0, True), (1, False), (2, True), (3, False)):
        line = m[k, :, 0] if along_rows else m[k, 0, :]
        other = m[k].T if along_rows else m[k]
        assert torch.equal(other, other[:1].expand_as(other)), "constant across the other axis"
        edge, centre = (0.0, top) if k < 2 else (top, 0.0)
        for t, value in ((0, edge), (size - 1, edge), (b - 1, centre), (b, centre), (1, abs(edge - 1 / b))):
            assert line[t].item() == pytest.approx(clip(value))


def test_mask_means_match_the_official_values():
    assert natmu_masks(32, 0.0).mean().item() == pytest.approx(15 / 32)  # 0.469
    assert natmu_masks(32, -0.053).mean().item() == pytest.approx(0.419, abs=5e-4)


def test_ranking_puts_the_most_probable_other_classes_first_and_never_the_own_class():
    logits = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0, 9.0, 4.0]])
    ranking = confusable_ranking(logits, torch.tensor([0, 4]))
    assert ranking.tolist() == [[1, 2, 3, 4, 5], [5, 3, 2, 1, 0]]


def test_partners_are_drawn_without_replacement_from_the_requested_classes():
    retain_y = torch.tensor([0, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    classes = torch.tensor([[1, 2, 3, 0], [1, 2, 3, 2]])  # every retain image of classes 0, 1 and 2
    for seed in range(5):
        partners = draw_partners(classes, retain_y, torch.Generator().manual_seed(seed))
        assert torch.equal(retain_y[partners], classes)
        assert len(partners.unique()) == partners.numel()
    with pytest.raises(UserError, match="more retain images"):
        draw_partners(torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]]), retain_y, torch.Generator())


def test_over_requested_classes_send_their_surplus_down_the_ranking():
    ranking = torch.tensor([[1, 2, 3, 4, 5]] * 3)  # three forget samples of class 0 that all rank 1, 2, 3, 4 first
    capacity = torch.tensor([0, 2, 3, 3, 3, 3])
    classes = assign_classes(ranking, capacity, torch.Generator().manual_seed(0))
    assert (classes[:, 1:] == torch.tensor([2, 3, 4])).all()  # slot k keeps mask k
    assert sorted(classes[:, 0].tolist()) == [1, 1, 5]  # class 1 has room for two; the third walks to class 5
    assert (torch.bincount(classes.flatten(), minlength=6) <= capacity).all()
    with pytest.raises(UserError, match="retain set runs out"):
        assign_classes(ranking, torch.tensor([0, 1, 1, 1, 1, 1]), torch.Generator())


def test_hybrid_pixels_blend_forget_and_partner_with_the_masks():
    forget = torch.full((1, 1, 8, 8), 255, dtype=torch.uint8)
    partners = torch.zeros((1, 4, 1, 8, 8), dtype=torch.uint8)
    masks = natmu_masks(8, 0.0)
    hybrids = make_hybrids(forget, partners, masks)  # white forget, black partners: the hybrid is the mask itself
    assert torch.allclose(hybrids[:, 0], masks)
    partners[0, 2] = 255
    assert torch.equal(make_hybrids(torch.zeros_like(forget), partners, masks)[2, 0], 1 - masks[2])


def test_hybrids_carry_their_partners_labels_and_never_the_forget_label(trained_task):
    model, task = trained_task("resnet18_w4")
    hybrids, labels, partners = natmu_hybrids(model, task, -0.053, torch.Generator().manual_seed(0))
    n = len(task.forget)
    assert hybrids.shape == (4 * n, 1, 8, 8) and labels.shape == (4 * n,)
    assert torch.equal(labels, task.retain.y[partners.flatten()])
    assert not (labels == 3).any()
    assert len(partners.unique()) == 4 * n  # without replacement across all hybrids
    top4 = confusable_ranking(predict_logits(model, task.forget.x), task.forget.y)[:, :4]
    assert torch.equal(labels.view(n, 4), top4)  # enough retain images: exactly each sample's top-4, in order
    masks = natmu_masks(8, -0.053)[:, None]  # [4, 1, 8, 8]
    expected = masks * task.forget.x[0].float() / 255 + (1 - masks) * task.retain.x[partners[0]].float() / 255
    assert torch.allclose(hybrids[:4], expected)


@pytest.mark.parametrize("hparams, message", [
    ({"delta": 1.0}, "delta"), ({"delta": -1.5}, "delta"), ({"lr": 0.0}, "lr"), ({"lr": -1e-3}, "lr"),
])
def test_bad_hyperparameters_are_user_errors(trained_task, hparams, message):
    model, task = trained_task("resnet18_w4")
    with pytest.raises(UserError, match=message):
        run_method("natmu", model, task, hparams)


def test_too_few_classes_is_a_user_error(trained_task):
    model, task = trained_task("resnet18_w4")
    few = dataclasses.replace(task, spec=dataclasses.replace(task.spec, classes=("0", "1", "2", "3")))
    with pytest.raises(UserError, match="at least 5 classes"):
        run_method("natmu", model, few, {})


def test_natmu_forgets_a_digit_and_keeps_the_rest(trained_task):
    model, task = trained_task("resnet18_w4")
    before = helpers.accuracy(model, task.retain)
    assert helpers.accuracy(model, task.forget) > 0.8
    run_method("natmu", model, task, {"epochs": 5, "lr": 1e-3, "batch_size": 32})
    assert helpers.accuracy(model, task.forget) < 0.1
    assert helpers.accuracy(model, task.retain) > before - 0.05
