"""The Snakemake DAG end to end on the quick preset, its caching, and its errors on bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid

import pandas as pd
import pytest
import yaml

from helpers import REPO
from unlearnbench.config import apply_scale, method_config, pairings
from unlearnbench.methods import supports

QUICK = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())


def snakemake(configfile, *args, timeout=900):
    cmd = [sys.executable, "-m", "snakemake", "--configfile", str(configfile), "--cores", "2", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def planned_jobs(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    table = output.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in output else ""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


def execute_notebook(path, results):
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ["UNLEARNBENCH_RESULTS"] = str(results)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        del os.environ["UNLEARNBENCH_RESULTS"]
    images = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook drew no figure"


@pytest.fixture
def config_copy(tmp_path):
    """Write a variant of the quick preset under a unique name; remove its results afterwards."""
    names = []

    def write(edit=lambda c: None):
        config = json.loads(json.dumps(QUICK))
        config["name"] = f"test-{uuid.uuid4().hex[:8]}"
        edit(config)
        names.append(config["name"])
        path = tmp_path / f"{config['name']}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path, config

    yield write
    for name in names:
        shutil.rmtree(REPO / "results" / name, ignore_errors=True)
        shutil.rmtree(REPO / "figures" / name, ignore_errors=True)


@pytest.mark.slow
def test_quick_preset_end_to_end_caching_and_provenance(config_copy, tmp_path):
    path, config = config_copy()
    run = snakemake(path)
    assert run.returncode == 0, run.stderr[-3000:]
    out = REPO / "results" / config["name"]
    figures = REPO / "figures" / config["name"]
    table = pd.read_csv(figures / "summary.csv")
    expected = {  # every experiment x scenario x method, less the scenario kinds a method does not apply to
        (exp_name, scenario, method)
        for exp_name, exp in config["experiments"].items()
        for scenario, method in pairings(exp)
        if supports(method_config(config, method)["method"], config["scenarios"][scenario]["kind"])
    }
    assert set(zip(table["experiment"], table["scenario"], table["method"])) == expected
    assert (table["n"] == len(config["seeds"])).all()
    row = table[table["experiment"] == "digits_resnet"].set_index(["scenario", "method"])
    assert row.loc[("class_3", "retrain"), "forget_acc_mean"] == 0.0  # the oracle never saw class 3
    assert row.loc[("class_3", "original"), "forget_acc_mean"] > 0.8
    assert row.loc[("class_3", "retrain"), "retain_acc_mean"] > 0.8
    for figure in ("summary", "fisher_masking_finetuning", "leaderboard"):
        assert (figures / f"{figure}.png").stat().st_size > 10_000 and (figures / f"{figure}.pdf").exists()
    board = pd.read_csv(figures / "leaderboard.csv")  # every method but the oracle, ranked on every scenario it ran
    assert set(board["method"]) == {m for _, _, m in expected} - {"retrain"}
    assert board.groupby("scenario")["rank"].min().eq(1).all()
    main_table = next(b for b in (figures / "summary.md").read_text().split("\n\n") if b.startswith("| experiment"))
    assert len(main_table.strip().splitlines()) == len(table) + 2  # header, rule, one row per run

    record = json.loads((out / "digits_resnet" / "seed0" / "class_3" / "finetune" / "metrics.json").read_text())
    assert record["method_config"] == {"method": "finetune", **config["methods"]["finetune"]}
    assert record["seed"] == 0 and record["provenance"]["package_version"]
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", record["provenance"]["git_commit"])
    assert record["metrics"]["method_seconds"] > 0

    # the notebook draws its figure from these cached results
    execute_notebook(REPO / "notebooks" / "explore_results.ipynb", results=out)
    # snakemake --report bundles every figure with its caption and the code's provenance, from the cache alone
    html = tmp_path / "report.html"
    assert snakemake(path, "--report", str(html)).returncode == 0
    text = html.read_text()
    assert "fisher_masking_finetuning.png" in text and "built by unlearnbench" in text
    assert "test accuracy on the remaining and forgotten classes" in text  # the figure's caption from the config

    # a second run has nothing to do
    again = snakemake(path, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # deleting one metrics file recomputes only that run's metrics and what aggregates them
    (out / "digits_resnet" / "seed0" / "random_5pct" / "neggrad_plus" / "metrics.json").unlink()
    plan = snakemake(path, "-n")
    assert planned_jobs(plan.stdout) == {"metrics": 1, "table": 1, "figure": 2, "leaderboard": 1, "all": 1}


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["datasets"]["digits"].update(name="digitz"), "unknown data set 'digitz'; valid data sets: cifar10"),
        (lambda c: c["experiments"]["digits_resnet"]["model"].update(name="resnet19"), "unknown model 'resnet19'; valid models"),
        (lambda c: c["experiments"]["digits_resnet"]["methods"].append("forget_me"), "method 'forget_me' is used but not defined"),
        (lambda c: c["methods"].update(forget_me={"method": "forget_me"}) or c["experiments"]["digits_resnet"]["methods"].append("forget_me"),
         "unknown method 'forget_me'; registered methods:"),
        (lambda c: c["scenarios"]["class_3"].update(classes=["three"]), "unknown class 'three'; valid: 0, 1, 2"),
        (lambda c: c["methods"]["finetune"].update(learning_rate=0.1), r"method 'finetune' has no hyperparameter\(s\) \['learning_rate'\]"),
        (lambda c: c.update(seed=[0]), "'seed' was unexpected"),
        (lambda c: c["experiments"]["digits_resnet"].update(runs=[{"scenarios": ["class_3"], "methods": ["finetune"]}]),
         "experiment 'digits_resnet' has both 'runs' and 'scenarios'"),
    ],
    ids=["dataset", "model", "method-undefined", "method-unregistered", "class", "hyperparameter", "typo", "run-form"],
)
def test_bad_config_is_one_clear_error_before_any_job(config_copy, edit, message):
    path, config = config_copy(edit)
    run = snakemake(path, "-n", timeout=120)
    assert run.returncode != 0
    assert re.search("config error: .*" + message, run.stdout + run.stderr), (run.stdout + run.stderr)[-2000:]
    assert not (REPO / "results" / config["name"]).exists()


def test_impossible_forget_set_fails_its_job_with_one_line_and_no_artifact(config_copy):
    def edit(c):
        c["scenarios"]["huge"] = {"kind": "random", "count": 5000}
        c["experiments"]["digits_resnet"]["scenarios"] = ["huge"]

    path, config = config_copy(edit)
    target = f"results/{config['name']}/splits/digits/huge/seed0.npz"
    run = snakemake(path, target, timeout=300)
    assert run.returncode != 0
    assert "error: random scenario asks for 5000 forget samples but its pool holds 1300; lower count/fraction" in run.stderr
    assert not (REPO / target).exists()
    assert not list((REPO / "results" / config["name"]).rglob("*.part"))


PAPER_CONFIGS = sorted((REPO / "config" / "papers").glob("*.yaml")) + [REPO / "config" / "leaderboard.yaml"]


@pytest.mark.parametrize("scale", ["full", "reduced"])
@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=[p.stem for p in PAPER_CONFIGS])
def test_every_paper_config_plans_its_runs_tables_and_figures_at_both_scales(path, scale):
    run = snakemake(path, "-n", "--forceall", "--config", f"scale={scale}", timeout=300)  # the whole DAG, whatever is cached
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    jobs, report = planned_jobs(run.stdout), yaml.safe_load(path.read_text())["report"]
    config = apply_scale({**yaml.safe_load(path.read_text()), "scale": scale})
    config["methods"].setdefault("retrain", None)
    runs = [(s, m) for e in config["experiments"].values() for s, m in pairings(e)
            if supports(method_config(config, m)["method"], config["scenarios"][s]["kind"])]
    assert jobs["unlearn"] == jobs["metrics"] == len(runs) * len(config["seeds"])  # exactly the runs' pairings
    assert jobs.get("train_original", 0) >= 1 and jobs["table"] == 1
    assert jobs["figure"] == 1 + len(report.get("figures", {}))  # the summary and the paper's own figures
    assert jobs.get("reported", 0) == ("reported" in report) and jobs.get("leaderboard", 0) == ("leaderboard" in report)
