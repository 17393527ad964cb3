# Models the metrics compare with, beyond the retrain oracle of the same seeds, and the training-based metrics:
# ZRF's incompetent model (one forward pass per experiment and training seed), relearn time (per run), and the
# ensembles: the oracle ensemble (retrain oracles with fresh weights, per experiment, training and
# forget-set seed and scenario; U-LiRA's extra oracles are its first ones) and each evaluated run's unlearned
# ensemble (the method again from the same original with other unlearning seeds), several models per job, cached as
# stacked logits only; U-LiRA's shadow originals per training seed, unlearned per run. Each is built only when a
# configured metric needs it. Options: the config's `evaluation:` (relearn: threshold, absolute, max_epochs,
# lr, batch_size; ulira: oracles; oracles, unlearn_seeds, methods, models_per_job, stacked, recipe).

from unlearnbench.references import batches, oracle_seed, shadow_seed, unlearn_seed

EVALUATION = config.get("evaluation", {})
ENSEMBLE_N = EVALUATION.get("unlearn_seeds", 0)  # N: unlearned models per evaluated run, oracles per side
ULIRA_ORACLES = EVALUATION.get("ulira", {}).get("oracles", 4) if "ulira_oracles" in METRIC_NEEDS else 0
ENSEMBLE_ORACLES = EVALUATION.get("oracles", 0) if "ensembles" in METRIC_NEEDS else 0
ORACLES = max(ENSEMBLE_ORACLES, ULIRA_ORACLES)  # the oracle ensemble's size
PER_JOB = EVALUATION.get("models_per_job", 4)
if "ensembles" in METRIC_NEEDS and not 2 <= ENSEMBLE_N <= ENSEMBLE_ORACLES // 2:
    raise WorkflowError(
        f"config error: the ensemble metrics need evaluation.unlearn_seeds N >= 2 and evaluation.oracles >= 2 N "
        f"(N unlearned models against oracles N..2N-1, oracles 0..N-1 as the oracle-vs-oracle floor); "
        f"got unlearn_seeds {ENSEMBLE_N}, oracles {EVALUATION.get('oracles', 0)}")


SHADOWS = EVALUATION.get("ulira_shadows", 0) if "ulira_shadows" in METRIC_NEEDS else 0  # U-LiRA's M
if "ulira_shadows" in METRIC_NEEDS and SHADOWS < 6:
    raise WorkflowError(
        f"config error: the ulira_shadows_* metrics need evaluation.ulira_shadows M >= 6 (each example in M/2 shadows, "
        f"at least 2 of them besides the target on each side); got {SHADOWS}")


def membership_path(w):
    """U-LiRA's membership matrix of a run's training seed."""
    return f"{RUN}/{w.exp}/seed{parse_label(w.seed).train}/shadows/membership.npz"


def shadow_paths(w):
    """U-LiRA's membership matrix and its M shadows unlearned with the run's method entry and seeds."""
    return {"membership_path": membership_path(w),
            "shadow_paths": [f"{RUN}/{w.exp}/seed{w.seed}/{w.scenario}/shadows/{w.method}/s{a}-{b}.npz"
                             for a, b in batches(0, SHADOWS, PER_JOB)]}


def incompetent_path(exp, seed):
    return f"{RUN}/{exp}/seed{seed}/incompetent/logits.npz"


def oracle_ensemble_paths(exp, seed, scenario):
    """The oracle ensemble's job outputs (oracles first..end-1 each), in oracle order: of the run's training and
    forget-set seed."""
    label = oracle_label(seed)
    return [f"{RUN}/{exp}/seed{label}/{scenario}/oracles/k{a}-{b}.npz" for a, b in batches(0, ORACLES, PER_JOB)]


def evaluated(method):
    """Whether runs of the method entry get the ensemble and U-LiRA shadow scores: those of `evaluation.methods`
    (default: every entry but `original`); the retrain oracle's entry gives each score's floor."""
    return method in EVALUATION.get("methods", [m for m in config["methods"] if m != "original"])


def has_ensembles(method):
    return "ensembles" in METRIC_NEEDS and evaluated(method)


def unlearned_paths(exp, seed, scenario, method):
    """The unlearned ensemble's job outputs beyond the run itself (models 1..N-1); none for the retrain oracle."""
    if method == ORACLE:
        return []
    run = run_dir(exp, seed, scenario, method)
    return [f"{run}/unlearn_seeds/j{a}-{b}.npz" for a, b in batches(1, ENSEMBLE_N, PER_JOB)]


def ensemble_train(exp):
    """The recipe the ensembles train with: the experiment's, with `evaluation.recipe`'s overrides (labelled in
    every table as evaluation-only)."""
    return {**EXPERIMENTS[exp]["train"], **EVALUATION.get("recipe", {})}


rule incompetent:
    """Logits of a randomly initialised model of the experiment and training seed (ZRF's incompetent teacher)."""
    input:
        data_path=exp_dataset_path,
    output:
        out=incompetent_path("{exp}", "{seed}"),
    params:
        step=step("references.incompetent_logits"),
        model=lambda w: model_spec(w.exp),
        seed=lambda w: int(w.seed),
        device=config["device"],
        threads=config["threads"],  # results depend on it: a change reruns the job
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=30,
    log:
        f"{LOGS}/incompetent/{{exp}}/seed{{seed}}.log",
    wildcard_constraints:
        seed=r"\d+",  # a training seed
    script:
        "../scripts/step.py"


def relearn_original_path(w):
    """The original's forget accuracy sets the relearn threshold: read from the cached logits of the `original`
    run of the same scenario and seeds where the grid has one, else computed from the original checkpoint in the job
    (e.g. for the retrain oracle, whose seed label has no unlearning seed)."""
    if (w.exp, w.seed, w.scenario, "original") in PLANNED and method_config(config, "original")["method"] == "original":
        return f"{run_dir(w.exp, w.seed, w.scenario, 'original')}/logits.npz"
    return original_path(w)


rule relearn:
    """Relearn time of one run: epochs of fine-tuning on its forget set until a fraction of the original's
    forget accuracy."""
    input:
        model_path=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/model.pt",
        data_path=exp_dataset_path,
        split_path=split_path,
        original_path=relearn_original_path,
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/relearn.json",
    params:
        step=step("references.relearn"),
        train=lambda w: EXPERIMENTS[w.exp]["train"],
        seed=lambda w: parse_label(w.seed).unlearn_seed,
        device=config["device"],
        threads=config["threads"],  # results depend on it: a change reruns the job
        **EVALUATION.get("relearn", {}),
    threads: config["threads"]
    resources:  # full scale (CIFAR, one GPU); a retry asks twice as much
        gpu=GPU,
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 120 * attempt,
    log:
        f"{LOGS}/relearn/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}.log",
    script:
        "../scripts/step.py"


ENSEMBLE_JOB = dict(  # what both ensemble rules share
    step=step("references.ensemble"),
    model=lambda w: model_spec(w.exp),
    train=lambda w: ensemble_train(w.exp),
    scenario=lambda w: config["scenarios"][w.scenario],
    device=config["device"],
    threads=config["threads"],  # results depend on it: a change reruns the job
    compile=config["compile"],
    precision=config["precision"],
)


rule oracle_ensemble:
    """Retrain oracles first..end-1 of the oracle ensemble of a training and forget-set seed (fresh weights,
    training seed oracle_seed(training seed, k)) in one job, trained at once (evaluation.stacked) or one after
    another; logits only."""
    input:
        original_path=original_path,
        data_path=exp_dataset_path,
        split_path=split_path,
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/oracles/k{{first}}-{{end}}.npz",
    params:
        method={"method": "retrain", "from_initial": False},
        seeds=lambda w: [oracle_seed(parse_label(w.seed).train, k) for k in range(int(w.first), int(w.end))],
        stacked=EVALUATION.get("stacked", "auto"),  # trained at once (auto: on a GPU)
        **ENSEMBLE_JOB,
    wildcard_constraints:
        first=r"\d+",
        end=r"\d+",
    threads: config["threads"]
    resources:  # full scale (CIFAR, one GPU), per model of the job; a retry asks twice as much
        gpu=GPU,
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 240 * attempt * (int(w.end) - int(w.first)),
    log:
        f"{LOGS}/oracle_ensemble/{{exp}}/seed{{seed}}/{{scenario}}/k{{first}}-{{end}}.log",
    benchmark:  # job wall time of end - first models (benchmarks/ensemble_metrics.py --results: per model)
        f"{RUN}/benchmarks/oracle_ensemble/{{exp}}/seed{{seed}}/{{scenario}}/k{{first}}-{{end}}.tsv"
    script:
        "../scripts/step.py"


rule unlearn_ensemble:
    """Unlearned models first..end-1 of a run's unlearned ensemble: the method again on the same original with
    unlearning seed unlearn_seed(the run's unlearning seed, j) (j = 0 is the run itself), one after another in one
    job; logits only."""
    input:
        original_path=original_path,
        data_path=exp_dataset_path,
        split_path=split_path,
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/unlearn_seeds/j{{first}}-{{end}}.npz",
    params:
        method=lambda w: method_config(config, w.method),
        seeds=lambda w: [unlearn_seed(parse_label(w.seed).unlearn_seed, j) for j in range(int(w.first), int(w.end))],
        **ENSEMBLE_JOB,
    wildcard_constraints:
        first=r"\d+",
        end=r"\d+",
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 240 * attempt * (int(w.end) - int(w.first)),
    log:
        f"{LOGS}/unlearn_ensemble/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/j{{first}}-{{end}}.log",
    benchmark:
        f"{RUN}/benchmarks/unlearn_ensemble/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/j{{first}}-{{end}}.tsv"
    script:
        "../scripts/step.py"


rule shadow_membership:
    """U-LiRA: which half of the training set each of the M shadow models of a training seed trains on."""
    input:
        data_path=exp_dataset_path,
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/shadows/membership.npz",
    params:
        step=step("references.shadow_membership"),
        shadows=SHADOWS,
        seed=lambda w: int(w.seed),
    log:
        f"{LOGS}/shadow_membership/{{exp}}/seed{{seed}}.log",
    wildcard_constraints:
        seed=r"\d+",  # a training seed
    script:
        "../scripts/step.py"


rule shadow_original:
    """U-LiRA shadow original m: the experiment's original, trained on the shadow's half (seed shadow_seed)."""
    input:
        data_path=exp_dataset_path,
        membership_path=f"{RUN}/{{exp}}/seed{{seed}}/shadows/membership.npz",
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/shadows/shadow{{shadow}}/original.pt",
    params:
        step=step("references.shadow_original"),
        shadow=lambda w: int(w.shadow),
        model=lambda w: model_spec(w.exp),
        train=lambda w: ensemble_train(w.exp),
        seed=lambda w: shadow_seed(int(w.seed), int(w.shadow)),
        mnemonic=lambda w: EXPERIMENTS[w.exp].get("mnemonic"),
        device=config["device"],
        threads=config["threads"],  # results depend on it: a change reruns the job
        compile=config["compile"],
        precision=config["precision"],
    wildcard_constraints:
        shadow=r"\d+",
        seed=r"\d+",  # a training seed
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 240 * attempt,
    log:
        f"{LOGS}/shadow_original/{{exp}}/seed{{seed}}/shadow{{shadow}}.log",
    benchmark:
        f"{RUN}/benchmarks/shadow_original/{{exp}}/seed{{seed}}/shadow{{shadow}}.tsv"
    script:
        "../scripts/step.py"


rule shadow_unlearn:
    """U-LiRA shadows first..end-1 of a training seed unlearned with a method entry and a run's forget-set and
    unlearning seeds, one after another (each: D_f within its half, seed shadow_seed(unlearning seed, m)); stacked
    logits only."""
    input:
        original_paths=lambda w: [f"{RUN}/{w.exp}/seed{parse_label(w.seed).train}/shadows/shadow{m}/original.pt"
                                  for m in range(int(w.first), int(w.end))],
        data_path=exp_dataset_path,
        split_path=split_path,
        membership_path=membership_path,
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/shadows/{{method}}/s{{first}}-{{end}}.npz",
    params:
        step=step("references.shadow_unlearn"),
        shadows=lambda w: list(range(int(w.first), int(w.end))),
        method=lambda w: method_config(config, w.method),
        model=lambda w: model_spec(w.exp),
        train=lambda w: ensemble_train(w.exp),
        scenario=lambda w: config["scenarios"][w.scenario],
        seeds=lambda w: [shadow_seed(parse_label(w.seed).unlearn_seed, m) for m in range(int(w.first), int(w.end))],
        device=config["device"],
        threads=config["threads"],  # results depend on it: a change reruns the job
        compile=config["compile"],
        precision=config["precision"],
    wildcard_constraints:
        first=r"\d+",
        end=r"\d+",
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 240 * attempt * (int(w.end) - int(w.first)),
    log:
        f"{LOGS}/shadow_unlearn/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/s{{first}}-{{end}}.log",
    benchmark:
        f"{RUN}/benchmarks/shadow_unlearn/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/s{{first}}-{{end}}.tsv"
    script:
        "../scripts/step.py"
