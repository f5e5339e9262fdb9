rule evaluate:
    """Metrics per (endpoint, fold, split), the C-index within subgroups, Kaplan-Meier curves
    of training-cut risk groups, calibration and time-dependent ROC at the horizon."""
    input:
        predictions=f"{RESULTS}/predictions/{{experiment}}.tsv",
        survival=f"{RESULTS}/predictions/{{experiment}}.survival.parquet",
        samples=config["cohort"]["samples"],
    output:
        metrics=f"{RESULTS}/metrics/{{experiment}}.tsv",
        subgroups=f"{RESULTS}/metrics/{{experiment}}.subgroups.tsv",
        km=report(
            f"{RESULTS}/report/figures/{{experiment}}.km.png",
            caption="../report/km.rst",
            category="Kaplan-Meier",
            labels={"experiment": "{experiment}"},
        ),
        calibration=report(
            f"{RESULTS}/report/figures/{{experiment}}.calibration.png",
            caption="../report/calibration.rst",
            category="Calibration",
            labels={"experiment": "{experiment}"},
        ),
        roc=report(
            f"{RESULTS}/report/figures/{{experiment}}.roc.png",
            caption="../report/roc.rst",
            category="Time-dependent ROC",
            labels={"experiment": "{experiment}"},
        ),
    log:
        f"{RESULTS}/logs/evaluate/{{experiment}}.log",
    conda:
        "../envs/survival.yaml"
    params:
        evaluation=config_param(config["evaluation"]),
        seed=config["seed"],
        truth=config["cohort"].get("truth"),
    script:
        "../scripts/evaluate.py"
