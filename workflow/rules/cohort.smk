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
    script:
        "../scripts/cohort.py"
