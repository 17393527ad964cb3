"""Generic Snakemake script: call ``unlearnbench.<params.step>`` ("module.function") with the rule's named inputs,
outputs and params as keyword arguments (the rules name them after the step's arguments)."""

from unlearnbench.runner import run_step


def _plain(value):
    return value if isinstance(value, (str, int, float, bool, dict)) or value is None else list(value)


snakemake = globals()["snakemake"]  # injected by Snakemake
kwargs = {k: _plain(v) for part in (snakemake.input, snakemake.output, snakemake.params) for k, v in part.items()}
run_step(kwargs.pop("step"), log_path=snakemake.log[0], threads=snakemake.threads, **kwargs)
