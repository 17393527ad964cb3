"""SVHN through torchvision (on generated files in its format) and the mnemonic-code paper's MNIST MLP, with the
methods that inspect layers (SSD, Fisher forgetting, Fisher masking, DEL) and mnemonic codes run on an MLP."""

import numpy as np
import pytest
import torch

from unlearnbench import UserError
from unlearnbench.checkpoint import build_model, model_config
from unlearnbench.config import check_config
from unlearnbench.data import DIGITS, get_spec, prepare_dataset, training_loader
from unlearnbench.methods import Subset, UnlearnTask, run_method
from unlearnbench.methods.mnemonic_code import code_pixels, make_codes, mnemonic_loss
from unlearnbench.models import create_model
from unlearnbench.train import Recipe, fit, predict_logits, set_seed

FORGET_CLASS = 3


def test_svhn_spec():
    spec = get_spec("svhn")
    assert spec.classes == DIGITS and (spec.channels, spec.size, spec.num_classes) == (3, 32, 10)
    assert spec.crop_padding == 4 and not spec.flip  # digits: a flipped 2 is no 2
    assert len(spec.mean) == len(spec.std) == 3


def _config(dataset: str, model: dict) -> dict:
    return {
        "name": "svhn_check",
        "seeds": [0],
        "datasets": {dataset: {"source": "torchvision"}},
        "experiments": {"e": {"dataset": dataset, "model": model, "train": {"epochs": 1}, "scenarios": ["s"],
                              "methods": ["original"]}},
        "scenarios": {"s": {"kind": "random", "classes": ["3", "6"], "fraction": 0.1}},  # DEL's non-IID SVHN set
        "methods": {"original": None},
        "metrics": ["test_acc"],
    }


def test_config_check_accepts_svhn_and_the_mlp_and_rejects_a_wrong_option():
    check_config(_config("svhn", {"name": "vit_small", "options": {"patch_size": 8, "dim": 512, "depth": 4}}))
    check_config(_config("mnist", {"name": "mlp", "options": {"hidden": [1000], "activation": "sigmoid"}}))
    with pytest.raises(UserError, match="model 'mlp' has no option.*width.*valid: hidden, activation"):
        check_config(_config("mnist", {"name": "mlp", "options": {"width": 8}}))


def _write_svhn_mat(path, labels: np.ndarray) -> np.ndarray:
    """A .mat file laid out as SVHN's: ``X`` [32, 32, 3, N] uint8, ``y`` [N, 1] with digit 0 stored as 10."""
    from scipy.io import savemat

    x = np.random.default_rng(len(labels)).integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8)
    savemat(path, {"X": x, "y": labels[:, None].astype(np.uint8)})
    return x


def test_svhn_from_files_in_its_format(tmp_path, monkeypatch):
    import torchvision.datasets.svhn as tv_svhn

    monkeypatch.setattr(tv_svhn, "check_integrity", lambda *args, **kwargs: True)  # not the real files' MD5
    train_labels, test_labels = np.array([10, 1, 2, 9, 10, 5]), np.array([3, 10, 7])
    x_train = _write_svhn_mat(tmp_path / "train_32x32.mat", train_labels)
    _write_svhn_mat(tmp_path / "test_32x32.mat", test_labels)
    data = prepare_dataset("svhn", "torchvision", root=tmp_path, download=False)
    assert data["train_x"].dtype == torch.uint8 and data["train_x"].shape == (6, 3, 32, 32)
    assert data["train_x"].is_contiguous() and data["test_x"].shape == (3, 3, 32, 32)
    # pixel (row 5, column 7, channel 2) of image 4 lands at [4, 2, 5, 7]
    assert data["train_x"][4, 2, 5, 7] == x_train[5, 7, 2, 4]
    assert torch.equal(data["train_x"][1], torch.from_numpy(x_train[..., 1]).permute(2, 0, 1))
    # digit 0, stored as 10, becomes class 0 ("0"); the other digits keep their value
    assert data["train_y"].dtype == torch.int64 and data["train_y"].tolist() == [0, 1, 2, 9, 0, 5]
    assert data["test_y"].tolist() == [3, 0, 7] and data["classes"] == list(DIGITS)


def test_svhn_missing_offline_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"could not load svhn .*train_32x32\.mat and test_32x32\.mat.*data_root"):
        prepare_dataset("svhn", "torchvision", root=tmp_path, download=False)


def test_mlp_is_the_papers_mnist_model():
    model = create_model("mlp", "mnist")
    assert sum(p.numel() for p in model.parameters()) == 784 * 1000 + 1000 + 1000 * 10 + 10
    assert model.head is model.backbone.head and (model.head.in_features, model.head.out_features) == (1000, 10)
    assert [n for n, _ in model.named_parameters()] == [
        "backbone.fc1.weight", "backbone.fc1.bias", "backbone.head.weight", "backbone.head.bias"]
    assert isinstance(model.backbone.act1, torch.nn.Sigmoid)


def test_mlp_normalises_flattens_and_applies_its_activation():
    model = create_model("mlp", "digits", hidden=(3,))
    with torch.no_grad():
        model.backbone.fc1.weight.zero_()
        model.backbone.fc1.bias.zero_()
    x = torch.rand(2, 1, 8, 8)
    # every hidden unit is sigmoid(0) = 1/2, so the logits are b + W @ (1/2, 1/2, 1/2)
    head = model.head
    assert torch.allclose(model(x), (head.bias + 0.5 * head.weight.sum(1)).expand(2, 10))
    # with fc1 the identity on the first three pixels, hidden unit i is sigmoid((x_i - mean) / std)
    with torch.no_grad():
        model.backbone.fc1.weight[:, :3] = torch.eye(3)
    hidden = torch.sigmoid((x.flatten(1)[:, :3] - 0.3053) / 0.3759)
    assert torch.allclose(model(x), hidden @ head.weight.T + head.bias, atol=1e-6)


@pytest.mark.parametrize("dataset, hidden", [("svhn", [16, 8]), ("cifar100", []), ("mnist", [4])])
def test_mlp_on_any_data_set(dataset, hidden):
    spec = get_spec(dataset)
    model = create_model("mlp", dataset, hidden=hidden, activation="relu")
    assert model(torch.rand(2, spec.channels, spec.size, spec.size)).shape == (2, spec.num_classes)
    assert model.head.in_features == (hidden[-1] if hidden else spec.channels * spec.size**2)
    with pytest.raises(UserError, match="unknown activation 'gelu'; valid: sigmoid, relu, tanh"):
        create_model("mlp", dataset, activation="gelu")


@pytest.fixture(scope="module")
def mlp_task():
    """An MLP 64-32-10 trained with mnemonic codes on 300 digits (a second on one core) and the task of forgetting
    class 3: ``(state_dict, task, data)``."""
    data = prepare_dataset("digits", "sklearn", train_size=300)
    spec, codes = get_spec("digits"), make_codes(10, (1, 8, 8), seed=0)
    config = model_config("mlp", "digits", {"hidden": [32]})
    set_seed(0)
    model = build_model(config)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = Recipe(epochs=60, batch_size=32, lr=0.1, schedule="cosine")
    loader = training_loader(data["train_x"], data["train_y"], spec, 32, seed=0, device="cpu", augment=False)
    fit(model, loader, recipe, loss_fn=mnemonic_loss(code_pixels(codes, spec), 0.1, seed=0))
    forget = data["train_y"] == FORGET_CLASS

    def subset(keep):
        return Subset(data["train_x"][keep], data["train_y"][keep], torch.nonzero(keep).flatten())

    task = UnlearnTask(
        forget=subset(forget), retain=subset(~forget), spec=spec, recipe=recipe, initial_state=initial,
        model_config=config, scenario={"kind": "full_class", "classes": [str(FORGET_CLASS)]},
        mnemonic={"codes": codes, "t_mix": 0.1, "distribution": "normal", "seed": 0},
    )
    return model.state_dict(), task, data


def _test_accuracies(model, data) -> tuple[float, float]:
    """Test accuracy on the forgotten class and on the others."""
    y = data["test_y"]
    hit = predict_logits(model, data["test_x"]).argmax(1) == y
    return hit[y == FORGET_CLASS].float().mean().item(), hit[y != FORGET_CLASS].float().mean().item()


@pytest.mark.parametrize(
    "method, hparams",
    [
        ("ssd", {"alpha": 6.0}),
        ("fisher_forgetting", {}),
        ("fisher_masking", {"rho": 0.01, "finetune_epochs": 1, "lr": 0.02}),
        ("fisher_masking", {"rho": 0.1, "mask": "activation"}),  # hooks fc1, the only hidden linear layer
        ("del", {"epochs": 1, "lr": 0.02}),
        ("del", {"epochs": 1, "localization": "salun", "unlearn": "random_label"}),
    ],
)
def test_layer_inspecting_methods_run_on_the_mlp(mlp_task, method, hparams):
    state, task, data = mlp_task
    model = build_model(task.model_config)
    model.load_state_dict(state)
    model = run_method(method, model, task, hparams)
    logits = predict_logits(model, data["test_x"])
    assert logits.shape == (len(data["test_x"]), 10) and torch.isfinite(logits).all()
    assert any(not torch.equal(p, state[n]) for n, p in model.state_dict().items())


def test_mnemonic_code_forgets_a_class_of_the_mlp_in_one_shot(mlp_task):
    state, task, data = mlp_task
    model = build_model(task.model_config)
    model.load_state_dict(state)
    forget_before, retain_before = _test_accuracies(model, data)
    assert forget_before > 0.8 and retain_before > 0.85
    model = run_method("mnemonic_code", model, task, {"lambda1": 1e-3, "lambda2": 10.0})  # the paper's MNIST values
    forget_after, retain_after = _test_accuracies(model, data)
    assert forget_after <= 0.05 and retain_after >= retain_before - 0.03, (forget_before, retain_before, forget_after, retain_after)
