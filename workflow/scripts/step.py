"""Generic Snakemake script: call ``unlearnbench.<params.step>`` ("module.function") with the rule's named inputs,
outputs and params as keyword arguments (the rules name them after the step's arguments)."""

from unlearnbench.runner import run_step


def _plain(value):
    return value if isinstance(value, (str, int, float, bool, dict)) or value is None else list(value)


snakemake = globals()["snakemake"]  # injected by Snakemake
kwargs = {k: _plain(v) for part in (snakemake.input, snakemake.output, snakemake.params) for k, v in part.items()}
# the config's thread count (a params entry, so that changing it reruns the job), not Snakemake's, which --cores
# scales down: results depend on it
threads = kwargs.pop("threads", None)
run_step(kwargs.pop("step"), log_path=snakemake.log[0], threads=threads or snakemake.threads, granted=snakemake.threads, **kwargs)
