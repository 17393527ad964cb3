"""Schema of the papers' reported values (config/papers/reported/*.yaml; format in its README.md)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from unlearnbench.methods import METHODS
from unlearnbench.metrics import METRICS
from unlearnbench.splits import KINDS

FOLDER = Path(__file__).resolve().parents[1] / "config" / "papers" / "reported"
PAPERS = ("fisher_masking", "mnemonic_code", "ssd_lfssd", "natmu", "del")
TOP = {"paper", "source_note", "named_entries", "unknown", "omitted", "values"}
RECORD = {"table", "row", "setting", "method", "metric", "value", "unit", "spread"}
UNITS = {"fraction": {"%", "fraction"}, "seconds": {"s"}}  # metric scale -> units a reported value may use


def load(name: str) -> dict:
    return yaml.safe_load((FOLDER / f"{name}.yaml").read_text())


def records(doc: dict) -> list[dict]:
    return doc["values"] + doc.get("third_party", [])


def test_one_file_per_paper_and_nothing_else():
    assert sorted(p.stem for p in FOLDER.glob("*.yaml")) == sorted(PAPERS)
    assert (FOLDER / "README.md").is_file()


@pytest.mark.parametrize("name", PAPERS)
def test_header(name):
    doc = load(name)
    assert TOP <= set(doc) <= TOP | {"third_party"}
    assert {"title", "arxiv", "venue"} <= set(doc["paper"]) and all(doc["paper"].values())
    assert isinstance(doc["source_note"], str) and len(doc["source_note"]) > 50
    for entry in doc["unknown"] + doc["omitted"]:
        assert set(entry) == {"table", "reason"} and entry["table"] and entry["reason"]
    assert doc["values"] or doc["unknown"], "a paper without values must say which tables are unknown"


@pytest.mark.parametrize("name", PAPERS)
def test_named_entries_are_new_names_and_all_used(name):
    doc = load(name)
    named = doc["named_entries"]
    assert set(named) == {"methods", "metrics"}
    assert not set(named["methods"]) & set(METHODS) and not set(named["metrics"]) & set(METRICS)
    assert all(isinstance(text, str) and text for text in {**named["methods"], **named["metrics"]}.values())
    used = {r["method"] for r in records(doc)} | {r["metric"] for r in records(doc)}
    assert set(named["methods"]) | set(named["metrics"]) <= used


@pytest.mark.parametrize("name", PAPERS)
def test_records(name):
    doc = load(name)
    methods = set(METHODS) | set(doc["named_entries"]["methods"])
    metrics = set(METRICS) | set(doc["named_entries"]["metrics"])
    for r in records(doc):
        assert RECORD <= set(r) <= RECORD | {"note", "source"}, r
        assert r["table"] and r["row"] and r["method"] in methods and r["metric"] in metrics, r
        assert isinstance(r["value"], (int, float)) and math.isfinite(r["value"]), r
        assert r["spread"] is None or r["spread"] >= 0, r
        assert r["unit"] in {"%", "fraction", "s"}, r
        setting = r["setting"]
        assert {"dataset", "model", "scenario"} <= set(setting) and setting["scenario"] in KINDS, r
        if None in (setting["dataset"], setting["model"]):
            assert "not stated" in r.get("note", ""), f"an unknown data set or model needs a note: {r}"
        if setting["scenario"] == "random":
            assert 0 < setting["fraction"] < 1, r
        else:
            assert setting["classes"] and all(isinstance(c, (int, str)) for c in setting["classes"]), r
        if r["metric"] in METRICS:  # the unit fits the metric's scale, and fractions lie in their range
            scale = METRICS[r["metric"]].scale
            assert r["unit"] in UNITS[scale], r
            if scale == "fraction":
                assert 0 <= r["value"] <= (100 if r["unit"] == "%" else 1), r


@pytest.mark.parametrize("name", PAPERS)
def test_records_are_unique_and_third_party_names_its_source(name):
    doc = load(name)
    keys = [(r["table"], r["row"], repr(r["setting"]), r["method"], r["metric"]) for r in records(doc)]
    assert len(keys) == len(set(keys))
    assert all(r.get("source") for r in doc.get("third_party", []))


def test_known_values_by_hand():
    """Spot checks against the notes: Mnemonic Code Table 2/3 (CIFAR-10, ours) and NatMU's CIFAR-100 1 % retrain."""
    def find(doc, **want):
        hits = [r for r in doc["values"] if all(r[k] == v if k != "dataset" else r["setting"]["dataset"] == v
                                                 for k, v in want.items())]
        assert len(hits) == 1, want
        return hits[0]

    mn = load("mnemonic_code")
    assert find(mn, table="Table 2", row="Ours", dataset="cifar10")["value"] == 94.4
    sfdn = find(mn, table="Table 3", row="SFDN", dataset="cifar10")  # E_F = 96.3 ± 2.5
    assert (sfdn["method"], sfdn["metric"], sfdn["value"], sfdn["spread"]) == ("fisher_forgetting", "test_forget_acc", 3.7, 2.5)
    nat = load("natmu")
    mia = [r for r in nat["values"] if r["row"] == "cifar100-1 retrain" and r["metric"] == "mia_entropy_lr"]
    assert [(r["value"], r["setting"]["fraction"]) for r in mia] == [(55.4, 0.01)]
    assert load("fisher_masking")["values"] == []


NARRATION = re.compile(r"(?:^|[\s(`'\"])/[A-Za-z_]|\bsearch(?:ed|ing)?\b|\bcorp(?:us|ora)\b|find_(?:string|files)|"
                       r"research notes?|paper_\w+\.md|reachable|could not be read|\bnot read\b", re.IGNORECASE)


@pytest.mark.parametrize("path", sorted(FOLDER.glob("*.yaml")) + [FOLDER / "README.md"], ids=lambda p: p.name)
def test_provenance_names_sources_not_local_paths_or_search_logs(path):
    """A source is the paper (version, table, row) or a public file (repository, path, commit), never a local path
    or an account of where it was looked for; a missing table says "not transcribed yet"."""
    hits = [m.group(0).strip() for m in NARRATION.finditer(path.read_text())]
    assert not hits, f"{path.name}: {hits}"
    if path.suffix == ".yaml":
        assert all(u["reason"].startswith("not transcribed yet") for u in yaml.safe_load(path.read_text())["unknown"])
