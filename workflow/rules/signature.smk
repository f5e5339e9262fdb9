rule signature:
    """Seed 4: an experiment's risk as a signature. X-tile cutoff on training patients, risk
    groups with Kaplan-Meier, log-rank and G-rho tests; multivariable Cox; clinicomolecular
    and signature nomograms (C-index and AIC per split, calibration, NRI, decision curves).
    """
    input:
        predictions=f"{RESULTS}/predictions/{{experiment}}.tsv",
        samples=config["cohort"]["samples"],
    output:
        groups=f"{RESULTS}/signature/{{experiment}}/groups.tsv",
        risk_groups=f"{RESULTS}/signature/{{experiment}}/risk_groups.tsv",
        multivariable=f"{RESULTS}/signature/{{experiment}}/multivariable.tsv",
        table1=f"{RESULTS}/signature/{{experiment}}/table1.tsv",
        nri=f"{RESULTS}/signature/{{experiment}}/nri.tsv",
        decision=f"{RESULTS}/signature/{{experiment}}/decision_curves.tsv",
        km=report(
            f"{RESULTS}/signature/{{experiment}}/km.png",
            caption="../report/signature_km.rst",
            category="Signature (seed 4)",
            labels={"experiment": "{experiment}", "figure": "Kaplan-Meier"},
        ),
        calibration=report(
            f"{RESULTS}/signature/{{experiment}}/calibration.png",
            caption="../report/signature_calibration.rst",
            category="Signature (seed 4)",
            labels={"experiment": "{experiment}", "figure": "calibration"},
        ),
        decision_plot=report(
            f"{RESULTS}/signature/{{experiment}}/decision_curves.png",
            caption="../report/signature_decision.rst",
            category="Signature (seed 4)",
            labels={"experiment": "{experiment}", "figure": "decision curves"},
        ),
        nomogram=report(
            f"{RESULTS}/signature/{{experiment}}/nomogram.png",
            caption="../report/signature_nomogram.rst",
            category="Signature (seed 4)",
            labels={"experiment": "{experiment}", "figure": "nomogram"},
        ),
        nomogram_cm=f"{RESULTS}/signature/{{experiment}}/nomogram_clinicomolecular.png",
    log:
        f"{RESULTS}/logs/signature/{{experiment}}.log",
    conda:
        "../envs/survival.yaml"
    params:
        signature=config_param(config["signature"]),
        variables=signature_variables,
        bootstrap=config["evaluation"]["bootstrap"],
        calibration_bins=config["evaluation"]["calibration_bins"],
        seed=config["seed"],
        truth=config["cohort"].get("truth"),
    script:
        "../scripts/signature.py"


rule radiogenomics:
    """Seed 4: DEGs between the signature's risk groups (pydeseq2), their enrichment in the
    configured gene sets (gseapy), ssGSEA scores correlated with the signature, and the
    Kaplan-Meier curves of the correlated pathways' mean expression."""
    input:
        groups=f"{RESULTS}/signature/{{experiment}}/groups.tsv",
        rna=f"{RESULTS}/omics/rna.parquet",
        counts=config["cohort"].get("rna") or [],
        samples=config["cohort"]["samples"],
        gene_sets=config["cohort"]["gene_sets"],
    output:
        deg=f"{RESULTS}/signature/{{experiment}}/radiogenomics/deg.tsv",
        enrichment=f"{RESULTS}/signature/{{experiment}}/radiogenomics/enrichment.tsv",
        correlation=f"{RESULTS}/signature/{{experiment}}/radiogenomics/pathway_correlation.tsv",
        pathway_km=f"{RESULTS}/signature/{{experiment}}/radiogenomics/pathway_km.tsv",
        summary=f"{RESULTS}/signature/{{experiment}}/radiogenomics/summary.json",
        volcano=report(
            f"{RESULTS}/signature/{{experiment}}/radiogenomics/volcano.png",
            caption="../report/radiogenomics_volcano.rst",
            category="Signature (seed 4)",
            labels={"experiment": "{experiment}", "figure": "volcano"},
        ),
        pathway_km_plot=report(
            f"{RESULTS}/signature/{{experiment}}/radiogenomics/pathway_km.png",
            caption="../report/radiogenomics_km.rst",
            category="Signature (seed 4)",
            labels={"experiment": "{experiment}", "figure": "pathway genes KM"},
        ),
    log:
        f"{RESULTS}/logs/signature/{{experiment}}.radiogenomics.log",
    benchmark:
        f"{RESULTS}/benchmarks/signature/{{experiment}}.radiogenomics.tsv"
    conda:
        "../envs/omics.yaml"
    threads: 1
    params:
        radiogenomics=config_param(config["radiogenomics"]),
        rna_values=config["omics"]["rna_values"],
        id_pattern=config_param(config["cohort"]["id_pattern"]),
        cutoff_quantiles=config["signature"]["cutoff_quantiles"],
        seed=config["seed"],
    script:
        "../scripts/radiogenomics.py"


rule dti_cam:
    """Class-activation maps (Grad-CAM) of a DTI network over test patients (first fold) on
    their 16 input slices."""
    input:
        model=f"{RESULTS}/models/{{experiment}}/fold{FOLDS[0]}/model.joblib",
        predictions=f"{RESULTS}/models/{{experiment}}/fold{FOLDS[0]}/predictions.tsv",
        dti=dti_records,
    output:
        report(
            f"{RESULTS}/report/figures/{{experiment}}.dti_cam.png",
            caption="../report/dti_cam.rst",
            category="Grad-CAM",
            labels={"experiment": "{experiment}"},
        ),
    log:
        f"{RESULTS}/logs/report/{{experiment}}.dti_cam.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/dti_cam.py"
