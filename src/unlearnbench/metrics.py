"""Metrics computed from cached artifacts (logits per split, labels, forget indices, run records).

Each metric is a function of an ``Evaluation``, registered with its direction and scale so that tables know
how to read it. Directions:

- ``higher`` / ``lower``: higher (lower) is better;
- ``oracle``: closer to the retrain oracle's value is better (forget accuracy, membership inference).

Scales: ``fraction`` (a number in [0, 1]; tables print it as %), ``seconds``, ``ratio``, ``nats``, ``epochs``.
A metric that does not apply to a run (test accuracy on forgotten classes in a random scenario) returns None.

Some metrics compare the run with other models; ``needs`` names what the metrics job must load for them:
``oracle`` (the retrain oracle of the same seed and scenario: logits and run record), ``incompetent`` (a randomly
initialised model of the experiment), ``relearn`` (the relearn-time record of the run), ``ulira_oracles``
(logits of several extra retrain oracles), ``ensembles`` (stacked logits of the oracle ensemble and of the run's
unlearned ensemble) and ``ulira_shadows`` (U-LiRA's shadow models, trained on random halves and unlearned
with the run's method). Only ``relearn``, ``ulira_oracles``, ``ensembles`` and ``ulira_shadows`` need training;
everything else reads logits.

Every scikit-learn attack is deterministic: solvers without randomness, or seeded with the run's seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy  # scipy.special loads on first use: planning imports this module for the metric names

from . import UserError

PARTS = ("forget", "retain", "test", "test_forget", "test_retain")
NEEDS = ("oracle", "incompetent", "relearn", "ulira_oracles", "ensembles", "ulira_shadows")


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
    oracle: Evaluation | None = None  # the retrain oracle of the same seed and scenario
    incompetent: Evaluation | None = None  # a randomly initialised model (ZRF's incompetent teacher)
    relearn: dict | None = None  # the run's relearn-time record (steps.references.relearn)
    ulira_oracles: list[Evaluation] = field(default_factory=list)  # extra retrain oracles of other training seeds
    ensembles: Ensembles | None = None  # the oracle ensemble and this run's unlearned ensemble
    scores: dict = field(default_factory=dict, repr=False)  # ensemble scores computed so far (one pass per score)
    shadows: dict | None = None  # U-LiRA: shadow models' train_logits [M, n, classes] and in_train [M, n]
    values: dict[str, float | None] = field(default_factory=dict, repr=False)  # metrics computed so far

    def value(self, name: str) -> float | None:
        """The metric ``name`` of this model, computed once (gaps reuse the run's and the oracle's values)."""
        if name not in self.values:
            self.values[name] = METRICS[name].fn(self)
        return self.values[name]

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Logits and labels of one part: forget, retain (training set), test, test_forget, test_retain."""
        if name in ("forget", "retain"):
            idx = self.split[name]
            return self.train_logits[idx], self.train_y[idx]
        if name == "test":
            return self.test_logits, self.test_y
        idx = self.split[name]
        return self.test_logits[idx], self.test_y[idx]

    @property
    def heldout(self) -> str:
        """The unseen counterpart of the forget set: the test images of the forgotten classes (class scenarios)
        or the whole test set (random scenarios)."""
        return "test_forget" if len(self.split["test_forget"]) else "test"

    def require(self, what: str):
        """An artifact a metric needs (see ``NEEDS``); a clear error where the metrics job was not given it."""
        value = getattr(self, what)
        if not value:
            raise UserError(f"this metric needs the {what} artifact, which the metrics job did not receive; run it through the workflow")
        return value


@dataclass
class Ensembles:
    """Stacked logits ``[models, n, classes]`` (``train_logits``, ``test_logits``) of the oracle ensemble and of the
    run's unlearned models (None for the retrain oracle), and N, the models per side that the scores compare.

    A method's N unlearned models face the oracles N .. 2N - 1; the retrain oracle's entry compares oracles 0 .. N - 1
    with the same N .. 2N - 1: the floor that two samples of one distribution reach (oracle vs oracle)."""

    oracles: dict[str, np.ndarray]
    unlearned: dict[str, np.ndarray] | None
    n: int
    recipe: dict | None = None  # the evaluation-only recipe's overrides, where one is set
    klom_top_edge: bool = False  # KLoM's binning: False is EasyDUB eval.py's (values at the pooled maximum left out)

    def sides(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(unlearned side, oracle side), N models each."""
        n = self.n
        reference = {k: v[n:2 * n] for k, v in self.oracles.items()}
        unlearned = self.unlearned if self.unlearned is not None else self.oracles
        return {k: v[:n] for k, v in unlearned.items()}, reference

    def record(self) -> dict:
        """What metrics.json records beside the scores."""
        from .ensemble_metrics import epsilon_cap

        return {"n_models": self.n, "oracles": int(len(self.oracles["train_logits"])),
                "reference": "oracle vs oracle" if self.unlearned is None else "unlearned vs oracle",
                "epsilon_cap": epsilon_cap(self.n) if self.n > 1 else None, "recipe": self.recipe or "experiment",
                "klom_top_edge": self.klom_top_edge}


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[Evaluation], float | None]
    direction: str  # higher | lower | oracle
    scale: str  # fraction | seconds | ratio | nats | epochs
    doc: str
    needs: tuple[str, ...] = ()


METRICS: dict[str, Metric] = {}
DIRECTIONS = ("higher", "lower", "oracle")
SCALES = ("fraction", "seconds", "ratio", "nats", "epochs")


def metric(direction: str, scale: str = "fraction", needs: tuple[str, ...] = (), name: str | None = None):
    """Register a metric under its function's name (or ``name``); a bad declaration or a name registered twice is
    a ``ValueError``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"metric direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
    if scale not in SCALES:
        raise ValueError(f"metric scale {scale!r}; valid: {', '.join(SCALES)}")
    if not set(needs) <= set(NEEDS):
        raise ValueError(f"metric needs {sorted(set(needs) - set(NEEDS))}; valid: {', '.join(NEEDS)}")

    def wrap(fn):
        key = name or fn.__name__
        if key in METRICS and METRICS[key].fn is not fn:
            raise ValueError(f"metric {key!r} is registered twice ({METRICS[key].fn.__module__}, {fn.__module__})")
        METRICS[key] = Metric(key, fn, direction, scale, (fn.__doc__ or "").strip().splitlines()[0], tuple(needs))
        return fn

    return wrap


def needs_of(names: list[str]) -> set[str]:
    """The artifacts beyond the run's own logits that the metrics ``names`` need."""
    return {need for n in names if n in METRICS for need in METRICS[n].needs}


def compute(evaluation: Evaluation, names: list[str] | None = None) -> dict[str, float | None]:
    names = list(METRICS) if names is None else names
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {unknown}; valid metrics: {', '.join(METRICS)}")
    return {n: evaluation.value(n) for n in names}


# --- per-example features of the softmax --------------------------------------------------------------------


def probabilities(logits: np.ndarray) -> np.ndarray:
    return scipy.special.softmax(logits.astype(np.float64), axis=1)


def entropy(logits: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of the softmax of each row, with 0 log 0 = 0."""
    logp = scipy.special.log_softmax(logits.astype(np.float64), axis=1)
    return -np.nan_to_num(np.exp(logp) * logp).sum(1)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example cross-entropy loss (nats)."""
    return -np.take_along_axis(scipy.special.log_softmax(logits.astype(np.float64), axis=1), labels[:, None], 1)[:, 0]


def confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Softmax probability of the true class, p_y."""
    return np.exp(-cross_entropy(logits, labels))


def modified_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal (2021): -(1 - p_y) log p_y - sum_{c != y} p_c log(1 - p_c) (the correct formula, not SalUn's)."""
    p = probabilities(logits)
    onehot = np.eye(p.shape[1], dtype=bool)[labels]
    log = lambda a: np.log(np.maximum(a, 1e-30))  # noqa: E731 - their _log_value
    return -(1 - p[onehot]) * log(p[onehot]) - np.where(onehot, 0.0, p * log(1 - p)).sum(1)


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LiRA's statistic log p_y - log sum_{c != y} p_c (Carlini et al. 2022), computed from logits stably."""
    z = logits.astype(np.float64)
    onehot = np.eye(z.shape[1], dtype=bool)[labels]
    return z[onehot] - scipy.special.logsumexp(np.where(onehot, -np.inf, z), axis=1)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float | None:
    return None if len(labels) == 0 else float((logits.argmax(1) == labels).mean())


# --- accuracy ---------------------------------------------------------------------------------------------------


@metric("higher")
def retain_acc(ev: Evaluation):
    """Accuracy on the retain set D_r (RA). Higher is better; fraction."""
    return accuracy(*ev.part("retain"))


@metric("oracle")
def forget_acc(ev: Evaluation):
    """Accuracy on the forget set D_f (FA; UA = 1 - FA). Closer to the oracle is better; fraction."""
    return accuracy(*ev.part("forget"))


@metric("higher")
def test_acc(ev: Evaluation):
    """Accuracy on the whole test set (TA). Higher is better; fraction."""
    return accuracy(*ev.part("test"))


@metric("oracle")
def test_forget_acc(ev: Evaluation):
    """Test accuracy on the forgotten classes or sub-class (class scenarios only). Closer to the oracle; fraction."""
    return accuracy(*ev.part("test_forget"))


@metric("higher")
def test_retain_acc(ev: Evaluation):
    """Test accuracy on the remaining classes (the whole test set in random scenarios). Higher is better; fraction."""
    return accuracy(*ev.part("test_retain"))


# --- population membership-inference attacks --------------------------------------------------------------------


def fit_predict(attack, member: np.ndarray, nonmember: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Fit ``attack`` on features of members (label 1) against non-members (label 0); its 0/1 predictions on
    ``target``. 1-d features are given as vectors, d-dimensional ones as [n, d] arrays."""
    as2d = lambda a: a.reshape(len(a), -1)  # noqa: E731
    x = np.concatenate([as2d(member), as2d(nonmember)])
    y = np.concatenate([np.ones(len(member)), np.zeros(len(nonmember))])
    return attack.fit(x, y).predict(as2d(target))


def entropy_attack(member: np.ndarray, nonmember: np.ndarray, target: np.ndarray) -> float:
    """Fit LR(balanced) on 1-d features member (1) vs non-member (0); mean predicted membership of ``target``."""
    from sklearn.linear_model import LogisticRegression

    return float(fit_predict(LogisticRegression(class_weight="balanced", solver="lbfgs"), member, nonmember, target).mean())


def salun_svc():
    """SalUn / Unlearn-Sparse / bad-teacher attack classifier: ``SVC(C=3, gamma="auto", kernel="rbf")``, no scaling."""
    from sklearn.svm import SVC

    return SVC(C=3, gamma="auto", kernel="rbf")


@metric("oracle")
def mia_entropy_lr(ev: Evaluation):
    """Entropy logistic-regression MIA of SSD/LFSSD/NatMU: fraction of D_f predicted member. Closer to the oracle.

    Logistic regression (balanced class weights) on the softmax entropy, fitted on all of D_r (member) against
    the test set (non-member), applied to the forget set (Foster et al. 2024, after Chundawat et al. 2023);
    lower means more forgotten, down to the oracle's value. Fraction (NatMU prints it x100).
    """
    return entropy_attack(entropy(ev.part("retain")[0]), entropy(ev.part("test")[0]), entropy(ev.part("forget")[0]))


@metric("oracle")
def mia_entropy_svc(ev: Evaluation):
    """Entropy SVC MIA of Bad Teacher: fraction of D_f predicted member. Closer to the oracle; fraction.

    ``SVC(C=3, gamma="auto", rbf)`` on the softmax entropy, fitted on all of D_r (member) against the test set
    (non-member), applied to the forget set (Chundawat et al. 2023, ``metrics.get_membership_attack_prob``).
    Slow on large retain sets (about 5 min on 2 CPU cores for 50,000 + 10,000 samples), so not a default.
    """
    member, nonmember, target = (entropy(ev.part(p)[0]) for p in ("retain", "test", "forget"))
    return float(fit_predict(salun_svc(), member, nonmember, target).mean())


SALUN_FEATURES: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "confidence": ("the true-class probability p_y", confidence),
    "correctness": ("the 0/1 correctness of the prediction", lambda z, y: (z.argmax(1) == y).astype(np.float64)),
    "entropy": ("the softmax entropy", lambda z, y: entropy(z)),
    "m_entropy": ("Song & Mittal's modified entropy (correct formula)", modified_entropy),
    "prob": ("the whole softmax vector", lambda z, y: probabilities(z)),
}


def mia_efficacy_of(feature: str, ev: Evaluation) -> float:
    """SalUn's ``SVC_MIA_forget_efficacy``: fraction of D_f that the SVC predicts non-member."""
    extract = SALUN_FEATURES[feature][1]
    retain_z, retain_y = ev.part("retain")
    test_z, test_y = ev.part("test")
    shadow = slice(0, len(test_y))  # the first |D_te| retain samples in data-set order, as SalUn's Subset(range(...))
    member, nonmember = extract(retain_z[shadow], retain_y[shadow]), extract(test_z, test_y)
    return float(1 - fit_predict(salun_svc(), member, nonmember, extract(*ev.part("forget"))).mean())


def _register_mia_efficacy(feature: str, description: str) -> None:
    def fn(ev: Evaluation):
        return mia_efficacy_of(feature, ev)

    name = "mia_efficacy" if feature == "confidence" else f"mia_efficacy_{feature}"
    fn.__name__ = name
    fn.__doc__ = (
        f"MIA-efficacy of SalUn/Sparse/DEL on {description}: fraction of D_f predicted non-member. Closer to the oracle; fraction.\n\n"
        "SVC(C=3, gamma='auto', rbf) fitted on the first |D_te| retain samples (member) against the test set, applied "
        "to the forget set (Jia et al. 2023, Fan et al. 2024, ``SVC_MIA``); higher means more forgotten, up to the oracle's value."
    )
    metric("oracle", name=name)(fn)


for _feature, (_description, _) in SALUN_FEATURES.items():
    _register_mia_efficacy(_feature, _description)


@metric("oracle")
def mia_loss_lr_cv(ev: Evaluation):
    """Loss logistic-regression MIA of the NeurIPS 2023 kit and SCRUB: CV accuracy, D_f vs held-out. Closer to the oracle.

    Per-example cross-entropy (clipped to [-100, 100]) of the forget set (1) against its held-out counterpart (0:
    the test images of the forgotten classes, or the whole test set in random scenarios, as SCRUB restricts it),
    the larger side subsampled (seeded) to the smaller; ``LogisticRegression()`` scored by mean accuracy over
    ``StratifiedShuffleSplit(n_splits=5, test_size=0.1, random_state=seed)`` (Kurmanji et al. 2023). Fraction;
    0.5 = indistinguishable.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

    member, nonmember = (np.clip(cross_entropy(*ev.part(p)), -100, 100) for p in ("forget", ev.heldout))
    rng = np.random.default_rng(ev.seed)
    n = min(len(member), len(nonmember))
    x = np.concatenate([rng.choice(member, n, replace=False), rng.choice(nonmember, n, replace=False)])[:, None]
    y = np.repeat([1, 0], n)
    cv = StratifiedShuffleSplit(n_splits=5, test_size=0.1, random_state=ev.seed)
    return float(cross_val_score(LogisticRegression(), x, y, cv=cv, scoring="accuracy").mean())


@metric("oracle")
def mia_loss_auc(ev: Evaluation):
    """Loss-threshold MIA AUC of Mnemonic Code (Takashima et al., App. C.1): D_f vs held-out. Closer to the oracle.

    ROC AUC of the negative cross-entropy as a membership score, forget samples (1) against their held-out
    counterpart (0; the forgotten classes' test images, or the whole test set in random scenarios). Fraction;
    0.5 = indistinguishable.
    """
    from sklearn.metrics import roc_auc_score

    member, nonmember = (-cross_entropy(*ev.part(p)) for p in ("forget", ev.heldout))
    return float(roc_auc_score(np.repeat([1, 0], [len(member), len(nonmember)]), np.concatenate([member, nonmember])))


# --- distances and gaps to the retrain oracle -------------------------------------------------------------------


def kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) of each row (nats), with 0 log 0 = 0."""
    return scipy.special.rel_entr(p, q).sum(1)


def js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Textbook Jensen-Shannon divergence of each row: KL(p || m)/2 + KL(q || m)/2, m = (p + q)/2 (nats, <= ln 2)."""
    m = (p + q) / 2
    return (kl_rows(p, m) + kl_rows(q, m)) / 2


def js_bad_teacher_code(p: np.ndarray, q: np.ndarray) -> float:
    """The bad-teacher code's ``JSDiv``: ``0.5 F.kl_div(log p, m) + 0.5 F.kl_div(log q, m)`` with the default mean
    reduction, i.e. (KL(m || p) + KL(m || q)) / 2 summed over rows and divided by rows x classes."""
    m = (p + q) / 2
    return float((scipy.special.rel_entr(m, p).mean() + scipy.special.rel_entr(m, q).mean()) / 2)


def forget_probabilities(ev: Evaluation, other: str) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of the run and of the oracle or incompetent model on D_f."""
    return probabilities(ev.part("forget")[0]), probabilities(ev.require(other).part("forget")[0])


@metric("lower", scale="nats", needs=("oracle",))
def kl_to_oracle(ev: Evaluation):
    """Mean KL(p_oracle || p_model) over D_f (nats): how far the predictions are from retraining. Lower is better.

    The unlearned model's softmax against that of the retrain oracle of the same seed (NatMU's "KL_avg", whose
    exact definition is not in its code; this direction treats the oracle as the reference distribution).
    """
    p, q = forget_probabilities(ev, "oracle")
    return float(kl_rows(q, p).mean())


@metric("lower", scale="nats", needs=("oracle",))
def js_to_oracle(ev: Evaluation):
    """Mean Jensen-Shannon divergence to the retrain oracle over D_f (nats, <= ln 2). Lower is better.

    The textbook JS per example, averaged (Chundawat et al. 2023 report it as "JS Div" between the unlearned and
    retrained model).
    """
    return float(js_rows(*forget_probabilities(ev, "oracle")).mean())


@metric("lower", scale="ratio", needs=("oracle",))
def activation_distance(ev: Evaluation):
    """Activation distance of Bad Teacher: mean L2 norm of p_model - p_oracle over D_f. Lower is better; in [0, sqrt 2].

    Distance between the output probability vectors (not hidden activations), as ``metrics.actv_dist`` of
    Chundawat et al. 2023 computes it.
    """
    p, q = forget_probabilities(ev, "oracle")
    return float(np.linalg.norm(p - q, axis=1).mean())


def gap(ev: Evaluation, name: str) -> float:
    """|metric(model) - metric(oracle)| of the same seed and scenario."""
    return abs(ev.value(name) - ev.require("oracle").value(name))


@metric("lower", needs=("oracle",))
def avg_gap(ev: Evaluation):
    """NatMU's average gap to the retrain oracle over test, retain and forget accuracy and the entropy MIA. Lower is better.

    (|dTest| + |dRetain| + |dForget| + |dMIA|) / 4 with unit weights (He et al. 2024, ``get_average_gap``;
    their search objective halves the MIA weight). Test is the remaining classes' test accuracy (the whole test
    set in random scenarios), MIA is ``mia_entropy_lr``. Fraction.
    """
    return float(np.mean([gap(ev, m) for m in ("test_retain_acc", "retain_acc", "forget_acc", "mia_entropy_lr")]))


@metric("lower", needs=("oracle",))
def avg_gap_salun(ev: Evaluation):
    """SalUn's Avg. Gap to the retrain oracle over UA, MIA-efficacy, RA and TA. Lower is better; fraction.

    Mean of |metric - oracle| (Fan et al. 2024), per seed against the oracle of that seed; TA is the remaining
    classes' test accuracy (the whole test set in random scenarios).
    """
    return float(np.mean([gap(ev, m) for m in ("forget_acc", "mia_efficacy", "retain_acc", "test_retain_acc")]))


# --- comparison with an incompetent (randomly initialised) model ------------------------------------------------


@metric("oracle", needs=("incompetent",))
def zrf(ev: Evaluation):
    """ZRF score of Bad Teacher: 1 - mean JS(p_model, p_random) over D_f. Closer to the oracle; fraction.

    Zero-Retrain Forgetting (Chundawat et al. 2023, Eq. 9) on the forget training images, against the incompetent
    teacher that Bad Teacher distils from, with the textbook per-example JS in nats (so ZRF lies in [1 - ln 2, 1]);
    near 1 when the model behaves like a random one on the forget set. SSD's own definition is ``zrf_code``.
    """
    return float(1 - js_rows(*forget_probabilities(ev, "incompetent")).mean())


@metric("oracle", needs=("incompetent",))
def zrf_code(ev: Evaluation):
    """ZRF as the bad-teacher and SSD code compute it (``UnLearningScore``). Closer to the oracle; fraction.

    1 - ``JSDiv`` over the stacked softmaxes, with that code's reversed KL and mean-over-elements reduction (see
    ``js_bad_teacher_code``), not on the textbook scale; on SSD's ``forget_valid_dl``: the forgotten classes' test
    images in class scenarios, the forget training images in random ones. Against the incompetent teacher that
    Bad Teacher distils from, as there.
    """
    part = "test_forget" if len(ev.split["test_forget"]) else "forget"
    model, teacher = ev.part(part)[0], ev.require("incompetent").part(part)[0]
    return 1 - js_bad_teacher_code(probabilities(model), probabilities(teacher))


# --- cost -------------------------------------------------------------------------------------------------------


@metric("lower", scale="seconds")
def method_seconds(ev: Evaluation):
    """Wall time of the unlearning method itself, evaluation excluded. Lower is better; seconds."""
    return ev.run.get("seconds")


@metric("lower", scale="ratio", needs=("oracle",))
def rte(ev: Evaluation):
    """Run-time efficiency: method time / retrain time of the same seed. Lower is better; ratio (1 = retraining).

    SalUn reports the method's time itself; Deep Unlearn's RTE is the inverse ratio (retrain / method time).
    """
    return ev.run["seconds"] / ev.require("oracle").run["seconds"]


@metric("oracle", scale="epochs", needs=("relearn",))
def relearn_epochs(ev: Evaluation):
    """Relearn time: epochs of fine-tuning on D_f until forget accuracy reaches a threshold. Closer to the oracle.

    After Golatkar et al. 2020 and SCRUB's ``readout_retrain``, with the forget set as the fine-tuning data and a
    forget-accuracy threshold (see ``steps.references.relearn``); capped at the configured maximum. Epochs.
    """
    return ev.require("relearn")["epochs"]


# --- per-example likelihood-ratio test against retrain oracles ---------------------------------------------------


def lira_scores(target: np.ndarray, oracle: np.ndarray) -> np.ndarray:
    """Offline per-example LiRA score: (s - mu_x) / sigma, where s is the target model's logit-scaled confidence
    of example x, mu_x its mean over the K oracles that never trained on x and sigma the standard deviation pooled
    over examples (Carlini et al. 2022's fixed variance, stable for few oracles). ``oracle`` is [K, n]."""
    mu = oracle.mean(0)
    sigma = np.sqrt(((oracle - mu) ** 2).sum() / (oracle.size - len(mu)))
    return (target - mu) / max(sigma, 1e-12)


def ulira_curve(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Membership labels (D_f = 1, held-out counterpart = 0) and LiRA scores of the run against the U-LiRA oracles."""
    oracles = ev.require("ulira_oracles")
    scores = [
        lira_scores(logit_scaled_confidence(*ev.part(part)), np.stack([logit_scaled_confidence(*o.part(part)) for o in oracles]))
        for part in ("forget", ev.heldout)
    ]
    return np.repeat([1, 0], [len(s) for s in scores]), np.concatenate(scores)


@metric("oracle", needs=("ulira_oracles",))
def ulira_auc(ev: Evaluation):
    """U-LiRA-style per-example likelihood-ratio MIA: ROC AUC, D_f vs held-out. Closer to the oracle (0.5) is better.

    After Hayes et al. 2024: each example is tested against the distribution of its confidence under K retrain
    oracles trained without it (offline LiRA, ``lira_scores``); members are the forget samples, non-members their
    held-out counterpart. Fraction.
    """
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(*ulira_curve(ev)))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """The largest true-positive rate of a threshold whose false-positive rate is at most ``fpr``."""
    from sklearn.metrics import roc_curve

    fprs, tprs, _ = roc_curve(labels, scores)
    return float(tprs[fprs <= fpr].max())


@metric("oracle", needs=("ulira_oracles",))
def ulira_tpr_at_1pct_fpr(ev: Evaluation):
    """U-LiRA-style MIA: true-positive rate at 1 % false-positive rate. Closer to the oracle (about 0.01); fraction."""
    return tpr_at_fpr(*ulira_curve(ev), 0.01)


# --- per-example scores against ensembles (ensemble_metrics) --------------------------------------------------------


def stacked_part(ev: Evaluation, stack: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[models, n_part, classes]`` and labels of one part (as ``Evaluation.part``) of stacked logits."""
    if name in ("forget", "retain"):
        idx = ev.split[name]
        return stack["train_logits"][:, idx], ev.train_y[idx]
    if name == "test":
        return stack["test_logits"], ev.test_y
    idx = ev.split[name]
    return stack["test_logits"][:, idx], ev.test_y[idx]


def ensemble_score(ev: Evaluation, kind: str) -> dict | None:
    """``neurips`` or ``klom`` of the run's ensembles, computed once; None where the run has no ensembles (a method
    outside ``evaluation.methods``)."""
    from . import ensemble_metrics as em

    if ev.ensembles is None:
        return None
    if kind not in ev.scores:
        unlearned, oracles = ev.ensembles.sides()
        parts = {p: (stacked_part(ev, unlearned, p), stacked_part(ev, oracles, p))
                 for p in ("forget", "retain", "test")}
        if kind == "neurips":
            (uf, y), (of, _) = parts["forget"]
            acc = {p: (em.accuracies(*u), em.accuracies(*o)) for p, (u, o) in parts.items()}
            ev.scores[kind] = em.neurips2023_score(uf, of, y, acc["retain"], acc["test"])
        else:
            logits_u = {p: u[0] for p, (u, _) in parts.items()}
            logits_o = {p: o[0] for p, (_, o) in parts.items()}
            labels = {p: u[1] for p, (u, _) in parts.items()}
            ev.scores[kind] = em.klom(logits_u, logits_o, labels, include_top_edge=ev.ensembles.klom_top_edge)
    return ev.scores[kind]


@metric("higher", scale="ratio", needs=("ensembles",))
def neurips_score(ev: Evaluation):
    """NeurIPS 2023 challenge score F x (RA_U / RA_R) x (TA_U / TA_R), N unlearned vs N oracles. Higher is better.

    Triantafillou et al. 2024 (``ensemble_metrics.neurips2023_score``): per-example epsilon of the logit-scaled
    confidences on D_f, bucketed into F; the utility ratios average each side's accuracies. N and the epsilon cap
    it implies are in metrics.json's ``ensemble``; even two samples of one distribution score well below 1 (see
    the retrain row, oracle vs oracle). Ratio.
    """
    score = ensemble_score(ev, "neurips")
    return None if score is None else float(score["score"])


@metric("higher", needs=("ensembles",))
def neurips_forgetting_quality(ev: Evaluation):
    """NeurIPS 2023 challenge forgetting quality F: mean bucket points of per-example epsilons on D_f. Higher is better.

    Buckets of width 0.5 up to the cap ceil(ln(N - 1)) (examples at or above it score 0); fraction.
    """
    score = ensemble_score(ev, "neurips")
    return None if score is None else float(score["forgetting_quality"])


def _register_klom(stat: str, part: str) -> None:
    def fn(ev: Evaluation):
        score = ensemble_score(ev, "klom")
        return None if score is None else score[part][stat]

    name = f"klom_{stat}_{part}"
    fn.__name__ = name
    fn.__doc__ = (
        f"KLoM {stat.upper() if stat != 'mean' else 'mean'} over {part}: per-example KL between binned margins of N "
        f"unlearned models and N oracles. Lower is better; nats.\n\n"
        "EasyDUB's KL divergence of margins (``ensemble_metrics.klom``; 20 bins over the pooled range, oracle bins "
        "floored at 1e-5, at most ln 1e5 = 11.5); P95 is EasyDUB's headline. It shrinks with N even between two "
        "samples of one distribution (see the retrain row, oracle vs oracle). eval.py's binning leaves values at "
        "the pooled maximum out of every bin: N identical unlearned models above every oracle (a deterministic "
        "method) score 0; ``evaluation.klom_top_edge: true`` closes the top bin."
    )
    metric("lower", scale="nats", needs=("ensembles",), name=name)(fn)


for _part in ("forget", "retain", "test"):
    for _stat in ("p95", "mean", "p05"):
        _register_klom(_stat, _part)


# --- U-LiRA with shadow models trained and unlearned (Hayes et al.; ensemble_metrics.ulira) --------------------------


def ulira_shadow_score(ev: Evaluation) -> dict | None:
    """``ensemble_metrics.ulira`` over D_f: shadow m "unlearned" x when x was in its half and in D_f, "held out" x
    when x was not in its half; each shadow in turn the target (leave one out). None where the run has no shadows."""
    from . import ensemble_metrics as em

    if ev.shadows is None:
        return None
    if "ulira" not in ev.scores:
        forget = ev.split["forget"]
        inside = ev.shadows["in_train"][:, forget]
        ev.scores["ulira"] = em.ulira(ev.shadows["train_logits"][:, forget], ev.train_y[forget], inside, ~inside)
    return ev.scores["ulira"]


@metric("oracle", needs=("ulira_shadows",))
def ulira_shadows_auc(ev: Evaluation):
    """U-LiRA (Hayes et al. 2024), M shadows trained on random halves and unlearned: AUC on D_f. Closer to the oracle.

    Per (target shadow, forget example): the Gaussian likelihood ratio of its confidence under the other shadows
    that unlearned it against those that never saw it (``ensemble_metrics.ulira``); 0.5 = indistinguishable. The
    retrain row is the same attack on shadows retrained without their forget part. M in metrics.json. Fraction.
    """
    score = ulira_shadow_score(ev)
    return None if score is None else score["auc"]


@metric("oracle", needs=("ulira_shadows",))
def ulira_shadows_tpr_1pct(ev: Evaluation):
    """U-LiRA with unlearned shadows: true-positive rate at 1 % false-positive rate over D_f. Closer to the oracle.

    As ``ulira_shadows_auc``; about 0.01 when unlearned and never-seen examples cannot be told apart. Fraction.
    """
    score = ulira_shadow_score(ev)
    return None if score is None else score["tpr_at_0.01_fpr"]
