"""The workflow's steps: every rule's step exists (checked without importing it), the generic script refuses a
name used twice, and a step's name is not a setting that reruns finished jobs."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from unlearnbench import UserError
from unlearnbench.runner import step_kwargs
from unlearnbench.steps import STAGES, Step, check_step, step_functions

RULES = Path(__file__).parents[1] / "workflow" / "rules"


def rule_steps() -> dict[str, list[str]]:
    """The steps each rule file names, ``step("<stage>.<function>")``."""
    return {p.stem: re.findall(r'step=step\("([\w.]+)"\)', p.read_text()) for p in sorted(RULES.glob("*.smk"))}


def test_each_rule_file_calls_its_own_stage_and_every_step_exists():
    steps = rule_steps()
    assert set(STAGES) <= set(steps)  # one steps module per rule file
    for stage, names in steps.items():
        for name in names:
            assert check_step(name) == Step(name)
            # a rule file calls its own stage, except references.smk's U-LiRA oracles (unlearn runs)
            assert name.split(".")[0] == stage or name == "unlearn.unlearn", (stage, name)
    assert sum(map(len, steps.values())) == 13


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
    assert namespace["step"]("report.write_summary") == Step("report.write_summary")
    with pytest.raises(WorkflowError, match="workflow error: step 'report.write_sumary'"):
        namespace["step"]("report.write_sumary")


def test_step_kwargs_refuses_a_name_in_two_parts():
    parts = {"input": {"data_path": "a"}, "output": {"out": "b"}, "params": {"seed": 0}}
    assert step_kwargs(parts) == {"data_path": "a", "out": "b", "seed": 0}
    with pytest.raises(UserError, match="'out' in both its output and its params"):
        step_kwargs({**parts, "params": {"out": "c"}})


def test_a_step_name_is_not_tracked_by_the_params_trigger():
    """Snakemake records plain-data params to rerun a job whose params changed; a Step is not plain data, so a
    renamed step function reruns nothing."""
    from snakemake.persistence import UNREPRESENTABLE, PersistenceBase

    assert PersistenceBase._serialize_param_builtin(None, Step("unlearn.unlearn")) is UNREPRESENTABLE
    assert PersistenceBase._serialize_param_builtin(None, "unlearn.unlearn") is not UNREPRESENTABLE
