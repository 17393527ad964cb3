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
