"""Generic checks of config values against the type of their default (method hyperparameters, model options,
training recipes), so that a wrong type is one clear config error instead of a traceback or a silent result."""

from __future__ import annotations

import math

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
