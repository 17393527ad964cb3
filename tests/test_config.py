import re
from pathlib import Path

import pytest
import yaml

from unlearnbench import UserError
from unlearnbench.config import (apply_scale, check_run_groups, check_schema, deep_merge, pairings, scenarios_of,
                                 typed_values)


def test_deep_merge_recurses_into_dicts_and_replaces_lists():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # unchanged


def test_scales_merge_a_reduced_grid_into_its_own_results_folder():
    config = {"name": "ssd", "seeds": [0, 1, 2], "datasets": {"cifar10": {"source": "torchvision"}},
              "scales": {"reduced": {"seeds": [0], "datasets": {"cifar10": {"train_size": 5000}}}}}
    assert apply_scale(config) is config
    reduced = apply_scale({**config, "scale": "reduced"})
    assert reduced["name"] == "ssd-reduced" and reduced["seeds"] == [0]
    assert reduced["datasets"]["cifar10"] == {"source": "torchvision", "train_size": 5000}
    with pytest.raises(UserError, match="scale 'tiny' is not defined under 'scales'; defined: full, reduced"):
        apply_scale({**config, "scale": "tiny"})


def test_a_scale_drops_an_experiment_set_to_null():
    config = {"name": "del", "experiments": {"cifar": {"dataset": "cifar10"}, "svhn": {"dataset": "svhn"}},
              "report": {"match": [{"experiment": "cifar"}, {"experiment": "svhn"}]},
              "scales": {"reduced": {"experiments": {"svhn": None, "cifar": {"dataset": "cifar10_small"}}}}}
    reduced = apply_scale({**config, "scale": "reduced"})
    assert reduced["experiments"] == {"cifar": {"dataset": "cifar10_small"}}
    assert reduced["report"]["match"] == [{"experiment": "cifar"}]


# Run groups (experiments.<exp>.runs) and paper traceability (reproduces).

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
PAPERS = sorted((ROOT / "config" / "papers").glob("*.yaml"))
SHORT_FORM = [ROOT / "config" / n for n in ("quick.yaml", "config.yaml", "leaderboard.yaml")]  # no `runs` groups


def scaled(path: Path, scale: str) -> dict:
    return apply_scale({**yaml.safe_load(path.read_text()), "scale": scale})


@pytest.mark.parametrize("path", SHORT_FORM, ids=[p.stem for p in SHORT_FORM])
def test_the_short_form_is_one_group_with_the_runs_of_the_cartesian_product(path):
    for scale in ["full", *yaml.safe_load(path.read_text()).get("scales", {})]:
        for exp in scaled(path, scale)["experiments"].values():
            methods = exp["methods"] + ([] if "retrain" in exp["methods"] else ["retrain"])
            assert pairings(exp) == [(s, m) for s in exp["scenarios"] for m in methods]  # the grid before `runs`


def test_run_groups_pair_each_groups_methods_with_its_scenarios_only():
    exp = {"runs": [{"scenarios": ["full", "sub"], "methods": ["original", "finetune"]},
                    {"scenarios": ["full"], "methods": ["ssd_full"]},
                    {"scenarios": ["sub"], "methods": ["ssd_sub", "retrain"]}]}
    assert scenarios_of(exp) == ["full", "sub"]
    assert pairings(exp) == [("full", "original"), ("full", "finetune"), ("full", "ssd_full"), ("full", "retrain"),
                             ("sub", "original"), ("sub", "finetune"), ("sub", "ssd_sub"), ("sub", "retrain")]
    check_run_groups("e", exp)


@pytest.mark.parametrize("exp, message", [
    ({"scenarios": ["a"], "methods": ["m"], "runs": [{"scenarios": ["a"], "methods": ["m"]}]},
     "experiment 'e' has both 'runs' and 'scenarios'; give either"),
    ({"scenarios": ["a"]}, "experiment 'e' has no 'methods'"),
    ({}, "experiment 'e' has no 'scenarios'"),
    ({"runs": [{"scenarios": ["a"], "methods": ["m", "n", "m"]}]},
     r"experiment 'e', runs group 1, lists methods \['m'\] more than once"),
    ({"scenarios": ["a", "a"], "methods": ["m"]}, r"experiment 'e' lists scenarios \['a'\] more than once"),
    ({"runs": [{"scenarios": ["a", "b"], "methods": ["m"]}, {"scenarios": ["b"], "methods": ["n", "m"]}]},
     "experiment 'e', runs group 2, runs method 'm' on scenario 'b', which an earlier group already runs"),
])
def test_a_bad_run_form_is_one_clear_error(exp, message):
    with pytest.raises(UserError, match=message):
        check_run_groups("e", exp)


def test_a_scales_run_form_replaces_the_full_configs():
    runs = [{"scenarios": ["a"], "methods": ["m"]}, {"scenarios": ["b"], "methods": ["n"]}]
    config = {"name": "p", "experiments": {"x": {"dataset": "d", "runs": runs},
                                           "y": {"dataset": "d", "scenarios": ["a"], "methods": ["m"]}},
              "scales": {"reduced": {"experiments": {"x": {"scenarios": ["c"], "methods": ["m"]},
                                                     "y": {"runs": runs}}}}}
    reduced = apply_scale({**config, "scale": "reduced"})["experiments"]
    assert reduced["x"] == {"dataset": "d", "scenarios": ["c"], "methods": ["m"]}
    assert reduced["y"] == {"dataset": "d", "runs": runs}
    partial = {**config, "scales": {"reduced": {"experiments": {"x": {"dataset": "d2"}}}}}  # no run form: kept
    assert apply_scale({**partial, "scale": "reduced"})["experiments"]["x"] == {"dataset": "d2", "runs": runs}


def minimal(figure: dict) -> dict:
    return {"name": "t", "seeds": [0], "datasets": {"digits": {}}, "scenarios": {}, "methods": {},
            "experiments": {"e": {"dataset": "digits", "model": {"name": "m"}, "train": {"epochs": 1},
                                  "runs": [{"scenarios": ["s"], "methods": ["m"]}]}},
            "report": {"figures": {"f": {"kind": "bars", **figure}}}}


@pytest.mark.parametrize("label", ["Table 2", "Figure 3", "Supplement Table 8", "SSD Table 1", "Table ? (sample-wise)",
                                   ["Table 2", "Figure 4"]])
def test_the_schema_accepts_table_and_figure_labels(label):
    check_schema(minimal({"reproduces": label}), SCHEMA)


@pytest.mark.parametrize("label", ["Tab. 7", "table 2", "Table", "Table 7 of the supplement", [], "Figure 3 (a (b))"])
def test_the_schema_refuses_other_labels(label):
    with pytest.raises(UserError, match="at report/figures/f/reproduces"):
        check_schema(minimal({"reproduces": label}), SCHEMA)


def test_the_schema_refuses_a_run_group_without_methods():
    config = minimal({})
    config["experiments"]["e"]["runs"] = [{"scenarios": ["s"]}]
    with pytest.raises(UserError, match="'methods' is a required property"):
        check_schema(config, SCHEMA)


def labels(entry: dict) -> list[str]:
    value = entry.get("reproduces", [])
    return [value] if isinstance(value, str) else list(value)


def table_names(reported: dict) -> set[str]:
    """The reported file's names of the paper's tables (records, unknown and omitted), without notes in parentheses;
    "Tables 3-4" names Table 3 and Table 4."""
    names = [r["table"] for key in ("values", "unknown", "omitted") for r in reported.get(key) or []]
    out = set()
    for name in (re.sub(r" \(.*$", "", n) for n in names):
        span = re.fullmatch(r"(.*)Tables (\d+)-(\d+)", name)
        out |= {f"{span[1]}Table {k}" for k in range(int(span[2]), int(span[3]) + 1)} if span else {name}
    return out


@pytest.mark.parametrize("scale", ["full", "reduced"])
@pytest.mark.parametrize("path", PAPERS, ids=[p.stem for p in PAPERS])
def test_every_paper_figure_and_match_rule_names_the_table_it_reproduces(path, scale):
    config = scaled(path, scale)
    report = config["report"]
    known = table_names(yaml.safe_load((ROOT / report["reported"]).read_text()))
    entries = {f"figure {n}": spec for n, spec in report.get("figures", {}).items()}
    entries |= {f"match rule {i}": rule for i, rule in enumerate(report.get("match", []))}
    for where, entry in entries.items():
        assert labels(entry), f"{path.name}: {where} has no 'reproduces'"
        for label in labels(entry):
            number = re.sub(r" \(.*$", "", label)
            # one name per table: a numbered table is named as the paper's reported file names it
            assert "?" in number or number.split()[-2] == "Figure" or number in known, (
                f"{path.name}: {where} reproduces {label!r}; the reported file names its tables {sorted(known)}")
        if "tables" in entry:
            assert set(entry["tables"]) == set(labels(entry)), f"{path.name}: {where} matches other tables"
    check_schema(config, SCHEMA)


def test_paper_grids_run_each_settings_entry_on_its_own_scenarios_only():
    ssd = scaled(ROOT / "config" / "papers" / "ssd_lfssd.yaml", "full")
    for exp in ("cifar20_resnet18", "cifar20_vit"):
        kinds = {(ssd["scenarios"][s]["kind"], m) for s, m in pairings(ssd["experiments"][exp])}
        assert not kinds & {("sub_class", m) for m in ("unsir", "lfssd_a5", "ssd_vit_full")}
        assert not kinds & {("full_class", m) for m in ("unsir_sub", "lfssd", "ssd_vit_sub")}
    natmu = scaled(ROOT / "config" / "papers" / "natmu.yaml", "full")
    kinds = {(natmu["scenarios"][s]["kind"], m) for s, m in pairings(natmu["experiments"]["cifar100_resnet18"])}
    assert not {k for k, m in kinds if m.endswith("_c100")} - {"random"}
    class_entries = ("natmu", "random_label", "bad_teacher_class", "salun_class")
    assert not {k for k, m in kinds if m in class_entries} - {"full_class"}
    mnemonic = scaled(ROOT / "config" / "papers" / "mnemonic_code.yaml", "full")
    for exp, first in (("cifar10_resnet18", "c10_airplane"), ("mnist_mlp", "d0")):  # baselines and sweeps: class 0
        assert {s for s, m in pairings(mnemonic["experiments"][exp]) if m not in ("original", "retrain")
                and not m.startswith("mnemonic")} == {first}
    dl = scaled(ROOT / "config" / "papers" / "del.yaml", "full")
    pairs = pairings(dl["experiments"]["cifar10_resnet18"])
    assert {s for s, m in pairs if m == "ssd_iid"} == {"iid_10pct"}
    assert {s for s, m in pairs if m == "ssd_noniid"} == {"noniid_10pct"}


def test_a_figures_caption_in_the_report_names_what_it_reproduces():
    from types import SimpleNamespace

    import jinja2

    template = jinja2.Template((ROOT / "workflow" / "report" / "figure.rst").read_text())
    spec = {"kind": "bars", "caption": "Forget accuracy.", "reproduces": ["Table 2", "Figure 4"]}
    snakemake = SimpleNamespace(params=SimpleNamespace(spec=spec), wildcards=SimpleNamespace(figure="f"),
                                config={"name": "p", "seeds": [0]})
    assert template.render(snakemake=snakemake).startswith("Reproduces Table 2, Figure 4. Forget accuracy. Config")
    spec.pop("reproduces")
    assert template.render(snakemake=snakemake).startswith("Forget accuracy. Config")


def test_a_figures_title_metadata_names_what_it_reproduces():
    try:
        from unlearnbench.figures import title
    except ImportError:  # before the results layer's split
        from unlearnbench.figures import title
    assert title({"reproduces": ["Table 2", "Figure 4"], "caption": "Forget accuracy."}) == (
        "Reproduces Table 2, Figure 4. Forget accuracy.")
    assert title({"reproduces": "Table 2"}) == "Reproduces Table 2." and title({}) is None


def test_a_scales_preset_recipe_and_other_model_replace_the_full_ones():
    """Merging the fast net's preset over the paper's recipe would keep its lr, momentum and schedule."""
    full = {"dataset": "d", "model": {"name": "vit", "options": {"depth": 12}},
            "train": {"epochs": 160, "lr": 0.1, "schedule": "multistep", "milestones": [80], "augment": False}}
    config = {"name": "p", "experiments": {"x": full, "y": full},
              "scales": {"reduced": {"experiments": {
                  "x": {"model": {"name": "airbench", "options": {"widths": [8, 8, 8]}},
                        "train": {"preset": "airbench", "epochs": 2, "augment": False}},
                  "y": {"model": {"options": {"depth": 2}}, "train": {"epochs": 4}}}}}}
    reduced = apply_scale({**config, "scale": "reduced"})["experiments"]
    assert reduced["x"]["train"] == {"preset": "airbench", "epochs": 2, "augment": False}
    assert reduced["x"]["model"] == {"name": "airbench", "options": {"widths": [8, 8, 8]}}
    assert reduced["y"]["train"] == {**full["train"], "epochs": 4}  # without a preset: merged as before
    assert reduced["y"]["model"] == {"name": "vit", "options": {"depth": 2}}


def test_command_line_values_win_over_the_scales_block():
    """`--config scale=reduced 'seeds=[0]'` runs seed 0 of the reduced grid: Snakemake merges --config into the
    config before the scale's block is applied, so the block would otherwise overwrite it."""
    config = {"name": "p", "seeds": [0, 1, 2], "threads": 4, "experiments": {"x": {"train": {"epochs": 160}}},
              "scales": {"reduced": {"seeds": [0, 1, 2], "threads": 1, "experiments": {"x": {"train": {"epochs": 8}}}}}}
    command_line = {"scale": "reduced", "seeds": [0], "experiments": {"x": {"train": {"epochs": 2}}}}
    reduced = apply_scale(deep_merge(config, command_line), command_line)
    assert reduced["seeds"] == [0] and reduced["threads"] == 1 and reduced["name"] == "p-reduced"
    assert reduced["experiments"]["x"]["train"] == {"epochs": 2}
    assert apply_scale({**config, "scale": "reduced"})["seeds"] == [0, 1, 2]  # without one: the scale's
    assert apply_scale(config, {"threads": 2})["threads"] == 2  # and at full scale


def test_command_line_values_get_their_yaml_types():
    """Snakemake reads nested --config values as strings: the schema would reject seeds=[0] as ['0']."""
    parsed = {"scale": "reduced", "seeds": ["0", "1"], "evaluation": {"oracles": "256", "recipe": "null"},
              "methods": {"ssd": {"alpha": "1.0e-4", "flag": "true", "empty": ""}}, "name": "on"}
    assert typed_values(parsed) == {"scale": "reduced", "seeds": [0, 1], "evaluation": {"oracles": 256, "recipe": None},
                                    "methods": {"ssd": {"alpha": 1.0e-4, "flag": True, "empty": ""}},
                                    "name": "on"}  # a top-level value as Snakemake typed it
