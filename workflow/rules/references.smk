# Models the metrics compare with, beyond the retrain oracle of the same seed, and the training-based metrics:
# ZRF's incompetent model (one forward pass per experiment and seed), relearn time (per run) and U-LiRA's extra
# retrain oracles (per experiment, seed and scenario). Each is built only when a configured metric needs it.
# Options: the config's `evaluation:` (relearn: threshold, absolute, max_epochs, lr, batch_size; ulira: oracles).

from unlearnbench.references import ulira_seed

EVALUATION = config.get("evaluation", {})


def incompetent_path(exp, seed):
    return f"{RUN}/{exp}/seed{seed}/incompetent/logits.npz"


def ulira_oracle_paths(exp, seed, scenario):
    count = EVALUATION.get("ulira", {}).get("oracles", 4)
    return [f"{RUN}/{exp}/seed{seed}/{scenario}/ulira_oracles/oracle{k}/logits.npz" for k in range(count)]


rule incompetent:
    """Logits of a randomly initialised model of the experiment (ZRF's incompetent teacher)."""
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
    script:
        "../scripts/step.py"


def relearn_original_path(w):
    """The original's forget accuracy sets the relearn threshold: read from the cached logits of the `original`
    run where the experiment has one, else computed from the original checkpoint in the job."""
    if runs_method(w.exp, w.scenario, "original") and method_config(config, "original")["method"] == "original":
        return f"{run_dir(w.exp, w.seed, w.scenario, 'original')}/logits.npz"
    return f"{RUN}/{w.exp}/seed{w.seed}/original.pt"


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
        seed=lambda w: int(w.seed),
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


rule ulira_oracle:
    """One extra retrain oracle for U-LiRA: the retain set of this seed's split, fresh weights, its own seed."""
    input:
        original_path=f"{RUN}/{{exp}}/seed{{seed}}/original.pt",
        data_path=exp_dataset_path,
        split_path=split_path,
    output:
        out_model=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/ulira_oracles/oracle{{k}}/model.pt",
        out_run=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/ulira_oracles/oracle{{k}}/run.json",
        out_logits=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/ulira_oracles/oracle{{k}}/logits.npz",
    params:
        step=step("unlearn.unlearn"),
        method={"method": "retrain", "from_initial": False},
        model=lambda w: model_spec(w.exp),
        train=lambda w: EXPERIMENTS[w.exp]["train"],
        scenario=lambda w: config["scenarios"][w.scenario],
        seed=lambda w: ulira_seed(int(w.seed), int(w.k)),
        device=config["device"],
        threads=config["threads"],  # results depend on it: a change reruns the job
        compile=config["compile"],
        precision=config["precision"],
    wildcard_constraints:
        k=r"\d+",
    threads: config["threads"]
    resources:  # full scale (CIFAR, one GPU); a retry asks twice as much
        gpu=GPU,
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 240 * attempt,
    log:
        f"{LOGS}/ulira_oracle/{{exp}}/seed{{seed}}/{{scenario}}/oracle{{k}}.log",
    script:
        "../scripts/step.py"
