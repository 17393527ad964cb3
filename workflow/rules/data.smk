# The data set artifacts, the index files of index-file scenarios, and the forget/retain splits.

import re

from unlearnbench.splits import index_downloads, index_path


rule prepare_data:
    """Decode a data set once into a uint8 tensor artifact (downloads, if any, happen here, on the head node)."""
    output:
        out=f"{RUN}/data/{{dataset}}.pt",
    params:
        step=step("data.prepare_data"),
        dataset=lambda w: dataset_config(w.dataset),
        root=config["data_root"],
    log:
        f"{LOGS}/prepare_data/{{dataset}}.log",
    localrule: True
    script:
        "../scripts/step.py"


def index_file(scenario):
    """The local index file a scenario reads (a URL's download under <data_root>/indices/), or None."""
    source = config["scenarios"][scenario].get("index_file")
    return None if source is None else index_path(source, config["data_root"])


def local_scenario(scenario):
    """The scenario as the split step reads it: an index file URL replaced by its local download."""
    entry = config["scenarios"][scenario]
    return entry if "index_file" not in entry else {**entry, "index_file": index_file(scenario)}


try:
    INDEX_URLS = index_downloads(config["scenarios"])  # file name -> URL, for the fetch_index rule
except UserError as err:
    raise WorkflowError(f"config error: {err}") from None


rule fetch_index:
    """Download a scenario's index file once, on the head node; offline, the error names the URL and the path."""
    output:
        out=f"{config['data_root']}/indices/{{file}}",
    params:
        step=step("data.fetch_index"),
        url=lambda w: INDEX_URLS[w.file],
    log:
        f"{LOGS}/fetch_index/{{file}}.log",
    wildcard_constraints:
        file="|".join(map(re.escape, INDEX_URLS)) or "(?!)",  # only the configured URLs' files
    localrule: True
    script:
        "../scripts/step.py"


rule split:
    """Forget/retain indices for one scenario and forget-set seed; a scenario's index file is an input, so a changed
    file reruns the split (it is unnamed: the step reads it through the scenario)."""
    input:
        lambda w: index_file(w.scenario) or [],
        data_path=f"{RUN}/data/{{dataset}}.pt",
    output:
        out=f"{RUN}/splits/{{dataset}}/{{scenario}}/seed{{seed}}.npz",
    params:
        step=step("data.split"),
        scenario=lambda w: local_scenario(w.scenario),
        seed=lambda w: int(w.seed),
    log:
        f"{LOGS}/split/{{dataset}}/{{scenario}}/seed{{seed}}.log",
    wildcard_constraints:
        seed=r"\d+",  # a forget-set seed
    script:
        "../scripts/step.py"
