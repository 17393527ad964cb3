"""docs/adding_a_method.md, followed as written on a copy of the package: its example (docs/examples/my_method.py)
dropped into methods/ plus one import line is registered, runs through run_method, is read by the torch-free
catalog and can be named by a config; without the import line planning stops and names the line to add."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import helpers

EXAMPLE = helpers.REPO / "docs" / "examples" / "my_method.py"

# what runs inside the copy (its own process: the registries of this test session stay as they are)
SCRIPT = """
import sys, yaml
sys.path.insert(0, {tests!r})
import helpers
from unlearnbench import UserError, catalog
from unlearnbench.config import apply_scale, check_config
from unlearnbench.methods import METHODS
try:
    print(helpers.registry_mismatch(catalog.method_entries(), METHODS) or "consistent")
except UserError as err:  # planning refuses a method module that methods/__init__.py does not import
    print("planning refused:", err)
if "my_method" in METHODS:
    import torch
    from unlearnbench.data import prepare_dataset
    from unlearnbench.methods import run_method
    state, task = helpers.train("tiny_cnn", prepare_dataset("digits", "sklearn"))
    model, task = helpers.fresh_copy(state, task)
    out = run_method("my_method", model, task, {{"epochs": 1}})
    assert all(torch.isfinite(p).all() for p in out.parameters())
    config = yaml.safe_load(open({quick!r}))
    config["methods"]["my_method"] = {{"epochs": 1}}
    config["methods"]["my_method_hot"] = {{"method": "my_method", "beta": 4.0}}
    for exp in config["experiments"].values():
        exp["methods"] += ["my_method", "my_method_hot"]
    check_config(apply_scale(config))
    config["methods"]["my_method"] = {{"beta": -1}}
    try:
        check_config(apply_scale(config))
    except UserError as err:
        print("refused:", err)
"""


def copy_with_example(tmp_path: Path, import_line: bool) -> Path:
    src = tmp_path / "src"
    shutil.copytree(helpers.REPO / "src" / "unlearnbench", src / "unlearnbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE, src / "unlearnbench" / "methods" / "my_method.py")
    if import_line:  # the guide's step: add my_method to the explicit imports of methods/__init__.py
        init = src / "unlearnbench" / "methods" / "__init__.py"
        text = init.read_text()
        assert "    mnemonic_code,\n" in text
        init.write_text(text.replace("    mnemonic_code,\n", "    mnemonic_code,\n    my_method,\n"))
    return src


def run_in(src: Path) -> str:
    code = SCRIPT.format(tests=str(helpers.REPO / "tests"), quick=str(helpers.REPO / "config" / "quick.yaml"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_guide_example_registers_runs_and_plans(tmp_path):
    out = run_in(copy_with_example(tmp_path, import_line=True))
    assert out.splitlines()[0] == "consistent", out
    assert "method 'my_method': beta must be positive, got -1" in out.splitlines()[1], out


def test_a_forgotten_import_line_is_a_planning_error_naming_the_line(tmp_path):
    out = run_in(copy_with_example(tmp_path, import_line=False))
    assert out.startswith("planning refused: methods/my_method.py registers 'my_method'"), out
    assert "add my_method to its `from . import (...)` list" in out, out


@pytest.mark.parametrize("line", ["@register_method(paper=TOY)", "task.fit(", "task.recipe(", "task.loader("])
def test_the_guide_includes_the_example(line):
    guide = (helpers.REPO / "docs" / "adding_a_method.md").read_text()
    assert EXAMPLE.read_text() in guide, "paste docs/examples/my_method.py into the guide's code block"
    assert line in guide
