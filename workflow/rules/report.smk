rule report:
    """All experiments' metrics in one table, the comparison figure and the HTML report."""
    input:
        splits=expand(f"{RESULTS}/splits/{{endpoint}}.tsv", endpoint=ENDPOINTS),
        cohort=f"{RESULTS}/cohort/cohort.tsv",
        metrics=expand(f"{RESULTS}/metrics/{{experiment}}.tsv", experiment=EXPERIMENTS),
        km=expand(
            f"{RESULTS}/report/figures/{{experiment}}.km.png", experiment=EXPERIMENTS
        ),
        calibration=expand(
            f"{RESULTS}/report/figures/{{experiment}}.calibration.png",
            experiment=EXPERIMENTS,
        ),
        roc=expand(
            f"{RESULTS}/report/figures/{{experiment}}.roc.png", experiment=EXPERIMENTS
        ),
        curves=expand(
            f"{RESULTS}/report/figures/{{experiment}}.loss.png", experiment=NEURAL
        ),
        attention=expand(
            f"{RESULTS}/report/figures/{{experiment}}.attention.png",
            experiment=ATTENTION,
        ),
        features=expand(
            f"{RESULTS}/wsi/features/{{encoder}}.tsv", encoder=ENCODERS_USED
        ),
        wsi_qc=[f"{RESULTS}/wsi/qc.tsv"] if len(SLIDES) else [],
        gradcam=expand(
            f"{RESULTS}/report/figures/{{experiment}}.gradcam.png", experiment=GRADCAM
        ),
        mri_qc=[f"{RESULTS}/mri/qc.tsv"] if MRI_PATIENTS else [],
        subgroups=expand(
            f"{RESULTS}/metrics/{{experiment}}.subgroups.tsv", experiment=EXPERIMENTS
        ),
        scna_umap=[f"{RESULTS}/omics/scna_umap.png"] if SCNA_USED else [],
        attributions=expand(
            f"{RESULTS}/report/figures/{{experiment}}.ig.png", experiment=CLASSIFIERS
        ),
        signatures=expand(
            f"{RESULTS}/signature/{{experiment}}/table1.tsv", experiment=SIGNATURES
        ),
        signature_figures=expand(
            f"{RESULTS}/signature/{{experiment}}/{{figure}}.png",
            experiment=SIGNATURES,
            figure=[
                "km",
                "calibration",
                "decision_curves",
                "nomogram",
                "nomogram_clinicomolecular",
            ],
        ),
        radiogenomics=expand(
            f"{RESULTS}/signature/{{experiment}}/radiogenomics/summary.json",
            experiment=RADIOGENOMICS,
        ),
        dti_cam=expand(
            f"{RESULTS}/report/figures/{{experiment}}.dti_cam.png", experiment=DTI_CAM
        ),
        dti_qc=[f"{RESULTS}/dti/qc.tsv"] if DTI_PATIENTS else [],
        record=f"{RESULTS}/run/record.json",
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
        neural=NEURAL,
        attention=ATTENTION,
        encoders=ENCODERS_USED,
        gradcam=GRADCAM,
        classifiers=CLASSIFIERS,
        signatures=SIGNATURES,
        dti_cam=DTI_CAM,
    script:
        "../scripts/report.py"


rule training_curves:
    """Training and validation loss per epoch of a network, every fold, best epoch marked."""
    input:
        fold_logs,
    output:
        report(
            f"{RESULTS}/report/figures/{{experiment}}.loss.png",
            caption="../report/loss.rst",
            category="Training curves",
            labels={"experiment": "{experiment}"},
        ),
    log:
        f"{RESULTS}/logs/report/{{experiment}}.loss.log",
    conda:
        "../envs/survival.yaml"
    script:
        "../scripts/training_curves.py"


rule attention:
    """Attention of an attention-MIL model over test slides (first fold), on thumbnails."""
    input:
        unpack(attention_inputs),
    output:
        report(
            f"{RESULTS}/report/figures/{{experiment}}.attention.png",
            caption="../report/attention.rst",
            category="Attention",
            labels={"experiment": "{experiment}"},
        ),
    log:
        f"{RESULTS}/logs/report/{{experiment}}.attention.log",
    conda:
        "../envs/torch.yaml"
    params:
        fold=FOLDS[0],
    script:
        "../scripts/attention.py"


rule features_summary:
    """Provenance of one encoder's feature files: encoder id, weights or random init, tiles."""
    input:
        encoder_feature_files,
    output:
        report(
            f"{RESULTS}/wsi/features/{{encoder}}.tsv",
            caption="../report/features.rst",
            category="WSI features",
        ),
    log:
        f"{RESULTS}/logs/wsi/features_{{encoder}}.log",
    conda:
        "../envs/wsi.yaml"
    script:
        "../scripts/features_summary.py"


rule gradcam:
    """Grad-CAM maps of a 3D MRI network over test patients (first fold) on their crops."""
    input:
        unpack(gradcam_inputs),
    output:
        report(
            f"{RESULTS}/report/figures/{{experiment}}.gradcam.png",
            caption="../report/gradcam.rst",
            category="Grad-CAM",
            labels={"experiment": "{experiment}"},
        ),
    log:
        f"{RESULTS}/logs/report/{{experiment}}.gradcam.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/gradcam.py"


rule attributions:
    """Integrated gradients of a subtype classifier over test patients (first fold)."""
    input:
        unpack(gradcam_inputs),
    output:
        report(
            f"{RESULTS}/report/figures/{{experiment}}.ig.png",
            caption="../report/attributions.rst",
            category="Integrated gradients",
            labels={"experiment": "{experiment}"},
        ),
    log:
        f"{RESULTS}/logs/report/{{experiment}}.ig.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/gradcam.py"
