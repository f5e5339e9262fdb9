localrules:
    run_record,


rule run_record:
    """The reproducibility record: configuration used, package versions, git commit, seeds.
    Cheap, so run where Snakemake runs; a config change or a new commit reruns it."""
    output:
        config=report(
            f"{RESULTS}/run/config.yaml",
            caption="../report/run_config.rst",
            category="Reproducibility",
        ),
        record=report(
            f"{RESULTS}/run/record.json",
            caption="../report/record.rst",
            category="Reproducibility",
        ),
    log:
        f"{RESULTS}/logs/run/record.log",
    conda:
        "../envs/survival.yaml"
    params:
        config_sha256=CONFIG_DIGEST,
        git=GIT_REVISION,
    script:
        "../scripts/run_record.py"
