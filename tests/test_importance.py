"""Importance estimators: hand-computed values on a one-layer model, per-sample estimators against a loop."""

import pytest
import torch
from torch import nn

from unlearnbench.importance import (
    batch_gradient_importance,
    cross_entropy,
    fisher_diagonal,
    per_sample_gradient_importance,
    squared_logit_norm,
)


def scalar_model(w: float) -> nn.Module:
    """f(x) = w * x, one logit, one parameter."""
    model = nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(w)
    return model


def tiny_cnn(classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, classes)
    ).eval()


def batches_of(x, y, size):
    return [(x[i : i + size], None if y is None else y[i : i + size]) for i in range(0, len(x), size)]


def loop(model, x, y, fn):
    """The reference: one backward pass per sample, in a Python loop."""
    params = dict(model.named_parameters())
    total = {k: torch.zeros_like(p) for k, p in params.items()}
    for i in range(len(x)):
        for k, v in fn(model, x[i : i + 1], None if y is None else y[i : i + 1]).items():
            total[k] += v
    return {k: v / len(x) for k, v in total.items()}


def test_label_free_importance_by_hand():
    # f = w x, L_b = mean_i (w x_i)^2, dL_b/dw = 2 w mean_i x_i^2. w = 0.5, x = (1, 2 | 3):
    # batch means: 2*0.5*(1+4)/2 = 2.5 and 2*0.5*9 = 9; per sample: 1, 4, 9.
    x = torch.tensor([[1.0], [2.0], [3.0]])
    model = scalar_model(0.5)
    batched = batch_gradient_importance(model, batches_of(x, None, 2), squared_logit_norm, power=1)
    assert batched["weight"].item() == pytest.approx((2.5 + 9) / 2)
    squared = batch_gradient_importance(model, batches_of(x, None, 2), squared_logit_norm, power=2)
    assert squared["weight"].item() == pytest.approx((2.5**2 + 9**2) / 2)
    per_sample = per_sample_gradient_importance(model, batches_of(x, None, 2), squared_logit_norm, power=1)
    assert per_sample["weight"].item() == pytest.approx((1 + 4 + 9) / 3)


def test_signs_cancel_in_batch_means_but_not_per_sample():
    # gradients 2 w x^2 are all positive, so flip the sign of one through a negative weight... use CE instead:
    # two samples of a 2-class linear model with opposite labels and the same input give opposite gradients.
    model = nn.Linear(1, 2, bias=False)
    model.weight.data.zero_()
    x, y = torch.ones(2, 1), torch.tensor([0, 1])
    batched = batch_gradient_importance(model, batches_of(x, y, 2), cross_entropy)
    assert torch.count_nonzero(batched["weight"]) == 0
    per_sample = per_sample_gradient_importance(model, batches_of(x, y, 2), cross_entropy)
    # each sample: d CE / d w = (p - onehot) x = (+-0.5, -+0.5), squared 0.25
    torch.testing.assert_close(per_sample["weight"], torch.full((2, 1), 0.25))


@pytest.mark.parametrize("loss,power", [(cross_entropy, 2), (squared_logit_norm, 1)])
def test_per_sample_matches_loop(loss, power):
    model = tiny_cnn()
    model[1].running_mean.uniform_(-0.2, 0.2)  # eval-mode BatchNorm with non-trivial statistics
    x, y = torch.rand(10, 1, 6, 6), torch.randint(0, 3, (10,))

    def one(model, xi, yi):
        grads = torch.autograd.grad(loss(model(xi), yi), list(model.parameters()))
        return {k: g.abs().pow(power) for (k, _), g in zip(model.named_parameters(), grads)}

    expected = loop(model, x, y, one)
    got = per_sample_gradient_importance(model, batches_of(x, y, 4), loss, power=power, chunk_size=3)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-7)
    # batch size 1 makes the batch estimator a per-sample one
    got = batch_gradient_importance(model, batches_of(x, y, 1), loss, power=power)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-7)


def test_fisher_diagonal_matches_loop_over_samples_and_classes():
    model = tiny_cnn()
    x = torch.rand(7, 1, 6, 6)

    def one(model, xi, _):
        log_p = model(xi).log_softmax(-1)[0]
        out = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
        for c in range(len(log_p)):
            grads = torch.autograd.grad(log_p[c], list(model.parameters()), retain_graph=True)
            for (k, _), g in zip(model.named_parameters(), grads):
                out[k] += log_p[c].exp().detach() * g.square()
        return out

    expected = loop(model, x, None, one)
    got = fisher_diagonal(model, batches_of(x, None, 3), chunk_size=2)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-8)
    # with batches of one sample, the batch estimate is the per-sample one
    got = fisher_diagonal(model, batches_of(x, None, 1), per_sample=False)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-8)


def test_batch_fisher_by_hand():
    # f(x) = W x with W = 0 (2 classes, 1 input): p = (1/2, 1/2); d/dW mean_i log p(y|x_i) = mean_i (onehot_y - p) x_i.
    # x = (1, 3): for y = 0 the row gradient is (0.5 * 2, -0.5 * 2) = (1, -1); squared (1, 1), weight pbar = 0.5;
    # y = 1 gives the same, so F = 0.5 * 1 + 0.5 * 1 = 1 for both entries.
    model = nn.Linear(1, 2, bias=False)
    model.weight.data.zero_()
    got = fisher_diagonal(model, [(torch.tensor([[1.0], [3.0]]), None)], per_sample=False)
    torch.testing.assert_close(got["weight"], torch.ones(2, 1))


def test_estimators_leave_model_and_grads_untouched():
    model = tiny_cnn().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(4, 1, 6, 6), torch.randint(0, 3, (4,))
    batch_gradient_importance(model, batches_of(x, y, 2), cross_entropy)
    per_sample_gradient_importance(model, batches_of(x, y, 2), cross_entropy)
    fisher_diagonal(model, batches_of(x, y, 2), per_sample=False)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
