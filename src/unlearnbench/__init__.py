"""unlearnbench: machine-unlearning methods, forget scenarios and evaluations behind one Snakemake DAG."""

__version__ = "0.1.0"


class UserError(Exception):
    """A problem with the user's input (config, data, checkpoint) that the user can fix.

    The message names the problem and the fix in one line; entry points print it without a traceback.
    """
