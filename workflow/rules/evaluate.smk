rule logits:
    """Logits of an evaluated model on the whole training and test sets, cached for every later metric."""
    input:
        model_path=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/model.pt",
        data_path=exp_dataset_path,
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/logits.pt",
    params:
        step="step_logits",
        device=config["device"],
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=30,
    log:
        f"{LOGS}/logits/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}.log",
    script:
        "../scripts/step.py"


rule metrics:
    """Metrics of one run from cached logits; no forward pass."""
    input:
        logits_path=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/logits.pt",
        data_path=exp_dataset_path,
        split_path=split_path,
        run_path=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/run.json",
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/metrics.json",
    params:
        step="step_metrics",
        names=config["metrics"],
        context=lambda w: {
            "experiment": w.exp,
            "scenario": w.scenario,
            "method": w.method,
            "seed": int(w.seed),
            "dataset": dataset_config(EXPERIMENTS[w.exp]["dataset"]),
            "model": model_spec(w.exp),
            "train": EXPERIMENTS[w.exp]["train"],
            "scenario_config": config["scenarios"][w.scenario],
            "method_config": method_config(config, w.method),
        },
    log:
        f"{LOGS}/metrics/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}.log",
    script:
        "../scripts/step.py"
