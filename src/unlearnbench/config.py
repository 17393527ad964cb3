"""Checks of a workflow config beyond its JSON schema: every name it uses must exist, every value must fit.

The schema (``workflow/schemas/config.schema.yaml``) catches typos in keys and wrong types; this catches unknown
data sets, models, model options, classes, scenarios, methods, hyperparameters (names, values, options, ranges and
what a method needs from its experiment) and metrics, before any job runs. It imports no torch (``catalog``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from . import UserError
from .catalog import check_model_options, method_entry
from .datasets import get_spec
from .metrics import METRICS
from .recipe import Recipe
from .seeds import check_seed_axes
from .splits import check_scenario
from .values import check_value, duplicates, non_finite

SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a folder name: no '..', no hidden folder, no spaces


def apply_scale(config: dict, command_line: dict | None = None) -> dict:
    """Resolve ``scale`` (default ``full``): a config's ``scales.<scale>`` block is deep-merged over it and the
    results go to ``<name>-<scale>``, so one file holds a paper's grid at full scale and at a reduced scale. The
    ``command_line`` values (Snakemake's ``--config``, ``typed_values``) are merged last, so that they win over the
    block (``--config scale=reduced 'seeds=[0]'``: seed 0 of the reduced grid). An
    experiment set to null in the scale's block is left out (e.g. one whose data set has no offline copy), with
    the report's match rules for it. An experiment's ``runs`` in the scale's block replaces its ``scenarios`` +
    ``methods``, and either of these replaces its ``runs``; a ``train`` block with a ``preset``, and a ``model`` of
    another name, replace the base's instead of merging with it."""
    command_line = {k: v for k, v in (command_line or {}).items() if k != "scale"}
    scale = config.get("scale", "full")
    if scale == "full":
        return deep_merge(config, command_line) if command_line else config
    scales = config.get("scales", {})
    if scale not in scales:
        raise UserError(f"scale {scale!r} is not defined under 'scales'; defined: full, {', '.join(scales) or 'none'}")
    merged = deep_merge(deep_merge(config, scales[scale]), command_line)
    for name, override in scales[scale].get("experiments", {}).items():  # a scale's run form replaces the other
        base = merged["experiments"].get(name)
        if isinstance(override, dict) and isinstance(base, dict):
            short = {"scenarios", "methods"} & set(override)
            drop = {"scenarios", "methods"} if "runs" in override else {"runs"} if short else set()
            merged["experiments"][name] = {k: v for k, v in base.items() if k not in drop}
            if "preset" in override.get("train", {}):  # a preset is a whole recipe: nothing of the base's stays
                merged["experiments"][name]["train"] = override["train"]
            model_name = override.get("model", {}).get("name")
            if model_name and model_name != (config.get("experiments", {}).get(name) or {}).get("model", {}).get("name"):
                merged["experiments"][name]["model"] = override["model"]  # another model: not the base's options
    experiments = {k: v for k, v in merged.get("experiments", {}).items() if v is not None}  # `exp: null` drops one
    if "match" in merged.get("report", {}):  # and the rules that compare it with reported values
        merged["report"] = {**merged["report"], "match": [r for r in merged["report"]["match"] if r["experiment"] in experiments]}
    return {**merged, "experiments": experiments, "name": f"{config['name']}-{scale}"}


def typed_values(values: dict) -> dict:
    """Snakemake's ``--config`` values with their YAML types: it types a top-level value itself, but reads nested
    ones as strings (``seeds=[0]`` is ``['0']``, ``evaluation={oracles: 256}`` is ``{'oracles': '256'}``); each
    string inside a list or mapping is read again as YAML."""
    import yaml

    def typed(value):
        if isinstance(value, dict):
            return {k: typed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(v) for v in value]
        if isinstance(value, str) and value.strip():
            try:
                return yaml.safe_load(value)
            except yaml.YAMLError:
                return value
        return value

    return {k: typed(v) if isinstance(v, (dict, list)) else v for k, v in values.items()}


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` merged in: dicts recursively, everything else (lists included) replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = deep_merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def check_schema(config: dict, schema_path: str | Path) -> None:
    """Validate against the JSON schema, reporting the most relevant violation in one line."""
    import jsonschema
    import yaml

    schema = yaml.load(Path(schema_path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "top level"
        raise UserError(f"{error.message} (at {where}); see {Path(schema_path).name} for the valid keys")


def run_groups(exp: dict) -> list[dict]:
    """An experiment's run groups ``[{scenarios, methods}, ...]``: each group runs its methods on its scenarios.
    The short form ``scenarios`` + ``methods`` is one group."""
    return exp["runs"] if "runs" in exp else [{"scenarios": exp["scenarios"], "methods": exp["methods"]}]


def scenarios_of(exp: dict) -> list[str]:
    """Every scenario an experiment runs, in the order of first appearance."""
    return list(dict.fromkeys(s for group in run_groups(exp) for s in group["scenarios"]))


def pairings(exp: dict) -> list[tuple[str, str]]:
    """Every (scenario, method entry) an experiment runs, scenario by scenario in the order of first appearance,
    each scenario's methods in the order its groups list them, and the oracle ``retrain`` on every scenario."""
    pairs = []
    for scenario in scenarios_of(exp):
        methods = [m for group in run_groups(exp) if scenario in group["scenarios"] for m in group["methods"]]
        pairs += [(scenario, m) for m in dict.fromkeys(methods + ["retrain"])]
    return pairs


def method_config(config: dict, name: str) -> dict:
    """A named method entry with its registered method filled in: ``{"method": ..., **hyperparameters}``."""
    if name not in config["methods"]:
        raise UserError(f"method {name!r} is used but not defined under 'methods'; defined: {', '.join(config['methods'])}")
    entry = dict(config["methods"][name] or {})
    entry.setdefault("method", name)
    return entry


def check_yaml_keys(path: str | Path) -> None:
    """A config file must not repeat a key in one mapping (YAML loaders silently keep the last one)."""
    import yaml

    class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser where installed
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    line = key_node.start_mark.line + 1
                    raise UserError(f"{path} line {line}: key {key!r} appears twice in one block; keep one")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    try:
        yaml.load(Path(path).read_text(), Loader=StrictLoader)  # noqa: S506 - a (C)SafeLoader subclass
    except yaml.YAMLError:
        pass  # Snakemake itself reports syntax errors


def check_values(config: dict) -> None:
    """What the schema cannot say: finite numbers, unique seeds and methods, valid seed axes, path-safe names, a
    metric list."""
    bad = non_finite(config)
    if bad:
        raise UserError(f"{bad[0]} is NaN or infinite; give a finite number")
    for what, names in [("name", [config["name"]])] + [(key, list(config[key])) for key in ("datasets", "experiments", "scenarios", "methods")]:
        unsafe = [n for n in names if not SAFE_NAME.fullmatch(str(n))]
        if unsafe:
            raise UserError(f"{what} {unsafe[0]!r} is not a safe folder name; use letters, digits, '_', '-' and '.' "
                            "(not first), no spaces")
    repeated = duplicates(config["seeds"])
    if repeated:
        raise UserError(f"seeds lists {repeated} more than once; each seed is one run, list it once")
    check_seed_axes(config.get("seed_axes", {}))
    for exp_name, exp in config["experiments"].items():
        check_run_groups(exp_name, exp)
    if not config.get("metrics", True):
        raise UserError("metrics is an empty list; name at least one metric, or remove the key for the default list")
    repeated = duplicates(config.get("metrics", []))
    if repeated:
        raise UserError(f"metrics lists {repeated} more than once; list each once")


def check_run_groups(exp_name: str, exp: dict) -> None:
    """Either ``runs`` or the short form ``scenarios`` + ``methods``; no name twice in a group, no pairing twice."""
    where = f"experiment {exp_name!r}"
    short = [key for key in ("scenarios", "methods") if key in exp]
    if "runs" in exp and short:
        raise UserError(f"{where} has both 'runs' and '{short[0]}'; give either runs: [{{scenarios, methods}}, ...] "
                        "or scenarios + methods (one group)")
    if "runs" not in exp and len(short) < 2:
        missing = [key for key in ("scenarios", "methods") if key not in exp]
        raise UserError(f"{where} has no '{missing[0]}'; give scenarios + methods, or runs: [{{scenarios, methods}}, ...]")
    seen = set()
    for number, group in enumerate(run_groups(exp), 1):
        at = f"{where}, runs group {number}," if "runs" in exp else where
        for key in ("methods", "scenarios"):
            repeated = duplicates(group[key])
            if repeated:
                raise UserError(f"{at} lists {key} {repeated} more than once; list each once")
        twice = [(s, m) for s in group["scenarios"] for m in group["methods"] if (s, m) in seen]
        if twice:
            raise UserError(f"{at} runs method {twice[0][1]!r} on scenario {twice[0][0]!r}, which an earlier group "
                            "already runs; list each pairing once")
        seen |= {(s, m) for s in group["scenarios"] for m in group["methods"]}


def check_recipe(where: str, train: dict) -> Recipe:
    """A training recipe with each value of its field's type (``epochs`` a positive number)."""
    defaults = {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                for f in dataclasses.fields(Recipe)}
    defaults["epochs"] = 1.0
    for key, value in train.items():
        if key in defaults:
            check_value(f"{where} train", key, value, defaults[key])
    return Recipe.from_dict(train)


def check_config(config: dict) -> None:
    check_values(config)
    for key, ds in config["datasets"].items():
        get_spec(ds.get("name", key))
    for exp_name, exp in config["experiments"].items():
        where = f"experiment {exp_name!r}"
        if exp["dataset"] not in config["datasets"]:
            raise UserError(f"{where} uses data set {exp['dataset']!r}, not defined under 'datasets': {', '.join(config['datasets'])}")
        dataset = config["datasets"][exp["dataset"]].get("name", exp["dataset"])
        check_model_options(where, exp["model"]["name"], exp["model"].get("options", {}))
        check_recipe(where, exp["train"])
        for scenario in scenarios_of(exp):
            if scenario not in config["scenarios"]:
                raise UserError(f"{where} uses scenario {scenario!r}, not defined under 'scenarios': {', '.join(config['scenarios'])}")
            check_scenario(config["scenarios"][scenario], dataset, config["datasets"][exp["dataset"]])
        for name in dict.fromkeys(m for group in run_groups(exp) for m in group["methods"]):
            entry = method_config(config, name)
            hparams = {k: v for k, v in entry.items() if k != "method"}
            label = f"{where}: method {name!r}" + (f" ({entry['method']})" if entry["method"] != name else "")
            method_entry(entry["method"]).check(hparams, context=exp, where=label)
    unknown = [m for m in config["metrics"] if m not in METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {unknown}; valid metrics: {', '.join(METRICS)}")


def check_report(config: dict, root: str | Path = ".") -> None:
    """Every name in the ``report`` block must exist in the config: figures' runs and metrics, match rules,
    the reported-values file and the leaderboard's score."""
    report = config.get("report", {})
    known = {"experiments": config["experiments"], "scenarios": config["scenarios"], "methods": config["methods"]}
    metrics = set(config["metrics"]) | {f"delta_{m}" for m in config["metrics"]}
    for name, spec in report.get("figures", {}).items():
        where = f"report figure {name!r}"
        for key, defined in known.items():
            unknown = [v for v in spec.get(key, []) + (spec.get("references", []) if key == "methods" else []) if v not in defined]
            if unknown:
                raise UserError(f"{where} names {key} {unknown} that the config does not define; defined: {', '.join(defined)}")
        unknown = [m for m in spec.get("metrics", []) if m not in metrics]
        if unknown and spec["kind"] != "history":  # a history's metrics are the method's own record
            raise UserError(f"{where} draws metric(s) {unknown} that the config does not compute; add them to 'metrics'")
        if spec["kind"] == "sweep" and not str(spec.get("x", "")).startswith(("method.", "experiment.")):
            raise UserError(f"{where} is a sweep: set x to method.<hyperparameter> or experiment.<key>, e.g. method.rho")
    if "reported" in report and not (Path(root) / report["reported"]).is_file():
        raise UserError(f"report.reported file {report['reported']!r} not found (a path relative to the project root)")
    for rule in report.get("match", []):
        if rule["experiment"] not in config["experiments"]:
            raise UserError(f"report.match names experiment {rule['experiment']!r}, not defined under 'experiments'")
        if rule.get("scenario") and rule["scenario"] not in scenarios_of(config["experiments"][rule["experiment"]]):
            raise UserError(f"report.match names scenario {rule['scenario']!r}, not a scenario of experiment {rule['experiment']!r}")
    score = report.get("leaderboard", {}).get("score")
    if score is not None and score not in config["metrics"]:
        raise UserError(f"the leaderboard's score {score!r} is not in the config's metrics; add it there or pick one of: {', '.join(config['metrics'])}")
