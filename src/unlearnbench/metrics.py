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

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from . import UserError

PARTS = ("forget", "retain", "test", "test_forget", "test_retain")


@dataclass
class Evaluation:
    """One evaluated model's cached outputs and the split they refer to."""

    train_logits: torch.Tensor
    test_logits: torch.Tensor
    train_y: torch.Tensor
    test_y: torch.Tensor
    split: dict[str, torch.Tensor]
    run: dict = field(default_factory=dict)  # what the unlearning step recorded (method time, ...)
    seed: int = 0

    def part(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
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


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float | None:
    return None if len(labels) == 0 else (logits.argmax(1) == labels).float().mean().item()


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of the softmax of each row, with 0 log 0 = 0."""
    logp = torch.log_softmax(logits.double(), dim=1)
    return -(logp.exp() * logp).nan_to_num().sum(1)


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


def entropy_attack(member: torch.Tensor, nonmember: torch.Tensor, target: torch.Tensor) -> float:
    """Fit LR(balanced) on 1-d features member (1) vs non-member (0); mean predicted membership of ``target``."""
    x = torch.cat([member, nonmember]).numpy().reshape(-1, 1)
    y = np.concatenate([np.ones(len(member)), np.zeros(len(nonmember))])
    attack = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(attack.predict(target.numpy().reshape(-1, 1)).mean())


@metric("lower", scale="seconds")
def method_seconds(ev: Evaluation):
    """Wall time of the unlearning method itself, evaluation excluded."""
    return ev.run.get("seconds")
