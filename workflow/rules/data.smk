rule prepare_data:
    """Decode a data set once into a uint8 tensor artifact (downloads, if any, happen here, on the head node)."""
    output:
        out=f"{RUN}/data/{{dataset}}.pt",
    params:
        step="pipeline.prepare_data",
        dataset=lambda w: dataset_config(w.dataset),
        root=config["data_root"],
    log:
        f"{LOGS}/prepare_data/{{dataset}}.log",
    localrule: True
    script:
        "../scripts/step.py"


rule split:
    """Forget/retain indices for one scenario and seed."""
    input:
        data_path=f"{RUN}/data/{{dataset}}.pt",
    output:
        out=f"{RUN}/splits/{{dataset}}/{{scenario}}/seed{{seed}}.npz",
    params:
        step="pipeline.split",
        scenario=lambda w: config["scenarios"][w.scenario],
        seed=lambda w: int(w.seed),
    log:
        f"{LOGS}/split/{{dataset}}/{{scenario}}/seed{{seed}}.log",
    script:
        "../scripts/step.py"
