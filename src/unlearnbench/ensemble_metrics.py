"""Per-example unlearning scores against ensembles of models: pure NumPy, torch-free.

Each score compares, example by example, the distribution of a statistic over N unlearned models with its
distribution over N retrain oracles (or shadow models), and returns ``n_models`` beside its values:

- ``neurips2023_score``: the NeurIPS 2023 unlearning challenge's per-example epsilon, forgetting quality F and final
  score (Triantafillou et al. 2024, arXiv 2406.09073; the organisers' scorer ``google-deepmind/unlearning_evaluation``,
  ``metric.py`` and ``main.py``);
- ``klom``: KL divergence of margins (EasyDUB, arXiv 2602.16400; ``easydub/EasyDUB-code``, ``easydub/eval.py``);
- ``ulira``: U-LiRA, the per-example likelihood-ratio unlearning attack with shadow models trained and unlearned
  (Hayes et al., arXiv 2403.01218; LiRA of Carlini et al. 2022).

Arrays of logits are ``[n_models, n_examples, n_classes]``; labels ``[n_examples]``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.stats import rankdata

# --- per-example statistics ----------------------------------------------------------------------------------------


def lira_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Logit-scaled confidence log(p_y + 1e-45) - log(sum_{c != y} p_c + 1e-45), per model and example.

    The recipe of LiRA's ``score.py`` as the challenge's ``compute_logit_scaled_confidence`` runs it: subtract the
    largest logit (in the logits' dtype), exponentiate, softmax in float64, and floor both terms with 1e-45 (so the
    statistic saturates near +-103.6 where a float64 softmax underflows).
    """
    z = np.asarray(logits)
    e = np.exp(z - z.max(-1, keepdims=True)).astype(np.float64)
    p = e / e.sum(-1, keepdims=True)
    onehot = np.arange(p.shape[-1]) == np.asarray(labels)[..., None]
    p_true = np.where(onehot, p, 0.0).sum(-1)
    p_wrong = np.where(onehot, 0.0, p).sum(-1)
    return np.log(p_true + 1e-45) - np.log(p_wrong + 1e-45)


def margins(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """EasyDUB's margin z_y - logsumexp_{j != y} z_j per model and example (float64, no floors)."""
    z = np.asarray(logits, dtype=np.float64)
    onehot = np.arange(z.shape[-1]) == np.asarray(labels)[..., None]
    others = np.where(onehot, -np.inf, z)
    top = others.max(-1, keepdims=True)  # logsumexp by hand: scipy's is several times slower here
    return np.where(onehot, z, 0.0).sum(-1) - (top[..., 0] + np.log(np.exp(others - top).sum(-1)))


def accuracies(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Accuracy of each model: ``[n_models]``."""
    return (np.asarray(logits).argmax(-1) == np.asarray(labels)).mean(-1)


def _models_examples(a: np.ndarray, b: np.ndarray, what: str) -> int:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{what}: expected two [n_models, n_examples] arrays of one shape, got {a.shape}, {b.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"{what}: needs at least 2 models per side, got {a.shape[0]}")
    return a.shape[0]


# --- NeurIPS 2023 unlearning challenge -----------------------------------------------------------------------------

DELTA = 1e-5  # metric.py's DELTA (the metric PDF gives none)
EPSILON_CAP = 50.0  # metric.py's EPSILON_CAP: the epsilon of "peaky" or perfectly separated examples
THRESHOLDS_PER_UNIT = 100  # metric.py's NUM_THRESHOLDS_PER_UNIT
BUFFER = 2.0  # the double-threshold family's search margin (metric.py)
BUCKET = 0.5  # width of the epsilon buckets of F


def epsilon_cap(n_models: int) -> float:
    """Largest epsilon the challenge's F can tell apart with N models: ceil(ln(N - 1)) (metric.py's max_epsilon).

    With N models the smallest non-zero FPR and FNR are 1/N, so a finite epsilon estimate is at most
    ln((1 - delta) N - 1) ~ ln(N - 1); F's buckets of width 0.5 stop at this cap, and examples at or above it score 0.
    """
    return float(math.ceil(math.log(n_models - 1)))


def _epsilons_of_rates(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> np.ndarray:
    """Kairouz et al.'s epsilon max{log(1-d-FPR) - log FNR, log(1-d-FNR) - log FPR}, clipped at 0, per threshold.

    As metric.py: FPR = FNR = 0 (perfect separation) gives inf; exactly one of them 0 gives NaN (the threshold is
    discarded as an artefact of finite N); a term whose log argument is negative is NaN and the other term counts.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.clip(np.fmax(np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr)), 0, None)
    both, one = (fpr == 0) & (fnr == 0), (fpr * fnr == 0)
    return np.where(both, np.inf, np.where(one, np.nan, eps))


@lru_cache(maxsize=8)
def _epsilon_table(n_models: int, delta: float) -> np.ndarray:
    """Epsilon of every (false-positive count, false-negative count) of N models, discarded thresholds as -inf.

    The rates only take the values k / N, so each threshold's epsilon is looked up rather than computed."""
    k = np.arange(n_models + 1) / n_models
    eps = _epsilons_of_rates(k[:, None], k[None, :], delta)
    return np.where(np.isnan(eps), -np.inf, eps)


def _single_threshold_errors(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-positive and false-negative counts of "positive iff conf >= t", t on linspace(pooled min, max) at 100
    per unit (``pos`` and ``neg`` sorted)."""
    lo, hi = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    t = np.linspace(lo, hi, int(math.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    return len(neg) - np.searchsorted(neg, t, "left"), np.searchsorted(pos, t, "left")


def _double_threshold_errors(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False-positive and false-negative counts of "positive iff t_l <= conf <= t_r", the peakier distribution
    (smaller range) taken as positive.

    metric.py's grid: w = the smaller range; right thresholds from min_pos + w - 2 to max_pos + 2 at 100 per unit;
    for each, 400 left thresholds on [t_r - w - 2, t_r - w + 2]. Equal ranges make the second argument positive.
    """
    if pos[-1] - pos[0] >= neg[-1] - neg[0]:
        pos, neg = neg, pos
    width = pos[-1] - pos[0]
    lo, hi = pos[0] + width - BUFFER, pos[-1] + BUFFER
    right = np.linspace(lo, hi, int(math.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    n_left = int(math.ceil(2 * BUFFER * THRESHOLDS_PER_UNIT))
    left = np.linspace(right - width - BUFFER, right - width + BUFFER, n_left, axis=1)  # [n_right, n_left]

    def inside(x: np.ndarray) -> np.ndarray:
        return np.maximum(np.searchsorted(x, right, "right")[:, None] - np.searchsorted(x, left, "left"), 0).ravel()

    return inside(neg), len(pos) - inside(pos)


def example_epsilon(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> float:
    """Epsilon of one example from its N unlearned and N retrained confidences (metric.py's ``_get_epsilons``).

    The distribution with the larger median is positive; if the smaller range is under 1 % of the larger, epsilon is
    the cap (50). Otherwise the best of both decision-rule families (single and double threshold): the largest
    surviving per-threshold epsilon, clipped to [0, 50] (inf becomes 50). Rates are exact fractions k / N in float64
    (metric.py: float32 means). Where every threshold is discarded (only possible when no rule separates anything,
    e.g. two identical constant samples) epsilon is 0; metric.py stops on an assertion there.
    """
    retrain_positive = np.median(retrained) > np.median(unlearned)
    pos, neg = (retrained, unlearned) if retrain_positive else (unlearned, retrained)
    pos, neg = np.sort(pos), np.sort(neg)
    ranges = sorted((pos[-1] - pos[0], neg[-1] - neg[0]))
    if ranges[1] > 0 and ranges[0] / ranges[1] < 0.01:
        return EPSILON_CAP
    fp, fn = (np.concatenate(c) for c in zip(_double_threshold_errors(pos, neg), _single_threshold_errors(pos, neg)))
    best = _epsilon_table(len(pos), delta)[fp, fn].max()
    return 0.0 if best == -np.inf else float(min(best, EPSILON_CAP))


def example_epsilons(unlearned_conf: np.ndarray, retrained_conf: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Per-example epsilon ``[n_examples]`` from ``[N, n_examples]`` confidences of unlearned and retrained models."""
    _models_examples(unlearned_conf, retrained_conf, "example_epsilons")
    return np.array([example_epsilon(u, r, delta) for u, r in zip(unlearned_conf.T, retrained_conf.T)])


def bucket_points(epsilons: np.ndarray, n_models: int) -> np.ndarray:
    """Points per example, H = 2 / 2^k for epsilon in the k-th bucket [0.5 (k-1), 0.5 k); 0 from ``epsilon_cap(N)``.

    metric.py's buckets: 1 point below 0.5, 1/2 below 1, 1/4 below 1.5, ..., while the bucket's upper edge is at most
    the cap (14 buckets for N = 512; the metric PDF's text says 13).
    """
    n_buckets = int(epsilon_cap(n_models) / BUCKET)
    k = np.floor(np.asarray(epsilons, dtype=np.float64) / BUCKET)
    return np.where(k < n_buckets, 0.5 ** np.minimum(k, n_buckets), 0.0)


def forgetting_quality(epsilons: np.ndarray, n_models: int) -> float:
    """F = mean bucket points over the forget set (the challenge's forgetting quality, in [0, 1])."""
    return float(bucket_points(epsilons, n_models).mean())


def neurips2023_score(
    unlearned_forget: np.ndarray, retrained_forget: np.ndarray, forget_labels: np.ndarray,
    retain_acc: tuple[np.ndarray, np.ndarray], test_acc: tuple[np.ndarray, np.ndarray], delta: float = DELTA,
) -> dict:
    """The NeurIPS 2023 unlearning challenge score of N unlearned models against N retrain oracles.

    ``unlearned_forget`` / ``retrained_forget``: forget-set logits ``[N, n_forget, n_classes]``; ``retain_acc`` and
    ``test_acc``: (per-model accuracies of the unlearned models, of the retrained models), each ``[N]``. Score =
    F * (RA_U / RA_R) * (TA_U / TA_R) with each accuracy averaged over its N models and the ratios not clipped at 1
    (main.py). Returns the score, F, both ratios, the per-example epsilons, ``epsilon_cap`` (the largest epsilon F can
    resolve with this N) and ``n_models``.
    """
    conf_u, conf_r = lira_confidence(unlearned_forget, forget_labels), lira_confidence(retrained_forget, forget_labels)
    n = _models_examples(conf_u, conf_r, "neurips2023_score")
    eps = example_epsilons(conf_u, conf_r, delta)
    quality = forgetting_quality(eps, n)
    retain_ratio = float(np.mean(retain_acc[0]) / np.mean(retain_acc[1]))
    test_ratio = float(np.mean(test_acc[0]) / np.mean(test_acc[1]))
    return {"score": quality * retain_ratio * test_ratio, "forgetting_quality": quality, "retain_ratio": retain_ratio,
            "test_ratio": test_ratio, "epsilons": eps, "epsilon_cap": epsilon_cap(n), "n_models": n}


# --- KLoM (EasyDUB) ------------------------------------------------------------------------------------------------

KLOM_BINS = 20
KLOM_EPS = 1e-5  # floor of the oracle's bin probability where the unlearned one has mass
KLOM_CLIP = 100.0


def klom_cap(eps: float = KLOM_EPS) -> float:
    """Largest KLoM value, ln(1 / eps) (~ 11.51): all unlearned mass in one bin that the oracles leave empty.

    Disjoint samples score ln(1 / eps) - H(p), H(p) the entropy of the unlearned histogram.
    """
    return float(-math.log(eps))


def klom_per_example(
    unlearned_margins: np.ndarray, oracle_margins: np.ndarray, bins: int = KLOM_BINS, eps: float = KLOM_EPS,
    clip: float = KLOM_CLIP, include_top_edge: bool = False, chunk: int = 4096,
) -> np.ndarray:
    """KL(unlearned || oracle) per example between histograms of the margins over models (EasyDUB's eval.py).

    Per example: clip both samples to [-100, 100]; ``bins`` equal bins span the pooled min..max (max = min + 1 where
    they coincide); p, q are the bin frequencies; q is floored at ``eps`` where p > 0; KL = sum_{p > 0} p ln(p / q).
    ``include_top_edge=False`` is eval.py's ``np.digitize`` binning, which leaves values equal to the pooled maximum
    out of every bin (and normalises over the rest); ``True`` closes the last bin (``np.histogram``'s convention).
    """
    u, o = np.clip(unlearned_margins, -clip, clip), np.clip(oracle_margins, -clip, clip)
    if u.ndim != 2 or o.ndim != 2 or u.shape[1] != o.shape[1]:
        raise ValueError(f"klom: expected [n_models, n_examples] arrays with one n_examples, got {u.shape}, {o.shape}")
    out = np.empty(u.shape[1])
    for start in range(0, u.shape[1], chunk):
        s = slice(start, start + chunk)
        lo = np.minimum(u[:, s].min(0), o[:, s].min(0))
        hi = np.maximum(u[:, s].max(0), o[:, s].max(0))
        hi = np.where(lo >= hi, lo + 1.0, hi)
        edges = np.linspace(lo, hi, bins + 1, axis=1)  # [n, bins + 1]
        p, q = (_bin_frequencies(x[:, s], edges, include_top_edge) for x in (u, o))
        q = np.where(p > 0, np.maximum(q, eps), q)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[s] = np.where(p > 0, p * np.log(p / q), 0.0).sum(1)
    return out


def _bin_frequencies(x: np.ndarray, edges: np.ndarray, include_top_edge: bool) -> np.ndarray:
    """Per example, the fraction of its binned values in each bin (np.digitize's index: edges <= value)."""
    bins = edges.shape[1] - 1
    idx = np.zeros(x.shape, dtype=np.int64)  # 1..bins, or bins + 1 at the top edge
    for k in range(bins + 1):
        idx += x >= edges[None, :, k]
    if include_top_edge:
        idx = np.minimum(idx, bins)
    flat = idx + (bins + 2) * np.arange(x.shape[1])[None, :]
    counts = np.bincount(flat.ravel(), minlength=(bins + 2) * x.shape[1]).reshape(x.shape[1], bins + 2)[:, 1:bins + 1]
    total = counts.sum(1, keepdims=True)
    return np.divide(counts, total, out=np.zeros(counts.shape), where=total > 0)


def summarize(values: np.ndarray) -> dict[str, float]:
    """Mean, P95 and P05 over examples (np.percentile, linear interpolation)."""
    p95, p05 = np.percentile(values, [95, 5])
    return {"mean": float(np.mean(values)), "p95": float(p95), "p05": float(p05)}


def klom(unlearned: dict[str, np.ndarray], oracle: dict[str, np.ndarray], labels: dict[str, np.ndarray], **kw) -> dict:
    """KLoM per split (e.g. forget, retain, test): ``{split: {mean, p95, p05}}`` plus ``n_models``.

    ``unlearned[split]`` / ``oracle[split]``: logits ``[N, n_split, n_classes]`` of the N unlearned models and the N
    oracles; EasyDUB reports P95 as the headline. Lower is better; 0 when the two margin histograms coincide.
    """
    out: dict = {}
    for split in unlearned:
        mu, mo = margins(unlearned[split], labels[split]), margins(oracle[split], labels[split])
        out["n_models"] = _models_examples(mu, mo, f"klom[{split}]")
        out[split] = summarize(klom_per_example(mu, mo, **kw))
    return out


# --- U-LiRA (Hayes et al.) -----------------------------------------------------------------------------------------


def ulira_scores(
    conf: np.ndarray, unlearned: np.ndarray, held_out: np.ndarray, targets: np.ndarray | None = None,
    variance: str = "per_example", min_shadows: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-(target model, example) log likelihood ratio log N(c; mu_u, s_u) - log N(c; mu_o, s_o), with labels.

    ``conf``: ``[M, n]`` logit-scaled confidences of M models trained and then unlearned; ``unlearned[m, x]``: x was in
    model m's training set and in the forget set it unlearned; ``held_out[m, x]``: x was never in m's training set.
    Each target model m is attacked with the other M - 1 as shadows (leave one out, as LiRA's evaluation): per example,
    a Gaussian is fitted to the shadows' confidences where x was unlearned and one where it was held out (LiRA's
    online attack, np.std with ddof 0, ``variance="per_example"``; ``"global"`` pools the deviations from each
    example's mean over all examples, LiRA's fixed variance for few shadows). A (target, example) pair counts when x
    was unlearned (label 1) or held out (label 0) by the target and each Gaussian has at least ``min_shadows`` values.
    """
    conf = np.asarray(conf, dtype=np.float64)
    unl, out = np.asarray(unlearned, dtype=bool), np.asarray(held_out, dtype=bool)
    if np.any(unl & out):
        raise ValueError("ulira: an example is marked both unlearned and held out by one model")
    if variance not in ("per_example", "global"):
        raise ValueError(f"ulira: variance must be 'per_example' or 'global', got {variance!r}")
    targets = np.arange(len(conf)) if targets is None else np.asarray(targets)
    totals = [(m.sum(0), (conf * m).sum(0), (conf**2 * m).sum(0)) for m in (unl, out)]  # count, sum, sum of squares
    scores, labels = [], []
    for t in targets:
        fits = []  # (mean, sd, count) of the shadows' confidences per example: unlearned, then held out
        for mask, (k, s1, s2) in zip((unl, out), totals):
            own = mask[t]  # leave the target out
            k, s1, s2 = k - own, s1 - conf[t] * own, s2 - conf[t] ** 2 * own
            with np.errstate(divide="ignore", invalid="ignore"):
                mu = s1 / k
                var = np.maximum(s2 / k - mu**2, 0.0)
            if variance == "global":
                var = np.full_like(var, np.nansum(var * k) / k.sum())
            fits.append((mu, np.sqrt(var) + 1e-30, k))
        (mu_u, sd_u, k_u), (mu_o, sd_o, k_o) = fits
        ok = (unl[t] | out[t]) & (k_u >= min_shadows) & (k_o >= min_shadows)
        c = conf[t, ok]
        scores.append(_log_normal(c, mu_u[ok], sd_u[ok]) - _log_normal(c, mu_o[ok], sd_o[ok]))
        labels.append(unl[t, ok].astype(int))
    return np.concatenate(scores), np.concatenate(labels)


def _log_normal(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney U with average ranks for ties)."""
    labels = np.asarray(labels, dtype=bool)
    n1, n0 = labels.sum(), (~labels).sum()
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Largest TPR of a threshold rule "score >= t" whose FPR is at most ``fpr`` (t over the distinct scores)."""
    labels = np.asarray(labels, dtype=bool)
    order = np.argsort(-np.asarray(scores), kind="stable")
    s, y = np.asarray(scores)[order], labels[order]
    last = np.r_[s[1:] != s[:-1], True]  # the end of each group of tied scores
    tprs, fprs = np.cumsum(y)[last] / y.sum(), np.cumsum(~y)[last] / (~y).sum()
    ok = fprs <= fpr
    return float(tprs[ok].max()) if ok.any() else 0.0


def ulira(
    logits: np.ndarray, labels: np.ndarray, unlearned: np.ndarray, held_out: np.ndarray,
    fprs: tuple[float, ...] = (0.01, 0.001), **kw,
) -> dict:
    """U-LiRA (Hayes et al. 2024, section 4): AUC, TPR at low FPR and the accuracy of the LR > 0 rule (balanced).

    ``logits``: ``[M, n, n_classes]`` of M shadow models, each trained on a random part of the data and then unlearned
    with the method under test; masks as ``ulira_scores``. An AUC of 0.5 and TPR = FPR mean the attack cannot tell
    unlearned examples from never-seen ones. Returns the values, ``n_pairs`` (target, example) and ``n_models`` (M).
    """
    scores, y = ulira_scores(lira_confidence(logits, labels), unlearned, held_out, **kw)
    pred = scores > 0
    out = {"auc": auc(y, scores), "accuracy": float((pred[y == 1].mean() + (~pred[y == 0]).mean()) / 2)}
    out.update({f"tpr_at_{f:g}_fpr": tpr_at_fpr(y, scores, f) for f in fprs})
    return out | {"n_pairs": int(len(y)), "n_models": int(len(logits))}
