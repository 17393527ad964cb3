"""The workflow's steps: every rule's step exists (checked without importing it), the generic script refuses a
name used twice, and a step's name is not a setting that reruns finished jobs."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from unlearnbench import UserError
from unlearnbench.runner import step_kwargs
from unlearnbench.steps import STAGES, check_step, step_functions

RULES = Path(__file__).parents[1] / "workflow" / "rules"


def rule_steps() -> dict[str, list[str]]:
    """The steps each rule file names, ``step("<stage>.<function>")``."""
    return {p.stem: re.findall(r'step=step\("([\w.]+)"\)', p.read_text()) for p in sorted(RULES.glob("*.smk"))}


def test_each_rule_file_calls_its_own_stage_and_every_step_exists():
    steps = rule_steps()
    assert set(STAGES) <= set(steps)  # one steps module per rule file
    for stage, names in steps.items():
        for name in names:
            assert check_step(name) == name
            assert name.split(".")[0] == stage, (stage, name)  # a rule file calls its own stage
    assert sum(map(len, steps.values())) == 16


def test_the_source_check_agrees_with_the_modules():
    for stage in ("evaluate", "report", "data"):  # cheap to import
        module = importlib.import_module(f"unlearnbench.steps.{stage}")
        for name in step_functions(stage):
            assert hasattr(module, name)


@pytest.mark.parametrize("name, message", [
    ("pipeline.unlearn", "no stage 'pipeline'"), ("unlearn.unlearnn", "has no function 'unlearnn'"),
    ("unlearn", "has no function ''"),
])
def test_a_misspelt_step_is_an_error(name, message):
    with pytest.raises(UserError, match=message):
        check_step(name)


def test_a_misspelt_step_fails_when_the_workflow_is_parsed(tmp_path):
    from snakemake.exceptions import WorkflowError

    namespace = {"check_step": check_step, "UserError": UserError, "WorkflowError": WorkflowError}
    source = (RULES / "common.smk").read_text()
    exec(compile(source[source.index("def step(name):"):].split("\n\n\n")[0], "common.smk", "exec"), namespace)
    assert namespace["step"]("report.write_summary") == "report.write_summary"
    with pytest.raises(WorkflowError, match="workflow error: step 'report.write_sumary'"):
        namespace["step"]("report.write_sumary")


def test_step_kwargs_refuses_a_name_in_two_parts():
    parts = {"input": {"data_path": "a"}, "output": {"out": "b"}, "params": {"seed": 0}}
    assert step_kwargs(parts) == {"data_path": "a", "out": "b", "seed": 0}
    with pytest.raises(UserError, match="'out' in both its output and its params"):
        step_kwargs({**parts, "params": {"out": "c"}})


def test_a_step_name_is_a_plain_params_value():
    """The step's name is passed as a plain string, which Snakemake's params trigger records as any setting
    (documented behaviour: renaming a step reruns its jobs once); no reliance on how it serialises other objects."""
    assert all(type(check_step(name)) is str for names in rule_steps().values() for name in names)
