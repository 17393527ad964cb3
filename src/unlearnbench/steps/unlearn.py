"""Step of ``workflow/rules/unlearn.smk`` (and of ``references.smk``'s U-LiRA oracles): one method on a copy of
the original model, timed, with the unlearned model's logits cached for every later metric."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from .. import UserError
from ..checkpoint import load_model, model_config, save_checkpoint
from ..data import get_spec, load_dataset
from ..io import atomic_path, atomic_write_json, provenance
from ..methods import Subset, UnlearnTask, run_method
from ..splits import load_split
from ..train import Recipe, predict_logits, resolve_device

log = logging.getLogger(__name__)


def unlearn(
    original_path: str, data_path: str, split_path: str, method: dict, model: dict, train: dict, scenario: dict,
    seed: int, out_model: str, out_run: str, out_logits: str, device: str = "auto", compile: bool = False,
    precision: str = "auto",
) -> None:
    """Run one method on a copy of the original model; record its wall time (evaluation excluded) and cache the
    unlearned model's logits on the whole training and test sets with their labels (``logits.npz``)."""
    data, split, dev = load_dataset(data_path), load_split(split_path), resolve_device(device)
    net, config, record = run_unlearning(original_path, data, split, method, model, train, scenario, seed, dev,
                                         compile, precision)
    save_checkpoint(out_model, net, config, meta={"method": method, "seconds": record["seconds"], "seed": seed})
    save_logits(net, data, out_logits, dev)
    atomic_write_json({**record, "provenance": provenance()}, out_run)


def run_unlearning(
    original_path: str, data: dict, split: dict, method: dict, model: dict, train: dict, scenario: dict, seed: int,
    dev: torch.device, compile: bool = False, precision: str = "auto",
) -> tuple[torch.nn.Module, dict, dict]:
    """One method on a copy of the original model: the unlearned network, its model config and its run record
    (method, wall time without the method's own evaluation, seed, the task's record)."""
    config = model_config(model["name"], model["dataset"], model.get("options"))
    net, ckpt = load_model(original_path, expected_config=config)
    fine = data.get("train_fine_y")  # CIFAR-20's fine labels (sub-class protocols group by them)

    def part(idx) -> Subset:
        return Subset(data["train_x"][idx], data["train_y"][idx], idx, None if fine is None else fine[idx])

    task = UnlearnTask(
        forget=part(split["forget"]), retain=part(split["retain"]),
        spec=get_spec(config["dataset"]), recipe=Recipe.from_dict(train), initial_state=ckpt["initial_state"],
        model_config=config, device=dev, seed=seed, compile=compile, precision=precision, scenario=scenario,
        mnemonic=ckpt["meta"].get("mnemonic"),
        test_forget=Subset(data["test_x"][split["test_forget"]], data["test_y"][split["test_forget"]]),
        test_retain=Subset(data["test_x"][split["test_retain"]], data["test_y"][split["test_retain"]]),
    )
    hparams = {k: v for k, v in method.items() if k != "method"}
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    net = run_method(method["method"], net, task, hparams)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start - task.untimed_seconds  # the method's own evaluation left out
    log.info("%s took %.2f s (%.2f s more untimed)", method["method"], seconds, task.untimed_seconds)
    if any(not torch.isfinite(p).all() for p in net.parameters()):
        raise UserError(f"method {method['method']} produced non-finite weights; check its hyperparameters {hparams}")
    return net, config, {"method": method, "seconds": seconds, "untimed_seconds": task.untimed_seconds, "seed": seed,
                         "record": task.record}


def logits_of(net: torch.nn.Module, data: dict, device: torch.device) -> dict[str, np.ndarray]:
    """Logits (eval mode, no augmentation, fp32 whatever the training precision) of the whole training and test
    sets, with their labels."""
    return {
        "train_logits": predict_logits(net, data["train_x"], device=device).numpy(),
        "test_logits": predict_logits(net, data["test_x"], device=device).numpy(),
        "train_y": data["train_y"].numpy(),
        "test_y": data["test_y"].numpy(),
    }


def save_logits(net: torch.nn.Module, data: dict, out: str, device: torch.device) -> None:
    """``logits_of`` the network, written as ``logits.npz``."""
    arrays = logits_of(net, data, device)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
