import pytest
import torch

from unlearnbench import UserError
from unlearnbench.models import MODELS, create_model


@pytest.mark.parametrize(
    "name, options, dataset",
    [("resnet18", {"width": 8}, "digits"), ("resnet18", {"width": 4}, "cifar10"),
     ("vit_small", {"patch_size": 2, "dim": 32, "heads": 2, "mlp_dim": 64, "depth": 1}, "digits"),
     ("vit_small", {"dim": 32, "heads": 2, "mlp_dim": 64, "depth": 1}, "cifar100"),
     ("vit_b_16", {"weights": "none"}, "cifar10")],
)
def test_models_map_pixels_to_logits(name, options, dataset):
    model = create_model(name, dataset, **options)
    from unlearnbench.data import get_spec

    spec = get_spec(dataset)
    out = model(torch.rand(2, spec.channels, spec.size, spec.size))
    assert out.shape == (2, spec.num_classes) and torch.isfinite(out).all()
    assert isinstance(model.head, torch.nn.Linear) and model.head.out_features == spec.num_classes
    assert all(n.startswith("backbone.") for n, _ in model.named_parameters())


def test_resnet18_cifar_variant_and_width():
    full = create_model("resnet18", "cifar10")
    assert sum(p.numel() for p in full.parameters()) == 11_173_962  # the standard CIFAR ResNet-18
    assert full.backbone.conv1.kernel_size == (3, 3) and full.backbone.conv1.stride == (1, 1)
    assert isinstance(full.backbone.maxpool, torch.nn.Identity)
    narrow = create_model("resnet18", "cifar10", width=16)
    assert narrow.head.in_features == 128
    # parameters scale with width squared (up to the stem and the head)
    ratio = sum(p.numel() for p in full.parameters()) / sum(p.numel() for p in narrow.parameters())
    assert 14 < ratio < 17


def test_normalisation_is_inside_the_model():
    model = create_model("resnet18", "digits", width=4).eval()
    assert model.mean.shape == (1, 1, 1, 1) and "mean" not in model.state_dict()


def test_unknown_model_and_option_are_clear_errors():
    with pytest.raises(UserError, match="valid models: " + ", ".join(MODELS)):
        create_model("resnet19", "cifar10")
    with pytest.raises(UserError, match="fix the model options"):
        create_model("resnet18", "cifar10", depth=34)


def test_vit_b_16_weights_unavailable_offline_says_how_to_provide_them(monkeypatch):
    from torchvision.models import vision_transformer as tv_vit

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(tv_vit.ViT_B_16_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline)
    with pytest.raises(UserError, match=r"TORCH_HOME/hub/checkpoints.*weights: /path"):
        create_model("vit_b_16", "cifar10")


def test_vit_b_16_from_a_local_weights_file(tmp_path):
    from torchvision.models import vit_b_16

    torch.save(vit_b_16().state_dict(), tmp_path / "vit.pth")
    model = create_model("vit_b_16", "digits", weights=str(tmp_path / "vit.pth"))
    assert model(torch.rand(1, 1, 8, 8)).shape == (1, 10)  # greyscale repeated to 3 channels, resized to 224


def _tiny_vit_b_16(**kwargs):
    """torchvision's ViT at ViT-B/16's input and patch size with tiny dims (1000-class head, as the real one)."""
    from torchvision.models import VisionTransformer

    return VisionTransformer(image_size=224, patch_size=16, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16)


@pytest.fixture
def tiny_vit(monkeypatch, tmp_path, digits):
    """vit_b_16 shrunk to a tiny ViT, a weights file for it, a small digits file, and torchvision's download
    replaced by one that fails (no test fetches anything)."""
    import hashlib

    from torchvision.models import vision_transformer as tv_vit

    from unlearnbench.data import save_dataset

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(tv_vit, "vit_b_16", _tiny_vit_b_16)
    monkeypatch.setattr(tv_vit.ViT_B_16_Weights, "get_state_dict", offline)
    torch.manual_seed(123)
    weights = {k: torch.randn_like(v) for k, v in _tiny_vit_b_16().state_dict().items()}  # class token not 0
    torch.save(weights, tmp_path / "vit.pth")
    save_dataset({k: (v[:64] if k.startswith("train") else v[:16]) for k, v in digits.items()}, tmp_path / "data.pt")
    sha = hashlib.sha256((tmp_path / "vit.pth").read_bytes()).hexdigest()[:16]
    return {"weights": weights, "path": tmp_path / "vit.pth", "sha256": sha, "data": str(tmp_path / "data.pt")}


def _train_original(tmp_path, data, weights, out="original.pt"):
    from unlearnbench.steps.train import train_original

    model = {"name": "vit_b_16", "dataset": "digits", "options": {"weights": str(weights)}}
    train = {"epochs": 1, "batch_size": 32, "lr": 0.01}
    train_original(data, model, train, 0, str(tmp_path / out), device="cpu")
    return tmp_path / out


def _backbone(state: dict) -> dict:
    """The pretrained part of a ViT state dict (ours is prefixed ``backbone.``): everything but the head."""
    return {k.removeprefix("backbone."): v for k, v in state.items() if "heads.head" not in k}


def test_vit_b_16_original_starts_from_the_weights_file_and_records_it(tiny_vit, tmp_path):
    from unlearnbench.checkpoint import load_checkpoint, load_model

    path = _train_original(tmp_path, tiny_vit["data"], tiny_vit["path"])
    ckpt = load_checkpoint(path)
    initial, file = _backbone(ckpt["initial_state"]), _backbone(tiny_vit["weights"])
    assert initial.keys() == file.keys() and all(torch.equal(initial[k], file[k]) for k in file)
    assert initial["class_token"].abs().sum() > 0  # not torchvision's all-zero initialisation
    assert ckpt["meta"]["pretrained"] == {"source": "file", "weights": "vit.pth", "sha256": tiny_vit["sha256"]}
    tiny_vit["path"].unlink()  # rebuilding from the checkpoint reads no weights file and fetches nothing
    model, _ = load_model(path, expected_config=ckpt["model_config"])
    assert torch.equal(model.state_dict()["backbone.class_token"], ckpt["state_dict"]["backbone.class_token"])


def test_vit_b_16_retrain_oracle_starts_from_the_pretrained_weights(tiny_vit, tmp_path, digits_spec, monkeypatch):
    from unlearnbench.checkpoint import load_checkpoint
    from unlearnbench.methods import Subset, UnlearnTask, baselines
    from unlearnbench.methods import task as task_module
    from unlearnbench.train import Recipe

    ckpt = load_checkpoint(_train_original(tmp_path, tiny_vit["data"], tiny_vit["path"]))
    monkeypatch.setattr(task_module, "fit", lambda model, *args, **kwargs: [])  # the weights it would start training from
    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    task = UnlearnTask(forget=Subset(x[:1], y[:1]), retain=Subset(x[1:], y[1:]), spec=digits_spec,
                       recipe=Recipe(epochs=1, batch_size=2, lr=0.01), initial_state=ckpt["initial_state"],
                       model_config=ckpt["model_config"])
    start = _backbone(baselines.retrain(None, task).state_dict())
    assert all(torch.equal(start[k], v) for k, v in _backbone(tiny_vit["weights"]).items())


def test_vit_b_16_imagenet_weights_come_from_torchvision_and_are_named(tiny_vit, tmp_path, monkeypatch):
    from torchvision.models import vision_transformer as tv_vit

    from unlearnbench.checkpoint import load_checkpoint

    monkeypatch.setattr(tv_vit.ViT_B_16_Weights, "get_state_dict", lambda self, **kwargs: tiny_vit["weights"])
    ckpt = load_checkpoint(_train_original(tmp_path, tiny_vit["data"], "imagenet"))
    assert ckpt["meta"]["pretrained"] == {"source": "torchvision", "weights": "ViT_B_16_Weights.IMAGENET1K_V1"}
    assert torch.equal(ckpt["initial_state"]["backbone.class_token"], tiny_vit["weights"]["class_token"])


@pytest.mark.parametrize("weights", ["missing.pth", "imagenet", "garbage.pth"])
def test_vit_b_16_weights_that_cannot_be_had_stop_training_with_one_line(tiny_vit, tmp_path, weights):
    (tmp_path / "garbage.pth").write_bytes(b"not a state dict\n\n")
    with pytest.raises(UserError) as err:
        _train_original(tmp_path, tiny_vit["data"], tmp_path / weights if weights != "imagenet" else weights)
    assert "\n" not in str(err.value) and "ViT-B/16" in str(err.value)
    assert not (tmp_path / "original.pt").exists()


def test_register_model_refuses_a_name_registered_twice():
    from unlearnbench.models import register_model

    original = MODELS["resnet18"]

    def resnet18(spec):  # a second builder under a registered name
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="model 'resnet18' is registered twice"):
        register_model(resnet18)
    assert MODELS["resnet18"] is original
    assert register_model(original) is original  # the same function again (a module re-run) is no duplicate
