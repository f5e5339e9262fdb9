"""The MRI stage: a patient's job (ok, failed, skipped), the QC table, radiomics rows, crops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from mmsurv.mri.io import VolumeError
from mmsurv.mri.stage import (
    merge_radiomics,
    preprocess_one_patient,
    qc_table,
    radiomics_one_patient,
    read_record,
    train_weak_segmenter,
    usable_crops,
)

ROOT = Path(__file__).resolve().parents[2]
SEQUENCES = ["t1", "t1ce", "t2", "flair"]


def _mri_config(on_error: str = "fail", weak: bool = False, folder: str | None = None) -> dict:
    return {
        "sequences": SEQUENCES,
        "reference": ["t1ce", "t1"],
        "orientation": "LPS",
        "spacing_mm": None,
        "n4": {"enabled": True, "shrink_factor": 2, "iterations": [10, 10]},
        "tumor_labels": [1, 2, 4],
        "mask_tolerance_mm": 1.0,
        "margin_mm": 6.0,
        "crop_size": [16, 16, 16],
        "brain_size": [16, 16, 16],
        "subtraction": True,
        "on_error": on_error,
        "weak_labels": {"enabled": weak, "folder": folder, "channels": SEQUENCES, "epochs": 30},
        "radiomics": {"params": str(ROOT / "config/radiomics.yaml"), "sequences": ["t1ce", "t2"]},
    }


@pytest.fixture(scope="module")
def two_patients(tmp_path_factory, mri_study) -> tuple[Path, list[Path]]:
    """P1 preprocessed, P2 skipped (no mask); returns the results folder and the records."""
    root = tmp_path_factory.mktemp("mri")
    records = []
    for pid, drop_mask in (("P1", False), ("P2", True)):
        files = mri_study(root / "inputs" / pid, seed=len(records))
        if drop_mask:
            files.pop("mask")
        out = root / "preprocessed" / pid
        ok = preprocess_one_patient(
            _mri_config("skip"), pid, files, out, root / "qc" / f"{pid}.png"
        )
        assert ok is not drop_mask
        records.append(out / "preprocess.json")
    return root, records


def test_a_preprocessed_patient_has_every_output(two_patients):
    root, records = two_patients
    out = records[0].parent
    for name in [*SEQUENCES, "t1ce_t1", "mask", "head_mask"]:
        assert sitk.ReadImage(str(out / f"{name}.nii.gz")).GetSize() == (32, 32, 32)
    with np.load(out / "crop.npz") as crop:
        assert sorted(crop.files) == sorted([*SEQUENCES, "t1ce_t1", "mask"])
        assert crop["t2"].shape == (16, 16, 16)
    record = json.loads(records[0].read_text())
    assert record["status"] == "ok" and record["reference"] == "t1ce"
    assert (root / "qc" / "P1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_mask_fails_the_job_naming_the_patient(tmp_path, mri_study):
    files = mri_study(tmp_path / "in", seed=3)
    files.pop("mask")
    with pytest.raises(VolumeError, match="patient P9.*mask"):
        preprocess_one_patient(_mri_config("fail"), "P9", files, tmp_path / "o", tmp_path / "q.png")


def test_missing_sequence_fails_naming_patient_and_sequence(tmp_path, mri_study):
    files = mri_study(tmp_path / "in", seed=4)
    files.pop("t2")
    with pytest.raises(VolumeError, match="P8.*t2"):
        preprocess_one_patient(_mri_config("fail"), "P8", files, tmp_path / "o", tmp_path / "q.png")


def test_a_skipped_patient_is_listed_and_left_out(two_patients):
    root, records = two_patients
    skipped = json.loads(records[1].read_text())
    assert skipped["status"] == "skipped" and "mask" in skipped["reason"]
    qc = qc_table(records).set_index("patient_id")
    assert qc.loc["P2", "status"] == "skipped" and "mask" in qc.loc["P2", "reason"]
    assert qc.loc["P1", "status"] == "ok"
    assert qc.loc["P1", "cv_after_t1"] < qc.loc["P1", "cv_before_t1"]  # N4 flattened the bias
    assert list(usable_crops(records)) == ["P1"]


def test_radiomics_rows_merge_without_skipped_patients(two_patients, tmp_path):
    _, records = two_patients
    rows = []
    for record in records:
        pid = record.parent.name
        rows.append(tmp_path / f"{pid}.tsv")
        radiomics_one_patient(_mri_config("skip"), pid, record, rows[-1])
    table = merge_radiomics(rows, tmp_path / "radiomics.parquet")
    back = pd.read_parquet(tmp_path / "radiomics.parquet")
    assert list(back.index) == ["P1"] and table.shape == back.shape
    assert {c.split("_")[0] for c in back.columns} == {"t1ce", "t2"}
    assert "t2_original_shape_MeshVolume" in back.columns


def test_weak_labels_from_a_folder(tmp_path, mri_study):
    files = mri_study(tmp_path / "in", seed=5)
    folder = tmp_path / "weak"
    folder.mkdir()
    Path(files.pop("mask")).rename(folder / "P5.nii.gz")
    config = _mri_config("fail", weak=True, folder=str(folder))
    out = tmp_path / "out" / "P5"
    assert preprocess_one_patient(config, "P5", files, out, tmp_path / "P5.png")
    assert read_record(out / "preprocess.json")["mask_source"] == "weak_file"
    with pytest.raises(VolumeError, match="P6.*weak mask file not found"):
        preprocess_one_patient(config, "P6", files, tmp_path / "o6", tmp_path / "P6.png")


def test_weak_labels_from_the_segmentation_network(tmp_path, mri_study):
    """Patients with masks train the segmenter on their whole-brain input; a patient without
    one gets its weak mask from it, and the weak mask finds the tumour."""
    config = _mri_config("fail", weak=True)
    records = []
    for k in range(4):
        files = mri_study(tmp_path / "in" / f"M{k}", seed=10 + k)
        out = tmp_path / "pre" / f"M{k}"
        preprocess_one_patient(config, f"M{k}", files, out, tmp_path / f"M{k}.png")
        records.append(out / "preprocess.json")
    meta = train_weak_segmenter(
        config, records, tmp_path / "seg.pt", tmp_path / "seg.json", seed=0, threads=1
    )
    assert sorted(meta["train_patients"] + meta["val_patients"]) == ["M0", "M1", "M2", "M3"]
    assert json.loads((tmp_path / "seg.json").read_text())["channels"] == SEQUENCES
    files = mri_study(tmp_path / "in" / "U", seed=20)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(files.pop("mask"))) > 0
    out = tmp_path / "pre" / "U"
    preprocess_one_patient(config, "U", files, out, tmp_path / "U.png", tmp_path / "seg.pt")
    record = read_record(out / "preprocess.json")
    assert record["mask_source"] == "weak_network"
    weak = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "mask.nii.gz"))) > 0
    assert 2 * (weak & truth).sum() / (weak.sum() + truth.sum()) > 0.5
    assert list(usable_crops([*records, out / "preprocess.json"], "brain"))[-1] == "U"
