"""Membership-inference attacks on synthetic features with known answers: perfectly separable, identical and
partly overlapping members and non-members; the likelihood-ratio test against planted members; determinism.

Two-class logits [log p, log(1 - p)] with label 0 give a chosen true-class probability p, loss -log p and
logit-scaled confidence log p - log(1 - p)."""

import numpy as np
import pytest

from unlearnbench.metrics import METRICS, Evaluation, confidence, cross_entropy, logit_scaled_confidence, modified_entropy


def logits_of(p) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(np.stack([p, 1 - p], 1))


def evaluation(retain_p, forget_p, test_p, test_forget: int = 0, seed: int = 0) -> Evaluation:
    """Training set = retain then forget samples, all of class 0; the first ``test_forget`` test samples are the
    forgotten class's test images (a class scenario) when positive."""
    train = logits_of(np.concatenate([retain_p, forget_p]))
    n_r, n_f, n_t = len(retain_p), len(forget_p), len(test_p)
    split = {"retain": np.arange(n_r), "forget": np.arange(n_r, n_r + n_f),
             "test_forget": np.arange(test_forget), "test_retain": np.arange(test_forget, n_t)}
    return Evaluation(train, logits_of(test_p), np.zeros(n_r + n_f, int), np.zeros(n_t, int), split, seed=seed)


def value(name: str, ev: Evaluation) -> float:
    return METRICS[name].fn(ev)


def test_features_match_their_definitions():
    z, y = logits_of([0.9, 0.25]), np.array([0, 1])
    assert np.allclose(confidence(z, y), [0.9, 0.75])
    assert np.allclose(cross_entropy(z, y), -np.log([0.9, 0.75]))
    assert np.allclose(logit_scaled_confidence(z, y), np.log([9, 3]))
    # Song & Mittal: -(1 - p_y) log p_y - sum_{c != y} p_c log(1 - p_c); with two classes the sum is p_o log(1 - p_o) = p_o log p_y
    p_y = np.array([0.9, 0.75])
    assert np.allclose(modified_entropy(z, y), -2 * (1 - p_y) * np.log(p_y))


def test_logit_scaled_confidence_is_stable_for_confident_logits():
    z = np.array([[1000.0, 0.0, -5.0]])
    assert np.isclose(logit_scaled_confidence(z, np.array([0]))[0], 1000 - np.log(1 + np.exp(-5)))


SEPARABLE = dict(retain_p=np.full(60, 0.999), test_p=np.full(40, 0.6))


@pytest.mark.parametrize("name, member_answer", [
    ("mia_entropy_lr", 1.0), ("mia_entropy_svc", 1.0),  # fraction predicted member
    ("mia_efficacy", 0.0), ("mia_efficacy_entropy", 0.0), ("mia_efficacy_m_entropy", 0.0), ("mia_efficacy_prob", 0.0),
])
def test_population_attacks_on_separable_features(name, member_answer):
    """Forget samples like the members get the member answer, like the non-members the other one, half-and-half half."""
    like_members = evaluation(forget_p=np.full(20, 0.999), **SEPARABLE)
    like_test = evaluation(forget_p=np.full(20, 0.6), **SEPARABLE)
    mixed = evaluation(forget_p=np.r_[np.full(10, 0.999), np.full(10, 0.6)], **SEPARABLE)
    assert value(name, like_members) == member_answer
    assert value(name, like_test) == 1 - member_answer
    assert value(name, mixed) == 0.5


def test_correctness_feature_separates_right_from_wrong_predictions():
    ev = evaluation(retain_p=np.full(60, 0.9), forget_p=np.r_[np.full(5, 0.9), np.full(15, 0.2)], test_p=np.full(40, 0.2))
    assert value("mia_efficacy_correctness", ev) == 0.75


def test_salun_shadow_members_are_the_first_test_size_retain_samples():
    """Retain samples after the first |D_te| are not shown to the SVC: making them test-like changes nothing."""
    base = dict(forget_p=np.full(20, 0.999), test_p=np.full(40, 0.6))
    ev_a = evaluation(retain_p=np.full(60, 0.999), **base)
    ev_b = evaluation(retain_p=np.r_[np.full(40, 0.999), np.full(20, 0.6)], **base)
    assert value("mia_efficacy", ev_a) == value("mia_efficacy", ev_b) == 0.0


def test_loss_attacks_on_separable_and_identical_losses():
    retain = np.full(50, 0.9)
    separable = evaluation(retain, forget_p=np.full(40, 0.999), test_p=np.full(40, 0.3))
    identical = evaluation(retain, forget_p=np.full(40, 0.7), test_p=np.full(40, 0.7))
    assert value("mia_loss_auc", separable) == 1.0 and value("mia_loss_lr_cv", separable) == 1.0
    assert value("mia_loss_auc", identical) == 0.5 and value("mia_loss_lr_cv", identical) == 0.5


def test_loss_auc_on_overlapping_losses_by_hand():
    """Losses 1..4 (forget) vs 3..6 (held out): 14 of 16 pairs ordered, counting ties as half -> AUC 0.875."""
    p = lambda losses: np.exp(-np.asarray(losses, float))  # noqa: E731
    ev = evaluation(np.full(10, 0.9), forget_p=p([1, 2, 3, 4]), test_p=p([3, 4, 5, 6]))
    assert np.isclose(value("mia_loss_auc", ev), 0.875)


def test_loss_attacks_compare_with_the_forgotten_classes_test_images_only():
    """In a class scenario the held-out counterpart is test_forget: the other test images are ignored."""
    forget = np.full(30, 0.8)
    ev = evaluation(np.full(10, 0.9), forget_p=forget, test_p=np.r_[np.full(30, 0.8), np.full(30, 0.01)], test_forget=30)
    assert ev.heldout == "test_forget"
    assert value("mia_loss_auc", ev) == 0.5 and value("mia_loss_lr_cv", ev) == 0.5


def test_loss_lr_cv_on_overlapping_losses_is_between_chance_and_perfect():
    rng = np.random.default_rng(0)
    ev = evaluation(np.full(10, 0.9), forget_p=np.exp(-rng.exponential(0.3, 300)), test_p=np.exp(-rng.exponential(1.0, 200)))
    assert 0.6 < value("mia_loss_lr_cv", ev) < 0.9


@pytest.mark.parametrize("name", ["mia_entropy_lr", "mia_efficacy", "mia_loss_lr_cv", "mia_loss_auc"])
def test_attacks_are_deterministic(name):
    rng = np.random.default_rng(1)
    make = lambda: evaluation(rng.uniform(0.5, 1, 80), rng.uniform(0.4, 1, 30), rng.uniform(0.3, 1, 50), seed=3)  # noqa: E731
    ev = make()
    assert value(name, ev) == value(name, ev)


def test_loss_lr_cv_depends_on_the_seed_only_through_its_subsampling_and_folds():
    rng = np.random.default_rng(2)
    ev = evaluation(np.full(10, 0.9), np.exp(-rng.exponential(0.5, 200)), np.exp(-rng.exponential(1.0, 100)), seed=0)
    first = value("mia_loss_lr_cv", ev)
    ev.seed = 1
    assert value("mia_loss_lr_cv", ev) != first


# --- U-LiRA-style per-example test ----------------------------------------------------------------------------


def lira_setup(shift: float, k: int = 8, n: int = 1000, seed: int = 0) -> Evaluation:
    """Examples whose logit-scaled confidence varies a lot between examples (sd 3) but little between oracles
    (sd 0.3); the target model adds ``shift`` to the first half of the forget set (the planted members)."""
    rng = np.random.default_rng(seed)
    mu_train, mu_test = rng.normal(0, 3, 2 * n), rng.normal(0, 3, n)
    conf_logits = lambda s: np.stack([s, np.zeros_like(s)], 1)  # noqa: E731 - logit-scaled confidence of class 0 = s
    noise = lambda size: rng.normal(0, 0.3, size)  # noqa: E731
    target_train = mu_train + noise(2 * n)
    target_train[n : n + n // 2] += shift  # forget = train[n:]; its first half is planted
    split = {"retain": np.arange(n), "forget": np.arange(n, 2 * n), "test_forget": np.arange(0), "test_retain": np.arange(n)}
    y_train, y_test = np.zeros(2 * n, int), np.zeros(n, int)
    oracles = [Evaluation(conf_logits(mu_train + noise(2 * n)), conf_logits(mu_test + noise(n)), y_train, y_test, split) for _ in range(k)]
    return Evaluation(conf_logits(target_train), conf_logits(mu_test + noise(n)), y_train, y_test, split, ulira_oracles=oracles)


def test_likelihood_ratio_test_recovers_planted_members():
    from sklearn.metrics import roc_auc_score

    from unlearnbench.metrics import lira_scores, ulira_curve

    ev = lira_setup(shift=2.0)
    labels, scores = ulira_curve(ev)
    planted = np.r_[np.ones(500), np.zeros(500), np.zeros(1000)].astype(bool)  # forget (planted, clean), held-out test
    assert roc_auc_score(labels[planted | (labels == 0)], scores[planted | (labels == 0)]) > 0.99
    assert 0.72 < value("ulira_auc", ev) < 0.78  # half the forget set is planted: about (1 + 0.5) / 2
    assert value("ulira_tpr_at_1pct_fpr", ev) > 0.4
    # a population loss attack hardly sees the same members: the per-example spread hides the shift
    assert value("mia_loss_auc", ev) < 0.65
    # the standardised score of an unplanted example is about N(0, 1)
    assert abs(lira_scores(np.zeros(3), np.array([[1.0, 2, 3], [-1, -2, -3]])).mean()) < 1e-12


def test_likelihood_ratio_test_is_at_chance_without_members():
    ev = lira_setup(shift=0.0)
    assert 0.45 < value("ulira_auc", ev) < 0.55
    assert value("ulira_tpr_at_1pct_fpr", ev) < 0.1
