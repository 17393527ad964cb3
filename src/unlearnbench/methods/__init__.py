"""Unlearning methods, one module each, registered by name (``registry``), with the kit they use (``task``,
``relabel``).

A method is a function ``fn(model, task, **hyperparameters) -> model``: it receives the original model (a copy it
may change in place), an ``UnlearnTask`` (forget and retain data, the original recipe and initial weights, the
device and seed) and its hyperparameters as keyword arguments with constrained defaults. It returns the unlearned
model. To add one, write a module here with a function decorated by ``@register_method`` and import it below; see
``docs/adding_a_method.md``.
"""

from . import (  # noqa: F401  (each import registers its methods)
    bad_teacher,
    baselines,
    del_unlearning,
    fisher_forgetting,
    fisher_masking,
    l1_sparse,
    mnemonic_code,
    natmu,
    random_label,
    salun,
    ssd,
    unsir,
)
from .registry import (  # noqa: F401
    METHODS, MethodEntry, Needs, Paper, check_hyperparameters, get_method, hyperparameters, register_method,
    run_method, supports,
)
from .task import Subset, UnlearnTask  # noqa: F401
