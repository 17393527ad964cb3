import pytest
import torch
from torch import nn

from unlearnbench import UserError
from unlearnbench.data import InMemoryLoader
from unlearnbench.localize import (
    channel_scores, criticality, forget_gradient, localize, reset, restrict_training, top_budget,
)
from unlearnbench.train import Recipe, fit


def test_channel_score_is_the_mean_of_the_top_h_entries_with_h_a_tenth_of_the_output_channels():
    score = torch.zeros(20, 3)
    score[:, 0], score[:, 1], score[:, 2] = 3.0, 1.0, 0.0  # h = floor(0.1 * 20) = 2 -> (3 + 1) / 2
    score[5] = torch.tensor([0.0, 8.0, 4.0])  # -> (8 + 4) / 2
    out = channel_scores(score)
    assert out.shape == score.shape
    assert torch.all(out[5] == 6.0) and torch.all(out[torch.arange(20) != 5] == 2.0)


def test_channel_score_edge_cases():
    conv = torch.arange(8 * 2 * 3 * 3, dtype=torch.float).reshape(8, 2, 3, 3)  # C_out = 8 < 10: h = 1, the row max
    assert torch.equal(channel_scores(conv), conv.amax((1, 2, 3), keepdim=True).expand_as(conv))
    wide = torch.rand(50, 2)  # h = 5 exceeds the row length 2: the whole row
    assert torch.allclose(channel_scores(wide), wide.mean(1, keepdim=True).expand_as(wide))
    assert torch.allclose(channel_scores(conv, None), conv.mean((1, 2, 3), keepdim=True).expand_as(conv))  # ViT: plain mean
    bias = torch.tensor([3.0, 1.0])
    assert torch.equal(channel_scores(bias), bias)  # 1-D tensors keep their per-entry scores


def _constructed():
    """w [10, 2] and b [10], all weights 2 resp. 1; grad of w row i = (i, 0), grad of b = (17, 0, ..., 0)."""
    params = {"w": torch.full((10, 2), 2.0), "b": torch.ones(10)}
    grads = {"w": torch.stack([torch.arange(10.0), torch.zeros(10)], 1), "b": torch.zeros(10)}
    grads["b"][0] = 17.0
    return params, grads


def test_del_mask_selects_whole_channels_by_weighted_gradient_under_a_global_budget():
    params, grads = _constructed()
    scores = criticality(params, grads, weighted=True, channel=True)  # |theta g|: w row i -> 2i (row max, h = 1)
    assert torch.equal(scores["w"][:, 1], 2 * torch.arange(10.0))
    mask = top_budget(scores, 0.17)  # int(0.17 * 30) = 5 of 30 scalars: rows 9 (18), 8 (16) of w and b[0] (17)
    expected_w = torch.zeros(10, 2, dtype=torch.bool)
    expected_w[8:] = True
    assert torch.equal(mask["w"], expected_w)
    assert mask["b"].tolist() == [True] + [False] * 9


def test_per_parameter_criteria_select_single_entries():
    params, grads = _constructed()
    expected_w = torch.zeros(10, 2, dtype=torch.bool)
    expected_w[6:, 0] = True
    weighted = top_budget(criticality(params, grads, weighted=True, channel=False), 0.17)  # 18, 17, 16, 14, 12
    salun = top_budget(criticality(params, grads, weighted=False, channel=False), 0.17)  # |g|: 17, 9, 8, 7, 6
    for mask in (weighted, salun):
        assert torch.equal(mask["w"], expected_w) and mask["b"].tolist() == [True] + [False] * 9


def test_budget_counts_exactly_and_is_validated():
    scores = {"a": torch.rand(7, 3), "b": torch.rand(5)}
    for budget, count in ((0.3, 7), (1.0, 26), (0.04, 1)):
        mask = top_budget(scores, budget)
        assert sum(int(m.sum()) for m in mask.values()) == count
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(UserError, match=r"\(0, 1\]"):
            top_budget(scores, bad)
    with pytest.raises(UserError, match="selects none"):
        top_budget(scores, 0.01)


def test_forget_gradient_is_the_summed_cross_entropy_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(10, 1, 2, 2), torch.randint(3, (10,))
    grads = forget_gradient(model, x, y, batch_size=3)
    p = torch.softmax(model(x), 1)
    err = p - nn.functional.one_hot(y, 3)  # d CE / d logits per sample
    assert torch.allclose(grads["1.weight"], err.T @ x.flatten(1), atol=1e-5)
    assert torch.allclose(grads["1.bias"], err.sum(0), atol=1e-5)


def test_layer_and_random_localizations():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # 12 + 4 + 8 + 2 = 26 scalars
    deep = localize(model, None, None, "deepest", 0.5)  # 13: the last bias (2), weight (8) and 3 entries of 0.bias
    assert deep["1.bias"].all() and deep["1.weight"].all() and deep["0.bias"].tolist() == [False, True, True, True]
    assert not deep["0.weight"].any()
    shallow = localize(model, None, None, "shallowest", 0.5)  # 13: the first weight (12) and 0.bias[0]
    assert shallow["0.weight"].all() and shallow["0.bias"].tolist() == [True, False, False, False]
    random_a, random_b = (localize(model, None, None, "random", 0.5, seed=s) for s in (0, 1))
    assert sum(int(m.sum()) for m in random_a.values()) == 13
    assert any(not torch.equal(random_a[n], random_b[n]) for n in random_a)
    with pytest.raises(UserError, match="valid: del, salun"):
        localize(model, None, None, "middle", 0.5)
    with pytest.raises(UserError, match="forget labels"):
        localize(model, torch.rand(2, 3), None, "del", 0.5)


def test_reset_copies_the_source_into_the_mask_only():
    model = nn.Linear(3, 2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    source = {"weight": torch.full((2, 3), 7.0), "bias": torch.full((2,), 7.0)}
    mask = {"weight": torch.tensor([[True, False, False], [False, False, True]]), "bias": torch.tensor([False, True])}
    reset(model, mask, source)
    for n, p in model.named_parameters():
        assert torch.all(p[mask[n]] == 7.0) and torch.equal(p[~mask[n]], before[n][~mask[n]])


def test_restrict_training_keeps_unmasked_entries_fixed_under_weight_decay_and_momentum():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in model.named_parameters()}
    mask["0.weight"][1] = True
    mask["1.bias"][:] = True
    params, after_step = restrict_training(model, mask)
    assert {id(p) for p in params} == {id(model[0].weight), id(model[1].bias)}
    loader = InMemoryLoader(torch.rand(32, 3), torch.randint(2, (32,)), batch_size=8, shuffle=True)
    fit(model, loader, Recipe(epochs=3, lr=0.5, weight_decay=0.1, momentum=0.9), params=params, after_step=after_step)
    for n, p in model.named_parameters():
        assert torch.equal(p[~mask[n]], before[n][~mask[n]])
        assert not torch.equal(p[mask[n]], before[n][mask[n]]) or not mask[n].any()
