"""Fisher forgetting: the noise distribution by hand, seeding, bad input and forgetting a digits class."""

import copy

import pytest
import torch
from torch import nn

from unlearnbench import UserError
from unlearnbench.data import get_spec
from unlearnbench.methods import Subset, UnlearnTask, run_method
from unlearnbench.methods.fisher_forgetting import noise_scale
from unlearnbench.train import Recipe

import helpers

DIGITS_MODEL = "resnet18_w8"  # the trained model the thresholds below were measured on (helpers.TRAINED)


def test_noise_scale_of_a_matrix_by_hand():
    p = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fisher = torch.tensor([[1.0, 0.25], [0.0, 4.0]])
    mu, var = noise_scale(p, fisher, 0.01, is_head=False, forget_rows=[1])
    # 1/F = (1, 4 | 1e8 -> capped at 1e3, 0.25), times 0.01, averaged over dim 1: 0.025 and 5.00125; no x10
    torch.testing.assert_close(var, torch.tensor([[0.025, 0.025], [5.00125, 5.00125]]))
    torch.testing.assert_close(mu, p)  # forget rows apply to the classifier only


def test_noise_scale_of_the_classifier_by_hand():
    weight = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    fisher = torch.tensor([[1.0, 0.25], [0.0, 4.0], [0.0, 0.0]])
    mu, var = noise_scale(weight, fisher, 0.01, is_head=True, forget_rows=[2])
    # cap 1e2 on the classifier: rows 0.01 * (1, 4), (100, 0.25) -> means 0.025, 0.50125; row 2 forgotten: 1e-4;
    # then x10 on the classifier
    torch.testing.assert_close(var, torch.tensor([[0.25, 0.25], [5.0125, 5.0125], [1e-3, 1e-3]]))
    torch.testing.assert_close(mu, torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]))
    mu, var = noise_scale(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0]), 0.01, is_head=False, forget_rows=[])
    torch.testing.assert_close(var, torch.tensor([0.1, 100.0]))  # a 1-D parameter: 0.01 * (1, 1e3) * 10


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU())
        self.head = nn.Linear(3, 3)

    def forward(self, x):
        return self.head(self.features(x))


def tiny_task(kind: str = "full_class", seed: int = 0) -> UnlearnTask:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 1, 2, 2), dtype=torch.uint8, generator=gen)
    y = torch.arange(12) % 3
    return UnlearnTask(
        forget=Subset(x[y == 2], y[y == 2]), retain=Subset(x[y != 2], y[y != 2]), spec=get_spec("digits"),
        recipe=Recipe(epochs=1), initial_state=None, model_config={}, seed=seed, scenario={"kind": kind, "classes": ["2"]},
    )


def test_forgotten_class_row_is_redrawn_around_zero():
    original = Tiny()
    model = run_method("fisher_forgetting", copy.deepcopy(original), tiny_task(), {"alpha": 1e-12})
    # the forgotten row: mean 0, standard deviation sqrt(1e-3) = 0.03
    assert model.head.weight[2].abs().max() < 0.15 and model.head.bias[2].abs() < 0.15
    assert not torch.equal(model.head.weight[2], torch.zeros(3))
    # everything else moves by at most sqrt(1e-12 * 1e3 * 10) * 5 = 5e-4
    for (name, p), (_, q) in zip(model.named_parameters(), original.named_parameters()):
        keep = slice(0, 2) if name.startswith("head") else slice(None)
        torch.testing.assert_close(p[keep], q[keep], atol=5e-4, rtol=0)


@pytest.mark.parametrize("kind,hparams", [("random", {}), ("full_class", {"forget_class_rows": False})])
def test_classifier_rows_kept_outside_class_forgetting(kind, hparams):
    original = Tiny()
    model = run_method("fisher_forgetting", copy.deepcopy(original), tiny_task(kind), {"alpha": 1e-12, **hparams})
    torch.testing.assert_close(model.head.weight, original.head.weight, atol=5e-4, rtol=0)


def test_noise_is_seeded():
    runs = [run_method("fisher_forgetting", Tiny(), tiny_task(seed=s), {"estimator": e}) for s, e in
            [(0, "per_sample"), (0, "per_sample"), (1, "per_sample"), (0, "batch_mean")]]
    assert torch.equal(runs[0].features[1].weight, runs[1].features[1].weight)
    assert not torch.equal(runs[0].features[1].weight, runs[2].features[1].weight)
    assert not torch.equal(runs[0].features[1].weight, runs[3].features[1].weight)  # a different Fisher


@pytest.mark.parametrize("hparams,message", [({"alpha": 0.0}, "alpha must be positive"), ({"estimator": "exact"}, "unknown estimator")])
def test_bad_input(hparams, message):
    with pytest.raises(UserError, match=message):
        run_method("fisher_forgetting", Tiny(), tiny_task(), hparams)


@pytest.mark.parametrize("estimator", ["batch_mean", pytest.param("per_sample", marks=pytest.mark.slow)])
def test_forgets_a_digits_class(trained_task, digits, estimator):
    model, task = trained_task(DIGITS_MODEL)
    before = helpers.accuracies(model, digits)
    after = helpers.accuracies(run_method("fisher_forgetting", copy.deepcopy(model), task, {"estimator": estimator}), digits)
    assert before["train_forget"] > 0.9 and after["train_forget"] < 0.05 and after["test_forget"] < 0.05
    assert after["train_retain"] > before["train_retain"] - 0.1 and after["test_retain"] > before["test_retain"] - 0.1
