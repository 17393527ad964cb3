"""Generic checks of config values against the type of their default (method hyperparameters, model options,
training recipes), so that a wrong type is one clear config error instead of a traceback or a silent result."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Literal, Optional, Union, get_args, get_origin

from . import UserError

# numbers that must be > 0 (by name); ``*_epochs`` (e.g. Fisher masking's finetune_epochs: 0) must be >= 0
POSITIVE = ("epochs", "lr", "batch_size", "width")
POSITIVE_SUFFIXES = ("_lr", "_batch_size", "_batch", "_steps", "_copies")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_value(where: str, key: str, value, default, nullable: bool = False) -> None:
    """``value`` must have the kind of ``default`` (bool, number, text, list; a ``None`` default accepts any) and
    be finite; epochs, learning rates, batch sizes and widths must be positive; ``None`` only where ``nullable``
    (the parameter's annotation allows it). Raises one ``UserError`` naming ``where``."""
    if value is None and (nullable or default is None):
        return
    def fail(what: str, hint: str = ""):
        got = f"the text {value!r}" if isinstance(value, str) else repr(value)
        raise UserError(f"{where}: {key} {what}, got {got}" + (f"; {hint}" if hint else ""))

    if isinstance(value, str) and not isinstance(default, str):
        try:
            float(value)
        except ValueError:
            pass
        else:  # YAML 1.1 reads 5e-4 (no dot, no exponent sign) as text
            fail("must be a number", "write exponents with a sign and a dot (YAML 1.1), e.g. 5.0e-4 or 1.0e+4")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            fail("must be true or false")
    elif is_number(default):
        if not is_number(value):
            fail("must be a number" + (" (one value, not a list)" if isinstance(value, (list, dict)) else ""))
    elif isinstance(default, str):
        if not isinstance(value, str):
            fail("must be text" + (" (one value, not a list)" if isinstance(value, (list, dict)) else ""))
    elif isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            fail("must be a list")
    if is_number(value):
        if not math.isfinite(value):
            fail("must be a finite number")
        if (key in POSITIVE or key.endswith(POSITIVE_SUFFIXES)) and value <= 0:
            fail("must be positive")
        if key.endswith("_epochs") and value < 0:
            fail("must be zero or positive")


def non_finite(value, path: str = "") -> list[str]:
    """Paths (``a/b/0``) of every NaN or infinite number in a nested config."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{path}/{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{path}/{i}")]
    return [path] if isinstance(value, float) and not math.isfinite(value) else []


def duplicates(items: list) -> list:
    """The values that occur more than once in ``items``, in first-seen order."""
    seen, repeated = [], []
    for item in items:
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.append(item)
    return repeated


# ----------------------------------------------------------------------------------------------------------------
# Constraints on a signature, in the manner of scikit-learn's parameter constraints: options are ``Literal[...]``,
# ranges ``Annotated[float, Interval(...)]`` (or one of the aliases below). ``check_param`` reads them, so that the
# config check at DAG parse and ``run_method`` refuse a bad value with one line, before any job runs.


@dataclass(frozen=True)
class Interval:
    """Numbers between ``low`` and ``high`` (``None``: unbounded); ``closed``: which ends belong to it."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"  # both | left | right | neither

    def __contains__(self, value) -> bool:
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        return ((self.low is None or (value >= self.low if left else value > self.low))
                and (self.high is None or (value <= self.high if right else value < self.high)))

    def describe(self) -> str:
        """``positive``, ``zero or positive``, ``at least 1`` or ``in (0, 1]``, for ``must be ...``."""
        if self.high is None and self.low == 0:
            return "positive" if self.closed in ("neither", "right") else "zero or positive"
        if self.high is None and self.low is not None and self.closed in ("both", "left"):
            return f"at least {self.low:g}"
        return f"in {self}"

    def __str__(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        return f"{left}{low}, {high}{right}"


Positive = Annotated[float, Interval(0, None, closed="neither")]
NonNegative = Annotated[float, Interval(0, None)]
PositiveInt = Annotated[int, Interval(1, None)]
NonNegativeInt = Annotated[int, Interval(0, None)]
Fraction = Annotated[float, Interval(0, 1, closed="right")]  # (0, 1]: a share of a set or of the parameters

VOCABULARY = {  # the names an annotation may use; evaluated in this namespace only (no imports, no torch)
    "Annotated": Annotated, "Literal": Literal, "Optional": Optional, "Interval": Interval, "None": None,
    "bool": bool, "int": int, "float": float, "str": str, "list": list, "tuple": tuple, "dict": dict,
    "Positive": Positive, "NonNegative": NonNegative, "PositiveInt": PositiveInt, "NonNegativeInt": NonNegativeInt,
    "Fraction": Fraction,
}


@dataclass(frozen=True)
class Constraint:
    """What an annotation allows: ``types`` (empty: any), ``options`` (a ``Literal``), ``intervals``, ``None``."""

    types: tuple = ()
    options: tuple = ()
    intervals: tuple = ()
    nullable: bool = False


def constraint_of(annotation: str | None) -> Constraint:
    """The constraint of an annotation's source text (``"Positive | None"``); unknown names allow any value."""
    if not annotation:
        return Constraint()
    try:
        hint = eval(annotation, {"__builtins__": {}}, VOCABULARY)  # noqa: S307 - names from VOCABULARY only
    except Exception:  # noqa: BLE001 - e.g. nn.Module: not a hyperparameter constraint
        return Constraint()
    return _constraint(hint)


def _constraint(hint) -> Constraint:
    origin, args = get_origin(hint), get_args(hint)
    if hint is None or hint is type(None):
        return Constraint(nullable=True)
    if origin is Literal:
        return Constraint(options=args)
    if origin is Annotated:
        inner = _constraint(args[0])
        extra = tuple(a for a in args[1:] if isinstance(a, Interval))
        return Constraint(inner.types, inner.options, inner.intervals + extra, inner.nullable)
    if origin in (Union, UnionType):
        parts = [_constraint(a) for a in args]
        return Constraint(sum((p.types for p in parts), ()), sum((p.options for p in parts), ()),
                          sum((p.intervals for p in parts), ()), any(p.nullable for p in parts))
    if isinstance(hint, type):
        return Constraint(types=(hint,))
    if origin in (list, tuple, dict):
        return Constraint(types=(origin,))
    return Constraint()


def check_param(where: str, key: str, value, default, annotation: str | None) -> None:
    """``check_value`` (the type of the default, finite numbers) plus the annotation's options and ranges."""
    c = constraint_of(annotation)
    check_value(where, key, value, default, nullable=c.nullable)
    if value is None:
        return
    got = f"the text {value!r}" if isinstance(value, str) else repr(value)
    if c.options and value not in c.options:
        raise UserError(f"{where}: unknown {key} {value!r}; valid: {', '.join(map(str, c.options))}")
    if c.types and not any(_is(value, t) for t in c.types):
        kinds = " or ".join(TYPE_WORDS.get(t, t.__name__) for t in c.types)
        raise UserError(f"{where}: {key} must be {kinds}, got {got}")
    if is_number(value) and c.intervals and not any(value in i for i in c.intervals):
        raise UserError(f"{where}: {key} must be {' or '.join(i.describe() for i in c.intervals)}, got {got}")


TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text", list: "a list",
              tuple: "a list"}


def _is(value, kind: type) -> bool:
    if kind is float:
        return is_number(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, kind)
