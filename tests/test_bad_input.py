"""Bad input and interrupted runs: every case is one clear line before any job runs where the config
shows it, one line naming the file at the reading site otherwise, and never a half-written artifact."""

from __future__ import annotations

import copy
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import REPO
from unlearnbench import UserError
from unlearnbench.config import apply_scale, check_config, check_report, check_schema, check_yaml_keys
from unlearnbench.data import get_spec, prepare_dataset
from unlearnbench.io import atomic_write_json, load_json, provenance
from unlearnbench.methods import check_hyperparameters
from unlearnbench.runner import run_step

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TINY = {
    "name": "bad-input", "device": "cpu", "threads": 1, "seeds": [0],
    "datasets": {"digits": {"source": "sklearn"}},
    "experiments": {"e": {"dataset": "digits", "model": {"name": "resnet18", "options": {"width": 2}},
                          "train": {"epochs": 1, "batch_size": 64, "lr": 0.05, "weight_decay": 5.0e-4},
                          "scenarios": ["c3", "r5"], "methods": ["original", "retrain", "finetune"]}},
    "scenarios": {"c3": {"kind": "full_class", "classes": ["3"]}, "r5": {"kind": "random", "fraction": 0.05}},
    "methods": {"original": None, "retrain": None, "finetune": {"epochs": 1, "lr": 0.02}},
    "metrics": ["retain_acc", "forget_acc"],
}


def plan_check(config: dict) -> None:
    """What common.smk runs before any job: scale, schema, defaults, names and values, report."""
    from snakemake.utils import validate

    config = apply_scale(copy.deepcopy(config))
    check_schema(config, SCHEMA)
    validate(config, schema=str(SCHEMA))
    config["methods"].setdefault("retrain", None)
    check_config(config)
    check_report(config, REPO)


def variant(edit) -> dict:
    config = copy.deepcopy(TINY)
    edit(config)
    return config


def test_the_tiny_config_is_valid():
    plan_check(TINY)


CONFIG_CASES = {
    "nan fraction": (lambda c: c["scenarios"]["r5"].update(fraction=math.nan), r"scenarios/r5/fraction is NaN or infinite"),
    "inf lr": (lambda c: c["experiments"]["e"]["train"].update(lr=math.inf), r"train/lr is NaN or infinite"),
    "duplicate seeds": (lambda c: c.update(seeds=[0, 0]), r"seeds lists \[0\] more than once"),
    "duplicate method": (lambda c: c["experiments"]["e"]["methods"].append("finetune"), r"lists methods \['finetune'\] more than once"),
    "duplicate scenario": (lambda c: c["experiments"]["e"]["scenarios"].append("c3"), r"lists scenarios \['c3'\] more than once"),
    "name ..": (lambda c: c.update(name=".."), r"name '\.\.' is not a safe folder name"),
    "method name with a space": (lambda c: (c["methods"].update({"fine tune": {"method": "finetune"}}),
                                            c["experiments"]["e"]["methods"].append("fine tune")), r"methods 'fine tune' is not a safe folder name"),
    "empty metrics": (lambda c: c.update(metrics=[]), r"metrics is an empty list"),
    "duplicate metric": (lambda c: c.update(metrics=["retain_acc", "retain_acc"]), r"metrics lists \['retain_acc'\] more than once"),
    "recipe text": (lambda c: c["experiments"]["e"]["train"].update(weight_decay="5e-4"),
                    r"experiment 'e' train: weight_decay must be a number, got the text '5e-4'; write exponents with a sign and a dot .*5\.0e-4"),
    "recipe lr text": (lambda c: c["experiments"]["e"]["train"].update(lr="1e-3"), r"train: lr must be a number, got the text '1e-3'"),
    "recipe bool": (lambda c: c["experiments"]["e"]["train"].update(lr=True), r"train: lr must be a number, got True"),
    "recipe list": (lambda c: c["experiments"]["e"]["train"].update(epochs=[2]), r"train: epochs must be a number \(one value, not a list\)"),
    "recipe epochs 0": (lambda c: c["experiments"]["e"]["train"].update(epochs=0), r"train: epochs must be positive, got 0"),
    "width 0": (lambda c: c["experiments"]["e"]["model"]["options"].update(width=0), r"experiment 'e' model: width must be positive, got 0"),
    "width bool": (lambda c: c["experiments"]["e"]["model"]["options"].update(width=True), r"model: width must be a number, got True"),
    "epochs -1": (lambda c: c["methods"]["finetune"].update(epochs=-1), r"method 'finetune': epochs must be positive, got -1"),
    "batch_size 0": (lambda c: c["methods"]["finetune"].update(batch_size=0), r"method 'finetune': batch_size must be positive, got 0"),
    "lr true": (lambda c: c["methods"]["finetune"].update(lr=True), r"method 'finetune': lr must be a number, got True"),
    "epochs list": (lambda c: c["methods"]["finetune"].update(epochs=[2]), r"method 'finetune': epochs must be a number \(one value, not a list\)"),
    "ssd alpha -1": (lambda c: (c["methods"].update(ssd={"alpha": -1}), c["experiments"]["e"]["methods"].append("ssd")),
                     r"experiment 'e': method 'ssd': alpha must be positive, got -1"),
    "mask magnitude": (lambda c: (c["methods"].update(fisher_masking={"mask": "magnitude"}),
                                  c["experiments"]["e"]["methods"].append("fisher_masking")),
                       r"method 'fisher_masking': unknown mask 'magnitude'; valid: fisher, random, gradient, activation"),
    "mnemonic_code without codes": (lambda c: (c["methods"].update(mnemonic_code=None),
                                               c["experiments"]["e"]["methods"].append("mnemonic_code")),
                                    r"method 'mnemonic_code' needs the experiment's 'mnemonic'; set experiments.<exp>.mnemonic"),
    "seed bool": (lambda c: c.update(seeds=[True]), r"True is not of type 'integer'"),
    "threads 0": (lambda c: c.update(threads=0), r"0 is less than the minimum of 1"),
    "count 0": (lambda c: c["scenarios"]["r5"].update(count=0, fraction=None) or c["scenarios"]["r5"].pop("fraction"),
                r"0 is less than the minimum of 1"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config_is_one_line_before_any_job(case):
    edit, message = CONFIG_CASES[case]
    with pytest.raises(UserError, match=message) as err:
        plan_check(variant(edit))
    assert "\n" not in str(err.value)


def test_hyperparameter_types_follow_the_defaults():
    check_hyperparameters("finetune", {"epochs": 2.5, "lr": 1, "batch_size": None})  # an int where a float is fine
    check_hyperparameters("fisher_masking", {"finetune_epochs": 0})  # zero epochs of fine-tuning: masking only
    check_hyperparameters("del", {"top_fraction": None})  # annotated float | None
    with pytest.raises(UserError, match="method 'finetune': lr must be a number, got None"):
        check_hyperparameters("finetune", {"lr": None})
    for hp, message in [({"finetune_epochs": -1}, "must be zero or positive"), ({"estimator": 3}, "must be text"),
                        ({"estimator": ["a"]}, r"must be text \(one value, not a list\)")]:
        method = "fisher_masking" if "finetune_epochs" in hp else "ssd"
        with pytest.raises(UserError, match=message):
            check_hyperparameters(method, hp)


def test_duplicate_yaml_key_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\nseeds: [0]\nmethods:\n  finetune: {epochs: 1}\n  finetune: {epochs: 2}\n")
    with pytest.raises(UserError, match=r"c.yaml line 5: key 'finetune' appears twice in one block; keep one"):
        check_yaml_keys(path)
    path.write_text("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n")  # a merge key overriding a merged value is fine
    check_yaml_keys(path)
    for config in [*(REPO / "config").glob("*.yaml"), *(REPO / "config" / "papers").glob("*.yaml")]:
        check_yaml_keys(config)  # the shipped configs have none


def test_fraction_that_rounds_to_no_sample_says_so(digits):
    from unlearnbench.splits import make_split

    with pytest.raises(UserError, match=r"fraction 0.0001 of 1300 training samples rounds to 0 samples; use at least fraction"):
        make_split({"kind": "random", "fraction": 0.0001}, digits, seed=0)


def test_empty_index_file_says_it_is_empty(digits, tmp_path):
    from unlearnbench.splits import make_split

    np.save(tmp_path / "idx.npy", np.array([], dtype=np.int64))
    with pytest.raises(UserError, match=r"idx.npy is empty; a forget set needs at least one"):
        make_split({"kind": "random", "index_file": str(tmp_path / "idx.npy")}, digits, seed=0)


# --- artifacts read by later rules ------------------------------------------------------------------------------


def truncated_copy(src, dst):
    data = open(src, "rb").read()
    open(dst, "wb").write(data[: len(data) // 2])


def test_truncated_npz_and_json_artifacts_are_one_line_naming_the_file(tmp_path, capsys):
    from unlearnbench.splits import load_split

    logits = tmp_path / "logits.npz"
    np.savez(logits, train_logits=np.zeros((4, 2)), test_logits=np.zeros((2, 2)), train_y=np.zeros(4), test_y=np.zeros(2))
    split = tmp_path / "split.npz"
    np.savez(split, forget=np.arange(1), retain=np.arange(1, 4), test_forget=np.arange(0), test_retain=np.arange(2))
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"seed": 0, "seconds": 1.0}))
    for path in (logits, split, run):
        truncated_copy(path, tmp_path / f"bad_{path.name}")
    with pytest.raises(UserError, match=rf"split file {tmp_path}/bad_split.npz cannot be read .*delete it and rerun"):
        load_split(tmp_path / "bad_split.npz")
    with pytest.raises(UserError, match=r"metrics file .*bad_run.json cannot be read \(JSONDecodeError"):
        load_json(tmp_path / "bad_run.json", "metrics file")
    out = tmp_path / "metrics.json"
    for kwargs, name in [({"logits_path": tmp_path / "bad_logits.npz"}, "logits file"),
                         ({"split_path": tmp_path / "bad_split.npz"}, "split file"),
                         ({"run_path": tmp_path / "bad_run.json"}, "run record")]:
        args = {"logits_path": logits, "split_path": split, "run_path": run, **kwargs}
        with pytest.raises(SystemExit):
            run_step("evaluate.evaluate_run", str(tmp_path / "job.log"), **{k: str(v) for k, v in args.items()},
                     names=["retain_acc"], context={}, out=str(out))
        err = capsys.readouterr().err
        assert err.startswith(f"error: {name} ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert not out.exists() and not list(tmp_path.glob(".metrics.json.*"))
    np.savez(tmp_path / "nokey.npz", train_logits=np.zeros((4, 2)))
    with pytest.raises(UserError, match=r"logits file .*nokey.npz lacks \['test_logits'"):
        from unlearnbench.steps.evaluate import load_evaluation

        load_evaluation(str(tmp_path / "nokey.npz"), {})


def test_artifacts_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json({"a": 1}, tmp_path / "a.json")
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic_write_json({"a": 1}, tmp_path / "b.json")
        assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_provenance_records_threads_and_device():
    record = provenance()
    assert record["threads"] >= 1 and record["device"] in ("cpu",) or record["device"].startswith(("NVIDIA", "Tesla"))


# --- ImageFolder copies -----------------------------------------------------------------------------------------


def imagefolder(root, size=8, skip=None, empty=None):
    """A digits ImageFolder copy: one 8x8 greyscale image per class and split."""
    for split in ("train", "test"):
        for c in get_spec("digits").classes:
            folder = root / split / c
            folder.mkdir(parents=True, exist_ok=True)
            if c not in (skip, empty):
                Image.fromarray(np.full((size, size), int(c) * 20, np.uint8)).save(folder / "0.png")
            if c == skip:
                folder.rmdir()
    return root


def tar_of(folder, archive, extra: dict | None = None):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="copy")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_imagefolder_copy_reads_and_checks(tmp_path):
    data = prepare_dataset("digits", "imagefolder", path=imagefolder(tmp_path / "ok"), root=tmp_path / "cache")
    assert data["train_x"].shape == (10, 1, 8, 8) and data["train_y"].tolist() == list(range(10))


@pytest.mark.parametrize("case", ["bad png", "truncated png", "wrong size", "mixed sizes", "empty class", "missing class"])
def test_bad_imagefolder_names_the_file_or_class(tmp_path, case):
    root = imagefolder(tmp_path / "copy", skip="7" if case == "missing class" else None, empty="4" if case == "empty class" else None)
    if case == "bad png":
        (root / "train" / "2" / "1.png").write_text("not an image")
    if case == "truncated png":
        truncated_copy(root / "train" / "2" / "0.png", root / "train" / "2" / "1.png")
    if case == "wrong size":
        shutil.rmtree(root)
        imagefolder(root, size=28)
    if case == "mixed sizes":
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(root / "test" / "5" / "1.png")
    message = {
        "bad png": r"train/2/1.png is not a readable image \(.*\); replace or remove it",
        "truncated png": r"train/2/1.png is not a readable image",
        "wrong size": r"train/0/0.png is 28x28 pixels, but digits images are 8x8",
        "mixed sizes": r"test/5/1.png is 28x28 pixels, but digits images are 8x8",
        "empty class": r"class folder .*train/4 holds no images",
        "missing class": r"train has no folder for class\(es\) \['7'\] of digits",
    }[case]
    with pytest.raises(UserError, match=message) as err:
        prepare_dataset("digits", "imagefolder", path=root, root=tmp_path / "cache")
    assert "\n" not in str(err.value)


def test_bad_archives_are_one_line_and_leave_no_extraction(tmp_path):
    archive = tar_of(imagefolder(tmp_path / "copy"), tmp_path / "copy.tar.gz")
    truncated_copy(archive, tmp_path / "truncated.tar.gz")
    (tmp_path / "plain.tar.gz").write_bytes(b"just some bytes, no gzip")
    tar_of(tmp_path / "copy", tmp_path / "escape.tar.gz", {"../evil.txt": b"x"})
    for name, message in [("truncated", "cannot be read as a .tar.gz .*it may be truncated"),
                          ("plain", "cannot be read as a .tar.gz"), ("escape", "holds a member that would land outside its folder")]:
        cache = tmp_path / f"cache_{name}"
        with pytest.raises(UserError, match=message):
            prepare_dataset("digits", "imagefolder", path=tmp_path / f"{name}.tar.gz", root=cache)
        assert not any(p.is_dir() for p in (cache / "digits-imagefolder").iterdir())  # no half extraction kept
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "cache_escape" / "evil.txt").exists()


def test_a_changed_archive_is_extracted_anew(tmp_path):
    archive = tar_of(imagefolder(tmp_path / "a"), tmp_path / "copy.tar.gz")
    first = prepare_dataset("digits", "imagefolder", path=archive, root=tmp_path / "cache")
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "a" / "train" / "0" / "0.png")
    tar_of(tmp_path / "a", archive)
    second = prepare_dataset("digits", "imagefolder", path=archive, root=tmp_path / "cache")
    assert first["train_x"][0].max() == 0 and second["train_x"][0].min() == 255
    assert len(list((tmp_path / "cache" / "digits-imagefolder").iterdir())) == 2


# --- end to end: snakemake -n through the real entry point ------------------------------------------------------


def snakemake_cmd(configfile, workdir, *args):
    """The README's command, run in its own working directory (its own lock, results and figures)."""
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(configfile), "--cores", "1", *args]


def snakemake(configfile, workdir, *args, timeout=900):
    return subprocess.run(snakemake_cmd(configfile, workdir, *args), cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("case", ["name ..", "nan fraction", "duplicate yaml key", "recipe text", "duplicate seeds",
                                  "ssd alpha -1"])
def test_planning_refuses_bad_configs_in_one_line(tmp_path, case):
    config = variant(CONFIG_CASES[case][0]) if case in CONFIG_CASES else copy.deepcopy(TINY)
    text = yaml.safe_dump(config)
    if case == "duplicate yaml key":
        text += "threads: 2\n"
    path = tmp_path / "c.yaml"
    path.write_text(text)
    run = snakemake(path, tmp_path, "-n")
    message = CONFIG_CASES[case][1] if case in CONFIG_CASES else r"line \d+: key 'threads' appears twice"
    assert run.returncode != 0 and "Traceback" not in run.stderr + run.stdout
    

    lines = [line for line in (run.stderr + run.stdout).splitlines() if "config error" in line]
    assert len(lines) == 1 and re.search(message, lines[0]), run.stderr[-2000:]


def test_planning_the_tiny_config_passes_threads_as_a_param(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({**TINY, "name": path.stem}))
    run = snakemake(path, tmp_path, "-n")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "train_original" in run.stdout


# --- kill the scheduler mid-run, unlock, resume -----------------------------------------------------------------


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_tables(tmp_path):
    """SIGKILL the scheduler mid-run, follow the README (--unlock, then the same command) and compare the tables
    with those of an uninterrupted run of the same config."""
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(TINY))
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert snakemake(path, clean).returncode == 0
    proc = subprocess.Popen(snakemake_cmd(path, killed), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list(killed.glob("results/bad-input/e/seed0/*/*/model.pt")) and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    blocked = snakemake(path, killed)
    assert blocked.returncode != 0 and "LockException" in blocked.stderr + blocked.stdout
    time.sleep(5)  # the orphaned job finishes (the README: wait for such jobs or end them)
    assert snakemake(path, killed, "--unlock").returncode == 0
    resumed = snakemake(path, killed)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (clean / "figures/bad-input/summary.csv").read_text() == (killed / "figures/bad-input/summary.csv").read_text()
    changed = snakemake(path, clean, "-n", "--config", "threads=2")  # results depend on it: a rerun trigger
    assert changed.returncode == 0 and "train_original" in changed.stdout, changed.stderr[-2000:]
