"""Unlearning methods, one module each, registered by name.

A method is a function ``fn(model, task, **hyperparameters) -> model``: it receives the original model (a copy it
may change in place), an ``UnlearnTask`` (forget and retain data, the original recipe and initial weights, the
device and seed) and its hyperparameters as keyword arguments with defaults. It returns the unlearned model.

To add a method, put a module in this package with a function decorated by ``@register_method``; it is found by
import, and the DAG runs it once it is named in a config's ``methods``. See ``docs/adding_a_method.md``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .. import UserError
from ..data import DatasetSpec, InMemoryLoader, training_loader
from ..splits import KINDS
from ..train import Recipe, precision_scope
from ..values import check_value

METHODS: dict[str, Callable[..., nn.Module]] = {}


SCENARIO_KINDS: dict[str, tuple[str, ...]] = {}  # the forget scenarios each method applies to


def register_method(fn: Callable | None = None, *, name: str | None = None, scenarios: tuple[str, ...] = KINDS):
    """Register ``fn`` under ``name`` (default: the function's name).

    ``scenarios`` lists the scenario kinds the method applies to (e.g. only class forgetting); the DAG leaves the
    other combinations out and the tables show them as missing.
    """

    def wrap(fn):
        key = name or fn.__name__
        if key in METHODS and METHODS[key] is not fn:
            raise ValueError(f"method {key!r} is registered twice ({METHODS[key].__module__}, {fn.__module__})")
        METHODS[key] = fn
        SCENARIO_KINDS[key] = tuple(scenarios)
        return fn

    return wrap(fn) if fn is not None else wrap


@dataclass
class Subset:
    """Images (uint8 ``[n, C, H, W]``) and labels (``None`` where a method must not see them) of some samples."""

    x: torch.Tensor
    y: torch.Tensor | None
    index: torch.Tensor | None = None  # positions in the training set
    fine: torch.Tensor | None = None  # fine labels where the data set has them (CIFAR-20: the CIFAR-100 class)

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class UnlearnTask:
    """Everything a method may use besides the model."""

    forget: Subset
    retain: Subset
    spec: DatasetSpec
    recipe: Recipe  # the original model's training recipe (the retrain oracle reuses it)
    initial_state: dict | None  # the weights the original model started from
    model_config: dict
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    compile: bool = False
    precision: str = "auto"  # auto | bf16 | fp32: the default of every fit inside the method (train.py)
    scenario: dict = field(default_factory=dict)
    mnemonic: dict | None = None  # the original's mnemonic codes and settings, when it was trained with them
    record: dict = field(default_factory=dict)  # what a method wants saved in run.json (e.g. per-epoch curves)
    test_forget: Subset | None = None  # test images of the forgotten classes (empty for random forgetting)
    test_retain: Subset | None = None  # test images of the remaining classes (the whole test set for random)
    untimed_seconds: float = 0.0  # seconds spent inside ``untimed()``, left out of the method's time

    def loader(self, subset: Subset, batch_size: int, *, shuffle: bool = True, augment: bool = True) -> InMemoryLoader:
        """Batches of a subset on the task's device; ``augment`` uses the data set's training augmentation."""
        if shuffle:
            return training_loader(subset.x, subset.y, self.spec, batch_size, seed=self.seed, device=self.device, augment=augment)
        return InMemoryLoader(subset.x, subset.y, batch_size=batch_size, device=self.device)

    @contextmanager
    def untimed(self):
        """A block left out of the method's wall time (``method_seconds``, RTE), e.g. per-epoch evaluation: its
        seconds accumulate in ``untimed_seconds``, which ``pipeline.unlearn`` subtracts (CUDA synchronised)."""
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            if cuda:
                torch.cuda.synchronize(self.device)
            self.untimed_seconds += time.perf_counter() - start


def get_method(name: str) -> Callable[..., nn.Module]:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def hyperparameters(name: str) -> dict:
    """The method's hyperparameters and their defaults, read from its signature."""
    params = list(inspect.signature(get_method(name)).parameters.values())[2:]
    return {p.name: p.default for p in params}


def check_hyperparameters(name: str, hparams: dict) -> None:
    valid = hyperparameters(name)
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise UserError(f"method {name!r} has no hyperparameter(s) {unknown}; valid: {', '.join(valid) or 'none'}")
    params = inspect.signature(get_method(name)).parameters
    for key, value in hparams.items():  # the default's type: bool, number, text, list (None: any); epochs etc. > 0
        check_value(f"method {name!r}", key, value, valid[key], nullable="None" in str(params[key].annotation))


def supports(name: str, scenario_kind: str) -> bool:
    get_method(name)
    return scenario_kind in SCENARIO_KINDS[name]


def run_method(name: str, model: nn.Module, task: UnlearnTask, hparams: dict | None = None) -> nn.Module:
    hparams = dict(hparams or {})
    check_hyperparameters(name, hparams)
    kind = task.scenario.get("kind")
    if kind is not None and not supports(name, kind):
        raise UserError(f"method {name!r} applies to {', '.join(SCENARIO_KINDS[name])} scenarios, not {kind}")
    model.to(task.device)
    with precision_scope(task.precision):
        return get_method(name)(model, task, **hparams)


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
