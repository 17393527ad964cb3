"""Step of ``workflow/rules/evaluate.smk``: the metrics of one run from cached logits (no torch, no forward pass)."""

from __future__ import annotations

import copy

import numpy as np

from ..io import atomic_write_json, load_json, load_npz, provenance
from ..metrics import Evaluation, compute


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
    relearn_path: str | None = None, ulira_paths: list[str] | None = None,
) -> None:
    """Metrics of one run from its cached logits (and those of the models it is compared with), written with its
    configuration and provenance."""
    split = load_npz(split_path, "split file", ("forget", "retain", "test_forget", "test_retain"))
    ev = load_evaluation(logits_path, split, run_path)
    if oracle_logits_path:
        ev.oracle = load_evaluation(oracle_logits_path, split, oracle_run_path, ev.seed)
    if incompetent_path:
        ev.incompetent = load_evaluation(incompetent_path, split, seed=ev.seed)
    if relearn_path:
        ev.relearn = load_json(relearn_path, "relearn record")
    ev.ulira_oracles = [load_evaluation(p, split, seed=ev.seed) for p in ulira_paths or []]
    values = compute(ev, names)
    atomic_write_json({**copy.deepcopy(context), "metrics": values, "run": ev.run, "provenance": provenance()}, out)
