"""The method kit and torch-free planning: the catalog read from the source equals the imported registries, every
method carries provenance and constraints its defaults satisfy, the README's methods table is the rendered one,
planning never imports torch, and the task's recipe/loader/fit helpers."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import helpers
from unlearnbench import UserError, catalog
from unlearnbench.methods import METHODS, Subset, UnlearnTask, registry
from unlearnbench.models import MODELS
from unlearnbench.recipe import Recipe

REPO = Path(__file__).resolve().parents[1]
BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"planning imported {name}")
sys.meta_path.insert(0, Block())
"""


def test_the_catalog_read_from_source_is_the_imported_registry():
    # names, parameters, defaults, annotations, scenarios, paper, needs; a forgotten import line is named
    assert helpers.registry_mismatch(catalog.method_entries(), METHODS) is None, \
        helpers.registry_mismatch(catalog.method_entries(), METHODS)
    for name, entry in METHODS.items():
        assert entry.module == catalog.method_entries()[name].module


def test_model_options_read_from_source_are_the_builders_signatures():
    read = catalog.model_options()
    assert set(read) == set(MODELS)
    for name, builder in MODELS.items():
        params = list(inspect.signature(builder).parameters.values())[1:]
        assert {p.name: p.default for p in params} == {k: v.default for k, v in read[name].items()}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_has_provenance_and_its_defaults_pass_its_constraints(name):
    entry = METHODS[name]
    assert entry.paper is not None and entry.paper.title
    entry.check(registry.hyperparameters_of(entry))
    assert set(entry.scenarios) <= {"full_class", "sub_class", "random"}


def test_readme_methods_table_is_rendered_from_the_registry():
    readme = (REPO / "README.md").read_text()
    assert catalog.methods_table() in readme, "regenerate with: python -c 'from unlearnbench.catalog import " \
                                              "methods_table; print(methods_table())'"


def test_constraints_refuse_values_and_options_in_one_line():
    for name, hp, message in [
        ("ssd", {"alpha": -1}, r"method 'ssd': alpha must be positive, got -1"),
        ("fisher_masking", {"mask": "magnitude"}, r"unknown mask 'magnitude'; valid: fisher, random, gradient, activation"),
        ("natmu", {"delta": 1.0}, r"delta must be in \(-1, 1\), got 1.0"),
        ("del", {"top_fraction": 0}, r"top_fraction must be in \(0, 1\], got 0"),
        ("unsir", {"retain_per_class": 0}, r"retain_per_class must be at least 1, got 0"),
        ("l1_sparse", {"alpha": -1e-5}, r"alpha must be zero or positive"),
        ("unsir", {"noise_steps": 2.5}, r"noise_steps must be a whole number, got 2.5"),
        ("natmu", {"reinit_head": "yes"}, r"reinit_head must be true or false"),
    ]:
        with pytest.raises(UserError, match=message) as err:
            catalog.method_entry(name).check(hp)
        assert "\n" not in str(err.value)


def test_mnemonic_code_needs_codes_unless_it_uses_images():
    entry = catalog.method_entry("mnemonic_code")
    with pytest.raises(UserError, match="needs the experiment's 'mnemonic'"):
        entry.check({}, context={})
    entry.check({"images_per_class": 5}, context={})  # ours-w-data: real images, no codes
    entry.check({}, context={"mnemonic": {"t_mix": 0.1}})


def test_planning_the_quick_preset_imports_no_torch():
    """The config checks and the registries' metadata, as common.smk runs them, with torch made unimportable."""
    code = BLOCK_TORCH + """
import yaml
from snakemake.utils import validate
from unlearnbench.catalog import supports, hyperparameters, methods_table
from unlearnbench.config import apply_scale, check_config, check_report, check_schema
config = apply_scale(yaml.safe_load(open("config/quick.yaml")))
check_schema(config, "workflow/schemas/config.schema.yaml")
validate(config, schema="workflow/schemas/config.schema.yaml")  # fills in the defaults, as common.smk
config["methods"].setdefault("retrain", None)
check_config(config)
check_report(config, ".")
assert supports("unsir", "full_class") and not supports("unsir", "random")
hyperparameters("ssd"), methods_table()
assert not any(m.split(".")[0] in ("torch", "torchvision") for m in sys.modules)
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


@pytest.mark.slow
def test_snakemake_dry_run_of_the_quick_preset_imports_no_torch(tmp_path):
    code = BLOCK_TORCH + f"""
from snakemake.cli import main
sys.argv = ["snakemake", "-n", "-q", "-s", "{REPO / 'Snakefile'}", "--directory", "{tmp_path}",
            "--configfile", "{REPO / 'config' / 'quick.yaml'}", "--cores", "1"]
main()
"""
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]


@pytest.fixture
def task(digits, digits_spec):
    x, y = digits["train_x"][:200], digits["train_y"][:200]
    return UnlearnTask(forget=Subset(x[:40], y[:40]), retain=Subset(x[40:], y[40:]), spec=digits_spec,
                       recipe=Recipe(epochs=12, lr=0.05, schedule="multistep", milestones=[6], warmup_epochs=1,
                                     weight_decay=1e-4, momentum=0.8, lookahead=5, norm_bias_lr_scale=64.0),
                       initial_state=None, model_config={}, seed=3)


def test_task_recipe_derives_a_validated_method_recipe(task):
    derived = task.recipe(epochs=2, lr=0.01)
    assert (derived.epochs, derived.lr, derived.batch_size, derived.schedule) == (2, 0.01, 128, "cosine")
    assert (derived.milestones, derived.warmup_epochs, derived.min_lr) == ([], 0.0, 0.0)  # the method's schedule
    assert (derived.lookahead, derived.norm_bias_lr_scale) == (0, 1.0)  # the original's training tricks stay there
    assert (derived.momentum, derived.weight_decay) == (0.8, 1e-4)  # the original's optimiser
    assert task.recipe.epochs == 12 and task.recipe.milestones == [6]  # the original is unchanged
    with pytest.raises(UserError, match="must be positive"):
        task.recipe(epochs=2, lr=-1)
    with pytest.raises(UserError, match="unknown optimizer"):
        task.recipe(epochs=2, lr=0.1, optimizer="adam")


def test_task_loader_streams_differ_and_repeat(task):
    def first(**kw):  # the labels of a new loader's first batch
        return next(iter(task.loader(task.retain, 16, **kw)))[1]

    assert torch.equal(first(), first())
    assert torch.equal(first(), first(seed=task.seed))  # the default stream is the task's seed
    assert torch.equal(first(stream="forget"), first(stream="forget"))
    assert not torch.equal(first(), first(stream="forget"))


def test_task_fit_seeds_the_global_generator(task, monkeypatch):
    import unlearnbench.methods.task as task_module

    draws = []
    monkeypatch.setattr(task_module, "fit", lambda *a, **k: draws.append((torch.rand(1).item(), k["compile"])))
    torch.manual_seed(123)
    task.fit(None, None, None)
    task.fit(None, None, None)
    assert draws[0] == draws[1] and draws[0][1] is task.compile


def test_methods_use_the_kit_not_each_other():
    """The method kit's contract, by grep: no hand-written seed, compile or recipe check, no method imports another."""
    pattern = re.compile(r"recipe\.check\(\)|set_seed\(task\.seed\)|compile=task\.compile|"
                         r"from \.(baselines|natmu|random_label) import")
    hits = [f"{p.name}: {line}" for p in (REPO / "src/unlearnbench/methods").glob("*.py")
            for line in p.read_text().splitlines() if pattern.search(line)]
    assert hits == []
