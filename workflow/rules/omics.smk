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


rule scna:
    """Gene-level copy number of every SCNA sample (SCNA-only patients too) mapped to
    patients, genes with a missing value dropped; per-sample work only."""
    input:
        matrix=config["cohort"].get("scna") or [],
        samples=config["cohort"]["samples"],
        cohort=ancient(f"{RESULTS}/cohort/cohort.tsv"),
    output:
        f"{RESULTS}/omics/scna.parquet",
    log:
        f"{RESULTS}/logs/omics/scna.log",
    conda:
        "../envs/torch.yaml"
    params:
        id_pattern=config_param(config["cohort"]["id_pattern"]),
    script:
        "../scripts/scna.py"


rule scna_umap:
    """UMAP of every SCNA sample coloured by subtype (seed 2, Fig. 5): figure and coordinates;
    a descriptive picture, never a model input."""
    input:
        scna=f"{RESULTS}/omics/scna.parquet",
        samples=config["cohort"]["samples"],
    output:
        png=report(
            f"{RESULTS}/omics/scna_umap.png",
            caption="../report/scna_umap.rst",
            category="Omics",
        ),
        tsv=f"{RESULTS}/omics/scna_umap.tsv",
    log:
        f"{RESULTS}/logs/omics/scna_umap.log",
    conda:
        "../envs/torch.yaml"
    params:
        seed=config_param(config["seed"]),
        subtype=config_param((config.get("labels") or {}).get("subtype")),
    script:
        "../scripts/scna_umap.py"
