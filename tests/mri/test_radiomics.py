"""Radiomics: PyRadiomics features per sequence, naming, errors, per-patient files and merge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from mmsurv.mri.radiomics import (
    extract_patient,
    merge_patient_features,
    radiomics_table,
    read_patient_features,
    read_radiomics,
    tumor_binary_mask,
    write_patient_features,
    write_radiomics,
)

PARAMS = Path(__file__).resolve().parents[2] / "config" / "radiomics.yaml"
N = 24  # voxels per side, 1 mm
SEQUENCES = ["t1ce", "t2"]
#: Feature classes config/radiomics.yaml documents, with PyRadiomics' 3D feature counts.
CLASSES = {
    "firstorder": 18,
    "shape": 14,
    "glcm": 24,
    "glrlm": 16,
    "glszm": 16,
    "gldm": 14,
    "ngtdm": 5,
}


def _image(array: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing((1.0, 1.0, 1.0))
    return img


def _patient(radius_mm: float, seed: int = 0) -> tuple[dict[str, sitk.Image], sitk.Image]:
    """Two z-scored-like textured sequences and a BraTS mask with a sphere tumour."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:N, :N, :N] - (N - 1) / 2
    r = np.sqrt(x**2 + y**2 + z**2)
    tumor = r <= radius_mm
    images = {}
    for k, seq in enumerate(SEQUENCES):
        texture = rng.normal(0.0, 0.6, (N, N, N)) + 0.5 * np.sin(x / (1.5 + k))
        images[seq] = _image((texture + 1.5 * tumor).astype(np.float32))
    labels = np.zeros((N, N, N), np.uint8)
    labels[tumor] = 2  # edema
    labels[r <= radius_mm / 2] = 4  # enhancing core
    return images, _image(labels)


@pytest.fixture(scope="module")
def features() -> pd.Series:
    images, mask = _patient(7.0)
    return extract_patient("P1", images, mask, PARAMS, SEQUENCES)


def test_columns_are_sequence_feature_and_finite(features):
    assert features.name == "P1"
    assert features.dtype == float
    assert np.isfinite(features.to_numpy()).all()
    assert not any("diagnostics" in c for c in features.index)
    for seq in SEQUENCES:
        cols = [c for c in features.index if c.startswith(f"{seq}_original_")]
        assert len(cols) == sum(CLASSES.values()) == 107
        assert f"{seq}_original_glcm_Contrast" in cols
        assert f"{seq}_original_shape_MeshVolume" in cols
    assert len(features) == 2 * 107
    # the mask's shape is the same for both sequences
    assert features["t1ce_original_shape_MeshVolume"] == features["t2_original_shape_MeshVolume"]


def test_larger_tumor_has_larger_mesh_volume(features):
    images, mask = _patient(9.0)
    big = extract_patient("P2", images, mask, PARAMS, ["t2"])
    assert list(big.index) == [c for c in features.index if c.startswith("t2_")]
    assert big["t2_original_shape_MeshVolume"] > features["t2_original_shape_MeshVolume"]
    # a sphere of radius 9 mm: about 4/3 pi 9^3 = 3054 mm^3
    assert big["t2_original_shape_MeshVolume"] == pytest.approx(4 / 3 * np.pi * 9**3, rel=0.1)


def test_files_are_read_and_empty_mask_names_patient_and_file(tmp_path):
    images, mask = _patient(5.0)
    paths = {}
    for seq, img in images.items():
        paths[seq] = tmp_path / f"{seq}.nii.gz"
        sitk.WriteImage(img, str(paths[seq]))
    empty = tmp_path / "mask.nii.gz"
    sitk.WriteImage(_image(np.zeros((N, N, N), np.uint8)), str(empty))
    with pytest.raises(ValueError, match=r"patient P7.*mask\.nii\.gz.*empty"):
        extract_patient("P7", paths, empty, PARAMS, SEQUENCES)
    with pytest.raises(ValueError, match=r"patient P7.*flair"):
        extract_patient("P7", paths, mask, PARAMS, ["flair"])


def test_failing_extraction_names_patient_sequence_and_file(tmp_path):
    images, mask = _patient(5.0)
    path = tmp_path / "t2.nii.gz"
    # a grid the mask does not fit (other origin, far away): PyRadiomics cannot use the ROI
    shifted = sitk.Image(images["t2"])
    shifted.SetOrigin((500.0, 500.0, 500.0))
    sitk.WriteImage(shifted, str(path))
    with pytest.raises(ValueError, match=r"patient P3, sequence t2: .*t2\.nii\.gz"):
        extract_patient("P3", {"t2": path}, mask, PARAMS, ["t2"])


@pytest.mark.parametrize(
    ("labels", "expected"),
    [((1, 2, 4), [0, 1, 1, 0, 1]), ((4,), [0, 0, 0, 0, 1]), ((1,), [0, 1, 0, 0, 0])],
)
def test_tumor_binary_mask(labels, expected):
    mask = _image(np.array([[[0, 1, 2, 3, 4]]], np.uint8))
    mask.SetOrigin((1.0, 2.0, 3.0))
    out = tumor_binary_mask(mask, labels)
    assert out.GetPixelID() == sitk.sitkUInt8
    assert out.GetOrigin() == mask.GetOrigin()
    assert sitk.GetArrayFromImage(out).ravel().tolist() == expected


def test_binary_mask_input_gives_itself():
    mask = _image(np.array([[[0, 1, 1, 0]]], np.uint8))
    assert sitk.GetArrayFromImage(tumor_binary_mask(mask)).ravel().tolist() == [0, 1, 1, 0]


def test_patient_files_round_trip_and_merge(tmp_path, features):
    other = features.rename("P0") * 2.0
    paths = [tmp_path / "P1.tsv", tmp_path / "P0.tsv"]
    write_patient_features(features, paths[0])
    write_patient_features(other, paths[1])
    back = read_patient_features(paths[0])
    assert back.name == "P1"
    pd.testing.assert_series_equal(back, features, check_index_type=False)
    table = merge_patient_features(paths)
    assert table.shape == (2, len(features))
    assert list(table.index) == ["P1", "P0"] and table.index.name == "patient_id"
    # stable column order: sequences in order, then feature names sorted
    t1ce = [c for c in table.columns if c.startswith("t1ce_")]
    assert list(table.columns) == t1ce + [c for c in table.columns if c.startswith("t2_")]
    assert t1ce == sorted(t1ce)
    out = tmp_path / "radiomics.parquet"
    write_radiomics(table, out)
    assert not list(tmp_path.glob(".*.tmp"))
    pd.testing.assert_frame_equal(read_radiomics(out), table)


def test_table_orders_sequences_and_rejects_duplicates():
    a = pd.Series({"t2_original_glcm_Id": 1.0, "t1_ce_original_shape_Sphericity": 2.0}, name="A")
    b = pd.Series({"t1_ce_original_firstorder_Mean": 3.0}, name="B")
    table = radiomics_table([a, b], sequences=["t1_ce", "t2"])
    assert list(table.columns) == [
        "t1_ce_original_firstorder_Mean",
        "t1_ce_original_shape_Sphericity",
        "t2_original_glcm_Id",
    ]
    assert np.isnan(table.loc["B", "t2_original_glcm_Id"])
    with pytest.raises(ValueError, match="more than one"):
        radiomics_table([a, a])


@pytest.mark.filterwarnings("ignore:.*load_module:DeprecationWarning")  # pykwalify
def test_parameter_file_parses_and_enables_the_documented_classes():
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    extractor = RadiomicsFeatureExtractor(str(PARAMS))
    assert set(extractor.enabledFeatures) == set(CLASSES)
    assert all(not v for v in extractor.enabledFeatures.values())  # every feature of a class
    assert set(extractor.enabledImagetypes) == {"Original"}
    settings = extractor.settings
    assert settings["normalize"] is False and settings["label"] == 1
    assert settings["resampledPixelSpacing"] is None and settings["correctMask"] is True
    assert 0 < settings["binWidth"] <= 0.25 and settings["geometryTolerance"] < 1e-2
    # every key is commented in the file
    raw = yaml.safe_load(PARAMS.read_text())
    text = PARAMS.read_text()
    for key in list(raw["setting"]) + list(raw["featureClass"]):
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{key}:"))
        index = text.splitlines().index(line)
        above = text.splitlines()[index - 1].strip()
        assert "#" in line or above.startswith("#"), key
