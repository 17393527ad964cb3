# Metrics of every run from cached logits. Metrics that compare with other models get those models' artifacts as
# extra inputs, only when the config's metric list needs them (unlearnbench.metrics.NEEDS); changing the metric
# list re-runs only these jobs, and the jobs of any newly needed artifact (references.smk).

from unlearnbench.metrics import needs_of
from unlearnbench.results import ORACLE

METRIC_NEEDS = needs_of(config["metrics"])


def metric_inputs(w):
    """The run's artifacts and those it is compared with: the retrain oracle of its training and forget-set seed,
    the incompetent model of its training seed, the ensembles and shadows (references.smk)."""
    run = run_dir(w.exp, w.seed, w.scenario, w.method)
    oracle = run_dir(w.exp, oracle_label(w.seed), w.scenario, ORACLE)
    inputs = {"logits_path": f"{run}/logits.npz", "split_path": split_path(w), "run_path": f"{run}/run.json"}
    if "oracle" in METRIC_NEEDS:
        inputs |= {"oracle_logits_path": f"{oracle}/logits.npz", "oracle_run_path": f"{oracle}/run.json"}
    if "incompetent" in METRIC_NEEDS:
        inputs["incompetent_path"] = incompetent_path(w.exp, parse_label(w.seed).train)
    if "relearn" in METRIC_NEEDS:
        inputs["relearn_path"] = f"{run}/relearn.json"
    if ULIRA_ORACLES or has_ensembles(w.method):
        inputs["oracle_ensemble_paths"] = oracle_ensemble_paths(w.exp, w.seed, w.scenario)
    if has_ensembles(w.method):
        inputs["unlearned_paths"] = unlearned_paths(w.exp, w.seed, w.scenario, w.method)
    if SHADOWS and evaluated(w.method):
        inputs |= shadow_paths(w)
    return inputs


def ensemble_settings(w):
    """The ensemble scores' N (0: none), whether the run has an unlearned ensemble, and the evaluation-only recipe
    (of the ensembles and U-LiRA's shadows); None where the run gets neither ensemble nor shadow scores."""
    if not has_ensembles(w.method) and not (SHADOWS and evaluated(w.method)):
        return None
    return {"n": ENSEMBLE_N if has_ensembles(w.method) else 0, "unlearned": w.method != ORACLE,
            "recipe": EVALUATION.get("recipe"),
            "klom_top_edge": EVALUATION.get("klom_top_edge", False)}


rule metrics:
    """Metrics of one run from cached logits; no forward pass."""
    input:
        unpack(metric_inputs),
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/metrics.json",
    params:
        step=step("evaluate.evaluate_run"),
        names=config["metrics"],
        ulira_oracles=lambda w: ULIRA_ORACLES,
        ensemble=ensemble_settings,
        context=lambda w: {
            "experiment": w.exp,
            "scenario": w.scenario,
            "method": w.method,
            **parse_label(w.seed).record(),  # seed (the training seed); forget_seed, unlearn_seed where set
            "dataset": dataset_config(EXPERIMENTS[w.exp]["dataset"]),
            "model": model_spec(w.exp),
            "train": EXPERIMENTS[w.exp]["train"],
            "scenario_config": config["scenarios"][w.scenario],
            "method_config": method_config(config, w.method),
        },
    log:
        f"{LOGS}/metrics/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}.log",
    script:
        "../scripts/step.py"
