# Entry point: data -> forget split -> original model -> retrain oracle + unlearning methods -> logits -> metrics
# -> tables and figures. `snakemake --cores all` runs config/config.yaml; `--configfile config/quick.yaml` the
# CPU preset. The rules live in workflow/rules/, the code they call in src/unlearnbench/.

from snakemake.utils import min_version

min_version("9.0")

if not config:  # a --configfile replaces the default instead of being merged into it

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/unlearn.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/references.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        ALL_METRICS,  # requested themselves: Snakemake does not remake a deleted intermediate file (snakemake#1978)
        REPORT_OUTPUTS,
