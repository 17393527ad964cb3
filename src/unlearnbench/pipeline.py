"""The DAG's steps as plain functions of paths and parameters; the Snakemake rules call these and nothing else.

data -> split -> original -> unlearn (retrain oracle included) -> logits -> metrics -> table -> figure
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from . import UserError
from .checkpoint import build_model, load_model, model_config, save_checkpoint
from .data import get_spec, load_dataset, prepare_dataset, save_dataset, training_loader
from .io import atomic_path, atomic_write_json, provenance
from .methods import Subset, UnlearnTask, run_method
from .mnemonic_codes import code_pixels, make_codes, mnemonic_loss, mnemonic_settings
from .splits import load_split, make_split, save_split
from .train import Recipe, fit, predict_logits, resolve_device, set_seed

log = logging.getLogger(__name__)


def prepare_data(dataset: dict, out: str, root: str = "data") -> None:
    """Decode a data set (``{name, source, path, train_size, test_size, seed}``) into one uint8 tensor artifact."""
    cfg = dict(dataset)
    name = cfg.pop("name")
    data = prepare_dataset(name, cfg.pop("source", "torchvision"), root=root, **cfg)
    log.info("%s: %d train, %d test images of shape %s", name, len(data["train_y"]), len(data["test_y"]), tuple(data["train_x"].shape[1:]))
    save_dataset(data, out)


def split(data_path: str, scenario: dict, seed: int, out: str) -> None:
    split = make_split(scenario, load_dataset(data_path), seed=seed)
    log.info("forget %d, retain %d, test_forget %d", len(split["forget"]), len(split["retain"]), len(split["test_forget"]))
    save_split(split, out)


def train_original(
    data_path: str, model: dict, train: dict, seed: int, out: str, device: str = "auto", compile: bool = False, mnemonic: dict | None = None,
    precision: str = "auto",
) -> None:
    """Train the original model on the whole training set; the checkpoint keeps its initial weights.

    ``mnemonic`` (``{t_mix, distribution, seed}``) trains with mnemonic codes (``mnemonic_codes``) and stores the
    codes in the checkpoint's ``meta["mnemonic"]``. A pretrained model (``vit_b_16``) starts from its pretrained
    weights, which ``meta["pretrained"]`` names and the stored initial weights hold (the retrain oracle starts there
    too).
    """
    data = load_dataset(data_path)
    dev = resolve_device(device)
    recipe = Recipe.from_dict(train)
    config = model_config(model["name"], model["dataset"], model.get("options"))
    spec = get_spec(config["dataset"])
    meta, loss_fn = {"seed": seed}, None
    if mnemonic is not None:
        settings = mnemonic_settings(mnemonic, seed)
        codes = make_codes(spec.num_classes, (spec.channels, spec.size, spec.size), distribution=settings["distribution"], seed=settings["seed"])
        loss_fn = mnemonic_loss(code_pixels(codes, spec).to(dev), settings["t_mix"], seed=seed, label_smoothing=recipe.label_smoothing)
        meta["mnemonic"] = {**settings, "codes": codes}
    set_seed(seed)
    net = build_model(config, pretrained=True)
    if net.pretrained is not None:
        meta["pretrained"] = net.pretrained
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    loader = training_loader(data["train_x"], data["train_y"], spec, recipe.batch_size, seed=seed, device=dev,
                             augment=recipe.augment)
    start = time.perf_counter()
    history = fit(net, loader, recipe, loss_fn=loss_fn, compile=compile, precision=precision, desc="original")
    save_checkpoint(out, net, config, initial_state=initial, meta={**meta, "seconds": time.perf_counter() - start, "history": history})


def unlearn(
    original_path: str, data_path: str, split_path: str, method: dict, model: dict, train: dict, scenario: dict,
    seed: int, out_model: str, out_run: str, out_logits: str, device: str = "auto", compile: bool = False,
    precision: str = "auto",
) -> None:
    """Run one method on a copy of the original model; record its wall time (evaluation excluded) and cache the
    unlearned model's logits on the whole training and test sets with their labels (``logits.npz``)."""
    config = model_config(model["name"], model["dataset"], model.get("options"))
    net, ckpt = load_model(original_path, expected_config=config)
    data, split = load_dataset(data_path), load_split(split_path)
    dev = resolve_device(device)
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
    save_checkpoint(out_model, net, config, meta={"method": method, "seconds": seconds, "seed": seed})
    save_logits(net, data, out_logits, dev)
    atomic_write_json({"method": method, "seconds": seconds, "untimed_seconds": task.untimed_seconds, "seed": seed,
                       "record": task.record, "provenance": provenance()}, out_run)


def save_logits(net: torch.nn.Module, data: dict, out: str, device: torch.device) -> None:
    """Logits (eval mode, no augmentation, fp32 whatever the training precision) of the whole training and test
    sets, with their labels."""
    arrays = {
        "train_logits": predict_logits(net, data["train_x"], device=device).numpy(),
        "test_logits": predict_logits(net, data["test_x"], device=device).numpy(),
        "train_y": data["train_y"].numpy(),
        "test_y": data["test_y"].numpy(),
    }
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

