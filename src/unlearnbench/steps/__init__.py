"""The workflow's steps: the only functions the Snakemake rules call, one module per rule file
(``workflow/rules/<stage>.smk`` → ``steps/<stage>.py``); paths in, artifacts out.

A rule names its step as ``params: step=step("<stage>.<function>")`` (``common.smk``), checked when the workflow
is parsed by reading the module's source (``check_step``, no import: planning loads no torch), and run by
``workflow/scripts/step.py`` → ``runner.run_step``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from .. import UserError

STAGES = ("data", "train", "unlearn", "evaluate", "references", "report")


@cache
def step_functions(stage: str) -> frozenset[str]:
    """The names a stage's module defines or imports at its top level, read from its source."""
    tree = ast.parse((Path(__file__).parent / f"{stage}.py").read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return frozenset(names)


def check_step(name: str) -> str:
    """The step ``name`` ("<stage>.<function>") if ``steps/<stage>.py`` has that function, else a ``UserError``. A
    plain string: a rule's params record it, so renaming a step reruns its jobs once (Snakemake's params trigger)."""
    stage, _, function = name.partition(".")
    if stage not in STAGES:
        raise UserError(f"step {name!r}: no stage {stage!r}; stages: {', '.join(STAGES)}")
    if function not in step_functions(stage):
        raise UserError(f"step {name!r}: unlearnbench/steps/{stage}.py has no function {function!r}")
    return name
