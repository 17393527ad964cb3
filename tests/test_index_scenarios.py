"""Random scenarios whose forget set is read from an index file (NatMU's exact forget sets): reading, validation,
download, and the split rule taking the file as an input."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch
import yaml

from helpers import REPO, SHARED_DATA
from unlearnbench import UserError
from unlearnbench.data import CIFAR10_CLASSES
from unlearnbench.splits import check_scenario, fetch_index, index_downloads, index_path, load_split, make_split

NATMU_IDX = SHARED_DATA / "natmu-forget-idx"
URL = "https://raw.githubusercontent.com/ZhengbaoHe/NatMU/f7b977eda29637261669b79607b58cac699c0948/sample-wise/idx/cifar10_idx_1%.npy"


@pytest.fixture(scope="module")
def cifar_labels() -> dict:
    """A CIFAR-10-sized label set (splits read only labels): 50,000 training and 10,000 test samples."""
    return {"train_y": torch.arange(50_000) % 10, "test_y": torch.arange(10_000) % 10, "classes": list(CIFAR10_CLASSES)}


def saved(tmp_path, array, name="idx.npy") -> str:
    path = tmp_path / name
    np.save(path, array)
    return str(path)


def test_index_file_is_the_forget_set(cifar_labels, tmp_path):
    path = saved(tmp_path, np.array([49_999, 5, 17], dtype=np.int64))
    split = make_split({"kind": "random", "index_file": path}, cifar_labels, seed=0)
    assert split["forget"].tolist() == [5, 17, 49_999]
    assert len(split["retain"]) == 49_997 and not set(split["retain"].tolist()) & {5, 17, 49_999}
    assert len(split["test_forget"]) == 0 and len(split["test_retain"]) == 10_000
    assert torch.equal(make_split({"kind": "random", "index_file": path}, cifar_labels, seed=3)["forget"], split["forget"])


@pytest.mark.skipif(not NATMU_IDX.exists(), reason=f"NatMU's index files are not at {NATMU_IDX}")
@pytest.mark.parametrize("name, count", [("cifar10_idx_1%.npy", 500), ("cifar10_idx_10%.npy", 5_000),
                                         ("cifar100_idx_1%.npy", 500), ("cifar100_idx_10%.npy", 5_000)])
def test_natmu_index_files(cifar_labels, name, count):
    split = make_split({"kind": "random", "index_file": str(NATMU_IDX / name)}, cifar_labels, seed=0)
    assert len(split["forget"]) == count and len(split["retain"]) == 50_000 - count
    assert split["forget"].tolist() == sorted(np.load(NATMU_IDX / name).tolist())


@pytest.mark.parametrize(
    "array, message",
    [
        (np.array([[1, 2], [3, 4]]), r"holds a int64 array of shape \(2, 2\); a forget set is a 1-D integer array"),
        (np.array([1.0, 2.0]), "holds a float64 array"),
        (np.array([3, 9, 3, 9, 4]), r"repeats 2 indices \(e.g. 3\); remove the duplicates"),
        (np.array([1, 50_000, -1]), r"2 indices outside the training set of 50000 samples \(e.g. 50000\); use the file made"),
    ],
)
def test_bad_index_arrays_are_one_clear_error_each(cifar_labels, tmp_path, array, message):
    with pytest.raises(UserError, match=message):
        make_split({"kind": "random", "index_file": saved(tmp_path, array)}, cifar_labels, seed=0)


def test_a_file_that_is_no_npy_array_is_a_clear_error(cifar_labels, tmp_path):
    (tmp_path / "page.npy").write_text("<html>404</html>")
    with pytest.raises(UserError, match="is not a NumPy .npy array"):
        make_split({"kind": "random", "index_file": str(tmp_path / "page.npy")}, cifar_labels, seed=0)


def test_index_scenarios_are_checked_against_the_data_set_config(tmp_path):
    path = saved(tmp_path, np.arange(5))
    check_scenario({"kind": "random", "index_file": path}, "cifar10", {"source": "torchvision"})
    check_scenario({"kind": "random", "index_file": URL}, "cifar10", {"source": "torchvision"})  # fetched later
    cases = [
        ({"kind": "random", "index_file": path}, {"source": "imagefolder", "path": "x.tar.gz"}, "imagefolder copy, whose sample order"),
        ({"kind": "random", "index_file": path}, {"source": "torchvision", "train_size": 5000}, "train_size subset of 5000"),
        ({"kind": "random", "index_file": path, "count": 3}, {}, "exactly one of 'count', 'fraction' and 'index_file'"),
        ({"kind": "random", "index_file": path, "classes": [1]}, {}, "takes no 'classes'"),
        ({"kind": "full_class", "classes": [1], "index_file": path}, {}, "belongs to random scenarios"),
        ({"kind": "random", "index_file": str(tmp_path / "missing.npy")}, {}, "missing.npy not found"),
        ({"kind": "random", "index_file": "http://example.org/i.npy"}, {}, "is not https://"),
    ]
    for scenario, dataset_config, message in cases:
        with pytest.raises(UserError, match=message):
            check_scenario(scenario, "cifar10", dataset_config)


def test_urls_map_to_one_local_file_and_clashing_names_are_an_error():
    assert index_path(URL, "data") == "data/indices/cifar10_idx_1%.npy"
    assert index_path(URL.replace("%", "%25"), "/d") == "/d/indices/cifar10_idx_1%.npy"
    assert index_path("idx/mine.npy", "data") == "idx/mine.npy"
    assert index_downloads({"a": {"kind": "random", "index_file": URL}, "b": {"kind": "random", "count": 3}}) == {"cifar10_idx_1%.npy": URL}
    with pytest.raises(UserError, match="would both download to indices/cifar10_idx_1%.npy"):
        index_downloads({"a": {"index_file": URL}, "b": {"index_file": URL.replace("ZhengbaoHe", "fork")}})


def test_fetch_percent_encodes_the_url_and_writes_a_checked_file(tmp_path, monkeypatch):
    buffer = io.BytesIO()
    np.save(buffer, np.arange(4))
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return io.BytesIO(buffer.getvalue())

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    fetch_index(URL, str(tmp_path / "indices" / "cifar10_idx_1%.npy"))
    assert requested == [URL.replace("%", "%25")]
    assert np.load(tmp_path / "indices" / "cifar10_idx_1%.npy").tolist() == [0, 1, 2, 3]

    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: io.BytesIO(b"<html>rate limited</html>"))
    with pytest.raises(UserError, match="not a NumPy .npy array"):
        fetch_index(URL, str(tmp_path / "bad.npy"))
    assert list(tmp_path.iterdir()) == [tmp_path / "indices"]  # nothing half-written is left


def test_offline_fetch_is_one_line_naming_the_url_and_the_path(tmp_path):
    out = tmp_path / "indices" / "x_1%.npy"
    with pytest.raises(UserError, match=rf"cannot download index file https://127.0.0.1:9/x_1%25.npy .*download it by hand to {out}$"):
        fetch_index("https://127.0.0.1:9/x_1%.npy", str(out))
    assert not out.exists()


@pytest.fixture
def workflow_config(tmp_path):
    """A digits config with an index-file scenario, under a unique name; its results are removed afterwards."""
    name = f"test-index-{uuid.uuid4().hex[:8]}"
    index = saved(tmp_path, np.array([4, 8, 15, 16, 23, 42]))
    config = {
        "name": name, "device": "cpu", "threads": 1, "seeds": [0], "data_root": str(tmp_path / "data"),
        "datasets": {"digits": {"source": "sklearn"}},
        "experiments": {"e": {"dataset": "digits", "model": {"name": "resnet18", "options": {"width": 4}}, "train": {"epochs": 1},
                              "scenarios": ["listed", "fetched"], "methods": ["original"]}},
        "scenarios": {"listed": {"kind": "random", "index_file": index},
                      "fetched": {"kind": "random", "index_file": "https://127.0.0.1:9/digits_idx_1%.npy"}},
        "methods": {"original": None},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    yield path, name, index, tmp_path / "data"
    shutil.rmtree(REPO / "results" / name, ignore_errors=True)


def snakemake(configfile, *args):
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", *args, "--configfile", str(configfile)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # three Snakemake runs: about a minute on 2 shared cores
def test_split_rule_reads_the_index_file_and_reruns_when_it_changes(workflow_config):
    path, name, index, data_root = workflow_config
    target = f"results/{name}/splits/digits/listed/seed0.npz"
    run = snakemake(path, target)
    assert run.returncode == 0, run.stderr[-3000:]
    assert load_split(REPO / target)["forget"].tolist() == [4, 8, 15, 16, 23, 42]
    np.save(index, np.array([1, 2, 3]))
    plan = snakemake(path, target, "-n")
    assert "rule split:" in plan.stdout and "Updated input files: " + index in plan.stdout, plan.stdout[-3000:]

    fetched = snakemake(path, f"results/{name}/splits/digits/fetched/seed0.npz")
    assert fetched.returncode != 0
    assert "error: cannot download index file https://127.0.0.1:9/digits_idx_1%25.npy" in fetched.stderr and f"download it by hand to {data_root}/indices/digits_idx_1%.npy" in fetched.stderr
    assert not (data_root / "indices").exists() or not any((data_root / "indices").iterdir())
