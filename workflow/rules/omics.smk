rule rna:
    """RNA-seq matrix mapped to patients and log-normalised per sample (no fitted statistic)."""
    input:
        matrix=config["cohort"].get("rna") or [],
        samples=config["cohort"]["samples"],
        cohort=ancient(f"{RESULTS}/cohort/cohort.tsv"),
    output:
        f"{RESULTS}/omics/rna.parquet",
    log:
        f"{RESULTS}/logs/omics/rna.log",
    conda:
        "../envs/torch.yaml"
    params:
        omics=config_param(config["omics"]),
        id_pattern=config_param(config["cohort"]["id_pattern"]),
    script:
        "../scripts/rna.py"
