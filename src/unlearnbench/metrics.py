"""Metrics computed from cached artifacts (logits per split, labels, forget indices, method time).

Each metric is a function of an ``Evaluation``, registered with its direction and scale so that tables know
how to read it:

- ``higher`` / ``lower``: higher (lower) is better;
- ``oracle``: closer to the retrain oracle's value is better (forget accuracy, membership inference).

Scale ``fraction`` means a number in [0, 1] (tables print it as %), ``seconds`` a time.
A metric that does not apply to a run (test accuracy on forgotten classes in a random scenario) returns None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import copy
import json
from pathlib import Path

import numpy as np
from scipy.special import log_softmax

from . import UserError
from .io import atomic_write_json, provenance

PARTS = ("forget", "retain", "test", "test_forget", "test_retain")


@dataclass
class Evaluation:
    """One evaluated model's cached outputs (NumPy arrays) and the split they refer to."""

    train_logits: np.ndarray
    test_logits: np.ndarray
    train_y: np.ndarray
    test_y: np.ndarray
    split: dict[str, np.ndarray]
    run: dict = field(default_factory=dict)  # what the unlearning step recorded (method time, ...)
    seed: int = 0

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Logits and labels of one part: forget, retain (training set), test, test_forget, test_retain."""
        if name in ("forget", "retain"):
            idx = self.split[name]
            return self.train_logits[idx], self.train_y[idx]
        if name == "test":
            return self.test_logits, self.test_y
        idx = self.split[name]
        return self.test_logits[idx], self.test_y[idx]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[Evaluation], float | None]
    direction: str  # higher | lower | oracle
    scale: str  # fraction | seconds
    doc: str


METRICS: dict[str, Metric] = {}


def metric(direction: str, scale: str = "fraction"):
    assert direction in ("higher", "lower", "oracle") and scale in ("fraction", "seconds")

    def wrap(fn):
        METRICS[fn.__name__] = Metric(fn.__name__, fn, direction, scale, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return wrap


def compute(evaluation: Evaluation, names: list[str] | None = None) -> dict[str, float | None]:
    names = list(METRICS) if names is None else names
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {unknown}; valid metrics: {', '.join(METRICS)}")
    return {n: METRICS[n].fn(evaluation) for n in names}


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float | None:
    return None if len(labels) == 0 else float((logits.argmax(1) == labels).mean())


def entropy(logits: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of the softmax of each row, with 0 log 0 = 0."""
    logp = log_softmax(logits.astype(np.float64), axis=1)
    return -np.nan_to_num(np.exp(logp) * logp).sum(1)


@metric("higher")
def retain_acc(ev: Evaluation):
    """Accuracy on the retain set D_r (RA)."""
    return accuracy(*ev.part("retain"))


@metric("oracle")
def forget_acc(ev: Evaluation):
    """Accuracy on the forget set D_f (FA; UA = 1 - FA)."""
    return accuracy(*ev.part("forget"))


@metric("higher")
def test_acc(ev: Evaluation):
    """Accuracy on the whole test set (TA)."""
    return accuracy(*ev.part("test"))


@metric("oracle")
def test_forget_acc(ev: Evaluation):
    """Test accuracy on the forgotten classes or sub-class (class scenarios only)."""
    return accuracy(*ev.part("test_forget"))


@metric("higher")
def test_retain_acc(ev: Evaluation):
    """Test accuracy on the remaining classes."""
    return accuracy(*ev.part("test_retain"))


@metric("oracle")
def mia_entropy_lr(ev: Evaluation):
    """Entropy logistic-regression MIA of SSD/LFSSD/NatMU: fraction of D_f predicted member.

    Logistic regression (balanced class weights) on the softmax entropy, fitted on all of D_r (member) against
    the test set (non-member), applied to the forget set (Foster et al. 2024, after Chundawat et al. 2023).
    """
    return entropy_attack(entropy(ev.part("retain")[0]), entropy(ev.part("test")[0]), entropy(ev.part("forget")[0]))


def entropy_attack(member: np.ndarray, nonmember: np.ndarray, target: np.ndarray) -> float:
    """Fit LR(balanced) on 1-d features member (1) vs non-member (0); mean predicted membership of ``target``."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([member, nonmember]).reshape(-1, 1)
    y = np.concatenate([np.ones(len(member)), np.zeros(len(nonmember))])
    attack = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(attack.predict(target.reshape(-1, 1)).mean())


@metric("lower", scale="seconds")
def method_seconds(ev: Evaluation):
    """Wall time of the unlearning method itself, evaluation excluded."""
    return ev.run.get("seconds")


def evaluate_run(logits_path: str, split_path: str, run_path: str, names: list[str], context: dict, out: str) -> None:
    """Workflow step: metrics of one run from its cached logits, written with its configuration and provenance."""
    run = json.loads(Path(run_path).read_text())
    with np.load(logits_path) as lg, np.load(split_path) as sp:
        ev = Evaluation(lg["train_logits"], lg["test_logits"], lg["train_y"], lg["test_y"], {k: sp[k] for k in sp.files}, run, run.get("seed", 0))
    values = compute(ev, names)
    atomic_write_json({**copy.deepcopy(context), "metrics": values, "run": run, "provenance": provenance()}, out)
