rule splits:
    """Patient-level train/val/test assignment of one endpoint."""
    input:
        samples=config["cohort"]["samples"],
        cohort=f"{RESULTS}/cohort/cohort.tsv",
    output:
        f"{RESULTS}/splits/{{endpoint}}.tsv",
    log:
        f"{RESULTS}/logs/splits/{{endpoint}}.log",
    conda:
        "../envs/survival.yaml"
    params:
        splits=config_param(config["splits"]),
        seed=config["seed"],
        endpoints=config_param(config["endpoints"]),
        labels=config_param(config["labels"]),
    script:
        "../scripts/splits.py"
