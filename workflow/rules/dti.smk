rule dti_slices:
    """One patient's DTI maps (given, or a dipy tensor fit of the raw DWI) on the tumor mask's
    grid -> 4 equally spaced axial slices per map inside the tumor box, cropped and resized
    (16 x H x W), its record and a QC montage."""
    input:
        unpack(dti_patient_files),
        cohort=ancient(f"{RESULTS}/cohort/cohort.tsv"),
    output:
        slices=f"{RESULTS}/dti/slices/{{patient}}.npy",
        record=f"{RESULTS}/dti/slices/{{patient}}.json",
        montage=report(
            f"{RESULTS}/dti/qc/{{patient}}.png",
            caption="../report/dti_montage.rst",
            category="DTI",
            labels={"patient": "{patient}"},
        ),
    log:
        f"{RESULTS}/logs/dti/slices/{{patient}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dti/slices/{{patient}}.tsv"
    conda:
        "../envs/mri.yaml"
    threads: 1
    resources:
        # a tensor fit holds the float64 DWI several times over: about 40x its .nii.gz size
        mem_mb=lambda wildcards, input: max(4000, int(40 * input.size_mb)),
        runtime=30,
    params:
        files=dti_patient_params,
        settings=config_param({"dti": config["dti"], "mri": DTI_MRI_SETTINGS}),
    script:
        "../scripts/dti_slices.py"


rule dti_qc:
    """One row per DTI patient: status (ok, skipped and why), map and mask source, tumor box,
    mean FA / MD / AD / RD inside the tumor."""
    input:
        records=dti_records,
    output:
        report(
            f"{RESULTS}/dti/qc.tsv",
            caption="../report/dti_qc.rst",
            category="DTI",
        ),
    log:
        f"{RESULTS}/logs/dti/qc.log",
    conda:
        "../envs/mri.yaml"
    script:
        "../scripts/dti_qc.py"
