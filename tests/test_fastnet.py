"""The airbench-style fast net (``fastnet``, model ``airbench``) and the recipe features it trains with."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench import UserError
from unlearnbench.data import training_loader
from unlearnbench.fastnet import Whitening, conv3x3
from unlearnbench.models import create_model
from unlearnbench.recipe import Recipe, lr_factor
from unlearnbench.train import fit, make_optimizer, norm_biases, predict_logits, tta_logits, uses_channels_last

TINY = (4, 8, 8)


def tiny_net(dataset="digits", seed=0):
    torch.manual_seed(seed)
    return create_model("airbench", dataset, widths=TINY)


def test_whitening_decorrelates_patches():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, 8, 8, generator=gen)
    x[:, 1] = 0.5 * x[:, 0] + 0.1 * x[:, 1]  # correlated channels
    layer = Whitening(3)
    layer.init_from_data(x, eps=1e-7)
    out = F.conv2d(x, layer.weight[:12])  # the first half; the second is its negative
    cov = torch.cov(out.permute(1, 0, 2, 3).reshape(12, -1))
    assert torch.allclose(cov.diag(), torch.ones(12), atol=0.01)
    off_diagonal = cov - torch.diag(cov.diag())
    assert off_diagonal.abs().max() < 0.05
    assert torch.equal(layer.weight[12:], -layer.weight[:12])


def test_init_from_data_is_explicit_and_recorded(digits):
    model = tiny_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = model.init_from_data(digits["train_x"])
    assert record == {"init_from_data": "FastNet", "images": len(digits["train_x"])}
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed == ["backbone.whiten.weight"]  # a buffer: saved in checkpoints, never trained
    assert create_model("resnet18", "digits", width=2).init_from_data(digits["train_x"]) is None


def test_frozen_parts_are_buffers_and_convs_start_as_identity():
    model = tiny_net("cifar10")
    names = dict(model.named_parameters())
    assert "backbone.whiten.weight" not in names and "backbone.group1.norm1.weight" not in names
    assert torch.equal(model.backbone.group1.norm1.weight, torch.ones(TINY[0]))
    conv = conv3x3(4, 6)
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(conv(x)[:, :4], x)
    assert model.head is model.backbone.head and model.head.bias is None


@pytest.mark.parametrize("dataset,shape", [("digits", (5, 1, 8, 8)), ("cifar10", (5, 3, 32, 32))])
def test_runs_on_small_and_cifar_images(dataset, shape):
    model = tiny_net(dataset)
    assert model(torch.rand(shape)).shape == (5, 10)


def test_widths_are_checked():
    with pytest.raises(UserError, match="widths"):
        create_model("airbench", "digits", widths=[4, 0])


def test_fisher_masking_pairs_each_conv_with_its_batchnorm_past_the_pool():
    from unlearnbench.methods.fisher_masking import following_batchnorm

    model = tiny_net()
    pairs = following_batchnorm(model)
    assert pairs["backbone.group1.conv1"] is model.backbone.group1.norm1
    assert {n for n in pairs if n.startswith("backbone.group1")} == {"backbone.group1.conv1", "backbone.group1.conv2"}


def test_airbench_recipe_trains_the_fast_net_on_digits(digits, digits_spec):
    torch.manual_seed(0)
    model = create_model("airbench", "digits", widths=(8, 16, 16))
    model.init_from_data(digits["train_x"])
    recipe = Recipe(epochs=6, batch_size=64, lr=1.0, momentum=0.85, nesterov=True, weight_decay=5e-4,
                    schedule="triangular", warmup_epochs=1, min_lr=0.014, label_smoothing=0.2, lookahead=5,
                    norm_bias_lr_scale=16)
    fit(model, training_loader(digits["train_x"], digits["train_y"], digits_spec, 64, seed=0, device="cpu"), recipe)
    accuracy = (predict_logits(model, digits["test_x"]).argmax(1) == digits["test_y"]).float().mean().item()
    assert accuracy > 0.85


def test_triangular_schedule_rises_then_falls_to_min_lr():
    recipe = Recipe(epochs=10, lr=1.0, schedule="triangular", warmup_epochs=2, min_lr=0.1)
    factors = [lr_factor(s, 10, recipe) for s in range(100)]
    assert factors[0] == pytest.approx(0.05) and factors[19] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(0.1) and factors[59] == pytest.approx(1 - 0.9 * 40 / 80)
    assert all(a >= b for a, b in zip(factors[19:], factors[20:]))
    with pytest.raises(UserError, match="min_lr"):
        Recipe.from_dict({"epochs": 1, "schedule": "multistep", "min_lr": 0.01})


def test_lookahead_ends_on_the_slow_weights(digits, digits_spec):
    """With no update during training, the final update returns the model to its starting weights."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    loader = training_loader(digits["train_x"][:256], digits["train_y"][:256], digits_spec, 64, seed=0, device="cpu")
    fit(model, loader, Recipe(epochs=1, lr=0.1, lookahead=5))  # 4 steps: no update before the end
    assert all(torch.equal(start[k], v) for k, v in model.state_dict().items())
    fit(model, loader, Recipe(epochs=2, lr=0.1, lookahead=1, lookahead_decay=0.0))  # decay 0: plain training
    assert not torch.equal(start["1.weight"], model.state_dict()["1.weight"])
    with pytest.raises(UserError, match="lookahead"):
        Recipe.from_dict({"epochs": 1, "lookahead": 1.5})


def test_lookahead_with_zero_decay_is_plain_training(digits, digits_spec):
    def run(**extra):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        loader = training_loader(digits["train_x"][:256], digits["train_y"][:256], digits_spec, 64, seed=0,
                                 device="cpu")
        fit(model, loader, Recipe(epochs=2, lr=0.1, **extra))
        return model.state_dict()

    plain, looked = run(), run(lookahead=2, lookahead_decay=0.0)
    assert all(torch.allclose(plain[k], looked[k]) for k in plain)


def test_norm_biases_get_their_own_learning_rate_and_the_same_decay_per_step():
    model = tiny_net()
    recipe = Recipe(epochs=1, lr=0.5, weight_decay=1e-3, norm_bias_lr_scale=64)
    groups = make_optimizer(model.parameters(), recipe, norm_biases(model)).param_groups
    assert len(groups) == 2 and len(groups[1]["params"]) == 6
    assert groups[1]["lr"] == 32 and groups[1]["lr"] * groups[1]["weight_decay"] == pytest.approx(0.5 * 1e-3)
    assert len(make_optimizer(model.parameters(), Recipe(epochs=1)).param_groups) == 1


def test_tta_averages_flips_and_one_pixel_shifts():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 4))
    x = torch.rand(3, 3, 6, 6)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    views = [x, padded[..., :6, :6], padded[..., 2:, 2:]]
    mirrored = [(model(v) + model(v.flip(-1))) / 2 for v in views]
    expected = mirrored[0] / 2 + (mirrored[1] + mirrored[2]) / 4
    assert torch.allclose(tta_logits(model, x), expected, atol=1e-6)
    assert torch.allclose(predict_logits(model, x, tta=True), expected, atol=1e-6)
    assert torch.allclose(predict_logits(model, x), model(x), atol=1e-6)  # off by default


def test_recipe_module_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, unlearnbench.recipe as r; r.Recipe.from_dict({'epochs': 1}); assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert math.isclose(Recipe(epochs=1).lookahead_decay, 0.95**5)


def test_the_fast_net_runs_channels_last_on_the_cpu_and_resnets_do_not(digits, digits_spec):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    resnet = create_model("resnet18", "cifar10", width=4)
    assert uses_channels_last(tiny_net(), cpu) and uses_channels_last(resnet, cuda)
    assert not uses_channels_last(resnet, cpu)  # strided 1x1 shortcuts: wrong CPU gradients in that layout
    assert not uses_channels_last(create_model("mlp", "digits"), cpu)
    model = tiny_net()
    model.init_from_data(digits["train_x"])
    loader = training_loader(digits["train_x"], digits["train_y"], digits_spec, 64, seed=0, device=cpu)
    fit(model, loader, Recipe.from_dict({"preset": "airbench", "epochs": 1, "batch_size": 64}))
    assert model.backbone.group1.conv1.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dataset,shape", [("digits", (16, 1, 8, 8)), ("mnist", (16, 1, 28, 28)),
                                           ("cifar10", (16, 3, 32, 32))])
def test_channels_last_cpu_kernels_of_the_fast_net_are_correct(dataset, shape):
    """Every convolution of the fast net, forward and backward, in channels_last against a float64 reference;
    the whole net's logits against NCHW's (gradients through the whole net may route differently at max-pool
    near-ties, so they are compared layer by layer)."""
    torch.manual_seed(0)
    model, x = create_model("airbench", dataset, widths=(8, 16, 16)), torch.rand(shape)
    model.init_from_data(x)
    inputs = {}
    hooks = [m.register_forward_hook(lambda m, i, o: inputs.__setitem__(m, i[0].detach()))
             for m in model.modules() if isinstance(m, (nn.Conv2d, Whitening))]
    nchw = model(x)
    for hook in hooks:
        hook.remove()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x), nchw, rtol=1e-4, atol=1e-5)
    for module, inp in inputs.items():
        padding = getattr(module, "padding", (0, 0))
        grad_out = torch.randn_like(F.conv2d(inp, module.weight, padding=padding))

        def grads(dtype, fmt):
            w = module.weight.detach().to(dtype, memory_format=fmt).requires_grad_()
            i = inp.to(dtype, memory_format=fmt).requires_grad_()
            out = F.conv2d(i, w, padding=padding)
            out.backward(grad_out.to(dtype, memory_format=fmt))
            return out, i.grad, w.grad

        for got, want in zip(grads(torch.float32, torch.channels_last), grads(torch.float64, torch.contiguous_format)):
            torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
