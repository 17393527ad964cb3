"""Step of ``workflow/rules/evaluate.smk``: the metrics of one run from cached logits (no torch, no forward pass)."""

from __future__ import annotations

import copy

import numpy as np

from ..io import atomic_write_json, load_json, load_npz, provenance
from ..metrics import Ensembles, Evaluation, compute
from ..seeds import all_seeds


def load_evaluation(logits_path: str, split: dict[str, np.ndarray], run_path: str | None = None,
                    seed: int = 0) -> Evaluation:
    """A model's cached logits (``logits.npz``) and run record, for the ``split``'s index sets."""
    run = load_json(run_path, "run record") if run_path else {}
    lg = load_npz(logits_path, "logits file", ("train_logits", "test_logits", "train_y", "test_y"))
    return Evaluation(lg["train_logits"], lg["test_logits"], lg["train_y"], lg["test_y"], split, run,
                      run.get("seed", seed))


def evaluate_run(
    logits_path: str, split_path: str, run_path: str, names: list[str], context: dict, out: str,
    oracle_logits_path: str | None = None, oracle_run_path: str | None = None, incompetent_path: str | None = None,
    relearn_path: str | None = None, oracle_ensemble_paths: list[str] | None = None, ulira_oracles: int = 0,
    unlearned_paths: list[str] | None = None, ensemble: dict | None = None, membership_path: str | None = None,
    shadow_paths: list[str] | None = None,
) -> None:
    """Metrics of one run from its cached logits (and those of the models it is compared with), written with its
    configuration and provenance.

    ``oracle_ensemble_paths``: the oracle ensemble's stacked logits (``steps.references.ensemble``), whose first
    ``ulira_oracles`` are U-LiRA's oracles; ``ensemble`` (``{n, recipe, unlearned, klom_top_edge}``): the ensemble
    scores' N (0: none), the evaluation-only recipe and whether the run has an unlearned ensemble (the run's own logits, then ``unlearned_paths``);
    ``membership_path`` and ``shadow_paths``: U-LiRA's shadow membership and the shadows unlearned with the run's
    method (stacked logits, in shadow order)."""
    split = load_npz(split_path, "split file", ("forget", "retain", "test_forget", "test_retain"))
    ev = load_evaluation(logits_path, split, run_path)
    if oracle_logits_path:
        ev.oracle = load_evaluation(oracle_logits_path, split, oracle_run_path, ev.seed)
    if incompetent_path:
        ev.incompetent = load_evaluation(incompetent_path, split, seed=ev.seed)
    if relearn_path:
        ev.relearn = load_json(relearn_path, "relearn record")
    oracles = load_stack(oracle_ensemble_paths or [])
    if ulira_oracles:
        ev.ulira_oracles = [Evaluation(oracles["train_logits"][k], oracles["test_logits"][k], ev.train_y, ev.test_y,
                                       split, seed=ev.seed) for k in range(ulira_oracles)]
    record = {}
    if ensemble and ensemble["n"]:
        own = {"train_logits": ev.train_logits[None], "test_logits": ev.test_logits[None]}
        unlearned = load_stack([own, *(unlearned_paths or [])]) if ensemble["unlearned"] else None
        ev.ensembles = Ensembles(oracles, unlearned, ensemble["n"], ensemble.get("recipe"),
                                 ensemble.get("klom_top_edge", False))
        record = {"ensemble": ev.ensembles.record()}
    if shadow_paths:
        logits = np.concatenate([load_npz(p, "shadow logits file", ("train_logits",))["train_logits"]
                                 for p in shadow_paths])
        in_train = load_npz(membership_path, "membership file", ("in_train",))["in_train"][:len(logits)]
        ev.shadows = {"in_train": in_train, "train_logits": logits}
        recipe = (ensemble or {}).get("recipe") or "experiment"
        record["ulira_shadows"] = {"n_models": len(logits), "recipe": recipe}
    values = compute(ev, names)
    seeds = all_seeds(context) if "seed" in context else {}  # the tied axes' seeds named too
    atomic_write_json({**copy.deepcopy(context), **seeds, "metrics": values, **record, "run": ev.run,
                       "provenance": provenance()}, out)


def load_stack(parts: list) -> dict[str, np.ndarray]:
    """Stacked logits of an ensemble from its jobs' files (or dicts of arrays), in order: ``[models, n, classes]``."""
    loaded = [p if isinstance(p, dict) else load_npz(p, "ensemble logits file", ("train_logits", "test_logits"))
              for p in parts]
    if not loaded:
        return {}
    return {k: np.concatenate([np.asarray(p[k]) for p in loaded]) for k in ("train_logits", "test_logits")}
