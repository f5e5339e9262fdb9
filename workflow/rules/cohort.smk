rule cohort:
    """Validate the sheets and matrices; tabulate which patient has which modality."""
    input:
        unpack(cohort_inputs),
    output:
        report(
            f"{RESULTS}/cohort/cohort.tsv",
            caption="../report/cohort.rst",
            category="Cohort",
        ),
    log:
        f"{RESULTS}/logs/cohort/cohort.log",
    conda:
        "../envs/survival.yaml"
    params:
        cohort=config_param(config["cohort"]),
        endpoints=config_param(config["endpoints"]),
        clinical=config_param(
            config["clinical"]["numeric"] + config["clinical"]["categorical"]
        ),
        labels=config_param(config["labels"]),
    script:
        "../scripts/cohort.py"
