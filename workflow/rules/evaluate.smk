rule metrics:
    """Metrics of one run from cached logits; no forward pass."""
    input:
        logits_path=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/logits.npz",
        split_path=split_path,
        run_path=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/run.json",
    output:
        out=f"{RUN}/{{exp}}/seed{{seed}}/{{scenario}}/{{method}}/metrics.json",
    params:
        step="metrics.evaluate_run",
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
