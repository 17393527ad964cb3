"""Run one workflow step (``unlearnbench.steps``) as a job: log to a file, one clear line on a user error, non-zero
exit."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from pathlib import Path

from . import UserError


def run_step(step: str, log_path: str | None = None, threads: int | None = None, granted: int | None = None, **kwargs) -> None:
    """Run ``unlearnbench.steps.<stage>.<function>`` (``step`` = "<stage>.<function>") with ``kwargs``.

    Heavy libraries are imported by the step's own module only, so a metrics job never loads torch. ``threads``
    (the config's) is used even where the scheduler ``granted`` fewer cores (``--cores``), since results depend
    on the thread count; the log says so.
    """
    if threads:  # before torch is imported anywhere in this process
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_path, mode="w")]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True)
    if threads and granted and granted < threads:
        logging.getLogger(__name__).warning("computing with the config's %d threads, although --cores grants %d", threads, granted)
    logging.captureWarnings(True)
    warnings.filterwarnings("default")
    stage, function = step.rsplit(".", 1)
    step = getattr(importlib.import_module(f"unlearnbench.steps.{stage}"), function)
    try:
        step(**kwargs)
    except (UserError, FloatingPointError) as err:
        logging.getLogger(step.__module__).error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        logging.getLogger(step.__module__).exception("%s failed", step.__name__)
        raise


def step_kwargs(parts: dict[str, dict]) -> dict:
    """A rule's named ``input``, ``output`` and ``params`` (``parts``) as one set of keyword arguments; a name in
    two of them is an error, not a silent override."""
    kwargs, seen = {}, {}
    for part, named in parts.items():
        for name, value in named.items():
            if name in kwargs:
                raise UserError(f"the rule names {name!r} in both its {seen[name]} and its {part}; rename one")
            kwargs[name], seen[name] = value, part
    return kwargs
