"""The workflow on SLURM through snakemake-executor-plugin-slurm and profiles/slurm.

- The sbatch arguments of the profile, recorded by a fake ``sbatch`` (no cluster needed): a GPU config asks
  ``--gpus=1`` for training and unlearning jobs, a CPU config asks for no GPU.
- (slow) The quick preset on a real single-node cluster that the test starts (munged, slurmctld, slurmd; installed
  and configured by .ci/install_slurm.sh) and stops: every job goes through sbatch and the results table equals
  that of a local run of the same config.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SLURM_CONF = Path("/etc/slurm/slurm.conf")
CONF_MARKER = "# written by .ci/install_slurm.sh"

pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")


FOUNDATION_METHODS = ["original", "retrain", "finetune", "gradient_ascent", "neggrad_plus"]


def write_quick_config(tmp_path: Path, name: str, foundation_only: bool = False, **changes) -> Path:
    """config/quick.yaml under another name (results go to results/<name>/), with ``changes``; ``foundation_only``
    keeps its first experiment with the foundation's five methods (what SLURM is tested on, to bound the time)."""
    cfg = yaml.safe_load((REPO / "config" / "quick.yaml").read_text()) | {"name": name, **changes}
    if foundation_only:
        exp_name, exp = next(iter(cfg["experiments"].items()))
        cfg["experiments"] = {exp_name: {**exp, "methods": FOUNDATION_METHODS}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def run_name(request):
    """A results name of this test; its results/ and figures/ folders are removed afterwards."""
    name = f"test_slurm_{request.node.name}_{os.getpid()}"
    yield name
    for folder in (REPO / "results" / name, REPO / "figures" / name):
        shutil.rmtree(folder, ignore_errors=True)


def snakemake(*args: str, env: dict | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------------------------
# sbatch arguments, recorded by a fake sbatch


FAKE_SBATCH = """#!/bin/sh
printf '%s\\n' "$@" > "$SBATCH_RECORD/$$"
echo "sbatch: error: fake sbatch of tests/test_slurm.py" >&2
exit 1
"""


def sbatch_calls(tmp_path: Path, config: Path, device: str) -> dict[str, str]:
    """The sbatch options (without the command) of a split job and of the training job for seed 0, by rule."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("sbatch", "sinfo", "squeue", "scontrol", "sacct"):  # the plugin calls all of them; only sbatch matters
        (bin_dir / tool).write_text(FAKE_SBATCH if tool == "sbatch" else "#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)
    record = tmp_path / f"sbatch_{device}"
    record.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_RECORD": str(record)}
    name = yaml.safe_load(config.read_text())["name"]
    data = REPO / "results" / name / "data" / "digits.pt"  # a stand-in, so that no local job runs first
    data.parent.mkdir(parents=True, exist_ok=True)
    data.touch()
    targets = [f"results/{name}/digits_resnet/seed0/original.pt", f"results/{name}/splits/digits/class_3/seed0.npz"]
    snakemake("--workflow-profile", "profiles/slurm", "--configfile", str(config), "--config", f"device={device}",
              "--retries", "0", *targets, env=env)
    calls = {}
    for call in record.iterdir():
        args = call.read_text().splitlines()
        options = args[: next(i for i, arg in enumerate(args) if arg.startswith("--wrap"))]
        rule = re.search(r"slurm_logs/rule_(\w+)/", options[options.index("--output") + 1]).group(1)
        calls[rule] = " ".join(options)
    return calls


def test_profile_requests_gpus_only_for_gpu_configs(tmp_path, run_name):
    config = write_quick_config(tmp_path, run_name)
    cpu, gpu = sbatch_calls(tmp_path, config, "cpu"), sbatch_calls(tmp_path, config, "cuda")
    assert set(cpu) == set(gpu) == {"split", "train_original"}
    # the rules' full-scale resources and the profile's defaults, in sbatch's terms
    for calls in (cpu, gpu):
        assert " -p main -t 240 --mem 16000 " in calls["train_original"] + " "
        assert " -p main -t 30 --mem 4000 --ntasks=1 --cpus-per-task=1 " in calls["split"] + " "
        assert "--gpus" not in calls["split"]
    assert "--gpus" not in cpu["train_original"] and "--cpus-per-task=1" in cpu["train_original"]
    assert re.search(r" --cpus-per-task=1 -D \S+ --gpus=1$", gpu["train_original"])


# ---------------------------------------------------------------------------------------------------------------
# the quick preset on a real single-node SLURM cluster


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd needs root"
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if not shutil.which(tool)]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing); run .ci/install_slurm.sh"
    if not SLURM_CONF.exists() or not SLURM_CONF.read_text().startswith(CONF_MARKER):
        return f"{SLURM_CONF} is not the single-node configuration of .ci/install_slurm.sh; run it"
    if f"SlurmctldHost={socket.gethostname().split('.')[0]}\n" not in SLURM_CONF.read_text():
        return f"{SLURM_CONF} was written for another host name; rerun .ci/install_slurm.sh"
    if subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True).returncode == 0:
        return "a slurmctld is already running; the test only drives a cluster it starts itself"
    return None


def _wait_for(check, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.skip(f"SLURM could not be started: {what} (see /var/log/slurm/)")
        time.sleep(0.5)


@pytest.fixture
def slurm_cluster():
    """munged (unless one runs), slurmctld and slurmd in the foreground as children of the test; stopped after."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    daemons = []
    munge_works = lambda: subprocess.run("munge -n | unmunge", shell=True, capture_output=True).returncode == 0
    if not munge_works():
        daemons.append(subprocess.Popen(["munged", "--foreground", "--force"], user="munge", stderr=subprocess.DEVNULL))
    try:
        _wait_for(munge_works, "munged")
        daemons.append(subprocess.Popen(["slurmctld", "-D", "-c", "-i"], stderr=subprocess.DEVNULL))
        _wait_for(lambda: subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout.count("UP") > 0, "slurmctld")
        daemons.append(subprocess.Popen(["slurmd", "-D"], stderr=subprocess.DEVNULL))
        _wait_for(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout, "slurmd")
        yield
    finally:
        jobs = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
        if jobs:  # left over by a failed run; the cluster is this test's own
            subprocess.run(["scancel", *jobs], capture_output=True)
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


TIMING_COLUMN = re.compile(r"(delta_)?(method_seconds|rte)_(mean|std)")  # wall time differs between any two runs


def summary_table(name: str) -> pd.DataFrame:
    """figures/<name>/summary.csv without its timing columns."""
    table = pd.read_csv(REPO / "figures" / name / "summary.csv")
    return table.drop(columns=[c for c in table.columns if TIMING_COLUMN.fullmatch(c)])


@pytest.mark.slow
def test_quick_preset_through_slurm_equals_local_run(tmp_path, run_name, slurm_cluster):
    """The quick preset with one seed (two would double the test's time), locally and through profiles/slurm."""
    local_name = f"{run_name}_local"
    local_config = write_quick_config(tmp_path, local_name, foundation_only=True, seeds=[0])
    slurm_config = write_quick_config(tmp_path, run_name, foundation_only=True, seeds=[0])
    submitted = []
    try:
        started = time.monotonic()
        local = snakemake("--cores", "2", "--configfile", str(local_config))
        local_seconds = time.monotonic() - started
        assert local.returncode == 0, local.stderr[-3000:]

        # a site without accounting (sacct cannot answer, so poll squeue), and memory fit for the quick preset
        started = time.monotonic()
        slurm = snakemake(
            "--workflow-profile", "profiles/slurm", "--configfile", str(slurm_config),
            "--slurm-no-account", "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
            "--set-resources", "train_original:mem_mb=2000", "unlearn:mem_mb=2000",
        )
        slurm_seconds = time.monotonic() - started
        submitted = re.findall(r"^Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", slurm.stderr, re.M)
        assert slurm.returncode == 0, slurm.stderr[-3000:]

        # every job but the local rules (printed as "localrule") went through sbatch, with its own id and log
        remote_jobs = re.findall(r"^rule (\w+):", slurm.stderr, re.M)
        slurm_ids = {slurm_id for slurm_id, _ in submitted}
        assert len(submitted) == len(remote_jobs) == len(slurm_ids) > 0
        assert {"split", "train_original", "unlearn", "metrics"} <= set(remote_jobs)
        for slurm_id, log in submitted:
            assert Path(log).name == f"{slurm_id}.log" and Path(log).is_file()

        pd.testing.assert_frame_equal(summary_table(run_name), summary_table(local_name), rtol=1e-6)
        print(f"local run {local_seconds:.0f} s; SLURM run {slurm_seconds:.0f} s, {len(slurm_ids)} SLURM jobs")
    finally:
        for folder in (REPO / "results" / local_name, REPO / "figures" / local_name):
            shutil.rmtree(folder, ignore_errors=True)
        for _, log in submitted:  # .snakemake/slurm_logs/rule_<rule>/<wildcards>/<id>.log
            Path(log).unlink(missing_ok=True)
            for folder in (Path(log).parent, Path(log).parent.parent):
                with contextlib.suppress(OSError):  # not empty
                    folder.rmdir()
