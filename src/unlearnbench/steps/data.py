"""Steps of ``workflow/rules/data.smk``: decode a data set, download an index file, draw a forget split."""

from __future__ import annotations

import logging

from ..data import load_dataset, prepare_dataset, save_dataset
from ..splits import fetch_index, make_split, save_split  # noqa: F401  (fetch_index is a step as it is)

log = logging.getLogger(__name__)


def prepare_data(dataset: dict, out: str, root: str = "data") -> None:
    """Decode a data set (``{name, source, path, train_size, test_size, seed}``) into one uint8 tensor artifact."""
    cfg = dict(dataset)
    name = cfg.pop("name")
    data = prepare_dataset(name, cfg.pop("source", "torchvision"), root=root, **cfg)
    log.info("%s: %d train, %d test images of shape %s", name, len(data["train_y"]), len(data["test_y"]),
             tuple(data["train_x"].shape[1:]))
    save_dataset(data, out)


def split(data_path: str, scenario: dict, seed: int, out: str) -> None:
    """The forget/retain (and test_forget/test_retain) indices of ``scenario`` for ``seed``."""
    split = make_split(scenario, load_dataset(data_path), seed=seed)
    log.info("forget %d, retain %d, test_forget %d", len(split["forget"]), len(split["retain"]),
             len(split["test_forget"]))
    save_split(split, out)
