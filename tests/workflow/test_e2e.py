"""End to end: the whole workflow on the smoke demo cohort, through Snakemake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mmsurv.evaluation.evaluate import METRIC_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
PRED_COLUMNS = ["patient_id", "slide_id", "endpoint", "fold", "split", "risk", "time", "event"]

pytestmark = pytest.mark.e2e


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        SNAKEMAKE,
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "smoke.yaml"),
        *args,
    ]
    res = subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, encoding="utf-8", timeout=1800
    )
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    return res


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """Run the default workflow on the smoke preset once; return the working directory."""
    workdir = tmp_path_factory.mktemp("e2e")
    (workdir / "smoke.yaml").write_text(
        yaml.safe_dump(
            {
                "results": "results",
                "demo": {"preset": "smoke", "folder": "resources/demo"},
                "evaluation": {"bootstrap": 200},
                # small encoder input keeps the CPU extraction of the smoke run short
                "wsi": {"num_workers": 1, "encoders": {"resnet18": {"input_size_px": 64}}},
                # the smallest crop DenseNet-121 takes (5 halvings), and few epochs
                "mri": {
                    "crop_size": [32, 32, 32],
                    "brain_size": [32, 32, 32],
                    "n4": {"iterations": [20, 10]},
                    "weak_labels": {"epochs": 5},
                },
                "dti": {"slice_size": [32, 32]},
                "experiments": {
                    name: {"params": {"epochs": 3}}
                    for name in ("mri_densenet", "mri_clinical_mmnn", "mri_clinical_mmnn_gb")
                }
                | {"mri_clinical_mmnn_gb": {"params": {"epochs": 4, "blend_every": 2}}}
                | {
                    name: {"params": {"epochs": 2, "input_size": [16, 16, 16]}}
                    for name in CLASSIFIERS
                }
                | {"dti_dls": {"params": {"epochs": 2}}},
            }
        )
    )
    _snakemake(workdir, "--cores", "2")
    return workdir


def test_demo_cohort_was_written_by_the_workflow(run):
    assert (run / "resources/demo/smoke-seed0/samples.tsv").is_file()
    assert (run / "resources/demo/smoke-seed0/truth.tsv").is_file()


def test_cohort_and_splits(run):
    cohort = pd.read_csv(run / "results/cohort/cohort.tsv", sep="\t")
    assert {"patient_id", "clinical", "wsi", "mri", "dti", "rna", "scna"} <= set(cohort.columns)
    assert cohort["patient_id"].is_unique and cohort["wsi"].any() and cohort["rna"].any()
    for endpoint in ("os", "pfs"):
        split = pd.read_csv(run / f"results/splits/{endpoint}.tsv", sep="\t")
        assert list(split.columns) == ["patient_id", "fold", "split"]
        assert split["patient_id"].is_unique
        assert set(split["split"]) == {"train", "val", "test"}


CLINICAL = [
    "clinical_small_coxph",
    "clinical_small_rsf",
    "clinical_full_coxph",
    "clinical_full_rsf",
]
SLIDE_LEVEL = ["wsi_abmil", "wsi_rna_average", "wsi_rna_xattn"]
RADIOMICS = ["radiomics_rsf", "radiomics_clinical_rsf", "radiomics_clinical_coxnet"]
MRI_NETS = ["mri_densenet", "mri_clinical_mmnn", "mri_clinical_mmnn_gb"]
CLASSIFIERS = [
    "mri_cnn_idh",
    "mri_mtl_idh",
    "mri_scna_mtl_idh",
    "mri_cnn_idh_brain",
    "mri_mtl_idh_brain",
    "mri_cnn_idh_t1ce",
    "mri_mtl_idh_t1ce",
    "mri_cnn_codel",
    "mri_mtl_codel",
]
SEED4 = ["dti_dls"]
SEED2 = ["scna_coxph", *CLASSIFIERS]
OS_ONLY = [*SEED2, *SEED4]  # overall survival only, as the papers
EXPERIMENTS = [*CLINICAL, "rna_coxnet", "rna_mlp", *SLIDE_LEVEL, *RADIOMICS, *MRI_NETS, *SEED2]
EXPERIMENTS += SEED4
NETWORKS = ["rna_mlp", *SLIDE_LEVEL, *MRI_NETS, *CLASSIFIERS, *SEED4]
SIGNATURE_FIGURES = ["km", "calibration", "decision_curves", "nomogram"]
SIGNATURE_FIGURES += ["nomogram_clinicomolecular"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_predictions_and_metrics(run, experiment):
    preds = pd.read_csv(
        run / f"results/predictions/{experiment}.tsv", sep="\t", keep_default_na=False
    )
    extra = ["label", "score"] if experiment in CLASSIFIERS else []
    assert list(preds.columns) == PRED_COLUMNS + extra
    assert np.isfinite(preds["risk"].astype(float)).all()
    metrics = pd.read_csv(run / f"results/metrics/{experiment}.tsv", sep="\t")
    assert list(metrics.columns) == METRIC_COLUMNS
    test = metrics[metrics["split"] == "test"]
    assert set(test["endpoint"]) == ({"os"} if experiment in OS_ONLY else {"os", "pfs"})
    if experiment in CLASSIFIERS:  # score: probability of the label; AUC on labeled patients
        assert preds["score"].astype(float).between(0, 1).all()
        assert (metrics["n_labeled"] > 0).all() and metrics["auc"].dropna().between(0, 1).all()
        assert metrics.loc[metrics["split"] == "train", "auc"].notna().all()
    subgroups = pd.read_csv(run / f"results/metrics/{experiment}.subgroups.tsv", sep="\t")
    assert set(subgroups["subgroup"]) <= {"IDHwt", "IDHmut-non-codel", "IDHmut-codel"}
    assert len(subgroups) > 0
    assert test["c_index"].between(0, 1).all() and test["c_index_oracle"].between(0, 1).all()
    assert (test["c_index_lo"] <= test["c_index"]).all()
    assert (test["c_index"] <= test["c_index_hi"]).all()
    levels = {"patient", "slide"} if experiment in SLIDE_LEVEL else {"patient"}
    assert set(metrics["level"]) == levels
    assert test.loc[test["level"] == "patient", "ibs"].notna().all()
    patient_rows = preds[preds["slide_id"] == ""]
    assert not patient_rows.duplicated(["patient_id", "endpoint", "fold"]).any()
    if experiment in SLIDE_LEVEL:  # each patient's row is the mean of its slides' risks
        slides = preds[preds["slide_id"] != ""]
        mean = slides.groupby(["patient_id", "endpoint"])["risk"].mean()
        own = patient_rows.set_index(["patient_id", "endpoint"])["risk"]
        assert np.allclose(own.loc[mean.index], mean)
    for name in ("model.joblib", "train_log.json", "survival.parquet"):
        assert (run / f"results/models/{experiment}/fold0/{name}").is_file()


def test_every_slide_is_tiled_with_a_thumbnail_and_encoded(run):
    slides = pd.read_csv(run / "resources/demo/smoke-seed0/slides.tsv", sep="\t")
    qc = pd.read_csv(run / "results/wsi/qc.tsv", sep="\t", keep_default_na=False)
    assert sorted(qc["slide_id"]) == sorted(slides["slide_id"])
    assert (qc["status"] == "ok").all() and (qc["mpp"] == 0.5).all()
    assert set(qc["mpp0"]) == {0.25, 0.5}  # both scan resolutions read at 0.5 um/px
    provenance = pd.read_csv(run / "results/wsi/features/resnet18.tsv", sep="\t")
    assert (provenance["weights"] == "random-init").all()
    assert (
        provenance["n_tiles"].to_numpy()
        == qc.set_index("slide_id").loc[provenance["slide_id"], "n_tiles"].to_numpy()
    ).all()
    for slide_id in slides["slide_id"]:
        assert (run / f"results/wsi/thumbnails/{slide_id}.png").stat().st_size > 0


def test_report(run):
    table = pd.read_csv(run / "results/report/metrics.tsv", sep="\t")
    assert sorted(table["experiment"].unique()) == sorted(EXPERIMENTS)
    html = (run / "results/report/index.html").read_text()
    for experiment in table["experiment"].unique():
        assert experiment in html
    assert "oracle C" in html and "C (WSI)" in html and "C (case)" in html
    assert "randomly initialised network" in html
    # forest, KM per experiment, network curves, 2 attention and 3 Grad-CAM maps, the SCNA
    # UMAP and an integrated-gradients figure per classifier; the signature's figures, its
    # DTI Grad-CAM and the radiogenomics volcano and pathway KM
    figures = 1 + 3 * len(EXPERIMENTS) + len(NETWORKS) + 2 + 3  # + calibration, ROC each
    figures += 1 + len(CLASSIFIERS) + len(SIGNATURE_FIGURES) + 1 + 2
    assert html.count("data:image/png;base64,") == figures
    assert "Signature dti_dls (seed 4)" in html and "Table 1: C-index (95% CI) and AIC" in html
    assert "deep-learning nomogram" in html and "Radiogenomics" in html
    assert "Grad-CAM" in html and "MRI preprocessing" in html
    assert "seed-2 Table I layout" in html and "seed-2 Table II layout" in html
    assert "Integrated gradients of the subtype classifiers" in html
    assert "Scans without a tumor mask got a weak mask" in html
    for fmt in ("All (cropped)", "All (whole brain)", "T1ce (cropped)"):
        assert fmt in html


def test_run_record_names_the_config_seed_and_commit(run):
    record = json.loads((run / "results/run/record.json").read_text())
    assert record["seeds"]["seed"] == 0 and record["seeds"]["demo_cohort"] == 0
    commit = record["git"]["commit"]
    assert commit == "unknown" or (len(commit) == 40 and int(commit, 16) >= 0)
    assert record["packages"]["snakemake"] != "not installed"
    assert "--configfile" in record["invocation"]["command"]
    used = yaml.safe_load((run / "results/run/config.yaml").read_text())
    assert used["demo"]["preset"] == "smoke" and used["evaluation"]["bootstrap"] == 200
    html = (run / "results/report/index.html").read_text()
    assert "Reproducibility" in html and commit in html


def test_every_imaged_patient_is_preprocessed_with_a_montage(run):
    images = pd.read_csv(run / "resources/demo/smoke-seed0/images.tsv", sep="\t")
    patients = sorted(images["patient_id"].unique())
    masked = set(images.loc[images["channel"] == "mask", "patient_id"])
    assert 0 < len(masked) < len(patients)  # the demo withholds some masks
    qc = pd.read_csv(run / "results/mri/qc.tsv", sep="\t", keep_default_na=False)
    assert sorted(qc["patient_id"]) == patients and (qc["status"] == "ok").all()
    for pid in patients:
        folder = run / f"results/mri/preprocessed/{pid}"
        for name in ("t1", "t1ce", "t2", "flair", "mask", "head_mask"):
            assert (folder / f"{name}.nii.gz").stat().st_size > 0
        key = "mask" if pid in masked else "weak_mask"  # weak labels for the mask-less scans
        with np.load(folder / "crop.npz") as crop, np.load(folder / "brain.npz") as brain:
            assert crop["t1ce"].shape == (32, 32, 32) and crop[key].any()
            assert brain["t1ce"].shape == (32, 32, 32) and brain[key].any()
        record = json.loads((folder / "preprocess.json").read_text())
        assert record["mask_source"] == ("ground_truth" if pid in masked else "weak_network")
        assert (run / f"results/mri/qc/{pid}.png").stat().st_size > 0
    assert set(qc.loc[qc["mask_source"] == "weak_network", "patient_id"]) == set(patients) - masked
    segmenter = json.loads((run / "results/mri/weak/segmenter.json").read_text())
    assert set(segmenter["train_patients"]) | set(segmenter["val_patients"]) == masked
    radiomics = pd.read_parquet(run / "results/mri/radiomics.parquet")
    assert sorted(radiomics.index) == patients
    assert {c.split("_")[0] for c in radiomics.columns} == {"t1ce", "t2"}
    assert radiomics.shape[1] > 150  # about 100 per sequence


def test_every_dti_patient_has_16_slices_from_given_or_fitted_maps(run):
    images = pd.read_csv(run / "resources/demo/smoke-seed0/images.tsv", sep="\t")
    chans = images.groupby("patient_id")["channel"].agg(set)
    raw = {p for p, c in chans.items() if {"dwi", "bval", "bvec"} <= c}
    given = {p for p, c in chans.items() if {"fa", "md", "ad", "rd"} <= c}
    masked = {p for p, c in chans.items() if "mask" in c}
    assert raw and given and not raw & given  # the demo ships raw DWI for a few patients
    qc = pd.read_csv(run / "results/dti/qc.tsv", sep="\t", keep_default_na=False)
    assert sorted(qc["patient_id"]) == sorted(raw | given) and (qc["status"] == "ok").all()
    qc = qc.set_index("patient_id")
    assert set(qc.index[qc["map_source"] == "tensor_fit"]) == raw
    weak = set(qc.index[qc["mask_source"] == "weak_network"])
    assert weak == (raw | given) - masked  # the MRI stage's weak masks
    for pid in qc.index:
        stack = np.load(run / f"results/dti/slices/{pid}.npy")
        assert stack.shape == (16, 32, 32) and np.isfinite(stack).all()
        record = json.loads((run / f"results/dti/slices/{pid}.json").read_text())
        z0, z1 = record["box"]["z"]
        assert len(record["slices"]) == 4 and all(z0 <= z < z1 for z in record["slices"])
        assert (run / f"results/dti/qc/{pid}.png").stat().st_size > 0
    # the tensor fit gives back the demo's tumour FA range (0.12-0.42)
    assert qc.loc[sorted(raw), "fa_mean"].astype(float).between(0.05, 0.5).all()


def test_signature_analysis_of_the_dls(run):
    folder = run / "results/signature/dti_dls"
    groups = pd.read_csv(folder / "groups.tsv", sep="\t")
    cutoff = groups["cutoff"].iloc[0]
    train = groups.loc[groups["split"] == "train", "dls"]
    assert train.quantile(0.1) <= cutoff <= train.quantile(0.9)  # X-tile range, training only
    assert ((groups["dls"] >= cutoff) == (groups["group"] == "high")).all()
    t1 = pd.read_csv(folder / "table1.tsv", sep="\t")
    models = {"DLS", "clinicomolecular nomogram", "deep-learning nomogram"}
    assert models <= set(t1["model"]) and "oracle (true risk)" in set(t1["model"])
    assert set(t1.loc[t1["model"].isin(models), "split"]) == {"train", "val", "test"}
    assert t1.loc[(t1["model"].isin(models)) & (t1["split"] == "train"), "aic"].notna().all()
    hr = pd.read_csv(folder / "multivariable.tsv", sep="\t")
    assert "dls" in set(hr["covariate"]) and {"age", "kps"} <= set(hr["covariate"])
    for name in ("risk_groups.tsv", "nri.tsv", "decision_curves.tsv"):
        assert len(pd.read_csv(folder / name, sep="\t")) > 0
    for name in SIGNATURE_FIGURES:
        assert (folder / f"{name}.png").stat().st_size > 0
    summary = json.loads((folder / "radiogenomics/summary.json").read_text())
    assert summary["splits"] == ["val", "test"] and summary["n_patients"] > 0
    assert (run / "results/report/figures/dti_dls.dti_cam.png").stat().st_size > 0


def test_scna_matrix_umap_and_pca_without_validation_or_test_patients(run):
    import joblib

    scna = pd.read_parquet(run / "results/omics/scna.parquet")
    samples = pd.read_csv(run / "resources/demo/smoke-seed0/samples.tsv", sep="\t")
    extras = set(scna.index) - set(samples["patient_id"])
    assert extras  # the SCNA-only patients are kept for the PCA and the UMAP
    umap = pd.read_csv(run / "results/omics/scna_umap.tsv", sep="\t")
    assert sorted(umap["patient_id"]) == sorted(scna.index)
    split = pd.read_csv(run / "results/splits/os.tsv", sep="\t").set_index("patient_id")
    for name in ("scna_coxph", "mri_scna_mtl_idh"):
        model = joblib.load(run / f"results/models/{name}/fold0/model.joblib")["os"]
        fitted = set(model.pca_.fitted_ids_)
        assert not fitted & set(split.index[split["split"] != "train"])
        assert extras <= fitted  # pca_extra: true, as the paper


def test_gradient_blending_weights_are_logged(run):
    log = json.loads((run / "results/models/mri_clinical_mmnn_gb/fold0/train_log.json").read_text())
    history = pd.DataFrame(log["endpoints"]["os"]["model"]["history"])
    weights = history[["w_mm", "w_image", "w_clinical"]]
    assert np.allclose(weights.sum(axis=1), 1.0)
    assert np.allclose(weights.iloc[:2], 1 / 3)  # uniform until the first update (epoch 2)
    assert np.allclose(weights.iloc[2], weights.iloc[3])  # constant between updates
    plain = json.loads((run / "results/models/mri_clinical_mmnn/fold0/train_log.json").read_text())
    plain_history = pd.DataFrame(plain["endpoints"]["os"]["model"]["history"])
    assert plain_history.get("w_mm", pd.Series([None])).isna().all()  # no blending


def test_rerun_is_a_no_op_and_one_stage_can_be_forced(run):
    assert "Nothing to be done" in _snakemake(run, "--cores", "2", "-n").stdout
    forced = _snakemake(
        run, "--cores", "2", "-n", "--forcerun", "train", "--until", "evaluate"
    ).stdout
    assert "train" in forced and "evaluate" in forced and "report " not in forced
    assert "cohort " not in forced


def test_editing_a_clinical_set_reruns_exactly_its_experiments(run):
    cohort = yaml.safe_load((run / "resources/demo/smoke-seed0/config.yaml").read_text())
    cohort["clinical"]["sets"]["small"] = ["age", "grade"]
    edited = yaml.safe_load((run / "smoke.yaml").read_text()) | cohort
    (run / "edited.yaml").write_text(yaml.safe_dump(edited))
    res = _snakemake(run, "-n", "--configfile", str(run / "edited.yaml"))
    planned = res.stdout + res.stderr
    assert planned.count("rule train:") == 2, planned[-3000:]
    assert "rule tile:" not in planned and "rule extract:" not in planned
    assert "models/clinical_small_coxph/fold0" in planned
    assert "models/clinical_small_rsf/fold0" in planned
    assert "models/clinical_full_coxph/fold0" not in planned
    assert "rule cohort:" not in planned and "rule splits:" not in planned


def test_snakemake_report(run):
    _snakemake(run, "--report", "results/report.html")
    assert (run / "results/report.html").stat().st_size > 10_000


def _bad_slide_config(run: Path, on_error: str) -> Path:
    """The smoke cohort with a three-slide sheet whose middle slide is not a slide at all."""
    folder = run / "resources/demo/smoke-seed0"
    cohort = yaml.safe_load((folder / "config.yaml").read_text())
    slides = pd.read_csv(folder / "slides.tsv", sep="\t", dtype=str, keep_default_na=False)
    three = slides.iloc[:3].copy()
    bad = run / "corrupt.svs"
    bad.write_bytes(bytes(range(256)) * 64)
    three["path"] = [
        str(folder / three["path"].iloc[0]),
        str(bad),
        str(folder / three["path"].iloc[2]),
    ]
    sheet = run / f"slides_{on_error}.tsv"
    three.to_csv(sheet, sep="\t", index=False)
    cohort["cohort"]["slides"] = str(sheet)
    cfg = run / f"bad_{on_error}.yaml"
    cfg.write_text(
        yaml.safe_dump(cohort | {"results": f"results_{on_error}", "wsi": {"on_error": on_error}})
    )
    return cfg


def _bad_slide_run(run: Path, on_error: str) -> subprocess.CompletedProcess:
    """Tile the three-slide cohort of :func:`_bad_slide_config` (``--keep-going``)."""
    cfg = _bad_slide_config(run, on_error)
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(run)]
    cmd += ["--configfile", str(run / "smoke.yaml"), str(cfg), "--cores", "2", "--keep-going"]
    return subprocess.run(
        [*cmd, f"results_{on_error}/wsi/qc.tsv"],
        cwd=run,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=600,
    )


def test_unreadable_slide_is_skipped_and_listed_when_configured(run):
    res = _bad_slide_run(run, "skip")
    assert res.returncode == 0, res.stderr[-3000:]
    qc = pd.read_csv(run / "results_skip/wsi/qc.tsv", sep="\t", keep_default_na=False)
    assert qc["status"].tolist() == ["ok", "skipped", "ok"]
    assert "corrupt.svs" in qc.loc[1, "reason"]


def test_unreadable_slide_fails_only_its_own_job(run):
    res = _bad_slide_run(run, "fail")
    assert res.returncode != 0
    slides = pd.read_csv(run / "slides_fail.tsv", sep="\t")
    good, bad = slides["slide_id"].iloc[[0, 2]], slides["slide_id"].iloc[1]
    for slide_id in good:
        assert (run / f"results_fail/wsi/tiles/{slide_id}.h5").is_file()
    assert not (run / f"results_fail/wsi/tiles/{bad}.h5").exists()
    log = (run / f"results_fail/logs/wsi/tile/{bad}.log").read_text()
    assert "corrupt.svs" in log and "cannot open slide" in log


def test_features_made_by_clam_are_used_in_place_of_extraction(run):
    """A folder of CLAM-layout files ({slide_id}.h5: features (1, N, D), coords) replaces our
    extraction for an encoder: no extract job runs and the model trains on those files."""
    import h5py

    clam = run / "clam_features"
    clam.mkdir()
    for ours in sorted((run / "results/wsi/features/resnet18").glob("*.h5")):
        with h5py.File(ours) as src, h5py.File(clam / ours.name, "w") as dst:
            dst["features"] = src["features"][()][None]  # CLAM's batch axis
            coords = dst.create_dataset("coords", data=src["coords"][()])
            coords.attrs["patch_level"] = 0
            coords.attrs["patch_size"] = 256
    cfg = run / "clam.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "results": "results_clam",
                "wsi": {"encoders": {"resnet18": {"precomputed": str(clam)}}},
            }
        )
    )
    target = "results_clam/models/wsi_abmil/fold0/predictions.tsv"
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(run), target]
    cmd += ["--cores", "2", "--configfile", str(run / "smoke.yaml"), str(cfg)]
    res = subprocess.run(
        cmd, cwd=run, capture_output=True, text=True, encoding="utf-8", timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rule extract" not in res.stdout + res.stderr
    assert not (run / "results_clam/wsi/features").exists()
    log = json.loads((run / "results_clam/models/wsi_abmil/fold0/train_log.json").read_text())
    assert log["endpoints"]["os"]["units"] > 0


def _bad_mask_run(run: Path, on_error: str) -> subprocess.CompletedProcess:
    """Preprocess three smoke patients whose second one has a mask of another geometry."""
    import SimpleITK as sitk

    folder = run / "resources/demo/smoke-seed0"
    cohort = yaml.safe_load((folder / "config.yaml").read_text())
    images = pd.read_csv(folder / "images.tsv", sep="\t", dtype=str)
    three = sorted(images.loc[images["channel"] == "mask", "patient_id"].unique())[:3]
    images = images[images["patient_id"].isin(three)].copy()
    images["path"] = [str(folder / p) for p in images["path"]]
    bad_row = (images["patient_id"] == three[1]) & (images["channel"] == "mask")
    mask = sitk.ReadImage(images.loc[bad_row, "path"].iloc[0])
    mask.SetSpacing([2 * s for s in mask.GetSpacing()])  # same voxels, twice the extent
    bad = run / f"shifted_mask_{on_error}.nii.gz"
    sitk.WriteImage(mask, str(bad))
    images.loc[bad_row, "path"] = str(bad)
    sheet = run / f"images_{on_error}.tsv"
    images.to_csv(sheet, sep="\t", index=False)
    cohort["cohort"]["images"] = str(sheet)
    cfg = run / f"bad_mri_{on_error}.yaml"
    results = f"results_mri_{on_error}"
    cfg.write_text(yaml.safe_dump(cohort | {"results": results, "mri": {"on_error": on_error}}))
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(run)]
    cmd += ["--configfile", str(run / "smoke.yaml"), str(cfg), "--cores", "2", "--keep-going"]
    return subprocess.run(
        [*cmd, f"{results}/mri/qc.tsv"],
        cwd=run,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=600,
    )


def test_mask_of_another_geometry_is_skipped_and_listed_when_configured(run):
    res = _bad_mask_run(run, "skip")
    assert res.returncode == 0, res.stderr[-3000:]
    qc = pd.read_csv(run / "results_mri_skip/mri/qc.tsv", sep="\t", keep_default_na=False)
    assert qc["status"].tolist() == ["ok", "skipped", "ok"]
    assert "shifted_mask_skip.nii.gz" in qc.loc[1, "reason"]


def test_mask_of_another_geometry_fails_only_its_own_job(run):
    res = _bad_mask_run(run, "fail")
    assert res.returncode != 0
    patients = sorted(pd.read_csv(run / "images_fail.tsv", sep="\t")["patient_id"].unique())
    for pid in (patients[0], patients[2]):
        assert (run / f"results_mri_fail/mri/preprocessed/{pid}/crop.npz").is_file()
    assert not (run / f"results_mri_fail/mri/preprocessed/{patients[1]}/crop.npz").exists()
    log = (run / f"results_mri_fail/logs/mri/preprocess/{patients[1]}.log").read_text()
    assert f"patient {patients[1]}" in log and "shifted_mask_fail.nii.gz" in log
