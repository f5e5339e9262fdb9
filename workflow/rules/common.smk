# Helpers of the workflow: configuration, demo cohort, parse-time plan, input functions.
import json
import logging

from mmsurv.config import (
    ConfigError,
    clinical_set,
    experiment_endpoints,
    validate_config,
    with_demo_cohort,
)
from mmsurv.plan import fold_ids, plan_experiments

# No cohort configured -> the demo cohort (written on first use); then schema + cross checks.
try:
    config.update(validate_config(with_demo_cohort(config)))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RESULTS = config["results"]
ENDPOINTS = list(config["endpoints"])
FOLDS = fold_ids(config)
EXPERIMENTS, EXCLUDED = plan_experiments(config)
for _name, _why in EXCLUDED.items():
    logging.getLogger("mmsurv").warning("experiment %s left out: %s", _name, _why)


wildcard_constraints:
    experiment="|".join(EXPERIMENTS) or "NO_EXPERIMENT",
    endpoint="|".join(ENDPOINTS),
    fold=r"\d+",


def canonical(value):
    """A config value as sorted JSON. Rule parameters built from the config are rerun triggers
    (the scripts read snakemake.config); key order must not make a rerun."""
    return json.dumps(value, sort_keys=True)


def config_param(value):
    """A rule parameter holding ``canonical(value)``; a function, so that Snakemake does not
    read the JSON braces as wildcards."""
    text = canonical(value)

    def param(wildcards):
        return text

    return param


def cohort_inputs(wildcards):
    """The configured sheets and matrices (what the cohort stage reads)."""
    keys = ("samples", "slides", "images", "rna", "scna")
    return {k: config["cohort"][k] for k in keys if config["cohort"].get(k)}


def split_files(wildcards):
    """The split tables of the endpoints an experiment is fitted on."""
    return {
        ep: f"{RESULTS}/splits/{ep}.tsv"
        for ep in experiment_endpoints(config, wildcards.experiment)
    }


def experiment_spec(wildcards):
    """An experiment's configuration, passed as a parameter so that editing it reruns it."""
    return canonical(config["experiments"][wildcards.experiment])


def experiment_variables(wildcards):
    """The clinical variables (name -> kind) an experiment reads: editing a clinical set
    reruns exactly the experiments that use it."""
    inputs = config["experiments"][wildcards.experiment]["inputs"]
    if "clinical" not in inputs:
        return canonical({})
    numeric = config["clinical"]["numeric"]
    return canonical(
        {
            v: "numeric" if v in numeric else "categorical"
            for v in clinical_set(config, inputs["clinical"])
        }
    )


def fold_dirs(wildcards):
    """Every fold's training output of an experiment."""
    return expand(
        f"{RESULTS}/models/{wildcards.experiment}/fold{{fold}}/predictions.tsv",
        fold=FOLDS,
    )


def all_targets():
    """Targets of the default run: every active experiment's metrics and the report."""
    return [
        f"{RESULTS}/cohort/cohort.tsv",
        *expand(f"{RESULTS}/metrics/{{experiment}}.tsv", experiment=EXPERIMENTS),
        f"{RESULTS}/report/metrics.tsv",
        f"{RESULTS}/report/index.html",
    ]
