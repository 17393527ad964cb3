"""Forget scenarios as configuration: which training samples to forget, deterministic from (data, scenario, seed).

A scenario is a dict with ``kind``:

- ``full_class``: ``classes`` (names or indices); every training sample of those classes.
- ``sub_class``: ``subclass`` (a CIFAR-100 fine class, e.g. ``rocket``) inside its CIFAR-20 superclass; the
  labels stay the superclass (the SSD / bad-teacher sub-class setting).
- ``random``: ``count`` (exact) or ``fraction`` of the training set, seeded, optionally drawn only from
  ``classes`` (DEL's non-IID forget set).

The split holds four sorted int64 index arrays: ``forget`` and ``retain`` (training set) and ``test_forget`` and
``test_retain`` (test set: the images of the forgotten classes or sub-class and the rest; for random scenarios
``test_forget`` is empty and ``test_retain`` is the whole test set).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import UserError
from .data import get_spec

KINDS = ("full_class", "sub_class", "random")


def class_index(name_or_index: str | int, classes: tuple[str, ...] | list[str], what: str = "class") -> int:
    """Resolve a class given by name or index; an unknown one is an error listing the valid names."""
    if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
        if 0 <= name_or_index < len(classes):
            return name_or_index
    elif name_or_index in classes:
        return list(classes).index(name_or_index)
    raise UserError(f"unknown {what} {name_or_index!r}; valid: {', '.join(classes)} (or an index 0-{len(classes) - 1})")


def check_scenario(scenario: dict, dataset: str) -> None:
    """Validate a scenario against a data set's classes without loading any data."""
    spec = get_spec(dataset)
    kind = scenario.get("kind")
    if kind not in KINDS:
        raise UserError(f"unknown scenario kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    for c in scenario.get("classes", []):
        class_index(c, spec.classes)
    if kind == "full_class" and not scenario.get("classes"):
        raise UserError("a full_class scenario needs a non-empty 'classes' list")
    if kind == "sub_class":
        if spec.fine_classes is None:
            raise UserError(f"sub_class scenarios need a data set with sub-classes (cifar20), not {dataset!r}")
        class_index(scenario.get("subclass"), spec.fine_classes, "sub-class")
    if kind == "random" and ("count" in scenario) == ("fraction" in scenario):
        raise UserError("a random scenario needs exactly one of 'count' and 'fraction'")


def make_split(scenario: dict, data: dict, *, seed: int) -> dict[str, torch.Tensor]:
    """Forget/retain indices of the training set and forgotten/remaining indices of the test set."""
    classes = data["classes"]
    train_y, test_y = data["train_y"], data["test_y"]
    kind = scenario["kind"]
    if kind in ("full_class", "random"):
        chosen = torch.tensor([class_index(c, classes) for c in scenario.get("classes", [])], dtype=torch.int64)
    if kind == "full_class":
        forget_mask = torch.isin(train_y, chosen)
        test_forget_mask = torch.isin(test_y, chosen)
    elif kind == "sub_class":
        if "train_fine_y" not in data:
            raise UserError("sub_class scenarios need fine labels; use the cifar20 data set")
        fine = class_index(scenario["subclass"], data["fine_classes"], "sub-class")
        forget_mask = data["train_fine_y"] == fine
        test_forget_mask = data["test_fine_y"] == fine
    elif kind == "random":
        pool = torch.nonzero(torch.isin(train_y, chosen) if len(chosen) else torch.ones_like(train_y, dtype=torch.bool))
        pool = pool.flatten()
        count = scenario["count"] if "count" in scenario else round(scenario["fraction"] * len(train_y))
        if not 0 < count <= len(pool):
            raise UserError(f"random scenario asks for {count} forget samples but its pool holds {len(pool)}; lower count/fraction")
        gen = torch.Generator().manual_seed(seed)
        forget_mask = torch.zeros_like(train_y, dtype=torch.bool)
        forget_mask[pool[torch.randperm(len(pool), generator=gen)[:count]]] = True
        test_forget_mask = torch.zeros_like(test_y, dtype=torch.bool)
    else:
        raise UserError(f"unknown scenario kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if not forget_mask.any():
        raise UserError(f"scenario {scenario} selects no training samples; check its classes")
    if forget_mask.all():
        raise UserError(f"scenario {scenario} selects the whole training set, leaving nothing to retain")
    return {
        "forget": torch.nonzero(forget_mask).flatten(),
        "retain": torch.nonzero(~forget_mask).flatten(),
        "test_forget": torch.nonzero(test_forget_mask).flatten(),
        "test_retain": torch.nonzero(~test_forget_mask).flatten(),
    }


def save_split(split: dict[str, torch.Tensor], path: str | Path) -> None:
    from .io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: v.numpy() for k, v in split.items()})


def load_split(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
