"""A run's three seeds: the training seed t (the original model; the retrain oracle's training), the forget-set seed
f (the split's draw) and the unlearning seed u (the method's randomness). The config's ``seeds`` lists t; the
optional ``seed_axes: {forget: [...], unlearn: [...]}`` lists f and u, and an axis it leaves out is tied to t
(f = t, u = t: a config without ``seed_axes`` runs exactly as before the axes existed).

A run's seed label is the ``{seed}`` of ``<exp>/seed<label>/<scenario>/<method>/``: t, then ``f<f>`` and ``u<u>``
for the axes that are set (``0``, ``0f1``, ``0u2``, ``0f1u2``). ``format_label`` and ``parse_label`` are the only
code that knows this format. No torch: the workflow reads it when it plans the jobs.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from . import UserError
from .values import duplicates

LABEL = r"\d+(?:f\d+)?(?:u\d+)?"  # a seed label: the {seed} wildcard's constraint


class RunSeeds(NamedTuple):
    """A run's seeds as its label holds them: ``forget`` and ``unlearn`` are None where the axis is tied."""

    train: int
    forget: int | None = None
    unlearn: int | None = None

    @property
    def forget_seed(self) -> int:
        """The seed of the forget-set draw (the split file's)."""
        return self.train if self.forget is None else self.forget

    @property
    def unlearn_seed(self) -> int:
        """The seed the method runs with."""
        return self.train if self.unlearn is None else self.unlearn

    @property
    def oracle(self) -> RunSeeds:
        """The seeds of the run's retrain oracle: its training and forget-set seeds; the oracle does not depend on
        the unlearning seed (it retrains with the training seed)."""
        return self._replace(unlearn=None)

    def record(self) -> dict[str, int]:
        """The seeds a run's metrics context names: ``seed`` (the training seed, as before the axes), and
        ``forget_seed`` and ``unlearn_seed`` where the label sets them (a config without ``seed_axes`` plans the
        very jobs it did; ``all_seeds`` fills in the tied ones)."""
        return {"seed": self.train, **({} if self.forget is None else {"forget_seed": self.forget}),
                **({} if self.unlearn is None else {"unlearn_seed": self.unlearn})}


def all_seeds(record: dict) -> dict[str, int]:
    """A record's ``seed`` (training), ``forget_seed`` and ``unlearn_seed``: one it does not name is tied to the
    training seed (a tied axis, or a metrics.json from before the axes)."""
    return {"seed": record["seed"], "forget_seed": record.get("forget_seed", record["seed"]),
            "unlearn_seed": record.get("unlearn_seed", record["seed"])}


def format_label(seeds: RunSeeds) -> str:
    """The seed label of ``seeds``: ``"0"``, ``"0f1"``, ``"0u2"``, ``"0f1u2"``."""
    return (f"{seeds.train}" + ("" if seeds.forget is None else f"f{seeds.forget}")
            + ("" if seeds.unlearn is None else f"u{seeds.unlearn}"))


def parse_label(label: str) -> RunSeeds:
    """The seeds a seed label holds (``format_label``'s inverse)."""
    match = re.fullmatch(r"(\d+)(?:f(\d+))?(?:u(\d+))?", label)
    if match is None:
        raise ValueError(f"{label!r} is not a seed label: <t>[f<f>][u<u>], e.g. 0, 0f1, 0f1u2")
    return RunSeeds(*(None if group is None else int(group) for group in match.groups()))


def seed_grid(config: dict) -> list[RunSeeds]:
    """Every run's seeds: the training seeds x the forget-set seeds x the unlearning seeds of the axes that are
    set, training seed first."""
    axes = config.get("seed_axes", {})
    return [RunSeeds(t, f, u) for t in config["seeds"] for f in axes.get("forget", [None])
            for u in axes.get("unlearn", [None])]


def check_seed_axes(axes: dict) -> None:
    """Each axis that is set lists at least one seed, every seed an integer >= 0, none twice."""
    for axis, seeds in axes.items():
        where = f"seed_axes.{axis}"
        if not seeds:
            raise UserError(f"{where} is an empty list; list at least one seed, or remove the key to tie the axis to "
                            "the training seed")
        negative = [s for s in seeds if s < 0]
        if negative:
            raise UserError(f"{where} lists {negative[0]}; seeds are integers >= 0")
        repeated = duplicates(seeds)
        if repeated:
            raise UserError(f"{where} lists {repeated} more than once; each seed is one run, list it once")
