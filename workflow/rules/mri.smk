rule mri_preprocess:
    """Reorient, resample onto the reference grid, N4 and z-score inside the head mask, crop
    the tumor box and the whole brain to fixed sizes; QC montage (before/after N4, mask
    contours)."""
    input:
        unpack(mri_patient_files),
        cohort=ancient(f"{RESULTS}/cohort/cohort.tsv"),
    output:
        volumes=expand(
            f"{RESULTS}/mri/preprocessed/{{{{patient}}}}/{{channel}}.nii.gz",
            channel=MRI_CHANNELS,
        ),
        mask=f"{RESULTS}/mri/preprocessed/{{patient}}/mask.nii.gz",
        head_mask=f"{RESULTS}/mri/preprocessed/{{patient}}/head_mask.nii.gz",
        crop=f"{RESULTS}/mri/preprocessed/{{patient}}/crop.npz",
        brain=f"{RESULTS}/mri/preprocessed/{{patient}}/brain.npz",
        record=f"{RESULTS}/mri/preprocessed/{{patient}}/preprocess.json",
        montage=report(
            f"{RESULTS}/mri/qc/{{patient}}.png",
            caption="../report/mri_montage.rst",
            category="MRI preprocessing",
            labels={"patient": "{patient}"},
        ),
    log:
        f"{RESULTS}/logs/mri/preprocess/{{patient}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mri/preprocess/{{patient}}.tsv"
    conda:
        "../envs/mri.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        files=mri_patient_params,
        settings=config_param(MRI_SETTINGS),
    script:
        "../scripts/mri_preprocess.py"


rule mri_segmenter:
    """Weak labels (seed 2): a 3D U-Net (MONAI) trained to find the tumor in the whole-brain
    input of the patients with a mask; it gives the mask-less scans their weak mask."""
    input:
        brains=segmenter_inputs,
        records=expand(
            f"{RESULTS}/mri/preprocessed/{{patient}}/preprocess.json",
            patient=[p for p in MRI_PATIENTS if p not in MRI_WEAK],
        ),
    output:
        model=f"{RESULTS}/mri/weak/segmenter.pt",
        log=f"{RESULTS}/mri/weak/segmenter.json",
    log:
        f"{RESULTS}/logs/mri/segmenter.log",
    benchmark:
        f"{RESULTS}/benchmarks/mri/segmenter.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPUS,
    params:
        weak=config_param(WEAK),
        tumor_labels=config_param(config["mri"]["tumor_labels"]),
        device=config["device"],
        seed=config["seed"],
    script:
        "../scripts/mri_segmenter.py"


rule mri_qc:
    """One row per imaged patient: status (ok, skipped and why), grid, tumor box, N4 effect."""
    input:
        records=mri_records,
    output:
        report(
            f"{RESULTS}/mri/qc.tsv",
            caption="../report/mri_qc.rst",
            category="MRI preprocessing",
        ),
    log:
        f"{RESULTS}/logs/mri/qc.log",
    conda:
        "../envs/mri.yaml"
    script:
        "../scripts/mri_qc.py"


rule radiomics_patient:
    """PyRadiomics features of one patient's preprocessed sequences inside the tumor mask."""
    input:
        record=f"{RESULTS}/mri/preprocessed/{{patient}}/preprocess.json",
        params=config["mri"]["radiomics"]["params"],
    output:
        f"{RESULTS}/mri/radiomics/{{patient}}.tsv",
    log:
        f"{RESULTS}/logs/mri/radiomics/{{patient}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/mri/radiomics/{{patient}}.tsv"
    conda:
        "../envs/mri.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        sequences=config_param(config["mri"]["radiomics"]["sequences"]),
        tumor_labels=config_param(config["mri"]["tumor_labels"]),
    script:
        "../scripts/radiomics_patient.py"


rule radiomics:
    """Every patient's radiomics row in one table: patient x {sequence}_{feature}."""
    input:
        radiomics_files,
    output:
        f"{RESULTS}/mri/radiomics.parquet",
    log:
        f"{RESULTS}/logs/mri/radiomics.log",
    conda:
        "../envs/mri.yaml"
    script:
        "../scripts/radiomics.py"
