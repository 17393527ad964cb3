"""The method registry: ``@register_method`` records a function with its hyperparameters' constraints (read from
its signature: ``Literal[...]`` options, ``Annotated[float, Interval(...)]`` ranges, see ``values``), the scenario
kinds it applies to, what it needs from the experiment and the paper it implements. ``check_hyperparameters``
checks names, values and needs; the config check runs the same check at DAG parse from ``catalog`` (the same
facts read from the source without torch), and ``run_method`` runs it again before the method.

A method module must start with ``from __future__ import annotations`` (annotations are read as text) and give
literal defaults.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Callable

from .. import UserError
from ..catalog import MethodEntry, Needs, Paper, Param, normalise
from ..splits import KINDS

if TYPE_CHECKING:
    from torch import nn

    from .task import UnlearnTask

__all__ = ["METHODS", "MethodEntry", "Needs", "Paper", "check_hyperparameters", "get_method", "hyperparameters",
           "register_method", "run_method", "supports"]

METHODS: dict[str, MethodEntry] = {}


def register_method(fn: Callable | None = None, *, name: str | None = None, scenarios: tuple[str, ...] = KINDS,
                    paper: Paper | None = None, needs: tuple[Needs, ...] = ()):
    """Register ``fn(model, task, *, **hyperparameters) -> model`` under ``name`` (default: the function's name).

    ``scenarios``: the scenario kinds it applies to (the DAG leaves the others out); ``paper``: its provenance
    (README's methods table); ``needs``: experiment keys it needs (checked at parse time). A name registered twice
    is an error; so is a default that breaks its own constraint.
    """

    def wrap(fn):
        key = name or fn.__name__
        if key in METHODS and METHODS[key].fn is not fn:
            raise ValueError(f"method {key!r} is registered twice ({METHODS[key].module}, {fn.__module__})")
        params = list(inspect.signature(fn).parameters.values())[2:]
        entry = MethodEntry(
            key, {p.name: Param(p.default, normalise(p.annotation if p.annotation is not p.empty else None))
                  for p in params},
            scenarios=tuple(scenarios), paper=paper, needs=tuple(needs), module=fn.__module__, fn=fn,
        )
        try:
            entry.check(hyperparameters_of(entry))
        except UserError as err:
            raise ValueError(f"method {key!r}: a default breaks its constraint ({err})") from None
        METHODS[key] = entry
        return fn

    return wrap(fn) if fn is not None else wrap


def hyperparameters_of(entry: MethodEntry) -> dict:
    return {k: p.default for k, p in entry.params.items()}


def method_entry(name: str) -> MethodEntry:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def get_method(name: str) -> Callable[..., nn.Module]:
    return method_entry(name).fn


def hyperparameters(name: str) -> dict:
    """The method's hyperparameters and their defaults, read from its signature."""
    return hyperparameters_of(method_entry(name))


def check_hyperparameters(name: str, hparams: dict, context: dict | None = None) -> None:
    """Names, types, options and ranges of ``hparams``; with ``context`` (the experiment) also the method's needs."""
    method_entry(name).check(hparams, context)


def supports(name: str, scenario_kind: str) -> bool:
    return scenario_kind in method_entry(name).scenarios


def run_method(name: str, model: nn.Module, task: UnlearnTask, hparams: dict | None = None) -> nn.Module:
    """Check ``hparams`` and the task's scenario kind and needs, then run the method on the task's device (in the
    model's memory format there: ``train.prepare_for_device``) at its precision, with the global generator seeded
    with the task's seed (``task.fit`` seeds it again before training)."""
    from ..train import precision_scope, prepare_for_device

    entry, hparams = method_entry(name), dict(hparams or {})
    entry.check(hparams, {need.key: getattr(task, need.key, None) for need in entry.needs})
    kind = task.scenario.get("kind")
    if kind is not None and kind not in entry.scenarios:
        raise UserError(f"method {name!r} applies to {', '.join(entry.scenarios)} scenarios, not {kind}")
    prepare_for_device(model, task.device)
    task.seed_generators()
    with precision_scope(task.precision):
        return entry.fn(model, task, **hparams)
