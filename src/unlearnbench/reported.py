"""A paper's reported numbers beside ours: which reported value each run reproduces, the difference, and a verdict.

The reported values live in ``config/papers/reported/<paper>.yaml`` (format in its README). A config's
``report.match`` rules say which of them an experiment reproduces: a rule names an ``experiment``, optionally the
paper's ``tables``, ``where`` (setting keys the record must have, e.g. ``t_mix: 0.1``), ``methods`` (the paper's
method → our method entry, where the names differ) and ``scenario`` (our scenario, where the setting cannot be
matched by itself, e.g. a forget set read from an index file). Without rules every experiment is matched against
every record. Without ``scenario`` a record's setting must match the scenario's: the data set, the kind, and the
forgotten classes (``full_class``), the sub-class (``sub_class``) or the fraction and the classes drawn from
(``random``); the paper's model is shown, not matched (ours may stand in for it).

Verdict: ``agrees`` when |ours − reported| ≤ 2·√(s_paper² + s_ours²) (the reported spread and our std over seeds,
missing terms 0), ``differs`` beyond it, ``no spread`` where neither is known (one seed, no reported ±), ``not run``
where the grid has no such run and ``not computed`` where the metric is not in the config's metric list.
"""

from __future__ import annotations

import math

import pandas as pd

FACTOR = {"%": 100.0, "fraction": 1.0, "s": 1.0}


def scenario_setting(scenario: dict, dataset: str) -> dict:
    """Our scenario in the reported files' terms: class indices instead of names (see the module docstring)."""
    from .datasets import get_spec
    from .splits import class_index

    spec = get_spec(dataset)
    indices = sorted(class_index(c, spec.classes) for c in scenario.get("classes", []))
    setting = {"dataset": dataset, "scenario": scenario["kind"]}
    if scenario["kind"] == "full_class":
        setting["classes"] = indices
    elif scenario["kind"] == "sub_class":
        setting["subclass"] = class_index(scenario["subclass"], spec.fine_classes, "sub-class")
    else:
        setting |= {"fraction": scenario.get("fraction"), "forget_from_classes": indices}
    return setting


def setting_matches(theirs: dict, ours: dict) -> bool:
    if (theirs.get("dataset"), theirs.get("scenario")) != (ours["dataset"], ours["scenario"]):
        return False
    if ours["scenario"] == "full_class":
        return sorted(theirs.get("classes", [])) == ours["classes"]
    if ours["scenario"] == "sub_class":
        return theirs.get("subclass") == ours["subclass"]
    fraction = theirs.get("fraction")
    return (fraction is not None and ours["fraction"] is not None and math.isclose(fraction, ours["fraction"])
            and sorted(theirs.get("forget_from_classes", [])) == ours["forget_from_classes"])


def match(records: list[dict], rules: list[dict], settings: dict[str, dict[str, dict]]) -> list[dict]:
    """(record, experiment, scenario, method entry) for every record a rule matches; ``settings`` holds
    ``scenario_setting`` of every experiment's scenarios."""
    pairs = []
    for rule in rules:
        scenarios = settings[rule["experiment"]]
        for record in records:
            if rule.get("tables") and record["table"] not in rule["tables"]:
                continue
            if any(record["setting"].get(k) != v for k, v in rule.get("where", {}).items()):
                continue
            if "scenario" in rule:
                hits = [rule["scenario"]] if record["setting"].get("dataset") == scenarios[rule["scenario"]]["dataset"] else []
            else:
                hits = [name for name, ours in scenarios.items() if setting_matches(record["setting"], ours)]
            method = rule.get("methods", {}).get(record["method"], record["method"])
            pairs += [{"record": record, "experiment": rule["experiment"], "scenario": s, "method": method} for s in hits]
    return pairs


def verdict(difference: float, spread: float, std: float) -> str:
    if math.isnan(spread) and math.isnan(std):
        return "no spread"
    tolerance = 2 * math.sqrt(sum(0.0 if math.isnan(s) else s * s for s in (spread, std)))
    return "agrees" if abs(difference) <= tolerance else "differs"


def compare(pairs: list[dict], summary: pd.DataFrame) -> pd.DataFrame:
    """One row per matched reported value: reported ± spread, ours ± std (in the reported unit), difference, verdict."""
    ours = summary.set_index(["experiment", "scenario", "method"])
    rows = []
    for pair in pairs:
        record, key = pair["record"], (pair["experiment"], pair["scenario"], pair["method"])
        factor = FACTOR.get(record["unit"], 1.0)
        spread = math.nan if record.get("spread") is None else float(record["spread"])
        row = {"table": record["table"], "row": record["row"], "setting": setting_label(record["setting"]),
               "experiment": key[0], "scenario": key[1], "method": key[2], "metric": record["metric"], "unit": record["unit"],
               "reported": float(record["value"]), "reported_spread": spread, "reproduced": math.nan, "reproduced_std": math.nan,
               "n": 0, "difference": math.nan, "verdict": "not run", "source": record.get("source", "")}
        if key in ours.index:
            run = ours.loc[key]
            if f"{record['metric']}_mean" not in run or pd.isna(run[f"{record['metric']}_mean"]):
                row["verdict"] = "not computed"
            else:
                mean, std = run[f"{record['metric']}_mean"] * factor, run[f"{record['metric']}_std"] * factor
                row |= {"reproduced": mean, "reproduced_std": std, "n": int(run["n"]), "difference": mean - row["reported"]}
                row["verdict"] = verdict(row["difference"], spread, float(std))
        rows.append(row)
    return pd.DataFrame(rows)


def setting_label(setting: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in setting.items() if k not in ("scenario",))
