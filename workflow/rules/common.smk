# Config validation and the helpers that map wildcards to config entries.

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from unlearnbench import UserError
from unlearnbench.config import apply_scale, check_config, check_report, check_schema, check_yaml_keys, method_config
from unlearnbench.config import pairings, scenarios_of, typed_values
from unlearnbench.io import provenance
from unlearnbench.results import ORACLE
from unlearnbench.catalog import supports
from unlearnbench.seeds import LABEL, format_label, parse_label, seed_grid
from unlearnbench.steps import check_step

try:
    for path in workflow.configfiles:  # Snakemake's YAML loader keeps the last of two equal keys silently
        check_yaml_keys(path)
    # --config scale=reduced: the config's reduced grid, with the other --config values over it
    config.update(apply_scale(config, typed_values(dict(workflow.config_settings.config))))
    check_schema(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")  # one-line errors
    validate(config, schema="../schemas/config.schema.yaml")  # fills in the schema's defaults
    config["methods"].setdefault(ORACLE, None)  # the retrain oracle is always available
    check_config(config)
    check_report(config, workflow.basedir)
except UserError as err:
    raise WorkflowError(f"config error: {err}") from None

config["workflow_provenance"] = provenance()  # shown in snakemake --report; each artifact records its own


def step(name):
    """The rule's step, "<stage>.<function>" in unlearnbench/steps/<stage>.py, checked now (from the source: no
    torch); workflow/scripts/step.py runs it."""
    try:
        return check_step(name)
    except UserError as err:
        raise WorkflowError(f"workflow error: {err}") from None


RUN = f"results/{config['name']}"
LOGS = f"{RUN}/logs"
GPU = 0 if config["device"] == "cpu" else 1  # jobs that hold a GPU; profiles/default caps their sum

EXPERIMENTS = config["experiments"]


wildcard_constraints:
    exp=r"[A-Za-z0-9_.\-]+",
    scenario=r"[A-Za-z0-9_.\-]+",
    method=r"[A-Za-z0-9_.\-]+",
    dataset=r"[A-Za-z0-9_.\-]+",
    seed=LABEL,  # a run's seed label (unlearnbench.seeds); rules of one training or forget-set seed: r"\d+"


def dataset_config(key):
    return {"name": key, **config["datasets"][key]}


def dataset_path(key):
    return f"{RUN}/data/{key}.pt"


def exp_dataset_path(w):
    return dataset_path(EXPERIMENTS[w.exp]["dataset"])


def split_path(w):
    """The forget/retain split of a run's forget-set seed."""
    return f"{RUN}/splits/{EXPERIMENTS[w.exp]['dataset']}/{w.scenario}/seed{parse_label(w.seed).forget_seed}.npz"


def original_path(w):
    """The original model of a run's training seed."""
    return f"{RUN}/{w.exp}/seed{parse_label(w.seed).train}/original.pt"


def oracle_label(label):
    """The seed label of a run's retrain oracle: without the unlearning seed, on which the oracle does not depend."""
    return format_label(parse_label(label).oracle)


def model_spec(exp):
    """The model an experiment trains, with the registered data-set name it is built for."""
    e = EXPERIMENTS[exp]
    return {"name": e["model"]["name"], "dataset": dataset_config(e["dataset"])["name"], "options": e["model"].get("options", {})}


def run_dir(exp, seed, scenario, method):
    return f"{RUN}/{exp}/seed{seed}/{scenario}/{method}"


def all_runs():
    """Every (experiment, seed label, scenario, method) of the experiments' run groups (retrain on every scenario)
    and seeds (unlearnbench.seeds; the oracle once per training and forget-set seed), less the scenario kinds a
    method does not apply to."""
    return list(dict.fromkeys(
        (exp, format_label(seeds.oracle if method == ORACLE else seeds), scenario, method)
        for exp in EXPERIMENTS
        for seeds in seed_grid(config)
        for scenario, method in pairings(EXPERIMENTS[exp])
        if supports(method_config(config, method)["method"], config["scenarios"][scenario]["kind"])
    ))


RUNS = all_runs()
PLANNED = set(RUNS)  # whether a run (experiment, seed label, scenario, method) is part of the grid
ALL_METRICS = [f"{run_dir(*run)}/metrics.json" for run in RUNS]
# Everything regenerated from the metrics goes to figures/<name>/: tables (CSV, Markdown, LaTeX) and figures
# (PNG, PDF); report.smk has the rules.
FIG = f"figures/{config['name']}"
REPORT = config.get("report", {})
FIGURE_SPECS = {
    "summary": {"kind": "bars", "metrics": ["forget_acc", "retain_acc", "test_acc", "mia_entropy_lr"],
                "caption": "Forget, retain and test accuracy and the entropy logistic-regression MIA per method."},
    **REPORT.get("figures", {}),
}
TABLE_FORMATS = ["csv", "md", "tex"]
REPORT_OUTPUTS = (
    expand(f"{FIG}/summary.{{ext}}", ext=TABLE_FORMATS)
    + expand(f"{FIG}/{{figure}}.{{ext}}", figure=FIGURE_SPECS, ext=["png", "pdf"])
    + (expand(f"{FIG}/reported_vs_reproduced.{{ext}}", ext=TABLE_FORMATS + ["png", "pdf"]) if "reported" in REPORT else [])
    + (expand(f"{FIG}/leaderboard.{{ext}}", ext=TABLE_FORMATS + ["png", "pdf"]) if "leaderboard" in REPORT else [])
)
