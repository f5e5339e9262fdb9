rule evaluate:
    """Metrics per (endpoint, fold, split) and Kaplan-Meier curves of training-cut risk groups."""
    input:
        predictions=f"{RESULTS}/predictions/{{experiment}}.tsv",
        survival=f"{RESULTS}/predictions/{{experiment}}.survival.parquet",
    output:
        metrics=f"{RESULTS}/metrics/{{experiment}}.tsv",
        km=report(
            f"{RESULTS}/report/figures/{{experiment}}.km.png",
            caption="../report/km.rst",
            category="Kaplan-Meier",
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
