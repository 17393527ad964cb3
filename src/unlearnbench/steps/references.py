"""Steps of ``workflow/rules/references.smk``: the incompetent teacher's logits, a run's relearn time and the
ensembles of oracles and unlearned models (U-LiRA's extra retrain oracles are the oracle ensemble's first ones)."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from ..checkpoint import load_model, model_config
from ..data import get_spec, load_dataset, training_loader
from ..ensemble import train_oracles
from ..io import atomic_path, atomic_write_json, load_npz, provenance
from ..methods.bad_teacher import incompetent_teacher
from ..references import relearn_curve, relearn_recipe
from ..references import shadow_membership as membership_matrix
from ..splits import load_split
from ..train import Recipe, predict_logits, resolve_device, set_seed
from .train import train_model
from .unlearn import logits_of, run_unlearning, save_logits

log = logging.getLogger(__name__)


def incompetent_logits(data_path: str, model: dict, seed: int, out: str, device: str = "auto") -> None:
    """Logits of the incompetent teacher of seed ``seed`` (Chundawat et al. 2023): the very network Bad Teacher
    distils from (``bad_teacher.incompetent_teacher``), as in SSD's code, where ZRF and Bad Teacher share it."""
    net = incompetent_teacher(model_config(model["name"], model["dataset"], model.get("options")), seed)
    save_logits(net, load_dataset(data_path), out, resolve_device(device))


def original_forget_accuracy(original_path: str, data: dict, forget, device) -> float:
    """Forget accuracy of the original model, from its checkpoint (``.pt``) or the cached logits of the ``original``
    method's run (``logits.npz``, eval mode, no augmentation: the same numbers)."""
    y = data["train_y"][forget]
    if str(original_path).endswith(".npz"):
        logits = torch.from_numpy(np.load(original_path)["train_logits"][np.asarray(forget)])
    else:
        logits = predict_logits(load_model(original_path)[0], data["train_x"][forget], device=device)
    return float((logits.argmax(1) == y).float().mean())


def relearn(
    model_path: str, data_path: str, split_path: str, original_path: str, train: dict, seed: int, out: str, *,
    threshold: float = 1.0, absolute: bool = False, max_epochs: int = 50, lr: float = 0.01,
    batch_size: int | None = None, device: str = "auto",
) -> None:
    """Relearn time (after Golatkar et al. 2020 and SCRUB's ``readout_retrain``): epochs of plain SGD (constant
    ``lr``, no momentum or weight decay, the data set's training augmentation) on the forget set until its
    accuracy (eval mode, no augmentation) reaches ``threshold`` times the original model's forget accuracy (1.0:
    the original's level, as Golatkar et al.'s loss threshold "original's forget loss + 1e-5"; Chundawat et al.
    2023's Anamnesis Index counts steps to come within a fraction of it); ``absolute``: ``threshold`` is the
    forget accuracy itself. ``max_epochs`` where it never does (censored)."""
    net, ckpt = load_model(model_path)
    data, split = load_dataset(data_path), load_split(split_path)
    dev = resolve_device(device)
    reference = None if absolute else original_forget_accuracy(original_path, data, split["forget"], dev)
    target = threshold if absolute else threshold * reference
    recipe = relearn_recipe(Recipe.from_dict(train), lr, batch_size)
    x, y = data["train_x"][split["forget"]], data["train_y"][split["forget"]]
    set_seed(seed)
    loader = training_loader(x, y, get_spec(ckpt["model_config"]["dataset"]), recipe.batch_size, seed=seed, device=dev)
    history = relearn_curve(net, x, y, loader, recipe, target, max_epochs, dev)
    epoch = len(history) - 1
    log.info("forget accuracy %.3f after %d relearn epochs (threshold %.3f)", history[-1], epoch, target)
    atomic_write_json({"epochs": epoch, "reached": history[-1] >= target, "forget_acc": history, "threshold": target,
                       "fraction": None if absolute else threshold, "original_forget_acc": reference,
                       "max_epochs": max_epochs, "lr": lr, "seed": seed, "provenance": provenance()}, out)


def ensemble(
    original_path: str, data_path: str, split_path: str, method: dict, model: dict, train: dict, scenario: dict,
    seeds: list[int], out: str, device: str = "auto", compile: bool = False, precision: str = "auto",
    stacked: bool | str = "auto",
) -> None:
    """Several models of an ensemble: ``method`` on a copy of the original with each of ``seeds`` (the oracle
    ensemble: ``retrain`` from fresh weights, the seed its training seed). Only their logits are kept, stacked
    ``[len(seeds), n, classes]`` (``train_logits``, ``test_logits``) with the labels, the seeds and each model's
    method time. The oracle ensemble's models train at once (``ensemble.train_oracles``) where ``stacked`` is true,
    or ``auto`` on a GPU (on 2 CPU cores stacking took 1.55x the sequential time; ``compile`` is not applied then);
    every other ensemble, one model after another."""
    data, split, dev = load_dataset(data_path), load_split(split_path), resolve_device(device)
    oracles = method == {"method": "retrain", "from_initial": False}
    if oracles and (stacked is True or (stacked == "auto" and dev.type == "cuda")):
        config, retain = model_config(model["name"], model["dataset"], model.get("options")), split["retain"]
        start = time.perf_counter()
        nets = train_oracles(config, data["train_x"][retain], data["train_y"][retain], get_spec(config["dataset"]),
                             Recipe.from_dict(train), seeds, dev, precision)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / len(seeds)
        log.info("%d oracles trained at once: %.2f s per model", len(seeds), seconds)
        runs = [(logits_of(net, data, dev), seconds) for net in nets]
    else:
        runs = []
        for seed in seeds:
            net, _, record = run_unlearning(original_path, data, split, method, model, train, scenario, seed, dev,
                                            compile, precision)
            runs.append((logits_of(net, data, dev), record["seconds"]))
            log.info("ensemble model with seed %d: %.2f s", seed, record["seconds"])
    arrays = {key: np.stack([lg[key] for lg, _ in runs]) for key in ("train_logits", "test_logits")}
    arrays |= {"train_y": runs[0][0]["train_y"], "test_y": runs[0][0]["test_y"], "seeds": np.asarray(seeds),
               "seconds": np.asarray([s for _, s in runs])}
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def shadow_membership(data_path: str, shadows: int, seed: int, out: str) -> None:
    """U-LiRA's membership matrix ``in_train`` ``[shadows, n_train]`` (``references.shadow_membership``)."""
    in_train = membership_matrix(len(load_dataset(data_path)["train_y"]), shadows, seed)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, in_train=in_train)


def shadow_original(
    data_path: str, membership_path: str, shadow: int, model: dict, train: dict, seed: int, out: str,
    device: str = "auto", compile: bool = False, mnemonic: dict | None = None, precision: str = "auto",
) -> None:
    """U-LiRA shadow original ``shadow``: ``train_original`` on its half of the training set."""
    data = load_dataset(data_path)
    keep = torch.from_numpy(load_npz(membership_path, "membership file", ("in_train",))["in_train"][shadow])
    part = {k: (v[keep] if k.startswith("train_") else v) for k, v in data.items()}
    train_model(part, model, train, seed, out, device, compile, mnemonic, precision)


def shadow_unlearn(
    original_paths: list[str], data_path: str, split_path: str, membership_path: str, shadows: list[int],
    method: dict, model: dict, train: dict, scenario: dict, seeds: list[int], out: str, device: str = "auto",
    compile: bool = False, precision: str = "auto",
) -> None:
    """U-LiRA shadows ``shadows`` (originals ``original_paths``, seeds ``seeds``) unlearned with ``method``, one after
    another: each one's forget set is D_f within its half, its retain set the rest of its half. Only the logits are
    kept, stacked ``[len(shadows), n, classes]`` (whole training and test sets)."""
    data, dev = load_dataset(data_path), resolve_device(device)
    full = dict(load_split(split_path))
    in_train = load_npz(membership_path, "membership file", ("in_train",))["in_train"]
    forget, runs = np.asarray(full["forget"]), []
    for original_path, shadow, seed in zip(original_paths, shadows, seeds):
        inside = in_train[shadow]
        split = {**full, "forget": forget[inside[forget]], "retain": np.setdiff1d(np.flatnonzero(inside), forget)}
        net, _, record = run_unlearning(original_path, data, split, method, model, train, scenario, seed, dev,
                                        compile, precision)
        log.info("shadow %d: %d forget, %d retain, %.2f s", shadow, len(split["forget"]), len(split["retain"]),
                 record["seconds"])
        runs.append(logits_of(net, data, dev))
    arrays = {key: np.stack([lg[key] for lg in runs]) for key in ("train_logits", "test_logits")}
    arrays |= {"shadows": np.asarray(shadows), "seeds": np.asarray(seeds)}
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
