"""Run one pipeline step as a workflow job: log to a file, one clear line on a user error, non-zero exit."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Callable

import torch

from . import UserError


def run_step(step: Callable[..., object], log_path: str | None = None, threads: int | None = None, **kwargs) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_path, mode="w")]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True)
    logging.captureWarnings(True)
    warnings.filterwarnings("default")
    if threads:
        torch.set_num_threads(threads)
    try:
        step(**kwargs)
    except (UserError, FloatingPointError) as err:
        logging.getLogger(step.__module__).error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        logging.getLogger(step.__module__).exception("%s failed", step.__name__)
        raise
