"""Forget scenarios as configuration: which training samples to forget, deterministic from (data, scenario, seed).

A scenario is a dict with ``kind``:

- ``full_class``: ``classes`` (names or indices); every training sample of those classes.
- ``sub_class``: ``subclass`` (a CIFAR-100 fine class, e.g. ``rocket``) inside its CIFAR-20 superclass; the
  labels stay the superclass (the SSD / bad-teacher sub-class setting).
- ``random``: ``count`` (exact) or ``fraction`` of the training set, seeded, optionally drawn only from
  ``classes`` (DEL's non-IID forget set) and ``class_balanced`` (the same number from every class); or
  ``index_file``, a NumPy ``.npy`` array of training-set indices in the canonical (torchvision) order, given as
  a path relative to the project root or an ``https://`` URL that the workflow downloads once to
  ``<data_root>/indices/<file name>`` (NatMU's exact forget sets).

The split holds four sorted int64 index arrays: ``forget`` and ``retain`` (training set) and ``test_forget`` and
``test_retain`` (test set: the images of the forgotten classes or sub-class and the rest; for random scenarios
``test_forget`` is empty and ``test_retain`` is the whole test set).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import numpy as np

from . import UserError
from .datasets import get_spec

KINDS = ("full_class", "sub_class", "random")


def class_index(name_or_index: str | int, classes: tuple[str, ...] | list[str], what: str = "class") -> int:
    """Resolve a class given by name or index; an unknown one is an error listing the valid names."""
    if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
        if 0 <= name_or_index < len(classes):
            return name_or_index
    elif name_or_index in classes:
        return list(classes).index(name_or_index)
    raise UserError(f"unknown {what} {name_or_index!r}; valid: {', '.join(classes)} (or an index 0-{len(classes) - 1})")


def check_scenario(scenario: dict, dataset: str, dataset_config: dict | None = None) -> None:
    """Validate a scenario against a data set's classes without loading any data; an ``index_file`` also against
    the data set's config entry (``source``, ``train_size``)."""
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
    if kind == "random" and sum(key in scenario for key in ("count", "fraction", "index_file")) != 1:
        raise UserError("a random scenario needs exactly one of 'count', 'fraction' and 'index_file'")
    if "index_file" in scenario:
        check_index_scenario(scenario, dataset_config or {})


def check_index_scenario(scenario: dict, dataset_config: dict) -> None:
    """An index file must exist (or be a URL) and be applied to the full canonical training set it indexes."""
    path = index_path(scenario["index_file"])
    if scenario["kind"] != "random":
        raise UserError(f"'index_file' belongs to random scenarios, not {scenario['kind']!r} ones; use kind: random")
    if scenario.get("classes"):
        raise UserError("a random scenario with an 'index_file' takes no 'classes': the file fixes the forget set; remove 'classes'")
    if "://" not in scenario["index_file"] and not Path(path).is_file():
        raise UserError(f"index file {path} not found (paths are relative to the project root); fix the path or give an https:// URL")
    if dataset_config.get("source") == "imagefolder":
        what = "an imagefolder copy, whose sample order is not the canonical one"
    elif "train_size" in dataset_config:
        what = f"a train_size subset of {dataset_config['train_size']} samples, numbered anew"
    else:
        return
    raise UserError(
        f"index file {scenario['index_file']} indexes the full canonical training set, but the data set is {what}; "
        "use source: torchvision without train_size, or a count/fraction scenario"
    )


def index_path(index_file: str, data_root: str | Path = "data") -> str:
    """The local file a scenario's ``index_file`` is read from: a local path as given, an ``https://`` URL's file
    name (``%25`` decoded) under ``<data_root>/indices/``, where the workflow's fetch_index rule downloads it."""
    if "://" not in index_file:
        return index_file
    if not index_file.startswith("https://"):
        raise UserError(f"index file URL {index_file} is not https://; give an https:// URL or a local path")
    return str(Path(data_root) / "indices" / unquote(Path(urlsplit(index_file).path).name))


def index_downloads(scenarios: dict) -> dict[str, str]:
    """``{file name: URL}`` of the scenarios' ``https://`` index files; two URLs with one file name are an error."""
    urls: dict[str, str] = {}
    for entry in scenarios.values():
        url = entry.get("index_file", "")
        if "://" in url:
            name = Path(index_path(url)).name
            if urls.setdefault(name, url) != url:
                raise UserError(f"index files {urls[name]} and {url} would both download to indices/{name}; keep one")
    return urls


def fetch_index(url: str, out: str) -> None:
    """Download an index file once (the fetch_index rule); the URL's path is percent-encoded (``%`` -> ``%25``)."""
    import urllib.request

    from .io import atomic_path

    parts = urlsplit(url)
    encoded = parts._replace(path=quote(unquote(parts.path))).geturl()
    with atomic_path(out) as tmp:
        try:
            with urllib.request.urlopen(encoded, timeout=60) as response:
                tmp.write_bytes(response.read())
        except OSError as err:  # URLError, HTTPError and timeouts included
            raise UserError(f"cannot download index file {encoded} ({err}); download it by hand to {out}") from None
        load_index_file(tmp, name=url)


def load_index_file(path: str | Path, *, name: str | None = None) -> np.ndarray:
    """A 1-D integer array from a ``.npy`` file; anything else is one clear error naming the file."""
    name = name or str(path)
    try:
        indices = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f"index file {name} is not a NumPy .npy array ({err}); give a .npy file of training-set indices") from None
    if not isinstance(indices, np.ndarray) or indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        what = f"a {indices.dtype} array of shape {indices.shape}" if isinstance(indices, np.ndarray) else "an .npz archive"
        raise UserError(f"index file {name} holds {what}; a forget set is a 1-D integer array of training-set indices")
    return indices


def listed_indices(path: str, n_train: int) -> torch.Tensor:
    """The forget set of an index file, checked to be unique indices inside a training set of ``n_train``."""
    import torch  # here, not at the top: planning reads this module without torch

    indices = load_index_file(path)
    if len(indices) == 0:
        raise UserError(f"index file {path} is empty; a forget set needs at least one training-set index")
    outside = indices[(indices < 0) | (indices >= n_train)]
    if len(outside):
        raise UserError(
            f"index file {path} holds {len(outside)} indices outside the training set of {n_train} samples "
            f"(e.g. {outside[0]}); use the file made for this data set"
        )
    values, counts = np.unique(indices, return_counts=True)
    if (counts > 1).any():
        raise UserError(f"index file {path} repeats {int((counts > 1).sum())} indices (e.g. {values[counts > 1][0]}); remove the duplicates")
    return torch.from_numpy(indices.astype(np.int64))


def drawn_indices(scenario: dict, train_y: torch.Tensor, chosen: torch.Tensor, seed: int) -> torch.Tensor:
    """A seeded draw of ``count`` (or ``fraction`` of the training set) samples, from ``chosen`` classes if any;
    with ``class_balanced``, the same number from each class of the pool (the first ``count mod k`` classes one
    more), as NatMU's forget sets are drawn."""
    import torch  # here, not at the top: planning reads this module without torch

    pool = torch.nonzero(torch.isin(train_y, chosen) if len(chosen) else torch.ones_like(train_y, dtype=torch.bool))
    pool = pool.flatten()
    count = scenario["count"] if "count" in scenario else round(scenario["fraction"] * len(train_y))
    if count == 0:  # only a fraction can round to nothing (count >= 1 in the schema)
        raise UserError(f"random scenario's fraction {scenario['fraction']} of {len(train_y)} training samples rounds to 0 "
                        f"samples; use at least fraction {0.5 / len(train_y):.2g} or give count: 1 or more")
    if not 0 < count <= len(pool):
        raise UserError(f"random scenario asks for {count} forget samples but its pool holds {len(pool)}; lower count/fraction")
    gen = torch.Generator().manual_seed(seed)
    if not scenario.get("class_balanced"):
        return pool[torch.randperm(len(pool), generator=gen)[:count]]
    classes = train_y[pool].unique()
    per_class = [count // len(classes) + (i < count % len(classes)) for i in range(len(classes))]
    drawn = []
    for c, n in zip(classes, per_class):
        members = pool[train_y[pool] == c]
        if n > len(members):
            raise UserError(f"a class-balanced draw needs {n} samples of class {int(c)} but it has {len(members)}; lower count/fraction")
        drawn.append(members[torch.randperm(len(members), generator=gen)[:n]])
    return torch.cat(drawn)


def make_split(scenario: dict, data: dict, *, seed: int) -> dict[str, torch.Tensor]:
    """Forget/retain indices of the training set and forgotten/remaining indices of the test set."""
    import torch  # here, not at the top: planning reads this module without torch

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
        forget_mask = torch.zeros_like(train_y, dtype=torch.bool)
        if "index_file" in scenario:
            forget_mask[listed_indices(index_path(scenario["index_file"]), len(train_y))] = True
        else:
            forget_mask[drawn_indices(scenario, train_y, chosen, seed)] = True
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
    from .io import load_npz

    return load_npz(path, "split file", ("forget", "retain", "test_forget", "test_retain"))


def rank_within_class(labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each entry, how many entries of the same label come before it (in a random order with ``generator``)."""
    import torch

    order = torch.randperm(len(labels), generator=generator) if generator is not None else torch.arange(len(labels))
    order = order[torch.argsort(labels[order], stable=True)]
    sorted_labels = labels[order]
    first = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    ranks = torch.empty_like(labels)
    ranks[order] = torch.arange(len(labels)) - first
    return ranks
