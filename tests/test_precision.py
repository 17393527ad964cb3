"""The GPU code path on the CPU: bf16 autocast and ``torch.compile`` (inductor, with the machine's C++ compiler) in
``fit``, ``predict_logits``, an importance and one method of each family, compared with fp32.

Tolerances: bf16 keeps 8 bits of mantissa (relative rounding 2^-9 ~ 0.2 % per operation). On the tiny CNN below a
few epochs of SGD in bf16 move the per-epoch loss by ~1e-4 from fp32; we allow 2 % of the loss and 3 points of
accuracy, far above the measured gap and far below what a broken path (wrong dtype, dropped step, lost gradient)
gives. Compiled fp32 differs from eager fp32 only by the order of floating-point sums (1e-5 relative).
"""

from __future__ import annotations

import inspect
import math
import re

import pytest
import torch

import helpers
from unlearnbench import UserError
from unlearnbench.data import get_spec, training_loader
from unlearnbench.importance import cross_entropy, per_sample_gradient_importance
from unlearnbench.methods import Subset, run_method
from unlearnbench.models import create_model
from unlearnbench.train import Recipe, autocast, fit, precision_scope, predict_logits, uses_bf16


def _fit(digits, *, precision, compile=False, epochs=2):
    torch.manual_seed(0)
    model = create_model("tiny_cnn", "digits")
    loader = training_loader(digits["train_x"], digits["train_y"], get_spec("digits"), 64, seed=0, device="cpu")
    history = fit(model, loader, Recipe(epochs=epochs, lr=0.1, schedule="cosine"), compile=compile, precision=precision)
    return model, [r["loss"] for r in history]


def _test_accuracy(model, digits) -> float:
    return (predict_logits(model, digits["test_x"]).argmax(1) == digits["test_y"]).float().mean().item()


def test_precision_resolves_per_device_and_scope():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not uses_bf16(cpu) and uses_bf16(cuda)  # auto: today's behaviour
    assert uses_bf16(cpu, "bf16") and not uses_bf16(cuda, "fp32")
    with precision_scope("bf16"):
        assert uses_bf16(cpu) and not uses_bf16(cpu, "fp32")
    assert not uses_bf16(cpu)
    with pytest.raises(UserError, match="valid: auto, bf16, fp32"):
        uses_bf16(cpu, "fp16")


def test_bf16_fit_on_cpu_matches_fp32(digits):
    fp32, fp32_loss = _fit(digits, precision="fp32")
    bf16, bf16_loss = _fit(digits, precision="bf16")
    assert bf16_loss != fp32_loss  # bf16 really ran (rounding differs)
    assert bf16_loss == pytest.approx(fp32_loss, rel=0.02)
    assert abs(_test_accuracy(bf16, digits) - _test_accuracy(fp32, digits)) <= 0.03


def test_autocast_runs_layers_in_bf16_on_cpu():
    layer = torch.nn.Linear(4, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert layer(torch.ones(2, 4)).dtype == torch.bfloat16
    with autocast(torch.device("cpu")):
        assert layer(torch.ones(2, 4)).dtype == torch.float32


def test_predict_logits_is_fp32_under_any_precision(digits):
    model, _ = _fit(digits, precision="fp32", epochs=1)
    reference = predict_logits(model, digits["test_x"])
    with precision_scope("bf16"), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = predict_logits(model, digits["test_x"])
        rounded = model(digits["test_x"][:64].float() / 255).float()
    assert logits.dtype == torch.float32 and torch.equal(logits, reference)
    assert not torch.equal(rounded, reference[:64])  # what autocast would have given: bf16-rounded logits


def test_importance_is_fp32_under_bf16_autocast(digits):
    model, _ = _fit(digits, precision="fp32", epochs=1)
    batches = [(digits["train_x"][:32].float() / 255, digits["train_y"][:32])]
    reference = per_sample_gradient_importance(model, batches, cross_entropy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_bf16 = per_sample_gradient_importance(model, batches, cross_entropy)
    assert all(v.dtype == torch.float32 and torch.equal(v, reference[k]) for k, v in under_bf16.items())


def _run(trained_task, name, precision, compile=False, **hparams):
    model, task = trained_task("tiny_cnn")
    task.precision, task.compile = precision, compile
    return run_method(name, model, task, hparams)


def test_one_shot_method_is_unchanged_by_bf16(digits, trained_task):
    """SSD computes importances (always fp32) and dampens: bf16 must change nothing."""
    a = _run(trained_task, "ssd", "fp32").state_dict()
    b = _run(trained_task, "ssd", "bf16").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name,hparams", [("finetune", {"epochs": 2, "lr": 0.05}), ("salun", {"epochs": 2, "budget": 0.5})])
def test_fine_tuning_and_localized_methods_in_bf16_match_fp32(digits, trained_task, name, hparams):
    fp32 = helpers.accuracies(_run(trained_task, name, "fp32", **hparams), digits)
    bf16 = helpers.accuracies(_run(trained_task, name, "bf16", **hparams), digits)
    assert all(abs(fp32[k] - bf16[k]) <= 0.03 for k in fp32), (fp32, bf16)


@pytest.mark.slow  # inductor compiles C++ kernels: ~25-70 s on one core
def test_compiled_bf16_fit_and_methods_on_cpu_match_eager_fp32(digits, trained_task):
    eager, eager_loss = _fit(digits, precision="fp32")
    compiled, compiled_loss = _fit(digits, precision="fp32", compile=True)
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-4)
    _, compiled_bf16_loss = _fit(digits, precision="bf16", compile=True)
    assert compiled_bf16_loss == pytest.approx(eager_loss, rel=0.02)
    fp32 = helpers.accuracies(_run(trained_task, "finetune", "fp32", epochs=1, lr=0.05), digits)
    bf16 = helpers.accuracies(_run(trained_task, "finetune", "bf16", compile=True, epochs=1, lr=0.05), digits)
    assert all(abs(fp32[k] - bf16[k]) <= 0.03 for k in fp32), (fp32, bf16)


def test_nan_loss_raises_with_step_and_value(digits):
    model = create_model("tiny_cnn", "digits")
    loader = training_loader(digits["train_x"][:256], digits["train_y"][:256], get_spec("digits"), 64, seed=0, device="cpu")
    calls = []

    def loss(m, x, y):  # finite for two steps, then infinite
        calls.append(1)
        return torch.nn.functional.cross_entropy(m(x), y) * (math.inf if len(calls) > 2 else 1.0)

    with pytest.raises(FloatingPointError, match=r"loss became (inf|nan) at step 2; lower the learning rate"):
        fit(model, loader, Recipe(epochs=3, lr=0.01), loss_fn=loss)
    assert len(calls) == 4  # raised at the end of the first epoch, not after the second


def test_fit_step_loop_has_no_per_step_host_sync():
    source = inspect.getsource(fit)
    loop = source[source.index("for x, y in bar:"):source.index("\n        _check_finite(first_bad, desc)")]  # the step loop
    per_step = loop.split("if step % CHECK_EVERY == 0:")[0]  # the part run on every step
    assert not re.search(r"\.item\(\)|\.tolist\(\)|\.cpu\(\)|if not torch|float\(loss", per_step), per_step


def test_gpu_hours_prints_a_row_per_paper(capsys):
    import runpy
    import sys as _sys

    from helpers import REPO

    papers = sorted(p.stem for p in (REPO / "config" / "papers").glob("*.yaml"))
    argv, _sys.argv = _sys.argv, ["gpu_hours.py"]
    try:
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(REPO / "benchmarks" / "gpu_hours.py"), run_name="__main__")
    finally:
        _sys.argv = argv
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for paper in papers:
        row = re.search(rf"^\| {paper} \| \*\*all\*\* \| ([\d,]+) \| ([\d.,]+) \|$", out, re.M)
        assert row and int(row[1].replace(",", "")) > 0 and float(row[2].replace(",", "")) > 0, out


@pytest.mark.slow  # the whole device check on tiny sizes, the shortened quick preset via Snakemake: 3-5 min
def test_gpu_check_runs_end_to_end_on_the_cpu():
    import subprocess
    import sys as _sys

    from helpers import REPO

    done = subprocess.run([_sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--tiny"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| check")]
    assert len(rows) == 7 and all(row.endswith("| ok |") for row in rows), done.stdout
