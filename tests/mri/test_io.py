"""Reading and writing volumes: formats, DICOM series, masks and the errors they raise."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mmsurv.mri.io import VolumeError, read_mask, read_volume, volume_suffix, write_volume

PATIENT = "TCGA-AB-0001"
DIRECTION_LPS_FLIP = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def _volume(shape_zyx=(6, 7, 8), dtype=np.float32, seed=0) -> sitk.Image:
    """A small random image with non-trivial spacing, origin and direction."""
    rng = np.random.default_rng(seed)
    array = (rng.random(shape_zyx) * 1000).astype(dtype)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.9, 1.1, 2.5))
    image.SetOrigin((10.0, -20.5, 3.25))
    image.SetDirection(DIRECTION_LPS_FLIP)
    return image


def _assert_same(a: sitk.Image, b: sitk.Image) -> None:
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)


def _uid() -> str:
    """A DICOM UID under the 2.25 (UUID) root."""
    return f"2.25.{uuid.uuid4().int}"


def write_dicom_series(image: sitk.Image, folder: Path, series_uid: str | None = None) -> None:
    """Write an int16 3-D image as one DICOM file per axial slice, with per-slice tags."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or _uid()
    study_uid = _uid()
    d = image.GetDirection()
    orientation = "\\".join(f"{v:.6f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    common = {
        "0008|0060": "MR",
        "0008|0008": "DERIVED\\SECONDARY",
        "0020|000d": study_uid,
        "0020|000e": series_uid,
        "0020|0037": orientation,
        "0008|103e": "synthetic T1",
        "0018|0050": f"{image.GetSpacing()[2]:.6f}",
        "0010|0020": PATIENT,
    }
    for k in range(image.GetDepth()):
        slice_k = image[:, :, k]
        for tag, value in common.items():
            slice_k.SetMetaData(tag, value)
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        slice_k.SetMetaData("0020|0032", "\\".join(f"{v:.6f}" for v in position))
        slice_k.SetMetaData("0020|0013", str(k + 1))
        slice_k.SetMetaData("0008|0018", _uid())
        writer.SetFileName(str(folder / f"slice{series_uid[-6:]}_{k:03d}.dcm"))
        writer.Execute(slice_k)


@pytest.mark.parametrize("name", ["t1.nii.gz", "t1.nii", "t1.nrrd", "t1.mha", "t1.mhd"])
def test_round_trip_keeps_voxels_and_geometry(tmp_path: Path, name: str) -> None:
    image = _volume()
    path = tmp_path / "deep" / "folder" / name
    write_volume(image, path)
    back = read_volume(path, PATIENT)
    assert back.GetPixelID() == sitk.sitkFloat32
    _assert_same(back, image)
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_write_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "t1.nii.gz"
    write_volume(_volume(seed=1), path)
    write_volume(_volume(seed=2), path)
    _assert_same(read_volume(path), _volume(seed=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t1.nii.gz"]


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("a.nii.gz", ".nii.gz"), ("A.NII.GZ", ".nii.gz"), ("b.nrrd", ".nrrd"), ("c.mha", ".mha")],
)
def test_volume_suffix(name: str, suffix: str) -> None:
    assert volume_suffix(name) == suffix


def test_write_without_suffix_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="suffix"):
        write_volume(_volume(), tmp_path / "noext")


def test_int16_volume_is_read_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "t2.nii.gz"
    write_volume(_volume(dtype=np.int16), path)
    back = read_volume(path)
    assert back.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(_volume(dtype=np.int16))
    )


def test_dicom_series_is_read_from_its_folder(tmp_path: Path) -> None:
    image = _volume((5, 6, 7), dtype=np.int16)
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    write_dicom_series(image, tmp_path / "series")
    back = read_volume(tmp_path / "series", PATIENT)
    assert back.GetPixelID() == sitk.sitkFloat32
    assert back.GetSize() == image.GetSize()
    _assert_same(back, sitk.Cast(image, sitk.sitkFloat32))


def test_dicom_series_with_flipped_direction(tmp_path: Path) -> None:
    image = _volume((4, 5, 6), dtype=np.int16)  # x and y flipped (RAS-like axes)
    write_dicom_series(image, tmp_path / "series")
    back = read_volume(tmp_path / "series")
    _assert_same(back, sitk.Cast(image, sitk.sitkFloat32))


@pytest.mark.parametrize("content", ["empty", "not_dicom"])
def test_folder_without_dicom_series_names_patient_and_folder(tmp_path: Path, content) -> None:
    folder = tmp_path / "flair_dicom"
    folder.mkdir()
    if content == "not_dicom":
        (folder / "notes.txt").write_text("no images here")
    with pytest.raises(VolumeError, match="no DICOM series") as info:
        read_volume(folder, PATIENT)
    assert PATIENT in str(info.value)
    assert str(folder) in str(info.value)
    assert info.value.patient_id == PATIENT and info.value.path == folder


def test_folder_with_two_series_is_an_error(tmp_path: Path) -> None:
    image = _volume((3, 4, 5), dtype=np.int16)
    write_dicom_series(image, tmp_path / "mixed", series_uid=_uid())
    write_dicom_series(image, tmp_path / "mixed", series_uid=_uid())
    with pytest.raises(VolumeError, match="2 DICOM series") as info:
        read_volume(tmp_path / "mixed", PATIENT)
    assert PATIENT in str(info.value)


@pytest.mark.parametrize("reader", [read_volume, read_mask])
def test_missing_file_names_patient_and_file(tmp_path: Path, reader) -> None:
    path = tmp_path / "nowhere" / "t1ce.nii.gz"
    with pytest.raises(VolumeError, match="not found") as info:
        reader(path, PATIENT)
    assert PATIENT in str(info.value) and str(path) in str(info.value)


def test_unreadable_file_names_patient_and_file(tmp_path: Path) -> None:
    path = tmp_path / "t1.nii.gz"
    path.write_bytes(b"this is not a NIfTI file at all")
    with pytest.raises(VolumeError, match="cannot read") as info:
        read_volume(path, PATIENT)
    assert PATIENT in str(info.value) and str(path) in str(info.value)


def test_error_without_patient_names_the_file() -> None:
    err = VolumeError("broken", "/data/x.nii.gz")
    assert str(err) == "file /data/x.nii.gz: broken"
    assert str(VolumeError("broken", None, "P1")) == "patient P1: broken"


def test_two_dimensional_image_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "slice.nrrd"
    sitk.WriteImage(sitk.Image(5, 6, sitk.sitkFloat32), str(path))
    with pytest.raises(VolumeError, match="3-D"):
        read_volume(path, PATIENT)


def test_non_finite_volume_is_rejected(tmp_path: Path) -> None:
    """NRRD keeps NaN (ITK's NIfTI reader turns NaN into 0, so NIfTI cannot carry one)."""
    array = np.ones((3, 4, 5), np.float32)
    array[1, 2, 3] = np.nan
    path = tmp_path / "t1.nrrd"
    write_volume(sitk.GetImageFromArray(array), path)
    with pytest.raises(VolumeError, match="NaN"):
        read_volume(path, PATIENT)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_integer_valued_mask_is_read_as_uint8(tmp_path: Path, dtype) -> None:
    labels = np.zeros((4, 5, 6), dtype)
    labels[1, 1:3, 2:4], labels[2, 2, 2], labels[3, 0, 0] = 1, 2, 4
    path = tmp_path / "mask.nii.gz"
    write_volume(sitk.GetImageFromArray(labels), path)
    mask = read_mask(path, PATIENT)
    assert mask.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), labels.astype(np.uint8))


@pytest.mark.parametrize(
    ("value", "message"), [(0.5, "not all integers"), (-1.0, "outside 0..255"), (300.0, "0..255")]
)
def test_bad_mask_values_are_rejected(tmp_path: Path, value: float, message: str) -> None:
    labels = np.zeros((3, 4, 5), np.float32)
    labels[1, 1, 1] = value
    path = tmp_path / "mask.nii.gz"
    write_volume(sitk.GetImageFromArray(labels), path)
    with pytest.raises(VolumeError, match=message) as info:
        read_mask(path, PATIENT)
    assert PATIENT in str(info.value) and str(path) in str(info.value)
