import pytest
import torch
import helpers

from unlearnbench import UserError
from unlearnbench.checkpoint import (
    load_checkpoint,
    load_model,
    model_config,
    save_checkpoint,
)
from unlearnbench.io import atomic_path
from unlearnbench.methods import (
    METHODS,
    check_hyperparameters,
    hyperparameters,
    register_method,
    run_method,
)
from unlearnbench.models import create_model

CONFIG = model_config("resnet18", "digits", {"width": 4})


def test_foundation_methods_are_registered():
    assert {"original", "retrain", "finetune", "gradient_ascent", "neggrad_plus"} <= set(METHODS)
    assert hyperparameters("neggrad_plus")["alpha"] == 0.99


def test_hyperparameters_are_validated_against_the_signature():
    check_hyperparameters("finetune", {"epochs": 2, "lr": 0.1})
    with pytest.raises(UserError, match=r"no hyperparameter\(s\) \['lrr'\]; valid: epochs, lr, batch_size"):
        check_hyperparameters("finetune", {"lrr": 0.1})
    with pytest.raises(UserError, match="registered methods: .*finetune"):
        check_hyperparameters("finetuning", {})
    with pytest.raises(UserError, match=r"lr must be a number, got the text '1.0e4'; write exponents with a sign"):
        check_hyperparameters("finetune", {"lr": "1.0e4"})  # what YAML 1.1 makes of 1.0e4


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register_method(lambda model, task: model, name="finetune")


def test_retrain_starts_from_the_initial_weights_and_never_sees_the_forget_class(trained_task):
    original, task = trained_task("resnet18_w4")
    model = run_method("retrain", original, task)
    assert helpers.accuracy(model, task.forget) < 0.05 and helpers.accuracy(model, task.retain) > 0.8


@pytest.mark.parametrize(
    "name, hparams", [("gradient_ascent", {"epochs": 3, "lr": 0.01}), ("neggrad_plus", {"epochs": 3, "lr": 0.02, "alpha": 0.9})]
)
def test_gradient_ascent_and_neggrad_plus_lower_forgetaccuracy(trained_task, name, hparams):
    model, task = trained_task("resnet18_w4")
    assert helpers.accuracy(model, task.forget) > 0.8
    run_method(name, model, task, hparams)
    assert helpers.accuracy(model, task.forget) < 0.5
    if name == "neggrad_plus":
        assert helpers.accuracy(model, task.retain) > 0.6  # keeps most of the retain accuracy


def test_checkpoint_roundtrip_with_initial_weights(tmp_path):
    model = create_model("resnet18", "digits", width=4)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path / "m.pt", model, CONFIG, initial_state=initial, meta={"seed": 3})
    loaded, ckpt = load_model(tmp_path / "m.pt", expected_config=CONFIG)
    x = torch.rand(2, 1, 8, 8)
    assert torch.allclose(loaded(x), model.eval()(x))
    assert ckpt["meta"]["seed"] == 3 and torch.equal(ckpt["initial_state"]["backbone.fc.weight"], initial["backbone.fc.weight"])


def test_corrupt_missing_and_mismatched_checkpoints_are_clear_errors(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="corrupt.*delete it"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    save_checkpoint(tmp_path / "m.pt", create_model("resnet18", "digits", width=4), CONFIG)
    with pytest.raises(UserError, match="was made for .* but the config asks"):
        load_model(tmp_path / "m.pt", expected_config=model_config("resnet18", "digits", {"width": 8}))
    torch.save({"something": 1}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not a checkpoint of this project"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.pt") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_methods_declare_the_scenarios_they_apply_to():
    from unlearnbench.methods import supports

    assert supports("finetune", "random") and supports("unsir", "full_class") and not supports("unsir", "random")
