"""Per-example ensemble scores on synthetic confidences and logits with independently computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from unlearnbench import ensemble_metrics as em

DELTA = em.DELTA


# --- NeurIPS 2023 challenge ---------------------------------------------------------------------------------------


def brute_force_epsilon(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> float:
    """The challenge's recipe written out literally: every threshold (pair), rates by direct comparison."""
    if np.median(retrained) > np.median(unlearned):
        pos, neg = retrained, unlearned
    else:
        pos, neg = unlearned, retrained
    rp, rn = np.ptp(pos), np.ptp(neg)
    if max(rp, rn) > 0 and min(rp, rn) / max(rp, rn) < 0.01:
        return 50.0
    pooled = np.concatenate([pos, neg])
    t = np.linspace(pooled.min(), pooled.max(), math.ceil(np.ptp(pooled) * 100))[:, None]
    fpr, fnr = [(neg >= t).mean(1)], [(pos < t).mean(1)]
    p, n = (neg, pos) if rp >= rn else (pos, neg)  # the peakier distribution is positive
    w = min(rp, rn)
    for tr in np.linspace(p.min() + w - 2, p.max() + 2, math.ceil((p.max() + 2 - (p.min() + w - 2)) * 100)):
        tl = np.linspace(tr - w - 2, tr - w + 2, 400)[:, None]
        fpr.append(((tl <= n) & (n <= tr)).mean(1))
        fnr.append(1 - ((tl <= p) & (p <= tr)).mean(1))
    fpr, fnr = np.concatenate(fpr), np.concatenate(fnr)
    if np.any((fpr == 0) & (fnr == 0)):
        return 50.0
    keep = (fpr > 0) & (fnr > 0)
    fpr, fnr = fpr[keep], fnr[keep]
    with np.errstate(invalid="ignore"):
        terms = np.stack([np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr)])
    terms = np.where(np.isnan(terms), -np.inf, terms)
    return 0.0 if len(fpr) == 0 or np.all(terms == -np.inf) else min(max(terms.max(), 0.0), 50.0)


def test_identical_samples_give_zero_epsilon_and_full_quality():
    conf = np.random.default_rng(0).normal(0, 1, (16, 20))
    eps = em.example_epsilons(conf, conf.copy())
    assert np.all(eps == 0)
    assert em.forgetting_quality(eps, 16) == 1.0


def test_disjoint_distributions_hit_the_cap():
    rng = np.random.default_rng(1)
    unlearned, retrained = rng.normal(-5, 1, (16, 10)), rng.normal(5, 1, (16, 10))
    eps = em.example_epsilons(unlearned, retrained)
    assert np.all(eps == em.EPSILON_CAP)
    assert em.forgetting_quality(eps, 16) == 0.0


def test_peaky_unlearned_distribution_gets_the_cap():
    rng = np.random.default_rng(2)
    retrained = rng.normal(0, 1, (16, 3))
    unlearned = 0.3 + 1e-4 * rng.normal(0, 1, (16, 3))  # range < 1 % of the oracle's
    assert np.all(em.example_epsilons(unlearned, retrained) == em.EPSILON_CAP)


def test_hand_case_interleaved_samples():
    """r = 0, 1, 2, 3 and u = r + 0.5 alternate: the best rule catches 2 of one side and 1 of the other, so
    epsilon = ln((1 - delta - 1/2) / (1/4)) (FNR 1/2, FPR 1/4)."""
    r = np.array([0.0, 1.0, 2.0, 3.0])
    eps = em.example_epsilon(r + 0.5, r)
    assert eps == pytest.approx(math.log((0.5 - DELTA) / 0.25), abs=1e-12)
    assert em.bucket_points(np.array([eps]), 4)[0] == 0.5  # cap ceil(ln 3) = 2: [0.5, 1) scores 1/2


def test_matches_the_literal_recipe_on_random_samples():
    rng = np.random.default_rng(3)
    unlearned = rng.normal(rng.uniform(-1, 2, 12), 1, (7, 12))
    retrained = rng.normal(0, rng.uniform(0.3, 2, 12), (7, 12))
    expected = [brute_force_epsilon(u, r) for u, r in zip(unlearned.T, retrained.T)]
    np.testing.assert_allclose(em.example_epsilons(unlearned, retrained), expected, rtol=0, atol=1e-9)


def test_epsilon_cap_and_buckets():
    assert em.epsilon_cap(512) == 7.0 and em.epsilon_cap(100) == 5.0 and em.epsilon_cap(16) == 3.0
    eps = np.array([0.0, 0.49, 0.5, 6.49, 6.5, 7.0, 50.0])
    np.testing.assert_array_equal(em.bucket_points(eps, 512), [1, 1, 0.5, 2.0**-12, 2.0**-13, 0, 0])


def test_invariant_to_permuting_models_and_examples():
    rng = np.random.default_rng(4)
    u, r = rng.normal(0.3, 1, (8, 6)), rng.normal(0, 1, (8, 6))
    eps = em.example_epsilons(u, r)
    np.testing.assert_array_equal(em.example_epsilons(u[rng.permutation(8)], r[rng.permutation(8)]), eps)
    perm = rng.permutation(6)
    np.testing.assert_array_equal(em.example_epsilons(u[:, perm], r[:, perm]), eps[perm])


def two_class_logits(conf: np.ndarray) -> np.ndarray:
    """Logits [c, 0] of label 0, whose logit-scaled confidence is c."""
    return np.stack([conf, np.zeros_like(conf)], -1)


def test_lira_confidence_of_two_class_logits_and_its_floor():
    c = np.array([[-3.0, 0.0, 2.5]])
    np.testing.assert_allclose(em.lira_confidence(two_class_logits(c), np.zeros(3, int)), c, atol=1e-12)
    # p_wrong underflows in float64: the 1e-45 floor bounds the statistic at ln(1e45)
    assert em.lira_confidence(np.array([[1000.0, 0.0]]), np.array([0]))[0] == pytest.approx(45 * math.log(10))


def test_neurips_score_combines_quality_and_utility_ratios():
    conf = np.random.default_rng(5).normal(0, 1, (8, 5))
    labels = np.zeros(5, int)
    out = em.neurips2023_score(two_class_logits(conf), two_class_logits(conf.copy()), labels,
                               retain_acc=(np.array([0.9, 0.7]), np.array([1.0, 1.0])),
                               test_acc=(np.array([0.6]), np.array([0.8])))
    assert out["forgetting_quality"] == 1.0 and out["n_models"] == 8 and out["epsilon_cap"] == 2.0
    assert out["retain_ratio"] == pytest.approx(0.8) and out["test_ratio"] == pytest.approx(0.75)
    assert out["score"] == pytest.approx(0.6)


def test_accuracies_per_model():
    logits = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])
    np.testing.assert_array_equal(em.accuracies(logits, np.array([0, 1])), [1.0, 0.5])


def test_unequal_model_counts_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        em.example_epsilons(np.zeros((4, 3)), np.zeros((5, 3)))


# --- KLoM ---------------------------------------------------------------------------------------------------------


def test_margins_by_hand():
    logits = np.array([[[2.0, 0.0, 0.0], [0.0, 1.0, -1.0]]])
    np.testing.assert_allclose(em.margins(logits, np.array([0, 2])),
                               [[2 - math.log(2), -1 - math.log(1 + math.e)]], atol=1e-12)


def test_klom_identical_samples_is_zero_and_disjoint_hits_the_cap():
    rng = np.random.default_rng(6)
    m = rng.normal(0, 3, (16, 30))
    np.testing.assert_array_equal(em.klom_per_example(m, m.copy()), 0.0)
    below = np.full((16, 30), -20.0)  # all unlearned mass in the first bin, which the oracles leave empty
    np.testing.assert_allclose(em.klom_per_example(below, m), em.klom_cap(), rtol=1e-12)
    assert em.klom_cap() == pytest.approx(math.log(1e5))


def test_klom_hand_case_and_the_top_edge():
    """Two bins on [0, 2]: p = (3/4, 1/4); the oracles' 2.0 sits on the top edge, outside every bin in EasyDUB's
    eval.py (q = (1/3, 2/3)) and in the last bin with include_top_edge (q = (1/4, 3/4))."""
    u, o = np.array([[0.0], [0.0], [0.5], [1.5]]), np.array([[0.0], [1.5], [1.5], [2.0]])
    official = 0.75 * math.log(0.75 / (1 / 3)) + 0.25 * math.log(0.25 / (2 / 3))
    assert em.klom_per_example(u, o, bins=2)[0] == pytest.approx(official)
    assert em.klom_per_example(u, o, bins=2, include_top_edge=True)[0] == pytest.approx(0.5 * math.log(3))
    # a constant unlearned sample above the oracles: eval.py bins none of it (0); a closed last bin gives the cap
    high = np.full((4, 1), 9.0)
    assert em.klom_per_example(high, o)[0] == 0.0
    assert em.klom_per_example(high, o, include_top_edge=True)[0] == pytest.approx(em.klom_cap())


def test_klom_clips_margins_at_100():
    u, o = np.array([[150.0], [0.0]]), np.array([[100.0], [0.0]])
    assert em.klom_per_example(u, o)[0] == 0.0


def test_klom_report_per_split_and_invariances():
    rng = np.random.default_rng(7)
    labels = {"forget": rng.integers(0, 3, 40), "test": rng.integers(0, 3, 25)}
    u = {k: rng.normal(0, 2, (12, len(y), 3)) for k, y in labels.items()}
    o = {k: rng.normal(0, 2, (12, len(y), 3)) for k, y in labels.items()}
    out = em.klom(u, o, labels)
    assert out["n_models"] == 12 and set(out) == {"n_models", "forget", "test"}
    per = em.klom_per_example(em.margins(u["forget"], labels["forget"]), em.margins(o["forget"], labels["forget"]))
    assert out["forget"]["p95"] == pytest.approx(np.percentile(per, 95))
    assert out["forget"]["mean"] == pytest.approx(per.mean()) and out["forget"]["p05"] <= out["forget"]["p95"]
    perm_m, perm_x = rng.permutation(12), rng.permutation(40)
    np.testing.assert_allclose(
        em.klom_per_example(em.margins(u["forget"][perm_m][:, perm_x], labels["forget"][perm_x]),
                            em.margins(o["forget"][:, perm_x], labels["forget"][perm_x])), per[perm_x])


# --- U-LiRA -------------------------------------------------------------------------------------------------------


def membership(rng: np.random.Generator, models: int, examples: int) -> tuple[np.ndarray, np.ndarray]:
    """Each model trains on a random half and unlearns a random fifth of it; the other half is held out."""
    trained = rng.random((models, examples)) < 0.5
    unlearned = trained & (rng.random((models, examples)) < 0.2)
    return unlearned, ~trained


def test_ulira_separable_and_indistinguishable():
    rng = np.random.default_rng(8)
    unl, out = membership(rng, 32, 200)
    conf = np.where(unl, rng.normal(5, 0.1, unl.shape), rng.normal(-5, 0.1, unl.shape))
    logits, labels = two_class_logits(conf), np.zeros(200, int)
    res = em.ulira(logits, labels, unl, out)
    assert res["auc"] == 1.0 and res["tpr_at_0.001_fpr"] == 1.0 and res["accuracy"] == 1.0
    k_u, k_o = unl.sum(0) - unl, out.sum(0) - out  # shadows per (target, example), the target left out
    assert res["n_models"] == 32 and res["n_pairs"] == ((unl | out) & (k_u >= 2) & (k_o >= 2)).sum()
    same = em.ulira(two_class_logits(rng.normal(0, 1, unl.shape)), labels, unl, out)
    assert abs(same["auc"] - 0.5) < 0.05 and same["tpr_at_0.01_fpr"] < 0.05


def test_ulira_leave_one_out_gaussians_by_hand():
    conf = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 4.0], [4.0, 0.5], [3.0, 1.5]])
    unl = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]], bool)
    out = ~unl
    scores, labels = em.ulira_scores(conf, unl, out, targets=np.array([0]))
    # target 0, example 0 (unlearned): shadows 1, 4 unlearned (1, 3) and 2, 3 held out (2, 4)
    # target 0, example 1 (held out): shadows 2, 3, 4 unlearned (4, 0.5, 1.5) and 1 held out (2): one value, skipped
    assert labels.tolist() == [1]
    expected = norm.logpdf(0.0, 2.0, np.std([1.0, 3.0])) - norm.logpdf(0.0, 3.0, np.std([2.0, 4.0]))
    assert scores[0] == pytest.approx(expected)
    scores1, _ = em.ulira_scores(conf, unl, out, targets=np.array([0]), min_shadows=1)
    assert len(scores1) == 2


def test_ulira_global_variance_pools_deviations():
    conf = np.array([[0.0, 10.0], [2.0, 14.0], [1.0, 11.0], [3.0, 13.0], [5.0, 12.0]])
    unl = np.array([[0, 0], [1, 1], [0, 0], [1, 1], [0, 0]], bool)
    out = ~unl
    s, y = em.ulira_scores(conf, unl, out, targets=np.array([0]), variance="global")
    # unlearned shadows (1, 3): deviations +-0.5 on both examples -> sd 0.5; held out (2, 4): +-2 and +-0.5
    sd_o = math.sqrt((4 + 4 + 0.25 + 0.25) / 4)
    expected = [norm.logpdf(0.0, 2.5, 0.5) - norm.logpdf(0.0, 3.0, sd_o),
                norm.logpdf(10.0, 13.5, 0.5) - norm.logpdf(10.0, 11.5, sd_o)]
    np.testing.assert_allclose(s, expected)
    assert y.tolist() == [0, 0]


def test_ulira_invariant_to_permuting_models_and_examples():
    rng = np.random.default_rng(9)
    unl, out = membership(rng, 12, 60)
    conf = np.where(unl, rng.normal(0.8, 1, unl.shape), rng.normal(0, 1, unl.shape))
    base = em.ulira(two_class_logits(conf), np.zeros(60, int), unl, out)
    pm, px = rng.permutation(12), rng.permutation(60)
    moved = em.ulira(two_class_logits(conf[pm][:, px]), np.zeros(60, int), unl[pm][:, px], out[pm][:, px])
    assert moved == pytest.approx(base)


def test_auc_and_tpr_match_scikit_learn():
    from sklearn.metrics import roc_auc_score

    from unlearnbench.metrics import tpr_at_fpr

    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.normal(y * 0.7, 1), 1)  # with ties
    assert em.auc(y, s) == pytest.approx(roc_auc_score(y, s))
    for f in (0.01, 0.05, 0.2):
        assert em.tpr_at_fpr(y, s, f) == pytest.approx(tpr_at_fpr(y, s, f))


def test_module_is_torch_free():
    import subprocess
    import sys

    code = "import sys, unlearnbench.ensemble_metrics, unlearnbench.ranking; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
