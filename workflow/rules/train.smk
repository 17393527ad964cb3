rule train_original:
    """The original model, trained on the whole training set; its checkpoint keeps the initial weights."""
    input:
        data_path=exp_dataset_path,
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/original.pt",
    params:
        step="pipeline.train_original",
        model=lambda w: model_spec(w.exp),
        train=lambda w: EXPERIMENTS[w.exp]["train"],
        seed=lambda w: int(w.seed),
        device=config["device"],
        compile=config["compile"],
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=16000,
        runtime=240,
    log:
        f"{LOGS}/train_original/{{exp}}/seed{{seed}}.log",
    benchmark:
        f"{RUN}/benchmarks/train_original/{{exp}}/seed{{seed}}.tsv"
    script:
        "../scripts/step.py"
