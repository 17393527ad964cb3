import math

import pytest
import torch
from torch import nn

from unlearnbench import UserError
from unlearnbench.checkpoint import load_checkpoint, model_config
from unlearnbench.data import get_spec, save_dataset, training_loader
from unlearnbench.methods import Subset, UnlearnTask, mnemonic, run_method
from unlearnbench.methods.mnemonic import shifts
from unlearnbench.mnemonic_codes import code_pixels, make_codes, mnemonic_loss, mnemonic_settings
from unlearnbench.models import create_model
from unlearnbench.pipeline import train_original
from unlearnbench.train import Recipe, fit, predict_logits

SPEC = get_spec("digits")
RECIPE = Recipe(epochs=12, batch_size=64, lr=0.05, weight_decay=5e-4, schedule="cosine", warmup_epochs=1)


def test_codes_are_seeded_shaped_and_drawn_from_the_chosen_distribution():
    a = make_codes(10, (1, 8, 8), distribution="normal", seed=3)
    assert a.shape == (10, 1, 8, 8)
    assert torch.equal(a, make_codes(10, (1, 8, 8), distribution="normal", seed=3))
    assert not torch.equal(a, make_codes(10, (1, 8, 8), distribution="normal", seed=4))
    assert a.min() < -1 and a.max() > 1 and abs(a.mean()) < 0.2
    u = make_codes(10, (1, 8, 8), distribution="uniform", seed=3)
    assert u.min() >= 0 and u.max() < 1
    # the model's own normalisation turns the pixels back into the codes
    model = create_model("resnet18", "digits", width=4)
    assert torch.allclose((code_pixels(a, SPEC) - model.mean) / model.std, a, atol=1e-6)


def test_settings_defaults_and_errors():
    assert mnemonic_settings({"t_mix": 0.1}, seed=7) == {"t_mix": 0.1, "distribution": "normal", "seed": 7}
    for bad in ({"t_mix": 0}, {"t_mix": 1.5}, {"t_mix": 0.1, "distribution": "laplace"}, {"tmix": 0.1}):
        with pytest.raises(UserError):
            mnemonic_settings(bad, seed=0)


class Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(10))
        self.seen = None

    def forward(self, x):
        self.seen = x
        return self.w.expand(len(x), 10)


def test_mnemonic_loss_replaces_images_by_their_class_code_with_probability_t_mix():
    pixels = code_pixels(make_codes(10, (1, 8, 8), seed=0), SPEC)
    x, y = torch.rand(2000, 1, 8, 8), torch.arange(2000) % 10
    model = Recorder()
    mnemonic_loss(pixels, 1.0, seed=0)(model, x, y)
    assert torch.equal(model.seen, pixels[y])
    mnemonic_loss(pixels, 0.3, seed=0)(model, x, y)
    replaced = (model.seen == pixels[y]).flatten(1).all(1)
    kept = (model.seen == x).flatten(1).all(1)
    assert torch.all(replaced ^ kept) and 0.25 < replaced.float().mean() < 0.35


def test_shifts_follow_eqs_6_and_7_by_hand():
    f_forget = {"a": torch.tensor([4.0, 1.0, 0.0]), "b": torch.tensor([1.0, 1.0]), "c": torch.tensor([float("nan"), 2.0])}
    f_remain = {"a": torch.tensor([1.0, 1.0, 0.0]), "b": torch.tensor([2.0, 4.0]), "c": torch.tensor([1.0, 1.0])}
    out = shifts(f_forget, f_remain, lambda1=1.0, lambda2=2.0)
    # a: eta = [4, 1, 1 (0/0 with eps)], alpha = min(1, 2/4) = 0.5
    assert torch.allclose(out["a"], torch.tensor([2.0, 0.5, 0.5]))
    # b: eta = [0.5, 0.25], alpha = min(1, 2/0.5) = 1
    assert torch.allclose(out["b"], torch.tensor([0.5, 0.25]))
    # c: the NaN ratio counts as eta = 1; eta = [1, 2], alpha = min(1, 2/2) = 1
    assert torch.allclose(out["c"], torch.tensor([1.0, 2.0]))
    # a ratio that overflows float32 stays finite and is capped at lambda2
    huge = shifts({"d": torch.tensor([3e38, 1.0])}, {"d": torch.tensor([0.0, 1.0])}, lambda1=1.0, lambda2=2.0)["d"]
    assert torch.isfinite(huge).all() and huge.max() == pytest.approx(2.0, rel=1e-5)


def _task(digits, *, codes=None, forget_class=3, x_available=True, scenario=None):
    forget = digits["train_y"] == forget_class
    subset = (lambda m: Subset(digits["train_x"][m], digits["train_y"][m])) if x_available else (lambda m: Subset(torch.empty(0, 1, 8, 8, dtype=torch.uint8), None))
    return UnlearnTask(
        forget=subset(forget), retain=subset(~forget), spec=SPEC, recipe=RECIPE, initial_state=None,
        model_config=model_config("resnet18", "digits", {"width": 4}),
        scenario=scenario or {"kind": "full_class", "classes": [str(forget_class)]},
        mnemonic=None if codes is None else {"codes": codes, "t_mix": 0.1, "distribution": "normal", "seed": 0},
    )


def test_forgetting_needs_no_training_data_and_keeps_the_minus_sign_on_a_tie(digits):
    model = create_model("resnet18", "digits", width=4)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    task = _task(digits, codes=make_codes(10, (1, 8, 8), seed=0), x_available=False)
    # lambda2 caps every shift at 1e-7, too little to change any code's prediction: equal scores keep w - alpha * eta
    model = run_method("mnemonic_code", model, task, {"lambda1": 1.0, "lambda2": 1e-7})
    moves = torch.cat([(p.detach() - before[n]).flatten() for n, p in model.named_parameters()])
    assert torch.isfinite(moves).all() and (moves <= 0).all() and (moves < 0).any()


def test_the_sign_with_the_better_code_score_is_kept(digits, monkeypatch):
    scores = iter([1.5, 0.5])  # + is scored first, then -
    monkeypatch.setattr(mnemonic, "code_score", lambda *args: next(scores))
    model = create_model("resnet18", "digits", width=4)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    run_method("mnemonic_code", model, _task(digits, codes=make_codes(10, (1, 8, 8), seed=0), x_available=False), {})
    moves = torch.cat([(p.detach() - before[n]).flatten() for n, p in model.named_parameters()])
    assert (moves >= 0).all() and (moves > 0).any()


@pytest.mark.parametrize(
    "kwargs, hparams, match",
    [
        ({}, {}, r"experiments\.<exp>\.mnemonic"),
        ({"scenario": {"kind": "random", "fraction": 0.1}}, {}, "full_class"),
        ({"scenario": {"kind": "full_class", "classes": list(range(10))}}, {}, "every class"),
        ({}, {"lambda1": 0.0}, "positive"),
    ],
)
def test_bad_inputs_are_user_errors(digits, kwargs, hparams, match):
    codes = None if not hparams and not kwargs else make_codes(10, (1, 8, 8), seed=0)
    with pytest.raises(UserError, match=match):
        run_method("mnemonic_code", create_model("resnet18", "digits", width=4), _task(digits, codes=codes, **kwargs), hparams)


def _accuracies(model, digits, forget_class=3):
    pred, y = predict_logits(model, digits["test_x"]).argmax(1), digits["test_y"]
    hit = pred == y
    return hit[y == forget_class].float().mean().item(), hit[y != forget_class].float().mean().item()


def test_a_model_trained_with_codes_forgets_a_class_in_one_shot(digits):
    codes = make_codes(10, (1, 8, 8), seed=0)
    torch.manual_seed(0)
    model = create_model("resnet18", "digits", width=8)
    loader = training_loader(digits["train_x"], digits["train_y"], SPEC, 64, seed=0, device="cpu")
    fit(model, loader, RECIPE, loss_fn=mnemonic_loss(code_pixels(codes, SPEC), 0.1, seed=0))
    forget_before, retain_before = _accuracies(model, digits)
    assert forget_before > 0.9 and retain_before > 0.9
    task = _task(digits, codes=codes, x_available=False)
    task.model_config = model_config("resnet18", "digits", {"width": 8})
    model = run_method("mnemonic_code", model, task, {"lambda1": 3e-3, "lambda2": 10.0})
    forget_after, retain_after = _accuracies(model, digits)
    assert forget_after <= 0.05, (forget_before, retain_before, forget_after, retain_after)
    # the paper loses 1 point on MNIST; this 8-channel net on 8x8 digits keeps ~0.64 of 0.98 (chance: 0.1)
    assert retain_after >= 0.5, (forget_before, retain_before, forget_after, retain_after)


def test_train_original_stores_the_codes_it_trained_with(digits, tmp_path):
    small = {k: (v[:256] if k.startswith("train") else v) for k, v in digits.items()}
    save_dataset(small, tmp_path / "data.pt")
    model = {"name": "resnet18", "dataset": "digits", "options": {"width": 4}}
    train = {"epochs": 1, "batch_size": 64, "lr": 0.05}
    train_original(str(tmp_path / "data.pt"), model, train, 5, str(tmp_path / "a.pt"), device="cpu", mnemonic={"t_mix": 0.2})
    train_original(str(tmp_path / "data.pt"), model, train, 5, str(tmp_path / "b.pt"), device="cpu")
    stored = load_checkpoint(tmp_path / "a.pt")["meta"]["mnemonic"]
    assert {k: stored[k] for k in ("t_mix", "distribution", "seed")} == {"t_mix": 0.2, "distribution": "normal", "seed": 5}
    assert torch.equal(stored["codes"], make_codes(10, (1, 8, 8), seed=5))
    assert "mnemonic" not in load_checkpoint(tmp_path / "b.pt")["meta"]
    assert not math.isnan(load_checkpoint(tmp_path / "a.pt")["meta"]["history"][0]["loss"])
