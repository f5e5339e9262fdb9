# Helpers of the workflow: configuration, demo cohort, parse-time plan, input functions.
import logging
from pathlib import Path

from mmsurv.config import ConfigError, experiment_endpoints, validate_config
from mmsurv.plan import fold_ids, plan_experiments

try:
    config.update(validate_config(config))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

if config["demo"] and not Path(config["cohort"]["samples"]).exists():
    from mmsurv.demo import make_demo_cohort

    logging.getLogger("mmsurv").warning(
        "cohort %s is missing: writing the %s demo cohort",
        config["cohort"]["samples"],
        config["demo"]["preset"],
    )
    make_demo_cohort(
        Path(config["cohort"]["samples"]).parent,
        preset=config["demo"]["preset"],
        seed=config["seed"],
    )

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
    """An experiment's configuration (a rule parameter: editing it reruns the experiment)."""
    return config["experiments"][wildcards.experiment]


def fold_dirs(wildcards):
    """Every fold's training output of an experiment."""
    return expand(
        f"{RESULTS}/models/{wildcards.experiment}/fold{{fold}}/predictions.tsv", fold=FOLDS
    )


def all_targets():
    """What `rule all` builds: every active experiment's metrics and the report."""
    return [
        f"{RESULTS}/cohort/cohort.tsv",
        *expand(f"{RESULTS}/metrics/{{experiment}}.tsv", experiment=EXPERIMENTS),
        f"{RESULTS}/report/metrics.tsv",
        f"{RESULTS}/report/index.html",
    ]
