rule report:
    """All experiments' metrics in one table, the comparison figure and the HTML report."""
    input:
        splits=expand(f"{RESULTS}/splits/{{endpoint}}.tsv", endpoint=ENDPOINTS),
        cohort=f"{RESULTS}/cohort/cohort.tsv",
        metrics=expand(f"{RESULTS}/metrics/{{experiment}}.tsv", experiment=EXPERIMENTS),
        km=expand(
            f"{RESULTS}/report/figures/{{experiment}}.km.png", experiment=EXPERIMENTS
        ),
    output:
        metrics=report(
            f"{RESULTS}/report/metrics.tsv",
            caption="../report/metrics.rst",
            category="Metrics",
        ),
        html=f"{RESULTS}/report/index.html",
        forest=report(
            f"{RESULTS}/report/figures/c_index.png",
            caption="../report/c_index.rst",
            category="Metrics",
        ),
    log:
        f"{RESULTS}/logs/report/report.log",
    conda:
        "../envs/survival.yaml"
    params:
        excluded=EXCLUDED,
        experiments=EXPERIMENTS,
        endpoints=ENDPOINTS,
    script:
        "../scripts/report.py"
