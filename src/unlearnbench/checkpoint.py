"""Checkpoints: model weights, the initial weights they were trained from, and what built them.

Written atomically; read with ``weights_only=True``. A checkpoint rebuilds its own model (``load_model``), and a
mismatch with what the config expects is a clear error rather than a silent reload.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import nn

from . import UserError
from .io import atomic_torch_save
from .models import MODELS, create_model
from .resnet import weights_loaded_next


def model_config(name: str, dataset: str, options: dict | None = None) -> dict:
    return {"name": name, "dataset": dataset, "options": dict(options or {})}


def save_checkpoint(path: str | Path, model: nn.Module, config: dict, *, initial_state: dict | None = None, meta: dict | None = None) -> None:
    atomic_torch_save(
        {
            "model_config": config,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "initial_state": initial_state,
            "meta": meta or {},
        },
        path,
    )


def load_checkpoint(path: str | Path) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint {path} does not exist; run the workflow to create it") from None
    except Exception as err:  # noqa: BLE001 - truncated or foreign files alike
        raise UserError(f"checkpoint {path} is corrupt ({type(err).__name__}); delete it and rerun the workflow") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "model_config" not in ckpt:
        raise UserError(f"{path} is not a checkpoint of this project; delete it and rerun the workflow")
    return ckpt


def build_model(config: dict, *, pretrained: bool = False) -> nn.Module:
    """A fresh model from a ``model_config``. A model with a ``weights`` option (``vit_b_16``) gets its pretrained
    weights only with ``pretrained=True`` (training the original; ``model.pretrained`` says which); otherwise it is
    randomly initialised and nothing is read or fetched (a checkpoint holds the weights it needs)."""
    options = dict(config["options"])
    if not pretrained and "weights" in inspect.signature(MODELS.get(config["name"], lambda: None)).parameters:
        options["weights"] = "none"
    return create_model(config["name"], config["dataset"], **options)


def load_model(path: str | Path, expected_config: dict | None = None) -> tuple[nn.Module, dict]:
    ckpt = load_checkpoint(path)
    if expected_config is not None and ckpt["model_config"] != expected_config:
        raise UserError(
            f"checkpoint {path} was made for {ckpt['model_config']} but the config asks for {expected_config}; "
            "delete it (or rerun with --forcerun) to rebuild it"
        )
    with weights_loaded_next():  # every weight comes from the checkpoint: no draws for the random init's sake
        model = build_model(ckpt["model_config"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise UserError(f"checkpoint {path} does not fit its model ({str(err).splitlines()[0]}); delete it and rerun") from None
    return model.eval(), ckpt
