"""Generic Snakemake script: call the rule's step (``params.step``, "<stage>.<function>") with the
rule's named inputs, outputs and params as keyword arguments (the rules name them after the step's arguments; a
name used twice is an error)."""

from unlearnbench.runner import run_step, step_kwargs


def _plain(value):
    return value if isinstance(value, (str, int, float, bool, dict)) or value is None else list(value)


snakemake = globals()["snakemake"]  # injected by Snakemake
parts = {part: {k: v for k, v in getattr(snakemake, part).items()} for part in ("input", "output", "params")}
step = parts["params"].pop("step")
# the config's thread count (a params entry, so that changing it reruns the job), not Snakemake's, which --cores
# scales down: results depend on it
threads = parts["params"].pop("threads", None)
kwargs = {k: _plain(v) for k, v in step_kwargs(parts).items()}
run_step(step, log_path=snakemake.log[0], threads=threads or snakemake.threads, granted=snakemake.threads, **kwargs)
