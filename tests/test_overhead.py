"""Fixed cost around jobs: the torchvision-free ResNet-18 equals the former torchvision build, jobs that
build no torchvision model never import torchvision (nor torch._dynamo), and logits do not depend on the batch."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from unlearnbench.models import create_model
from unlearnbench.train import inference_batch_size, predict_logits


def _torchvision_resnet18(channels: int, width: int, num_classes: int) -> nn.Module:
    """The former builder: torchvision's ResNet-18 with the stem and stages rebuilt at ``width``."""
    from torchvision.models import resnet as tv

    net = tv.ResNet(tv.BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    net.inplanes = width
    net.conv1 = nn.Conv2d(channels, width, kernel_size=3, stride=1, padding=1, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    net.maxpool = nn.Identity()
    net.layer1 = net._make_layer(tv.BasicBlock, width, 2)
    for i in (2, 3, 4):
        setattr(net, f"layer{i}", net._make_layer(tv.BasicBlock, 2 ** (i - 1) * width, 2, stride=2))
    net.fc = nn.Linear(8 * width, num_classes)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


@pytest.mark.parametrize("dataset, channels, size, width", [("digits", 1, 8, 4), ("cifar10", 3, 32, 2)])
def test_resnet18_equals_the_torchvision_build(dataset, channels, size, width):
    torch.manual_seed(3)
    ours = create_model("resnet18", dataset, width=width).backbone
    after_ours = torch.rand(1)
    torch.manual_seed(3)
    theirs = _torchvision_resnet18(channels, width, 10)
    assert torch.equal(after_ours, torch.rand(1))  # the same number of random draws
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    assert all(torch.equal(ours_state[k], theirs_state[k]) for k in ours_state)
    x = torch.randn(5, channels, size, size)
    for mode in (True, False):  # batch statistics, then running statistics
        ours.train(mode), theirs.train(mode)
        assert torch.equal(ours(x), theirs(x))
    ours.train(), theirs.train()
    ours(x).square().sum().backward(), theirs(x).square().sum().backward()
    assert all(torch.equal(p.grad, q.grad) for p, q in zip(ours.parameters(), theirs.parameters()))


def test_jobs_that_build_no_torchvision_model_do_not_import_it():
    code = """
import importlib, sys
import torch
for name in ("checkpoint", "data", "importance", "localize", "methods", "metrics", "models", "splits", "train",
             "pipeline", "steps", "oracles", "references"):
    try:
        importlib.import_module(f"unlearnbench.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"unlearnbench.{name}":
            raise
from unlearnbench.models import create_model
from unlearnbench.train import predict_logits
predict_logits(create_model("resnet18", "digits", width=2), torch.zeros(3, 1, 8, 8, dtype=torch.uint8))
print(sorted(m for m in sys.modules if m.startswith(("torchvision", "torch._dynamo"))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_logits_do_not_depend_on_the_batch_size(digits):
    model = create_model("resnet18", "digits", width=4)
    model.train()
    model(digits["train_x"][:256].float() / 255)  # running statistics that are not the initial ones
    x = digits["test_x"]
    reference = predict_logits(model, x)
    for batch_size in (32, 64, 100, 1000, 4096):  # bit for bit on the CPUs measured (README, Overhead)
        assert torch.equal(predict_logits(model, x, batch_size=batch_size), reference)
    for batch_size in (1, 2, 16):  # other convolution kernels: the same up to float32 rounding
        logits = predict_logits(model, x, batch_size=batch_size)
        torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)
        assert torch.equal(logits.argmax(1), reference.argmax(1))


def test_inference_batch_size_per_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    image = lambda size: torch.zeros(1, 3, size, size)  # noqa: E731
    assert inference_batch_size(image(8), cpu) == 1024  # the quick preset's digits
    assert inference_batch_size(image(28), cpu) == 83
    assert inference_batch_size(image(32), cpu) == 64
    assert inference_batch_size(image(224), cpu) == 64
    assert inference_batch_size(image(32), cuda) == 1024


def test_a_checkpoint_loads_without_the_parity_build(tmp_path, monkeypatch):
    """Loading a checkpoint skips the throwaway ImageNet-width ResNet-18 (random draws only); the loaded model is
    the saved one, and a fresh build still draws as before (test_resnet18_equals_the_torchvision_build)."""
    from unlearnbench import resnet
    from unlearnbench.checkpoint import load_model, model_config, save_checkpoint

    config = model_config("resnet18", "digits", {"width": 2})
    saved = create_model("resnet18", "digits", width=2)
    saved.train()
    saved(torch.rand(16, 1, 8, 8))  # running statistics that are not the initial ones
    save_checkpoint(tmp_path / "m.pt", saved, config)
    widths = []
    built = resnet.ResNet18
    monkeypatch.setattr(resnet, "ResNet18", lambda *a, **kw: widths.append(a[1]) or built(*a, **kw))
    loaded, _ = load_model(tmp_path / "m.pt", expected_config=config)
    assert widths == [2]
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), saved.state_dict().values()))
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    assert torch.equal(predict_logits(loaded, x), predict_logits(saved.eval(), x))
    widths.clear()
    create_model("resnet18", "digits", width=2)
    assert widths == [64, 2]


def test_planning_modules_load_no_scipy_special_sklearn_or_matplotlib():
    """What the rule files import at parse time (metric names included) loads none of the metrics' libraries."""
    code = ("import sys; import unlearnbench.config, unlearnbench.io, unlearnbench.catalog, unlearnbench.steps, "
            "unlearnbench.metrics, unlearnbench.results, unlearnbench.splits, unlearnbench.references; "
            "print(sorted(m for m in ('scipy.special', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_provenance_asks_git_once_per_process(monkeypatch):
    """One ``git status`` per process gives the commit and the dirty flag, the same as rev-parse + status."""
    from unlearnbench import io

    io.git_commit.cache_clear()
    calls = []
    run = subprocess.run
    monkeypatch.setattr(io.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or run(cmd, **kw))
    first, second = io.provenance(), io.provenance()
    assert len(calls) == 1 and first == second
    here = str(io.Path(io.__file__).resolve().parent)
    head = run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        assert first["git_commit"] == "unknown"
    else:
        dirty = run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                    text=True)
        assert first["git_commit"] == head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    io.git_commit.cache_clear()
