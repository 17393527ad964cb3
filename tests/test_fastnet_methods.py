"""Every registered method runs on the fast net (``airbench``, tiny widths) as on ResNet-18: finite weights out."""

import time

import pytest
import torch

from unlearnbench.checkpoint import build_model, model_config
from unlearnbench.data import training_loader
from unlearnbench.methods import METHODS, Subset, UnlearnTask, run_method
from unlearnbench.methods.mnemonic_code import make_codes
from unlearnbench.train import Recipe, fit

CONFIG = model_config("airbench", "digits", {"widths": [4, 8, 8]})
RECIPE = Recipe(epochs=2, batch_size=64, lr=0.5, momentum=0.85, nesterov=True, schedule="triangular",
                warmup_epochs=0.5, label_smoothing=0.2, lookahead=5, norm_bias_lr_scale=8)
# cheap settings for the methods whose defaults train for long (the test checks that they run, not how well)
CHEAP = {"finetune": {"epochs": 1}, "retrain": {}, "neggrad_plus": {"epochs": 1}, "l1_sparse": {"epochs": 1},
         "salun": {"epochs": 1}, "random_label": {"epochs": 1}, "natmu": {"epochs": 1}, "unsir": {},
         "bad_teacher": {"epochs": 1}, "del": {"epochs": 1}}


@pytest.fixture(scope="module")
def fast_task(digits, digits_spec):
    torch.manual_seed(0)
    model = build_model(CONFIG)
    model.init_from_data(digits["train_x"])
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, training_loader(digits["train_x"], digits["train_y"], digits_spec, 64, seed=0, device="cpu"), RECIPE)
    forget = digits["train_y"] == 3

    def subset(keep):
        return Subset(digits["train_x"][keep], digits["train_y"][keep], torch.nonzero(keep).flatten())

    codes = make_codes(10, (1, 8, 8), seed=0)
    task = UnlearnTask(
        forget=subset(forget), retain=subset(~forget), spec=digits_spec, recipe=RECIPE, initial_state=initial,
        model_config=CONFIG, seed=0, scenario={"kind": "full_class", "classes": ["3"]},
        mnemonic={"codes": codes, "t_mix": 0.1, "distribution": "normal", "seed": 0},
    )
    return model.state_dict(), task


@pytest.mark.parametrize("name,extra", [(name, {}) for name in sorted(METHODS)] + [
    ("fisher_masking", {"mask": "activation", "rho": 0.1}),  # each conv's channels after its BatchNorm, past the pool
])
def test_method_runs_on_the_fast_net(name, extra, fast_task):
    state, task = fast_task
    model = build_model(CONFIG)
    model.load_state_dict(state)
    entry = METHODS[name]
    if "full_class" not in entry.scenarios:
        pytest.skip(f"{name} does not apply to full-class scenarios")
    hparams = {k: v for k, v in CHEAP.get(name, {}).items() if k in entry.params} | extra
    start = time.perf_counter()
    out = run_method(name, model, task, hparams)
    assert model.backbone.group1.conv1.weight.is_contiguous(memory_format=torch.channels_last)  # run_method's layout
    assert all(torch.isfinite(v).all() for v in out.state_dict().values() if v.is_floating_point()), name
    assert time.perf_counter() - start < 60


def test_retrain_oracle_whitens_with_retain_images_only(fast_task):
    state, task = fast_task
    model = build_model(CONFIG)
    model.load_state_dict(state)
    oracle = run_method("retrain", model, task, {})
    expected = build_model(CONFIG)
    expected.init_from_data(task.retain.x)
    assert torch.equal(oracle.backbone.whiten.weight, expected.backbone.whiten.weight)
    assert not torch.equal(oracle.backbone.whiten.weight, task.initial_state["backbone.whiten.weight"])


def test_methods_and_relearning_fine_tune_without_the_fast_recipe_extras(fast_task):
    from unlearnbench.references import relearn_recipe

    _, task = fast_task
    for derived in (task.recipe(epochs=1, lr=0.01), relearn_recipe(task.recipe, lr=0.01)):
        assert derived.lookahead == 0 and derived.norm_bias_lr_scale == 1.0
        assert derived.nesterov and derived.label_smoothing == 0.2  # the optimiser's settings stay


def test_train_original_records_the_whitening_in_the_checkpoint(digits, tmp_path):
    from unlearnbench.checkpoint import load_checkpoint
    from unlearnbench.data import save_dataset
    from unlearnbench.steps.train import train_original

    save_dataset(digits, tmp_path / "data.pt")
    model = {"name": "airbench", "dataset": "digits", "options": {"widths": [4, 8, 8]}}
    train_original(str(tmp_path / "data.pt"), model, {"epochs": 0.2, "batch_size": 64, "lr": 0.1}, seed=0,
                   out=str(tmp_path / "original.pt"), device="cpu")
    ckpt = load_checkpoint(tmp_path / "original.pt")
    assert ckpt["meta"]["init_from_data"] == {"init_from_data": "FastNet", "images": len(digits["train_x"])}
    expected = build_model(ckpt["model_config"])
    expected.init_from_data(digits["train_x"])
    assert torch.equal(ckpt["initial_state"]["backbone.whiten.weight"], expected.backbone.whiten.weight)
    assert torch.equal(ckpt["state_dict"]["backbone.whiten.weight"], expected.backbone.whiten.weight)
