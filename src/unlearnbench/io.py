"""Artifact writing: atomic (a killed job never leaves a file that looks finished) and with provenance."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from contextlib import contextmanager
from pathlib import Path

from . import UserError


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 would hide results from a shared group
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_npz(path: str | Path, what: str, keys: tuple[str, ...] = ()) -> dict:
    """All arrays of a ``.npz`` artifact; an unreadable file or a missing key is one error naming the file."""
    import numpy as np

    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:  # fh: closed even when np.load fails
            arrays = {k: f[k] for k in f.files}
    except Exception as err:  # noqa: BLE001 - truncated zip, wrong format, missing file: the same fix
        raise UserError(f"{what} {path} cannot be read ({type(err).__name__}: {err}); delete it and rerun to rebuild it") from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise UserError(f"{what} {path} lacks {missing}; delete it and rerun to rebuild it")
    return arrays


def load_json(path: str | Path, what: str) -> dict:
    """A JSON artifact; an unreadable file is one error naming the file."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{what} {path} cannot be read ({type(err).__name__}: {err}); delete it and rerun to rebuild it") from None


def atomic_torch_save(obj, path: str | Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_write_json(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def provenance() -> dict:
    """Package and torch versions and the git commit of the code that ran (``-dirty`` with uncommitted changes)."""
    from . import __version__

    return {"package_version": __version__, "git_commit": git_commit(), "torch_version": _torch_version(),
            **execution()}


@functools.cache
def git_commit() -> str:
    """The checkout's commit, ``-dirty`` with uncommitted changes to tracked files, ``unknown`` outside git; one
    ``git status`` per process (the branch header holds the commit)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    commit = next((line.split()[2] for line in out if line.startswith("# branch.oid ")), "unknown")
    if commit == "(initial)":
        return "unknown"
    return commit + ("-dirty" if any(not line.startswith("#") for line in out) else "")


@functools.cache
def _torch_version() -> str:
    try:
        return version("torch")
    except PackageNotFoundError:
        return "unknown"


def execution() -> dict:
    """The CPU threads this process computes with and the device it used (results depend on both)."""
    import sys

    torch = sys.modules.get("torch")  # a metrics job never imports it
    if torch is None:
        return {"threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count(), "device": "cpu"}
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {"threads": torch.get_num_threads(), "device": torch.cuda.get_device_name() if cuda else "cpu"}
