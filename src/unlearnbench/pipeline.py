"""The DAG's steps as plain functions of paths and parameters; the Snakemake rules call these and nothing else.

data -> split -> original -> unlearn (retrain oracle included) -> logits -> metrics -> table -> figure
"""

from __future__ import annotations

import copy
import logging
import subprocess
import time
from pathlib import Path

import torch

from . import UserError, __version__
from . import metrics as metrics_lib
from .checkpoint import build_model, load_model, model_config, save_checkpoint
from .data import get_spec, load_dataset, prepare_dataset, save_dataset, training_loader
from .io import atomic_torch_save, atomic_write_json
from .methods import Subset, UnlearnTask, run_method
from .report import write_figure, write_table
from .splits import load_split, make_split, save_split
from .train import Recipe, fit, predict_logits, resolve_device, set_seed

log = logging.getLogger(__name__)


def provenance() -> dict:
    """Package version and the git commit of the code that ran (``-dirty`` when uncommitted changes exist)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
        commit += "-dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"package_version": __version__, "git_commit": commit, "torch_version": torch.__version__}


def step_prepare_data(dataset: dict, out: str, root: str = "data") -> None:
    """Decode a data set (``{name, source, path, train_size, test_size, seed}``) into one uint8 tensor artifact."""
    cfg = dict(dataset)
    name = cfg.pop("name")
    data = prepare_dataset(name, cfg.pop("source", "torchvision"), root=root, **cfg)
    log.info("%s: %d train, %d test images of shape %s", name, len(data["train_y"]), len(data["test_y"]), tuple(data["train_x"].shape[1:]))
    save_dataset(data, out)


def step_split(data_path: str, scenario: dict, seed: int, out: str) -> None:
    split = make_split(scenario, load_dataset(data_path), seed=seed)
    log.info("forget %d, retain %d, test_forget %d", len(split["forget"]), len(split["retain"]), len(split["test_forget"]))
    save_split(split, out)


def step_train(data_path: str, model: dict, train: dict, seed: int, out: str, device: str = "auto", compile: bool = False) -> None:
    """Train the original model on the whole training set; the checkpoint keeps its initial weights."""
    data = load_dataset(data_path)
    dev = resolve_device(device)
    recipe = Recipe.from_dict(train)
    config = model_config(model["name"], model["dataset"], model.get("options"))
    set_seed(seed)
    net = build_model(config)
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    loader = training_loader(data["train_x"], data["train_y"], get_spec(config["dataset"]), recipe.batch_size, seed=seed, device=dev)
    start = time.perf_counter()
    history = fit(net, loader, recipe, compile=compile, desc="original")
    save_checkpoint(out, net, config, initial_state=initial, meta={"seconds": time.perf_counter() - start, "history": history, "seed": seed})


def step_unlearn(
    original_path: str, data_path: str, split_path: str, method: dict, model: dict, train: dict, scenario: dict,
    seed: int, out_model: str, out_run: str, device: str = "auto", compile: bool = False,
) -> None:
    """Run one method on a copy of the original model; record its wall time (evaluation excluded)."""
    config = model_config(model["name"], model["dataset"], model.get("options"))
    net, ckpt = load_model(original_path, expected_config=config)
    data, split = load_dataset(data_path), load_split(split_path)
    dev = resolve_device(device)
    task = UnlearnTask(
        forget=Subset(data["train_x"][split["forget"]], data["train_y"][split["forget"]], split["forget"]),
        retain=Subset(data["train_x"][split["retain"]], data["train_y"][split["retain"]], split["retain"]),
        spec=get_spec(config["dataset"]), recipe=Recipe.from_dict(train), initial_state=ckpt["initial_state"],
        model_config=config, device=dev, seed=seed, compile=compile, scenario=scenario,
    )
    hparams = {k: v for k, v in method.items() if k != "method"}
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    net = run_method(method["method"], net, task, hparams)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    log.info("%s took %.2f s", method["method"], seconds)
    if any(not torch.isfinite(p).all() for p in net.parameters()):
        raise UserError(f"method {method['method']} produced non-finite weights; check its hyperparameters {hparams}")
    save_checkpoint(out_model, net, config, meta={"method": method, "seconds": seconds, "seed": seed})
    atomic_write_json({"method": method, "seconds": seconds, "seed": seed}, out_run)


def step_logits(model_path: str, data_path: str, out: str, device: str = "auto") -> None:
    """Cache the model's logits on the whole training and test sets (eval mode, no augmentation)."""
    net, _ = load_model(model_path)
    data = load_dataset(data_path)
    dev = resolve_device(device)
    atomic_torch_save({"train": predict_logits(net, data["train_x"], device=dev), "test": predict_logits(net, data["test_x"], device=dev)}, out)


def step_metrics(logits_path: str, data_path: str, split_path: str, run_path: str, names: list[str], context: dict, out: str) -> None:
    """Compute metrics from cached artifacts and write them with the run's configuration and provenance."""
    import json

    logits = torch.load(logits_path, weights_only=True)
    data = load_dataset(data_path)
    run = json.loads(Path(run_path).read_text())
    ev = metrics_lib.Evaluation(logits["train"], logits["test"], data["train_y"], data["test_y"], load_split(split_path), run, run.get("seed", 0))
    values = metrics_lib.compute(ev, names)
    atomic_write_json({**copy.deepcopy(context), "metrics": values, "provenance": provenance()}, out)


step_table = write_table
step_figure = write_figure
