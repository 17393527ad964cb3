rule train_original:
    """The original model, trained on the whole training set; its checkpoint keeps the initial weights."""
    input:
        data_path=exp_dataset_path,
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/original.pt",
    params:
        step=step("train.train_original"),
        model=lambda w: model_spec(w.exp),
        train=lambda w: EXPERIMENTS[w.exp]["train"],
        seed=lambda w: int(w.seed),
        device=config["device"],
        threads=config["threads"],  # results depend on it: a change reruns the job
        compile=config["compile"],
        precision=config["precision"],
        mnemonic=lambda w: EXPERIMENTS[w.exp].get("mnemonic"),
    threads: config["threads"]
    resources:  # full scale (CIFAR, one GPU); a retry (profiles/slurm: retries) asks twice as much
        gpu=GPU,
        mem_mb=lambda w, attempt: 16000 * attempt,
        runtime=lambda w, attempt: 240 * attempt,
    wildcard_constraints:
        seed=r"\d+",  # a training seed
    log:
        f"{LOGS}/train_original/{{exp}}/seed{{seed}}.log",
    benchmark:
        f"{RUN}/benchmarks/train_original/{{exp}}/seed{{seed}}.tsv"
    script:
        "../scripts/step.py"
