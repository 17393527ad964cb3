rule unlearn:
    """One method (the retrain oracle included) applied to the original model of one training seed, on the
    scenario's forget set of one forget-set seed, with one unlearning seed (the seed label, unlearnbench.seeds); the
    unlearned model's logits on the training and test sets are cached beside it for every later metric."""
    input:
        original_path=original_path,
        data_path=exp_dataset_path,
        split_path=split_path,
    output:
        out_model=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/model.pt",
        out_run=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/run.json",
        out_logits=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/logits.npz",
    params:
        step=step("unlearn.unlearn"),
        method=lambda w: method_config(config, w.method),
        model=lambda w: model_spec(w.exp),
        train=lambda w: EXPERIMENTS[w.exp]["train"],
        scenario=lambda w: config["scenarios"][w.scenario],
        seed=lambda w: parse_label(w.seed).unlearn_seed,  # the retrain oracle's label has none: its training seed
        device=config["device"],
        threads=config["threads"],  # results depend on it: a change reruns the job
        compile=config["compile"],
        precision=config["precision"],
    threads: config["threads"]
    resources:  # full scale (CIFAR, one GPU); a retry (profiles/slurm: retries) asks twice as much
        gpu=GPU,
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 240 * attempt,
    log:
        f"{LOGS}/unlearn/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}.log",
    benchmark:
        f"{RUN}/benchmarks/unlearn/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}.tsv"
    script:
        "../scripts/step.py"
