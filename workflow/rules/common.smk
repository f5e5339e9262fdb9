# Helpers of the workflow: configuration, demo cohort, parse-time plan, input functions.
import functools
import json
import logging
import os
import sys
from pathlib import Path

import pandas as pd

from mmsurv.config import (
    ConfigError,
    clinical_set,
    experiment_endpoints,
    validate_config,
    with_demo_cohort,
)
from mmsurv.models.registry import (
    ATTENTION_MODELS,
    CLASSIFIER_MODELS,
    DTI_CAM_MODELS,
    GRADCAM_MODELS,
    NEURAL_MODELS,
)
from mmsurv.plan import fold_ids, images_table, plan_experiments, slides_table
from mmsurv.provenance import (
    INVOCATION_ENV,
    config_digest,
    describe_invocation,
    git_revision,
)

# No cohort configured -> the demo cohort (written on first use); then schema + cross checks.
try:
    config.update(validate_config(with_demo_cohort(config)))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

# The PyRadiomics parameter file: a relative path is taken from the working directory, else
# from this repository (where config/radiomics.yaml ships).
_params = Path(config["mri"]["radiomics"]["params"])
if not _params.is_absolute() and not _params.exists():
    _params = Path(workflow.basedir) / _params
config["mri"]["radiomics"]["params"] = str(_params)

RESULTS = config["results"]
ENDPOINTS = list(config["endpoints"])
FOLDS = fold_ids(config)
EXPERIMENTS, EXCLUDED = plan_experiments(config)
for _name, _why in EXCLUDED.items():
    logging.getLogger("mmsurv").warning("experiment %s left out: %s", _name, _why)
NEURAL = [e for e in EXPERIMENTS if config["experiments"][e]["model"] in NEURAL_MODELS]
ATTENTION = [
    e for e in EXPERIMENTS if config["experiments"][e]["model"] in ATTENTION_MODELS
]
#: Encoders whose features an active experiment reads.
ENCODERS_USED = sorted(
    {
        config["experiments"][e]["inputs"]["wsi"]
        for e in EXPERIMENTS
        if "wsi" in config["experiments"][e]["inputs"]
    }
)
SLIDES = slides_table(config).set_index("slide_id", drop=False)
#: slide_id -> its sheet row (dict): per-job lookups without pandas indexing (4000 jobs at
#: 2000 slides).
SLIDE_ROWS = SLIDES.to_dict("index")
#: Tiling settings (rerun triggers of the tile rule; the encoders do not retile).
TILING = {
    k: v
    for k, v in config["wsi"].items()
    if k not in ("encoders", "batch_size", "num_workers")
}
IMAGES = images_table(config)
#: patient_id -> {channel: path} of the images sheet, built once (not a sheet scan per job).
PATIENT_IMAGES = {
    str(patient): dict(zip(rows["channel"], rows["path"]))
    for patient, rows in IMAGES.groupby("patient_id", sort=False)
}
#: Channels of the DTI stage's inputs.
DTI_CHANNELS = ("fa", "md", "ad", "rd", "dwi", "bval", "bvec", "mask")
#: Sequences preprocessed for every imaged patient, and the channels written (+ subtraction).
MRI_SEQUENCES = list(config["mri"]["sequences"])
MRI_CHANNELS = MRI_SEQUENCES + (["t1ce_t1"] if config["mri"]["subtraction"] else [])
#: Patients of the images sheet with any MRI sequence: one preprocessing job each.
MRI_PATIENTS = sorted(
    set(IMAGES.loc[IMAGES["channel"].isin(MRI_SEQUENCES), "patient_id"])
)
#: Imaged patients without a mask row: a weak mask (folder file or segmentation network).
MRI_WEAK = set(MRI_PATIENTS) - set(
    IMAGES.loc[IMAGES["channel"] == "mask", "patient_id"]
)
WEAK = config["mri"]["weak_labels"]
#: Whether the weak-label segmentation network is trained (mask-less scans, no weak folder).
WEAK_NETWORK = bool(MRI_WEAK) and WEAK["enabled"] and not WEAK["folder"]
if WEAK_NETWORK and len(MRI_PATIENTS) - len(MRI_WEAK) < 2:
    raise WorkflowError(
        f"{len(MRI_WEAK)} imaged patient(s) have no tumor mask and need weak labels, but the "
        "segmentation network needs at least 2 patients with a mask to learn from (the images "
        f"sheet has {len(MRI_PATIENTS) - len(MRI_WEAK)}): give mri.weak_labels.folder, add "
        "masks, or set mri.weak_labels.enabled: false"
    )
#: Preprocessing settings (rerun triggers of mri_preprocess; radiomics has its own rule;
#: on_error changes no output of a patient that could be preprocessed; weak labels reach the
#: mask-less patients through their weak file or the segmentation network).
MRI_SETTINGS = {
    k: v
    for k, v in config["mri"].items()
    if k not in ("radiomics", "on_error", "weak_labels")
}
GRADCAM = [
    e for e in EXPERIMENTS if config["experiments"][e]["model"] in GRADCAM_MODELS
]
#: Subtype classifiers (seed 2): integrated-gradients maps in the report.
CLASSIFIERS = [
    e for e in EXPERIMENTS if config["experiments"][e]["model"] in CLASSIFIER_MODELS
]
#: DTI: patients of the images sheet with the four maps or raw diffusion data (one job each);
#: those without a mask row take the MRI stage's weak mask (mask.nii.gz of its preprocessing).
_DTI_ROWS = (
    IMAGES.groupby("patient_id")["channel"].agg(set) if len(IMAGES) else pd.Series()
)
DTI_PATIENTS = sorted(
    p
    for p, chans in _DTI_ROWS.items()
    if {"fa", "md", "ad", "rd"} <= chans or {"dwi", "bval", "bvec"} <= chans
)
#: The MRI settings the DTI stage reads (its tumor labels and mask-grid tolerance).
DTI_MRI_SETTINGS = {k: config["mri"][k] for k in ("tumor_labels", "mask_tolerance_mm")}
#: DTI networks: class-activation maps over their 16 input slices in the report.
DTI_CAM = [
    e for e in EXPERIMENTS if config["experiments"][e]["model"] in DTI_CAM_MODELS
]
#: Active experiments analysed as a signature (seed 4), and those with radiogenomics (the
#: cohort has RNA and gene sets).
SIGNATURES = [e for e in config["signature"]["experiments"] if e in EXPERIMENTS]
RADIOGENOMICS = (
    SIGNATURES if config["cohort"].get("rna") and config["cohort"]["gene_sets"] else []
)
if SIGNATURES and not RADIOGENOMICS:
    logging.getLogger("mmsurv").warning(
        "radiogenomics left out: it needs cohort.rna and cohort.gene_sets (GMT files)"
    )
#: Whether an active experiment reads the SCNA matrix (then the report shows its UMAP).
SCNA_USED = any("scna" in config["experiments"][e]["inputs"] for e in EXPERIMENTS)
#: 1 when the GPU rules must request a GPU from the scheduler (device: cuda), else 0.
GPUS = 1 if config["device"] == "cuda" else 0
#: Rerun triggers of the run record: the digest of the whole configuration as resolved here
#: (any config change) and the workflow's git commit (``-dirty`` when tracked files changed).
#: The Snakemake process hands its command line to that job in the environment (as a rule
#: parameter, every new command line would rerun it).
CONFIG_DIGEST = config_digest(config)
GIT_REVISION = git_revision(workflow.basedir)
if workflow.is_main_process:
    os.environ[INVOCATION_ENV] = json.dumps(
        describe_invocation(sys.argv, workflow.configfiles, os.getcwd())
    )


wildcard_constraints:
    experiment="|".join(EXPERIMENTS) or "NO_EXPERIMENT",
    endpoint="|".join(ENDPOINTS),
    fold=r"\d+",
    slide=r"[^/]+",
    encoder=r"[^/]+",
    patient=r"[^/]+",


def canonical(value):
    """A config value as sorted JSON. Rule parameters built from the config are rerun triggers
    (the scripts read snakemake.config); key order must not make a rerun."""
    return json.dumps(value, sort_keys=True)


def config_param(value):
    """A rule parameter holding ``canonical(value)``; a function, so that Snakemake does not
    read the JSON braces as wildcards."""
    text = canonical(value)

    def param(wildcards):
        return text

    return param


def cohort_inputs(wildcards):
    """The configured sheets and matrices (what the cohort stage reads)."""
    keys = ("samples", "slides", "images", "rna", "scna")
    return {k: config["cohort"][k] for k in keys if config["cohort"].get(k)}


def train_inputs(wildcards):
    """What a training job reads: split tables of its endpoints (``split_{endpoint}``), the
    cohort table, and the feature files, matrices or MRI records its inputs name."""
    inputs = {
        f"split_{ep}": f"{RESULTS}/splits/{ep}.tsv"
        for ep in experiment_endpoints(config, wildcards.experiment)
    }
    inputs["cohort"] = f"{RESULTS}/cohort/cohort.tsv"
    wanted = config["experiments"][wildcards.experiment]["inputs"]
    if "wsi" in wanted:
        inputs["features"] = list(encoder_features(wanted["wsi"]))
    if "rna" in wanted:
        inputs["rna"] = f"{RESULTS}/omics/rna.parquet"
    if "mri" in wanted:
        inputs["mri"] = mri_records()
    if "radiomics" in wanted:
        inputs["radiomics"] = f"{RESULTS}/mri/radiomics.parquet"
    if "scna" in wanted:
        inputs["scna"] = f"{RESULTS}/omics/scna.parquet"
    if "dti" in wanted:
        inputs["dti"] = dti_records()
    return inputs


def experiment_spec(wildcards):
    """An experiment's configuration, passed as a parameter so that editing it reruns it."""
    return canonical(config["experiments"][wildcards.experiment])


def experiment_variables(wildcards):
    """The clinical variables (name -> kind) an experiment reads: editing a clinical set
    reruns exactly the experiments that use it."""
    inputs = config["experiments"][wildcards.experiment]["inputs"]
    if "clinical" not in inputs:
        return canonical({})
    numeric = config["clinical"]["numeric"]
    return canonical(
        {
            v: "numeric" if v in numeric else "categorical"
            for v in clinical_set(config, inputs["clinical"])
        }
    )


def signature_variables(wildcards):
    """The clinical factors (name -> kind) of the signature's nomograms (rerun triggers)."""
    numeric = config["clinical"]["numeric"]
    return canonical(
        {
            v: "numeric" if v in numeric else "categorical"
            for v in clinical_set(config, config["signature"]["factors"])
        }
    )


def fold_dirs(wildcards):
    """Every fold's training output of an experiment."""
    return expand(
        f"{RESULTS}/models/{wildcards.experiment}/fold{{fold}}/predictions.tsv",
        fold=FOLDS,
    )


def all_targets():
    """Targets of the default run: every active experiment's metrics, the report and the
    run record."""
    wsi_qc = [f"{RESULTS}/wsi/qc.tsv"] if len(SLIDES) else []
    mri_qc = [f"{RESULTS}/mri/qc.tsv"] if MRI_PATIENTS else []
    dti_qc = [f"{RESULTS}/dti/qc.tsv"] if DTI_PATIENTS else []
    return [
        f"{RESULTS}/cohort/cohort.tsv",
        *wsi_qc,
        *mri_qc,
        *dti_qc,
        *expand(f"{RESULTS}/metrics/{{experiment}}.tsv", experiment=EXPERIMENTS),
        f"{RESULTS}/report/metrics.tsv",
        f"{RESULTS}/report/index.html",
        f"{RESULTS}/run/record.json",
    ]


def slide_input(wildcards):
    """The slide file of ``{slide}`` (left out when missing: the cohort stage reports it)."""
    path = SLIDE_ROWS[wildcards.slide]["path"]
    return {"slide": path} if path and Path(path).is_file() else {}


def slide_params(wildcards):
    """Path and sheet ``mpp`` of ``{slide}`` (JSON; mpp null when the cell is empty)."""
    row = SLIDE_ROWS[wildcards.slide]
    mpp = None if pd.isna(row["mpp"]) else float(row["mpp"])
    return canonical({"path": row["path"], "patient_id": row["patient_id"], "mpp": mpp})


def encoder_params(wildcards):
    """Settings of encoder ``{encoder}`` plus the extraction settings (rerun triggers)."""
    enc = config["wsi"]["encoders"][wildcards.encoder]
    keys = ("batch_size", "num_workers")
    return canonical(
        {
            "encoder": enc,
            **{k: config["wsi"][k] for k in keys},
            "device": config["device"],
        }
    )


def feature_file(encoder, slide_id):
    """Feature file of a slide: the encoder's precomputed folder (CLAM/TRIDENT), else ours."""
    folder = config["wsi"]["encoders"][encoder].get("precomputed")
    if folder:
        return str(Path(folder) / f"{slide_id}.h5")
    return f"{RESULTS}/wsi/features/{encoder}/{slide_id}.h5"


def tile_files(wildcards=None):
    """Every slide's tile file."""
    return expand(f"{RESULTS}/wsi/tiles/{{slide}}.h5", slide=SLIDES.index)


def experiment_gpus(wildcards):
    """GPUs a training job requests: GPUS for neural models, 0 otherwise."""
    model = config["experiments"][wildcards.experiment]["model"]
    return GPUS if model in NEURAL_MODELS else 0


@functools.cache
def encoder_features(encoder):
    """The slides' feature files of ``encoder`` (a tuple, computed once per encoder: train,
    attention and summary jobs all ask). A precomputed (CLAM/TRIDENT) folder may lack some
    slides: those are left out of the encoder's experiments, with a warning."""
    files = tuple(feature_file(encoder, s) for s in SLIDES.index)
    if not config["wsi"]["encoders"][encoder].get("precomputed"):
        return files
    found = tuple(f for f in files if Path(f).is_file())
    if len(found) < len(files):
        logging.getLogger("mmsurv").warning(
            "encoder %s: %d of %d slides have no precomputed feature file; left out",
            encoder,
            len(files) - len(found),
            len(files),
        )
    return found


def encoder_feature_files(wildcards):
    """Every slide's feature file of encoder ``{encoder}``."""
    return list(encoder_features(wildcards.encoder))


def fold_logs(wildcards):
    """Every fold's training log of an experiment."""
    return expand(
        f"{RESULTS}/models/{wildcards.experiment}/fold{{fold}}/train_log.json",
        fold=FOLDS,
    )


def attention_inputs(wildcards):
    """What the attention figure reads: the first fold's model and predictions, the features
    (and RNA) of the experiment."""
    inputs = train_inputs(wildcards)
    fold = FOLDS[0]
    inputs["model"] = f"{RESULTS}/models/{wildcards.experiment}/fold{fold}/model.joblib"
    inputs["predictions"] = (
        f"{RESULTS}/models/{wildcards.experiment}/fold{fold}/predictions.tsv"
    )
    return inputs


def patient_images(patient, channels):
    """{channel: path} of ``patient``'s images-sheet rows whose channel is in ``channels``."""
    wanted = set(channels)
    return {c: p for c, p in PATIENT_IMAGES.get(patient, {}).items() if c in wanted}


def mri_patient_files(wildcards):
    """The patient's sequence and mask files that exist (a missing one is reported by the
    cohort stage and by the patient's own job, not by failing the whole DAG); for a patient
    without a mask, its weak mask file or the segmentation network."""
    wanted = patient_images(wildcards.patient, [*MRI_SEQUENCES, "mask"])
    files = {c: p for c, p in wanted.items() if Path(p).exists()}
    if wildcards.patient in MRI_WEAK and WEAK["enabled"]:
        if WEAK["folder"]:
            weak = Path(WEAK["folder"]) / f"{wildcards.patient}.nii.gz"
            files.update({"weak": str(weak)} if weak.exists() else {})
        else:
            files["segmenter"] = f"{RESULTS}/mri/weak/segmenter.pt"
    return files


def segmenter_inputs(wildcards=None):
    """The whole-brain inputs of the patients with a mask (the network's training scans)."""
    return expand(
        f"{RESULTS}/mri/preprocessed/{{patient}}/brain.npz",
        patient=[p for p in MRI_PATIENTS if p not in MRI_WEAK],
    )


def mri_patient_params(wildcards):
    """Every sequence and mask path of ``{patient}`` in the images sheet (JSON)."""
    return canonical(patient_images(wildcards.patient, [*MRI_SEQUENCES, "mask"]))


def mri_records(wildcards=None):
    """Every imaged patient's preprocessing record (``preprocess.json``, beside crop.npz)."""
    return expand(
        f"{RESULTS}/mri/preprocessed/{{patient}}/preprocess.json", patient=MRI_PATIENTS
    )


def radiomics_files(wildcards=None):
    """Every imaged patient's radiomics row."""
    return expand(f"{RESULTS}/mri/radiomics/{{patient}}.tsv", patient=MRI_PATIENTS)


def gradcam_inputs(wildcards):
    """What a Grad-CAM or integrated-gradients figure reads: the first fold's model and
    predictions, the MRI records (and the SCNA matrix of an experiment reading it)."""
    fold = FOLDS[0]
    inputs = {
        "model": f"{RESULTS}/models/{wildcards.experiment}/fold{fold}/model.joblib",
        "predictions": f"{RESULTS}/models/{wildcards.experiment}/fold{fold}/predictions.tsv",
        "mri": mri_records(),
    }
    if "scna" in config["experiments"][wildcards.experiment]["inputs"]:
        inputs["scna"] = f"{RESULTS}/omics/scna.parquet"
    return inputs


def dti_patient_files(wildcards):
    """The patient's DTI files that exist (maps, or dwi + bval + bvec) and its tumor mask: the
    sheet's, else the MRI stage's weak mask and record (a missing file is reported by the
    cohort stage and by the patient's own job)."""
    wanted = patient_images(wildcards.patient, DTI_CHANNELS)
    files = {c: p for c, p in wanted.items() if Path(p).exists()}
    if "mask" not in wanted and wildcards.patient in MRI_PATIENTS:
        folder = f"{RESULTS}/mri/preprocessed/{wildcards.patient}"
        files |= {
            "mri_mask": f"{folder}/mask.nii.gz",
            "mri_record": f"{folder}/preprocess.json",
        }
    return files


def dti_patient_params(wildcards):
    """Every DTI and mask path of ``{patient}`` in the images sheet (JSON)."""
    return canonical(patient_images(wildcards.patient, DTI_CHANNELS))


def dti_records(wildcards=None):
    """Every DTI patient's slice record (``{patient}.json``, beside ``{patient}.npy``)."""
    return expand(f"{RESULTS}/dti/slices/{{patient}}.json", patient=DTI_PATIENTS)
