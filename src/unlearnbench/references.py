"""Models the metrics compare a run with, beyond the retrain oracle of the same seed, and relearn time
(``workflow/rules/references.smk``; the steps that write them are in ``steps/references.py``):

- ZRF's incompetent teacher: ``methods.bad_teacher.incompetent_teacher``, the very network Bad Teacher distils
  from (as in SSD's code, where ZRF and Bad Teacher share it);
- relearn time: ``relearn_recipe`` and ``relearn_curve``, epochs of fine-tuning on the forget set until its accuracy
  reaches a target;
- the oracle ensemble (U-LiRA's extra retrain oracles are its first ``evaluation.ulira.oracles``): retrain
  oracles with fresh weights and the training seed ``oracle_seed(seed, k)``, several per job (``batches``), cached as
  stacked logits only (``steps.references.ensemble``);
- the unlearned ensemble: the method run again from the same original with the unlearning seeds
  ``unlearn_seed(seed, j)``, j = 1 .. N - 1 (j = 0 is the run itself);
- U-LiRA's shadow models (Hayes et al.): originals trained on random halves of the training set
  (``shadow_membership``, seed ``shadow_seed(seed, m)``), each then unlearned with the method on its part of D_f.

Torch is imported when ``relearn_curve`` runs, not with this module: the workflow reads the seeds when it plans
the jobs.
"""

from __future__ import annotations

from dataclasses import replace

ULIRA_SEED_STRIDE = 1_000  # U-LiRA oracle k of seed s trains with seed s + (k + 1) * this stride


UNLEARN_SEED_STRIDE = 100_000  # unlearned model j of seed s runs the method with seed s + j * this stride


def oracle_seed(seed: int, k: int) -> int:
    """Training seed of the k-th ensemble (and U-LiRA) oracle of experiment seed ``seed`` (distinct from every
    experiment seed below 1000)."""
    return seed + (k + 1) * ULIRA_SEED_STRIDE


ulira_seed = oracle_seed  # the former name: U-LiRA's oracles are the ensemble's first ones


def unlearn_seed(seed: int, j: int) -> int:
    """The method's seed of unlearned model j of experiment seed ``seed``; j = 0 is the run itself (``seed``)."""
    return seed + j * UNLEARN_SEED_STRIDE


SHADOW_SEED_OFFSET = 500  # U-LiRA shadow m of seed s trains (and unlearns) with seed s + (m + 1) * 1000 + 500


def shadow_seed(seed: int, m: int) -> int:
    """Training and unlearning seed of U-LiRA shadow model m of experiment seed ``seed`` (distinct from the oracle
    seeds for experiment seeds below 500)."""
    return seed + (m + 1) * ULIRA_SEED_STRIDE + SHADOW_SEED_OFFSET


def shadow_membership(n_train: int, shadows: int, seed: int):
    """Which training examples each of ``shadows`` shadow models trains on, ``[shadows, n_train]`` bool: every
    example in exactly half of them (LiRA's ``keep``: per example, the shadows of the lowest half of random ranks)."""
    import numpy as np

    ranks = np.random.default_rng(seed).random((shadows, n_train)).argsort(0).argsort(0)
    return ranks < shadows // 2


def batches(start: int, stop: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) cut into consecutive (first, end) ranges of at most ``size`` models: one job each."""
    return [(a, min(a + size, stop)) for a in range(start, stop, size)]


def relearn_recipe(original, lr: float, batch_size: int | None = None):
    """One epoch of plain SGD at a constant ``lr`` (no momentum, weight decay or warm-up) with the original
    ``Recipe``'s other settings (its batch size unless ``batch_size``)."""
    return replace(original, epochs=1, lr=lr, momentum=0.0, weight_decay=0.0, schedule="constant", milestones=[],
                   warmup_epochs=0.0, batch_size=original.batch_size if batch_size is None else batch_size,
                   lookahead=0, norm_bias_lr_scale=1.0)


def relearn_curve(net, x, y, loader, recipe, target: float, max_epochs: int, device) -> list[float]:
    """Forget accuracy (eval mode, no augmentation) before each relearn epoch (``fit`` of one-epoch ``recipe`` on
    ``loader``) until it reaches ``target`` or ``max_epochs`` epochs ran; momentum-free SGD at a constant rate
    makes the one-epoch fits chain exactly. The epochs taken are ``len(curve) - 1``."""
    from .train import fit, predict_logits

    curve = []
    for epoch in range(max_epochs + 1):
        curve.append(float((predict_logits(net, x, device=device).argmax(1) == y).float().mean()))
        if curve[-1] >= target or epoch == max_epochs:
            return curve
        fit(net, loader, recipe, desc="relearn")
    return curve
